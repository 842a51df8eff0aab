"""Following the log: the in-memory tail, wake-ups, and subscriptions.

A subscription is only a cursor: "the last sequence number I have scanned".
It reads what follows from the :class:`Tail` (the most recent events, kept
in memory while anyone subscribes) or, when it has fallen further behind
than that, from the database. So a subscriber that starts from an old
``after``, or is slow, never misses an event and never makes the daemon
hold an unbounded backlog for it: the log itself is the buffer.

Sequence numbers are gapless and allocated in commit order (see
:mod:`orchestrator.store.postgres`), so "everything after N, in order" is a
complete answer at any moment. The tail learns about new events from the
local writer thread (right after each commit) and from the follower thread
(PostgreSQL LISTEN/NOTIFY for other nodes' appends; SQLite: another process
writing the file), and fills any gap from the database before moving its
head, so it is always a contiguous run ending at its head.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import trio

from .events import EventFilter, StoredEvent

if TYPE_CHECKING:
    from .log import EventLog

__all__ = ["Subscription", "Tail"]

READ_CHUNK = 1000


class Tail:
    """The most recent events (a contiguous run ending at ``head``) and the threads waiting for more."""

    def __init__(self, head: int, capacity: int) -> None:
        self._lock = threading.Lock()
        self.head = head
        self._ring: deque[StoredEvent] = deque(maxlen=capacity)
        self._capacity = capacity
        self._waiters: list[Callable[[], None]] = []
        self.active = 0  # subscriptions inside "async with"/"with": only then are events kept in memory

    def start(self) -> int:
        """First sequence number held in memory (head + 1 when none is)."""
        return self._ring[0].seq if self._ring else self.head + 1

    def advance(self, first: int, last: int, events: Callable[[], list[StoredEvent]] | None,
                fetch: Callable[[int, int], list[StoredEvent]]) -> None:
        """Events ``first..last`` are committed; ``events()`` gives them (None: read them with ``fetch``).

        ``fetch(after, upto)`` reads committed events ``after < seq <= upto``
        from the database; it fills a gap when events committed by another
        node or process come before ``first``.
        """
        with self._lock:
            if last <= self.head:
                return
            if not self.active or last - self.head > self._capacity:
                # nobody reads from memory (or too far behind to be worth it): just move the head
                self._ring.clear()
                self.head = last
            else:
                new: list[StoredEvent] = []
                if first > self.head + 1 or events is None:
                    new = fetch(self.head, last if events is None else first - 1)
                if events is not None:
                    new += [e for e in events() if e.seq > self.head]
                expected = self.head + 1
                for e in new:
                    if e.seq != expected:  # cannot happen with gapless sequences; never keep a hole
                        self._ring.clear()
                        break
                    expected += 1
                else:
                    self._ring.extend(new)
                self.head = last
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    def reset(self, head: int) -> None:
        """Forget the events in memory and move the head (readers fall back to the database)."""
        with self._lock:
            self._ring.clear()
            self.head = max(self.head, head)
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    def take(self, after: int, accept: Callable[[StoredEvent], bool], limit: int
             ) -> tuple[list[StoredEvent], int] | None:
        """Events after ``after`` from memory: (matching events, last seq scanned), or None if not held."""
        with self._lock:
            start = self._ring[0].seq if self._ring else self.head + 1
            if after + 1 < start:
                return None
            if after >= self.head:
                return [], after
            out: list[StoredEvent] = []
            scanned = after
            ring = self._ring
            for i in range(after + 1 - start, len(ring)):
                e = ring[i]
                scanned = e.seq
                if accept(e):
                    out.append(e)
                    if len(out) >= limit:
                        break
            return out, scanned

    def add_waiter(self, beyond: int, wake: Callable[[], None]) -> bool:
        """Call ``wake()`` once the head passes ``beyond``; False (and no call) if it already has."""
        with self._lock:
            if self.head > beyond:
                return False
            self._waiters.append(wake)
            return True

    def remove_waiter(self, wake: Callable[[], None]) -> None:
        with self._lock:
            try:
                self._waiters.remove(wake)
            except ValueError:
                pass

    def wake_all(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    def set_active(self, delta: int) -> None:
        with self._lock:
            self.active += delta
            if self.active == 0:
                self._ring.clear()


class Subscription:
    """Events after a sequence number, in order, then live ones as they commit.

    Use from Trio as ``async with log.subscribe(...) as sub: async for e in sub``
    (or iterate without ``async with``: it still sees everything, reading from
    the database instead of the in-memory tail). ``position`` is the sequence
    number of the last event delivered (or scanned past, when filtered out):
    resubscribing with ``after=sub.position`` continues exactly there.
    """

    def __init__(self, log: EventLog, after: int, filt: EventFilter) -> None:
        self._log = log
        self._filter = filt
        self._accept = filt.predicate()
        self._scanned = after
        self._position = after
        self._buffer: deque[StoredEvent] = deque()
        self._entered = False

    @property
    def position(self) -> int:
        return self._position if self._buffer else self._scanned

    def _next_chunk(self) -> tuple[list[StoredEvent], int] | None:
        return self._log._tail.take(self._scanned, self._accept, READ_CHUNK)

    def _deliver(self, events: list[StoredEvent], scanned: int) -> None:
        self._buffer.extend(events)
        self._scanned = max(self._scanned, scanned)

    def _pop(self) -> StoredEvent:
        e = self._buffer.popleft()
        self._position = e.seq
        return e

    # -- Trio ----------------------------------------------------------------------------------------
    async def __aenter__(self) -> Subscription:
        self._enter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._exit()

    def _enter(self) -> None:
        if not self._entered:
            self._entered = True
            self._log._subscriber_entered()

    def _exit(self) -> None:
        if self._entered:
            self._entered = False
            self._log._tail.set_active(-1)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StoredEvent:
        while not self._buffer:
            self._log._check_open()
            got = self._next_chunk()
            if got is None:
                got = await trio.to_thread.run_sync(self._log._read_after, self._scanned, self._filter, READ_CHUNK)
            before = self._scanned
            self._deliver(*got)
            if not self._buffer and self._scanned == before:
                await self._wait_beyond(self._scanned)
        return self._pop()

    async def _wait_beyond(self, seq: int) -> None:
        token = trio.lowlevel.current_trio_token()
        event = trio.Event()

        def wake() -> None:
            try:
                token.run_sync_soon(event.set)
            except trio.RunFinishedError:
                pass

        if not self._log._tail.add_waiter(seq, wake):
            return
        self._log._ensure_follower()
        try:
            await event.wait()
        finally:
            self._log._tail.remove_waiter(wake)

    # -- threads -------------------------------------------------------------------------------------
    def __enter__(self) -> Subscription:
        self._enter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit()

    def iter_blocking(self, idle_timeout: float | None = None) -> Iterator[StoredEvent]:
        """Blocking iteration for plain threads; stops after ``idle_timeout`` s without a new event."""
        while True:
            while self._buffer:
                yield self._pop()
            self._log._check_open()
            got = self._next_chunk()
            if got is None:
                got = self._log._read_after(self._scanned, self._filter, READ_CHUNK)
            before = self._scanned
            self._deliver(*got)
            if self._buffer or self._scanned != before:
                continue
            woke = threading.Event()
            if self._log._tail.add_waiter(self._scanned, woke.set):
                self._log._ensure_follower()
                try:
                    if not woke.wait(idle_timeout):
                        return
                finally:
                    self._log._tail.remove_waiter(woke.set)
