"""Queue and agent configuration for the routing policy (validated when built).

These are the ``[[queue]]`` and ``[[agent]]`` tables of the TOML config, as
frozen records. Every bad value raises ValueError naming the field and why.

Terms:

* *skills*: an agent has ``{skill: proficiency}`` with proficiency 1 (novice)
  to 5 (expert); a queue (and optionally a call) requires ``{skill: minimum}``.
* *penalty*: an agent lists its queues as ``{queue: penalty}``; lower
  penalties are offered first (Asterisk's member penalty), and a queue or an
  escalation step can cap the penalty it accepts (``max_penalty``).
  ``sequential`` rings by (penalty, order in the agent list).
* *escalation*: steps applied while a call waits (measured from the moment it
  entered this queue): widen the skills it accepts, raise its priority,
  overflow to another queue, offer a callback, or leave to a destination.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from types import MappingProxyType

__all__ = [
    "MAX_PROFICIENCY",
    "MIN_PROFICIENCY",
    "AgentConfig",
    "CallbackMode",
    "Destination",
    "EscalationStep",
    "JoinRule",
    "QueueConfig",
    "Strategy",
]

MIN_PROFICIENCY = 1
MAX_PROFICIENCY = 5


class Strategy(str, Enum):
    """How a queue picks among the agents able to take a call."""

    LONGEST_IDLE = "longest-idle"
    ROUND_ROBIN = "round-robin"
    FEWEST_CALLS = "fewest-calls"
    LEAST_TALK_TIME = "least-talk-time"
    RING_ALL = "ring-all"
    SEQUENTIAL = "sequential"
    RANDOM = "random"
    SKILLS = "skills"


class JoinRule(str, Enum):
    """When a queue counts as *empty* for join-empty / leave-empty.

    ``NEVER``: never empty (callers always join and never leave for it).
    ``NO_LOGGED_IN``: empty when no agent able to serve the call is logged in.
    ``NO_STAFFED``: empty when no such agent is *staffed* - logged in, not on
    break, device registered (ringing, on a call or in wrap-up still counts;
    a break asked for during a call counts from when it is asked, as that
    agent will take no more calls).
    """

    NEVER = "never"
    NO_LOGGED_IN = "no-logged-in"
    NO_STAFFED = "no-staffed"


class CallbackMode(str, Enum):
    """Who is connected first when a callback's turn comes."""

    AGENT_FIRST = "agent-first"
    CALLER_FIRST = "caller-first"


_DEST_KINDS = ("voicemail", "hangup", "queue", "extension")


def _freeze_map(value: Mapping | None, name: str) -> Mapping:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected a mapping, got {type(value).__name__}")
    return MappingProxyType(dict(value))


def _check_skills(skills: Mapping, name: str) -> None:
    for skill, level in skills.items():
        if not isinstance(skill, str) or not skill:
            raise ValueError(f"{name}: skill names must be non-empty strings, got {skill!r}")
        if not isinstance(level, int) or isinstance(level, bool) or not MIN_PROFICIENCY <= level <= MAX_PROFICIENCY:
            raise ValueError(f"{name}[{skill!r}]: proficiency must be an int from 1 to 5, got {level!r}")


def _check_seconds(value, name: str, *, allow_none: bool = False, positive: bool = False) -> None:
    if value is None:
        if allow_none:
            return
        raise ValueError(f"{name}: must be a number of seconds, got None")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name}: must be {'> 0' if positive else '>= 0'}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Destination:
    """Where a call goes when it leaves a queue without an agent.

    ``kind``: "voicemail" (target = mailbox), "hangup" (target = SIP cause,
    e.g. "486"), "queue" (target = queue name: an internal overflow) or
    "extension" (target = a dial-plan extension).
    """

    kind: str
    target: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _DEST_KINDS:
            raise ValueError(f"kind: must be one of {_DEST_KINDS}, got {self.kind!r}")
        if self.kind in ("queue", "extension", "voicemail") and not self.target:
            raise ValueError(f"target: a {self.kind} destination needs a target")

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind

    @classmethod
    def parse(cls, text: str) -> Destination:
        """``"voicemail:support"``, ``"queue:sales"``, ``"hangup"``, ``"hangup:486"``."""
        kind, _, target = text.partition(":")
        return cls(kind=kind, target=target or None)


