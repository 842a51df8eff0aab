"""The glue between the services: small adapters the daemon needs and no service owns.

* :class:`EventTap` - the call centre's event bus as the daemon sees it: every
  event the call centre appends to the event log passes here on its way to
  the JSON-RPC hub; the daemon follows queue calls (which agent, which
  queue), starts the recording policy when an agent answers, writes a log
  line per finished call, and lets the demo listen;
* :class:`CallEvents` - the B2BUA's event sink: its call events go to the
  call centre (log, ACD) and to the recording service;
* :class:`DaemonLocator` - where an extension or a number is: the registrar's
  bindings (under the domain and its aliases), else the dial plan's trunk
  route for that number (what a callback to a customer's number needs);
* :class:`CallApi` - the JSON-RPC ``call.*`` methods over the CallManager;
* :class:`AlwaysOpenRegistry` - an IVR flow registry whose ``business_hours``
  nodes always take the open branch (``[ivr] always_open``: the demo);
* :func:`draining_handler` - new INVITEs get 503 while the daemon drains.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import trio

from orchestrator.calls import Contact, ToTrunk
from orchestrator.calls.registrar import RegistrarLocator
from orchestrator.control.errors import Conflict, InvalidParams, NotFound
from orchestrator.ivr import FlowRegistry
from orchestrator.ivr.registry import ReloadResult
from orchestrator.sip import SipUri

__all__ = ["AlwaysOpenRegistry", "CallApi", "CallEvents", "DaemonLocator", "EventTap", "SupervisorApi",
           "draining_handler"]

log = logging.getLogger("hotline.daemon")

_ACD_ENDINGS = ("call.abandoned", "call.exited", "call.rejected", "call.wrapup_ended")


class EventTap:
    """The bus the call centre publishes on (see the module docstring).

    ``hub``: the JSON-RPC :class:`~orchestrator.control.EventHub` (or None).
    ``on_answered(call, queue, agent)``: called when the ACD connects a call to
    an agent. ``listeners``: callables taking each event dict (the demo's
    printer, tests).
    """

    def __init__(self, hub: Any = None, *, on_answered: Callable[[str, str, str], None] | None = None) -> None:
        self.hub = hub
        self.on_answered = on_answered
        self.listeners: list[Callable[[dict], None]] = []
        self.queue_calls: dict[str, dict[str, Any]] = {}  # call -> {"queue", "agent"} while in the ACD
        self.published = 0
        self.errors = 0

    def publish(self, event: Any) -> int:
        payload = event.to_dict() if hasattr(event, "to_dict") and not isinstance(event, Mapping) else dict(event)
        kind = payload.get("type")
        call = payload.get("call")
        try:
            self._follow(kind, call, payload)
        except Exception:  # bookkeeping must never stop an event
            self.errors += 1
            log.exception("daemon: following %s failed", kind)
        for listener in list(self.listeners):
            try:
                listener(payload)
            except Exception:
                self.errors += 1
                log.exception("daemon: an event listener failed on %s", kind)
        self.published += 1
        if self.hub is not None:
            return self.hub.publish(payload)
        return 0

    def _follow(self, kind: Any, call: Any, payload: Mapping[str, Any]) -> None:
        if not isinstance(call, str):
            return
        if kind == "call.queued":
            self.queue_calls.setdefault(call, {"queue": payload.get("queue"), "agent": None})
        elif kind in ("call.offered", "call.answered") and payload.get("agent"):
            entry = self.queue_calls.setdefault(call, {"queue": payload.get("queue"), "agent": None})
            entry["queue"] = payload.get("queue") or entry["queue"]
            if kind == "call.answered":
                entry["agent"] = payload["agent"]
                if self.on_answered is not None and entry["queue"]:
                    self.on_answered(call, entry["queue"], payload["agent"])
        elif kind == "call.ended" and "cause" in payload:  # the B2BUA's end of the call (the ACD's has none)
            info = self.queue_calls.get(call, {})
            log.info("call ended", extra={"call": call, "queue": info.get("queue"), "agent": info.get("agent"),
                                          "cause": payload.get("cause"), "reason": payload.get("reason"),
                                          "talk_seconds": payload.get("talk_seconds")})
            if info.get("agent") is None:
                self.queue_calls.pop(call, None)
        elif kind in _ACD_ENDINGS:
            self.queue_calls.pop(call, None)

    def agent_of(self, call: str) -> str | None:
        return self.queue_calls.get(call, {}).get("agent")

    def queue_of(self, call: str) -> str | None:
        return self.queue_calls.get(call, {}).get("queue")


class SupervisorApi:
    """The JSON-RPC ``supervisor.listen/whisper/barge`` methods over the B2BUA's calls.

    ``device``: the supervisor's registered device (an extension user) that Hotline rings;
    when it answers it joins the call's bridge in ``mode``. On a live session the same
    methods switch the mode without dropping the supervisor's call.
    """

    def __init__(self, manager: Any, *, ring_timeout: float = 20.0) -> None:
        self.manager = manager
        self.ring_timeout = ring_timeout
        self.sessions = 0
        self.refused = 0

    async def monitor(self, call: str, device: str, mode: str, *, supervisor: str) -> dict[str, Any]:
        found = self.manager.get(call)
        if found is None or found.ended:
            raise NotFound(f"call: no live call {call!r}")
        if found.b is None or not found.connected:
            raise Conflict(f"supervisor.{mode}: call {call} is not connected to an agent")
        switching = found.monitored is not None
        result = await found.monitor(device, mode, ring_timeout=self.ring_timeout)
        if not result.answered:
            self.refused += 1
            raise Conflict(f"supervisor.{mode}: device {device!r} did not answer ({result.cause})")
        if not switching:
            self.sessions += 1
        log.info("supervisor %s: %s on call %s from %s", supervisor, mode, call, device,
                 extra={"call": call, "supervisor": supervisor, "mode": mode, "device": device})
        return {"call": call, "device": device, "mode": mode, "switched": switching,
                "supervisor": supervisor}


class CallEvents:
    """The B2BUA's :class:`~orchestrator.calls.EventSink`: the call centre first, then each extra sink."""

    def __init__(self, first: Any, *others: Callable[[Any], None]) -> None:
        self.first = first
        self.others = list(others)
        self.errors = 0

    def emit(self, event: Any) -> None:
        self.first.emit(event)
        for sink in self.others:
            try:
                sink(event)
            except Exception:
                self.errors += 1
                log.exception("daemon: a call event sink failed on %s", getattr(event, "name", event))


