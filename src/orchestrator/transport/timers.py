"""One timer service for the whole SIP stack: a heap, not a task per timer.

The transaction layer asks for timers as effects (``SetTimer(name, at, key)``,
``CancelTimer(name, key)``); this service keeps them in a binary heap keyed by
due time and runs one Trio task that sleeps until the earliest one. Setting a
timer earlier than the current wake-up moves the sleeping task's deadline
(a cancel scope's ``deadline`` is mutable), so no wake-up channel is needed.
Cancelled or re-armed entries are dropped lazily when they reach the top, and
the heap is rebuilt when stale entries outnumber live ones.

Wake-ups are rounded up to a grid of ``resolution`` seconds (10 ms by
default): SIP timers are hundreds of milliseconds or more, and most are
cancelled long before they fire (Timer A and E stop at the first response),
so coalescing keeps the service from waking, and its deadline from moving,
for every transaction. A timer therefore fires up to ``resolution`` late,
never early.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import trio

__all__ = ["TimerService", "TimerStatistics"]


@dataclass(frozen=True)
class TimerStatistics:
    pending: int
    heap_entries: int
    fired: int
    cancelled: int


class TimerService:
    """Named timers per key; ``fire(key, name, now)`` is called when one is due.

    ``fire`` runs on the service's task and must not block; an exception from it
    is not caught here (the endpoint's callback catches and counts its own).
    """

    def __init__(self, fire: Callable[[Hashable, str, float], None], *, resolution: float = 0.01) -> None:
        if not resolution >= 0:
            raise ValueError(f"resolution: must be >= 0 seconds, not {resolution!r}")
        self._fire = fire
        self.resolution = resolution
        self._heap: list[tuple[float, int, Hashable, str]] = []
        self._live: dict[tuple[Hashable, str], int] = {}
        self._seq = itertools.count()
        self._scope: trio.CancelScope | None = None
        self._fired = self._cancelled = 0

    def set(self, key: Hashable, name: str, at: float) -> None:
        """Arm (or re-arm) timer ``name`` of ``key`` for time ``at`` (trio clock)."""
        seq = next(self._seq)
        self._live[(key, name)] = seq
        heapq.heappush(self._heap, (at, seq, key, name))
        scope = self._scope
        if scope is not None and at < scope.deadline:
            wake = self._wake_time(at)
            if wake < scope.deadline:
                scope.deadline = wake

    def cancel(self, key: Hashable, name: str) -> None:
        if self._live.pop((key, name), None) is not None:
            self._cancelled += 1
            if len(self._heap) > 64 and len(self._heap) > 2 * len(self._live):
                self._compact()

    def pending(self, key: Hashable, name: str) -> bool:
        return (key, name) in self._live

    def _wake_time(self, at: float) -> float:
        grid = self.resolution
        if grid <= 0 or not math.isfinite(at):
            return at
        return max(at, math.ceil(at / grid) * grid)  # never early, even by a rounding error

    def _compact(self) -> None:
        live = self._live
        self._heap = [e for e in self._heap if live.get((e[2], e[3])) == e[1]]
        heapq.heapify(self._heap)

    def statistics(self) -> TimerStatistics:
        return TimerStatistics(pending=len(self._live), heap_entries=len(self._heap), fired=self._fired,
                               cancelled=self._cancelled)

    def _due(self, now: float) -> list[tuple[Hashable, str]]:
        heap, live, due = self._heap, self._live, []
        while heap and heap[0][0] <= now:
            _, seq, key, name = heapq.heappop(heap)
            if live.get((key, name)) == seq:
                del live[(key, name)]
                due.append((key, name))
        return due

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire timers as they fall due, until cancelled."""
        task_status.started()
        while True:
            now = trio.current_time()
            for key, name in self._due(now):
                self._fired += 1
                self._fire(key, name, now)
            next_at = self._wake_time(self._heap[0][0]) if self._heap else math.inf
            with trio.CancelScope(deadline=next_at) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
