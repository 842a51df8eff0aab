"""The JSON-RPC dispatcher: sessions, authentication, roles, params, audit, events.

:class:`RpcServer` is transport-free: a transport makes one :class:`Session`
per connection, hands each received message to :meth:`RpcServer.handle`,
sends back what it returns (if anything), and drains the session's event
subscription. It imports no trio and no socket; handlers may be coroutine
functions (``handle`` is a coroutine), so a test can drive it with any event
loop, or with none when the services are synchronous.

Batches are processed in order, one request after the other (the
specification allows any order; in-order makes a batch's effects
predictable). Requests on one connection are handled one at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .audit import AuditEntry, AuditSink, MemoryAuditLog, redact
from .auth import Principal, TokenStore
from .errors import (
    Forbidden,
    InternalError,
    MethodNotFound,
    NotAuthenticated,
    RpcError,
    error_from_exception,
)
from .events import EventHub, Subscription
from .methods import Context, Method, check_ownership, maybe, method_table
from .protocol import MAX_BATCH, Invalid, Request, assemble, error_response, parse, result_response, to_json
from .services import Services

__all__ = ["ControlStatistics", "RpcServer", "Session"]

log = logging.getLogger("hotline.control")


class Session:
    """One connection's state: its principal, its event subscription, its transport hooks.

    A transport sets ``wake`` (called when events are ready to send) and
    ``on_close`` (called with a reason when the server wants the connection
    dropped: a slow consumer).
    """

    def __init__(self, *, transport: str, peer: str = "", principal: Principal | None = None) -> None:
        self.transport = transport
        self.peer = peer
        self.principal = principal
        self.subscription: Subscription | None = None
        self.wake: Callable[[], None] = _noop
        self.on_close: Callable[[str], None] = _noop_reason
        self.requests = 0
        self.closed = False

    def take_events(self, limit: int = 256) -> list[str]:
        """Ready notifications (JSON texts) of this session's subscription."""
        sub = self.subscription
        return sub.take(limit) if sub is not None else []

    def __repr__(self) -> str:
        who = self.principal.name if self.principal else "anonymous"
        return f"<Session {self.transport} {self.peer} {who}>"


def _noop() -> None:
    pass


def _noop_reason(reason: str) -> None:
    pass


@dataclass(frozen=True)
class ControlStatistics:
    sessions: int
    requests: int
    errors: int
    by_code: Mapping[int, int]
    audited: int
    audit_failures: int
    logins_failed: int


