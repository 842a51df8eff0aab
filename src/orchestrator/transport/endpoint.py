"""The SIP endpoint: the Trio driver around the sans-IO transaction layer.

It owns the transports (UDP, TCP, TLS), one :class:`TimerService`, and a
:class:`~orchestrator.sip.TransactionLayer`. Bytes from a transport go into
the layer with ``now = trio.current_time()``; the layer's outputs are carried
out at once and in order:

* ``Send`` - serialized and handed to the transport named by the
  destination (a send failure goes back to the layer as a transport error,
  RFC 3261 17.1.4 / 17.2.4);
* ``SetTimer`` / ``CancelTimer`` - into the timer heap (a due timer calls
  :meth:`TransactionLayer.timer_fired`);
* ``RequestReceived`` - validated (RFC 3261 8.2, :func:`validate_request`),
  then OPTIONS is answered here (200 with Allow, Accept, Supported: the
  keep-alive and capability probe), a CANCEL is answered 200 (or 481 when it
  matches nothing, 9.2) and everything else goes to the request handler as
  an :class:`IncomingRequest`;
* ``ResponseReceived`` - to the :class:`ClientTransaction` it belongs to
  (``async for response in tx`` yields provisional responses as they come,
  then the final one; ``await tx`` is the final one). A client transaction
  that times out or cannot be sent gets a synthetic 408 or 503 final
  response (8.1.3.1, 8.1.3.4), so callers see exactly one final response.

Malformed input is answered 400 statelessly by the layer or dropped as RFC
3261 18.1.2 / RFC 4475 say; it is counted and never raises out of here.
Requests from one source address beyond the configured rate are dropped
before parsing (token bucket per source, :mod:`orchestrator.transport.limits`).

Nothing is sent from a task per message: every ``Send`` is a synchronous
hand-off to a transport (a UDP ``sendto``, or a queue for a TCP/TLS
connection's writer task), so the handler may answer from plain functions.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from orchestrator.sip import (
    Address,
    CancelTimer,
    LayerStatistics,
    LocalProtocolError,
    MessageDiscarded,
    NameAddr,
    Request,
    RequestPolicy,
    RequestReceived,
    Response,
    ResponseReceived,
    Send,
    SetTimer,
    SipParseError,
    SipUri,
    TimerConfig,
    TransactionKey,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailure,
    Uri,
    Via,
    make_cancel,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_via,
    validate_request,
)
from orchestrator.sip.uri import format_host

from .limits import LimiterStatistics, RateLimit, SourceRateLimiter
from .timers import TimerService, TimerStatistics

__all__ = [
    "SipEndpoint", "EndpointConfig", "EndpointStatistics", "IncomingRequest", "ClientTransaction",
    "Transport", "TransportUnavailable", "DEFAULT_CONTENT_TYPES",
]

log = logging.getLogger("hotline.sip")

#: To-tag prefix of our stateless 503s (shedding): their ACKs are recognised and dropped unread.
_SHED_TAG = b"shed503"

#: Bodies a B2BUA accepts: SDP, INFO DTMF (application/dtmf-relay, application/dtmf),
#: REFER progress (message/sipfrag, RFC 3515) and multipart bodies that carry SDP.
DEFAULT_CONTENT_TYPES = frozenset({
    "application/sdp", "application/dtmf-relay", "application/dtmf", "message/sipfrag",
})


@functools.lru_cache(maxsize=4096)
def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Transport(Protocol):
    """What the endpoint needs of a transport (UdpTransport, StreamTransport)."""

    name: str
    reliable: bool
    local: Address | None

    async def serve(self, receiver: Any, *, task_status: Any = ...) -> None: ...

    def send(self, data: bytes, destination: Address, on_error: Callable[[], None] | None = None) -> None: ...

    def statistics(self) -> Any: ...


class TransportUnavailable(LocalProtocolError):
    """No transport of the kind a destination needs (e.g. a sips: URI without TLS)."""


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """How the endpoint behaves.

    ``advertised_host`` is the address put in Via and Contact (needed when a
    transport is bound to a wildcard address). ``rate_limit`` applies to
    requests per source IP address (None: no limit); ``trusted_sources`` are
    exempt (trunks, a front proxy, load generators in benchmarks).

    ``shed_queue_delay``: while UDP datagrams wait longer than this in the
    socket (overload; peers retransmit from 500 ms on), a *new* INVITE is
    answered at once with a stateless 503 and ``Retry-After:
    shed_retry_after``, built from its raw header lines without the full
    parse and transaction a call would cost; the ACK for that 503 is dropped
    unread (it carries our tag). Retransmissions of INVITEs already taken are
    left to their transactions.
    """

    timers: TimerConfig = TimerConfig()
    policy: RequestPolicy = RequestPolicy(content_types=DEFAULT_CONTENT_TYPES)
    rate_limit: RateLimit | None = RateLimit()
    trusted_sources: frozenset[str] = frozenset()
    user_agent: str = "Hotline"
    advertised_host: str | None = None
    answer_options: bool = True
    accept: tuple[str, ...] = ("application/sdp",)
    shed_queue_delay: float | None = 0.4
    shed_retry_after: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.timers, TimerConfig):
            raise ValueError("timers: must be a TimerConfig")
        if not isinstance(self.policy, RequestPolicy):
            raise ValueError("policy: must be a RequestPolicy")
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise ValueError("rate_limit: must be a RateLimit or None")
        if isinstance(self.trusted_sources, str):
            raise ValueError("trusted_sources: must be a set of addresses, not a string")
        object.__setattr__(self, "trusted_sources", frozenset(self.trusted_sources))
        if "\r" in self.user_agent or "\n" in self.user_agent:
            raise ValueError("user_agent: must not contain CR or LF")
        if self.shed_queue_delay is not None and not self.shed_queue_delay > 0:
            raise ValueError("shed_queue_delay: must be a positive number of seconds or None")
        if not isinstance(self.shed_retry_after, int) or self.shed_retry_after < 1:
            raise ValueError("shed_retry_after: must be an int >= 1 (seconds)")


@dataclass(frozen=True)
class EndpointStatistics:
    layer: LayerStatistics
    timers: TimerStatistics
    transports: tuple[Any, ...]
    limiter: LimiterStatistics | None
    requests_delivered: int
    requests_rejected: int
    rate_limited: int
    malformed_answered: int
    malformed_dropped: int
    keepalives_received: int
    options_answered: int
    cancels_unmatched: int
    handler_errors: int
    client_transactions: int
    send_failures: int
    shed_invites: int
    shed_acks: int


@dataclass(eq=False)
class IncomingRequest:
    """A request for the handler: answer it with :meth:`respond`.

    ``transaction`` is None for the ACK of a 2xx (it has no transaction);
    ``cancels`` is the INVITE transaction a CANCEL matched (already answered 200).
    """

    request: Request
    source: Address
    transaction: TransactionKey | None
    cancels: TransactionKey | None
    endpoint: SipEndpoint = field(repr=False)
    final_sent: bool = False

    @property
    def method(self) -> str:
        return self.request.method

    def respond(self, status_code: int, reason: str | None = None, *, to_tag: str | None = None,
                headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None) -> Response | None:
        """Build (RFC 3261 8.2.6) and send a response; None if it could not be sent."""
        extra = list(headers)
        if body:
            if content_type is None:
                raise LocalProtocolError("content_type: needed with a body")
            extra.append(("Content-Type", content_type))
        response = make_response(self.request, status_code, reason, to_tag=to_tag, headers=extra, body=body)
        return response if self.send_response(response) else None

    def send_response(self, response: Response) -> bool:
        if self.transaction is None:
            return False
        if self.endpoint.respond(self.transaction, response):
            if response.status_code >= 200:
                self.final_sent = True
            return True
        return False


class ClientTransaction:
    """A request we sent: its responses, as they come.

    ``async for response in tx`` yields each provisional response and ends
    after the final one; ``await tx`` (or :meth:`final_response`) waits for
    the final one. ``on_response`` (if set) is also called synchronously for
    every response, including 2xx retransmissions after the final one (the
    INVITE's TU must ACK each, RFC 3261 13.2.2.4).
    """

    def __init__(self, endpoint: SipEndpoint, request: Request, destination: Address,
                 on_response: Callable[[Response], None] | None = None) -> None:
        self.endpoint = endpoint
        self.request = request
        self.destination = destination
        self.key: TransactionKey | None = None
        self.on_response = on_response
        self.responses: list[Response] = []
        self.final: Response | None = None
        self.provisional_received = False
        self._cancel_requested = False
        self.cancel_transaction: ClientTransaction | None = None
        self._next = 0  # the next response ``async for`` yields
        self._changed: trio.Event | None = None  # made only when someone waits (most BYEs: nobody)

    def __repr__(self) -> str:
        state = self.final.status_code if self.final else "pending"
        return f"<ClientTransaction {self.request.method} {self.request.uri} {state}>"

    def _deliver(self, response: Response) -> None:
        code = response.status_code
        if self.final is None:
            self.responses.append(response)
            if code < 200:
                self.provisional_received = True
                if self._cancel_requested:
                    self._send_cancel()
            else:
                self.final = response
            if self._changed is not None:
                self._changed.set()
                self._changed = None
        if self.on_response is not None:
            self.on_response(response)

    def __aiter__(self) -> ClientTransaction:
        return self

    async def _wait_change(self) -> None:
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    async def __anext__(self) -> Response:
        while self._next >= len(self.responses):
            if self.final is not None:
                raise StopAsyncIteration
            await self._wait_change()
        response = self.responses[self._next]
        self._next += 1
        return response

    async def final_response(self) -> Response:
        while self.final is None:
            await self._wait_change()
        return self.final

    def __await__(self) -> Any:
        return self.final_response().__await__()

    def cancel(self) -> None:
        """CANCEL a pending INVITE (RFC 3261 9.1): at once if a provisional response
        came, else as soon as one does. No effect once a final response arrived."""
        if self.request.method != "INVITE" or self.final is not None or self._cancel_requested:
            return
        self._cancel_requested = True
        if self.provisional_received:
            self._send_cancel()

    def _send_cancel(self) -> None:
        if self.cancel_transaction is None and self.final is None:
            self.cancel_transaction = self.endpoint.send_request(make_cancel(self.request), self.destination)


class SecureRandom:
    """``getrandbits`` from the kernel's CSPRNG, read 4 KiB at a time.

    Tags, branches and Call-IDs must be unpredictable (RFC 3261 19.3: they
    guard dialogs against injection). ``random.SystemRandom`` is that, but
    makes one ``getrandom`` system call per identifier; this reads the same
    source in blocks.
    """

    def __init__(self, block: int = 4096) -> None:
        self._block = block
        self._buffer = b""
        self._pos = 0

    def getrandbits(self, k: int) -> int:
        n = (k + 7) // 8
        if self._pos + n > len(self._buffer):
            self._buffer = os.urandom(max(self._block, n))
            self._pos = 0
        chunk = self._buffer[self._pos:self._pos + n]
        self._pos += n
        return int.from_bytes(chunk, "big") >> (8 * n - k)


class SipEndpoint:
    """Transports + timers + transaction layer, on Trio.

    ``await nursery.start(endpoint.run)`` returns once every transport listens.
    Set :attr:`handler` (called synchronously with each :class:`IncomingRequest`;
    it may start tasks of its own) before traffic arrives. :attr:`on_server_timeout`
    hears of server transactions that timed out (Timer H: no ACK for a non-2xx;
    Timer L: no ACK for a 2xx, so the dialog should be ended with a BYE), and
    :attr:`on_stray_response` of 2xx responses that match no transaction (a
    forked 2xx, or one repeated after Timer M).
    """

    def __init__(self, transports: Sequence[Transport], *, config: EndpointConfig = EndpointConfig(),
                 rng: random.Random | None = None) -> None:
        if not transports:
            raise ValueError("transports: need at least one transport")
        if not isinstance(config, EndpointConfig):
            raise ValueError("config: must be an EndpointConfig")
        self.config = config
        self.layer = TransactionLayer(config.timers)
        self.transports = list(transports)
        self._by_name: dict[str, Transport] = {}
        for t in self.transports:
            self._by_name.setdefault(t.name, t)
        self._rng = rng if rng is not None else SecureRandom()
        self._timers = TimerService(self._timer_fired)
        self._limiter = SourceRateLimiter(config.rate_limit, exempt=config.trusted_sources) \
            if config.rate_limit is not None else None
        self._clients: dict[TransactionKey, ClientTransaction] = {}
        self._contacts: dict[tuple[str, str | None], NameAddr] = {}  # NameAddr is frozen: shared safely
        self.handler: Callable[[IncomingRequest], None] = self._default_handler
        self.on_server_timeout: Callable[[TransactionKey, str], None] | None = None
        self.on_stray_response: Callable[[ResponseReceived], None] | None = None
        self._allow = config.policy.allow_header()
        self._supported = ", ".join(sorted(config.policy.supported_extensions))
        self._delivered = self._rejected = self._rate_limited = 0
        self._malformed_answered = self._malformed_dropped = self._keepalives = 0
        self._options = self._cancels_unmatched = self._handler_errors = self._send_failures = 0
        self._shed_invites = self._shed_acks = 0
        self._running = False

    # -- running ------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[SipEndpoint] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every transport and the timer service; runs until cancelled."""
        async with trio.open_nursery() as nursery:
            for t in self.transports:
                receiver = self._on_message if t.reliable else self._on_datagram
                await nursery.start(t.serve, receiver)
            await nursery.start(self._timers.run)
            self._running = True
            try:
                task_status.started(self)
                await trio.sleep_forever()
            finally:
                self._running = False

    def queue_delay(self) -> float:
        """How long the last datagram read had waited in its socket (the worst UDP transport)."""
        return max((getattr(t, "queue_delay", 0.0) for t in self.transports), default=0.0)

    def statistics(self) -> EndpointStatistics:
        return EndpointStatistics(
            layer=self.layer.statistics(), timers=self._timers.statistics(),
            transports=tuple(t.statistics() for t in self.transports),
            limiter=self._limiter.statistics() if self._limiter else None,
            requests_delivered=self._delivered, requests_rejected=self._rejected,
            rate_limited=self._rate_limited, malformed_answered=self._malformed_answered,
            malformed_dropped=self._malformed_dropped, keepalives_received=self._keepalives,
            options_answered=self._options, cancels_unmatched=self._cancels_unmatched,
            handler_errors=self._handler_errors, client_transactions=len(self._clients),
            send_failures=self._send_failures, shed_invites=self._shed_invites, shed_acks=self._shed_acks)

    # -- identities ---------------------------------------------------------------------
    def new_tag(self) -> str:
        return new_tag(self._rng)

    def new_call_id(self) -> str:
        return new_call_id(self._rng, self.advertised_host())

    def new_branch(self) -> str:
        return new_branch(self._rng)

    def random_token(self, bits: int = 64) -> str:
        return f"{self._rng.getrandbits(bits):x}"

    def transport(self, name: str) -> Transport | None:
        return self._by_name.get(name.upper())

    def local_address(self, transport: str = "UDP") -> Address:
        t = self._by_name.get(transport.upper())
        if t is None or t.local is None:
            raise TransportUnavailable(f"transport: no {transport} transport is listening")
        return t.local

    def advertised_host(self) -> str:
        if self.config.advertised_host:
            return self.config.advertised_host
        for t in self.transports:
            if t.local is not None:
                return t.local.host
        return self.transports[0].host if hasattr(self.transports[0], "host") else "127.0.0.1"

    def _sent_by(self, transport: str) -> tuple[str, int]:
        local = self.local_address(transport)
        host = self.config.advertised_host or local.host
        return host, local.port

    def via(self, transport: str = "UDP") -> Via:
        """A fresh top Via for a request sent over ``transport`` (with ``rport``, RFC 3581)."""
        host, port = self._sent_by(transport)
        return Via(transport.upper(), host, port, (("branch", self.new_branch()), ("rport", None)))

    def contact(self, transport: str = "UDP", *, user: str | None = "hotline") -> NameAddr:
        """Our Contact for dialogs over ``transport`` (sips: for TLS)."""
        key = (transport, user)
        found = self._contacts.get(key)
        if found is None:
            found = self._contacts[key] = self._make_contact(transport, user)
        return found

    def _make_contact(self, transport: str, user: str | None) -> NameAddr:
        host, port = self._sent_by(transport)
        name = transport.upper()
        if name == "TLS":
            return NameAddr(SipUri(host, user=user, port=port, scheme="sips"))
        params = (("transport", name.lower()),) if name != "UDP" else ()
        return NameAddr(SipUri(host, user=user, port=port, params=params))

    # -- destinations (RFC 3263, without DNS SRV/NAPTR) ------------------------------------
    def destination_nowait(self, uri: Uri, *, transport: str | None = None) -> Address | None:
        """Where to send a request for ``uri`` when its host is an IP literal (else None)."""
        if not isinstance(uri, SipUri):
            raise TransportUnavailable(f"uri: cannot route to a {uri.scheme}: URI")
        name = (transport or uri.transport or ("TLS" if uri.scheme == "sips" else "UDP")).upper()
        if uri.scheme == "sips" and name in ("UDP", "TCP"):
            name = "TLS"  # RFC 3261 26.2.2: a SIPS URI is reached over TLS
        if name not in self._by_name:
            raise TransportUnavailable(f"uri: no {name} transport for {uri}")
        host = (uri.maddr or uri.host).strip("[]")
        port = uri.port or (5061 if name == "TLS" else 5060)
        if not _is_ip_literal(host):
            return None
        return Address(host, port, name)

    async def resolve(self, uri: Uri, *, transport: str | None = None) -> Address:
        """Where to send a request for ``uri``: IP literals directly, names by A/AAAA lookup."""
        found = self.destination_nowait(uri, transport=transport)
        if found is not None:
            return found
        assert isinstance(uri, SipUri)
        name = (transport or uri.transport or ("TLS" if uri.scheme == "sips" else "UDP")).upper()
        if uri.scheme == "sips" and name in ("UDP", "TCP"):
            name = "TLS"
        port = uri.port or (5061 if name == "TLS" else 5060)
        try:
            infos = await trio.socket.getaddrinfo(uri.maddr or uri.host, port, type=trio.socket.SOCK_DGRAM)
        except OSError as exc:
            raise TransportUnavailable(f"uri: cannot resolve {uri.host}: {exc}") from None
        if not infos:
            raise TransportUnavailable(f"uri: {uri.host} has no address")
        return Address(infos[0][4][0], port, name)

    # -- input --------------------------------------------------------------------------
    def _admit(self, source: Address) -> bool:
        if self._limiter is None or self._limiter.allow(source.host, trio.current_time()):
            return True
        self._rate_limited += 1
        return False

    def _on_datagram(self, data: bytes, source: Address) -> None:
        if data[:4] != b"SIP/":  # requests and junk are limited per source; responses are not
            if not data.strip(b"\r\n"):
                self._keepalives += 1  # RFC 5626 3.5.1 pings belong to streams; over UDP just absorb
                return
            if not self._admit(source):
                return
            if data[:4] == b"ACK " and _SHED_TAG in data:
                self._shed_acks += 1  # the ACK for a 503 we shed with: nothing to match it to
                return
            shed = self.config.shed_queue_delay
            if shed is not None and data[:7] == b"INVITE " and self.queue_delay() > shed \
                    and self._shed(data, source):
                return
        try:
            self._process(self.layer.receive_datagram(data, source, trio.current_time()))
        except Exception:  # never let a bug in one message stop the receive loop
            self._handler_errors += 1
            log.exception("SIP: error processing a datagram from %s:%s", source.host, source.port)

    def _shed(self, data: bytes, source: Address) -> bool:
        """Answer a new INVITE with a stateless 503 from its raw lines (RFC 3261 8.2.6.2 copies
        Via, From, To, Call-ID, CSeq). False: leave it to the normal path."""
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        copied: list[bytes] = []
        to_line = top_via = None
        for line in head[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name in (b"via", b"v"):
                copied.append(line)
                if top_via is None:
                    top_via = line.split(b":", 1)[1].split(b",", 1)[0].strip()
            elif name in (b"from", b"f", b"call-id", b"i", b"cseq"):
                copied.append(line)
            elif name in (b"to", b"t"):
                to_line = line
            elif line[:1] in (b" ", b"\t"):
                return False  # folded headers: not for the fast path
        if top_via is None or to_line is None:
            return False
        try:
            via = parse_via(top_via.decode("ascii"))
        except (SipParseError, UnicodeDecodeError):
            return False
        if not (via.branch or "").startswith("z9hG4bK"):
            return False  # RFC 2543 matching needs the whole message: the normal path
        taken = TransactionKey("server", "INVITE", via.branch or "", f"{via.host.lower()}:{via.port or ''}")
        if via.branch and self.layer.state_of(taken) is not None:
            return False  # a retransmission of an INVITE we took: its transaction answers it
        if b";tag=" not in to_line.lower():
            to_line += b";tag=" + _SHED_TAG + self.new_tag().encode()
        response = b"\r\n".join([b"SIP/2.0 503 Service Unavailable", *copied, to_line,
                                  b"Retry-After: %d" % self.config.shed_retry_after, b"Content-Length: 0",
                                  b"", b""])
        if source.reliable or via.rport is not None:
            destination = source  # RFC 3581: to where it came from
        elif via.maddr:
            destination = Address(via.maddr, via.port or 5060, source.transport)
        else:
            destination = Address(via.received or via.host.strip("[]"), via.port or 5060, source.transport)
        transport = self._by_name.get(destination.transport)
        if transport is None:
            return False
        transport.send(response, destination)
        self._shed_invites += 1
        return True

    def _on_message(self, message: Request | Response, source: Address) -> None:
        if isinstance(message, Request) and not self._admit(source):
            return
        try:
            self._process(self.layer.receive_message(message, source, trio.current_time()))
        except Exception:
            self._handler_errors += 1
            log.exception("SIP: error processing a message from %s:%s", source.host, source.port)

    def _timer_fired(self, key: Any, name: str, now: float) -> None:
        try:
            self._process(self.layer.timer_fired(key, name, now))
        except Exception:
            self._handler_errors += 1
            log.exception("SIP: error in timer %s", name)

    def _process(self, outputs: list[Any]) -> None:
        for o in outputs:
            kind = type(o)
            if kind is Send:
                self._transmit(o)
            elif kind is SetTimer:
                self._timers.set(o.transaction, o.name, o.at)
            elif kind is CancelTimer:
                self._timers.cancel(o.transaction, o.name)
            elif kind is RequestReceived:
                self._on_request(o)
            elif kind is ResponseReceived:
                self._on_response(o)
            elif kind is TransactionTerminated:
                self._clients.pop(o.transaction, None)
            elif kind is TransactionTimeout:
                self._on_timeout(o.transaction, o.timer, 408)
            elif kind is TransportFailure:
                self._on_timeout(o.transaction, "transport", 503)
            elif kind is MessageDiscarded:
                if o.answered:
                    self._malformed_answered += 1
                else:
                    self._malformed_dropped += 1

    def _transmit(self, send: Send) -> None:
        destination = send.destination
        transport = self._by_name.get(destination.transport)
        key = send.transaction
        if transport is None:
            self._send_failed(key)
            return
        transport.send(send.message.serialize(), destination,
                       (lambda: self._send_failed(key)) if key is not None else None)

    def _send_failed(self, key: TransactionKey | None) -> None:
        self._send_failures += 1
        if key is not None:
            self._process(self.layer.transport_error(key, trio.current_time()))

    def _on_timeout(self, key: TransactionKey, timer: str, status: int) -> None:
        if key.role == "client":
            tx = self._clients.get(key)
            if tx is not None and tx.final is None:
                tx._deliver(make_response(tx.request, status,
                                          "Request Timeout" if status == 408 else "Service Unavailable"))
        elif self.on_server_timeout is not None:
            self.on_server_timeout(key, timer)

    def _on_response(self, event: ResponseReceived) -> None:
        tx = self._clients.get(event.transaction) if event.transaction is not None else None
        if tx is not None:
            tx._deliver(event.response)
        elif self.on_stray_response is not None:
            self.on_stray_response(event)

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        incoming = IncomingRequest(request, event.source, event.transaction, event.cancels, self)
        method = request.method
        if event.transaction is not None and method != "ACK":
            rejection = validate_request(request, self.config.policy)
            if rejection is not None:
                self._rejected += 1
                self.respond(event.transaction, rejection.response(request, to_tag=self.new_tag()))
                return
            if method == "CANCEL":
                if event.cancels is None:
                    self._cancels_unmatched += 1
                    incoming.respond(481)
                    return
                incoming.respond(200)
            elif method == "OPTIONS" and self.config.answer_options:
                self._options += 1
                incoming.respond(200, to_tag=None if request.to.tag else self.new_tag(), headers=[
                    ("Allow", self._allow), ("Accept", ", ".join(self.config.accept)),
                    ("Supported", self._supported), ("User-Agent", self.config.user_agent)])
                return
        elif method == "ACK":
            try:
                _ = (request.cseq, request.call_id)  # an ACK we cannot match is dropped here
            except SipParseError:
                return
        self._delivered += 1
        try:
            self.handler(incoming)
        except Exception:
            self._handler_errors += 1
            log.exception("SIP: the request handler failed on %s", method)
            if incoming.transaction is not None and method != "ACK" and not incoming.final_sent:
                incoming.respond(500)

    def _default_handler(self, incoming: IncomingRequest) -> None:
        if incoming.transaction is not None and incoming.method not in ("ACK", "CANCEL"):
            incoming.respond(501 if incoming.method not in self.config.policy.allowed_methods else 480)

    # -- output -------------------------------------------------------------------------
    def _complete(self, request: Request, destination: Address) -> None:
        if not request.headers.get("Via"):
            transport = destination.transport
            host, port = self._sent_by(transport)
            via = f"SIP/2.0/{transport} {format_host(host)}:{port};branch={self.new_branch()};rport"
            request.headers.insert(0, "Via", via)
        if request.headers.get("Max-Forwards") is None:
            request.headers.add("Max-Forwards", "70")

    def send_request(self, request: Request, destination: Address,
                     on_response: Callable[[Response], None] | None = None) -> ClientTransaction:
        """Start a client transaction (adds our Via if the request has none).

        Never raises for network problems: an unreachable destination ends in
        a synthetic 503 final response, a silent one in a 408.
        """
        if destination.transport not in self._by_name:
            raise TransportUnavailable(f"destination: no {destination.transport} transport")
        self._complete(request, destination)
        tx = ClientTransaction(self, request, destination, on_response)
        key, outputs = self.layer.send_request(request, destination, trio.current_time())
        tx.key = key
        self._clients[key] = tx
        self._process(outputs)
        return tx

    request = send_request

    def send_stateless(self, message: Request | Response, destination: Address) -> None:
        """Send outside any transaction: the ACK for a 2xx (RFC 3261 13.2.2.4)."""
        if isinstance(message, Request):
            self._complete(message, destination)
        self._process(self.layer.send_stateless(message, destination))

    def respond(self, transaction: TransactionKey, response: Response) -> bool:
        """Send ``response`` through server transaction ``transaction``; False if that
        transaction is gone or may no longer send it (counted, never raised)."""
        try:
            outputs = self.layer.send_response(transaction, response, trio.current_time())
        except LocalProtocolError as exc:
            log.debug("SIP: response %s not sent: %s", response.status_code, exc)
            return False
        self._process(outputs)
        return True
