"""Event fan-out: topic subscriptions, role filtering, bounded queues, the screen pop.

Sans-IO like the framing: :meth:`EventHub.publish` never blocks and never
waits for a subscriber. Each connection's :class:`Subscription` has a bounded
queue of ready-encoded JSON-RPC notifications (the text is encoded once per
event, whatever the number of subscribers). A transport drains it with
:meth:`Subscription.take` and is woken by the callable it sets as
``wakeup``; the hub is used from the event loop's thread only.

Slow consumers. When a subscriber's queue is full the new event is dropped
for it and counted; the consumer later receives, at the place of the loss,
one ``events.dropped`` notification ``{"count": n, "total": t}``. A consumer
that has lost ``disconnect_after`` events in a row without taking any is
closed (``reason = "slow consumer"``): its transport's ``on_close`` callback
disconnects it. Either way, publishing costs the same for everyone else.

Topics are glob patterns over event names: ``*`` matches any run of
characters (dots included), nothing else is special: ``call.*``,
``agent.state``, ``*``.

Role filtering (the principal of the subscribing connection):

* admin, supervisor, crm: every event;
* viewer (wallboard): ``agent.*`` and ``queue.*`` only;
* agent: ``queue.*``; events whose ``agent`` is itself; and events about a
  call while that call is its own (from the offer to the end of wrap-up).

The screen pop: ``call.offered`` is published with the IVR-collected data
(``call.ivr`` events carrying ``data``/``digits``) under ``ivr`` and the data
a CRM attached with ``call.set_data`` merged into ``data``. Every
notification carries ``time``: when the hub published it (Unix seconds).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .auth import Principal
from .protocol import dumps, notification, to_json

__all__ = [
    "EVENT_NAME",
    "EventHub",
    "HubStatistics",
    "Subscription",
    "check_topics",
    "topic_matcher",
]

EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
_TOPIC = re.compile(r"[a-z0-9_.*]{1,64}")
_CALLS_TRACKED = 100_000
_ALL_EVENTS_ROLES = frozenset({"admin", "supervisor", "crm"})
_ENDING_EVENTS = frozenset({"call.ended", "call.wrapup_ended", "call.exited", "call.abandoned", "call.rejected"})


def check_topics(topics: Iterable[str]) -> tuple[str, ...]:
    """Validate topic patterns (lower-case letters, digits, ``_``, ``.``, ``*``)."""
    out = tuple(topics)
    for i, t in enumerate(out):
        if not isinstance(t, str) or not _TOPIC.fullmatch(t):
            raise ValueError(f"topics[{i}]: {t!r} is not a topic pattern (lower-case letters, digits, _ . and *)")
    return out


def topic_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A predicate on event names for glob ``patterns``."""
    exact = set()
    regexes = []
    for p in patterns:
        if "*" in p:
            regexes.append(re.compile(".*".join(re.escape(part) for part in p.split("*"))))
        else:
            exact.add(p)
    if not regexes:
        return exact.__contains__
    return lambda name: name in exact or any(r.fullmatch(name) for r in regexes)


