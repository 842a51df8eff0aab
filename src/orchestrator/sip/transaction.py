"""SIP transactions: RFC 3261 section 17 with the RFC 6026 corrections, as
sans-IO state machines.

Four machines (17.1.1 INVITE client, 17.1.2 non-INVITE client, 17.2.1 INVITE
server, 17.2.2 non-INVITE server). RFC 6026 adds the *Accepted* state to both
INVITE machines: a 2xx no longer destroys the transaction at once; the client
passes every 2xx (retransmissions included) to its TU until Timer M, the server
forwards the TU's 2xx retransmissions and absorbs INVITE retransmissions until
Timer L.

Nothing here reads a clock or owns a socket. Every method takes ``now`` and
returns a list of outputs, in order:

* effects - :class:`Send` (a message to a destination), :class:`SetTimer`
  and :class:`CancelTimer` (the driver calls :meth:`TransactionLayer.timer_fired`
  when a timer is due);
* events for the transaction user (TU) - :class:`RequestReceived`,
  :class:`ResponseReceived`, :class:`TransactionTimeout`,
  :class:`TransportFailure`, :class:`TransactionTerminated`,
  :class:`MessageDiscarded`.

Timers (RFC 3261 Table 4, RFC 6026): A, E, G start at T1 and double (E and G
capped at T2; A is not capped); B, F, H, L, M are 64*T1; D is 32 s; I and K are
T4; J is 64*T1. On a reliable transport A, E and G are never set and D, I, J,
K are zero, so those states end at once. Timer "2xx" (RFC 3261 13.3.1.4, no
letter in the RFC) repeats a UAS's 2xx at T1 doubling to T2, on every
transport, until the ACK arrives (it matches by Call-ID, CSeq and tags since
it has its own branch); if none has come when Timer L fires, the TU gets a
TransactionTimeout "L" and should send BYE. ``TimerConfig(retransmit_2xx=False)``
leaves that duty to the TU.

Matching (17.1.3, 17.2.3): a branch starting with the magic cookie
``z9hG4bK`` (and longer than it) identifies the transaction together with the
sent-by and the method (ACK matching INVITE); otherwise the RFC 2543 rules
compare Request-URI, From tag, Call-ID, CSeq number and top Via, and an ACK
must also carry the To tag of the response the transaction sent. RFC 4475
3.2.1 (a bare ``z9hG4bK``) therefore falls back to the RFC 2543 rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from .errors import LocalProtocolError, SipParseError
from .fields import Via, parse_via
from .framing import parse_datagram
from .ids import MAGIC_COOKIE
from .message import Request, Response, make_ack, make_response
from .validation import Rejection, stateless_error_response

__all__ = [
    "Address", "TimerConfig", "TransactionKey", "State",
    "Send", "SetTimer", "CancelTimer",
    "RequestReceived", "ResponseReceived", "TransactionTimeout", "TransportFailure",
    "TransactionTerminated", "MessageDiscarded", "LayerStatistics",
    "TransactionLayer", "response_destination", "server_key", "client_key",
]

RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS", "SCTP", "TLS-SCTP", "WS", "WSS"})


@dataclass(frozen=True)
class Address:
    """Where a message comes from or goes to: host, port, transport name."""

    host: str
    port: int
    transport: str = "UDP"

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 < self.port <= 65535:
            raise ValueError(f"port: must be 1..65535, not {self.port!r}")
        if not self.host:
            raise ValueError("host: must be non-empty")
        object.__setattr__(self, "transport", self.transport.upper())

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE_TRANSPORTS


@dataclass(frozen=True, kw_only=True)
class TimerConfig:
    """RFC 3261 timer values in seconds (17.1.1.1, Table 4)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0
    send_100_trying: bool = True  # 17.2.1: send 100 at once rather than rely on the TU within 200 ms
    retransmit_2xx: bool = True  # 13.3.1.4: the layer repeats a UAS's 2xx until its ACK arrives

    def __post_init__(self) -> None:
        for name in ("t1", "t2", "t4", "timer_d"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name}: must be a positive number of seconds, not {value!r}")
        if self.t2 < self.t1:
            raise ValueError("t2: must not be smaller than t1")


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


