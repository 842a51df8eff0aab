"""The event log: append, read, follow; call records, agent states and the audit log beside it.

One :class:`EventLog` per process, opened on a storage URL
(``sqlite:///var/hotline.db`` or ``postgresql://...``). Opening connects,
creates or migrates the schema, starts the writer thread, and runs crash
recovery (:meth:`EventLog.recover`).

Writing. All writes go through one writer thread fed by a queue; it takes
every append waiting at the time (up to ``max_batch`` events) into one
transaction: one commit, one fsync, for the whole group (group commit). In
that transaction it allocates the sequence numbers, inserts the events,
updates the call records and agent states (so they always match the log),
inserts audit entries, and (PostgreSQL) notifies the other nodes. Trio code
never blocks on the disk:

* ``await log.append(event)`` returns the sequence number once the event is
  committed (durable: see :mod:`orchestrator.store.sqlite` for what SQLite's
  ``synchronous`` setting survives). Use it where an effect must not be
  acknowledged before its record exists: ``call.incoming`` (before the
  call is answered), ``call.answered``, ``call.ended``, ``call.transferred``,
  ``call.set_data``, ``recording.*`` and configuration changes. Cancelling
  the wait does not cancel the append.
* ``log.append_nowait(event)`` queues it and returns at once: for high-rate
  events whose durability may lag by one commit: ``agent.state``,
  ``call.offered``/``call.offer_ended``, ``call.ivr`` digits, ``queue.stats``,
  media statistics. Order is kept: an event queued with ``append_nowait``
  is committed no later than one appended after it.

Reading. ``read`` (by sequence range and time range, with type patterns and
call/agent/queue/node filters), ``subscribe`` (history after a sequence
number, then live events, nothing missed in between), ``call_records``,
``agent_states``, ``audit_entries``, ``statistics()``. Reads use a small
pool of their own connections; from Trio they run in worker threads.

Every async method has a blocking twin named ``*_sync`` for plain threads,
the CLI and tests. Time ranges are half-open: ``since <= at < until``.

Retention: events are kept forever by default; :meth:`EventLog.purge`
deletes events older than a cutoff but never the call records (see there).
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from . import cdr
from .audit import AuditEntry, check_audit, redact
from .backend import Backend, Pool, open_backend
from .errors import SchemaError, StoreClosedError, StoreError
from .events import EventFilter, StoredEvent, decode_row, encode_event
from .schema import SCHEMA_VERSION
from .tail import Subscription, Tail
from .url import parse_url

__all__ = ["AgentStateRow", "EventLog", "LogStatistics", "RecoveryReport", "open_event_log"]

log = logging.getLogger("hotline.store")

_EVENT_COLUMNS = "seq, node, at, type, call_id, agent, queue, data"
_RECORD_COLUMNS = ("call_id, node, arrived_at, ended_at, last_at, queue, agent, queues, agents, outcome, is_open, "
                   "last_seq, record")
_UPSERT_RECORD = (
    f"INSERT INTO call_records ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (call_id) DO UPDATE SET node = excluded.node, arrived_at = excluded.arrived_at, "
    "ended_at = excluded.ended_at, last_at = excluded.last_at, queue = excluded.queue, agent = excluded.agent, "
    "queues = excluded.queues, agents = excluded.agents, outcome = excluded.outcome, is_open = excluded.is_open, "
    "last_seq = excluded.last_seq, record = excluded.record")
_UPSERT_AGENT = (
    "INSERT INTO agent_states (agent, state, node, at, seq) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (agent) DO UPDATE SET state = excluded.state, node = excluded.node, at = excluded.at, "
    "seq = excluded.seq")
_PAGE = 5000


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


@dataclass(frozen=True, kw_only=True)
class LogStatistics:
    """Counters of one open event log (``statistics()``)."""

    backend: str
    url: str
    node: str
    schema_version: int
    head: int
    appended: int
    commits: int
    largest_commit: int
    pending: int
    failed_appends: int
    projection_errors: int
    audit_entries: int
    subscribers: int
    group_commit: bool
    recovered_calls: int


@dataclass(frozen=True, kw_only=True)
class RecoveryReport:
    """What crash recovery did at open: calls it ended and agents it logged off, as of ``died_at``."""

    node: str
    died_at: float | None
    calls: tuple[str, ...]
    agents: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class AgentStateRow:
    """An agent's last reported state, from the ``agent_states`` projection."""

    agent: str
    state: str
    node: str
    at: float
    seq: int


@dataclass
class _Job:
    kind: str                      # "events", "audit", "task", "stop"
    rows: list                     # encoded event rows, or one audit row
    done: Callable[[Any], None] | None
    fn: Callable[[Any], Any] | None = None


def _ok(results: list) -> Callable[[Any], None]:
    """A completion for blocking callers: the result lands in ``results`` and the caller wakes."""
    flag = threading.Event()

    def done(value: Any) -> None:
        results.append(value)
        flag.set()
    done.flag = flag  # type: ignore[attr-defined]
    return done


