"""A discrete-event simulator that runs the real routing policy on a simulated clock.

Callers arrive (Poisson, with piecewise-constant hourly rates for a day
profile), wait, may give up (patience distribution), may take a callback
when offered one; simulated agents log in, answer after a delay or let it
ring (RONA), talk for a handle time drawn from a distribution, and come back
from a RONA break after a while. Everything in between - routing, offers,
wrap-up, escalation, timers - is the real :class:`orchestrator.acd.Acd`,
driven through its public inputs exactly as the Trio service will drive it.

The output is the ACD's own event stream; its metrics come from
:mod:`orchestrator.metrics` over those events (one definition everywhere).
Same seed, same configuration: same events, bit for bit.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator import metrics as _metrics
from orchestrator.acd import Acd, AgentConfig, QueueConfig
from orchestrator.acd import effects as fx
from orchestrator.acd import events as ev

__all__ = ["Arrivals", "SimResult", "Simulation", "constant", "exponential", "lognormal"]

Sampler = Callable[[random.Random], float]


def exponential(mean: float) -> Sampler:
    """Exponential durations with this mean (s)."""
    if not mean > 0:
        raise ValueError(f"mean: must be > 0, got {mean!r}")
    rate = 1.0 / mean
    return lambda rng: rng.expovariate(rate)


def constant(value: float) -> Sampler:
    """Always ``value`` seconds."""
    if not value >= 0:
        raise ValueError(f"value: must be >= 0, got {value!r}")
    return lambda rng: value


def lognormal(mean: float, cv: float) -> Sampler:
    """Log-normal durations with this mean and coefficient of variation (real handle times look like this)."""
    if not mean > 0 or not cv > 0:
        raise ValueError(f"mean, cv: must be > 0, got {mean!r}, {cv!r}")
    sigma2 = math.log(1.0 + cv * cv)
    mu = math.log(mean) - sigma2 / 2
    sigma = math.sqrt(sigma2)
    return lambda rng: rng.lognormvariate(mu, sigma)


@dataclass(frozen=True, kw_only=True)
class Arrivals:
    """Poisson arrivals into ``queue``.

    ``rate``: calls per hour, constant, or a day profile as
    ``[(start_s, calls_per_hour), ...]`` (piecewise constant, sorted).
    ``priority`` and ``skills`` are given to every call of this stream.
    """

    queue: str
    rate: float | Sequence[tuple[float, float]]
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)

    def segments(self) -> list[tuple[float, float]]:
        if isinstance(self.rate, (int, float)):
            if self.rate < 0:
                raise ValueError(f"rate: must be >= 0 calls per hour, got {self.rate!r}")
            return [(0.0, float(self.rate))]
        segs = [(float(t), float(r)) for t, r in self.rate]
        if not segs or any(r < 0 for _, r in segs) or any(b[0] <= a[0] for a, b in itertools.pairwise(segs)):
            raise ValueError("rate: a profile is a non-empty list of (start, calls_per_hour), starts increasing")
        return segs


@dataclass(frozen=True, kw_only=True)
class SimResult:
    """The event stream of a run, counters, and the metrics computed from the events."""

    events: tuple[ev.Event, ...]
    until: float
    arrivals: int
    effects: Mapping[str, int]
    refused_answers: int

    def queue_metrics(self, **kwargs) -> dict[str, _metrics.QueueMetrics]:
        """:func:`orchestrator.metrics.queue_metrics` over this run's events."""
        return _metrics.queue_metrics(self.events, **kwargs)

    def agent_metrics(self, **kwargs) -> dict[str, _metrics.AgentMetrics]:
        """:func:`orchestrator.metrics.agent_metrics` over this run's events (to the end of the run)."""
        kwargs.setdefault("end", self.until)
        return _metrics.agent_metrics(self.events, **kwargs)


# Simulation event kinds, in tie-break order at equal times.
_ARRIVAL, _ANSWER, _END, _ABANDON, _AGENT_BACK, _CB_RESULT = range(6)