class RpcServer:
    """Dispatches JSON-RPC messages over the method table.

    ``tokens``: who may log in; ``services``: what the methods operate;
    ``hub``: the event fan-out; ``audit``: where state-changing calls are
    written (an in-memory log by default); ``clock``: Unix time;
    ``metrics``: an optional :class:`orchestrator.http.prometheus.Registry`
    to count requests and their durations in.
    """

    def __init__(self, *, tokens: TokenStore, services: Services | None = None, hub: EventHub | None = None,
                 audit: AuditSink | None = None, clock: Callable[[], float] = time.time,
                 perf_counter: Callable[[], float] = time.perf_counter, max_batch: int = MAX_BATCH,
                 metrics: Any = None, methods: Mapping[str, Method] | None = None) -> None:
        if not isinstance(tokens, TokenStore):
            raise ValueError("tokens: expected a TokenStore")
        self.tokens = tokens
        self.services = services if services is not None else Services()
        self.hub = hub if hub is not None else EventHub(clock=clock)
        self.audit = audit if audit is not None else MemoryAuditLog()
        self.clock = clock
        self.perf_counter = perf_counter
        self.max_batch = max_batch
        self.methods: dict[str, Method] = dict(methods) if methods is not None else method_table()
        self.sessions: set[Session] = set()
        self.agent_since: dict[str, tuple[str, float]] = {}
        self.hub.listeners.append(self._on_event)
        self._requests = 0
        self._errors = 0
        self._by_code: dict[int, int] = {}
        self._audited = 0
        self._audit_failures = 0
        self._logins_failed = 0
        self._metrics = _RpcMetrics(metrics, self) if metrics is not None else None

    # ------------------------------------------------------------------ sessions

    def new_session(self, *, transport: str, peer: str = "", principal: Principal | None = None) -> Session:
        session = Session(transport=transport, peer=peer, principal=principal)
        self.sessions.add(session)
        return session

    def close_session(self, session: Session) -> None:
        session.closed = True
        self.unsubscribe(session)
        self.sessions.discard(session)

    def bind_principal(self, session: Session, principal: Principal) -> None:
        """``auth.login`` (again): the subscription, if any, now filters for the new principal."""
        session.principal = principal
        if session.subscription is not None:
            session.subscription.principal = principal

    def subscribe(self, session: Session, topics: list[str]) -> Subscription:
        sub = session.subscription
        if sub is not None and not sub.closed:
            sub.set_topics(topics)
            return sub
        sub = self.hub.subscribe(session.principal, topics)
        sub.wakeup = lambda: session.wake()
        sub.on_close = lambda s: session.on_close(s.close_reason or "closed")
        session.subscription = sub
        return sub

    def unsubscribe(self, session: Session) -> None:
        sub = session.subscription
        if sub is not None:
            session.subscription = None
            sub.on_close = None
            sub.close("unsubscribed")

    def _on_event(self, name: str, payload: Mapping[str, Any]) -> None:
        if name == "agent.state":
            agent, state = payload.get("agent"), payload.get("state")
            if isinstance(agent, str) and isinstance(state, str):
                self.agent_since[agent] = (state, payload.get("time", self.clock()))

    # ------------------------------------------------------------------ dispatch

    async def handle(self, session: Session, data: bytes | str) -> str | None:
        """One received message (a request or a batch) -> the text to send back, or None."""
        message = parse(data, max_batch=self.max_batch)
        responses: list[dict[str, Any] | None] = []
        for item in message.items:
            responses.append(await self._item(session, item))
        return assemble(message, responses)

    async def _item(self, session: Session, item: Request | Invalid) -> dict[str, Any] | None:
        if isinstance(item, Invalid):
            self._count(item.error.code)
            return error_response(item.id, item.error)
        try:
            result = await self.call(session, item.method, item.params)
        except RpcError as exc:
            return None if item.notification else error_response(item.id, exc)
        return None if item.notification else result_response(item.id, result)

    async def call(self, session: Session, name: str, params: list | dict | None = None) -> Any:
        """Run one method for ``session``; returns its JSON-ready result or raises :class:`RpcError`."""
        started = self.perf_counter()
        session.requests += 1
        method = self.methods.get(name) if not name.startswith("rpc.") else None
        bound: dict[str, Any] | None = None
        ctx = Context(self, session, session.principal)
        error: RpcError | None = None
        result: Any = None
        try:
            if method is None:
                raise MethodNotFound(f"Method not found: {name}")
            principal = session.principal
            if not method.public:
                if principal is None:
                    raise NotAuthenticated("not authenticated: call auth.login first")
                if principal.role not in method.roles:
                    raise Forbidden(f"forbidden: role {principal.role} may not call {name}")
            defaults = None
            if principal is not None and principal.role == "agent" and method.own == "agent":
                defaults = {"agent": principal.agent}
            bound = method.schema.bind(params, defaults=defaults)
            await check_ownership(ctx, method, bound)
            result = to_json(await maybe(method.handler(ctx, bound)))
        except RpcError as exc:
            error = exc
        except Exception as exc:  # a service error, or a bug
            error = error_from_exception(exc)
            if error is None:
                log.exception("internal error in %s", name)
                error = InternalError("Internal error (see the daemon log)")
        code = 0 if error is None else error.code
        self._count(code)
        if method is not None and (method.mutating or name == "auth.login"):
            await self._audit(session, ctx, method, bound, params, error)
        if self._metrics is not None:
            self._metrics.observe(name if method is not None else "unknown", code, self.perf_counter() - started)
        if error is not None:
            if error.code == -32001 and name == "auth.login":
                self._logins_failed += 1
            raise error
        return result

    def _count(self, code: int) -> None:
        self._requests += 1
        if code:
            self._errors += 1
            self._by_code[code] = self._by_code.get(code, 0) + 1

    async def _audit(self, session: Session, ctx: Context, method: Method, bound: dict[str, Any] | None,
                     raw: list | dict | None, error: RpcError | None) -> None:
        principal = ctx.principal  # after auth.login: the new principal
        if bound is not None:
            params = redact(bound, method.secret)
            params = {k: v for k, v in params.items() if v is not None}
        elif isinstance(raw, dict):
            params = redact({k: v for k, v in raw.items()}, method.secret | {"token"})
        elif isinstance(raw, list):
            named = dict(zip(method.schema.names, raw, strict=False))
            params = redact(named, method.secret | {"token"})
        else:
            params = {}
        entry = AuditEntry(at=self.clock(), principal=principal.name if principal else "anonymous",
                           role=principal.role if principal else None, method=method.name, params=params,
                           result="ok" if error is None else "error",
                           error=None if error is None else f"{error.code} {error.message}",
                           transport=session.transport, peer=session.peer or None)
        try:
            await maybe(self.audit.append(entry))
            self._audited += 1
        except Exception:
            self._audit_failures += 1
            log.exception("audit: could not append %s by %s", method.name, entry.principal)

    def statistics(self) -> ControlStatistics:
        return ControlStatistics(sessions=len(self.sessions), requests=self._requests, errors=self._errors,
                                 by_code=dict(self._by_code), audited=self._audited,
                                 audit_failures=self._audit_failures, logins_failed=self._logins_failed)


class _RpcMetrics:
    """Prometheus families of the control plane, in the registry the HTTP listener exposes."""

    def __init__(self, registry: Any, server: RpcServer) -> None:
        self.requests = registry.counter("hotline_rpc_requests_total", "JSON-RPC requests handled, by method and "
                                         "result code (0: success).", ("method", "code"))
        self.duration = registry.histogram("hotline_rpc_request_duration_seconds",
                                           "Time to handle one JSON-RPC request.", ("method",),
                                           buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0))
        hub = server.hub

        def collect():
            stats = hub.statistics()
            yield ("hotline_rpc_sessions", "gauge", "Open control connections.", [({}, len(server.sessions))])
            yield ("hotline_event_subscribers", "gauge", "Event subscriptions.", [({}, stats.subscribers)])
            yield ("hotline_events_published_total", "counter", "Events published to subscribers.",
                   [({}, stats.published)])
            yield ("hotline_event_deliveries_total", "counter", "Event notifications queued for subscribers.",
                   [({}, stats.deliveries)])
            yield ("hotline_events_dropped_total", "counter", "Event notifications dropped for slow consumers.",
                   [({}, stats.dropped)])
            yield ("hotline_slow_consumers_disconnected_total", "counter",
                   "Subscribers disconnected for not keeping up.", [({}, stats.slow_consumers_closed)])

        registry.add_collector(collect)

    def observe(self, method: str, code: int, seconds: float) -> None:
        self.requests.inc(method=method, code=str(code))
        self.duration.observe(seconds, method=method)

