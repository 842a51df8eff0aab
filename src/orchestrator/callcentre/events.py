"""Where the call centre's facts go, and what it learns from the B2BUA and the registrar.

* :class:`EventFanout` - the ``record`` callable of the ACD service and the
  IVR runner: each event (an ACD record or a dict) is appended to the
  :class:`~orchestrator.store.EventLog` (``append_nowait``: in order, never
  blocking the event loop) and published on the JSON-RPC event bus
  (:class:`~orchestrator.control.EventHub` or anything with ``publish``);
* :class:`CallEventBridge` - the B2BUA's :class:`~orchestrator.calls.EventSink`:
  its call events become log/bus events in the store's vocabulary
  (:mod:`orchestrator.store.cdr`), and tell the ACD what it must know: a
  device on a call that is not a queue call (busy / idle), hold and resume
  of queue calls, a transfer or the end of a call an agent had;
* :class:`RegistrationBridge` - the registrar's sink: ``device.registered``
  / ``device.unregistered`` become the ACD's device inputs (the device is
  the user part of the address-of-record: ``sip:9001@hotline`` -> ``9001``).

Every method here is synchronous and cheap: the emitters call them inline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CallEventBridge",
    "EventBus",
    "EventFanout",
    "FanoutStatistics",
    "RegistrationBridge",
    "device_of",
]

log = logging.getLogger("hotline.callcentre")


@runtime_checkable
class EventBus(Protocol):
    """The JSON-RPC event bus (``EventHub.publish``): takes a dict with ``type``, never blocks."""

    def publish(self, event: Any) -> Any: ...


def device_of(uri: str | None) -> str | None:
    """The device (user part) a SIP URI or AOR names: ``sip:9001@hotline`` -> ``9001``."""
    if not uri:
        return None
    if ":" not in uri:
        return uri
    rest = uri.split(":", 1)[1]
    if "@" not in rest:
        return None
    user = rest.split("@", 1)[0].split(";", 1)[0]
    return user or None


@dataclass(frozen=True, kw_only=True)
class FanoutStatistics:
    events: int
    logged: int
    published: int
    log_errors: int
    publish_errors: int


class EventFanout:
    """``record(event)``: append to the event log and publish on the bus (either may be None)."""

    def __init__(self, log: Any = None, bus: EventBus | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        if log is not None and not callable(getattr(log, "append_nowait", None)):
            raise ValueError("log: must have append_nowait(event) (an orchestrator.store.EventLog)")
        if bus is not None and not callable(getattr(bus, "publish", None)):
            raise ValueError("bus: must have publish(event) (an orchestrator.control.EventHub)")
        self.log = log
        self.bus = bus
        self.clock = clock
        self._events = self._logged = self._published = self._log_errors = self._publish_errors = 0

    def __call__(self, event: Any) -> None:
        payload = event.to_dict() if hasattr(event, "to_dict") and not isinstance(event, Mapping) else dict(event)
        if payload.get("at") is None:
            payload["at"] = self.clock()
        self._events += 1
        if self.log is not None:
            try:
                self.log.append_nowait(payload)
                self._logged += 1
            except Exception:  # a closed or failing store must not stop calls
                self._log_errors += 1
                log.exception("callcentre: appending %s failed", payload.get("type"))
        if self.bus is not None:
            try:
                self.bus.publish(payload)
                self._published += 1
            except Exception:
                self._publish_errors += 1
                log.exception("callcentre: publishing %s failed", payload.get("type"))

    def statistics(self) -> FanoutStatistics:
        return FanoutStatistics(events=self._events, logged=self._logged, published=self._published,
                                log_errors=self._log_errors, publish_errors=self._publish_errors)


class CallEventBridge:
    """The B2BUA's event sink (``CallManager(events=bridge)``); see the module docstring.

    ``acd``: the :class:`~orchestrator.acd.service.AcdService`. ``record``:
    the :class:`EventFanout`. ``manager``: the CallManager (for a call's
    route while it is live); set later with ``bridge.manager = ...``.
    """

    def __init__(self, acd: Any, record: Callable[[Any], None], *, manager: Any = None) -> None:
        self.acd = acd
        self.record = record
        self.manager = manager
        self._devices: dict[str, tuple[str, ...]] = {}  # call id -> devices it keeps busy
        self.handled = 0
        self.errors = 0

    def emit(self, event: Any) -> None:
        self.handled += 1
        try:
            self._emit(event)
        except Exception:
            self.errors += 1
            log.exception("callcentre: call event %s failed", getattr(event, "name", event))

    def _route(self, call_id: str) -> str:
        manager = self.manager
        call = manager.get(call_id) if manager is not None else None
        return getattr(call, "route", "") or ""

    def _busy(self, call_id: str, *uris: str | None) -> None:
        devices = tuple(d for d in (device_of(u) for u in uris) if d)
        known = self._devices.get(call_id, ())
        for device in devices:
            if device not in known:
                self.acd.device_call_started(device, call_id)
        self._devices[call_id] = tuple(dict.fromkeys(known + devices))

    def _emit(self, event: Any) -> None:
        name = event.name
        call = event.call_id
        details = dict(event.details)
        base = {"type": name, "at": event.at, "call": call}
        acd = self.acd
        ours = acd.is_queue_call(call)
        if name == "call.incoming":
            self.record({**base, "caller": event.caller, "callee": event.callee, **details})
            # the caller's device is on a call; so is a dialled extension's
            self._busy(call, event.caller, event.callee)
            return
        if name == "call.answered":
            route = self._route(call)
            if ours or route.startswith(("queue:", "ivr:")):
                return  # the IVR answering is not an agent answering: the ACD's call.answered says that
            self.record({**base, "caller": event.caller, "callee": event.callee, **details})
            if call not in self._devices:  # an originated call (no call.incoming): both ends are busy
                self._busy(call, event.caller, event.callee)
            return
        if name in ("call.held", "call.resumed"):
            handled = acd.call_held(call) if name == "call.held" else acd.call_resumed(call)
            if not handled:
                self.record({**base, **details})
            return
        if name == "call.transferred":
            self.record({**base, **details})
            if ours:
                acd.call_gone(call)  # the agent's part of the call ends here
            return
        if name == "call.ended":
            record = event.record
            payload = {**base, "cause": details.get("cause"), "sip_code": details.get("sip_code")}
            if record is not None:
                payload.update(ended_by=record.ended_by, direction=record.direction, route=record.route,
                               ring_seconds=record.ring_seconds, talk_seconds=record.talk_seconds,
                               hold_seconds=record.hold_seconds, transferred=record.transferred)
                if record.ended_by in ("caller", "callee"):
                    payload["reason"] = f"{record.ended_by}_hangup"
            self.record(payload)
            for device in self._devices.pop(call, ()):
                acd.device_call_ended(device, call)
            acd.call_gone(call)
            return
        self.record({**base, **details})


class RegistrationBridge:
    """The registrar's sink (``RegistrarService(sink=bridge)``): device events to the ACD and the log."""

    def __init__(self, acd: Any, record: Callable[[Any], None] | None = None, *,
                 device: Callable[[str], str | None] = device_of) -> None:
        self.acd = acd
        self.record = record
        self.device = device
        self.handled = 0
        self.errors = 0

    def __call__(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind not in ("device.registered", "device.unregistered"):
            return
        self.handled += 1
        try:
            device = self.device(event.aor)
            if device is None:
                return
            if kind == "device.registered":
                self.acd.device_registered(device)
            else:
                self.acd.device_unregistered(device)
            if self.record is not None:
                payload = event.to_dict()
                payload["device"] = device
                self.record(payload)
        except Exception:
            self.errors += 1
            log.exception("callcentre: registration event %s failed", kind)
