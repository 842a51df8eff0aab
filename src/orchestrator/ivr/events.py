"""Events a flow session consumes: what the caller and the media engine did.

Small frozen records with keyword-only fields, validated when built (a bad
event is the driver's fault and raises ValueError at once, not later inside
the machine). ``play_id``, ``timer_id`` and ``request_id`` name the effect an
event answers; ``None`` means "the one outstanding now". An event that answers
an effect the session no longer waits for (a timer cancelled by a digit that
arrived first) is ignored and counted, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "Event",
    "CallStarted",
    "Digit",
    "PlaybackDone",
    "Timeout",
    "LookupResult",
    "LookupFailed",
    "RecordDone",
    "QueueResult",
    "CallerHangup",
    "DTMF_DIGITS",
    "QUEUE_OUTCOMES",
    "LOOKUP_FAILURES",
]

DTMF_DIGITS = frozenset("0123456789*#ABCD")
QUEUE_OUTCOMES = frozenset({"answered", "timeout", "unavailable"})
LOOKUP_FAILURES = frozenset({"error", "timeout"})


def _frozen_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected a mapping, not {type(value).__name__}")
    return MappingProxyType(dict(value))


def _optional_id(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{what}: expected an int or None")


class Event:
    """Base class of session events."""

    __slots__ = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class CallStarted(Event):
    """The call reached the flow; ``variables`` seed the session (caller_id, called...)."""

    variables: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", _frozen_mapping(self.variables, "variables"))


@dataclass(frozen=True, kw_only=True, slots=True)
class Digit(Event):
    """One DTMF digit (RFC 4733 events 0-9, *, #, A-D)."""

    digit: str

    def __post_init__(self) -> None:
        if not isinstance(self.digit, str) or self.digit not in DTMF_DIGITS or len(self.digit) != 1:
            raise ValueError(f"digit: {self.digit!r} is not one DTMF digit (0-9, *, #, A-D)")


@dataclass(frozen=True, kw_only=True, slots=True)
class PlaybackDone(Event):
    """A ``Play`` finished (not sent for a play the session stopped itself)."""

    play_id: int | None = None

    def __post_init__(self) -> None:
        _optional_id(self.play_id, "play_id")


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeout(Event):
    """A ``StartTimer`` expired."""

    timer_id: int | None = None

    def __post_init__(self) -> None:
        _optional_id(self.timer_id, "timer_id")


@dataclass(frozen=True, kw_only=True, slots=True)
class LookupResult(Event):
    """A ``Lookup`` answered; ``data`` is the decoded JSON object."""

    data: Mapping[str, Any]
    request_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _frozen_mapping(self.data, "data"))
        _optional_id(self.request_id, "request_id")


@dataclass(frozen=True, kw_only=True, slots=True)
class LookupFailed(Event):
    """A ``Lookup`` failed: ``reason`` is ``"error"`` or ``"timeout"``."""

    reason: str = "error"
    request_id: int | None = None

    def __post_init__(self) -> None:
        if self.reason not in LOOKUP_FAILURES:
            raise ValueError(f"reason: {self.reason!r} is not one of {sorted(LOOKUP_FAILURES)}")
        _optional_id(self.request_id, "request_id")


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordDone(Event):
    """A ``Record`` ended; ``path`` is where the engine stored it ('' if nothing was kept)."""

    path: str
    duration: float

    def __post_init__(self) -> None:
        if not isinstance(self.path, str):
            raise ValueError("path: expected a string")
        if (
            isinstance(self.duration, bool)
            or not isinstance(self.duration, (int, float))
            or not math.isfinite(self.duration)
            or self.duration < 0
        ):
            raise ValueError(f"duration: {self.duration!r} is not a finite number of seconds >= 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueResult(Event):
    """What the ACD did with an ``Enqueue``: answered, timeout (max wait) or unavailable."""

    outcome: str

    def __post_init__(self) -> None:
        if self.outcome not in QUEUE_OUTCOMES:
            raise ValueError(f"outcome: {self.outcome!r} is not one of {sorted(QUEUE_OUTCOMES)}")


@dataclass(frozen=True, kw_only=True, slots=True)
class CallerHangup(Event):
    """The caller hung up."""
