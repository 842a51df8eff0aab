"""The registrar on Trio: answers REGISTER requests the SIP endpoint hands
over, expires bindings on time, and forwards every registration change to a
sink (the ACD service, the event log).

Thin by design (DESIGN rule 4): the decisions are the pure
:class:`~orchestrator.registrar.registrar.Registrar`'s; this class supplies
``now`` from ``clock`` (POSIX time by default, so stored bindings keep their
meaning across a restart), sends the response through the request's server
transaction, wakes its expiry task when an earlier expiry appears, and calls
the sink with each event in order. ``await nursery.start(service.run)``
restores the store's bindings (announcing them as ``device.registered`` with
``restored=True``) before it returns.

It plugs into :class:`orchestrator.transport.SipEndpoint` as the request
handler, or in front of another one: ``endpoint.handler = service.handler(b2bua.handle)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from orchestrator.sip import Address, Request, Response, SipUri

from .events import RegistrationEvent
from .location import Binding
from .registrar import Registrar, RegistrarStatistics

__all__ = ["ChannelSink", "EventSink", "RegistrarService", "ServiceStatistics"]

log = logging.getLogger("hotline.registrar")

EventSink = Callable[[RegistrationEvent], None]


class _Incoming(Protocol):
    """What the service needs of :class:`orchestrator.transport.IncomingRequest`."""

    request: Request
    source: Address

    def send_response(self, response: Response) -> bool: ...


class ChannelSink:
    """An :data:`EventSink` feeding a Trio memory channel without blocking.

    A full channel drops the event and counts it in :attr:`dropped` (give the
    channel room: ``trio.open_memory_channel(1000)``).
    """

    def __init__(self, channel: trio.MemorySendChannel[RegistrationEvent]) -> None:
        self.channel = channel
        self.dropped = 0

    def __call__(self, event: RegistrationEvent) -> None:
        try:
            self.channel.send_nowait(event)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += 1


@dataclass(frozen=True)
class ServiceStatistics:
    registrar: RegistrarStatistics
    handled: int
    events_emitted: int
    sink_errors: int
    responses_unsent: int


class RegistrarService:
    """Trio driver of a :class:`Registrar` (see the module docs)."""

    def __init__(
        self, registrar: Registrar, *, sink: EventSink | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        if not isinstance(registrar, Registrar):
            raise ValueError("registrar: must be a Registrar")
        if sink is not None and not callable(sink):
            raise ValueError("sink: must be callable with one event, or None")
        self.registrar = registrar
        self.location = registrar.location
        self.sink = sink
        self.clock = clock
        self._wakeup = trio.Event()
        self._handled = self._emitted = self._sink_errors = self._unsent = 0

    # -- requests -------------------------------------------------------------------------------
    def handle(self, incoming: _Incoming) -> bool:
        """Answer ``incoming`` if it is a REGISTER (True); leave anything else (False)."""
        request = incoming.request
        if request.method != "REGISTER":
            return False
        self._handled += 1
        outcome = self.registrar.handle_register(request, incoming.source, self.clock())
        if not incoming.send_response(outcome.response):
            self._unsent += 1
        if outcome.events:
            self._emit(outcome.events)
            self._wakeup.set()
        return True

    def handler(self, fallback: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
        """An endpoint handler: REGISTER here, everything else to ``fallback``."""

        def handle(incoming: Any) -> None:
            if not self.handle(incoming) and fallback is not None:
                fallback(incoming)

        return handle

    def lookup(self, aor: str | SipUri) -> list[Binding]:
        """The live contacts of ``aor``, best first (the B2BUA's Locator)."""
        return self.location.lookup(aor, self.clock())

    def is_registered(self, aor: str | SipUri) -> bool:
        return self.location.is_registered(aor, self.clock())

    # -- running --------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[RegistrarService] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore stored bindings, then expire bindings on time until cancelled."""
        self._emit(self.location.restore(self.clock()))
        task_status.started(self)
        while True:
            due = self.location.next_expiry()
            delay = math.inf if due is None else max(0.0, due - self.clock())
            with trio.move_on_after(delay):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            self._emit(self.location.expire(self.clock()))

    def statistics(self) -> ServiceStatistics:
        return ServiceStatistics(
            registrar=self.registrar.statistics(self.clock()),
            handled=self._handled,
            events_emitted=self._emitted,
            sink_errors=self._sink_errors,
            responses_unsent=self._unsent,
        )

    def _emit(self, events: list[RegistrationEvent]) -> None:
        for event in events:
            self._emitted += 1
            if self.sink is None:
                continue
            try:
                self.sink(event)
            except Exception:  # a broken consumer must not stop registrations
                self._sink_errors += 1
                log.exception("registrar: the event sink failed on %s", event.type)
