"""Call events and call records, and the sinks that carry them out.

Event names are the product's public ones (CONTRACT.md): ``call.incoming``,
``call.answered``, ``call.held``, ``call.resumed``, ``call.transferred``,
``call.monitored`` / ``call.monitor_ended`` (a supervisor on the call, its mode) and
``call.ended`` (carrying the :class:`CallRecord`). The B2BUA emits them
through an :class:`EventSink`; the event log and the JSON-RPC layer consume
them. A sink's ``emit`` is synchronous and must not block: use
:class:`ChannelSink` (a Trio memory channel) or :class:`CallbackSink`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import trio

__all__ = [
    "CALL_EVENT_NAMES", "CallEvent", "CallRecord", "LegRecord", "EventSink", "ChannelSink", "CallbackSink",
    "NullSink",
]

log = logging.getLogger("hotline.calls")

CALL_EVENT_NAMES = frozenset({
    "call.incoming", "call.answered", "call.held", "call.resumed", "call.transferred", "call.ended",
    "call.monitored", "call.monitor_ended",
})


@dataclass(frozen=True, kw_only=True)
class LegRecord:
    """One SIP leg of a call, as the record keeps it."""

    leg_id: int
    role: str  # "uas" (it called us) or "uac" (we called it)
    sip_call_id: str
    peer: str  # the far end's URI
    codec: str | None
    answered: bool
    sip_code: int | None  # the final response on its INVITE (sent or received)


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """What a finished call was. Times are POSIX seconds (``None`` if it never got there);
    durations are seconds measured on the monotonic clock."""

    call_id: str
    direction: str  # "inbound" or "outbound" (originated)
    caller: str
    callee: str
    route: str  # where routing sent it: "extension:9001", "queue:support", "uri:sip:..."
    started_at: float
    answered_at: float | None
    ended_at: float
    ring_seconds: float
    talk_seconds: float
    hold_seconds: float
    cause: str  # normal_clearing, caller_cancel, no_answer, busy, rejected, failed, media_timeout...
    sip_code: int | None
    ended_by: str | None  # "caller", "callee", "system"
    transferred: bool
    legs: tuple[LegRecord, ...]
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))


@dataclass(frozen=True, kw_only=True)
class CallEvent:
    """One call event. ``at`` is POSIX time; ``details`` holds the event's own fields
    (who held, the transfer target...); ``record`` is set on ``call.ended``."""

    name: str
    call_id: str
    at: float
    caller: str
    callee: str
    details: Mapping[str, Any] = field(default_factory=dict)
    record: CallRecord | None = None

    def __post_init__(self) -> None:
        if self.name not in CALL_EVENT_NAMES:
            raise ValueError(f"name: {self.name!r} is not a call event name")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


@runtime_checkable
class EventSink(Protocol):
    def emit(self, event: CallEvent) -> None:
        ...


class NullSink:
    """Drops every event (a manager without consumers)."""

    def emit(self, event: CallEvent) -> None:
        pass


class CallbackSink:
    """Calls ``callback(event)``; an exception from it is logged and counted, never raised."""

    def __init__(self, callback: Callable[[CallEvent], None]) -> None:
        if not callable(callback):
            raise ValueError("callback: must be callable")
        self.callback = callback
        self.errors = 0

    def emit(self, event: CallEvent) -> None:
        try:
            self.callback(event)
        except Exception:
            self.errors += 1
            log.exception("call event callback failed on %s", event.name)


class ChannelSink:
    """Sends events into a Trio memory channel without waiting.

    Give the channel room for bursts (``trio.open_memory_channel(10_000)``); an
    event that finds it full is dropped and counted in :attr:`dropped` (the
    consumer is too slow) - the emitter never blocks a call.
    """

    def __init__(self, channel: trio.MemorySendChannel[CallEvent]) -> None:
        self.channel = channel
        self.sent = 0
        self.dropped = 0

    def emit(self, event: CallEvent) -> None:
        try:
            self.channel.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.dropped += 1
            return
        self.sent += 1
