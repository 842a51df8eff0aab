"""SIP over TCP and TLS on Trio (RFC 3261 18.2.2, 18.3; RFC 5626 3.5.1;
RFC 5923 ideas for reuse).

* Framing: each connection feeds a sans-IO :class:`StreamReceiver`
  (Content-Length framing). A framing error cannot be resynchronised: the
  connection is closed (18.3).
* Reuse: connections are kept in a table keyed by the remote (host, port).
  Responses go back on the connection the request came in on (18.2.2: the
  transaction layer hands us the request's source address, which is that
  connection's key). A request to an address with an open connection reuses
  it; otherwise a connection is opened in the background and the message is
  queued on it meanwhile.
* Keep-alive: a CRLFCRLF ping is answered with one CRLF pong (RFC 5626 3.5.1).
* Idle connections close after ``idle_timeout`` seconds without traffic
  (each connection runs in a cancel scope whose deadline moves on activity).
* TLS (SIPS): the same with a ``trio.SSLStream`` around the TCP stream, using
  the contexts of a :class:`~orchestrator.transport.tls.TlsConfig`.

Sending never blocks: ``send`` queues on the connection's unbounded channel;
a connection whose queue exceeds ``max_backlog_bytes`` (a peer that stopped
reading) is closed and its queued messages fail.
"""

from __future__ import annotations

import math
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import trio

from orchestrator.sip import Address, KeepAlive, Request, Response, SipFramingError, StreamReceiver
from orchestrator.sip.framing import NEED_DATA

from .tls import TlsConfig

__all__ = ["StreamTransport", "StreamStatistics"]

Receiver = Callable[[Request | Response, Address], None]
ErrorCallback = Callable[[], None] | None
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


@dataclass(frozen=True)
class StreamStatistics:
    local: Address | None
    transport: str
    connections_open: int
    accepted: int
    connected: int
    connect_failures: int
    rejected_over_limit: int
    closed_idle: int
    framing_errors: int
    handshake_failures: int
    messages_received: int
    messages_sent: int
    keepalives_answered: int
    backlog_overflows: int


class _Connection:
    """One TCP/TLS connection: a reader, a writer and a queue of outgoing octets."""

    def __init__(self, transport: StreamTransport, address: Address) -> None:
        self.transport = transport
        self.address = address
        self.key = (address.host, address.port)
        self._send, self._queue = trio.open_memory_channel(math.inf)
        self.backlog = 0
        self.closed = False
        self.scope: trio.CancelScope | None = None

    def write(self, data: bytes, on_error: ErrorCallback) -> None:
        if self.closed:
            if on_error is not None:
                on_error()
            return
        self.backlog += len(data)
        if self.backlog > self.transport.max_backlog_bytes:
            self.transport._backlog_overflows += 1
            if on_error is not None:
                on_error()
            self.close()
            return
        self._send.send_nowait((data, on_error))

    def touch(self) -> None:
        if self.scope is not None:
            self.scope.deadline = trio.current_time() + self.transport.idle_timeout

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.transport._forget(self)
        if self.scope is not None:
            self.scope.cancel()
        self._fail_queued()

    def _fail_queued(self) -> None:
        while True:
            try:
                _, on_error = self._queue.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return
            if on_error is not None:
                on_error()

    async def run(self, stream: trio.abc.Stream) -> None:
        t = self.transport
        try:
            with trio.CancelScope() as scope:
                self.scope = scope
                self.touch()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, stream)
                    await self._reader(stream)
                    nursery.cancel_scope.cancel()
            if scope.cancelled_caught and not self.closed:
                t._closed_idle += 1
        finally:
            self.close()
            with trio.CancelScope(shield=True):
                with trio.move_on_after(1):
                    try:
                        await stream.aclose()
                    except _STREAM_ERRORS:
                        pass

    async def _reader(self, stream: trio.abc.Stream) -> None:
        t = self.transport
        framer = StreamReceiver(max_message_size=t.max_message_size)
        while True:
            try:
                data = await stream.receive_some(65536)
            except _STREAM_ERRORS:
                return
            framer.receive_data(data)
            self.touch()
            try:
                while True:
                    event = framer.next_event()
                    if event is NEED_DATA:
                        break
                    if isinstance(event, KeepAlive):
                        t._keepalives += 1
                        self.write(b"\r\n", None)
                        continue
                    t._messages_received += 1
                    t._receiver(event, self.address)  # type: ignore[arg-type]
            except SipFramingError:
                t._framing_errors += 1
                return
            if not data:
                return

    async def _writer(self, stream: trio.abc.Stream) -> None:
        t = self.transport
        async for data, on_error in self._queue:
            chunks, callbacks = [data], [on_error]
            while True:  # coalesce whatever else is queued into one write
                try:
                    more, cb = self._queue.receive_nowait()
                except trio.WouldBlock:
                    break
                chunks.append(more)
                callbacks.append(cb)
            payload = b"".join(chunks)
            try:
                await stream.send_all(payload)
            except _STREAM_ERRORS:
                for cb in callbacks:
                    if cb is not None:
                        cb()
                self.close()
                return
            self.backlog -= len(payload)
            t._messages_sent += len(chunks)
            self.touch()