@dataclass(frozen=True)
class TransactionKey:
    """Identifies a transaction: role, method (INVITE for an ACK), branch and sent-by.

    For RFC 2543 peers ``branch`` is empty and ``sent_by`` holds the 2543 identity.
    """

    role: str
    method: str
    branch: str
    sent_by: str = ""


# --- effects -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    message: Request | Response
    destination: Address
    transaction: TransactionKey | None = None


@dataclass(frozen=True)
class SetTimer:
    name: str
    at: float
    transaction: TransactionKey


@dataclass(frozen=True)
class CancelTimer:
    name: str
    transaction: TransactionKey


# --- events for the TU ---------------------------------------------------------------------
@dataclass(frozen=True)
class RequestReceived:
    """A new request. ``transaction`` is None for an ACK to a 2xx (it has none);
    for a CANCEL, ``cancels`` is the INVITE server transaction it matches, if any."""

    request: Request
    source: Address
    transaction: TransactionKey | None
    cancels: TransactionKey | None = None


@dataclass(frozen=True)
class ResponseReceived:
    """A response for the TU; ``transaction`` is None for a 2xx that matched no
    transaction (a retransmission after Timer M, or a forked 2xx: RFC 6026 7.2)."""

    response: Response
    source: Address
    transaction: TransactionKey | None


@dataclass(frozen=True)
class TransactionTimeout:
    transaction: TransactionKey
    timer: str


@dataclass(frozen=True)
class TransportFailure:
    transaction: TransactionKey


@dataclass(frozen=True)
class TransactionTerminated:
    transaction: TransactionKey


@dataclass(frozen=True)
class MessageDiscarded:
    """Input that was not passed on: malformed, or a response matching nothing."""

    reason: str
    source: Address
    answered: bool = False


@dataclass(frozen=True)
class LayerStatistics:
    client_transactions: int
    server_transactions: int
    messages_received: int
    malformed_answered: int
    discarded: int
    retransmissions_absorbed: int
    retransmissions_sent: int
    keepalives: int


Output = Send | SetTimer | CancelTimer | RequestReceived | ResponseReceived | TransactionTimeout | \
    TransportFailure | TransactionTerminated | MessageDiscarded


def _branch_is_3261(branch: str | None) -> bool:
    return branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)


