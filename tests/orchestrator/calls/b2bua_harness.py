"""Test kit for the B2BUA: scripted SIP phones on loopback and a running Hotline.

A :class:`Phone` is a small SIP user agent built on our own SipEndpoint (real
UDP/TCP sockets on 127.0.0.1) with a real RTP socket (tests/rtppeer.py), so
tests can script exactly what a party sends - answer or refuse, hold,
transfer, INFO DTMF - and check what it receives, media included.
:func:`running_hotline` starts an engine, an endpoint and a CallManager.
Interop tests use real third-party peers instead (tests/orchestrator/interop).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import trio

from mediacore.engine import Engine
from orchestrator.calls import (
    CallbackSink,
    CallEvent,
    CallManager,
    CallManagerConfig,
    DialPlan,
    InMemoryLocator,
    OpenAuthenticator,
)
from orchestrator.sip import (
    Address,
    Dialog,
    Headers,
    MediaPolicy,
    NameAddr,
    Request,
    Response,
    SessionDescription,
    SipUri,
    TimerConfig,
    apply_answer,
    create_answer,
    create_offer,
)
from orchestrator.transport import (
    ClientTransaction,
    EndpointConfig,
    IncomingRequest,
    SipEndpoint,
    StreamTransport,
    TlsConfig,
    UdpTransport,
)
from tests.rtppeer import RtpPeer


def trio_test(fn):
    """Run an async test function under trio.run (no pytest plugin needed)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return trio.run(functools.partial(fn, *args, **kwargs))
    return wrapper


PCMU_ONLY = MediaPolicy(codecs=("PCMU",), telephone_event=True)


def engine_port_range(size: int = 600) -> tuple[int, int]:
    """A random RTP port block for one test's engine, away from the peers' fixed ranges and the
    benchmarks' (30000-34000, 40000-49999). The engine skips ports other processes hold; a block
    this size is not exhausted by them even when benchmarks run beside the tests."""
    base = random.randrange(50000, 59000, 100)
    return base, base + size - 1


@dataclass(eq=False)
class PhoneCall:
    """One dialog a phone is in."""

    phone: Phone
    role: str  # "uac" or "uas"
    invite: Request
    incoming: IncomingRequest | None = None
    tx: ClientTransaction | None = None
    dialog: Dialog | None = None
    local_tag: str = ""
    offer: SessionDescription | None = None
    remote_sdp: SessionDescription | None = None
    responses: list[Response] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    final: Response | None = None
    answered: trio.Event = field(default_factory=trio.Event)
    ended: trio.Event = field(default_factory=trio.Event)
    acked: trio.Event = field(default_factory=trio.Event)
    notifies: list[str] = field(default_factory=list)
    notify_event: trio.Event = field(default_factory=trio.Event)

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def media_target(self) -> tuple[str, int]:
        """Where this phone must send RTP: the address in the other side's SDP (the engine)."""
        assert self.remote_sdp is not None
        m = self.remote_sdp.media[0]
        conn = self.remote_sdp.connection_for(m)
        assert conn is not None
        return conn.host, m.port

    def _next_hop(self) -> Address:
        assert self.dialog is not None
        target = self.dialog.remote_target
        assert isinstance(target, SipUri)
        return self.phone.endpoint.destination_nowait(target, transport=self.phone.transport_name) \
            or self.phone.hotline

    def request(self, method: str, *, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                content_type: str | None = None) -> ClientTransaction:
        assert self.dialog is not None
        ep = self.phone.endpoint
        dest = self._next_hop()
        req, _ = self.dialog.create_request(method, via=ep.via(dest.transport), contact=self.phone.contact,
                                            headers=headers, body=body, content_type=content_type)
        return ep.send_request(req, dest)

    async def bye(self) -> Response:
        response = await self.request("BYE")
        self.ended.set()
        return response

    async def reinvite(self, direction: str = "sendrecv") -> Response:
        """A re-INVITE with our SDP in ``direction`` (sendonly/inactive: hold); ACKs the 2xx."""
        offer = self.phone.make_offer(direction)
        tx = self.request("INVITE", body=offer.serialize(), content_type="application/sdp")
        response = await tx
        if 200 <= response.status_code < 300:
            assert self.dialog is not None
            via = self.phone.endpoint.via(self.phone.transport_name)
            ack, _ = self.dialog.create_ack(tx.request, via=via)
            self.phone.endpoint.send_stateless(ack, self._next_hop())
            self.remote_sdp = SessionDescription.parse(response.body)
        return response

    async def info(self, body: bytes, content_type: str = "application/dtmf-relay") -> Response:
        return await self.request("INFO", body=body, content_type=content_type)

    async def refer(self, refer_to: str, *, headers: list[tuple[str, str]] | None = None) -> Response:
        return await self.request("REFER", headers=[("Refer-To", refer_to), *(headers or [])])

    def replaces_value(self) -> str:
        """This dialog as a Replaces value from the far end's point of view (RFC 3891)."""
        assert self.dialog is not None
        return f"{self.dialog.call_id};to-tag={self.dialog.remote_tag};from-tag={self.dialog.local_tag}"