class _Gap:
    """Queue marker: ``count`` events were dropped here."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 1


class Subscription:
    """One connection's subscription; see the module docstring."""

    def __init__(self, hub: EventHub, principal: Principal, topics: tuple[str, ...], capacity: int,
                 disconnect_after: int | None) -> None:
        self.hub = hub
        self.principal = principal
        self.capacity = capacity
        self.disconnect_after = disconnect_after
        self.queue: deque[str | _Gap] = deque()
        self.wakeup: Callable[[], None] | None = None
        self.on_close: Callable[[Subscription], None] | None = None
        self.closed = False
        self.close_reason: str | None = None
        self.delivered = 0
        self.dropped_total = 0
        self._dropped_run = 0
        self._events = 0  # events in the queue (gap markers take no room)
        self._cache: dict[str, bool] = {}
        self.set_topics(topics)

    def set_topics(self, topics: Iterable[str]) -> None:
        self.topics = check_topics(topics)
        self._match = topic_matcher(self.topics)
        self._cache.clear()

    def wants(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            if len(self._cache) > 1024:
                self._cache.clear()
            hit = self._cache[name] = self._match(name)
        return hit

    def _offer(self, text: str) -> bool:
        q = self.queue
        was_empty = not q
        if self._events < self.capacity:
            q.append(text)
            self._events += 1
            self._dropped_run = 0
            self.delivered += 1
        else:
            if q and isinstance(q[-1], _Gap):
                q[-1].count += 1
            else:
                q.append(_Gap())
            self.dropped_total += 1
            self._dropped_run += 1
            self.hub._dropped += 1
            if self.disconnect_after is not None and self._dropped_run >= self.disconnect_after:
                self.close("slow consumer")
                return False
        if was_empty and self.wakeup is not None:
            self.wakeup()
        return True

    def take(self, limit: int = 256) -> list[str]:
        """Up to ``limit`` ready notifications (JSON texts), oldest first."""
        out: list[str] = []
        q = self.queue
        while q and len(out) < limit:
            item = q.popleft()
            if isinstance(item, _Gap):
                out.append(dumps(notification("events.dropped", {"count": item.count, "total": self.dropped_total,
                                                                 "time": self.hub.clock()})))
            else:
                out.append(item)
                self._events -= 1
        if out:
            self._dropped_run = 0
        return out

    def __len__(self) -> int:
        return len(self.queue)

    def close(self, reason: str = "closed") -> None:
        """Stop delivery; the transport's ``on_close`` hears why. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.queue.clear()
        self._events = 0
        self.hub._remove(self)
        if self.on_close is not None:
            self.on_close(self)
        if self.wakeup is not None:
            self.wakeup()


@dataclass(frozen=True)
class HubStatistics:
    subscribers: int
    published: int
    deliveries: int
    dropped: int
    slow_consumers_closed: int


class EventHub:
    """Fans events out to subscriptions. ``clock``: Unix time, injectable for tests."""

    def __init__(self, *, capacity: int = 1024, disconnect_after: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity: must be an int >= 1, got {capacity!r}")
        if disconnect_after is not None and (not isinstance(disconnect_after, int) or disconnect_after < 1):
            raise ValueError(f"disconnect_after: must be an int >= 1 or None, got {disconnect_after!r}")
        self.capacity = capacity
        self.disconnect_after = capacity if disconnect_after is None else disconnect_after
        self.clock = clock
        self._subs: list[Subscription] = []
        self._published = 0
        self._deliveries = 0
        self._dropped = 0
        self._slow_closed = 0
        # call -> agents it belongs to (offer .. end of wrap-up), for agents' event filtering
        self._call_agents: OrderedDict[str, set[str]] = OrderedDict()
        self._crm_data: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._ivr_data: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.listeners: list[Callable[[str, Mapping[str, Any]], None]] = []

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, principal: Principal, topics: Iterable[str]) -> Subscription:
        sub = Subscription(self, principal, tuple(topics), self.capacity, self.disconnect_after)
        self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            if sub.close_reason == "slow consumer":
                self._slow_closed += 1

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs)

    # ------------------------------------------------------------------ screen pop data

    def attach_data(self, call: str, data: Mapping[str, Any], *, merge: bool = True) -> dict[str, Any]:
        """CRM data for ``call`` (``call.set_data``); shown in its ``call.offered``. Returns the data now held."""
        held = dict(self._crm_data.get(call, {})) if merge else {}
        held.update(data)
        self._remember(self._crm_data, call, held)
        return held

    def call_data(self, call: str) -> dict[str, Any]:
        return dict(self._crm_data.get(call, {}))

    @staticmethod
    def _remember(table: OrderedDict, key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > _CALLS_TRACKED:
            table.popitem(last=False)

    def owns_call(self, agent: str, call: str) -> bool:
        """Whether ``call`` is currently ``agent``'s (offered to it, connected, in its wrap-up)."""
        return agent in self._call_agents.get(call, ())

    # ------------------------------------------------------------------ publishing

    def publish(self, event: Any) -> int:
        """Send ``event`` to every subscription that wants it; returns how many queued it.

        ``event``: an object with ``to_dict()`` (the ACD's records) or a
        mapping, with ``type`` (the event name) and its fields.
        """
        payload = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        name = payload.get("type")
        if not isinstance(name, str) or not EVENT_NAME.fullmatch(name):
            raise ValueError(f"event: type must be a dotted event name, got {name!r}")
        payload = to_json(payload)
        payload.setdefault("time", self.clock())
        call = payload.get("call")
        agent = payload.get("agent")
        self._track(name, payload, call, agent)
        self._published += 1
        for listener in self.listeners:
            listener(name, payload)
        text: str | None = None
        queued = 0
        for sub in list(self._subs):
            if sub.closed or not sub.wants(name) or not self._visible(sub.principal, name, call, agent):
                continue
            if text is None:
                text = dumps(notification(name, payload))
            if sub._offer(text):
                queued += 1
        self._deliveries += queued
        if name in _ENDING_EVENTS:
            self._forget(name, call, agent)
        return queued

    def _track(self, name: str, payload: dict, call: Any, agent: Any) -> None:
        if not isinstance(call, str):
            return
        if name == "call.ivr":
            collected = payload.get("data") or {}
            digits = payload.get("digits")
            merged = dict(self._ivr_data.get(call, {}))
            if isinstance(collected, Mapping):
                merged.update(collected)
            if digits is not None and isinstance(payload.get("node"), str):
                merged[payload["node"]] = digits
            self._remember(self._ivr_data, call, merged)
        elif name == "call.offered":
            crm = self._crm_data.get(call)
            if crm:
                payload["data"] = {**(payload.get("data") or {}), **crm}
            ivr = self._ivr_data.get(call)
            if ivr and "ivr" not in payload:
                payload["ivr"] = dict(ivr)
        if isinstance(agent, str) and name in ("call.offered", "call.answered", "call.dialing",
                                               "call.callback_dialed", "call.originated"):
            owners = self._call_agents.get(call)
            if owners is None:
                self._remember(self._call_agents, call, {agent})
            else:
                owners.add(agent)

    def _forget(self, name: str, call: Any, agent: Any) -> None:
        if not isinstance(call, str):
            return
        if name == "call.wrapup_ended" and isinstance(agent, str):
            owners = self._call_agents.get(call)
            if owners is not None:
                owners.discard(agent)
                if not owners:
                    del self._call_agents[call]
        elif name in ("call.abandoned", "call.exited", "call.rejected"):
            self._call_agents.pop(call, None)
        if name in ("call.ended", "call.abandoned", "call.exited", "call.rejected"):
            self._crm_data.pop(call, None)
            self._ivr_data.pop(call, None)

    def _visible(self, principal: Principal, name: str, call: Any, agent: Any) -> bool:
        role = principal.role
        if role in _ALL_EVENTS_ROLES:
            return True
        if role == "viewer":
            return name.startswith(("agent.", "queue."))
        if role == "agent":
            if name.startswith("queue."):
                return True
            me = principal.agent
            if agent == me:
                return True
            return isinstance(call, str) and me in self._call_agents.get(call, ())
        return False

    def statistics(self) -> HubStatistics:
        return HubStatistics(subscribers=len(self._subs), published=self._published, deliveries=self._deliveries,
                             dropped=self._dropped, slow_consumers_closed=self._slow_closed)
