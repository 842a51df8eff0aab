"""The contract metrics, computed from the ACD event log (one definition, everywhere).

Pure functions over a sequence of :mod:`orchestrator.acd.events` records (or
their ``to_dict()`` form, as the event log stores them). Reports, the
wallboard, ``queue.stats`` and Prometheus all call these, so the numbers
agree. Definitions (CONTRACT.md, "Metrics"):

* **Service level (T)** = answered within T / (answered + abandoned after T).
  Short abandons (wait under ``short_abandon``, 5 s by default) are
  excluded; both thresholds are configurable, per queue too.
* **ASA** = mean queue time of answered calls.
* **AHT** = mean of talk + hold + wrap-up over handled calls (calls whose
  wrap-up has ended).
* **Abandon rate** = abandoned / queued; callbacks are not abandons.
* **Occupancy** = handling time / (handling time + available idle time), where
  handling is time ``on_call`` or in ``wrap_up`` and idle is time
  ``available``; ringing, break and the rest count in neither.

Choices where CONTRACT.md is silent, kept explicit here:

* A call's wait is counted from when it first entered the ACD (an overflowed
  call keeps its wait). Each queue a call visits counts it as queued; its
  outcome (answered, abandoned...) counts in the queue where it happened.
* Answered callbacks are counted (``callbacks_answered``) but are not in the
  service level nor the ASA: the caller was not holding the line.
* Calls are attributed to the interval (and the ``start``/``end`` window) in
  which they were queued; agent state time is split at interval boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.acd.events import Event, event_from_dict

__all__ = [
    "AgentMetrics",
    "CallRecord",
    "IntervalMetrics",
    "QueueMetrics",
    "QueueStats",
    "agent_metrics",
    "call_records",
    "interval_metrics",
    "occupancy",
    "queue_metrics",
    "queue_stats",
    "service_level",
]

HANDLING_STATES = ("on_call", "wrap_up")
IDLE_STATES = ("available",)


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """One call's visit to one queue, rebuilt from events.

    ``outcome``: "answered", "abandoned", "overflowed", "exited" (timeout,
    leave-empty, voicemail...), "rejected", "callback-failed", "callback-cancelled"
    or "open" (no outcome yet in the events given).
    """

    call: str
    queue: str
    queued_at: float
    outcome: str
    wait: float | None
    agent: str | None = None
    callback: bool = False
    talk: float | None = None
    hold: float | None = None
    wrapup: float | None = None

    @property
    def handle_time(self) -> float | None:
        """talk + hold + wrap-up once the wrap-up has ended, else None."""
        if self.talk is None or self.wrapup is None:
            return None
        return self.talk + (self.hold or 0.0) + self.wrapup


@dataclass(frozen=True, kw_only=True)
class QueueMetrics:
    """A queue's contract metrics over a set of calls (None: no calls to compute it from)."""

    queue: str
    queued: int
    answered: int
    answered_within: int
    abandoned: int
    short_abandoned: int
    abandoned_after: int
    callbacks_requested: int
    callbacks_answered: int
    overflowed: int
    exited: int
    rejected: int
    handled: int
    service_level: float | None
    asa: float | None
    aht: float | None
    abandon_rate: float | None
    mean_talk: float | None
    mean_hold: float | None
    mean_wrapup: float | None
    max_wait: float | None
    sl_threshold: float
    short_abandon: float


@dataclass(frozen=True, kw_only=True)
class AgentMetrics:
    """An agent's work: calls handled, AHT, time in each state, occupancy."""

    agent: str
    handled: int
    talk: float
    hold: float
    wrapup: float
    aht: float | None
    ring_no_answer: int
    state_time: Mapping[str, float]
    occupancy: float | None


@dataclass(frozen=True, kw_only=True)
class IntervalMetrics:
    """Metrics of one queue over one interval [start, start + length)."""

    start: float
    length: float
    queue: QueueMetrics
    occupancy: float | None


def _as_events(events: Iterable) -> list[Event]:
    out = []
    for e in events:
        if isinstance(e, Event):
            out.append(e)
        elif isinstance(e, Mapping):
            out.append(event_from_dict(dict(e)))
        # effects and anything else are not events: skipped on purpose
    return out


def _per_queue(value: float | Mapping[str, float], queue: str, name: str) -> float:
    if isinstance(value, Mapping):
        got = value.get(queue, value.get("*"))
        if got is None:
            raise ValueError(f"{name}: no value for queue {queue!r} (add it or a '*' default)")
        return float(got)
    return float(value)


