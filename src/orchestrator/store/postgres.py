"""The PostgreSQL backend: several Hotline nodes share one log (psycopg 3).

Ordering across nodes. Every append transaction starts with
``UPDATE log_head SET last_seq = last_seq + n RETURNING last_seq``: the row
lock it takes is held until COMMIT, so the next appender (from any node)
waits and then continues from the committed value. Sequence numbers are thus
allocated in commit order with no gaps: a reader that has seen ``seq = N``
will never later find a committed ``seq < N`` it missed, which is what lets
a subscriber follow the log by sequence number alone. (A plain BIGSERIAL does
not give this: a transaction holding seq 10 can commit after one holding
seq 11.) The price is that appends from all nodes commit one after another;
each commit carries a whole group of appends, so the rate is commits per
second times the group size.

Notification. The appending transaction also runs ``pg_notify(channel,
last_seq)``; PostgreSQL delivers it at commit, in commit order, to every
node's listener connection, which wakes that node's subscribers (they read
the new rows by sequence number). The channel is ``hotline_events``, with
the schema name appended when the database's ``search_path`` is not
``public``, so deployments in separate schemas do not wake each other.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.types.string import TextLoader

from .backend import Backend

__all__ = ["PostgresBackend"]


class PostgresBackend(Backend):
    dialect = "postgresql"

    def __init__(self, url) -> None:
        super().__init__(url)
        self.channel: str | None = None

    def connect(self, purpose: str) -> Any:
        conn = psycopg.connect(self.url.url, autocommit=True, application_name=f"hotline-{purpose}")
        # JSON columns come back as text: both backends decode the same way, exactly
        conn.adapters.register_loader("json", TextLoader)
        if self.channel is None:
            schema = conn.execute("SELECT current_schema()").fetchone()[0] or "public"
            suffix = "" if schema == "public" else "_" + re.sub(r"[^a-z0-9_]", "_", schema.lower())
            self.channel = ("hotline_events" + suffix)[:63]
        return conn

    def is_broken(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def execute(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
        if params:
            return conn.execute(self.sql(text), tuple(params))
        return conn.execute(text)

    def fetchall(self, conn: Any, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        return list(self.execute(conn, text, params).fetchall())

    def fetchone(self, conn: Any, text: str, params: Sequence[Any] = ()) -> tuple | None:
        return self.execute(conn, text, params).fetchone()

    def lock_for_migration(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('hotline.migrate.' || current_schema()))")

    def notify(self, conn: Any, last_seq: int) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (self.channel, str(last_seq)))

    def listen(self, conn: Any, stop: threading.Event) -> Iterator[int | None]:
        conn.execute(f'LISTEN "{self.channel}"')
        yield None  # catch up with whatever committed before LISTEN took effect
        while not stop.is_set():
            # the notifies() generator holds the connection's lock: finish it before the caller queries
            notes = list(conn.notifies(timeout=0.2, stop_after=1))
            if notes:
                try:
                    yield max(int(n.payload) for n in notes)
                except ValueError:
                    yield None
