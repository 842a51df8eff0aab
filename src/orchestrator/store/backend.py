"""What the event log needs from a database, and a small connection pool.

A :class:`Backend` opens connections and knows its dialect; the SQL itself is
shared and written once with ``?`` placeholders (:meth:`Backend.sql` turns
them into ``%s`` for psycopg). Connections run in autocommit mode; write
transactions are explicit ``BEGIN`` ... ``COMMIT`` on the writer thread.
Everything here is blocking and runs on the store's own threads, never on
the Trio thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import SchemaError
from .schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE
from .url import StorageUrl

__all__ = ["Backend", "Pool", "open_backend"]


class Backend:
    """One database behind a storage URL (subclasses: SQLite, PostgreSQL)."""

    dialect = ""
    # libpq and SQLite both accept this many parameters in one statement, with room to spare
    max_params = 900

    def __init__(self, url: StorageUrl) -> None:
        self.url = url

    # -- connections -----------------------------------------------------------------------------
    def connect(self, purpose: str) -> Any:
        """A new autocommit connection; ``purpose`` is "writer", "reader" or "listener"."""
        raise NotImplementedError

    def close(self, conn: Any) -> None:
        try:
            conn.close()
        except Exception:
            pass

    def is_broken(self, conn: Any) -> bool:
        """True when ``conn`` cannot be used again (PostgreSQL connection lost)."""
        return False

    # -- SQL -------------------------------------------------------------------------------------
    def sql(self, text: str) -> str:
        return text

    def execute(self, conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self.sql(text), tuple(params))

    def fetchall(self, conn: Any, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        return list(conn.execute(self.sql(text), tuple(params)).fetchall())

    def fetchone(self, conn: Any, text: str, params: Sequence[Any] = ()) -> tuple | None:
        return conn.execute(self.sql(text), tuple(params)).fetchone()

    def executemany(self, conn: Any, text: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            conn.cursor().executemany(self.sql(text), rows)

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        try:
            conn.execute("ROLLBACK")
        except Exception:
            pass

    def notify(self, conn: Any, last_seq: int) -> None:
        """Tell other nodes (inside the appending transaction) that the log grew to ``last_seq``."""

    def listen(self, conn: Any, stop: threading.Event) -> Iterator[int | None]:
        """Yield announced head sequence numbers (None: re-check), until ``stop`` is set."""
        raise NotImplementedError

    # -- migrations ------------------------------------------------------------------------------
    def lock_for_migration(self, conn: Any) -> None:
        """Serialise schema changes between processes (inside the migration transaction)."""

    def migrate(self, conn: Any) -> int:
        """Create or upgrade the schema in one transaction; returns the version now in force."""
        self.begin(conn)
        try:
            self.lock_for_migration(conn)
            self.execute(conn, VERSION_TABLE[self.dialect])
            row = self.fetchone(conn, "SELECT MAX(version) FROM schema_version")
            current = row[0] or 0
            if current > SCHEMA_VERSION:
                raise SchemaError(f"the database schema is version {current}, newer than this Hotline knows "
                                  f"({SCHEMA_VERSION}): upgrade Hotline")
            for migration in MIGRATIONS:
                if migration.version > current:
                    for statement in migration.statements(self.dialect):
                        self.execute(conn, statement)
                    self.execute(conn, "INSERT INTO schema_version (version, description, applied_at) "
                                       "VALUES (?, ?, ?)", (migration.version, migration.description, time.time()))
                    current = migration.version
            self.commit(conn)
        except BaseException:
            self.rollback(conn)
            raise
        return current


class Pool:
    """Reader connections, created on demand, at most ``size`` at once; broken ones are dropped."""

    def __init__(self, backend: Backend, size: int = 4) -> None:
        self._backend = backend
        self._idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        self._slots.acquire()
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._backend.connect("reader")
            try:
                yield conn
            finally:
                with self._lock:
                    if self._closed or self._backend.is_broken(conn):
                        self._backend.close(conn)
                    else:
                        self._idle.append(conn)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            self._backend.close(conn)


def open_backend(url: StorageUrl) -> Backend:
    if url.backend == "sqlite":
        from .sqlite import SqliteBackend

        return SqliteBackend(url)
    from .postgres import PostgresBackend

    return PostgresBackend(url)