def call_records(events: Iterable) -> list[CallRecord]:
    """Rebuild one :class:`CallRecord` per (call, queue visit), in order of queueing."""
    records: list[dict] = []
    current: dict[str, dict] = {}       # call id -> its open record (latest queue visit)
    by_call_last: dict[str, dict] = {}  # call id -> its last record (for talk/hold/wrap-up)
    for e in _as_events(events):
        kind = e.type
        if kind == "call.queued":
            rec = {"call": e.call, "queue": e.queue, "queued_at": e.at, "outcome": "open", "wait": None,
                   "agent": None, "callback": False, "talk": None, "hold": None, "wrapup": None}
            records.append(rec)
            current[e.call] = rec
            by_call_last[e.call] = rec
            continue
        if kind == "call.rejected":
            rec = current.get(e.call)
            if rec is None or rec["queue"] != e.queue:
                # refused before joining: a record of its own
                rec = {"call": e.call, "queue": e.queue, "queued_at": e.at, "outcome": "rejected", "wait": None,
                       "agent": None, "callback": False, "talk": None, "hold": None, "wrapup": None}
                records.append(rec)
            continue
        rec = current.get(getattr(e, "call", None)) if hasattr(e, "call") else None
        if kind == "call.callback_requested" and rec is not None:
            rec["callback"] = True
        elif kind == "call.answered" and rec is not None:
            rec.update(outcome="answered", wait=e.wait, agent=e.agent, callback=e.callback or rec["callback"])
            current.pop(e.call, None)
        elif kind == "call.abandoned" and rec is not None:
            rec.update(outcome="abandoned", wait=e.wait)
            current.pop(e.call, None)
        elif kind == "call.overflowed" and rec is not None:
            rec.update(outcome="overflowed", wait=e.wait)
            current.pop(e.call, None)
        elif kind == "call.exited" and rec is not None:
            outcome = "callback-cancelled" if e.reason == "callback-cancelled" else "exited"
            rec.update(outcome=outcome, wait=e.wait)
            current.pop(e.call, None)
        elif kind == "call.callback_failed" and rec is not None and e.final:
            rec.update(outcome="callback-failed")
            current.pop(e.call, None)
        elif kind == "call.ended":
            last = by_call_last.get(e.call)
            if last is not None:
                last.update(talk=e.talk, hold=e.hold)
        elif kind == "call.wrapup_ended":
            last = by_call_last.get(e.call)
            if last is not None:
                last.update(wrapup=e.wrapup)
    return [CallRecord(**r) for r in records]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _queue_metrics(queue: str, recs: list[CallRecord], sl_threshold: float, short_abandon: float) -> QueueMetrics:
    queued = [r for r in recs if r.outcome != "rejected"]
    answered_live = [r for r in queued if r.outcome == "answered" and not r.callback]
    callbacks_answered = sum(1 for r in queued if r.outcome == "answered" and r.callback)
    abandoned = [r for r in queued if r.outcome == "abandoned"]
    short = [r for r in abandoned if r.wait < short_abandon]
    abandoned_after = [r for r in abandoned if r.wait >= short_abandon and r.wait > sl_threshold]
    within = sum(1 for r in answered_live if r.wait <= sl_threshold)
    sl_den = len(answered_live) + len(abandoned_after)
    handled = [r for r in queued if r.handle_time is not None]
    waits = [r.wait for r in answered_live] + [r.wait for r in abandoned]
    return QueueMetrics(
        queue=queue,
        queued=len(queued),
        answered=len(answered_live) + callbacks_answered,
        answered_within=within,
        abandoned=len(abandoned),
        short_abandoned=len(short),
        abandoned_after=len(abandoned_after),
        callbacks_requested=sum(1 for r in queued if r.callback),
        callbacks_answered=callbacks_answered,
        overflowed=sum(1 for r in queued if r.outcome == "overflowed"),
        exited=sum(1 for r in queued if r.outcome == "exited"),
        rejected=len(recs) - len(queued),
        handled=len(handled),
        service_level=within / sl_den if sl_den else None,
        asa=_mean([r.wait for r in answered_live]),
        aht=_mean([r.handle_time for r in handled]),
        abandon_rate=len(abandoned) / len(queued) if queued else None,
        mean_talk=_mean([r.talk for r in handled]),
        mean_hold=_mean([r.hold or 0.0 for r in handled]),
        mean_wrapup=_mean([r.wrapup for r in handled]),
        max_wait=max(waits) if waits else None,
        sl_threshold=sl_threshold,
        short_abandon=short_abandon,
    )