class DaemonLocator:
    """The B2BUA's :class:`~orchestrator.calls.Locator` (see the module docstring).

    ``registrar``: the RegistrarService (``lookup(aor)``). ``domains``: the
    hosts an AOR may be registered under, the B2BUA's domain first.
    ``router``: returns the current dial plan (it is swapped on reload).
    ``trunks``: returns the B2BUA's outbound trunks by name.
    """

    def __init__(self, registrar: Any, domains: Iterable[str], *, router: Callable[[], Any] | None = None,
                 trunks: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.bindings = RegistrarLocator(registrar)
        self.domains = list(dict.fromkeys(domains))
        self.router = router
        self.trunks = trunks
        self.trunk_routes = 0

    async def lookup(self, aor: str) -> list[Contact]:
        user = aor.split(":", 1)[-1].split("@", 1)[0] if "@" in aor else None
        if user is None:
            return list(await self.bindings.lookup(aor))
        found: list[Contact] = []
        seen: set[str] = set()
        for host in self.domains:
            for contact in await self.bindings.lookup(f"sip:{user}@{host}"):
                key = str(contact.uri)
                if key not in seen:
                    seen.add(key)
                    found.append(contact)
        if found or self.router is None or self.trunks is None:
            return found
        # Not registered: a number the dial plan sends out through a trunk (a callback to a customer).
        from orchestrator.calls import RouteRequest
        from orchestrator.calls.interfaces import Identity
        from orchestrator.sip import Address

        target = self.router().route(RouteRequest(user=user, to_user=user, from_user=None, request_uri=aor,
                                                  source=Address("UDP", "127.0.0.1", 0),
                                                  identity=Identity("anonymous", "system")))
        if isinstance(target, ToTrunk):
            trunk = self.trunks().get(target.trunk)
            if trunk is not None:
                self.trunk_routes += 1
                uri: SipUri = trunk.request_uri(target.number)
                return [Contact(aor=aor, uri=uri)]
        return []


def _call_dict(call: Any, tap: EventTap | None) -> dict[str, Any]:
    queue = tap.queue_of(call.id) if tap is not None else None
    route = call.route or ""
    if queue is None and route.startswith("queue:"):
        queue = route[6:]
    return {"call": call.id, "state": call.state, "direction": call.direction, "caller": call.caller,
            "callee": call.callee, "route": route, "queue": queue,
            "agent": tap.agent_of(call.id) if tap is not None else None, "started_at": call.started_at,
            "answered_at": call.answered_at, "held": call.held, "data": dict(call.data)}


class CallApi:
    """:class:`~orchestrator.control.CallService` over the B2BUA's :class:`~orchestrator.calls.CallManager`.

    ``accepting()`` says whether new calls are taken (False while draining).
    ``record(event)`` appends to the event log (``call.set_data``).
    """

    def __init__(self, manager: Any, *, tap: EventTap | None = None, record: Callable[[dict], Any] | None = None,
                 accepting: Callable[[], bool] = lambda: True) -> None:
        self.manager = manager
        self.tap = tap
        self.record = record
        self.accepting = accepting

    def _call(self, call: str) -> Any:
        found = self.manager.get(call)
        if found is None or found.ended:
            raise NotFound(f"call: no live call {call!r}")
        return found

    def list_calls(self) -> list[dict[str, Any]]:
        return [_call_dict(c, self.tap) for c in self.manager.calls() if not c.ended]

    def get_call(self, call: str) -> dict[str, Any]:
        return _call_dict(self._call(call), self.tap)

    async def originate(self, from_: str, to: str, *, caller_id: str | None = None, queue: str | None = None,
                        data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from orchestrator.calls import CapacityError

        if not self.accepting():
            raise Conflict("call.originate: the daemon is draining and takes no new calls")
        extra = dict(data or {})
        if queue is not None:
            extra["queue"] = queue
        try:
            call = await self.manager.originate(from_, to, caller_id=caller_id, data=extra)
        except CapacityError as exc:
            raise Conflict(f"call.originate: {exc}") from None
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None
        return _call_dict(call, self.tap)

    def answer(self, call: str) -> dict[str, Any]:
        self._call(call)
        raise Conflict("call.answer: a call ringing on a device is answered by the device (its user)")

    async def hangup(self, call: str, *, reason: str | None = None) -> dict[str, Any]:
        found = self._call(call)
        await found.hangup(reason or "api_hangup")
        return _call_dict(found, self.tap)

    def hold(self, call: str) -> dict[str, Any]:
        found = self._call(call)
        if not found.connected:
            raise Conflict(f"call.hold: call {call} is {found.state}, not connected")
        found.hold()
        return _call_dict(found, self.tap)

    def unhold(self, call: str) -> dict[str, Any]:
        found = self._call(call)
        if not found.held:
            raise Conflict(f"call.unhold: call {call} is not on hold")
        found.unhold()
        return _call_dict(found, self.tap)

    def transfer(self, call: str, to: str, *, mode: str = "blind") -> dict[str, Any]:
        self._call(call)
        raise Conflict("call.transfer: the B2BUA has no transfer verb for the API yet; "
                       "transfer from the phone (REFER) instead")

    def send_dtmf(self, call: str, digits: str) -> dict[str, Any]:
        found = self._call(call)
        try:
            found.send_dtmf(digits, to="callee" if found.b is not None else "caller")
        except RuntimeError as exc:
            raise Conflict(f"call.send_dtmf: {exc}") from None
        return _call_dict(found, self.tap)

    async def set_data(self, call: str, data: Mapping[str, Any], *, merge: bool = True) -> dict[str, Any]:
        found = self._call(call)
        if not merge:
            found.data.clear()
        found.data.update(data)
        if self.record is not None:
            result = self.record({"type": "call.data", "call": call, "data": dict(data), "merge": merge})
            if hasattr(result, "__await__"):
                await result
        return _call_dict(found, self.tap)


class _Open:
    """A business-hours calendar that is always open (``[ivr] always_open``)."""

    def holiday_name(self, now: Any) -> None:
        return None

    def is_open(self, now: Any) -> bool:
        return True


class AlwaysOpenRegistry(FlowRegistry):
    """A :class:`~orchestrator.ivr.FlowRegistry` whose ``business_hours`` nodes always take the open branch.

    The demo runs at any hour: its callers should meet agents, not the
    after-hours flow, on a Sunday morning. Applied to every set of flows it
    loads or is given, so a reload keeps it.
    """

    def replace(self, flows: Any) -> ReloadResult:
        from orchestrator.ivr.nodes import BusinessHoursNode

        for flow in flows.values() if hasattr(flows, "values") else ():
            for node in getattr(flow, "nodes", {}).values():
                if isinstance(node, BusinessHoursNode):
                    node.hours = _Open()
        return super().replace(flows)


def draining_handler(handler: Callable[[Any], None], draining: Callable[[], bool], *,
                     retry_after: int = 30) -> Callable[[Any], None]:
    """An endpoint handler that answers new INVITEs 503 (with Retry-After) while ``draining()``."""

    def handle(incoming: Any) -> None:
        request = incoming.request
        if request.method == "INVITE" and draining():
            try:
                new = not request.to.tag
            except Exception:  # a malformed To: let the normal path answer it
                new = False
            if new:
                incoming.respond(503, headers=[("Retry-After", str(retry_after))])
                return
        handler(incoming)

    return handle


async def wait_until(predicate: Callable[[], bool], *, poll: float = 0.05) -> None:
    """Poll ``predicate`` until it is true (bound the wait with a cancel scope)."""
    while not predicate():
        await trio.sleep(poll)
