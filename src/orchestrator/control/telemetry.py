"""Call-centre metrics for ``/metrics``, and the periodic ``queue.stats`` event.

:class:`CallCentreMetrics` derives its counters from the same events the
hub fans out (DESIGN rule 5: one event log, so ``/metrics``, the wallboard
and the CRM events agree), and reads live gauges from the services when
Prometheus scrapes:

======================================== ====== ======================================
hotline_calls_total{queue}               counter calls that entered the queue (call.queued)
hotline_calls_answered_total{queue}      counter call.answered
hotline_calls_abandoned_total{queue}     counter call.abandoned
hotline_call_wait_seconds{queue}         histogram wait of answered calls
hotline_queue_waiting{queue}             gauge  calls waiting now
hotline_queue_longest_wait_seconds{queue} gauge longest current wait
hotline_queue_agents{queue,state}        gauge  the queue's agents by state
hotline_agents{state}                    gauge  all agents by state
======================================== ====== ======================================

:class:`QueueStatsPublisher` is a Trio task that publishes ``queue.stats``
(the ``queue.stats`` method's result) for every queue whose numbers changed,
every ``interval`` seconds; the wallboard lives on it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import trio

from .events import EventHub
from .methods import maybe
from .protocol import to_json

__all__ = ["CallCentreMetrics", "QueueStatsPublisher"]

log = logging.getLogger("hotline.control")

WAIT_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class CallCentreMetrics:
    """Registers the families above in ``registry`` and listens to ``hub``.

    ``queues()`` / ``agents()``: synchronous snapshots (lists of the dicts
    ``queue.list`` and ``agent.list`` return), read at each scrape.
    """

    def __init__(self, registry: Any, hub: EventHub, *, queues: Callable[[], list[Mapping]] | None = None,
                 agents: Callable[[], list[Mapping]] | None = None) -> None:
        self.calls = registry.counter("hotline_calls_total", "Calls that entered a queue.", ("queue",))
        self.answered = registry.counter("hotline_calls_answered_total", "Queued calls answered by an agent.",
                                         ("queue",))
        self.abandoned = registry.counter("hotline_calls_abandoned_total", "Queued calls the caller hung up.",
                                          ("queue",))
        self.wait = registry.histogram("hotline_call_wait_seconds", "Queue wait of answered calls.", ("queue",),
                                       buckets=WAIT_BUCKETS)
        self.queues = queues
        self.agents = agents
        hub.listeners.append(self._on_event)
        registry.add_collector(self._collect)

    def _on_event(self, name: str, payload: Mapping[str, Any]) -> None:
        queue = payload.get("queue")
        if not isinstance(queue, str):
            return
        if name == "call.queued":
            self.calls.inc(queue=queue)
        elif name == "call.answered":
            self.answered.inc(queue=queue)
            wait = payload.get("wait")
            if isinstance(wait, (int, float)) and math.isfinite(wait):
                self.wait.observe(float(wait), queue=queue)
        elif name == "call.abandoned":
            self.abandoned.inc(queue=queue)

    def _collect(self):
        if self.queues is not None:
            qs = [to_json(q) for q in self.queues()]
            yield ("hotline_queue_waiting", "gauge", "Calls waiting in the queue now.",
                   [({"queue": q["queue"]}, q.get("waiting", 0)) for q in qs])
            yield ("hotline_queue_longest_wait_seconds", "gauge", "Longest wait of the calls waiting now.",
                   [({"queue": q["queue"]}, q.get("longest_wait") or 0.0) for q in qs])
            yield ("hotline_queue_agents", "gauge", "The queue's agents by state.",
                   [({"queue": q["queue"], "state": s}, n) for q in qs
                    for s, n in sorted((q.get("agents_by_state") or {}).items())])
        if self.agents is not None:
            counts: dict[str, int] = {}
            for a in self.agents():
                state = to_json(a).get("state")
                if isinstance(state, str):
                    counts[state] = counts.get(state, 0) + 1
            yield ("hotline_agents", "gauge", "Agents by state.",
                   [({"state": s}, n) for s, n in sorted(counts.items())])


class QueueStatsPublisher:
    """Publishes ``queue.stats`` events for changed queues every ``interval`` seconds."""

    def __init__(self, hub: EventHub, queues: Any, *, interval: float = 1.0) -> None:
        if not (isinstance(interval, (int, float)) and interval > 0):
            raise ValueError(f"interval: must be > 0 seconds, got {interval!r}")
        self.hub = hub
        self.queues = queues
        self.interval = interval
        self._last: dict[str, dict] = {}
        self.published = 0

    async def publish_changed(self) -> int:
        """One round: publish each queue whose stats differ from the last published; returns how many."""
        n = 0
        for q in to_json(await maybe(self.queues.list_queues())):
            name = q["queue"]
            stats = to_json(await maybe(self.queues.queue_stats(name)))
            if self._last.get(name) != stats:
                self._last[name] = stats
                self.hub.publish({"type": "queue.stats", **stats})
                n += 1
        self.published += n
        return n

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                await self.publish_changed()
            except Exception:  # a failing service must not stop the wallboard's clock
                log.exception("queue.stats: could not compute the queue statistics")
            await trio.sleep(self.interval)