class Simulation:
    """Run ``Acd(queues, agents)`` against simulated callers and agents.

    ``talk``: talk time sampler (wrap-up comes from the queue/agent config).
    ``patience``: caller patience sampler, or None (nobody abandons).
    ``answer_delay``: time an agent takes to answer (None: at once); ``no_answer``: probability
    an agent lets an offer ring out (RONA); ``rona_return``: how long a RONA'd
    agent stays on break before making itself available again.
    ``callback_accept``: probability a caller offered a callback takes it;
    ``callback_reach``: probability a callback reaches the caller.
    """

    def __init__(self, queues: Sequence[QueueConfig], agents: Sequence[AgentConfig],
                 arrivals: Sequence[Arrivals], *, talk: Sampler, patience: Sampler | None = None,
                 answer_delay: Sampler | None = None, no_answer: float = 0.0, rona_return: float = 60.0,
                 callback_accept: float = 0.0, callback_reach: float = 1.0, dial_time: float = 10.0,
                 seed: int = 1) -> None:
        for name, p in (("no_answer", no_answer), ("callback_accept", callback_accept),
                        ("callback_reach", callback_reach)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}: must be a probability in [0, 1], got {p!r}")
        if not arrivals:
            raise ValueError("arrivals: give at least one arrival stream")
        self.acd = Acd(queues, agents, rng=random.Random(seed ^ 0x5EED))
        self._agent_ids = [a.id for a in agents]
        self._arrivals = list(arrivals)
        self._segments = [a.segments() for a in self._arrivals]
        self._talk = talk
        self._patience = patience
        self._answer_delay = answer_delay if answer_delay is not None else constant(0.0)
        self._no_answer = no_answer
        self._rona_return = rona_return
        self._callback_accept = callback_accept
        self._callback_reach = callback_reach
        self._dial_time = dial_time
        self._rng = random.Random(seed)
        self._heap: list[tuple] = []
        self._seq = 0
        self._events: list[ev.Event] = []
        self._effects: dict[str, int] = {}
        self._connected: set[str] = set()
        self._gone: set[str] = set()
        self._cancelled: set[int] = set()
        self._n_arrivals = 0
        self._refused = 0

    def _push(self, at: float, kind: int, payload) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, kind, self._seq, payload))

    def _next_arrival(self, index: int, now: float) -> float | None:
        segs = self._segments[index]
        t = now
        while True:
            i = max(k for k, (start, _) in enumerate(segs) if start <= t) if t >= segs[0][0] else -1
            if i < 0:
                t = segs[0][0]
                continue
            rate = segs[i][1] / 3600.0
            seg_end = segs[i + 1][0] if i + 1 < len(segs) else math.inf
            if rate <= 0:
                if seg_end == math.inf:
                    return None
                t = seg_end
                continue
            nxt = t + self._rng.expovariate(rate)
            if nxt < seg_end:
                return nxt
            t = seg_end  # memoryless: restart the draw at the rate change

    def _apply(self, outputs: list, now: float) -> None:
        for out in outputs:
            if isinstance(out, ev.Event):
                self._events.append(out)
                if isinstance(out, ev.AgentState) and out.state == "break" and out.reason == "rona":
                    self._push(now + self._rona_return, _AGENT_BACK, out.agent)
                continue
            name = type(out).__name__
            self._effects[name] = self._effects.get(name, 0) + 1
            if isinstance(out, fx.Offer):
                if self._rng.random() >= self._no_answer:
                    self._push(now + self._answer_delay(self._rng), _ANSWER, out.offer)
            elif isinstance(out, fx.CancelOffer):
                self._cancelled.add(out.offer)
            elif isinstance(out, fx.Bridge):
                self._connected.add(out.call)
                self._push(now + self._talk(self._rng), _END, out.call)
            elif isinstance(out, fx.RefuseAnswer):
                self._refused += 1
            elif isinstance(out, fx.Route):
                self._gone.add(out.call)
            elif isinstance(out, fx.OfferCallbackOption):
                if out.call not in self._gone and self._rng.random() < self._callback_accept:
                    self._gone.add(out.call)  # the caller hangs up after choosing the callback
                    self._apply(self.acd.callback_requested(out.call, "cb-" + out.call, now), now)
            elif isinstance(out, fx.DialCallback):
                reached = self._rng.random() < self._callback_reach
                self._push(now + self._dial_time, _CB_RESULT, (out.call, reached))

    def run(self, until: float, *, login_at: float = 0.0) -> SimResult:
        """Simulate from ``login_at`` (every agent logs in, device registered) until ``until`` s.

        Arrivals stop at ``until``; calls still in progress then are left as
        they are (their records are "open" in the metrics).
        """
        acd = self.acd
        for agent in self._agent_ids:
            self._apply(acd.agent_login(agent, "dev-" + agent, login_at), login_at)
            self._apply(acd.device_registered("dev-" + agent, login_at), login_at)
        for i in range(len(self._arrivals)):
            t = self._next_arrival(i, login_at)
            if t is not None:
                self._push(t, _ARRIVAL, i)
        heap = self._heap
        while True:
            deadline = acd.next_deadline()
            top = heap[0][0] if heap else math.inf
            if deadline is not None and deadline <= top:
                if deadline > until:
                    break
                self._apply(acd.tick(deadline), deadline)
                continue
            if top > until:
                break
            now, kind, _seq, payload = heapq.heappop(heap)
            if kind == _ARRIVAL:
                stream = self._arrivals[payload]
                self._n_arrivals += 1
                call = f"c{self._n_arrivals}"
                self._apply(acd.call_arrived(call, stream.queue, now, priority=stream.priority,
                                             caller=f"+1555{self._n_arrivals:07d}", skills=stream.skills), now)
                if self._patience is not None:
                    self._push(now + self._patience(self._rng), _ABANDON, call)
                nxt = self._next_arrival(payload, now)
                if nxt is not None:
                    self._push(nxt, _ARRIVAL, payload)
            elif kind == _ANSWER:
                if payload not in self._cancelled:
                    self._apply(acd.offer_answered(payload, now), now)
            elif kind == _END:
                self._apply(acd.call_ended(payload, now), now)
            elif kind == _ABANDON:
                if payload not in self._connected and payload not in self._gone:
                    self._apply(acd.call_abandoned(payload, now), now)
            elif kind == _AGENT_BACK:
                snap = acd.agent_snapshot(payload)
                if snap.state == "break" and snap.reason == "rona":
                    self._apply(acd.set_state(payload, "available", now), now)
            elif kind == _CB_RESULT:
                call, reached = payload
                if reached:
                    self._apply(acd.callback_answered(call, now), now)
                else:
                    self._apply(acd.callback_failed(call, now), now)
        return SimResult(events=tuple(self._events), until=until, arrivals=self._n_arrivals,
                         effects=dict(self._effects), refused_answers=self._refused)
