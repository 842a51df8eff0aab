"""Effects a flow session asks its driver to carry out, in order.

The session never performs I/O: it returns these records and the Trio runner
(or a test) executes them and feeds back the matching events (``Play`` ->
``PlaybackDone``, ``StartTimer`` -> ``Timeout``, ``Lookup`` -> ``LookupResult``
or ``LookupFailed``, ``Record`` -> ``RecordDone``, ``Enqueue`` ->
``QueueResult``). ``NodeEntered`` and ``DigitsCollected`` are reports for
the ``call.ivr`` event. Every session ends with exactly one ``FlowEnded``,
always its last effect, carrying the variables to store with the call record
(a survey score among them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Effect",
    "Play",
    "StopPlayback",
    "StartTimer",
    "CancelTimer",
    "Record",
    "Lookup",
    "Enqueue",
    "Transfer",
    "RequestCallback",
    "Hangup",
    "SetVariable",
    "NodeEntered",
    "DigitsCollected",
    "FlowEnded",
    "TERMINAL_OUTCOMES",
]

#: ``FlowEnded.outcome`` values: how the session left the IVR.
TERMINAL_OUTCOMES = frozenset({"hangup", "transfer", "answered", "caller_hangup", "loop"})


class Effect:
    """Base class of session effects."""

    __slots__ = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Play(Effect):
    """Play these WAV files in order. With ``barge_in`` a digit stops the playback
    (the session then sends ``StopPlayback``); otherwise digits are kept for later."""

    prompts: tuple[str, ...]
    barge_in: bool
    play_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StopPlayback(Effect):
    """Stop play ``play_id`` now (barge-in); no ``PlaybackDone`` is expected for it."""

    play_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StartTimer(Effect):
    """Send ``Timeout(timer_id)`` after ``seconds`` (at POSIX time ``at``)."""

    timer_id: int
    seconds: float
    at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelTimer(Effect):
    """Timer ``timer_id`` is no longer needed (a late ``Timeout`` for it is ignored anyway)."""

    timer_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Record(Effect):
    """Record the caller: stop at ``max_duration`` s, after ``silence_timeout`` s of
    silence, or on one of the ``terminators`` digits; then send ``RecordDone``."""

    name: str
    max_duration: float
    silence_timeout: float
    terminators: str
    beep: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Lookup(Effect):
    """Ask the CRM: ``kind`` is ``"http"`` (``target`` is a URL) or ``"jsonrpc"``
    (``target`` is a method at the configured CRM endpoint). Answer with
    ``LookupResult`` or, after ``timeout`` s or on error, ``LookupFailed``."""

    kind: str
    target: str
    params: Mapping[str, Any]
    timeout: float
    request_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Enqueue(Effect):
    """Hand the call to the ACD; ``data`` is the IVR data for the screen pop.
    ``max_wait`` (s, or None) is when the ACD answers ``QueueResult("timeout")``."""

    queue: str
    skills: tuple[str, ...]
    priority: int
    max_wait: float | None
    data: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class Transfer(Effect):
    """Blind-transfer the call to ``target`` (an extension or SIP URI); the IVR is done."""

    target: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestCallback(Effect):
    """The caller accepted a callback offer: call ``number`` back for ``queue``."""

    number: str
    queue: str
    data: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class Hangup(Effect):
    """End the call."""

    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SetVariable(Effect):
    """A session variable changed (for the call record and the screen pop)."""

    name: str
    value: Any


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeEntered(Effect):
    """The session entered ``node`` of ``flow`` (``call.ivr``)."""

    flow: str
    node: str
    node_type: str


@dataclass(frozen=True, kw_only=True, slots=True)
class DigitsCollected(Effect):
    """The caller entered ``digits`` at ``node`` (``call.ivr``)."""

    flow: str
    node: str
    digits: str


@dataclass(frozen=True, kw_only=True, slots=True)
class FlowEnded(Effect):
    """The session is over: ``outcome`` is one of :data:`TERMINAL_OUTCOMES`."""

    outcome: str
    flow: str
    node: str
    variables: Mapping[str, Any]
