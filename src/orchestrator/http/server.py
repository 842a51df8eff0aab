"""The HTTP listener: wallboard, JSON-RPC over WebSocket, Prometheus metrics, health.

HTTP/1.1 (RFC 9112) is parsed by h11 and WebSocket (RFC 6455) by wsproto,
both sans-IO libraries from python-hyper, on Trio sockets; this module only
routes and enforces limits.

=============== ===============================================================
``GET /``       the wallboard (``index.html``) and its static files, from a
                fixed list made at start: a path not in it is 404, so no
                ``..``, no encoded separators, no symlinks can reach another file
``GET /rpc``    WebSocket upgrade: one JSON-RPC message per text message,
                events as notifications. A bearer token in ``Authorization``
                logs the connection in (a wrong one is refused with 401);
                browsers, which cannot set that header, send ``auth.login``
``POST /rpc``   one JSON-RPC message per request, bearer token required
                (for curl and scripts); notifications only: 204
``GET /metrics`` Prometheus text format 0.0.4
``GET /healthz`` 200 ``{"status": "ok", "checks": {...}}``, or 503 when a
                required check fails
=============== ===============================================================

Limits: a request head over ``max_header_bytes`` is 431; a body over
``max_body`` is 413; a client that has not sent a complete request within
``request_timeout`` seconds (slowloris) gets 408 and is closed, and so is an
idle keep-alive connection; a WebSocket message over ``max_ws_message`` closes
the connection with 1009; at most ``max_connections`` connections at once
(more get 503).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto import events as ws_events
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from orchestrator.control.connection import serve_session
from orchestrator.control.server import RpcServer

from .prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .prometheus import Registry

__all__ = ["HealthChecks", "HttpLimits", "HttpServer", "StaticFiles"]

log = logging.getLogger("hotline.http")

WALLBOARD_DIR = Path(__file__).resolve().parent.parent / "wallboard"
_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'"),
]


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 16384
    max_body: int = 1 << 20
    max_ws_message: int = 1 << 20
    request_timeout: float = 10.0
    max_connections: int = 512


class StaticFiles:
    """The files of one directory (not its subdirectories), read once at start."""

    def __init__(self, directory: str | Path = WALLBOARD_DIR, *, index: str = "index.html") -> None:
        self.directory = Path(directory)
        self.files: dict[str, tuple[bytes, str, str]] = {}
        for p in sorted(self.directory.iterdir()) if self.directory.is_dir() else ():
            if p.is_symlink() or not p.is_file() or not _STATIC_NAME.fullmatch(p.name):
                continue
            ctype = _CONTENT_TYPES.get(p.suffix.lower())
            if ctype is None:
                continue
            body = p.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            self.files["/" + p.name] = (body, ctype, etag)
        if "/" + index in self.files:
            self.files["/"] = self.files["/" + index]

    def get(self, path: str) -> tuple[bytes, str, str] | None:
        return self.files.get(path)


class HealthChecks:
    """Named checks for ``/healthz``: ``add(name, check, required=True)``; a check returns truthy or raises."""

    def __init__(self) -> None:
        self._checks: list[tuple[str, Callable[[], Any], bool]] = []

    def add(self, name: str, check: Callable[[], Any], *, required: bool = True) -> None:
        if any(n == name for n, _, _ in self._checks):
            raise ValueError(f"name: a check named {name!r} exists")
        self._checks.append((name, check, required))

    def run(self) -> tuple[bool, dict[str, Any]]:
        healthy = True
        checks: dict[str, Any] = {}
        for name, check, required in self._checks:
            try:
                ok = bool(check())
                checks[name] = {"ok": ok, "required": required}
            except Exception as exc:  # noqa: BLE001 - a check that raises is a failed check, not a crashed listener
                ok = False
                checks[name] = {"ok": False, "required": required, "error": f"{type(exc).__name__}: {exc}"}
            if required and not ok:
                healthy = False
        return healthy, checks


def _bearer(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


class _Timeout(Exception):
    pass


class HttpServer:
    """The listener; run :meth:`serve` with ``nursery.start`` (it returns the bound port)."""

    def __init__(self, *, rpc: RpcServer | None = None, registry: Registry | None = None,
                 health: HealthChecks | None = None, static: StaticFiles | None = None,
                 limits: HttpLimits = HttpLimits()) -> None:
        self.rpc = rpc
        self.registry = registry if registry is not None else Registry()
        self.health = health if health is not None else HealthChecks()
        self.static = static if static is not None else StaticFiles()
        self.limits = limits
        self.connections = 0
        self.requests = 0
        self.responses: dict[int, int] = {}
        self._http_requests = self.registry.counter(
            "hotline_http_requests_total", "HTTP requests by route and status.", ("route", "status"))

    async def serve(self, host: str = "127.0.0.1", port: int = 0, *,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on ``host:port`` (0: any free port) until cancelled; started(port) when listening."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._connection, listeners)
            task_status.started(bound)

    # ------------------------------------------------------------------ one connection

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            if self.connections >= self.limits.max_connections:
                await self._reject_busy(stream)
                return
            self.connections += 1
            try:
                await self._http(stream)
            finally:
                self.connections -= 1
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except* Exception:  # one connection's bug must never take the listener down
            log.exception("http: connection from %s failed", _peer(stream))
        finally:
            await stream.aclose()

    async def _reject_busy(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        body = b"too many connections\n"
        data = conn.send(h11.Response(status_code=503, headers=[
            (b"content-length", str(len(body)).encode()), (b"connection", b"close"), (b"retry-after", b"5")]))
        with trio.move_on_after(1):
            await stream.send_all(data + body)

    async def _next_event(self, conn: h11.Connection, stream: trio.SocketStream, deadline: float) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.move_on_at(deadline):
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                continue
            raise _Timeout()

    async def _http(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        while True:
            deadline = trio.current_time() + self.limits.request_timeout
            try:
                event = await self._next_event(conn, stream, deadline)
                if isinstance(event, h11.ConnectionClosed):
                    return
                if not isinstance(event, h11.Request):
                    return
                self.requests += 1
                # h11 bounds a head that arrives in pieces; one that arrives whole is measured here
                head = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers) + 16
                if head > self.limits.max_header_bytes:
                    await self._simple(conn, stream, 431, "request header fields too large\n", route="-",
                                       close=True)
                    return
                done = await self._route(conn, stream, event, deadline)
                if done:
                    return
                while conn.their_state is h11.SEND_BODY:  # the (empty) end of a GET, before the next request
                    if isinstance(await self._next_event(conn, stream, deadline), h11.ConnectionClosed):
                        return
            except _Timeout:
                started = conn.their_state is not h11.IDLE or bool(conn.trailing_data[0])
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE) and started:
                    await self._simple(conn, stream, 408, "request timeout\n", route="-", close=True)
                return
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint
                    if status == 400 and "exceed" in str(exc).lower():
                        status = 431
                    await self._simple(conn, stream, status, f"bad request: {exc}\n", route="-", close=True)
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _send(self, conn: h11.Connection, stream: trio.SocketStream, status: int, body: bytes,
                    content_type: str, *, route: str, head: bool = False,
                    extra: list[tuple[bytes, bytes]] | None = None, close: bool = False) -> None:
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                   (b"server", b"hotline"), (b"cache-control", b"no-store")]
        headers += extra or []
        if close:
            headers.append((b"connection", b"close"))
        data = conn.send(h11.Response(status_code=status, headers=headers))
        if not head:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        await stream.send_all(data)
        self.responses[status] = self.responses.get(status, 0) + 1
        self._http_requests.inc(route=route, status=str(status))

    async def _simple(self, conn: h11.Connection, stream: trio.SocketStream, status: int, text: str, *,
                      route: str, head: bool = False, extra: list | None = None, close: bool = False) -> None:
        await self._send(conn, stream, status, text.encode(), "text/plain; charset=utf-8", route=route, head=head,
                         extra=extra, close=close)

    async def _read_body(self, conn: h11.Connection, stream: trio.SocketStream, deadline: float) -> bytes | None:
        """The request body, or None if it is too large (after a 413 was sent)."""
        chunks = []
        size = 0
        while True:
            event = await self._next_event(conn, stream, deadline)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.limits.max_body:
                    await self._simple(conn, stream, 413, "request body too large\n", route="/rpc", close=True)
                    return None
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                return b"".join(chunks)

    async def _route(self, conn: h11.Connection, stream: trio.SocketStream, req: h11.Request,
                     deadline: float) -> bool:
        """Answer one request; True when the connection is finished (upgraded or must close)."""
        method = req.method.decode("ascii", "replace")
        target = req.target.decode("ascii", "replace")
        path = target.split("?", 1)[0]
        head = method == "HEAD"
        length = _header(req.headers, b"content-length")
        if path == "/rpc":
            if method == "GET" and (_header(req.headers, b"upgrade") or b"").lower() == b"websocket":
                await self._websocket(conn, stream, req)
                return True
            if method == "POST":
                if length is not None and length.isdigit() and int(length) > self.limits.max_body:
                    await self._simple(conn, stream, 413, "request body too large\n", route="/rpc", close=True)
                    return True
                body = await self._read_body(conn, stream, deadline)
                if body is None:
                    return True
                await self._post_rpc(conn, stream, req, body)
                return False
            if method in ("GET", "HEAD"):
                await self._simple(conn, stream, 426, "use a WebSocket upgrade or POST for JSON-RPC\n", route="/rpc",
                                   head=head, extra=[(b"upgrade", b"websocket")])
                return False
            await self._simple(conn, stream, 405, "method not allowed\n", route="/rpc",
                               extra=[(b"allow", b"GET, POST")])
            return False
        if method not in ("GET", "HEAD"):
            if length is not None and length != b"0":
                await self._simple(conn, stream, 405, "method not allowed\n", route="-",
                                   extra=[(b"allow", b"GET, HEAD")], close=True)
                return True
            await self._simple(conn, stream, 405, "method not allowed\n", route="-", extra=[(b"allow", b"GET, HEAD")])
            return False
        if length is not None and length != b"0":
            await self._simple(conn, stream, 400, "a GET has no body\n", route="-", close=True)
            return True
        if path == "/metrics":
            text = self.registry.render()
            await self._send(conn, stream, 200, text.encode(), METRICS_CONTENT_TYPE, route="/metrics", head=head)
        elif path == "/healthz":
            healthy, checks = self.health.run()
            body = json.dumps({"status": "ok" if healthy else "unavailable", "checks": checks}).encode()
            await self._send(conn, stream, 200 if healthy else 503, body, "application/json", route="/healthz",
                             head=head)
        else:
            found = self.static.get(path)
            if found is None:
                await self._simple(conn, stream, 404, "not found\n", route="static", head=head)
                return False
            body, ctype, etag = found
            extra = [(b"etag", etag.encode())] + (_SECURITY_HEADERS if ctype.startswith("text/html") else [
                (b"x-content-type-options", b"nosniff")])
            if (_header(req.headers, b"if-none-match") or b"") == etag.encode():
                await self._send(conn, stream, 304, b"", ctype, route="static", head=True, extra=extra)
            else:
                await self._send(conn, stream, 200, body, ctype, route="static", head=head, extra=extra)
        return False

    # ------------------------------------------------------------------ JSON-RPC

    async def _post_rpc(self, conn: h11.Connection, stream: trio.SocketStream, req: h11.Request,
                        body: bytes) -> None:
        if self.rpc is None:
            await self._simple(conn, stream, 503, "no control plane on this listener\n", route="/rpc")
            return
        token = _bearer(req.headers)
        principal = self.rpc.tokens.authenticate(token) if token else None
        if principal is None:
            await self._simple(conn, stream, 401, "a valid bearer token is required\n", route="/rpc",
                               extra=[(b"www-authenticate", b'Bearer realm="hotline"')])
            return
        session = self.rpc.new_session(transport="http", peer=_peer(stream), principal=principal)
        try:
            reply = await self.rpc.handle(session, body)
        finally:
            self.rpc.close_session(session)
        if reply is None:
            await self._send(conn, stream, 204, b"", "application/json", route="/rpc", head=True)
        else:
            await self._send(conn, stream, 200, reply.encode(), "application/json", route="/rpc")

    async def _websocket(self, conn: h11.Connection, stream: trio.SocketStream, req: h11.Request) -> None:
        if self.rpc is None:
            await self._simple(conn, stream, 503, "no control plane on this listener\n", route="/rpc", close=True)
            return
        ws = WSConnection(ConnectionType.SERVER)
        token = _bearer(req.headers)
        principal = self.rpc.tokens.authenticate(token) if token else None
        # h11 has parsed the request; let wsproto take the connection over from here.
        ws.initiate_upgrade_connection(req.headers, req.target)
        handshake = next(ws.events(), None)
        if not isinstance(handshake, ws_events.Request):
            await self._simple(conn, stream, 400, "bad WebSocket handshake\n", route="/rpc", close=True)
            return
        if token is not None and principal is None:
            await stream.send_all(ws.send(ws_events.RejectConnection(
                status_code=401, headers=[(b"www-authenticate", b'Bearer realm="hotline"'),
                                          (b"content-length", b"0")], has_body=False)))
            self._http_requests.inc(route="/rpc", status="401")
            return
        await stream.send_all(ws.send(ws_events.AcceptConnection()))
        self._http_requests.inc(route="/rpc", status="101")
        trailing, _closed = conn.trailing_data
        session = self.rpc.new_session(transport="websocket", peer=_peer(stream), principal=principal)
        await _WsSession(self, ws, stream, session, bytes(trailing)).run()


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, ValueError):
        return "?"


class _WsSession:
    """One JSON-RPC session over a WebSocket (RFC 6455): text messages in, text messages out."""

    def __init__(self, http: HttpServer, ws: WSConnection, stream: trio.SocketStream, session: Any,
                 trailing: bytes) -> None:
        self.http = http
        self.ws = ws
        self.stream = stream
        self.session = session
        self.ready: list[str] = []
        self.parts: list[str] = []
        self.size = 0
        self.closed = False
        self.lock = trio.Lock()  # control frames (pong, close) and messages share the stream
        if trailing:
            ws.receive_data(trailing)

    async def _write(self, data: bytes) -> None:
        async with self.lock:
            await self.stream.send_all(data)

    async def _close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, WsLocalProtocolError):
                await self._write(self.ws.send(ws_events.CloseConnection(code=code, reason=reason)))

    async def receive(self) -> str | None:
        while not self.ready:
            if self.closed:
                return None
            try:
                for event in self.ws.events():
                    if isinstance(event, ws_events.TextMessage):
                        self.size += len(event.data)
                        if self.size > self.http.limits.max_ws_message:
                            await self._close(1009, "message too large")
                            return None
                        self.parts.append(event.data)
                        if event.message_finished:
                            self.ready.append("".join(self.parts))
                            self.parts.clear()
                            self.size = 0
                    elif isinstance(event, ws_events.BytesMessage):
                        await self._close(1003, "JSON-RPC messages are text")
                        return None
                    elif isinstance(event, ws_events.Ping):
                        await self._write(self.ws.send(event.response()))
                    elif isinstance(event, ws_events.CloseConnection):
                        if not self.closed:
                            self.closed = True
                            await self._write(self.ws.send(event.response()))
                        return None
            except WsRemoteProtocolError:
                await self._close(1002, "protocol error")
                return None
            if self.ready:
                break
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.ws.receive_data(data)
        return self.ready.pop(0)

    async def send(self, texts: Iterable[str]) -> None:
        if self.closed:
            raise trio.ClosedResourceError("WebSocket closed")
        await self._write(b"".join(self.ws.send(ws_events.Message(data=t)) for t in texts))

    async def run(self) -> None:
        reason = await serve_session(self.http.rpc, self.session, self.receive, self.send)
        if reason == "slow consumer":
            with trio.move_on_after(1):
                await self._close(1008, "slow consumer: events dropped")
        elif not self.closed:
            with trio.move_on_after(1):
                await self._close(1000, "bye")