class Phone:
    """A scripted UA (see the module docstring).

    ``answer``: None (do nothing, the test answers), or a status code to send
    at once to every new INVITE (after a 180 if ``ring``).
    """

    def __init__(self, name: str, *, transport: str = "UDP", answer: int | None = 200, ring: bool = True,
                 early_media: bool = False, policy: MediaPolicy = PCMU_ONLY,
                 tls: TlsConfig | None = None) -> None:
        self.name = name
        self.transport_name = transport
        t = UdpTransport("127.0.0.1", 0) if transport == "UDP" else StreamTransport("127.0.0.1", 0, tls=tls)
        self.endpoint = SipEndpoint([t], config=EndpointConfig(
            rate_limit=None, user_agent=f"phone-{name}", timers=TimerConfig(t1=0.1, t2=0.4),
            shed_queue_delay=None))  # a test phone never sheds, however slow the machine is
        self.endpoint.handler = self._on_request
        self.answer = answer
        self.ring = ring
        self.early_media = early_media
        self.policy = policy
        self.rtp = RtpPeer()
        self.send_ack = True
        self.hotline: Address | None = None
        self.calls: list[PhoneCall] = []
        self._by_call_id: dict[str, PhoneCall] = {}
        self._send, self.incoming = trio.open_memory_channel[PhoneCall](math.inf)
        self._version = 1
        self.on_request: Callable[[IncomingRequest, PhoneCall | None], None] | None = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def address(self) -> Address:
        return self.endpoint.local_address(self.transport_name)

    @property
    def uri(self) -> str:
        a = self.address
        if self.transport_name == "TLS":
            return f"sips:{self.name}@{a.host}:{a.port}"
        suffix = "" if self.transport_name == "UDP" else f";transport={self.transport_name.lower()}"
        return f"sip:{self.name}@{a.host}:{a.port}{suffix}"

    @property
    def contact(self) -> NameAddr:
        return self.endpoint.contact(self.transport_name, user=self.name)

    def make_offer(self, direction: str = "sendrecv") -> SessionDescription:
        host, port = self.rtp.address
        self._version += 1
        return create_offer(address=host, port=port, policy=self.policy, session_id=7,
                            session_version=self._version, direction=direction)  # type: ignore[arg-type]

    def close(self) -> None:
        self.rtp.close()

    # -- calling -----------------------------------------------------------------------------
    def invite(self, uri: str, *, to: Address | None = None, body: bytes | None = None,
               headers: list[tuple[str, str]] | None = None) -> PhoneCall:
        """Send an INVITE (our SDP offer unless ``body`` is given; b"" sends none)."""
        ep = self.endpoint
        dest = to or self.hotline
        assert dest is not None
        call_id = ep.new_call_id()
        tag = ep.new_tag()
        offer = self.make_offer() if body is None else None
        payload = offer.serialize() if offer is not None else body or b""
        h = Headers()
        h.add("From", f'"{self.name.title()}" <sip:{self.name}@127.0.0.1>;tag={tag}')
        h.add("To", f"<{uri}>")
        h.add("Call-ID", call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", str(self.contact))
        for name, value in headers or []:
            h.add(name, value)
        if payload:
            h.add("Content-Type", "application/sdp")
        request = Request("INVITE", uri, h, payload)
        call = PhoneCall(self, "uac", request, local_tag=tag, offer=offer)
        self.calls.append(call)
        self._by_call_id[call_id] = call
        call.tx = ep.send_request(request, dest, on_response=lambda r: self._on_response(call, r))
        return call

    def _on_response(self, call: PhoneCall, response: Response) -> None:
        if response in call.responses:
            return
        call.responses.append(response)
        code = response.status_code
        if code < 200:
            if response.body and call.offer is not None and call.remote_sdp is None:
                call.remote_sdp = SessionDescription.parse(response.body)
            return
        if call.final is not None:  # a 2xx retransmission: ACK again
            if 200 <= code < 300 and call.dialog is not None:
                self._ack(call)
            return
        call.final = response
        if 200 <= code < 300:
            call.dialog = Dialog.from_uac(call.invite, response)
            if response.body:
                sdp = SessionDescription.parse(response.body)
                if call.offer is not None:
                    apply_answer(call.offer, sdp)
                call.remote_sdp = sdp
            self._ack(call)
            call.answered.set()
        else:
            call.ended.set()

    def _ack(self, call: PhoneCall) -> None:
        assert call.dialog is not None
        if not self.send_ack:
            return
        dest = call._next_hop()
        body = b""
        content_type = None
        if call.offer is None and call.remote_sdp is not None:  # delayed offer: answer in the ACK
            answer, _ = create_answer(call.remote_sdp, address="127.0.0.1", port=self.rtp.address[1],
                                      policy=self.policy, session_id=8, session_version=1)
            body, content_type = answer.serialize(), "application/sdp"
        ack, _ = call.dialog.create_ack(call.invite, via=self.endpoint.via(dest.transport), body=body,
                                        content_type=content_type)
        self.endpoint.send_stateless(ack, dest)

    # -- called -------------------------------------------------------------------------------
    def _on_request(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        call = self._by_call_id.get(request.call_id)
        if self.on_request is not None:
            self.on_request(incoming, call)
        if request.method == "INVITE" and not request.to.tag:
            call = PhoneCall(self, "uas", request, incoming=incoming, local_tag=self.endpoint.new_tag())
            if request.body:
                call.remote_sdp = SessionDescription.parse(request.body)
            self.calls.append(call)
            self._by_call_id[request.call_id] = call
            if self.answer is not None:
                self.respond_invite(call, self.answer)
            self._send.send_nowait(call)
            return
        if call is None:
            if incoming.transaction is not None:
                incoming.respond(481)
            return
        call.requests.append(request)
        if request.method == "ACK":
            call.acked.set()
            return
        if call.dialog is not None:
            call.dialog.receive_request(request)
        if request.method == "BYE":
            incoming.respond(200)
            call.ended.set()
        elif request.method == "CANCEL":
            if call.final is None and call.incoming is not None:
                call.incoming.respond(487, to_tag=call.local_tag)
                call.ended.set()
        elif request.method == "INVITE":
            answer, _ = create_answer(SessionDescription.parse(request.body), address="127.0.0.1",
                                      port=self.rtp.address[1], policy=self.policy, session_id=8,
                                      session_version=self._bump())
            call.remote_sdp = SessionDescription.parse(request.body)
            incoming.respond(200, headers=[("Contact", str(self.contact))], body=answer.serialize(),
                             content_type="application/sdp")
        elif request.method == "NOTIFY":
            call.notifies.append(request.body.decode())
            incoming.respond(200)
            call.notify_event.set()
            call.notify_event = trio.Event()
        else:
            incoming.respond(200)

    def _bump(self) -> int:
        self._version += 1
        return self._version

    def respond_invite(self, call: PhoneCall, status: int) -> None:
        incoming = call.incoming
        assert incoming is not None
        contact = [("Contact", str(self.contact))]
        if status == 200:
            if self.ring:
                incoming.respond(180, to_tag=call.local_tag, headers=contact)
            assert call.remote_sdp is not None
            answer, _ = create_answer(call.remote_sdp, address="127.0.0.1", port=self.rtp.address[1],
                                      policy=self.policy, session_id=8, session_version=self._bump())
            response = incoming.respond(200, to_tag=call.local_tag, headers=contact, body=answer.serialize(),
                                        content_type="application/sdp")
            assert response is not None
            call.dialog = Dialog.from_uas(call.invite, response)
            call.final = response
            call.answered.set()
        elif status in (180, 183):
            body = b""
            if status == 183 and call.remote_sdp is not None:
                answer, _ = create_answer(call.remote_sdp, address="127.0.0.1", port=self.rtp.address[1],
                                          policy=self.policy, session_id=8, session_version=self._bump())
                body = answer.serialize()
            incoming.respond(status, to_tag=call.local_tag, headers=contact, body=body,
                             content_type="application/sdp" if body else None)
        else:
            if self.ring:
                incoming.respond(180, to_tag=call.local_tag, headers=contact)
            call.final = incoming.respond(status, to_tag=call.local_tag)
            call.ended.set()

    async def next_call(self) -> PhoneCall:
        return await self.incoming.receive()


@dataclass
class Hotline:
    engine: Engine
    endpoint: SipEndpoint
    manager: CallManager
    locator: InMemoryLocator
    events: list[CallEvent]
    address: Address
    engine_ports: tuple[int, int] = (0, 0)

    @property
    def engine_port_range(self) -> range:
        return range(self.engine_ports[0], self.engine_ports[1] + 1)

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def event(self, name: str) -> CallEvent:
        found = [e for e in self.events if e.name == name]
        assert found, f"no {name} event among {self.names()}"
        return found[-1]

    async def wait_event(self, name: str, count: int = 1) -> CallEvent:
        while sum(1 for e in self.events if e.name == name) < count:
            await trio.sleep(0.005)
        return [e for e in self.events if e.name == name][count - 1]


@contextlib.asynccontextmanager
async def running_hotline(*, dids: dict | None = None, config: CallManagerConfig | None = None,
                          handlers: dict | None = None, authenticator=None, router=None,
                          endpoint_config: EndpointConfig | None = None, tcp: bool = False,
                          engine_threads: int = 1, engine_ports: tuple[int, int] | None = None,
                          tls: TlsConfig | None = None, load_guards: bool = False) -> AsyncIterator[Hotline]:
    """Engine + endpoint + CallManager on 127.0.0.1. The load guards (refusing calls while the
    event loop or the UDP socket runs late) are off unless asked for: on a busy shared test
    machine a descheduled test process would trip them."""
    config = config or CallManagerConfig(ring_timeout=10)
    if not load_guards:
        config = dataclasses.replace(config, max_loop_lag=None, max_queue_delay=None)
    lo, hi = engine_ports or engine_port_range()
    engine = Engine(port_range=(lo, hi), threads=engine_threads, stats_interval=0)
    transports = [UdpTransport("127.0.0.1", 0)]
    if tcp:
        transports.append(StreamTransport("127.0.0.1", 0))
    if tls is not None:
        transports.append(StreamTransport("127.0.0.1", 0, tls=tls))
    endpoint_config = endpoint_config or EndpointConfig(rate_limit=None, timers=TimerConfig(t1=0.1, t2=0.4))
    if not load_guards:
        endpoint_config = dataclasses.replace(endpoint_config, shed_queue_delay=None)
    endpoint = SipEndpoint(transports, config=endpoint_config)
    locator = InMemoryLocator()
    events: list[CallEvent] = []
    manager = CallManager(
        endpoint, engine, router=router or DialPlan(dids=dids or {}), locator=locator,
        authenticator=authenticator or OpenAuthenticator(), handlers=handlers,
        events=CallbackSink(events.append), config=config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(endpoint.run)
            await nursery.start(manager.run)
            yield Hotline(engine, endpoint, manager, locator, events, endpoint.local_address("UDP"), (lo, hi))
            nursery.cancel_scope.cancel()
    finally:
        engine.close()


@contextlib.asynccontextmanager
async def phones(hotline: Hotline, *names: str, **options) -> AsyncIterator[list[Phone]]:
    made = [Phone(n, **options) for n in names]
    try:
        async with trio.open_nursery() as nursery:
            for p in made:
                await nursery.start(p.endpoint.run)
                p.hotline = hotline.address if p.transport_name == "UDP" else \
                    hotline.endpoint.local_address(p.transport_name)
            yield made
            nursery.cancel_scope.cancel()
    finally:
        for p in made:
            p.close()


async def wait_packets(peer: RtpPeer, count: int, *, payload_type: int | None = None) -> list:
    """Wait (bounded by the caller's fail_after) until ``peer`` got ``count`` RTP packets."""
    while True:
        pkts = [p for p in peer.packets() if payload_type is None or p.payload_type == payload_type]
        if len(pkts) >= count:
            return pkts
        await trio.sleep(0.01)


async def send_rtp(peer: RtpPeer, to: tuple[str, int], count: int, *, payload: bytes = b"\xff" * 160,
                   pace: float = 0.02, payload_type: int | None = None) -> None:
    for _ in range(count):
        peer.send(peer.packet(payload, payload_type=payload_type), to)
        await trio.sleep(pace)