def service_level(waits_answered: Iterable[float], waits_abandoned: Iterable[float], *, threshold: float = 20.0,
                  short_abandon: float = 5.0) -> float | None:
    """Service level from raw waits: answered within T / (answered + abandoned after T, not short)."""
    answered = list(waits_answered)
    late = [w for w in waits_abandoned if w >= short_abandon and w > threshold]
    den = len(answered) + len(late)
    return sum(1 for w in answered if w <= threshold) / den if den else None


def _check_window(start, end) -> None:
    for name, v in (("start", start), ("end", end)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise ValueError(f"{name}: must be a finite time or None, got {v!r}")
    if start is not None and end is not None and end < start:
        raise ValueError(f"end: must not be before start ({end} < {start})")


def queue_metrics(events: Iterable, *, sl_threshold: float | Mapping[str, float] = 20.0,
                  short_abandon: float | Mapping[str, float] = 5.0, start: float | None = None,
                  end: float | None = None) -> dict[str, QueueMetrics]:
    """Per-queue metrics of the calls queued in [start, end).

    ``sl_threshold`` (T) and ``short_abandon`` are seconds, or a mapping
    queue -> seconds (``"*"`` is the default).
    """
    _check_window(start, end)
    groups: dict[str, list[CallRecord]] = {}
    for r in call_records(events):
        if (start is None or r.queued_at >= start) and (end is None or r.queued_at < end):
            groups.setdefault(r.queue, []).append(r)
    return {q: _queue_metrics(q, recs, _per_queue(sl_threshold, q, "sl_threshold"),
                              _per_queue(short_abandon, q, "short_abandon"))
            for q, recs in sorted(groups.items())}


def _state_spans(events: list[Event], end: float | None) -> dict[str, list[tuple[float, float, str]]]:
    """(begin, end, state) spans per agent from agent.state events; the last span ends at ``end``."""
    last: dict[str, tuple[float, str]] = {}
    spans: dict[str, list[tuple[float, float, str]]] = {}
    final = end
    for e in events:
        if e.type != "agent.state":
            continue
        prev = last.get(e.agent)
        if prev is not None and e.at > prev[0]:
            spans.setdefault(e.agent, []).append((prev[0], e.at, prev[1]))
        spans.setdefault(e.agent, [])
        last[e.agent] = (e.at, e.state)
    if final is None:
        final = max((e.at for e in events), default=0.0)
    for agent, (t, state) in last.items():
        if final > t:
            spans[agent].append((t, final, state))
    return spans


def occupancy(state_time: Mapping[str, float]) -> float | None:
    """Handling time / (handling time + available idle time), from seconds per state."""
    handling = sum(state_time.get(s, 0.0) for s in HANDLING_STATES)
    idle = sum(state_time.get(s, 0.0) for s in IDLE_STATES)
    return handling / (handling + idle) if handling + idle > 0 else None


def agent_metrics(events: Iterable, *, start: float | None = None, end: float | None = None) -> dict[str, AgentMetrics]:
    """Per-agent metrics: state time clipped to [start, end); calls whose wrap-up ended in it."""
    _check_window(start, end)
    evs = _as_events(events)
    spans = _state_spans(evs, end)
    lo = -math.inf if start is None else start
    hi = math.inf if end is None else end
    out: dict[str, AgentMetrics] = {}
    talk: dict[str, float] = {}
    hold: dict[str, float] = {}
    ended_talk: dict[str, tuple[float, float]] = {}
    handled: dict[str, list[float]] = {}
    wrap: dict[str, float] = {}
    rona: dict[str, int] = {}
    for e in evs:
        inside = lo <= e.at < hi
        if e.type == "call.ended":
            ended_talk[e.call] = (e.talk, e.hold)
        elif e.type == "call.wrapup_ended" and inside:
            t, h = ended_talk.get(e.call, (0.0, 0.0))
            talk[e.agent] = talk.get(e.agent, 0.0) + t
            hold[e.agent] = hold.get(e.agent, 0.0) + h
            wrap[e.agent] = wrap.get(e.agent, 0.0) + e.wrapup
            handled.setdefault(e.agent, []).append(t + h + e.wrapup)
        elif e.type == "call.offer_ended" and e.reason == "timeout" and inside:
            rona[e.agent] = rona.get(e.agent, 0) + 1
    agents = set(spans) | set(handled) | set(rona)
    for agent in sorted(agents):
        st: dict[str, float] = {}
        for b, f, state in spans.get(agent, ()):
            b2, f2 = max(b, lo), min(f, hi)
            if f2 > b2:
                st[state] = st.get(state, 0.0) + (f2 - b2)
        hs = handled.get(agent, [])
        out[agent] = AgentMetrics(agent=agent, handled=len(hs), talk=talk.get(agent, 0.0), hold=hold.get(agent, 0.0),
                                  wrapup=wrap.get(agent, 0.0), aht=_mean(hs), ring_no_answer=rona.get(agent, 0),
                                  state_time=st, occupancy=occupancy(st))
    return out


def interval_metrics(events: Iterable, *, interval: float = 900.0, start: float | None = None,
                     end: float | None = None, sl_threshold: float | Mapping[str, float] = 20.0,
                     short_abandon: float | Mapping[str, float] = 5.0) -> list[IntervalMetrics]:
    """Per (interval, queue) metrics; intervals are aligned on multiples of ``interval``.

    ``occupancy`` is over all agents' time in the interval.
    """
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0 \
            or not math.isfinite(interval):
        raise ValueError(f"interval: must be a positive number of seconds, got {interval!r}")
    _check_window(start, end)
    evs = _as_events(events)
    recs = [r for r in call_records(evs)
            if (start is None or r.queued_at >= start) and (end is None or r.queued_at < end)]
    groups: dict[tuple[float, str], list[CallRecord]] = {}
    for r in recs:
        slot = math.floor(r.queued_at / interval) * interval
        groups.setdefault((slot, r.queue), []).append(r)
    spans = _state_spans(evs, end)
    occ_cache: dict[float, float | None] = {}
    out = []
    for (slot, queue), rs in sorted(groups.items()):
        if slot not in occ_cache:
            st: dict[str, float] = {}
            for agent_spans in spans.values():
                for b, f, state in agent_spans:
                    b2, f2 = max(b, slot), min(f, slot + interval)
                    if f2 > b2:
                        st[state] = st.get(state, 0.0) + (f2 - b2)
            occ_cache[slot] = occupancy(st)
        qm = _queue_metrics(queue, rs, _per_queue(sl_threshold, queue, "sl_threshold"),
                            _per_queue(short_abandon, queue, "short_abandon"))
        out.append(IntervalMetrics(start=slot, length=float(interval), queue=qm, occupancy=occ_cache[slot]))
    return out


@dataclass(frozen=True, kw_only=True)
class QueueStats:
    """What ``queue.stats`` returns: the live state and the metrics over a window of events."""

    queue: str
    waiting: int
    longest_wait: float
    agents_by_state: Mapping[str, int]
    ewt: float | None
    service_level: float | None
    asa: float | None
    aht: float | None
    abandon_rate: float | None
    queued: int
    answered: int
    abandoned: int

    def to_dict(self) -> dict:
        """JSON-ready form (the JSON-RPC result)."""
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["agents_by_state"] = dict(self.agents_by_state)
        return out


def queue_stats(snapshot, events: Iterable, *, start: float | None = None, end: float | None = None) -> QueueStats:
    """``queue.stats``: an :class:`~orchestrator.acd.QueueSnapshot` (live) plus metrics of ``events``.

    The metrics use the queue's own service-level threshold and short-abandon
    time, carried by the snapshot; ``start``/``end`` pick the window (e.g. today).
    """
    qm = queue_metrics(events, sl_threshold=snapshot.sl_threshold, short_abandon=snapshot.short_abandon,
                       start=start, end=end).get(snapshot.queue)
    return QueueStats(
        queue=snapshot.queue, waiting=snapshot.waiting, longest_wait=snapshot.longest_wait,
        agents_by_state=snapshot.agents_by_state, ewt=snapshot.ewt,
        service_level=qm.service_level if qm else None, asa=qm.asa if qm else None, aht=qm.aht if qm else None,
        abandon_rate=qm.abandon_rate if qm else None, queued=qm.queued if qm else 0,
        answered=qm.answered if qm else 0, abandoned=qm.abandoned if qm else 0)