HANGUP = Destination(kind="hangup")


@dataclass(frozen=True, kw_only=True)
class EscalationStep:
    """One escalation step of a queue; build it with the class methods."""

    after: float
    action: str
    skills: Mapping[str, int] | None = None
    max_penalty: int | None = None
    priority: int = 0
    destination: Destination | None = None

    _ACTIONS = ("widen", "priority", "overflow", "exit", "offer-callback")

    def __post_init__(self) -> None:
        _check_seconds(self.after, "after")
        if self.action not in self._ACTIONS:
            raise ValueError(f"action: must be one of {self._ACTIONS}, got {self.action!r}")
        if self.skills is not None:
            object.__setattr__(self, "skills", _freeze_map(self.skills, "skills"))
            _check_skills(self.skills, "skills")
        if self.max_penalty is not None and (not isinstance(self.max_penalty, int) or self.max_penalty < 0):
            raise ValueError(f"max_penalty: must be an int >= 0, got {self.max_penalty!r}")
        if self.action == "widen" and self.skills is None and self.max_penalty is None:
            raise ValueError("skills: a widen step needs skills and/or max_penalty")
        if self.action == "priority" and not isinstance(self.priority, int):
            raise ValueError(f"priority: must be an int, got {self.priority!r}")
        if self.action in ("overflow", "exit") and self.destination is None:
            raise ValueError(f"destination: a {self.action} step needs a destination")
        if self.action == "overflow" and self.destination.kind != "queue":
            raise ValueError("destination: an overflow step goes to a queue")

    @classmethod
    def widen(cls, after: float, *, skills: Mapping[str, int] | None = None,
              max_penalty: int | None = None) -> EscalationStep:
        """Accept agents with these (lower) skill minimums and/or a higher penalty cap."""
        return cls(after=after, action="widen", skills=skills, max_penalty=max_penalty)

    @classmethod
    def raise_priority(cls, after: float, by: int = 1) -> EscalationStep:
        """Add ``by`` to the call's priority."""
        return cls(after=after, action="priority", priority=by)

    @classmethod
    def overflow(cls, after: float, queue: str) -> EscalationStep:
        """Move the call to ``queue``; it keeps its original wait (and place by it)."""
        return cls(after=after, action="overflow", destination=Destination(kind="queue", target=queue))

    @classmethod
    def voicemail(cls, after: float, mailbox: str) -> EscalationStep:
        """Send the call to a voicemail box."""
        return cls(after=after, action="exit", destination=Destination(kind="voicemail", target=mailbox))

    @classmethod
    def exit(cls, after: float, destination: Destination) -> EscalationStep:
        """Send the call out of the ACD to ``destination``."""
        if destination.kind == "queue":
            return cls.overflow(after, destination.target or "")
        return cls(after=after, action="exit", destination=destination)

    @classmethod
    def offer_callback(cls, after: float) -> EscalationStep:
        """Offer the caller a callback (the IVR plays "press 1 to be called back")."""
        return cls(after=after, action="offer-callback")

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "escalation") -> EscalationStep:
        """A step as written in TOML: ``{after = 30, widen = {billing = 2}}``, ``{after = 60, priority = 1}``,
        ``{after = 90, offer_callback = true}``, ``{after = 300, overflow = "sales"}``,
        ``{after = 600, voicemail = "box"}``, ``{after = 600, exit = "extension:100"}``,
        ``{after = 45, max_penalty = 2}`` (``widen`` and ``max_penalty`` may go together).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: a step is a table, got {data!r}")
        d = dict(data)
        if "after" not in d:
            raise ValueError(f"{where}.after: every step needs 'after' (seconds)")
        after = d.pop("after")
        allowed = {"widen", "max_penalty", "priority", "offer_callback", "overflow", "voicemail", "exit"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown escalation key (one of {sorted(allowed)})")
        actions = sorted(set(d) - {"max_penalty"} if "widen" in d else set(d))
        if len(actions) != 1:
            raise ValueError(f"{where}: give exactly one action, got {sorted(d) or 'none'}")
        action = actions[0]
        try:
            if action in ("widen", "max_penalty"):
                return cls.widen(after, skills=d.get("widen"), max_penalty=d.get("max_penalty"))
            if action == "priority":
                return cls.raise_priority(after, by=d["priority"])
            if action == "offer_callback":
                if d["offer_callback"] is not True:
                    raise ValueError("offer_callback: must be true")
                return cls.offer_callback(after)
            if action == "overflow":
                return cls.overflow(after, d["overflow"])
            if action == "voicemail":
                return cls.voicemail(after, d["voicemail"])
            return cls.exit(after, Destination.parse(d["exit"]))
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class QueueConfig:
    """One queue. Times are seconds; ``None`` disables a limit or a prompt."""

    name: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    skills: Mapping[str, int] = field(default_factory=dict)
    max_penalty: int | None = None
    ring_timeout: float = 20.0
    ring_all_max: int | None = None
    wrapup: float = 0.0
    reject_delay: float = 0.0
    busy_delay: float = 0.0
    rona_break: bool = True
    max_wait: float | None = None
    on_timeout: Destination = HANGUP
    max_length: int | None = None
    on_full: Destination = HANGUP
    join_empty: JoinRule = JoinRule.NEVER
    leave_empty: JoinRule = JoinRule.NEVER
    on_empty: Destination = HANGUP
    announce_every: float | None = None
    comfort_every: float | None = None
    comfort_prompt: str = "queue-comfort"
    music: str = "default"
    escalation: tuple[EscalationStep, ...] = ()
    callback_mode: CallbackMode = CallbackMode.AGENT_FIRST
    callback_attempts: int = 3
    callback_retry: float = 120.0
    expected_handle_time: float = 180.0
    sl_threshold: float = 20.0
    short_abandon: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: a queue needs a non-empty name, got {self.name!r}")
        try:
            object.__setattr__(self, "strategy", Strategy(self.strategy))
        except ValueError:
            raise ValueError(f"strategy: unknown strategy {self.strategy!r}; one of "
                             f"{[s.value for s in Strategy]}") from None
        for name, enum in (("join_empty", JoinRule), ("leave_empty", JoinRule), ("callback_mode", CallbackMode)):
            try:
                object.__setattr__(self, name, enum(getattr(self, name)))
            except ValueError:
                raise ValueError(f"{name}: must be one of {[e.value for e in enum]}, "
                                 f"got {getattr(self, name)!r}") from None
        object.__setattr__(self, "skills", _freeze_map(self.skills, "skills"))
        _check_skills(self.skills, "skills")
        if self.max_penalty is not None and (not isinstance(self.max_penalty, int) or self.max_penalty < 0):
            raise ValueError(f"max_penalty: must be an int >= 0, got {self.max_penalty!r}")
        _check_seconds(self.ring_timeout, "ring_timeout", positive=True)
        for name in ("wrapup", "reject_delay", "busy_delay", "callback_retry", "short_abandon",
                     "sl_threshold"):
            _check_seconds(getattr(self, name), name)
        _check_seconds(self.expected_handle_time, "expected_handle_time", positive=True)
        for name in ("max_wait", "announce_every", "comfort_every"):
            _check_seconds(getattr(self, name), name, allow_none=True, positive=True)
        for name in ("max_length", "ring_all_max"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name}: must be an int >= 1 or None, got {value!r}")
        if not isinstance(self.callback_attempts, int) or self.callback_attempts < 1:
            raise ValueError(f"callback_attempts: must be an int >= 1, got {self.callback_attempts!r}")
        for name in ("on_timeout", "on_full", "on_empty"):
            if not isinstance(getattr(self, name), Destination):
                raise ValueError(f"{name}: must be a Destination, got {getattr(self, name)!r}")
        steps = tuple(self.escalation)
        for i, step in enumerate(steps):
            if not isinstance(step, EscalationStep):
                raise ValueError(f"escalation[{i}]: must be an EscalationStep, got {step!r}")
            if i and step.after < steps[i - 1].after:
                raise ValueError(f"escalation[{i}]: steps must be in order of 'after'")
            if step.destination is not None and step.destination.kind == "queue" \
                    and step.destination.target == self.name:
                raise ValueError(f"escalation[{i}]: a queue cannot overflow to itself")
        object.__setattr__(self, "escalation", steps)

    @classmethod
    def from_dict(cls, data: Mapping) -> QueueConfig:
        """A ``[[queue]]`` table: the field names above; destinations as strings
        (``"voicemail:support"``, ``"queue:sales"``, ``"hangup:486"``); escalation
        as a list of tables (see :meth:`EscalationStep.from_dict`).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"queue: a queue is a table, got {data!r}")
        d = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown queue setting")
        for key in ("on_timeout", "on_full", "on_empty"):
            if isinstance(d.get(key), str):
                d[key] = Destination.parse(d[key])
        if "escalation" in d:
            steps = d["escalation"]
            if not isinstance(steps, (list, tuple)):
                raise ValueError(f"escalation: a list of steps, got {steps!r}")
            d["escalation"] = tuple(step if isinstance(step, EscalationStep) else
                                    EscalationStep.from_dict(step, f"escalation[{i}]")
                                    for i, step in enumerate(steps))
        if "name" not in d:
            raise ValueError("name: every queue needs a name")
        return cls(**d)


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """One agent: skills, queues (with penalties), wrap-up override, devices.

    ``devices``: the devices this agent may log in with (``None``: any).
    ``wrapup``: overrides the queue's wrap-up time for this agent.
    """

    id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: Mapping[str, int] = field(default_factory=dict)
    wrapup: float | None = None
    devices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"id: an agent needs a non-empty id, got {self.id!r}")
        object.__setattr__(self, "skills", _freeze_map(self.skills, "skills"))
        _check_skills(self.skills, "skills")
        object.__setattr__(self, "queues", _freeze_map(self.queues, "queues"))
        for queue, penalty in self.queues.items():
            if not isinstance(queue, str) or not queue:
                raise ValueError(f"queues: queue names must be non-empty strings, got {queue!r}")
            if not isinstance(penalty, int) or isinstance(penalty, bool) or penalty < 0:
                raise ValueError(f"queues[{queue!r}]: penalty must be an int >= 0, got {penalty!r}")
        _check_seconds(self.wrapup, "wrapup", allow_none=True)
        if self.devices is not None:
            devices = tuple(self.devices)
            if not devices or not all(isinstance(d, str) and d for d in devices):
                raise ValueError(f"devices: must be a non-empty list of device names or None, got {self.devices!r}")
            object.__setattr__(self, "devices", devices)

    @classmethod
    def from_dict(cls, data: Mapping) -> AgentConfig:
        """An ``[[agent]]`` table: ``id``, ``skills = {billing = 4}``, ``queues = {support = 0}``
        (or a list of queue names, penalty 0), ``wrapup``, ``devices = ["9001"]``.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"agent: an agent is a table, got {data!r}")
        d = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown agent setting")
        if isinstance(d.get("queues"), (list, tuple)):
            d["queues"] = {name: 0 for name in d["queues"]}
        if isinstance(d.get("devices"), list):
            d["devices"] = tuple(d["devices"])
        if "id" not in d:
            raise ValueError("id: every agent needs an id")
        return cls(**d)
