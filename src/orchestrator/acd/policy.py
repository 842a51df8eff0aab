"""The ACD routing policy: a plain object that takes events and returns decisions.

No trio, no I/O, no clock, no threads (DESIGN rule 4): every input carries
``now`` (seconds on any monotonic scale), and every input returns a list of
outputs in order - :mod:`~orchestrator.acd.events` records for the event log
and :mod:`~orchestrator.acd.effects` records for the service to carry out.
Timers are not effects: the service sleeps until :meth:`Acd.next_deadline`
and then calls :meth:`Acd.tick`.

How a decision avoids scanning agents and calls
-----------------------------------------------
Agents and calls meet in *buckets*. A bucket is one queue plus one
requirement: ``{skill: minimum}`` and a penalty cap. A queue has a bucket for
its own requirement and one per widening escalation step (made when the
queue is added), plus one per distinct per-call requirement (made on first
use, the one time its members are scanned). Each agent knows the buckets it
is eligible for. Each bucket keeps two ordered indexes (sorted lists):

* ``avail``: routable agents, ordered by the queue strategy's key - e.g.
  (penalty, idle since) for longest-idle, (penalty, -proficiency, idle since)
  for skills, (penalty, calls taken, ...) for fewest-calls;
* ``waiting``: waiting calls, ordered by (-priority, first queued, arrival).

Invariant: no routable agent is eligible for a waiting call (it would have
been offered it). So a call arriving into a bucket takes the head of
``avail`` (or waits), and an agent becoming routable takes the best head of
``waiting`` over its own buckets - across all its queues, which gives
longest-waiting-caller-first (after priority) for agents in several queues.
Each decision costs a few O(log n) index operations, independent of the
number of agents and calls; :attr:`AcdStatistics.inspections` counts the
agent/call records a decision looks at, and a test shows it does not grow.

Offers are reservations: an agent being offered a call (``ringing``) is in no
index, so it is never offered a second call. Ring-all offers one call to
every routable agent of the lowest penalty tier; the first answer wins and
the others are cancelled; an answer to a dead offer gets ``RefuseAnswer``.
A call whose offer fails (ring timeout = RONA, reject, busy) goes back to
its bucket with its original key: it keeps its place.

A decision leaves no garbage behind: what it allocates is either live state
or freed by reference counting before it returns. Ring timers are not in the
timer heap (where an answered offer, and the call it holds, would stay until
its timeout) but in one FIFO per ring timeout that an offer leaves when it
ends; ended offers are remembered in a fixed ring buffer. So a steady
centre does not grow Python's heap and gives the cyclic garbage collector no
reason to run (bench/test_bench_acd.py counts its collections).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sortedcontainers import SortedList

from . import effects as fx
from . import events as ev
from .config import AgentConfig, CallbackMode, Destination, JoinRule, QueueConfig, Strategy
from .errors import ConflictError, NotFoundError

__all__ = ["AGENT_STATES", "Acd", "AcdStatistics", "AgentSnapshot", "CallSnapshot", "QueueSnapshot"]

AGENT_STATES = ("offline", "available", "break", "ringing", "reserved", "on_call", "wrap_up", "unregistered", "busy")

# Call states.
_WAITING = "waiting"
_OFFERING = "offering"
_RESERVED = "reserved"      # caller-first callback: agent held, caller being dialled
_DIALING = "dialing"        # agent-first callback: agent connected, caller being dialled
_CONNECTED = "connected"
_RETRY = "retry"            # callback waiting to retry dialling the caller
_DONE = "done"

# Timer kinds.
_T_AGENT, _T_CALL = 1, 2  # heap timers (ring timers are in Acd._rings)

_ENDED_OFFERS_KEPT = 65536  # a power of two: an offer id's slot is ``id & (_ENDED_OFFERS_KEPT - 1)``
_MAX_OVERFLOW_HOPS = 8
_AHT_ALPHA = 0.05
_ABANDON_BETA = 0.01


@dataclass(frozen=True, kw_only=True)
class AcdStatistics:
    """Counters of the policy (``inspections``: agent/call records looked at by decisions)."""

    calls_waiting: int
    calls_offering: int
    calls_connected: int
    agents_logged_in: int
    agents_routable: int
    decisions: int
    inspections: int
    ignored_inputs: int


@dataclass(frozen=True, kw_only=True)
class QueueSnapshot:
    """Live state of a queue (the live half of ``queue.stats``)."""

    queue: str
    waiting: int
    longest_wait: float
    agents_by_state: Mapping[str, int]
    ewt: float | None
    handle_time_estimate: float
    abandon_rate_estimate: float
    sl_threshold: float
    short_abandon: float


@dataclass(frozen=True, kw_only=True)
class AgentSnapshot:
    """An agent as ``agent.get`` shows it."""

    agent: str
    state: str
    reason: str | None
    device: str | None
    call: str | None
    queue: str | None
    routable: bool
    skills: Mapping[str, int]
    queues: Mapping[str, int]


@dataclass(frozen=True, kw_only=True)
class CallSnapshot:
    """A call the ACD holds, as ``call.get`` shows its queue part."""

    call: str
    queue: str
    state: str
    priority: int
    wait: float
    position: int | None
    ewt: float | None
    agent: str | None
    callback: str | None
    skills: Mapping[str, int] = field(default_factory=dict)


class _Device:
    __slots__ = ("agent", "busy", "name", "registered")

    def __init__(self, name: str) -> None:
        self.name = name
        self.registered = False
        self.busy = False
        self.agent: _Agent | None = None


class _Agent:
    __slots__ = (
        "activity",
        "buckets",
        "call",
        "calls",
        "cfg",
        "device",
        "entries",
        "id",
        "idle_since",
        "keep_idle",
        "logged",
        "logged_in",
        "member_of",
        "not_before",
        "offer",
        "presence",
        "queues",
        "reason",
        "routable",
        "seq",
        "skills",
        "staffed",
        "state",
        "talk",
        "timer_version",
        "wrap_start",
        "wrap_until",
    )

    def __init__(self, cfg: AgentConfig, seq: int) -> None:
        self.id = cfg.id
        self.cfg = cfg
        self.seq = seq
        self.skills = dict(cfg.skills)
        self.queues = dict(cfg.queues)
        self.buckets: list[_Bucket] = []
        self.member_of: list[_Queue] = []
        self.entries: list[tuple[_Bucket, tuple]] = []
        self.routable = False
        self.logged_in = False
        self.device: _Device | None = None
        self.presence = "offline"
        self.reason: str | None = None
        self.activity: str | None = None
        self.call: _Call | None = None
        self.offer: _Offer | None = None
        self.not_before = -math.inf
        self.idle_since = 0.0
        self.keep_idle = False
        self.state = "offline"
        self.staffed = False
        self.logged = False
        self.wrap_start = 0.0
        self.wrap_until = 0.0
        self.timer_version = 0
        self.calls: dict[str, int] = {}
        self.talk: dict[str, float] = {}


class _Queue:
    __slots__ = (
        "ab_count",
        "ab_exposure",
        "aht",
        "aht_n",
        "base",
        "buckets",
        "cfg",
        "members",
        "name",
        "rr_last",
        "state_counts",
        "strategy",
        "waiting",
    )

    def __init__(self, cfg: QueueConfig) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.strategy = cfg.strategy
        self.members: dict[str, _Agent] = {}
        self.buckets: dict[tuple, _Bucket] = {}
        self.base: _Bucket | None = None  # the bucket of the queue's own requirement
        self.rr_last = -1
        self.state_counts = dict.fromkeys(AGENT_STATES, 0)
        self.waiting = 0
        self.aht = cfg.expected_handle_time
        self.aht_n = 0
        self.ab_count = 0.0
        self.ab_exposure = 0.0


class _Bucket:
    __slots__ = ("avail", "logged", "max_penalty", "queue", "skills", "staffed", "waiting")

    def __init__(self, queue: _Queue, skills: tuple[tuple[str, int], ...], max_penalty: int | None) -> None:
        self.queue = queue
        self.skills = skills
        self.max_penalty = max_penalty
        self.avail = SortedList()
        self.waiting = SortedList()
        self.staffed = 0
        self.logged = 0

    def eligible(self, agent: _Agent) -> bool:
        penalty = agent.queues.get(self.queue.name)
        if penalty is None or (self.max_penalty is not None and penalty > self.max_penalty):
            return False
        have = agent.skills
        for skill, minimum in self.skills:
            if have.get(skill, 0) < minimum:
                return False
        return True


class _Offer:
    __slots__ = ("active", "agent", "at", "call", "due", "end_reason", "id", "ring_all", "ring_timeout", "tseq")

    def __init__(self, offer_id: int, call: _Call, agent: _Agent, at: float, ring_all: bool) -> None:
        self.id = offer_id
        self.call = call
        self.agent = agent
        self.at = at
        self.ring_all = ring_all
        self.active = True
        self.end_reason = ""
        self.ring_timeout = 0.0  # the key of its ring timer's FIFO (Acd._rings)
        self.due = 0.0
        self.tseq = 0


class _Call:
    __slots__ = (
        "agent",
        "answered_at",
        "attempt",
        "bucket",
        "callback",
        "caller",
        "caller_connected",
        "data",
        "hold_started",
        "hold_total",
        "hops",
        "id",
        "key",
        "last_offer",
        "max_penalty",
        "next_announce",
        "next_comfort",
        "offered_at",
        "offers",
        "own_skills",
        "priority",
        "queue",
        "queued_at",
        "req_skills",
        "retry_at",
        "seq",
        "state",
        "step",
        "timer_version",
        "waiting_since",
    )

    def __init__(self, call_id: str, seq: int, priority: int, caller: str | None, data, own_skills: dict,
                 now: float) -> None:
        self.id = call_id
        self.seq = seq
        self.queue: _Queue | None = None
        self.priority = priority
        self.caller = caller
        self.data = data
        self.own_skills = own_skills
        self.req_skills: dict[str, int] = {}
        self.max_penalty: int | None = None
        self.bucket: _Bucket | None = None
        self.key: tuple = ()
        self.state = _WAITING
        self.offers: dict[int, _Offer] = {}
        self.agent: _Agent | None = None
        self.waiting_since = now
        self.queued_at = now
        self.step = 0
        self.next_announce = math.inf
        self.next_comfort = math.inf
        self.callback: str | None = None
        self.caller_connected = True
        self.attempt = 0
        self.retry_at = math.inf
        self.answered_at = 0.0
        self.offered_at = 0.0
        self.hold_started: float | None = None
        self.hold_total = 0.0
        self.timer_version = 0
        self.hops = 0
        self.last_offer = -1


def _digamma(x: float) -> float:
    """psi(x) for x > 0: recurrence up to x >= 10, then the asymptotic series (error < 1e-14)."""
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132))))
    return result + math.log(x) - 0.5 * inv - series


def expected_wait(ahead: int, servers: int, handle_time: float, abandon_rate: float) -> float | None:
    """Expected wait of a caller with ``ahead`` callers before it (Erlang-A queue-length predictor).

    ``servers`` agents each finish a call every ``handle_time`` s on average
    (exponential), and each caller ahead gives up at ``abandon_rate`` per s.
    The caller moves up one place at rate ``servers/handle_time + k*abandon_rate``
    (k callers ahead) and is served at the next departure once at the head:
    E[W] = sum_{k=0..ahead} 1 / (s*mu + k*theta), computed in O(1) with the
    digamma function. ``None`` when no agent can serve (``servers == 0``).
    """
    if not handle_time > 0:
        raise ValueError(f"handle_time: must be > 0 s, got {handle_time!r}")
    if servers <= 0:
        return None
    rate = servers / handle_time
    if abandon_rate <= 1e-12 * rate:
        return (ahead + 1) / rate
    a = rate / abandon_rate
    if ahead < 8:
        return sum(1.0 / (rate + k * abandon_rate) for k in range(ahead + 1))
    return (_digamma(a + ahead + 1) - _digamma(a)) / abandon_rate


class Acd:
    """The routing policy of every queue and agent of one node.

    ``Acd(queues, agents, rng=random.Random(seed))``; feed it inputs, each with
    ``now``; execute the :mod:`effects` it returns and log its :mod:`events`.
    ``rng`` is used only by the ``random`` strategy.
    """

    def __init__(self, queues: Iterable[QueueConfig] = (), agents: Iterable[AgentConfig] = (), *,
                 rng: random.Random | None = None) -> None:
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, _Agent] = {}
        self._devices: dict[str, _Device] = {}
        self._calls: dict[str, _Call] = {}
        self._offers: dict[int, _Offer] = {}
        # The recently ended offers (agent id, device, why it ended), to refuse a late answer with
        # the reason: a ring buffer indexed by offer id (ids are consecutive), in parallel lists of
        # shared strings - no dict to rehash, no object made per offer.
        self._ended_id = [0] * _ENDED_OFFERS_KEPT
        self._ended_agent: list[str] = [""] * _ENDED_OFFERS_KEPT
        self._ended_device: list[str | None] = [None] * _ENDED_OFFERS_KEPT
        self._ended_reason: list[str] = [""] * _ENDED_OFFERS_KEPT
        self._timers: list[tuple] = []
        # Ring timers, out of the heap: one FIFO (offer id -> offer) per ring timeout. ``now`` never
        # goes back, so each FIFO is in deadline order, and an offer that ends leaves its FIFO at
        # once - a timer entry never keeps an answered offer (and its call) alive until it is due.
        self._rings: dict[float, OrderedDict[int, _Offer]] = {}
        self._tseq = 0
        self._call_seq = 0
        self._offer_seq = 0
        self._now = -math.inf
        self._rng = rng if rng is not None else random.Random(0)
        self.decisions = 0
        self.inspections = 0
        self.ignored_inputs = 0
        for q in queues:
            self.add_queue(q)
        for a in agents:
            self.add_agent(a)

    # ------------------------------------------------------------------ config

    def add_queue(self, cfg: QueueConfig) -> None:
        """Add a queue (its own and its escalation steps' buckets are built now)."""
        if not isinstance(cfg, QueueConfig):
            raise ValueError(f"cfg: expected a QueueConfig, got {type(cfg).__name__}")
        if cfg.name in self._queues:
            raise ConflictError(f"queue {cfg.name!r} already exists")
        queue = _Queue(cfg)
        self._queues[cfg.name] = queue
        for agent in self._agents.values():
            if cfg.name in agent.queues:
                queue.members[agent.id] = agent
                agent.member_of.append(queue)
                self._count_state(queue, agent.state, +1)
        skills = dict(cfg.skills)
        max_penalty = cfg.max_penalty
        queue.base = self._bucket(queue, skills, max_penalty)
        for step in cfg.escalation:
            if step.action == "widen":
                skills = {**skills, **step.skills} if step.skills is not None else skills
                max_penalty = step.max_penalty if step.max_penalty is not None else max_penalty
                self._bucket(queue, skills, max_penalty)

    def add_agent(self, cfg: AgentConfig) -> None:
        """Add an agent (logged out). Its queues must exist or be added later."""
        if not isinstance(cfg, AgentConfig):
            raise ValueError(f"cfg: expected an AgentConfig, got {type(cfg).__name__}")
        if cfg.id in self._agents:
            raise ConflictError(f"agent {cfg.id!r} already exists")
        agent = _Agent(cfg, len(self._agents))
        self._agents[cfg.id] = agent
        for name in agent.queues:
            queue = self._queues.get(name)
            if queue is None:
                continue
            queue.members[agent.id] = agent
            agent.member_of.append(queue)
            self._count_state(queue, agent.state, +1)
            for bucket in queue.buckets.values():
                if bucket.eligible(agent):
                    agent.buckets.append(bucket)

    def update_agent(self, cfg: AgentConfig, now: float) -> list:
        """Replace an agent's skills, queues, wrap-up and devices (a config reload).

        Routing uses the new configuration at once (the agent may take a
        waiting call it is now eligible for); a call in progress continues.
        Waiting calls left with no staffed agent follow their leave-empty rule.
        """
        self._advance(now)
        if not isinstance(cfg, AgentConfig):
            raise ValueError(f"cfg: expected an AgentConfig, got {type(cfg).__name__}")
        a = self._agent(cfg.id)
        if a.device is not None and cfg.devices is not None and a.device.name not in cfg.devices:
            raise ConflictError(f"devices: agent {cfg.id!r} is logged in on {a.device.name!r}, not in the new list")
        out: list = []
        if a.routable:
            self._unindex(a)
            a.keep_idle = True  # a reload is not a reason to lose one's place in longest-idle
        old_buckets = a.buckets
        for bucket in old_buckets:
            bucket.staffed -= a.staffed
            bucket.logged -= a.logged
        for queue in a.member_of:
            queue.state_counts[a.state] -= 1
            del queue.members[a.id]
        a.cfg = cfg
        a.skills = dict(cfg.skills)
        a.queues = dict(cfg.queues)
        a.buckets = []
        a.member_of = []
        for name in a.queues:
            queue = self._queues.get(name)
            if queue is None:
                continue
            queue.members[a.id] = a
            a.member_of.append(queue)
            queue.state_counts[a.state] += 1
            for bucket in queue.buckets.values():
                if bucket.eligible(a):
                    a.buckets.append(bucket)
                    bucket.staffed += a.staffed
                    bucket.logged += a.logged
        self._refresh(a, now, out)
        a.keep_idle = False
        for bucket in old_buckets:
            rule = bucket.queue.cfg.leave_empty
            if bucket.waiting and rule is not JoinRule.NEVER and self._is_empty(bucket, rule):
                self._leave_empty(bucket, now, out)
        return out

    # ------------------------------------------------------------------ helpers

    def _advance(self, now: float) -> None:
        if type(now) is float and now >= self._now and now - now == 0.0:  # the common case: finite, forward
            self._now = now
            return
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise ValueError(f"now: must be a finite number of seconds, got {now!r}")
        if now < self._now:
            raise ValueError(f"now: time went backwards ({now} < {self._now})")
        self._now = now

    def _agent(self, agent_id: str) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFoundError(f"agent: no agent {agent_id!r}")
        return agent

    def _device(self, name: str) -> _Device:
        if not isinstance(name, str) or not name:
            raise ValueError(f"device: must be a non-empty string, got {name!r}")
        dev = self._devices.get(name)
        if dev is None:
            dev = self._devices[name] = _Device(name)
        return dev

    def _bucket(self, queue: _Queue, skills: Mapping[str, int], max_penalty: int | None) -> _Bucket:
        items = tuple(sorted(skills.items()))
        sig = (items, max_penalty)
        bucket = queue.buckets.get(sig)
        if bucket is not None:
            return bucket
        # The one scan of a queue's members: a requirement seen for the first time.
        bucket = queue.buckets[sig] = _Bucket(queue, items, max_penalty)
        for agent in queue.members.values():
            self.inspections += 1
            if bucket.eligible(agent):
                agent.buckets.append(bucket)
                bucket.staffed += agent.staffed
                bucket.logged += agent.logged
                if agent.routable:
                    key = self._key(agent, bucket)
                    bucket.avail.add(key)
                    agent.entries.append((bucket, key))
        return bucket

    def _key(self, agent: _Agent, bucket: _Bucket) -> tuple:
        queue = bucket.queue
        penalty = agent.queues[queue.name]
        strategy = queue.strategy
        if strategy is Strategy.LONGEST_IDLE:
            return (penalty, agent.idle_since, agent.seq, agent)
        if strategy is Strategy.SKILLS:
            score = 0
            have = agent.skills
            for skill, _minimum in bucket.skills:
                score += have.get(skill, 0)
            return (penalty, -score, agent.idle_since, agent.seq, agent)
        if strategy is Strategy.FEWEST_CALLS:
            return (penalty, agent.calls.get(queue.name, 0), agent.idle_since, agent.seq, agent)
        if strategy is Strategy.LEAST_TALK_TIME:
            return (penalty, agent.talk.get(queue.name, 0.0), agent.idle_since, agent.seq, agent)
        return (penalty, agent.seq, agent)  # sequential, round-robin, ring-all, random

    def _schedule(self, at: float, kind: int, obj) -> None:
        obj.timer_version += 1
        self._tseq += 1
        heapq.heappush(self._timers, (at, self._tseq, kind, obj, obj.timer_version))

    def _count_state(self, queue: _Queue, state: str, delta: int) -> None:
        queue.state_counts[state] += delta

    def _wrapup_for(self, agent: _Agent, queue: _Queue) -> float:
        return agent.cfg.wrapup if agent.cfg.wrapup is not None else queue.cfg.wrapup

    # ------------------------------------------------------------------ agent state

    def _derive_state(self, agent: _Agent) -> str:
        if not agent.logged_in:
            return "offline"
        if agent.activity is not None:
            return agent.activity
        if agent.presence == "break":
            return "break"
        dev = agent.device
        if dev is None or not dev.registered:
            return "unregistered"
        if dev.busy:
            return "busy"
        return "available"

    def _sync_state(self, agent: _Agent, now: float, out: list) -> None:
        state = self._derive_state(agent)
        if state != agent.state:
            previous = agent.state
            agent.state = state
            for queue in agent.member_of:
                counts = queue.state_counts
                counts[previous] -= 1
                counts[state] += 1
            call = agent.call if state in ("ringing", "reserved", "on_call", "wrap_up") else None
            if state == "ringing" and agent.offer is not None:
                call = agent.offer.call
            out.append(ev.AgentState(
                at=now, agent=agent.id, state=state, previous=previous,
                reason=agent.reason if state == "break" else None,
                device=agent.device.name if agent.device is not None else None,
                call=call.id if call is not None else None,
                queue=call.queue.name if call is not None and call.queue is not None else None))
        dev = agent.device
        registered = dev is not None and dev.registered
        logged = agent.logged_in
        staffed = logged and agent.presence == "available" and registered
        if staffed != agent.staffed or logged != agent.logged:
            dstaffed = int(staffed) - int(agent.staffed)
            dlogged = int(logged) - int(agent.logged)
            agent.staffed = staffed
            agent.logged = logged
            emptied = []
            for bucket in agent.buckets:
                bucket.staffed += dstaffed
                bucket.logged += dlogged
                if bucket.waiting and bucket.queue.cfg.leave_empty is not JoinRule.NEVER \
                        and self._is_empty(bucket, bucket.queue.cfg.leave_empty):
                    emptied.append(bucket)
            for bucket in emptied:
                self._leave_empty(bucket, now, out)

    def _is_empty(self, bucket: _Bucket, rule: JoinRule) -> bool:
        if rule is JoinRule.NO_LOGGED_IN:
            return bucket.logged == 0
        if rule is JoinRule.NO_STAFFED:
            return bucket.staffed == 0
        return False

    def _unindex(self, agent: _Agent) -> None:
        for bucket, key in agent.entries:
            bucket.avail.remove(key)
        agent.entries.clear()
        agent.routable = False

    def _refresh(self, agent: _Agent, now: float, out: list) -> None:
        """Re-derive ``agent``: index it, or hand it the best waiting call, or drop it from the indexes."""
        dev = agent.device
        ready = (agent.logged_in and agent.presence == "available" and agent.activity is None
                 and dev is not None and dev.registered and not dev.busy)
        if ready and now < agent.not_before:
            self._schedule(agent.not_before, _T_AGENT, agent)
            ready = False
        if ready and not agent.routable:
            if agent.keep_idle:
                agent.keep_idle = False
            else:
                agent.idle_since = now
            best = None
            best_bucket = None
            for bucket in agent.buckets:
                waiting = bucket.waiting
                if waiting:
                    self.inspections += 1
                    head = waiting[0]
                    if best is None or head < best:
                        best = head
                        best_bucket = bucket
            if best is not None:
                self.decisions += 1
                call = best[3]
                best_bucket.waiting.pop(0)  # best is its head
                best_bucket.queue.waiting -= 1
                self._offer(call, [agent], now, out)
            else:
                agent.routable = True
                entries = agent.entries
                for bucket in agent.buckets:
                    key = self._key(agent, bucket)
                    bucket.avail.add(key)
                    entries.append((bucket, key))
        elif not ready and agent.routable:
            self._unindex(agent)
        self._sync_state(agent, now, out)

    # ------------------------------------------------------------------ offers

    def _pick(self, bucket: _Bucket) -> list[_Agent]:
        avail = bucket.avail
        if not avail:
            return []
        queue = bucket.queue
        strategy = queue.strategy
        if strategy is Strategy.RING_ALL:
            tier = avail[0][0]
            limit = queue.cfg.ring_all_max or len(avail)
            picked = []
            for key in avail.islice(0, limit):
                if key[0] != tier:
                    break
                picked.append(key[-1])
            self.inspections += len(picked)
            return picked
        self.inspections += 1
        if strategy is Strategy.ROUND_ROBIN:
            tier = avail[0][0]
            i = avail.bisect_left((tier, queue.rr_last + 1))
            if i < len(avail) and avail[i][0] == tier:
                return [avail[i][-1]]
            return [avail[0][-1]]
        if strategy is Strategy.RANDOM:
            tier = avail[0][0]
            end = avail.bisect_left((tier + 1,))
            return [avail[self._rng.randrange(end)][-1]]
        return [avail[0][-1]]

    def _offer(self, call: _Call, agents: list[_Agent], now: float, out: list) -> None:
        """Reserve ``agents`` for ``call`` and ring them (or, caller-first callback, dial the caller)."""
        queue = call.queue
        cfg = queue.cfg
        if call.callback is not None and not call.caller_connected \
                and cfg.callback_mode is CallbackMode.CALLER_FIRST:
            agent = agents[0]
            if agent.routable:
                self._unindex(agent)
            call.state = _RESERVED
            call.agent = agent
            call.offered_at = now
            agent.activity = "reserved"
            agent.call = call
            call.attempt += 1
            out.append(ev.CallbackDialed(at=now, call=call.id, queue=queue.name, agent=agent.id,
                                         number=call.callback, attempt=call.attempt))
            out.append(fx.DialCallback(call=call.id, queue=queue.name, agent=agent.id, device=agent.device.name,
                                       number=call.callback, attempt=call.attempt, agent_connected=False))
            self._sync_state(agent, now, out)
            return
        call.state = _OFFERING
        call.offered_at = now
        ring_all = queue.strategy is Strategy.RING_ALL
        callback = call.callback if not call.caller_connected else None
        for agent in agents:
            if agent.routable:
                self._unindex(agent)
            self._offer_seq += 1
            offer = _Offer(self._offer_seq, call, agent, now, ring_all)
            self._offers[offer.id] = offer
            call.offers[offer.id] = offer
            call.last_offer = offer.id
            agent.activity = "ringing"
            agent.offer = offer
            device = agent.device.name
            out.append(ev.CallOffered(at=now, call=call.id, queue=queue.name, agent=agent.id, device=device,
                                      offer=offer.id, caller=call.caller, ring_all=ring_all,
                                      callback=callback is not None, data=call.data))
            out.append(fx.Offer(offer=offer.id, call=call.id, queue=queue.name, agent=agent.id, device=device,
                                ring_timeout=cfg.ring_timeout, caller=call.caller, ring_all=ring_all,
                                callback=callback, data=call.data))
            self._tseq += 1
            offer.tseq = self._tseq
            offer.due = now + cfg.ring_timeout
            offer.ring_timeout = cfg.ring_timeout
            ring = self._rings.get(cfg.ring_timeout)
            if ring is None:
                ring = self._rings[cfg.ring_timeout] = OrderedDict()
            ring[offer.id] = offer
            self._sync_state(agent, now, out)
        if queue.strategy is Strategy.ROUND_ROBIN:
            queue.rr_last = agents[-1].seq

    def _end_offer(self, offer: _Offer, reason: str, now: float, out: list, *, cancel: bool) -> _Agent:
        offer.active = False
        offer.end_reason = reason
        call = offer.call
        call.offers.pop(offer.id, None)
        self._offers.pop(offer.id, None)
        self._rings[offer.ring_timeout].pop(offer.id, None)
        self._remember_offer(offer)
        agent = offer.agent
        agent.activity = None
        agent.offer = None
        device = agent.device.name if agent.device is not None else ""
        out.append(ev.CallOfferEnded(at=now, call=call.id, queue=call.queue.name, agent=agent.id,
                                     offer=offer.id, reason=reason, ring=now - offer.at))
        if cancel:
            out.append(fx.CancelOffer(offer=offer.id, call=call.id, agent=agent.id, device=device, reason=reason))
        return agent

    def _remember_offer(self, offer: _Offer) -> None:
        agent = offer.agent
        slot = offer.id & (_ENDED_OFFERS_KEPT - 1)
        self._ended_id[slot] = offer.id
        self._ended_agent[slot] = agent.id
        self._ended_device[slot] = agent.device.name if agent.device is not None else None
        self._ended_reason[slot] = offer.end_reason

    def _fail_offer(self, offer: _Offer, reason: str, now: float, out: list) -> None:
        """An offer failed (timeout, reject, busy, agent gone): the call keeps its place."""
        call = offer.call
        agent = self._end_offer(offer, reason, now, out, cancel=reason != "rejected" and reason != "busy")
        cfg = call.queue.cfg
        if reason == "timeout":
            if cfg.rona_break and not offer.ring_all:
                agent.presence = "break"
                agent.reason = "rona"
        elif reason == "rejected":
            agent.not_before = now + cfg.reject_delay
        elif reason == "busy":
            agent.not_before = now + cfg.busy_delay
        if not call.offers:
            if call.callback is not None and call.caller_connected and call.agent is agent:
                # Caller-first callback: the caller is on the line now, the agent did not answer.
                call.agent = None
            self._requeue(call, now, out)
        self._refresh(agent, now, out)

    # ------------------------------------------------------------------ calls in queues

    def _place_new(self, call: _Call, queue: _Queue, now: float, out: list, *, overflow_from: str | None) -> None:
        """Enter ``queue``: check length and join-empty, announce, then offer or wait."""
        cfg = queue.cfg
        call.queue = queue
        call.queued_at = now
        call.step = 0
        call.max_penalty = cfg.max_penalty
        if call.own_skills:
            call.req_skills = {**cfg.skills, **call.own_skills}
            bucket = call.bucket = self._bucket(queue, call.req_skills, call.max_penalty)
        else:
            call.req_skills = dict(cfg.skills)
            bucket = call.bucket = queue.base
        call.key = (-call.priority, call.waiting_since, call.seq, call)
        if cfg.max_length is not None and queue.waiting >= cfg.max_length:
            self._reject(call, "full", cfg.on_full, now, out)
            return
        if cfg.join_empty is not JoinRule.NEVER and self._is_empty(bucket, cfg.join_empty):
            self._reject(call, "empty", cfg.on_empty, now, out)
            return
        position, ewt = self._position_ewt(call)
        out.append(ev.CallQueued(at=now, call=call.id, queue=queue.name, priority=call.priority,
                                 caller=call.caller, position=position, ewt=ewt,
                                 skills=bucket.skills, overflow_from=overflow_from))
        out.append(fx.StartHoldMusic(call=call.id, queue=queue.name, music=cfg.music))
        call.next_announce = now + cfg.announce_every if cfg.announce_every else math.inf
        call.next_comfort = now + cfg.comfort_every if cfg.comfort_every else math.inf
        self._route_or_wait(call, now, out)

    def _route_or_wait(self, call: _Call, now: float, out: list) -> None:
        bucket = call.bucket
        call.state = _WAITING
        if bucket.avail:
            self.decisions += 1
            self._offer(call, self._pick(bucket), now, out)
        else:
            bucket.waiting.add(call.key)
            bucket.queue.waiting += 1
            self._schedule_call(call)

    def _requeue(self, call: _Call, now: float, out: list) -> None:
        """Back to its bucket with its original key (keeps its place); due timers run first."""
        call.state = _WAITING
        call.bucket.waiting.add(call.key)
        call.queue.waiting += 1
        self._run_call_timers(call, now, out)
        if call.state == _WAITING and call.bucket.avail:
            self._take_waiting(call)
            self.decisions += 1
            self._offer(call, self._pick(call.bucket), now, out)

    def _take_waiting(self, call: _Call) -> None:
        call.bucket.waiting.remove(call.key)
        call.queue.waiting -= 1
        call.timer_version += 1

    def _reject(self, call: _Call, reason: str, dest: Destination, now: float, out: list) -> None:
        queue = call.queue
        if dest.kind == "queue" and call.hops < _MAX_OVERFLOW_HOPS and dest.target in self._queues:
            call.hops += 1
            out.append(ev.CallOverflowed(at=now, call=call.id, queue=queue.name, to_queue=dest.target,
                                         wait=now - call.waiting_since, reason=reason))
            self._place_new(call, self._queues[dest.target], now, out, overflow_from=queue.name)
            return
        if dest.kind == "queue":
            dest = Destination(kind="hangup")
        out.append(ev.CallRejected(at=now, call=call.id, queue=queue.name, reason=reason, destination=str(dest)))
        out.append(fx.Route(call=call.id, queue=queue.name, destination=str(dest), reason=reason))
        self._finish(call)

    def _exit(self, call: _Call, reason: str, dest: Destination, now: float, out: list) -> None:
        """A waiting call leaves its queue (already taken out of its bucket)."""
        queue = call.queue
        self._note_wait(queue, now - call.queued_at, abandoned=False)
        if dest.kind == "queue" and call.hops < _MAX_OVERFLOW_HOPS and dest.target in self._queues:
            call.hops += 1
            out.append(ev.CallOverflowed(at=now, call=call.id, queue=queue.name, to_queue=dest.target,
                                         wait=now - call.waiting_since, reason=reason))
            self._place_new(call, self._queues[dest.target], now, out, overflow_from=queue.name)
            return
        if dest.kind == "queue":
            dest = Destination(kind="hangup")
        out.append(ev.CallExited(at=now, call=call.id, queue=queue.name, reason=reason, destination=str(dest),
                                 wait=now - call.waiting_since))
        out.append(fx.Route(call=call.id, queue=queue.name, destination=str(dest), reason=reason))
        self._finish(call)

    def _finish(self, call: _Call) -> None:
        call.state = _DONE
        call.timer_version += 1
        call.key = ()  # the key holds the call: break the cycle so it is freed without the cyclic GC
        self._calls.pop(call.id, None)

    def _note_wait(self, queue: _Queue, wait: float, *, abandoned: bool) -> None:
        keep = 1.0 - _ABANDON_BETA
        queue.ab_exposure = queue.ab_exposure * keep + max(wait, 0.0)
        queue.ab_count = queue.ab_count * keep + (1.0 if abandoned else 0.0)

    def _leave_empty(self, bucket: _Bucket, now: float, out: list) -> None:
        cfg = bucket.queue.cfg
        for key in list(bucket.waiting):
            call = key[3]
            self.inspections += 1
            if call.callback is not None:
                continue  # a callback keeps its place: the caller is not on the line
            self._take_waiting(call)
            self._exit(call, "leave-empty", cfg.on_empty, now, out)

    def _position_ewt(self, call: _Call) -> tuple[int, float | None]:
        queue = call.queue
        ahead = 0
        key = call.key
        for bucket in queue.buckets.values():
            if bucket.waiting:
                ahead += bucket.waiting.bisect_left(key)
        if call.bucket.avail:
            return ahead + 1, 0.0
        ab_rate = queue.ab_count / queue.ab_exposure if queue.ab_exposure > 0 else 0.0
        return ahead + 1, expected_wait(ahead, call.bucket.staffed, queue.aht, ab_rate)

    # ------------------------------------------------------------------ call timers

    def _schedule_call(self, call: _Call) -> None:
        cfg = call.queue.cfg
        due = math.inf
        if call.state == _WAITING:
            if call.callback is None:
                if cfg.max_wait is not None:
                    due = call.queued_at + cfg.max_wait
                due = min(due, call.next_announce, call.next_comfort)
            if call.step < len(cfg.escalation):
                due = min(due, call.queued_at + cfg.escalation[call.step].after)
        elif call.state == _RETRY:
            due = call.retry_at
        if due < math.inf:
            self._schedule(due, _T_CALL, call)

    def _run_call_timers(self, call: _Call, now: float, out: list) -> None:
        queue = call.queue
        cfg = queue.cfg
        if call.state == _RETRY:
            if call.retry_at <= now:
                self._requeue(call, now, out)
            else:
                self._schedule_call(call)
            return
        steps = cfg.escalation
        while call.state == _WAITING and call.step < len(steps) and call.queued_at + steps[call.step].after <= now:
            step = steps[call.step]
            call.step += 1
            self._escalate(call, step, call.step, now, out)
            if call.queue is not queue:
                return  # overflowed: the new queue scheduled it
        if call.state != _WAITING:
            return
        if call.callback is None:
            if cfg.max_wait is not None and call.queued_at + cfg.max_wait <= now:
                self._take_waiting(call)
                self._exit(call, "timeout", cfg.on_timeout, now, out)
                return
            if call.next_announce <= now:
                position, ewt = self._position_ewt(call)
                out.append(fx.Announce(call=call.id, queue=queue.name, position=position, ewt=ewt))
                while call.next_announce <= now:
                    call.next_announce += cfg.announce_every
            if call.next_comfort <= now:
                out.append(fx.PlayComfort(call=call.id, queue=queue.name, prompt=cfg.comfort_prompt))
                while call.next_comfort <= now:
                    call.next_comfort += cfg.comfort_every
        self._schedule_call(call)

    def _escalate(self, call: _Call, step, index: int, now: float, out: list) -> None:
        queue = call.queue
        action = step.action
        if call.callback is not None and action in ("exit", "offer-callback"):
            return  # a callback is not sent to voicemail nor offered a callback again
        if action == "exit":
            out.append(ev.CallEscalated(at=now, call=call.id, queue=queue.name, step=index, action=action,
                                        priority=call.priority, skills=call.bucket.skills,
                                        max_penalty=call.max_penalty))
            self._take_waiting(call)
            self._exit(call, "escalation", step.destination, now, out)
            return
        if action == "overflow":
            out.append(ev.CallEscalated(at=now, call=call.id, queue=queue.name, step=index, action=action,
                                        priority=call.priority, skills=call.bucket.skills,
                                        max_penalty=call.max_penalty))
            self._take_waiting(call)
            self._exit(call, "overflow", step.destination, now, out)
            return
        if action == "offer-callback":
            position, ewt = self._position_ewt(call)
            out.append(ev.CallEscalated(at=now, call=call.id, queue=queue.name, step=index, action=action,
                                        priority=call.priority, skills=call.bucket.skills,
                                        max_penalty=call.max_penalty))
            out.append(fx.OfferCallbackOption(call=call.id, queue=queue.name, position=position, ewt=ewt))
            return
        # widen or priority: the call moves within the queue's indexes.
        self._take_waiting(call)
        if action == "priority":
            call.priority += step.priority
            call.key = (-call.priority, call.waiting_since, call.seq, call)
        else:
            if step.skills is not None:
                call.req_skills = {**call.req_skills, **step.skills}
            if step.max_penalty is not None:
                call.max_penalty = step.max_penalty
            call.bucket = self._bucket(queue, call.req_skills, call.max_penalty)
        out.append(ev.CallEscalated(at=now, call=call.id, queue=queue.name, step=index, action=action,
                                    priority=call.priority, skills=call.bucket.skills,
                                    max_penalty=call.max_penalty))
        call.state = _WAITING
        if call.bucket.avail:
            self.decisions += 1
            self._offer(call, self._pick(call.bucket), now, out)
        else:
            call.bucket.waiting.add(call.key)
            queue.waiting += 1

    # ------------------------------------------------------------------ timers

    def _next_ring(self) -> _Offer | None:
        """The ringing offer whose ring timer is due first (ties: the one scheduled first)."""
        first = None
        for ring in self._rings.values():  # one FIFO per distinct ring timeout: a handful
            if ring:
                offer = next(iter(ring.values()))
                if first is None or (offer.due, offer.tseq) < (first.due, first.tseq):
                    first = offer
        return first

    def _heap_top(self) -> tuple | None:
        """The live heap timer due first; stale entries on top are dropped."""
        timers = self._timers
        while timers:
            top = timers[0]
            _at, _seq, kind, obj, version = top
            if obj.timer_version == version and (kind != _T_CALL or obj.state != _DONE):
                return top
            heapq.heappop(timers)
        return None

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called (``None``: no timer pending)."""
        top = self._heap_top()
        ring = self._next_ring()
        if ring is not None and (top is None or ring.due < top[0]):
            return ring.due
        return top[0] if top is not None else None

    def tick(self, now: float) -> list:
        """Run every timer due at ``now``: ring timeouts (RONA), wrap-up ends, delays, queue timers."""
        self._advance(now)
        out: list = []
        timers = self._timers
        while True:
            # Timers run in (deadline, scheduling order): the heap's and the ring FIFOs' merged.
            ring = self._next_ring()
            if ring is not None and ring.due <= now and (not timers or (ring.due, ring.tseq) < timers[0][:2]):
                self._fail_offer(ring, "timeout", now, out)
                continue
            if not timers or timers[0][0] > now:
                break
            _at, _seq, kind, obj, version = heapq.heappop(timers)
            if obj.timer_version != version:
                continue
            if kind == _T_AGENT:
                if obj.activity == "wrap_up" and obj.wrap_until <= now:
                    self._end_wrapup(obj, now, out)
                else:
                    self._refresh(obj, now, out)
            elif obj.state != _DONE:
                self._run_call_timers(obj, now, out)
        return out

    # ------------------------------------------------------------------ inputs: calls

    def call_arrived(self, call: str, queue: str, now: float, *, priority: int = 0, caller: str | None = None,
                     skills: Mapping[str, int] | None = None, data: Mapping | None = None) -> list:
        """A caller enters ``queue`` (from the IVR or the dial plan).

        ``priority``: higher first (VIP); ``skills``: extra requirement of
        this call (``{"french": 3}``), added to the queue's own.
        """
        self._advance(now)
        if not isinstance(call, str) or not call:
            raise ValueError(f"call: must be a non-empty string, got {call!r}")
        if call in self._calls:
            raise ConflictError(f"call: {call!r} is already in the ACD")
        q = self._queues.get(queue)
        if q is None:
            raise NotFoundError(f"queue: no queue {queue!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f"priority: must be an int, got {priority!r}")
        own = dict(skills or {})
        for skill, level in own.items():
            if not isinstance(skill, str) or not isinstance(level, int) or not 1 <= level <= 5:
                raise ValueError(f"skills[{skill!r}]: proficiency must be an int from 1 to 5, got {level!r}")
        if data is not None and not isinstance(data, Mapping):
            raise ValueError(f"data: must be a mapping (IVR/CRM data), got {type(data).__name__}")
        self._call_seq += 1
        c = _Call(call, self._call_seq, priority, caller, MappingProxyType(dict(data)) if data else None, own, now)
        self._calls[call] = c
        out: list = []
        self._place_new(c, q, now, out, overflow_from=None)
        return out

    def _get_call(self, call: str) -> _Call | None:
        c = self._calls.get(call)
        if c is None:
            self.ignored_inputs += 1
        return c

    def call_abandoned(self, call: str, now: float) -> list:
        """The caller hung up before being connected (waiting or while ringing an agent)."""
        self._advance(now)
        c = self._get_call(call)
        if c is None:
            return []
        if c.state in (_CONNECTED, _DIALING):
            return self._call_ended(c, now)
        out: list = []
        queue = c.queue
        freed: list[_Agent] = []
        ringing = c.state == _OFFERING
        if c.state == _WAITING:
            self._take_waiting(c)
        elif c.state == _OFFERING:
            for offer in list(c.offers.values()):
                freed.append(self._end_offer(offer, "caller-abandoned", now, out, cancel=True))
                offer.agent.keep_idle = True
        elif c.state == _RESERVED:
            agent = c.agent
            agent.activity = None
            agent.call = None
            agent.keep_idle = True
            freed.append(agent)
        if c.callback is not None:
            out.append(ev.CallExited(at=now, call=c.id, queue=queue.name, reason="callback-cancelled",
                                     destination="none", wait=now - c.waiting_since))
        else:
            self._note_wait(queue, now - c.queued_at, abandoned=True)
            out.append(ev.CallAbandoned(at=now, call=c.id, queue=queue.name, wait=now - c.waiting_since,
                                        ringing=ringing))
        self._finish(c)
        for agent in freed:
            self._refresh(agent, now, out)
        return out

    def call_withdrawn(self, call: str, now: float, *, reason: str = "ivr-timeout") -> list:
        """The call leaves the ACD for the IVR, the caller still on the line (the flow's own
        queue ``max_wait`` ran out): ``CallExited`` with destination ``"ivr"``, not an abandon.

        A waiting or ringing call leaves (its offers are cancelled, the agents
        freed); a connected call or a callback cannot be withdrawn (ConflictError).
        """
        self._advance(now)
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"reason: must be a non-empty string, got {reason!r}")
        c = self._get_call(call)
        if c is None:
            return []
        if c.state not in (_WAITING, _OFFERING) or c.callback is not None:
            raise ConflictError(f"call: {call!r} is {c.state}; only a waiting caller can be withdrawn")
        out: list = []
        freed: list[_Agent] = []
        if c.state == _WAITING:
            self._take_waiting(c)
        else:
            for offer in list(c.offers.values()):
                freed.append(self._end_offer(offer, "withdrawn", now, out, cancel=True))
                offer.agent.keep_idle = True
        queue = c.queue
        self._note_wait(queue, now - c.queued_at, abandoned=False)
        out.append(ev.CallExited(at=now, call=c.id, queue=queue.name, reason=reason, destination="ivr",
                                 wait=now - c.waiting_since))
        self._finish(c)
        for agent in freed:
            self._refresh(agent, now, out)
        return out

    def call_held(self, call: str, now: float) -> list:
        """The agent put a connected call on hold."""
        self._advance(now)
        c = self._get_call(call)
        if c is None or c.state != _CONNECTED or c.hold_started is not None:
            if c is not None:
                self.ignored_inputs += 1
            return []
        c.hold_started = now
        return [ev.CallHeld(at=now, call=c.id, queue=c.queue.name, agent=c.agent.id)]

    def call_resumed(self, call: str, now: float) -> list:
        """A held call was taken off hold."""
        self._advance(now)
        c = self._get_call(call)
        if c is None or c.hold_started is None:
            if c is not None:
                self.ignored_inputs += 1
            return []
        c.hold_total += now - c.hold_started
        c.hold_started = None
        return [ev.CallResumed(at=now, call=c.id, queue=c.queue.name, agent=c.agent.id)]

    def call_ended(self, call: str, now: float) -> list:
        """A call ended (either side hung up). Connected: the agent goes to wrap-up."""
        self._advance(now)
        c = self._get_call(call)
        if c is None:
            return []
        if c.state in (_WAITING, _OFFERING, _RESERVED, _RETRY):
            return self.call_abandoned(call, now)
        return self._call_ended(c, now)

    def _call_ended(self, c: _Call, now: float) -> list:
        out: list = []
        agent = c.agent
        if c.state == _DIALING:
            return self._callback_failed(c, now, final=True)
        if c.hold_started is not None:
            c.hold_total += now - c.hold_started
            c.hold_started = None
        talk = max(now - c.answered_at - c.hold_total, 0.0)
        queue = c.queue
        out.append(ev.CallEnded(at=now, call=c.id, queue=queue.name, agent=agent.id, talk=talk, hold=c.hold_total))
        agent.talk[queue.name] = agent.talk.get(queue.name, 0.0) + talk
        self._finish(c)
        wrapup = self._wrapup_for(agent, queue)
        agent.activity = "wrap_up"
        agent.wrap_start = now
        agent.wrap_until = now + wrapup
        if wrapup <= 0:
            self._end_wrapup(agent, now, out)
        else:
            self._sync_state(agent, now, out)
            self._schedule(agent.wrap_until, _T_AGENT, agent)
        return out

    def _end_wrapup(self, agent: _Agent, now: float, out: list, *, refresh: bool = True) -> None:
        call = agent.call
        queue = call.queue
        out.append(ev.CallWrapupEnded(at=now, call=call.id, queue=queue.name, agent=agent.id,
                                      wrapup=now - agent.wrap_start))
        queue.aht_n += 1
        alpha = max(_AHT_ALPHA, 1.0 / queue.aht_n)
        # A zero-length cycle (answered and hung up at once) would make the estimate 0: floor at 1 s.
        queue.aht += alpha * (max(now - call.offered_at, 1.0) - queue.aht)
        agent.calls[queue.name] = agent.calls.get(queue.name, 0) + 1
        agent.activity = None
        agent.call = None
        agent.timer_version += 1
        if refresh:
            self._refresh(agent, now, out)

    # ------------------------------------------------------------------ inputs: offers

    def offer_answered(self, offer: int, now: float) -> list:
        """The agent's device answered ``offer``. First answer wins; any other gets RefuseAnswer."""
        self._advance(now)
        o = self._offers.get(offer)
        if o is None:
            self.ignored_inputs += 1
            known = type(offer) is int and offer > 0 and self._ended_id[offer & (_ENDED_OFFERS_KEPT - 1)] == offer
            if not known:
                return [fx.RefuseAnswer(offer=offer, agent=None, device=None, reason="unknown-offer")]
            slot = offer & (_ENDED_OFFERS_KEPT - 1)
            return [fx.RefuseAnswer(offer=offer, agent=self._ended_agent[slot], device=self._ended_device[slot],
                                    reason=self._ended_reason[slot])]
        out: list = []
        call = o.call
        agent = o.agent
        queue = call.queue
        freed = []
        for other in list(call.offers.values()):
            if other is not o:
                freed.append(self._end_offer(other, "answered-elsewhere", now, out, cancel=True))
                other.agent.keep_idle = True
        o.active = False
        o.end_reason = "already-answered"
        call.offers.pop(o.id, None)
        self._offers.pop(o.id, None)
        self._rings[o.ring_timeout].pop(o.id, None)
        self._remember_offer(o)
        agent.offer = None
        agent.activity = "on_call"
        agent.call = call
        call.agent = agent
        device = agent.device.name
        if call.callback is not None and not call.caller_connected:
            call.state = _DIALING
            call.attempt += 1
            out.append(ev.CallbackDialed(at=now, call=call.id, queue=queue.name, agent=agent.id,
                                         number=call.callback, attempt=call.attempt))
            out.append(fx.DialCallback(call=call.id, queue=queue.name, agent=agent.id, device=device,
                                       number=call.callback, attempt=call.attempt, agent_connected=True))
        else:
            self._connect(call, o.id, now, out)
        self._sync_state(agent, now, out)
        for other_agent in freed:
            self._refresh(other_agent, now, out)
        return out

    def _connect(self, call: _Call, offer_id: int, now: float, out: list) -> None:
        agent = call.agent
        queue = call.queue
        call.state = _CONNECTED
        call.answered_at = now
        if call.callback is None:
            self._note_wait(queue, now - call.queued_at, abandoned=False)
        out.append(ev.CallAnswered(at=now, call=call.id, queue=queue.name, agent=agent.id, offer=offer_id,
                                   wait=now - call.waiting_since, callback=call.callback is not None))
        out.append(fx.Bridge(offer=offer_id, call=call.id, queue=queue.name, agent=agent.id,
                             device=agent.device.name))

    def offer_rejected(self, offer: int, now: float, *, busy: bool = False) -> list:
        """The agent declined (``busy``: the device answered busy). The call keeps its place."""
        self._advance(now)
        o = self._offers.get(offer)
        if o is None:
            self.ignored_inputs += 1
            return []
        out: list = []
        self._fail_offer(o, "busy" if busy else "rejected", now, out)
        return out

    def offer_timeout(self, offer: int, now: float) -> list:
        """The device reported no answer before the policy's own ring timer: RONA now."""
        self._advance(now)
        o = self._offers.get(offer)
        if o is None:
            self.ignored_inputs += 1
            return []
        out: list = []
        self._fail_offer(o, "timeout", now, out)
        return out

    # ------------------------------------------------------------------ inputs: callbacks

    def callback_requested(self, call: str, number: str, now: float) -> list:
        """The waiting caller chose a callback at ``number`` and hangs up; the call keeps its place."""
        self._advance(now)
        if not isinstance(number, str) or not number:
            raise ValueError(f"number: must be a non-empty string, got {number!r}")
        c = self._calls.get(call)
        if c is None:
            raise NotFoundError(f"call: no call {call!r} in the ACD")
        if c.state != _WAITING or c.callback is not None:
            raise ConflictError(f"call: {call!r} is {c.state}, a callback needs a waiting call")
        c.callback = number
        c.caller_connected = False
        c.next_announce = math.inf
        c.next_comfort = math.inf
        c.timer_version += 1
        self._schedule_call(c)
        return [ev.CallbackRequested(at=now, call=c.id, queue=c.queue.name, number=number,
                                     wait=now - c.waiting_since)]

    def callback_answered(self, call: str, now: float) -> list:
        """The called-back caller answered."""
        self._advance(now)
        c = self._get_call(call)
        if c is None or c.state not in (_DIALING, _RESERVED):
            if c is not None:
                self.ignored_inputs += 1
            return []
        out: list = []
        c.caller_connected = True
        if c.state == _DIALING:
            self._connect(c, c.last_offer, now, out)
        else:
            agent = c.agent
            agent.activity = None
            agent.call = None
            self._offer(c, [agent], now, out)
        return out

    def callback_failed(self, call: str, now: float) -> list:
        """The caller could not be reached; retried after the queue's delay, in the same place."""
        self._advance(now)
        c = self._get_call(call)
        if c is None or c.state not in (_DIALING, _RESERVED):
            if c is not None:
                self.ignored_inputs += 1
            return []
        return self._callback_failed(c, now, final=False)

    def _callback_failed(self, c: _Call, now: float, *, final: bool) -> list:
        out: list = []
        agent = c.agent
        cfg = c.queue.cfg
        final = final or c.attempt >= cfg.callback_attempts
        out.append(ev.CallbackFailed(at=now, call=c.id, queue=c.queue.name, agent=agent.id, attempt=c.attempt,
                                     final=final))
        agent.activity = None
        agent.call = None
        c.agent = None
        if final:
            self._finish(c)
        else:
            c.state = _RETRY
            c.retry_at = now + cfg.callback_retry
            c.timer_version += 1
            self._schedule_call(c)
        self._refresh(agent, now, out)
        return out

    # ------------------------------------------------------------------ inputs: agents and devices

    def agent_login(self, agent: str, device: str, now: float, *, state: str = "available",
                    reason: str | None = None) -> list:
        """Log ``agent`` in on ``device`` (one device per login), available or on break."""
        self._advance(now)
        a = self._agent(agent)
        if state not in ("available", "break"):
            raise ValueError(f"state: a login is 'available' or 'break', got {state!r}")
        dev = self._device(device)
        if a.cfg.devices is not None and device not in a.cfg.devices:
            raise ConflictError(f"device: agent {agent!r} may not log in on {device!r}")
        if a.logged_in:
            if a.device is dev:
                return self.set_state(agent, state, now, reason=reason)
            raise ConflictError(f"agent: {agent!r} is already logged in on {a.device.name!r}")
        if dev.agent is not None:
            raise ConflictError(f"device: {device!r} is in use by agent {dev.agent.id!r}")
        dev.agent = a
        a.device = dev
        a.logged_in = True
        a.presence = state
        a.reason = reason if state == "break" else None
        out: list = []
        self._refresh(a, now, out)
        return out

    def agent_logout(self, agent: str, now: float) -> list:
        """Log ``agent`` out; a ringing offer is withdrawn (the call keeps its place)."""
        return self.set_state(agent, "offline", now)

    def set_state(self, agent: str, state: str, now: float, *, reason: str | None = None) -> list:
        """``available``, ``break`` (with ``reason``) or ``offline`` (= log out).

        On a call, a break applies after wrap-up; logging out on a call is a
        ConflictError. Ringing, the offer is withdrawn and the call requeued.
        """
        self._advance(now)
        a = self._agent(agent)
        if state not in ("available", "break", "offline"):
            raise ValueError(f"state: must be 'available', 'break' or 'offline', got {state!r}")
        out: list = []
        if state == "offline":
            if not a.logged_in:
                return out
            if a.activity in ("on_call", "reserved"):
                raise ConflictError(f"agent: {agent!r} is {a.activity}; log out after the call")
            if a.activity == "wrap_up":
                self._end_wrapup(a, now, out, refresh=False)
        elif not a.logged_in:
            raise ConflictError(f"agent: {agent!r} is not logged in")
        if a.activity == "ringing" and state != "available":
            self._withdraw_offer(a, now, out)
        if state == "offline":
            a.logged_in = False
            a.presence = "offline"
            a.reason = None
            a.device.agent = None
            self._refresh(a, now, out)
            a.device = None
            self._sync_state(a, now, out)
            return out
        a.presence = state
        a.reason = reason if state == "break" else None
        if state == "available":
            a.not_before = -math.inf
        self._refresh(a, now, out)
        return out

    def _withdraw_offer(self, agent: _Agent, now: float, out: list) -> None:
        offer = agent.offer
        call = offer.call
        self._end_offer(offer, "agent-unavailable", now, out, cancel=True)
        if not call.offers:
            self._requeue(call, now, out)

    def wrapup_done(self, agent: str, now: float) -> list:
        """The agent ended wrap-up early."""
        self._advance(now)
        a = self._agent(agent)
        if a.activity != "wrap_up":
            self.ignored_inputs += 1
            return []
        out: list = []
        self._end_wrapup(a, now, out)
        return out

    def _device_change(self, device: str, now: float, registered: bool | None, busy: bool | None) -> list:
        self._advance(now)
        dev = self._device(device)
        if registered is not None:
            dev.registered = registered
        if busy is not None:
            dev.busy = busy
        out: list = []
        agent = dev.agent
        if agent is not None:
            if agent.activity == "ringing" and (not dev.registered or dev.busy):
                self._withdraw_offer(agent, now, out)
            self._refresh(agent, now, out)
        return out

    def device_registered(self, device: str, now: float) -> list:
        """The device registered (a logged-in agent on it may become available)."""
        return self._device_change(device, now, True, None)

    def device_unregistered(self, device: str, now: float) -> list:
        """The device's registration ended or expired: its agent is not offered calls."""
        return self._device_change(device, now, False, None)

    def device_busy(self, device: str, now: float) -> list:
        """The device is on a call that is not a queue call: its agent is not offered calls."""
        return self._device_change(device, now, None, True)

    def device_idle(self, device: str, now: float) -> list:
        """The device's non-queue call ended."""
        return self._device_change(device, now, None, False)

    # ------------------------------------------------------------------ queries

    def statistics(self) -> AcdStatistics:
        states = [c.state for c in self._calls.values()]
        return AcdStatistics(
            calls_waiting=sum(q.waiting for q in self._queues.values()),
            calls_offering=states.count(_OFFERING),
            calls_connected=states.count(_CONNECTED),
            agents_logged_in=sum(a.logged_in for a in self._agents.values()),
            agents_routable=sum(a.routable for a in self._agents.values()),
            decisions=self.decisions,
            inspections=self.inspections,
            ignored_inputs=self.ignored_inputs,
        )

    def queue_snapshot(self, queue: str, now: float) -> QueueSnapshot:
        """Live state of ``queue``: waiting, longest wait, agents by state, EWT for a new caller."""
        q = self._queues.get(queue)
        if q is None:
            raise NotFoundError(f"queue: no queue {queue!r}")
        oldest = math.inf
        for bucket in q.buckets.values():
            for key in bucket.waiting:
                oldest = min(oldest, key[3].queued_at)
        base = q.base
        ab_rate = q.ab_count / q.ab_exposure if q.ab_exposure > 0 else 0.0
        ewt = 0.0 if base.avail else expected_wait(q.waiting, base.staffed, q.aht, ab_rate)
        return QueueSnapshot(queue=queue, waiting=q.waiting, longest_wait=max(now - oldest, 0.0) if q.waiting else 0.0,
                             agents_by_state=MappingProxyType(dict(q.state_counts)), ewt=ewt,
                             handle_time_estimate=q.aht, abandon_rate_estimate=ab_rate,
                             sl_threshold=q.cfg.sl_threshold, short_abandon=q.cfg.short_abandon)

    def agent_snapshot(self, agent: str) -> AgentSnapshot:
        """An agent's state as ``agent.get`` shows it."""
        a = self._agent(agent)
        call = a.offer.call if a.offer is not None else a.call
        return AgentSnapshot(agent=a.id, state=a.state, reason=a.reason if a.state == "break" else None,
                             device=a.device.name if a.device is not None else None,
                             call=call.id if call is not None else None,
                             queue=call.queue.name if call is not None else None, routable=a.routable,
                             skills=MappingProxyType(dict(a.skills)), queues=MappingProxyType(dict(a.queues)))

    def call_snapshot(self, call: str) -> CallSnapshot:
        """A call's queue state: position (1 = next) and EWT while waiting."""
        c = self._calls.get(call)
        if c is None:
            raise NotFoundError(f"call: no call {call!r} in the ACD")
        position = ewt = None
        if c.state == _WAITING:
            position, ewt = self._position_ewt(c)
        return CallSnapshot(call=c.id, queue=c.queue.name, state=c.state, priority=c.priority,
                            wait=self._now - c.waiting_since, position=position, ewt=ewt,
                            agent=c.agent.id if c.agent is not None else None, callback=c.callback,
                            skills=MappingProxyType(dict(c.req_skills)))

    def queues(self) -> list[str]:
        """Queue names, in the order they were added."""
        return list(self._queues)

    def agents(self) -> list[str]:
        """Agent ids, in the order they were added."""
        return list(self._agents)

    def calls(self) -> list[str]:
        """Ids of the calls the ACD holds (waiting, ringing, connected, callbacks)."""
        return list(self._calls)
