"""Decisions the routing policy hands to the (Trio) ACD service to carry out.

The policy never rings a phone or plays a prompt itself: it returns these
records, in order, mixed with the :mod:`~orchestrator.acd.events` records the
event log stores. The service executes effects and appends events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._records import fast_init

__all__ = [
    "Announce",
    "Bridge",
    "CancelOffer",
    "DialCallback",
    "Effect",
    "Offer",
    "OfferCallbackOption",
    "PlayComfort",
    "RefuseAnswer",
    "Route",
    "StartHoldMusic",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Effect:
    """Base of every decision record."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Offer(Effect):
    """Ring ``device`` of ``agent`` with ``call`` for at most ``ring_timeout`` s.

    ``callback`` is the number to call back (the agent is connected first and
    then the caller dialled), or ``None`` for a live caller. ``data``: the
    call's IVR/CRM data for the screen pop.
    """

    offer: int
    call: str
    queue: str
    agent: str
    device: str
    ring_timeout: float
    caller: str | None = None
    ring_all: bool = False
    callback: str | None = None
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelOffer(Effect):
    """Stop ringing: ``reason`` "answered-elsewhere", "caller-abandoned", "timeout"...."""

    offer: int
    call: str
    agent: str
    device: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Bridge(Effect):
    """Connect the caller of ``call`` with the agent who answered ``offer``."""

    offer: int
    call: str
    queue: str
    agent: str
    device: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RefuseAnswer(Effect):
    """An agent answered an offer that is no longer live: hang that leg up.

    ``reason``: "answered-elsewhere" (another agent won a ring-all race),
    "caller-abandoned", "timeout", "unknown-offer"...
    """

    offer: int
    agent: str | None
    device: str | None
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StartHoldMusic(Effect):
    """Play ``music`` to the waiting caller (on joining a queue)."""

    call: str
    queue: str
    music: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Announce(Effect):
    """Tell the caller their position (1 = next) and estimated wait (s; None: unknown)."""

    call: str
    queue: str
    position: int
    ewt: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class PlayComfort(Effect):
    """Play the queue's comfort prompt to the waiting caller."""

    call: str
    queue: str
    prompt: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OfferCallbackOption(Effect):
    """Offer the caller a callback ("press 1 to keep your place and be called back")."""

    call: str
    queue: str
    position: int
    ewt: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class DialCallback(Effect):
    """Dial the caller back at ``number`` for ``agent`` (attempt 1, 2...).

    Report the outcome with ``callback_answered`` / ``callback_failed``.
    """

    call: str
    queue: str
    agent: str
    device: str
    number: str
    attempt: int
    agent_connected: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Route(Effect):
    """Send the caller out of the ACD to ``destination`` (voicemail, hang-up...)."""

    call: str
    queue: str
    destination: str
    reason: str


# The policy builds one or two of these per routing decision: construct them without the
# dataclass __init__'s per-field object.__setattr__ (same signature and behaviour).
for _cls in (Announce, Bridge, CancelOffer, DialCallback, Offer, OfferCallbackOption, PlayComfort, RefuseAnswer,
             Route, StartHoldMusic):
    fast_init(_cls)
del _cls