def server_key(request: Request) -> TransactionKey:
    """The server transaction a request belongs to (RFC 3261 17.2.3)."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    if _branch_is_3261(via.branch):
        return TransactionKey("server", method, via.branch or "", f"{via.host.lower()}:{via.port or ''}")
    identity = "|".join([
        str(request.uri.canonical() if hasattr(request.uri, "canonical") else request.uri),
        request.from_.tag or "", request.call_id, str(request.cseq.seq), str(via),
    ])
    return TransactionKey("server", method, "", identity)


def client_key(message: Request | Response) -> TransactionKey:
    """The client transaction of a request we send or a response we receive (17.1.3)."""
    return TransactionKey("client", message.cseq.method, message.top_via.branch or "")


def response_destination(via: Via, source: Address) -> Address:
    """Where a server sends responses (RFC 3261 18.2.2, RFC 3581 section 4)."""
    if source.reliable:
        return source  # the same connection
    if via.maddr:
        return Address(via.maddr, via.port or 5060, source.transport)
    if via.param("rport"):
        return source
    return Address(via.received or via.host.strip("[]"), via.port or 5060, source.transport)


class _Transaction:
    state: State

    def __init__(self, key: TransactionKey, config: TimerConfig, destination: Address) -> None:
        self.key = key
        self.cfg = config
        self.destination = destination
        self.reliable = destination.reliable
        self.timers: dict[str, float] = {}
        self.retransmissions = 0

    def _send(self, out: list[Output], message: Request | Response) -> None:
        out.append(Send(message, self.destination, self.key))

    def _arm(self, out: list[Output], name: str, at: float) -> None:
        self.timers[name] = at
        out.append(SetTimer(name, at, self.key))

    def _disarm(self, out: list[Output], *names: str) -> None:
        for name in names:
            if self.timers.pop(name, None) is not None:
                out.append(CancelTimer(name, self.key))

    def _terminate(self, out: list[Output]) -> None:
        self._disarm(out, *list(self.timers))
        self.state = State.TERMINATED
        out.append(TransactionTerminated(self.key))

    def _after(self, out: list[Output], name: str, now: float, delay: float) -> None:
        """Arm a timer that is zero on reliable transports, or end now."""
        if self.reliable or delay <= 0:
            self._terminate(out)
        else:
            self._arm(out, name, now + delay)

    def fire(self, name: str, now: float, out: list[Output]) -> None:
        at = self.timers.get(name)
        if at is None or now < at:
            return  # cancelled or re-armed meanwhile: a stale wake-up
        del self.timers[name]
        self.on_timer(name, now, out)

    def on_timer(self, name: str, now: float, out: list[Output]) -> None:
        raise NotImplementedError

    def transport_error(self, out: list[Output]) -> None:
        out.append(TransportFailure(self.key))
        self._terminate(out)


class InviteClientTransaction(_Transaction):
    """RFC 3261 17.1.1 (Figure 5) as amended by RFC 6026 7.2 (Figure 3)."""

    def __init__(self, key: TransactionKey, config: TimerConfig, request: Request,
                 destination: Address) -> None:
        super().__init__(key, config, destination)
        self.request = request
        self.state = State.CALLING
        self.interval_a = config.t1
        self.ack: Request | None = None

    def start(self, now: float, out: list[Output]) -> None:
        self._send(out, self.request)
        if not self.reliable:
            self._arm(out, "A", now + self.interval_a)
        self._arm(out, "B", now + 64 * self.cfg.t1)

    def on_timer(self, name: str, now: float, out: list[Output]) -> None:
        if name == "A" and self.state is State.CALLING:
            self._send(out, self.request)
            self.retransmissions += 1
            self.interval_a *= 2
            self._arm(out, "A", now + self.interval_a)
        elif name == "B" and self.state is State.CALLING:
            out.append(TransactionTimeout(self.key, "B"))
            self._terminate(out)
        elif name in ("D", "M"):
            self._terminate(out)

    def on_response(self, response: Response, source: Address, now: float, out: list[Output]) -> bool:
        """Returns True when the response was a retransmission absorbed here."""
        code = response.status_code
        if self.state in (State.CALLING, State.PROCEEDING):
            self._disarm(out, "A", "B")
            if code < 200:
                self.state = State.PROCEEDING
            elif code < 300:
                self.state = State.ACCEPTED
                self._arm(out, "M", now + 64 * self.cfg.t1)
            else:
                self.state = State.COMPLETED
                self.ack = make_ack(self.request, response)
                self._send(out, self.ack)
            out.append(ResponseReceived(response, source, self.key))
            if self.state is State.COMPLETED:
                self._after(out, "D", now, self.cfg.timer_d)
            return False
        if self.state is State.COMPLETED and code >= 300 and self.ack is not None:
            self._send(out, self.ack)  # the ACK was lost: send it again, do not bother the TU
            self.retransmissions += 1
            return True
        if self.state is State.ACCEPTED and 200 <= code < 300:
            out.append(ResponseReceived(response, source, self.key))  # TU re-sends its ACK
            return False
        return True


class NonInviteClientTransaction(_Transaction):
    """RFC 3261 17.1.2 (Figure 6)."""

    def __init__(self, key: TransactionKey, config: TimerConfig, request: Request,
                 destination: Address) -> None:
        super().__init__(key, config, destination)
        self.request = request
        self.state = State.TRYING
        self.interval_e = config.t1

    def start(self, now: float, out: list[Output]) -> None:
        self._send(out, self.request)
        if not self.reliable:
            self._arm(out, "E", now + self.interval_e)
        self._arm(out, "F", now + 64 * self.cfg.t1)

    def on_timer(self, name: str, now: float, out: list[Output]) -> None:
        if name == "E" and self.state in (State.TRYING, State.PROCEEDING):
            self._send(out, self.request)
            self.retransmissions += 1
            if self.state is State.TRYING:
                self.interval_e = min(2 * self.interval_e, self.cfg.t2)
            else:
                self.interval_e = self.cfg.t2
            self._arm(out, "E", now + self.interval_e)
        elif name == "F" and self.state in (State.TRYING, State.PROCEEDING):
            out.append(TransactionTimeout(self.key, "F"))
            self._terminate(out)
        elif name == "K":
            self._terminate(out)

    def on_response(self, response: Response, source: Address, now: float, out: list[Output]) -> bool:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return True
        if response.status_code < 200:
            self.state = State.PROCEEDING
            out.append(ResponseReceived(response, source, self.key))
            return False
        self.state = State.COMPLETED
        self._disarm(out, "E", "F")
        out.append(ResponseReceived(response, source, self.key))
        self._after(out, "K", now, self.cfg.t4)
        return False


class InviteServerTransaction(_Transaction):
    """RFC 3261 17.2.1 (Figure 7) as amended by RFC 6026 7.1 (Figure 5)."""

    def __init__(self, key: TransactionKey, config: TimerConfig, request: Request,
                 destination: Address) -> None:
        super().__init__(key, config, destination)
        self.request = request
        self.state = State.PROCEEDING
        self.last_response: Response | None = None
        self.interval_g = config.t1
        self.interval_2xx = config.t1
        self.acked = False

    def start(self, now: float, out: list[Output]) -> None:
        if self.cfg.send_100_trying:
            self.last_response = make_response(self.request, 100)
            self._send(out, self.last_response)

    @property
    def to_tag(self) -> str | None:
        if self.last_response is None:
            return None
        try:
            return self.last_response.to.tag
        except SipParseError:
            return None

    def on_request(self, request: Request, now: float, out: list[Output]) -> bool:
        """A retransmitted INVITE, or an ACK. Returns True if absorbed."""
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._disarm(out, "G", "H")
                self._after(out, "I", now, self.cfg.t4)
                return True
            if self.state is State.ACCEPTED:
                return False  # RFC 6026: an ACK matching in Accepted goes to the TU
            return True
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            self._send(out, self.last_response)
            self.retransmissions += 1
        return True

    def send_response(self, response: Response, now: float, out: list[Output]) -> None:
        code = response.status_code
        if self.state is State.PROCEEDING:
            self.last_response = response
            self._send(out, response)
            if code < 200:
                return
            if code < 300:
                self.state = State.ACCEPTED
                self._arm(out, "L", now + 64 * self.cfg.t1)
                if self.cfg.retransmit_2xx:  # 13.3.1.4: whatever the transport
                    self._arm(out, "2xx", now + self.interval_2xx)
            else:
                self.state = State.COMPLETED
                if not self.reliable:
                    self._arm(out, "G", now + self.interval_g)
                self._arm(out, "H", now + 64 * self.cfg.t1)
        elif self.state is State.ACCEPTED and 200 <= code < 300:
            self._send(out, response)  # the TU's own 2xx retransmission (RFC 6026 7.1)
        else:
            raise LocalProtocolError(
                f"cannot send a {code} in the {self.state.value} state of INVITE server transaction")

    def on_timer(self, name: str, now: float, out: list[Output]) -> None:
        if name == "G" and self.state is State.COMPLETED and self.last_response is not None:
            self._send(out, self.last_response)
            self.retransmissions += 1
            self.interval_g = min(2 * self.interval_g, self.cfg.t2)
            self._arm(out, "G", now + self.interval_g)
        elif name == "H" and self.state is State.COMPLETED:
            out.append(TransactionTimeout(self.key, "H"))
            self._terminate(out)
        elif name == "2xx" and self.state is State.ACCEPTED and not self.acked and self.last_response:
            self._send(out, self.last_response)
            self.retransmissions += 1
            self.interval_2xx = min(2 * self.interval_2xx, self.cfg.t2)
            self._arm(out, "2xx", now + self.interval_2xx)
        elif name == "L":
            if self.cfg.retransmit_2xx and not self.acked:
                # 13.3.1.4: no ACK for the 2xx within 64*T1 - the TU should end the session (BYE).
                out.append(TransactionTimeout(self.key, "L"))
            self._terminate(out)
        elif name == "I":
            self._terminate(out)

    def ack_for_2xx(self, out: list[Output]) -> None:
        """The ACK for our 2xx arrived (it matched by dialog, not by branch): stop repeating."""
        self.acked = True
        self._disarm(out, "2xx")

    @property
    def ack_identity(self) -> tuple[str, int, str, str] | None:
        """(Call-ID, CSeq number, From tag, To tag) an ACK for our 2xx carries (13.2.2.4)."""
        try:
            request = self.request
            return (request.call_id, request.cseq.seq, request.from_.tag or "", self.to_tag or "")
        except SipParseError:
            return None


class NonInviteServerTransaction(_Transaction):
    """RFC 3261 17.2.2 (Figure 8)."""

    def __init__(self, key: TransactionKey, config: TimerConfig, request: Request,
                 destination: Address) -> None:
        super().__init__(key, config, destination)
        self.request = request
        self.state = State.TRYING
        self.last_response: Response | None = None

    def start(self, now: float, out: list[Output]) -> None:
        pass

    def on_request(self, request: Request, now: float, out: list[Output]) -> bool:
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            self._send(out, self.last_response)
            self.retransmissions += 1
        return True

    def send_response(self, response: Response, now: float, out: list[Output]) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            raise LocalProtocolError(f"cannot send a response in the {self.state.value} state")
        self.last_response = response
        self._send(out, response)
        if response.status_code < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        self._after(out, "J", now, 64 * self.cfg.t1)

    def on_timer(self, name: str, now: float, out: list[Output]) -> None:
        if name == "J":
            self._terminate(out)


_Server = InviteServerTransaction | NonInviteServerTransaction
_Client = InviteClientTransaction | NonInviteClientTransaction


class TransactionLayer:
    """Routes messages to transactions or to the core, and collects the outputs.

    One object per SIP stack; not thread-safe (it has no threads to be safe
    from). See the module docstring for the outputs.
    """

    def __init__(self, config: TimerConfig = TimerConfig()) -> None:
        if not isinstance(config, TimerConfig):
            raise ValueError("config: must be a TimerConfig")
        self.config = config
        self._clients: dict[TransactionKey, _Client] = {}
        self._servers: dict[TransactionKey, _Server] = {}
        self._awaiting_ack: dict[tuple[str, int, str, str], InviteServerTransaction] = {}
        self._received = self._answered = self._discarded = 0
        self._absorbed = self._keepalives = 0
        self._retransmitted_by_ended = 0

    # -- inspection ---------------------------------------------------------------------
    def state_of(self, key: TransactionKey) -> State | None:
        t = self._clients.get(key) or self._servers.get(key)
        return None if t is None else t.state

    def statistics(self) -> LayerStatistics:
        live = [*self._clients.values(), *self._servers.values()]
        return LayerStatistics(
            client_transactions=len(self._clients), server_transactions=len(self._servers),
            messages_received=self._received, malformed_answered=self._answered, discarded=self._discarded,
            retransmissions_absorbed=self._absorbed,
            retransmissions_sent=self._retransmitted_by_ended + sum(t.retransmissions for t in live),
            keepalives=self._keepalives)

    def _collect(self, out: list[Output]) -> list[Output]:
        for o in out:
            if isinstance(o, TransactionTerminated):
                t = self._clients.pop(o.transaction, None) or self._servers.pop(o.transaction, None)
                if t is not None:
                    self._retransmitted_by_ended += t.retransmissions
                if isinstance(t, InviteServerTransaction) and t.ack_identity in self._awaiting_ack:
                    del self._awaiting_ack[t.ack_identity]  # type: ignore[arg-type]
        return out

    # -- input --------------------------------------------------------------------------
    def receive_datagram(self, data: bytes, source: Address, now: float) -> list[Output]:
        """A datagram from ``source``: parsed, answered 400 if malformed, routed."""
        if not bytes(data).strip(b"\r\n"):
            self._keepalives += 1
            return []
        try:
            message = parse_datagram(data)
        except SipParseError as exc:
            return self._malformed(data, exc, source)
        return self.receive_message(message, source, now)

    def _malformed(self, data: bytes, exc: SipParseError, source: Address) -> list[Output]:
        response = stateless_error_response(data, exc)
        try:
            # Only the top Via matters for routing the response; later ones may be broken.
            destination = response_destination(parse_via(response.headers.values("Via")[0]), source) \
                if response is not None else None
        except SipParseError:
            destination = None
        if response is None or destination is None:
            self._discarded += 1
            return [MessageDiscarded(exc.reason, source)]
        self._answered += 1
        return [Send(response, destination), MessageDiscarded(exc.reason, source, answered=True)]

    def receive_message(self, message: Request | Response, source: Address, now: float) -> list[Output]:
        """A message already framed (from a :class:`StreamReceiver`, or parsed)."""
        self._received += 1
        if isinstance(message, Response):
            return self._receive_response(message, source, now)
        return self._receive_request(message, source, now)

    def _receive_response(self, response: Response, source: Address, now: float) -> list[Output]:
        try:
            key = client_key(response)
        except SipParseError as exc:
            self._discarded += 1
            return [MessageDiscarded(f"response dropped: {exc.reason}", source)]
        t = self._clients.get(key)
        out: list[Output] = []
        if t is None:
            if key.method == "INVITE" and 200 <= response.status_code < 300:
                return [ResponseReceived(response, source, None)]  # stray 2xx: the UAC core ACKs it
            self._discarded += 1
            return [MessageDiscarded("response matches no transaction", source)]
        if t.on_response(response, source, now, out):
            self._absorbed += 1
        return self._collect(out)

    def _receive_request(self, request: Request, source: Address, now: float) -> list[Output]:
        try:
            key = server_key(request)
            via = request.top_via
        except SipParseError as exc:
            return self._unmatchable(request, exc, source)
        out: list[Output] = []
        if request.method == "ACK":
            t = self._servers.get(key)
            if isinstance(t, InviteServerTransaction) and (key.branch or _ack_tag_matches(request, t)):
                if t.on_request(request, now, out):
                    self._absorbed += 1
                    return self._collect(out)
                out.append(RequestReceived(request, source, t.key))
                return self._collect(out)
            self._match_2xx_ack(request, out)
            out.append(RequestReceived(_with_received(request, via, source), source, None))
            return self._collect(out)
        t = self._servers.get(key)
        if t is not None:
            t.on_request(request, now, out)
            self._absorbed += 1
            return self._collect(out)
        request = _with_received(request, via, source)
        destination = response_destination(request.top_via, source)
        cls = InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
        server = cls(key, self.config, request, destination)
        self._servers[key] = server
        cancels = None
        if request.method == "CANCEL":
            invite_key = replace(key, method="INVITE")
            if invite_key in self._servers:
                cancels = invite_key
        server.start(now, out)  # the 100 Trying goes out before the TU sees the request
        out.append(RequestReceived(request, source, key, cancels))
        return self._collect(out)

    def _match_2xx_ack(self, ack: Request, out: list[Output]) -> None:
        try:
            identity = (ack.call_id, ack.cseq.seq, ack.from_.tag or "", ack.to.tag or "")
        except SipParseError:
            return
        t = self._awaiting_ack.pop(identity, None)
        if t is not None:
            t.ack_for_2xx(out)

    def _unmatchable(self, request: Request, exc: SipParseError, source: Address) -> list[Output]:
        """A request whose Via/CSeq/From/Call-ID are too broken to match: answer statelessly."""
        if request.method != "ACK":
            try:
                response = Rejection(400, exc.reason).response(request)
                destination = response_destination(response.top_via, source)
            except SipParseError:
                pass
            else:
                self._answered += 1
                return [Send(response, destination), MessageDiscarded(exc.reason, source, answered=True)]
        self._discarded += 1
        return [MessageDiscarded(exc.reason, source)]

    # -- output -------------------------------------------------------------------------
    def send_request(self, request: Request, destination: Address, now: float
                     ) -> tuple[TransactionKey, list[Output]]:
        """Start a client transaction for ``request`` (not an ACK: see :meth:`send_stateless`)."""
        if not isinstance(request, Request):
            raise LocalProtocolError("request: must be a Request")
        if request.method == "ACK":
            raise LocalProtocolError("an ACK has no client transaction: use send_stateless")
        try:
            key = client_key(request)
        except SipParseError as exc:
            raise LocalProtocolError(f"request: {exc.reason}") from None
        if not _branch_is_3261(key.branch):
            raise LocalProtocolError("request: top Via needs a z9hG4bK branch (RFC 3261 8.1.1.7)")
        if key in self._clients:
            raise LocalProtocolError("request: a client transaction with this branch and method exists")
        if request.cseq.method != request.method:
            raise LocalProtocolError("request: CSeq method differs from the method")
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        t = cls(key, self.config, request, destination)
        self._clients[key] = t
        out: list[Output] = []
        t.start(now, out)
        return key, self._collect(out)

    def send_response(self, transaction: TransactionKey, response: Response, now: float) -> list[Output]:
        """Send a response through the server transaction ``transaction``."""
        t = self._servers.get(transaction)
        if t is None:
            raise LocalProtocolError(f"no live server transaction {transaction}")
        if not isinstance(response, Response):
            raise LocalProtocolError("response: must be a Response")
        out: list[Output] = []
        t.send_response(response, now, out)
        if isinstance(t, InviteServerTransaction) and t.state is State.ACCEPTED and not t.acked:
            identity = t.ack_identity
            if identity is not None:
                self._awaiting_ack[identity] = t
        return self._collect(out)

    def send_stateless(self, message: Request | Response, destination: Address) -> list[Output]:
        """Send outside any transaction: the ACK for a 2xx, a 2xx retransmission after L."""
        return [Send(message, destination)]

    def timer_fired(self, transaction: TransactionKey, name: str, now: float) -> list[Output]:
        """The driver says timer ``name`` of ``transaction`` is due (stale calls are ignored)."""
        t = self._clients.get(transaction) or self._servers.get(transaction)
        if t is None:
            return []
        out: list[Output] = []
        t.fire(name, now, out)
        return self._collect(out)

    def transport_error(self, transaction: TransactionKey, now: float) -> list[Output]:
        """Sending for ``transaction`` failed (17.1.4, 17.2.4): it ends and the TU is told."""
        t = self._clients.get(transaction) or self._servers.get(transaction)
        if t is None:
            return []
        out: list[Output] = []
        t.transport_error(out)
        return self._collect(out)


def _ack_tag_matches(ack: Request, t: InviteServerTransaction) -> bool:
    try:
        return ack.to.tag == t.to_tag
    except SipParseError:
        return False


def _with_received(request: Request, via: Via, source: Address) -> Request:
    """Add ``received`` (RFC 3261 18.2.1) and fill ``rport`` (RFC 3581) on the top Via."""
    params = {}
    if via.host.strip("[]").lower() != source.host.lower():
        params["received"] = source.host
    if via.param("rport") == "":
        params["rport"] = str(source.port)
        params.setdefault("received", source.host)
    if params:
        request.headers.replace_first_value("Via", str(via.with_params(**params)))
    return request