class EventLog:
    """The one event log of a Hotline node (see the module docstring).

    ``url``: storage URL. ``node``: this node's id (default: the host name);
    keep it stable across restarts, crash recovery ends only this node's calls.
    ``group_commit``: commit every waiting append together (True) or one
    append per transaction (False: only for measuring the difference).
    ``max_batch``: most events per transaction. ``readers``: reader
    connections. ``recover``: run crash recovery at open. ``tail_size``:
    recent events kept in memory for subscribers. ``read_only``: open an
    existing database without writing anything (no migration, no recovery,
    no writer thread; appends raise StoreError): what reports use.
    """

    def __init__(self, url: str, *, node: str | None = None, group_commit: bool = True, max_batch: int = 1000,
                 readers: int = 4, recover: bool = True, tail_size: int = 65536, read_only: bool = False) -> None:
        self._url = parse_url(url)
        if node is None:
            node = socket.gethostname() or "hotline"
        if not isinstance(node, str) or not node or len(node) > 100:
            raise ValueError(f"node: must be a non-empty string of at most 100 characters, got {node!r}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch: must be an int >= 1, got {max_batch!r}")
        if isinstance(readers, bool) or not isinstance(readers, int) or readers < 1:
            raise ValueError(f"readers: must be an int >= 1, got {readers!r}")
        if isinstance(tail_size, bool) or not isinstance(tail_size, int) or tail_size < 1:
            raise ValueError(f"tail_size: must be an int >= 1, got {tail_size!r}")
        self.node = node
        self._group = bool(group_commit)
        self._max_batch = max_batch
        self._backend: Backend = open_backend(self._url)
        self._closed = False
        self._cond = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._pending = 0
        self._appended = 0
        self._commits = 0
        self._largest = 0
        self._failed = 0
        self._projection_errors = 0
        self._audited = 0
        self._recovered = 0
        self._follower: threading.Thread | None = None
        self._follower_stop = threading.Event()
        self._follower_lock = threading.Lock()
        self.read_only = bool(read_only)
        self.last_recovery: RecoveryReport | None = None
        if self.read_only:
            self._conn = None
            self._schema_version, head = self._open_read_only()
        else:
            try:
                self._conn = self._backend.connect("writer")
            except Exception as exc:
                raise StoreError(f"cannot open {self._url.redacted()}: {exc}") from exc
            try:
                self._schema_version = self._backend.migrate(self._conn)
                head = self._backend.fetchone(self._conn, "SELECT last_seq FROM log_head WHERE id = 1")[0]
            except BaseException:
                self._backend.close(self._conn)
                raise
        self._pool = Pool(self._backend, readers)
        self._tail = Tail(int(head), tail_size)
        self._writer: threading.Thread | None = None
        if not self.read_only:
            self._writer = threading.Thread(target=self._write_loop, name=f"hotline-store-writer-{node}",
                                            daemon=True)
            self._writer.start()
            if recover:
                try:
                    self.last_recovery = self.recover()
                except BaseException:
                    self.close()
                    raise

    def _open_read_only(self) -> tuple[int, int]:
        """Check an existing database without changing it: (schema version, head)."""
        if self._url.backend == "sqlite" and not self._url.path.exists():
            raise StoreError(f"{self._url.path}: no such database")
        try:
            conn = self._backend.connect("reader")
        except Exception as exc:
            raise StoreError(f"cannot open {self._url.redacted()}: {exc}") from exc
        try:
            try:
                version = self._backend.fetchone(conn, "SELECT MAX(version) FROM schema_version")[0]
                head = self._backend.fetchone(conn, "SELECT last_seq FROM log_head WHERE id = 1")[0]
            except Exception as exc:
                raise SchemaError(f"{self._url.redacted()} is not a Hotline database ({exc})") from None
            if version is None or version > SCHEMA_VERSION:
                raise SchemaError(f"{self._url.redacted()}: schema version {version} cannot be read by this "
                                  f"Hotline ({SCHEMA_VERSION})")
            return int(version), int(head)
        finally:
            self._backend.close(conn)

    # -- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, **kwargs: Any) -> EventLog:
        """Open (blocking): same as the constructor; use as ``with EventLog.open(url) as log``."""
        return cls(url, **kwargs)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Commit everything queued, stop the threads, close the connections (idempotent)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._jobs.append(_Job("stop", [], None))
            self._cond.notify()
        if self._writer is not None:
            self._writer.join()
        self._follower_stop.set()
        if self._follower is not None:
            self._follower.join()
        self._pool.close()
        self._tail.wake_all()

    async def aclose(self) -> None:
        """:meth:`close` from Trio (in a worker thread)."""
        await trio.to_thread.run_sync(self.close)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def backend(self) -> str:
        return self._url.backend

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the event log is closed")

    # -- the writer ------------------------------------------------------------------------------
    def _submit(self, job: _Job) -> None:
        if self.read_only:
            raise StoreError("the event log was opened read-only")
        with self._cond:
            if self._closed:
                raise StoreClosedError("the event log is closed")
            self._jobs.append(job)
            self._pending += len(job.rows)
            self._cond.notify()

    def _take(self) -> list[_Job]:
        with self._cond:
            while not self._jobs:
                self._cond.wait()
            first = self._jobs.popleft()
            batch = [first]
            if first.kind in ("events", "audit") and self._group:
                n = len(first.rows)
                jobs = self._jobs
                while jobs and jobs[0].kind in ("events", "audit") and n + len(jobs[0].rows) <= self._max_batch:
                    job = jobs.popleft()
                    n += len(job.rows)
                    batch.append(job)
            return batch

    def _write_loop(self) -> None:
        while True:
            batch = self._take()
            if batch[0].kind == "stop":
                if self._conn is not None:
                    self._backend.close(self._conn)
                return
            try:
                if batch[0].kind == "task":
                    self._run_task(batch[0])
                else:
                    self._commit_batch(batch)
            except BaseException:  # the writer must outlive anything, or every later append would hang
                log.exception("store: the writer thread caught an unexpected error")

    def _reconnect_if_broken(self) -> None:
        if self._conn is None or self._backend.is_broken(self._conn):
            if self._conn is not None:
                self._backend.close(self._conn)
            try:
                self._conn = self._backend.connect("writer")
            except Exception:
                log.exception("store: reconnecting the writer failed")
                self._conn = None

    def _run_task(self, job: _Job) -> None:
        try:
            if self._conn is None:
                self._reconnect_if_broken()
                if self._conn is None:
                    raise StoreError("no database connection")
            result: Any = job.fn(self._conn)
        except BaseException as exc:  # handed to the caller, who raises it
            self._reconnect_if_broken()
            result = exc if isinstance(exc, Exception) else StoreError(repr(exc))
        job.done(result)

    def _commit_batch(self, batch: list[_Job]) -> None:
        be = self._backend
        n = sum(len(j.rows) for j in batch if j.kind == "events")
        stored: list[StoredEvent] = []
        results: list[Any] = []
        try:
            if self._conn is None:
                self._reconnect_if_broken()
                if self._conn is None:
                    raise StoreError("no database connection")
            conn = self._conn
            be.begin(conn)
            try:
                last = 0
                if n:
                    last = be.fetchone(conn, "UPDATE log_head SET last_seq = last_seq + ? WHERE id = 1 "
                                             "RETURNING last_seq", (n,))[0]
                    seq = last - n + 1
                    node = self.node
                    for job in batch:
                        if job.kind == "events":
                            results.append(list(range(seq, seq + len(job.rows))))
                            for at, kind, call, agent, queue, text in job.rows:
                                stored.append(decode_row(seq, node, at, kind, call, agent, queue, text))
                                seq += 1
                        else:
                            results.append(None)
                    be.executemany(conn, f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                   [(e.seq, node, row[0], row[1], row[2], row[3], row[4], row[5])
                                    for e, row in zip(stored, (r for j in batch if j.kind == "events"
                                                                for r in j.rows))])
                    self._project(conn, stored)
                else:
                    results = [None] * len(batch)
                for i, job in enumerate(batch):
                    if job.kind == "audit":
                        results[i] = be.fetchone(
                            conn, "INSERT INTO audit (at, node, principal, role, method, params, result, error) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", job.rows[0])[0]
                if n:
                    be.notify(conn, last)
                be.commit(conn)
            except BaseException:
                be.rollback(conn)
                raise
        except Exception as exc:
            log.exception("store: a commit of %d event(s) failed", n)
            self._reconnect_if_broken()
            error = StoreError(f"append failed: {exc}")
            error.__cause__ = exc
            with self._cond:
                self._pending -= sum(len(j.rows) for j in batch)
                self._failed += sum(len(j.rows) for j in batch)
            for job in batch:
                if job.done is not None:
                    job.done(error)
            return
        with self._cond:
            self._pending -= sum(len(j.rows) for j in batch)
            self._appended += n
            self._audited += sum(1 for j in batch if j.kind == "audit")
            self._commits += 1
            self._largest = max(self._largest, n)
        if n:
            try:
                self._tail.advance(stored[0].seq, stored[-1].seq, lambda: stored, self._fetch_with(self._conn))
            except Exception:  # subscribers then read these events from the database
                log.exception("store: could not fill the in-memory tail")
                self._tail.reset(stored[-1].seq)
        for job, result in zip(batch, results):
            if job.done is not None:
                try:
                    job.done(result)
                except Exception:
                    log.exception("store: an append's completion failed")

    def _project(self, conn: Any, events: Sequence[StoredEvent]) -> None:
        """Fold a committed-to-be batch into call_records and agent_states (same transaction)."""
        calls = list(dict.fromkeys(e.call for e in events if e.call is not None))
        records = self._load_records(conn, calls)
        for e in events:
            if e.call is not None:
                try:
                    records[e.call] = cdr.apply(records.get(e.call), e)
                except Exception:  # the fold is total; a bug there must not lose events
                    self._projection_errors += 1
                    log.exception("store: call record projection failed on event %d", e.seq)
        self._backend.executemany(conn, _UPSERT_RECORD, [_record_row(records[c]) for c in calls if c in records])
        agents: dict[str, StoredEvent] = {}
        for e in events:
            if e.type == "agent.state" and e.agent is not None and isinstance(e.data.get("state"), str):
                agents[e.agent] = e
        self._backend.executemany(conn, _UPSERT_AGENT, [(a, e.data["state"], e.node, e.at, e.seq)
                                                        for a, e in agents.items()])

    def _load_records(self, conn: Any, calls: Sequence[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        step = self._backend.max_params
        for i in range(0, len(calls), step):
            chunk = calls[i:i + step]
            rows = self._backend.fetchall(
                conn, f"SELECT call_id, record FROM call_records WHERE call_id IN ({','.join('?' * len(chunk))})",
                chunk)
            for call, text in rows:
                out[call] = json.loads(text)
        return out

    def _fetch_with(self, conn: Any) -> Callable[[int, int], list[StoredEvent]]:
        def fetch(after: int, upto: int) -> list[StoredEvent]:
            rows = self._backend.fetchall(conn, f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ? "
                                                "ORDER BY seq", (after, upto))
            return [decode_row(*r) for r in rows]
        return fetch

    # -- appending -------------------------------------------------------------------------------
    def _encode_many(self, events: Iterable[Any]) -> list[tuple]:
        if isinstance(events, (Mapping, str, bytes)) or hasattr(events, "to_dict"):
            raise ValueError("events: expected an iterable of events (use append() for one)")
        now = time.time()
        return [encode_event(e, now) for e in events]

    def _wait_sync(self, job_rows: list, kind: str = "events") -> Any:
        results: list = []
        done = _ok(results)
        self._submit(_Job(kind, job_rows, done))
        done.flag.wait()
        if isinstance(results[0], BaseException):
            raise results[0]
        return results[0]

    async def _wait_async(self, job_rows: list, kind: str = "events", fn: Callable | None = None) -> Any:
        token = trio.lowlevel.current_trio_token()
        event = trio.Event()
        box: list = []

        def done(value: Any) -> None:
            box.append(value)
            try:
                token.run_sync_soon(event.set)
            except trio.RunFinishedError:
                pass
        self._submit(_Job(kind, job_rows, done, fn))
        await event.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    async def append(self, event: Any) -> int:
        """Append one event; returns its sequence number once it is committed (durable)."""
        return (await self._wait_async([encode_event(event)]))[0]

    async def append_many(self, events: Iterable[Any]) -> list[int]:
        """Append events in one transaction, in order; returns their sequence numbers once committed."""
        rows = self._encode_many(events)
        if not rows:
            return []
        return await self._wait_async(rows)

    def append_nowait(self, event: Any) -> None:
        """Queue one event and return at once (it commits with the next group; order is kept).

        Validation errors raise here; a failed commit is logged and counted in
        ``statistics().failed_appends``.
        """
        self._submit(_Job("events", [encode_event(event)], None))

    def append_sync(self, event: Any) -> int:
        """Blocking :meth:`append`."""
        return self._wait_sync([encode_event(event)])[0]

    def append_many_sync(self, events: Iterable[Any]) -> list[int]:
        """Blocking :meth:`append_many`."""
        rows = self._encode_many(events)
        return self._wait_sync(rows) if rows else []

    def _task_sync(self, fn: Callable[[Any], Any]) -> Any:
        results: list = []
        done = _ok(results)
        self._submit(_Job("task", [], done, fn))
        done.flag.wait()
        if isinstance(results[0], BaseException):
            raise results[0]
        return results[0]

    async def _task(self, fn: Callable[[Any], Any]) -> Any:
        return await self._wait_async([], "task", fn)

    def flush_sync(self) -> int:
        """Block until everything queued before this call is committed; returns the head."""
        return self._task_sync(lambda conn: self._tail.head)

    async def flush(self) -> int:
        """Wait until everything queued before this call (``append_nowait`` too) is committed."""
        return await self._task(lambda conn: self._tail.head)

    def head(self) -> int:
        """The last committed sequence number this node knows of (0: empty log)."""
        return self._tail.head

    # -- reading ---------------------------------------------------------------------------------
    def _select_events(self, *, after: int | None, upto: int | None, since: float | None, until: float | None,
                       filt: EventFilter, limit: int | None, descending: bool = False) -> tuple[str, list]:
        clauses, params = filt.sql()
        for clause, value in (("seq > ?", after), ("seq <= ?", upto), ("at >= ?", since), ("at < ?", until)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        text = f"SELECT {_EVENT_COLUMNS} FROM events"
        if clauses:
            text += " WHERE " + " AND ".join(clauses)
        text += " ORDER BY seq DESC" if descending else " ORDER BY seq"
        if limit is not None:
            text += " LIMIT ?"
            params.append(limit)
        return text, params

    @staticmethod
    def _check_range(after: Any, upto: Any, since: Any, until: Any, limit: Any) -> None:
        for name, value in (("after", after), ("upto", upto), ("limit", limit)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name}: must be a non-negative int or None, got {value!r}")
        for name, value in (("since", since), ("until", until)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise ValueError(f"{name}: must be a finite time in seconds or None, got {value!r}")

    def read_sync(self, *, after: int | None = None, upto: int | None = None, since: float | None = None,
                  until: float | None = None, types: Iterable[str] | str | None = None, call: str | None = None,
                  agent: str | None = None, queue: str | None = None, node: str | None = None,
                  limit: int | None = None) -> list[StoredEvent]:
        """Events with ``after < seq <= upto`` and ``since <= at < until`` matching the filters, by seq."""
        self._check_range(after, upto, since, until, limit)
        filt = EventFilter.make(types=types, call=call, agent=agent, queue=queue, node=node)
        self._check_open()
        text, params = self._select_events(after=after, upto=upto, since=since, until=until, filt=filt, limit=limit)
        with self._pool.connection() as conn:
            rows = self._backend.fetchall(conn, text, params)
        return [decode_row(*r) for r in rows]

    async def read(self, **kwargs: Any) -> list[StoredEvent]:
        """:meth:`read_sync` from Trio (same arguments)."""
        return await trio.to_thread.run_sync(partial(self.read_sync, **kwargs))

    def iter_events(self, *, after: int | None = None, upto: int | None = None, since: float | None = None,
                    until: float | None = None, types: Iterable[str] | str | None = None, call: str | None = None,
                    agent: str | None = None, queue: str | None = None,
                    node: str | None = None) -> Iterator[StoredEvent]:
        """Like :meth:`read_sync` but page by page (for whole-log scans: reports, rebuilds).

        A time window is first turned into the range of sequence numbers of
        the events dated in it (one index range scan). Unless a call, agent or
        queue is named (their indexes find the rows), that range is then read
        in primary-key order, a page at a time, and filtered here: a plan that
        never sorts, whatever the planner's statistics say (a PostgreSQL that
        has not analysed a freshly loaded table would otherwise sort the whole
        window again for every page).
        """
        self._check_range(after, upto, since, until, None)
        filt = EventFilter.make(types=types, call=call, agent=agent, queue=queue, node=node)
        if upto is None:
            upto = self._current_head()
        cursor = after or 0
        if since is not None or until is not None:
            clauses, params = [], []
            for clause, value in (("at >= ?", since), ("at < ?", until)):
                if value is not None:
                    clauses.append(clause)
                    params.append(value)
            with self._pool.connection() as conn:
                lo, hi = self._backend.fetchone(conn, "SELECT MIN(seq), MAX(seq) FROM events WHERE "
                                                + " AND ".join(clauses), params)
            if lo is None:
                return
            cursor = max(cursor, int(lo) - 1)
            upto = min(upto, int(hi))
        elif after is None:
            with self._pool.connection() as conn:
                first = self._backend.fetchone(conn, "SELECT MIN(seq) FROM events")[0]
            if first is None:
                return
            cursor = int(first) - 1  # skip a purged prefix
        if filt.indexed():
            while cursor < upto:
                self._check_open()
                text, params = self._select_events(after=cursor, upto=upto, since=since, until=until, filt=filt,
                                                   limit=_PAGE)
                with self._pool.connection() as conn:
                    rows = self._backend.fetchall(conn, text, params)
                for r in rows:
                    yield decode_row(*r)
                if len(rows) < _PAGE:
                    return
                cursor = rows[-1][0]
            return
        accept = filt.row_predicate(since, until)
        while cursor < upto:
            self._check_open()
            page_end = min(upto, cursor + _PAGE)
            with self._pool.connection() as conn:
                rows = self._backend.fetchall(conn, *self._scan_range(cursor, page_end))
            for r in rows:
                if accept(r):
                    yield decode_row(*r)
            cursor = page_end

    @staticmethod
    def _scan_range(after: int, upto: int) -> tuple[str, list]:
        """Events ``after < seq <= upto``: at most ``upto - after`` rows (sequence numbers have no gaps)."""
        return f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq", [after, upto]

    def _current_head(self) -> int:
        with self._pool.connection() as conn:
            return int(self._backend.fetchone(conn, "SELECT last_seq FROM log_head WHERE id = 1")[0])

    def _read_after(self, after: int, filt: EventFilter, limit: int) -> tuple[list[StoredEvent], int]:
        """Matching events after ``after`` and the last seq this read covered (for subscriptions)."""
        self._check_open()
        with self._pool.connection() as conn:
            head = int(self._backend.fetchone(conn, "SELECT last_seq FROM log_head WHERE id = 1")[0])
            if head <= after:
                return [], after
            if filt.indexed():
                text, params = self._select_events(after=after, upto=head, since=None, until=None, filt=filt,
                                                   limit=limit)
                rows = self._backend.fetchall(conn, text, params)
                events = [decode_row(*r) for r in rows]
                return events, (events[-1].seq if len(events) >= limit else head)
            # scan the range by primary key and filter here (see iter_events)
            upto = min(head, after + limit)
            rows = self._backend.fetchall(conn, *self._scan_range(after, upto))
        accept = filt.row_predicate()
        return [decode_row(*r) for r in rows if accept(r)], upto

    # -- following -------------------------------------------------------------------------------
    def subscribe(self, *, after: int | None = None, types: Iterable[str] | str | None = None,
                  call: str | None = None, agent: str | None = None, queue: str | None = None,
                  node: str | None = None) -> Subscription:
        """Events with ``seq > after`` matching the filters, in order, then live ones.

        ``after=None`` starts at the current head (live events only). To read
        history and then follow with nothing missed or repeated: ``n =
        log.head()``, read up to ``n``, then ``subscribe(after=n)``.
        Every node's appends are seen (PostgreSQL: through LISTEN/NOTIFY).
        """
        self._check_range(after, None, None, None, None)
        filt = EventFilter.make(types=types, call=call, agent=agent, queue=queue, node=node)
        self._check_open()
        return Subscription(self, self._tail.head if after is None else after, filt)

    def follow(self, *, after: int | None = None, idle_timeout: float | None = None,
               **filters: Any) -> Iterator[StoredEvent]:
        """Blocking :meth:`subscribe` for plain threads; stops after ``idle_timeout`` s with no event."""
        with self.subscribe(after=after, **filters) as sub:
            yield from sub.iter_blocking(idle_timeout)

    def _subscriber_entered(self) -> None:
        self._tail.set_active(+1)
        self._ensure_follower()

    def _ensure_follower(self) -> None:
        with self._follower_lock:
            if self._follower is None and not self._closed:
                self._follower = threading.Thread(target=self._follow_loop, name=f"hotline-store-follower-{self.node}",
                                                  daemon=True)
                self._follower.start()

    def _follow_loop(self) -> None:
        """Wake local subscribers for events other nodes (or processes) commit."""
        be = self._backend
        while not self._follower_stop.is_set():
            conn = None
            try:
                conn = be.connect("listener")
                fetch = self._fetch_with(conn)
                for announced in be.listen(conn, self._follower_stop):
                    if announced is not None and announced <= self._tail.head:
                        continue
                    row = be.fetchone(conn, "SELECT last_seq FROM log_head WHERE id = 1")
                    head = int(row[0])
                    if head > self._tail.head:
                        self._tail.advance(self._tail.head + 1, head, None, fetch)
            except Exception:
                if self._follower_stop.is_set():
                    break
                log.exception("store: the follower lost its connection; retrying")
                self._follower_stop.wait(0.5)
            finally:
                if conn is not None:
                    be.close(conn)

    # -- call records and agent states -----------------------------------------------------------
    def call_records_sync(self, *, since: float | None = None, until: float | None = None, queue: str | None = None,
                          agent: str | None = None, outcome: str | None = None, open: bool | None = None,
                          node: str | None = None, limit: int | None = 1000) -> list[cdr.CallDetailRecord]:
        """Call records with ``since <= arrived_at < until``, visiting ``queue`` / handled by ``agent``.

        Ordered by arrival time (then call id). ``limit=None`` returns all.
        """
        self._check_range(None, None, since, until, limit)
        for name, value in (("queue", queue), ("agent", agent), ("outcome", outcome), ("node", node)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name}: must be a string or None, got {value!r}")
        if outcome is not None and outcome not in cdr.OUTCOMES:
            raise ValueError(f"outcome: must be one of {cdr.OUTCOMES}, got {outcome!r}")
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (("arrived_at >= ?", since), ("arrived_at < ?", until), ("outcome = ?", outcome),
                              ("node = ?", node)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        for column, value in (("queues", queue), ("agents", agent)):
            if value is not None:
                clauses.append(f"{column} LIKE ? ESCAPE '\\'")
                params.append("%" + _like_literal(_dumps(value)) + "%")
        if open is not None:
            clauses.append("is_open = ?")
            params.append(1 if open else 0)
        text = "SELECT record FROM call_records"
        if clauses:
            text += " WHERE " + " AND ".join(clauses)
        text += " ORDER BY arrived_at, call_id"
        if limit is not None:
            text += " LIMIT ?"
            params.append(limit)
        self._check_open()
        with self._pool.connection() as conn:
            rows = self._backend.fetchall(conn, text, params)
        return [cdr.record_from_dict(json.loads(r[0])) for r in rows]

    async def call_records(self, **kwargs: Any) -> list[cdr.CallDetailRecord]:
        """:meth:`call_records_sync` from Trio (same arguments)."""
        return await trio.to_thread.run_sync(partial(self.call_records_sync, **kwargs))

    def call_record_sync(self, call: str) -> cdr.CallDetailRecord | None:
        """One call's record, or None."""
        if not isinstance(call, str) or not call:
            raise ValueError(f"call: must be a non-empty string, got {call!r}")
        self._check_open()
        with self._pool.connection() as conn:
            row = self._backend.fetchone(conn, "SELECT record FROM call_records WHERE call_id = ?", (call,))
        return None if row is None else cdr.record_from_dict(json.loads(row[0]))

    async def call_record(self, call: str) -> cdr.CallDetailRecord | None:
        return await trio.to_thread.run_sync(self.call_record_sync, call)

    def raw_call_records_sync(self) -> dict[str, dict]:
        """Every stored record as the projection keeps it (bookkeeping fields too); for checks and tests."""
        self._check_open()
        with self._pool.connection() as conn:
            rows = self._backend.fetchall(conn, "SELECT call_id, record FROM call_records")
        return {call: json.loads(text) for call, text in rows}

    def boundary_calls_sync(self, at: float) -> list[str]:
        """Calls whose events straddle time ``at`` (first event before it, last at or after it)."""
        with self._pool.connection() as conn:
            rows = self._backend.fetchall(conn, "SELECT call_id FROM call_records WHERE last_at >= ? "
                                                "AND arrived_at < ?", (at, at))
        return [r[0] for r in rows]

    def agent_states_sync(self) -> list[AgentStateRow]:
        """Each agent's last ``agent.state`` (by agent id)."""
        self._check_open()
        with self._pool.connection() as conn:
            rows = self._backend.fetchall(conn, "SELECT agent, state, node, at, seq FROM agent_states ORDER BY agent")
        return [AgentStateRow(agent=a, state=s, node=n, at=float(t), seq=int(q)) for a, s, n, t, q in rows]

    async def agent_states(self) -> list[AgentStateRow]:
        return await trio.to_thread.run_sync(self.agent_states_sync)

    def agent_state_before_sync(self, at: float, agents: Iterable[str] | None = None) -> list[StoredEvent]:
        """Each agent's last ``agent.state`` event dated before ``at`` (its state at that moment), by seq."""
        return self._agent_state_edge(at, agents, before=True)

    def agent_state_after_sync(self, at: float, agents: Iterable[str] | None = None) -> list[StoredEvent]:
        """Each agent's first ``agent.state`` event dated at or after ``at``, by seq."""
        return self._agent_state_edge(at, agents, before=False)

    def _agent_state_edge(self, at: float, agents: Iterable[str] | None, *, before: bool) -> list[StoredEvent]:
        self._check_range(None, None, at, None, None)
        names = [r.agent for r in self.agent_states_sync()] if agents is None else list(agents)
        text = (f"SELECT {_EVENT_COLUMNS} FROM events WHERE agent = ? AND type = 'agent.state' AND at < ? "
                "ORDER BY at DESC, seq DESC LIMIT 1") if before else (
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE agent = ? AND type = 'agent.state' AND at >= ? "
                "ORDER BY at, seq LIMIT 1")
        out = []
        with self._pool.connection() as conn:
            for agent in names:
                row = self._backend.fetchone(conn, text, (agent, at))
                if row is not None:
                    out.append(decode_row(*row))
        out.sort(key=lambda e: e.seq)
        return out

    def rebuild_call_records(self) -> int:
        """Fold the whole log again into call_records and agent_states; returns the number of calls.

        Records of calls whose events were all purged are kept as they are.
        """
        def task(conn: Any) -> int:
            be = self._backend
            records: dict[str, dict] = {}
            agents: dict[str, StoredEvent] = {}
            cursor = 0
            while True:
                rows = be.fetchall(conn, f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                   (cursor, _PAGE))
                for r in rows:
                    e = decode_row(*r)
                    if e.call is not None:
                        try:
                            records[e.call] = cdr.apply(records.get(e.call), e)
                        except Exception:
                            log.exception("store: call record projection failed on event %d", e.seq)
                    if e.type == "agent.state" and e.agent is not None and isinstance(e.data.get("state"), str):
                        agents[e.agent] = e
                if len(rows) < _PAGE:
                    break
                cursor = rows[-1][0]
            be.begin(conn)
            try:
                be.executemany(conn, _UPSERT_RECORD, [_record_row(r) for r in records.values()])
                be.executemany(conn, _UPSERT_AGENT, [(a, e.data["state"], e.node, e.at, e.seq)
                                                     for a, e in agents.items()])
                be.commit(conn)
            except BaseException:
                be.rollback(conn)
                raise
            return len(records)
        return self._task_sync(task)

    # -- crash recovery --------------------------------------------------------------------------
    def recover(self) -> RecoveryReport:
        """End this node's calls that have no end, and log off its agents (runs at open).

        After a crash, calls this node had started are still open in the
        call records. Each gets an end event appended like any other
        (:func:`orchestrator.store.cdr.synthesize_end`: abandoned if it was
        queued and not answered, answered calls keep their outcome, otherwise
        failed; reason "node_restart"), and each agent whose last state this
        node reported is not "offline" gets an ``agent.state`` "offline", so
        state time stops at the crash. Both are dated at the node's last event
        before the restart. Other nodes' calls are never touched.
        """
        self._check_open()
        with self._pool.connection() as conn:
            be = self._backend
            rows = be.fetchall(conn, "SELECT record FROM call_records WHERE is_open = 1 AND node = ? ORDER BY last_seq",
                               (self.node,))
            last = be.fetchone(conn, "SELECT at FROM events WHERE node = ? ORDER BY seq DESC LIMIT 1", (self.node,))
            agents = be.fetchall(conn, "SELECT agent, state FROM agent_states WHERE node = ? AND state <> 'offline' "
                                       "ORDER BY agent", (self.node,))
        died_at = None if last is None else float(last[0])
        events = []
        calls = []
        for (text,) in rows:
            rec = json.loads(text)
            events.append(cdr.synthesize_end(rec, died_at if died_at is not None else rec["last_at"]))
            calls.append(rec["call"])
        for agent, state in agents:
            events.append({"type": "agent.state", "at": died_at, "agent": agent, "state": "offline",
                           "previous": state, "reason": "node_restart", "synthetic": True})
        if events:
            self.append_many_sync(events)
            self._recovered += len(calls)
            log.warning("store: node %s restarted: ended %d open call(s), logged off %d agent(s)", self.node,
                        len(calls), len(agents))
        return RecoveryReport(node=self.node, died_at=died_at, calls=tuple(calls), agents=tuple(a for a, _ in agents))

    # -- audit -----------------------------------------------------------------------------------
    def _audit_row(self, principal: str, method: str, params: Any, result: str, error: str | None,
                   role: str | None, at: float | None) -> tuple:
        check_audit(principal, role, method, result, error, at)
        try:
            text = _dumps(redact(params if params is not None else {}))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"params: not JSON: {exc}") from None
        return (time.time() if at is None else float(at), self.node, principal, role, method, text, result, error)

    def audit_sync(self, *, principal: str, method: str, params: Any = None, result: str = "ok",
                   error: str | None = None, role: str | None = None, at: float | None = None) -> int:
        """Write one audit entry (secrets in ``params`` redacted); returns its id once durable."""
        return self._wait_sync([self._audit_row(principal, method, params, result, error, role, at)], "audit")

    async def audit(self, *, principal: str, method: str, params: Any = None, result: str = "ok",
                    error: str | None = None, role: str | None = None, at: float | None = None) -> int:
        """:meth:`audit_sync` from Trio: returns once the entry is durable."""
        row = self._audit_row(principal, method, params, result, error, role, at)
        return await self._wait_async([row], "audit")

    def audit_entries_sync(self, *, since: float | None = None, until: float | None = None,
                           principal: str | None = None, method: str | None = None,
                           limit: int | None = 1000) -> list[AuditEntry]:
        """Audit entries with ``since <= at < until``, by principal and/or method, oldest first."""
        self._check_range(None, None, since, until, limit)
        for name, value in (("principal", principal), ("method", method)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name}: must be a string or None, got {value!r}")
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (("at >= ?", since), ("at < ?", until), ("principal = ?", principal),
                              ("method = ?", method)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        text = "SELECT id, at, node, principal, role, method, params, result, error FROM audit"
        if clauses:
            text += " WHERE " + " AND ".join(clauses)
        text += " ORDER BY id"
        if limit is not None:
            text += " LIMIT ?"
            params.append(limit)
        self._check_open()
        with self._pool.connection() as conn:
            rows = self._backend.fetchall(conn, text, params)
        return [AuditEntry(id=int(i), at=float(at), node=n, principal=p, role=r, method=m, params=json.loads(js),
                           result=res, error=err) for i, at, n, p, r, m, js, res, err in rows]

    async def audit_entries(self, **kwargs: Any) -> list[AuditEntry]:
        return await trio.to_thread.run_sync(partial(self.audit_entries_sync, **kwargs))

    # -- retention -------------------------------------------------------------------------------
    def purge_sync(self, *, before: float | None = None, older_than_days: float | None = None) -> int:
        """Delete events dated before ``before`` (Unix time) or older than ``older_than_days``; returns how many.

        Retention is off unless called: by default every event is kept
        forever (a day of a 50,000-call centre is about 450,000 events,
        about 200 MB in SQLite with indexes and call records). Give exactly one of the two arguments.

        Call records, agent states and the audit log are kept. A call's
        events go all together or not at all: only calls that are closed and
        whose last event is before ``before`` lose their events (an open call,
        or one still active at the cutoff, keeps every event, so its record
        can still be folded). Events of no call go by their own time. The
        cutoff is remembered in ``store_meta`` (key ``purged_before``).
        """
        if (before is None) == (older_than_days is None):
            raise ValueError("before, older_than_days: give exactly one")
        if older_than_days is not None:
            if isinstance(older_than_days, bool) or not isinstance(older_than_days, (int, float)) \
                    or not math.isfinite(older_than_days) or older_than_days < 0:
                raise ValueError(f"older_than_days: must be a number of days >= 0, got {older_than_days!r}")
            before = time.time() - older_than_days * 86400.0
        self._check_range(None, None, before, None, None)

        def task(conn: Any) -> int:
            be = self._backend
            be.begin(conn)
            try:
                cur = be.execute(conn, "DELETE FROM events WHERE at < ? AND (call_id IS NULL OR call_id IN "
                                       "(SELECT call_id FROM call_records WHERE is_open = 0 AND last_at < ?))",
                                 (before, before))
                count = cur.rowcount
                be.execute(conn, "INSERT INTO store_meta (key, value) VALUES ('purged_before', ?) "
                                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (repr(float(before)),))
                be.commit(conn)
            except BaseException:
                be.rollback(conn)
                raise
            return int(count)
        return self._task_sync(task)

    async def purge(self, *, before: float | None = None, older_than_days: float | None = None) -> int:
        """:meth:`purge_sync` from Trio."""
        return await trio.to_thread.run_sync(partial(self.purge_sync, before=before, older_than_days=older_than_days))

    # -- statistics ------------------------------------------------------------------------------
    def statistics(self) -> LogStatistics:
        with self._cond:
            return LogStatistics(
                backend=self._url.backend, url=self._url.redacted(), node=self.node,
                schema_version=self._schema_version, head=self._tail.head, appended=self._appended,
                commits=self._commits, largest_commit=self._largest, pending=self._pending,
                failed_appends=self._failed, projection_errors=self._projection_errors, audit_entries=self._audited,
                subscribers=self._tail.active, group_commit=self._group, recovered_calls=self._recovered)


def _like_literal(text: str) -> str:
    """``text`` matched literally by ``LIKE ... ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _record_row(rec: dict) -> tuple:
    return (rec["call"], rec["node"], rec["arrived_at"], rec["ended_at"], rec["last_at"], rec["queue"], rec["agent"],
            _dumps(rec["queues"]), _dumps(rec["agents"]), rec["outcome"], 1 if rec["is_open"] else 0,
            rec["last_seq"], _dumps(rec))


@asynccontextmanager
async def open_event_log(url: str, **kwargs: Any) -> AsyncIterator[EventLog]:
    """``async with open_event_log(url) as log``: open and close in worker threads (see :class:`EventLog`)."""
    event_log = await trio.to_thread.run_sync(partial(EventLog, url, **kwargs))
    try:
        yield event_log
    finally:
        with trio.CancelScope(shield=True):
            await event_log.aclose()