class StreamTransport:
    """A TCP (or, with ``tls``, a TLS) listen address and the connections it owns.

    ``await nursery.start(t.serve, receiver)`` returns the local Address once listening.
    """

    reliable = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls: TlsConfig | None = None,
                 idle_timeout: float = 300.0, connect_timeout: float = 10.0, handshake_timeout: float = 10.0,
                 max_message_size: int = 65535, max_connections: int = 4096,
                 max_backlog_bytes: int = 1 << 20) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError("host: must be a non-empty address string")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port: must be 0..65535, not {port!r}")
        for name, value in (("idle_timeout", idle_timeout), ("connect_timeout", connect_timeout),
                            ("handshake_timeout", handshake_timeout)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name}: must be a positive number of seconds, not {value!r}")
        if tls is not None and not isinstance(tls, TlsConfig):
            raise ValueError("tls: must be a TlsConfig or None")
        if not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError("max_connections: must be an int >= 1")
        self.host = host
        self.port = port
        self.tls = tls
        self.name = "TLS" if tls is not None else "TCP"
        self.idle_timeout = float(idle_timeout)
        self.connect_timeout = float(connect_timeout)
        self.handshake_timeout = float(handshake_timeout)
        self.max_message_size = max_message_size
        self.max_connections = max_connections
        self.max_backlog_bytes = max_backlog_bytes
        self._server_ctx = tls.server_context() if tls is not None else None
        self._client_ctx = tls.client_context() if tls is not None else None
        self.local: Address | None = None
        self._connections: dict[tuple[str, int], _Connection] = {}
        self._nursery: trio.Nursery | None = None
        self._receiver: Receiver = lambda message, source: None
        self._accepted = self._connected = self._connect_failures = self._rejected = 0
        self._closed_idle = self._framing_errors = self._handshake_failures = 0
        self._messages_received = self._messages_sent = self._keepalives = self._backlog_overflows = 0

    def statistics(self) -> StreamStatistics:
        return StreamStatistics(
            local=self.local, transport=self.name, connections_open=len(self._connections),
            accepted=self._accepted, connected=self._connected, connect_failures=self._connect_failures,
            rejected_over_limit=self._rejected, closed_idle=self._closed_idle,
            framing_errors=self._framing_errors, handshake_failures=self._handshake_failures,
            messages_received=self._messages_received, messages_sent=self._messages_sent,
            keepalives_answered=self._keepalives, backlog_overflows=self._backlog_overflows)

    def connection_to(self, host: str, port: int) -> bool:
        """Whether a connection to (host, port) is open or opening."""
        return (host, port) in self._connections

    def _forget(self, conn: _Connection) -> None:
        if self._connections.get(conn.key) is conn:
            del self._connections[conn.key]

    async def serve(self, receiver: Receiver, *,
                    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the local Address, then serve connections until cancelled."""
        self._receiver = receiver
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        sockname = listeners[0].socket.getsockname()
        self.local = Address(sockname[0], sockname[1], self.name)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(trio.serve_listeners, self._accept, listeners)
                task_status.started(self.local)
        finally:
            self._nursery = None
            for conn in list(self._connections.values()):
                conn.close()

    async def _accept(self, stream: trio.SocketStream) -> None:
        try:
            peer = stream.socket.getpeername()
        except OSError:
            await stream.aclose()
            return
        if len(self._connections) >= self.max_connections:
            self._rejected += 1
            await stream.aclose()
            return
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self._accepted += 1
        wrapped: trio.abc.Stream = stream
        if self._server_ctx is not None:
            tls_stream = trio.SSLStream(stream, self._server_ctx, server_side=True)
            try:
                with trio.fail_after(self.handshake_timeout):
                    await tls_stream.do_handshake()
            except (*_STREAM_ERRORS, trio.TooSlowError):
                self._handshake_failures += 1
                await trio.aclose_forcefully(tls_stream)
                return
            wrapped = tls_stream
        conn = _Connection(self, Address(peer[0], peer[1], self.name))
        old = self._connections.get(conn.key)
        if old is not None:
            old.close()
        self._connections[conn.key] = conn
        await conn.run(wrapped)

    def send(self, data: bytes, destination: Address, on_error: ErrorCallback = None) -> None:
        """Queue ``data`` on the connection to ``destination``, opening one if needed."""
        key = (destination.host, destination.port)
        conn = self._connections.get(key)
        if conn is None:
            if self._nursery is None or len(self._connections) >= self.max_connections:
                self._connect_failures += 1
                if on_error is not None:
                    on_error()
                return
            conn = _Connection(self, Address(destination.host, destination.port, self.name))
            self._connections[key] = conn
            self._nursery.start_soon(self._connect, conn)
        conn.write(data, on_error)

    async def _connect(self, conn: _Connection) -> None:
        host, port = conn.key
        try:
            with trio.fail_after(self.connect_timeout):
                tcp = await trio.open_tcp_stream(host, port)
                tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
                stream: trio.abc.Stream = tcp
                if self._client_ctx is not None:
                    stream = trio.SSLStream(tcp, self._client_ctx, server_hostname=host.strip("[]"))
                    await stream.do_handshake()
        except (*_STREAM_ERRORS, trio.TooSlowError):
            self._connect_failures += 1
            conn.close()
            return
        if conn.closed:
            await trio.aclose_forcefully(stream)
            return
        self._connected += 1
        await conn.run(stream)
