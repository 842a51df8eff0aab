"""Event records the ACD emits: the facts the event log stores (DESIGN rule 5).

Every queue, call and agent change the routing policy makes is one of these
small frozen records. The event log, CDRs, reports, the wallboard, Prometheus
and CRM notifications are all derived from them, so the numbers agree
everywhere; :mod:`orchestrator.metrics` computes the CONTRACT metrics from a
sequence of them.

Each record has a class-level ``type`` (the JSON-RPC notification name, e.g.
``"call.queued"``), keyword-only fields, and ``at`` (the policy's ``now`` when
it happened, in seconds). ``to_dict()`` / :func:`event_from_dict` give the
plain form a store writes and reads back.

Durations (``wait``, ``talk``, ``hold``, ``wrapup``) are in seconds. ``wait``
is always counted from the moment the caller first entered the ACD, so a call
that overflowed from one queue to another keeps the wait the caller feels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ._records import fast_init

__all__ = [
    "EVENT_TYPES",
    "AgentState",
    "CallAbandoned",
    "CallAnswered",
    "CallEnded",
    "CallEscalated",
    "CallExited",
    "CallHeld",
    "CallOfferEnded",
    "CallOffered",
    "CallOverflowed",
    "CallQueued",
    "CallRejected",
    "CallResumed",
    "CallWrapupEnded",
    "CallbackDialed",
    "CallbackFailed",
    "CallbackRequested",
    "Event",
    "event_from_dict",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Base of every ACD event record; ``at`` is when it happened."""

    type: ClassVar[str] = ""
    at: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form: ``{"type": ..., field: value, ...}``."""
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class CallQueued(Event):
    """A call entered a queue (first time, or after an overflow).

    ``position`` (1 = next) and ``ewt`` (estimated wait in seconds, ``None``
    when no agent can serve it yet) are what the caller was told on joining.
    ``skills`` is the call's effective requirement as (skill, minimum) pairs.
    """

    type: ClassVar[str] = "call.queued"
    call: str
    queue: str
    priority: int
    caller: str | None
    position: int
    ewt: float | None
    skills: tuple[tuple[str, int], ...] = ()
    overflow_from: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CallRejected(Event):
    """A call was refused entry to a queue (``reason``: "full" or "empty")."""

    type: ClassVar[str] = "call.rejected"
    call: str
    queue: str
    reason: str
    destination: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CallOffered(Event):
    """An agent's device is being rung with a call (the screen pop).

    ``data`` is what the IVR collected and the CRM attached (``call_arrived(data=...)``).
    """

    type: ClassVar[str] = "call.offered"
    call: str
    queue: str
    agent: str
    device: str
    offer: int
    caller: str | None
    ring_all: bool = False
    callback: bool = False
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CallOfferEnded(Event):
    """An offer ended without connecting this agent.

    ``reason``: "timeout" (RONA), "rejected", "busy", "answered-elsewhere",
    "caller-abandoned", "agent-unavailable" (logout or device lost while
    ringing).
    """

    type: ClassVar[str] = "call.offer_ended"
    call: str
    queue: str
    agent: str
    offer: int
    reason: str
    ring: float


@dataclass(frozen=True, kw_only=True, slots=True)
class CallAnswered(Event):
    """A call was connected to an agent after ``wait`` seconds in the ACD."""

    type: ClassVar[str] = "call.answered"
    call: str
    queue: str
    agent: str
    offer: int
    wait: float
    callback: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class CallAbandoned(Event):
    """The caller hung up before an agent answered (``ringing``: during an offer)."""

    type: ClassVar[str] = "call.abandoned"
    call: str
    queue: str
    wait: float
    ringing: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class CallHeld(Event):
    """The agent put a connected call on hold."""

    type: ClassVar[str] = "call.held"
    call: str
    queue: str
    agent: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CallResumed(Event):
    """A held call was taken off hold."""

    type: ClassVar[str] = "call.resumed"
    call: str
    queue: str
    agent: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CallEnded(Event):
    """A connected call ended; ``talk`` excludes ``hold``."""

    type: ClassVar[str] = "call.ended"
    call: str
    queue: str
    agent: str
    talk: float
    hold: float


@dataclass(frozen=True, kw_only=True, slots=True)
class CallWrapupEnded(Event):
    """The agent finished the after-call work of ``call`` (``wrapup`` seconds)."""

    type: ClassVar[str] = "call.wrapup_ended"
    call: str
    queue: str
    agent: str
    wrapup: float


@dataclass(frozen=True, kw_only=True, slots=True)
class CallEscalated(Event):
    """A waiting call reached escalation step ``step`` of its queue."""

    type: ClassVar[str] = "call.escalated"
    call: str
    queue: str
    step: int
    action: str
    priority: int
    skills: tuple[tuple[str, int], ...] = ()
    max_penalty: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CallOverflowed(Event):
    """A waiting call moved from ``queue`` to ``to_queue`` (it keeps its wait)."""

    type: ClassVar[str] = "call.overflowed"
    call: str
    queue: str
    to_queue: str
    wait: float
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CallExited(Event):
    """A waiting call left the ACD for a destination (voicemail, hang-up...).

    ``reason``: "timeout" (max wait), "leave-empty", "escalation".
    """

    type: ClassVar[str] = "call.exited"
    call: str
    queue: str
    reason: str
    destination: str
    wait: float


@dataclass(frozen=True, kw_only=True, slots=True)
class CallbackRequested(Event):
    """The caller asked to be called back; the call keeps its place in the queue."""

    type: ClassVar[str] = "call.callback_requested"
    call: str
    queue: str
    number: str
    wait: float


@dataclass(frozen=True, kw_only=True, slots=True)
class CallbackDialed(Event):
    """The caller of a callback is being dialled for ``agent`` (attempt 1, 2...)."""

    type: ClassVar[str] = "call.callback_dialed"
    call: str
    queue: str
    agent: str
    number: str
    attempt: int


@dataclass(frozen=True, kw_only=True, slots=True)
class CallbackFailed(Event):
    """A callback attempt did not reach the caller; ``final`` when none is left."""

    type: ClassVar[str] = "call.callback_failed"
    call: str
    queue: str
    agent: str
    attempt: int
    final: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentState(Event):
    """An agent's reported state changed.

    ``state``: "offline", "available", "break" (with ``reason``), and the
    derived "ringing", "reserved" (held for a callback), "on_call", "wrap_up",
    "unregistered" (logged in, device not registered) and "busy" (device busy
    on a call that is not a queue call). ``call``/``queue`` are set for the
    derived call states.
    """

    type: ClassVar[str] = "agent.state"
    agent: str
    state: str
    previous: str
    reason: str | None = None
    device: str | None = None
    call: str | None = None
    queue: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        CallQueued, CallRejected, CallOffered, CallOfferEnded, CallAnswered, CallAbandoned, CallHeld,
        CallResumed, CallEnded, CallWrapupEnded, CallEscalated, CallOverflowed, CallExited,
        CallbackRequested, CallbackDialed, CallbackFailed, AgentState,
    )
}

# The policy builds several of these per routing decision: construct them without the
# dataclass __init__'s per-field object.__setattr__ (same signature and behaviour).
for _cls in EVENT_TYPES.values():
    fast_init(_cls)
del _cls


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event record from its ``to_dict()`` form.

    Raises ValueError for an unknown ``type`` or unknown/missing fields.
    """
    try:
        kind = data["type"]
    except (KeyError, TypeError):
        raise ValueError("data: an event dict needs a 'type' key") from None
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"data: unknown event type {kind!r}")
    kwargs = {k: v for k, v in data.items() if k != "type"}
    names = {f.name for f in fields(cls)}
    extra = set(kwargs) - names
    if extra:
        raise ValueError(f"data: unknown field(s) {sorted(extra)} for {kind}")
    for f in fields(cls):
        value = kwargs.get(f.name)
        if isinstance(value, list):
            kwargs[f.name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"data: bad fields for {kind}: {exc}") from None
