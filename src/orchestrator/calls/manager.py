"""The B2BUA: takes requests from the SIP endpoint, runs calls, anchors media.

:class:`CallManager` is the request handler of a
:class:`~orchestrator.transport.SipEndpoint`. For a new INVITE it checks
capacity (concurrent calls and calls per second: 503 with Retry-After when
over), authenticates through the :class:`Authenticator` (an unauthenticated
request gets the same challenge whoever it names), answers the SDP offer from
a new engine leg, routes the call with the :class:`Router` and then either
dials the target (extension devices from the :class:`Locator`, a trunk, a
URI) or hands the call to the registered :class:`CallHandler` ("queue" for
the ACD, "ivr" for IVR flows). In-dialog requests go to the leg whose dialog
they match (RFC 3261 12.2.2; 481 otherwise), CANCEL to the INVITE it cancels.
An INVITE with Replaces (RFC 3891) takes the place of the leg it names.

:meth:`originate` calls one party, then another, and bridges them (what CRMs
use through JSON-RPC ``call.originate``).

One engine per process: the manager consumes ``engine.events()`` itself
(``run(consume_engine_events=False)`` and :meth:`handle_engine_event` let a
daemon that demultiplexes engine events feed it instead).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from orchestrator.sip import MediaPolicy, ResponseReceived, SipParseError, SipUri, TransactionKey, parse_uri
from orchestrator.transport import IncomingRequest, SipEndpoint, TokenBucket, TransportUnavailable

from .call import Call, Playback, _user_of, cause_for_status
from .events import CallEvent, EventSink, NullSink
from .interfaces import AuthChallenge, Authenticator, AuthOk, CallHandler, Identity, Locator
from .leg import Destination, LegState, SipLeg
from .media import MediaSession
from .routing import (
    Reject,
    Router,
    RouteRequest,
    RouteTarget,
    ToExtension,
    ToIvr,
    ToQueue,
    ToTrunk,
    ToUri,
    Trunk,
    describe,
)

__all__ = ["CallManager", "CallManagerConfig", "CallManagerStatistics", "CapacityError"]

log = logging.getLogger("hotline.calls")


class CapacityError(RuntimeError):
    """originate() refused: the configured capacity is reached."""


@dataclass(frozen=True, kw_only=True)
class CallManagerConfig:
    """B2BUA settings.

    ``domain`` makes addresses-of-record (``sip:<user>@<domain>``) for Locator
    lookups and our From headers. ``max_calls`` and ``max_cps`` (with
    ``cps_burst``) bound the load: a new INVITE over either is answered 503
    with ``Retry-After``; so is one that arrives while the event loop runs
    late by more than ``max_loop_lag`` seconds (the process is saturated: taking
    more calls would only add retransmissions, so new calls are turned away
    while calls in progress finish), or while requests wait in the UDP socket
    for more than ``max_queue_delay`` seconds before we read them (the same
    overload seen from the network side). ``music_on_hold`` is a mono WAV the engine loops to
    a held party (None: the held party hears silence). ``media_timeout``
    seconds without RTP end an answered call (0: never).
    """

    domain: str = "hotline"
    media_policy: MediaPolicy = MediaPolicy(codecs=("PCMU", "PCMA", "opus"))
    media_address: str | None = None
    music_on_hold: str | None = None
    tone_region: str = "us"
    ring_timeout: float = 60.0
    media_timeout: float = 60.0
    hangup_on_media_timeout: bool = True
    early_media: bool = True
    max_calls: int | None = None
    max_cps: float | None = None
    cps_burst: float | None = None
    retry_after: int = 5
    max_loop_lag: float | None = 0.25
    max_queue_delay: float | None = 0.3
    user_agent: str = "Hotline"
    trunks: tuple[Trunk, ...] = ()
    node_id: str = "hl"

    def __post_init__(self) -> None:
        if not self.domain or any(c in self.domain for c in " <>;\r\n"):
            raise ValueError(f"domain: not a host name: {self.domain!r}")
        if not isinstance(self.media_policy, MediaPolicy):
            raise ValueError("media_policy: must be a MediaPolicy")
        for name in ("ring_timeout",):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive number of seconds")
        if self.media_timeout < 0:
            raise ValueError("media_timeout: must be >= 0 (0 disables it)")
        if self.max_calls is not None and self.max_calls < 1:
            raise ValueError("max_calls: must be >= 1 or None")
        if self.max_cps is not None and self.max_cps <= 0:
            raise ValueError("max_cps: must be > 0 or None")
        for name in ("max_loop_lag", "max_queue_delay"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name}: must be a positive number of seconds or None")
        if not isinstance(self.retry_after, int) or self.retry_after < 1:
            raise ValueError("retry_after: must be an int >= 1 (seconds)")
        if self.tone_region not in ("us", "eu", "cn"):
            raise ValueError("tone_region: must be us, eu or cn")
        names = [t.name for t in self.trunks]
        if len(set(names)) != len(names):
            raise ValueError("trunks: names must be unique")


@dataclass(frozen=True)
class CallManagerStatistics:
    active_calls: int
    calls_total: int
    calls_answered: int
    rejected_overload: int
    challenged: int
    auth_rejected: int
    rejected_by_route: int
    no_ack_timeouts: int
    holds: int
    transfers_requested: int
    transfers: int
    digits: int
    info_digits: int
    bridges: int
    engine_events: int
    stray_responses: int
    rejected_loop_lag: int
    loop_lag: float
    dialogs: int
    engine_legs: int


@dataclass
class _Registry:
    dialogs: dict[tuple[str, str], SipLeg] = field(default_factory=dict)
    invites: dict[TransactionKey, SipLeg] = field(default_factory=dict)
    engine_legs: dict[int, SipLeg] = field(default_factory=dict)


class CallManager:
    """The B2BUA (see the module docstring). ``await nursery.start(manager.run)``."""

    def __init__(self, endpoint: SipEndpoint, engine: Any, *, router: Router, locator: Locator,
                 authenticator: Authenticator, handlers: Mapping[str, CallHandler] | None = None,
                 events: EventSink | None = None, config: CallManagerConfig = CallManagerConfig(),
                 fallback: Callable[[IncomingRequest], None] | None = None) -> None:
        if not isinstance(endpoint, SipEndpoint):
            raise ValueError("endpoint: must be a SipEndpoint")
        if not isinstance(config, CallManagerConfig):
            raise ValueError("config: must be a CallManagerConfig")
        for name, obj, method in (("router", router, "route"), ("locator", locator, "lookup"),
                                  ("authenticator", authenticator, "check")):
            if not callable(getattr(obj, method, None)):
                raise ValueError(f"{name}: must have a {method}() method")
        handlers = dict(handlers or {})
        for kind, handler in handlers.items():
            if kind not in ("queue", "ivr"):
                raise ValueError(f"handlers: unknown kind {kind!r} (use 'queue' or 'ivr')")
            if not callable(getattr(handler, "handle", None)):
                raise ValueError(f"handlers[{kind!r}]: must have an async handle(call, target) method")
        self.endpoint = endpoint
        self.engine = engine
        self.router = router
        self.locator = locator
        self.authenticator = authenticator
        self.handlers = handlers
        self.events: EventSink = events if events is not None else NullSink()
        self.config = config
        self.fallback = fallback
        self.node_id = config.node_id
        self._trunks = {t.name: t for t in config.trunks}
        self._trunk_sources = {src: t.name for t in config.trunks for src in t.sources}
        self._calls: dict[str, Call] = {}
        self._reg = _Registry()
        self._players: dict[int, Playback] = {}
        self._cps = TokenBucket(config.max_cps, config.cps_burst or max(1.0, config.max_cps)) \
            if config.max_cps else None
        self._nursery: trio.Nursery | None = None
        self._sessions = 0
        self.calls_total = self.calls_answered = 0
        self.stats_overload = self.stats_challenged = self.stats_auth_rejected = self.stats_route_rejected = 0
        self.stats_no_ack = self.stats_holds = self.stats_transfers = self.stats_transfers_requested = 0
        self.stats_digits = self.stats_info_digits = self.stats_bridges = self.stats_engine_events = 0
        self.stats_stray = self.stats_lagging = 0
        self.loop_lag = 0.0
        endpoint.handler = self.handle
        endpoint.on_server_timeout = self._on_server_timeout
        endpoint.on_stray_response = self._on_stray_response

    # ------------------------------------------------------------------ running
    async def run(self, *, consume_engine_events: bool = True,
                  task_status: trio.TaskStatus[CallManager] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve calls until cancelled; then every live call is ended (cause ``shutdown``)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if consume_engine_events:
                    nursery.start_soon(self._engine_events)
                if self.config.max_loop_lag is not None:
                    nursery.start_soon(self._watch_loop_lag)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for call in list(self._calls.values()):
                call._end("shutdown", None, "system")

    async def _watch_loop_lag(self, period: float = 0.05) -> None:
        """How late the event loop runs: a sleep of ``period`` that takes longer means work waited."""
        while True:
            start = trio.current_time()
            await trio.sleep(period)
            lag = trio.current_time() - start - period
            # Rise at once, decay over a few periods: one quiet tick does not end an overload.
            self.loop_lag = lag if lag > self.loop_lag else 0.7 * self.loop_lag + 0.3 * lag

    async def _engine_events(self) -> None:
        async for event in self.engine.events():
            self.handle_engine_event(event)

    def handle_engine_event(self, event: Any) -> None:
        """Route one media engine event to its call (DTMF, playback end, media timeout)."""
        self.stats_engine_events += 1
        try:
            if event.type == "playback_finished":
                playback = self._players.pop(event.object, None)
                if playback is not None:
                    playback.call._playbacks.pop(playback.id, None)
                    playback._finish(event.reason)
                return
            leg = self._reg.engine_legs.get(event.leg)
            if leg is not None:
                leg.call._on_engine_event(leg, event)
        except Exception:
            log.exception("calls: error handling engine event %s", event.type)

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._nursery is None:
            raise RuntimeError("the CallManager is not running (start it with nursery.start(manager.run))")
        self._nursery.start_soon(fn, *args)

    def _emit(self, event: CallEvent) -> None:
        try:
            self.events.emit(event)
        except Exception:
            log.exception("calls: event sink failed on %s", event.name)

    # ------------------------------------------------------------------ inspection
    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def statistics(self) -> CallManagerStatistics:
        return CallManagerStatistics(
            active_calls=len(self._calls), calls_total=self.calls_total, calls_answered=self.calls_answered,
            rejected_overload=self.stats_overload, challenged=self.stats_challenged,
            auth_rejected=self.stats_auth_rejected, rejected_by_route=self.stats_route_rejected,
            no_ack_timeouts=self.stats_no_ack, holds=self.stats_holds,
            transfers_requested=self.stats_transfers_requested, transfers=self.stats_transfers,
            digits=self.stats_digits, info_digits=self.stats_info_digits, bridges=self.stats_bridges,
            engine_events=self.stats_engine_events, stray_responses=self.stats_stray,
            rejected_loop_lag=self.stats_lagging, loop_lag=self.loop_lag,
            dialogs=len(self._reg.dialogs), engine_legs=len(self._reg.engine_legs))

    # ------------------------------------------------------------------ bookkeeping
    def _media_session(self, affinity: int) -> MediaSession:
        self._sessions += 1
        return MediaSession(self.engine, policy=self.config.media_policy, affinity=affinity,
                            media_timeout=self.config.media_timeout, session_id=self._sessions,
                            advertised_host=self.config.media_address, registry=self._reg.engine_legs)

    def _register_dialog(self, leg: SipLeg, call_id: str, local_tag: str) -> None:
        self._reg.dialogs[(call_id, local_tag)] = leg

    def _forget_leg(self, leg: SipLeg) -> None:
        key = (leg.sip_call_id, leg.local_tag)
        if self._reg.dialogs.get(key) is leg:
            del self._reg.dialogs[key]
        incoming = leg.incoming
        if incoming is not None and incoming.transaction is not None:
            if self._reg.invites.get(incoming.transaction) is leg:
                del self._reg.invites[incoming.transaction]

    def _leg_moved(self, leg: SipLeg) -> None:
        pass  # registries point at legs, and a leg knows its call

    def _forget_call(self, call: Call) -> None:
        if self._calls.get(call.id) is call:
            del self._calls[call.id]

    def _find_replaces(self, value: str) -> SipLeg | None:
        """The confirmed leg a Replaces value names (RFC 3891 3: to-tag is our tag)."""
        call_id, _, rest = value.strip().partition(";")
        params = {}
        for part in rest.split(";"):
            name, _, v = part.partition("=")
            params[name.strip().lower()] = v.strip()
        to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
        if not call_id or to_tag is None or from_tag is None:
            return None
        for local, remote in ((to_tag, from_tag), (from_tag, to_tag)):
            leg = self._reg.dialogs.get((call_id.strip(), local))
            if leg is not None and leg.dialog is not None and leg.dialog.remote_tag == remote \
                    and leg.state is LegState.CONFIRMED and not leg.call.ended:
                return leg
        return None

    # ------------------------------------------------------------------ requests
    def handle(self, incoming: IncomingRequest) -> None:
        """The endpoint's request handler (installed by the constructor; a registrar may wrap it)."""
        request = incoming.request
        method = request.method
        if method == "ACK":
            leg = self._reg.dialogs.get((request.call_id, request.to.tag or ""))
            if leg is not None:
                leg.on_ack(request)
            return
        if method == "CANCEL":
            leg = self._reg.invites.get(incoming.cancels) if incoming.cancels else None
            if leg is not None:
                leg.call._caller_cancelled(leg)
            return
        to_tag = request.to.tag
        if to_tag:
            leg = self._reg.dialogs.get((request.call_id, to_tag))
            if leg is None or (leg.dialog is not None and leg.dialog.remote_tag != (request.from_.tag or "")):
                incoming.respond(481)
                return
            leg.receive_in_dialog(incoming)
            return
        if method == "INVITE":
            self._new_invite(incoming)
        elif self.fallback is not None:
            self.fallback(incoming)
        elif method == "REGISTER":
            incoming.respond(501, headers=[("Warning", '399 hotline "no registrar here"')])
        else:
            incoming.respond(481 if method in ("BYE", "INFO", "REFER", "NOTIFY", "UPDATE", "PRACK") else 405)

    def _over_capacity(self) -> float | None:
        """Seconds to advertise in Retry-After when a new call must be refused, else None."""
        if self.config.max_calls is not None and len(self._calls) >= self.config.max_calls:
            return float(self.config.retry_after)
        if self._cps is not None and not self._cps.take(trio.current_time()):
            return max(float(self.config.retry_after), self._cps.retry_after(trio.current_time()))
        if self.config.max_loop_lag is not None and self.loop_lag > self.config.max_loop_lag:
            self.stats_lagging += 1
            return float(self.config.retry_after)
        if self.config.max_queue_delay is not None and \
                self.endpoint.queue_delay() > self.config.max_queue_delay:
            self.stats_lagging += 1
            return float(self.config.retry_after)
        return None

    def _new_invite(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        retry = self._over_capacity()
        if retry is not None:
            self.stats_overload += 1
            incoming.respond(503, headers=[("Retry-After", str(int(retry + 0.999)))])
            return
        try:
            contacts = request.contact
            from_ = request.from_
        except SipParseError as exc:
            incoming.respond(400, headers=[("Warning", f'399 hotline "{exc.reason[:100]}"')])
            return
        if len(contacts) != 1:
            incoming.respond(400, headers=[("Warning", '399 hotline "an INVITE needs exactly one Contact"')])
            return
        uri = request.uri
        callee = (uri.user or str(uri)) if isinstance(uri, SipUri) else str(uri)
        call = Call(self, direction="inbound", caller=str(from_.uri), callee=callee,
                    caller_display=from_.display_name)
        leg = call._new_leg("uas")
        call.a = leg
        leg.bind_incoming(incoming)
        self._calls[call.id] = call
        if incoming.transaction is not None:
            self._reg.invites[incoming.transaction] = leg
        self._spawn(self._run_inbound, call, incoming)

    async def _run_inbound(self, call: Call, incoming: IncomingRequest) -> None:
        leg = call.a
        assert leg is not None
        request = incoming.request
        with call._scope() as scope:
            try:
                await self._setup_inbound(call, leg, incoming, request)
            except Exception:
                log.exception("calls: inbound call %s failed", call.id)
                leg.reject(500)
                call._end("failed", 500, "system")
            finally:
                call._scopes.discard(scope)
        if scope.cancelled_caught and not call.ended:
            call._end("failed", None, "system")

    async def _setup_inbound(self, call: Call, leg: SipLeg, incoming: IncomingRequest, request: Any) -> None:
        result = self.authenticator.check(request, incoming.source)
        if inspect.isawaitable(result):
            result = await result
        if call.ended:
            return
        if isinstance(result, AuthChallenge):
            self.stats_challenged += 1
            leg.reject(result.status, headers=result.headers)
            call._end("challenged", result.status, None)
            return
        if not isinstance(result, AuthOk):
            self.stats_auth_rejected += 1
            leg.reject(result.status, headers=result.headers)
            call._end("rejected", result.status, None)
            return
        call.identity = result.identity
        try:
            if request.body:
                leg.answer_body = leg.media.answer(request.body, prefer_remote=True)
            else:
                leg.answer_body = leg.media.offer()  # delayed offer: ours in the 2xx, the answer in the ACK
        except SipParseError as exc:
            status = 488 if exc.status_hint == 488 else 400
            leg.reject(status, headers=[("Warning", f'399 hotline "{exc.reason[:100]}"')])
            call._end("rejected", status, None)
            return
        except (RuntimeError, ValueError) as exc:  # no free RTP port, engine closed
            log.warning("calls: no media for call %s: %s", call.id, exc)
            self.stats_overload += 1
            leg.reject(503, headers=[("Retry-After", str(self.config.retry_after))])
            call._end("failed", 503, None)
            return
        replaces = request.headers.get("Replaces")
        if replaces is not None:
            self._replace(call, leg, replaces)
            return
        self.calls_total += 1
        call.announced = True
        trunk = result.identity.name if result.identity.kind == "trunk" else \
            self._trunk_sources.get(incoming.source.host)
        call._emit("call.incoming", source=f"{incoming.source.host}:{incoming.source.port}",
                   transport=incoming.source.transport, identity=result.identity.kind,
                   trunk=trunk, display=call.caller_display)
        uri = request.uri
        target = self.router.route(RouteRequest(
            user=uri.user if isinstance(uri, SipUri) else None,
            to_user=request.to.uri.user if isinstance(request.to.uri, SipUri) else None,
            from_user=request.from_.uri.user if isinstance(request.from_.uri, SipUri) else None,
            request_uri=str(uri), source=incoming.source, identity=result.identity, trunk=trunk))
        call.route = describe(target)
        await self._run_target(call, leg, target)

    def _replace(self, call: Call, leg: SipLeg, replaces: str) -> None:
        """An INVITE with Replaces (RFC 3891): the new leg takes the named leg's place."""
        target = self._find_replaces(replaces)
        if target is None:
            leg.reject(481)
            call._end("rejected", 481, None)
            return
        target.call._replace_leg(target, leg)
        call.a = None
        call._end("replaced", 200, None)

    async def _run_target(self, call: Call, leg: SipLeg, target: RouteTarget) -> None:
        if isinstance(target, Reject):
            self.stats_route_rejected += 1
            leg.reject(target.status, target.reason)
            call._end("rejected", target.status, "system")
            return
        if isinstance(target, (ToQueue, ToIvr)):
            kind = "queue" if isinstance(target, ToQueue) else "ivr"
            handler = self.handlers.get(kind)
            if handler is None:
                leg.reject(480)
                call._end("unavailable", 480, "system")
                return
            try:
                await handler.handle(call, target)
            except Exception:
                log.exception("calls: %s handler failed on call %s", kind, call.id)
                if leg.state in (LegState.INIT, LegState.EARLY):
                    leg.reject(500)
                call._end("handler_error", 500, "system")
                return
            if not call.ended and (call.b is None or call.b.ended):
                await call.hangup("handler_done")
            return
        destinations = await self._destinations(target, call)
        if call.ended:
            return
        if not destinations:
            status = 404 if isinstance(target, ToTrunk) and target.trunk not in self._trunks else 480
            leg.reject(status)
            call._end("unavailable", status, "system")
            return
        outcome = await call._dial(destinations)
        if call.ended:
            return
        if outcome.winner is not None:
            call._connect_winner(outcome.winner)
            if not call.ended:
                self.calls_answered += 1
            return
        status = outcome.status
        leg.reject(status)
        call._end(cause_for_status(status), status, "callee")

    # ------------------------------------------------------------------ destinations
    def _is_ours(self, uri: SipUri) -> bool:
        """Whether ``uri`` names us (our domain, or one of our addresses and ports)."""
        host = uri.host.strip("[]").lower()
        if host == self.config.domain.lower():
            return True
        ours = {t.local.host for t in self.endpoint.transports if t.local is not None}
        if self.endpoint.config.advertised_host:
            ours.add(self.endpoint.config.advertised_host.lower())
        if host not in ours:
            return False
        ports = {t.local.port for t in self.endpoint.transports if t.local is not None}
        return uri.port is None or uri.port in ports

    async def _destinations(self, target: RouteTarget | SipUri | str, call: Call) -> list[Destination]:
        if isinstance(target, str):
            if ":" in target:
                try:
                    parsed = parse_uri(target)
                except SipParseError:
                    return []
                if not isinstance(parsed, SipUri):
                    return []
                target = parsed
            else:
                target = ToExtension(target)
        if isinstance(target, SipUri):
            if target.user and self._is_ours(target):
                routed = self.router.route(RouteRequest(
                    user=target.user, to_user=target.user, from_user=_user_of(call.caller),
                    request_uri=str(target),
                    source=self.endpoint.local_address(self.endpoint.transports[0].name),
                    identity=call.identity or _SYSTEM))
                if isinstance(routed, (ToExtension, ToTrunk, ToUri)):
                    return await self._destinations(routed, call)
                return []
            target = ToUri(str(target))
        out: list[Destination] = []
        try:
            if isinstance(target, ToExtension):
                aor = f"sip:{target.user}@{self.config.domain}"
                found = self.locator.lookup(aor)
                if inspect.isawaitable(found):
                    found = await found
                for contact in found:
                    route = contact.path
                    address = contact.flow
                    if address is None:
                        hop = parse_uri(_strip_brackets(route[0])) if route else contact.uri
                        address = await self.endpoint.resolve(hop)  # type: ignore[arg-type]
                    out.append(Destination(contact.uri, address=address, route=route,
                                           label=f"extension:{target.user}"))
            elif isinstance(target, ToUri):
                uri = parse_uri(target.uri)
                assert isinstance(uri, SipUri)
                out.append(Destination(uri, address=await self.endpoint.resolve(uri), label=target.uri))
            elif isinstance(target, ToTrunk):
                trunk = self._trunks.get(target.trunk)
                if trunk is not None:
                    out.append(Destination(trunk.request_uri(target.number),
                                           address=await self.endpoint.resolve(trunk.sip_uri), trunk=trunk,
                                           label=f"trunk:{trunk.name}"))
        except (TransportUnavailable, SipParseError) as exc:
            log.info("calls: no route to %s: %s", describe(target) if not isinstance(target, str) else target,
                     exc)
        return out

    # ------------------------------------------------------------------ origination
    async def originate(self, from_: RouteTarget | str, to: RouteTarget | str, *,
                        caller_id: str | None = None, data: Mapping[str, Any] | None = None,
                        ring_timeout: float | None = None,
                        accept: Callable[[str], bool] | None = None) -> Call:
        """Call ``from_`` (an agent's extension, a URI...), then ``to``, and bridge them.

        Returns the :class:`Call` at once; follow it with ``await call.wait_connected()``,
        ``call.wait_ended()`` and the call events. Raises :class:`CapacityError` over capacity.
        ``accept(peer)`` is asked when ``from_`` answers, before ``to`` is dialled (as in
        :meth:`Call.connect`): False hangs ``from_`` up and ends the call (cause ``refused``).
        """
        for name, value in (("from_", from_), ("to", to)):
            if isinstance(value, str) and not value:
                raise ValueError(f"{name}: must be an extension, a SIP URI or a route target")
            if isinstance(value, (ToQueue, ToIvr, Reject)):
                raise ValueError(f"{name}: cannot originate to {describe(value)}")
        if ring_timeout is not None and ring_timeout <= 0:
            raise ValueError("ring_timeout: must be positive")
        if self._over_capacity() is not None:
            self.stats_overload += 1
            raise CapacityError("originate: over the configured call capacity")
        call = Call(self, direction="outbound", caller=_label(from_), callee=_label(to))
        call.data.update(data or {})
        call.route = describe(to) if not isinstance(to, str) else _label(to)
        call.announced = True
        self._calls[call.id] = call
        self.calls_total += 1
        self._spawn(self._run_originate, call, from_, to, caller_id, ring_timeout, accept)
        await trio.lowlevel.checkpoint()
        return call

    async def _run_originate(self, call: Call, from_: Any, to: Any, caller_id: str | None,
                             ring_timeout: float | None, accept: Callable[[str], bool] | None = None) -> None:
        with call._scope() as scope:
            try:
                first = await self._destinations(from_, call)
                if not first:
                    call._end("not_found", 404, "system")
                    return
                outcome = await call._dial(first, ring_timeout=ring_timeout, relay=False,
                                           from_user=_user_of(call.callee) or call.callee, accept=accept)
                if outcome.winner is None:
                    cause = "refused" if outcome.refused else cause_for_status(outcome.status)
                    call._end(cause, outcome.status, "caller")
                    return
                call.a = outcome.winner
                call.state = "ringing"
                call._ringback = call._play_to(call.a, tone="ringback", region=self.config.tone_region)
                second = await self._destinations(to, call)
                if not second:
                    call._end("not_found", 404, "system")
                    return
                outcome = await call._dial(second, ring_timeout=ring_timeout, relay=False,
                                           from_user=caller_id or _user_of(call.caller) or call.caller)
                if call._ringback is not None:
                    call._ringback.stop()
                    call._ringback = None
                if outcome.winner is None:
                    call._end(cause_for_status(outcome.status), outcome.status, "callee")
                    return
                call._connect_winner(outcome.winner)
                self.calls_answered += 1
            except Exception:
                log.exception("calls: origination %s failed", call.id)
                call._end("failed", None, "system")
            finally:
                call._scopes.discard(scope)

    # ------------------------------------------------------------------ endpoint callbacks
    def _on_server_timeout(self, key: TransactionKey, timer: str) -> None:
        if timer != "L":
            return
        leg = self._reg.invites.get(key)
        if leg is not None and leg.state is LegState.CONFIRMED and not leg.acked:
            self.stats_no_ack += 1
            leg.call._leg_gone(leg, "no_ack", None)

    def _on_stray_response(self, event: ResponseReceived) -> None:
        """A 2xx to an INVITE with no transaction left: repeat our ACK if we know the dialog."""
        self.stats_stray += 1
        try:
            leg = self._reg.dialogs.get((event.response.call_id, event.response.from_.tag or ""))
        except SipParseError:
            return
        if leg is not None and leg.ack is not None and leg.ack_destination is not None:
            self.endpoint.send_stateless(leg.ack, leg.ack_destination)


_SYSTEM = Identity("anonymous", "system")


def _label(target: Any) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, ToExtension):
        return target.user
    if isinstance(target, ToUri):
        return target.uri
    if isinstance(target, ToTrunk):
        return target.number
    return describe(target)


def _strip_brackets(value: str) -> str:
    value = value.strip()
    if value.startswith("<"):
        value = value[1:value.index(">")]
    return value
