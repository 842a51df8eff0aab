"""The SQLite backend: the embedded default (one node).

Durability. The database runs in WAL mode. With ``synchronous=FULL`` (the
default) every commit fsyncs the WAL before the append is acknowledged: an
acknowledged event survives the process being killed *and* the machine
losing power. ``synchronous=NORMAL`` (``?synchronous=normal`` in the URL)
skips that fsync (the WAL is synced at checkpoints): acknowledged events
survive the process being killed (the OS has the pages) but the last commits
before a power cut may be lost. On this machine a FULL commit costs about
4 ms (an fsync), NORMAL about 30 us; group commit (one transaction for every
append waiting at the time) is what makes FULL cheap per event: see
``bench/test_bench_store.py``. FULL is the default because CONTRACT.md
promises a record for every call "even when the daemon is killed", and a
killed VM is killed too.

One process writes (the daemon's writer thread); readers (reports, the CLI,
other threads) use their own connections and never block the writer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

from .backend import Backend

__all__ = ["SqliteBackend"]


class SqliteBackend(Backend):
    dialect = "sqlite"

    def connect(self, purpose: str) -> Any:
        path = self.url.path
        if purpose == "writer":
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        if purpose == "writer":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"{path}: SQLite refused WAL mode (journal_mode is {mode})")
            conn.execute(f"PRAGMA synchronous = {self.url.synchronous.upper()}")
        else:
            conn.execute("PRAGMA query_only = 1")
        return conn

    def begin(self, conn: Any) -> None:
        # IMMEDIATE takes the write lock now, so the head read and the inserts see one state
        conn.execute("BEGIN IMMEDIATE")

    def listen(self, conn: Any, stop: threading.Event) -> Iterator[int | None]:
        """Poll ``PRAGMA data_version`` (it changes when another connection commits)."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        yield None
        while not stop.wait(0.05):
            now = conn.execute("PRAGMA data_version").fetchone()[0]
            if now != version:
                version = now
                yield None
        time.sleep(0)
