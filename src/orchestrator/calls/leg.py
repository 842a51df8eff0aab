"""One SIP leg of a call: a dialog with one party, and that party's engine leg.

A :class:`SipLeg` is either the UAS side of an INVITE someone sent us
(``role="uas"``) or the UAC side of one we sent (``role="uac"``). It knows
the SIP rules of its own dialog (RFC 3261 12-15): the responses it may send,
the ACK for a 2xx (13.2.2.4), CANCEL (9.1) versus BYE (15.1), in-dialog
requests with the route set, CSeq ordering (12.2.2: an out-of-order request
gets 500), target refresh. What the *call* does with the leg's events
(bridging, hold, transfer) is decided by :class:`~orchestrator.calls.Call`.
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from orchestrator.sip import (
    Address,
    Dialog,
    DialogState,
    Headers,
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    authorization_for,
    parse_name_addr,
)
from orchestrator.sip.digest import parse_challenges
from orchestrator.transport import ClientTransaction, IncomingRequest, TransportUnavailable

from .media import MediaSession

if TYPE_CHECKING:
    from .call import Call
    from .manager import CallManager
    from .routing import Trunk

__all__ = ["SipLeg", "LegState", "Destination"]

log = logging.getLogger("hotline.calls")
_leg_ids = itertools.count(1)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE"
SUPPORTED = "replaces, norefersub"


class LegState(enum.Enum):
    INIT = "init"  # uas: INVITE received, nothing but 100 sent; uac: not sent yet
    CALLING = "calling"  # uac: INVITE sent
    EARLY = "early"  # a 1xx with a To tag went out / came in
    CONFIRMED = "confirmed"  # 2xx sent / received
    TERMINATED = "terminated"


class Destination:
    """Where an outbound leg goes: Request-URI, Route set, next-hop address."""

    __slots__ = ("uri", "address", "route", "trunk", "label")

    def __init__(self, uri: SipUri, *, address: Address | None = None, route: Iterable[str] = (),
                 trunk: Trunk | None = None, label: str = "") -> None:
        self.uri = uri
        self.address = address
        self.route = tuple(route)
        self.trunk = trunk
        self.label = label or str(uri)

    def __repr__(self) -> str:
        return f"<Destination {self.uri} via {self.address}>"


class SipLeg:
    """A dialog with one party plus its media (see the module docstring)."""

    def __init__(self, manager: CallManager, call: Call, role: str, media: MediaSession) -> None:
        self.id = next(_leg_ids)
        self.manager = manager
        self.endpoint = manager.endpoint
        self._call = weakref.ref(call)
        self.role = role
        self.media = media
        media.owner = self
        self.state = LegState.INIT
        self.dialog: Dialog | None = None
        self.local_tag = self.endpoint.new_tag()
        self.sip_call_id = ""
        self.peer = ""  # the far end's URI, for records
        self.peer_display: str | None = None
        self.final_code: int | None = None
        self.answered_at: float | None = None
        self.transport = "UDP"
        self.flow: Address | None = None  # send in-dialog requests here (the connection, for TCP/TLS)
        self.remote_hold = False
        # UAS side
        self.incoming: IncomingRequest | None = None
        self.answer_body: bytes | None = None
        self.early_media = False
        self.acked = False
        # UAC side
        self.invite: Request | None = None
        self.tx: ClientTransaction | None = None
        self.ack: Request | None = None
        self.ack_destination: Address | None = None
        self.destination: Destination | None = None
        self.early_answer_applied = False
        self._auth_attempts = 0

    def __repr__(self) -> str:
        return f"<SipLeg {self.id} {self.role} {self.state.value} {self.peer}>"

    # The call holds its legs; a leg refers back to its call weakly, so a finished call and
    # its legs are freed by reference counting instead of waiting for the cycle collector.
    @property
    def call(self) -> Call:
        call = self._call()
        if call is None:
            raise RuntimeError(f"leg {self.id} outlived its call")
        return call

    @call.setter
    def call(self, value: Call) -> None:
        self._call = weakref.ref(value)

    @property
    def ended(self) -> bool:
        return self.state is LegState.TERMINATED

    @property
    def answered(self) -> bool:
        return self.state is LegState.CONFIRMED or (self.state is LegState.TERMINATED and
                                                    self.answered_at is not None)

    # ======================================================================= UAS side
    def bind_incoming(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        self.incoming = incoming
        self.sip_call_id = request.call_id
        self.transport = incoming.source.transport
        self.flow = incoming.source
        self.peer = str(request.from_.uri)
        self.peer_display = request.from_.display_name
        self.manager._register_dialog(self, request.call_id, self.local_tag)

    def _uas_headers(self, extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        return [("Contact", str(self.endpoint.contact(self.transport))), ("Allow", ALLOW),
                ("Supported", SUPPORTED), *extra]

    def _uas_dialog(self, response: Response) -> None:
        if self.dialog is None and self.incoming is not None:
            self.dialog = Dialog.from_uas(self.incoming.request, response)

    def ring(self, *, early_media: bool = False) -> None:
        """180 Ringing, or 183 Session Progress with our SDP answer (early media)."""
        if self.incoming is None or self.state not in (LegState.INIT, LegState.EARLY):
            return
        if early_media and self.answer_body is not None:
            if self.early_media:
                return
            response = self.incoming.respond(183, to_tag=self.local_tag, headers=self._uas_headers(),
                                             body=self.answer_body, content_type="application/sdp")
            self.early_media = response is not None
        elif self.state is LegState.INIT or not self.early_media:
            response = self.incoming.respond(180, to_tag=self.local_tag, headers=self._uas_headers())
        else:
            return
        if response is not None:
            self._uas_dialog(response)
            self.state = LegState.EARLY

    def accept(self) -> bool:
        """200 OK with our SDP answer. Returns False if the INVITE can no longer be answered."""
        if self.incoming is None or self.state not in (LegState.INIT, LegState.EARLY):
            return False
        body = self.answer_body or b""
        response = self.incoming.respond(200, to_tag=self.local_tag, headers=self._uas_headers(),
                                         body=body, content_type="application/sdp" if body else None)
        if response is None:
            return False
        self._uas_dialog(response)
        assert self.dialog is not None
        self.dialog.state = DialogState.CONFIRMED
        self.state = LegState.CONFIRMED
        self.final_code = 200
        self.answered_at = time.time()
        return True

    def reject(self, status: int, reason: str | None = None,
               headers: Iterable[tuple[str, str]] = ()) -> None:
        """A final error response to the INVITE (no effect once answered)."""
        if self.incoming is None or self.state not in (LegState.INIT, LegState.EARLY):
            return
        self.incoming.respond(status, reason, to_tag=self.local_tag, headers=list(headers))
        self.final_code = status
        self._terminated()

    def on_ack(self, ack: Request) -> None:
        self.acked = True
        if ack.body and self.media.last_offer is not None:  # offer in our 2xx, answer in the ACK
            try:
                self.media.accept_answer(ack.body)
            except SipParseError as exc:
                log.info("leg %s: bad SDP answer in ACK (%s): ending", self.id, exc.reason)
                self.call._leg_gone(self, "media_error", None)

    # ======================================================================= UAC side
    def build_invite(self, destination: Destination, *, from_user: str, from_display: str | None,
                     to: NameAddr, body: bytes, transport: str,
                     extra_headers: Iterable[tuple[str, str]] = ()) -> Request:
        endpoint = self.endpoint
        self.destination = destination
        self.transport = transport
        self.sip_call_id = endpoint.new_call_id()
        domain = self.manager.config.domain
        from_ = NameAddr(SipUri(domain, user=from_user), from_display, (("tag", self.local_tag),))
        h = Headers()
        h.add("Max-Forwards", "70")
        for route in destination.route:
            h.add("Route", route)
        h.add("From", str(from_))
        h.add("To", str(to))
        h.add("Call-ID", self.sip_call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", str(endpoint.contact(transport)))
        h.add("Allow", ALLOW)
        h.add("Supported", SUPPORTED)
        h.add("User-Agent", self.manager.config.user_agent)
        for name, value in extra_headers:
            h.add(name, value)
        h.add("Content-Type", "application/sdp")
        self.invite = Request("INVITE", destination.uri, h, body)
        self.peer = str(destination.uri)
        self.manager._register_dialog(self, self.sip_call_id, self.local_tag)
        return self.invite

    def send_invite(self, address: Address) -> ClientTransaction:
        assert self.invite is not None
        self.flow = address
        self.state = LegState.CALLING
        self.tx = self.endpoint.send_request(self.invite, address, on_response=self._late_response)
        return self.tx

    def retry_with_credentials(self, response: Response) -> ClientTransaction | None:
        """Answer a 401/407 from a trunk with its credentials (one attempt)."""
        trunk = self.destination.trunk if self.destination else None
        if (trunk is None or trunk.username is None or self.invite is None or self._auth_attempts >= 1
                or self.flow is None):
            return None
        try:
            found = response.proxy_authenticate if response.status_code == 407 else response.www_authenticate
        except SipParseError:
            return None
        challenges = parse_challenges(found)
        if not challenges:
            return None
        self._auth_attempts += 1
        invite = self.invite.copy()
        invite.headers.remove("Via")
        seq = invite.cseq.seq + 1
        invite.headers.set("CSeq", f"{seq} INVITE")
        credentials = authorization_for(challenges[0], method="INVITE", uri=str(invite.uri),
                                        username=trunk.username, password=trunk.password,
                                        cnonce=self.endpoint.random_token(64))
        name = "Proxy-Authorization" if response.status_code == 407 else "Authorization"
        invite.headers.add(name, str(credentials))
        self.invite = invite
        return self.send_invite(self.flow)

    def on_provisional(self, response: Response) -> None:
        # An early dialog (12.1.2) is only noted: nothing is ever sent within it (a ringing
        # branch is CANCELled, not BYEd), so the Dialog is built from the 2xx alone.
        if self.state is LegState.CALLING and response.to.tag:
            self.state = LegState.EARLY

    def on_2xx(self, response: Response) -> bool:
        """Confirm the dialog and ACK. False if the 2xx cannot make a dialog (then BYE is impossible)."""
        assert self.invite is not None
        try:
            dialog = Dialog.from_uac(self.invite, response)
        except SipParseError as exc:
            log.info("leg %s: unusable 2xx (%s)", self.id, exc.reason)
            return False
        if self.dialog is None or self.dialog.remote_tag != dialog.remote_tag:
            self.dialog = dialog
        else:
            self.dialog.receive_response(self.invite, response)
        self.state = LegState.CONFIRMED
        self.final_code = response.status_code
        self.answered_at = time.time()
        self.manager._register_dialog(self, self.sip_call_id, self.local_tag)
        self._send_ack()
        return True

    def _send_ack(self) -> None:
        assert self.dialog is not None and self.invite is not None
        try:
            address = self._next_hop_address()
        except TransportUnavailable:
            return
        ack, _ = self.dialog.create_ack(self.invite, via=self.endpoint.via(address.transport))
        self.ack, self.ack_destination = ack, address
        self.endpoint.send_stateless(ack, address)

    def _late_response(self, response: Response) -> None:
        """2xx retransmissions after the first: send the same ACK again (13.2.2.4)."""
        if (200 <= response.status_code < 300 and self.ack is not None and self.ack_destination is not None
                and self.final_code is not None and self.tx is not None and self.tx.final is not response):
            self.endpoint.send_stateless(self.ack, self.ack_destination)

    def on_failure(self, response: Response) -> None:
        self.final_code = response.status_code
        self._terminated()

    def cancel(self) -> None:
        if self.tx is not None and self.state in (LegState.CALLING, LegState.EARLY):
            self.tx.cancel()

    # ======================================================================= both sides
    def _next_hop_address(self) -> Address:
        assert self.dialog is not None
        if self.flow is not None and self.flow.reliable:
            return self.flow  # the same connection (RFC 5626 flow / 18.2.2 reuse)
        target = self.dialog.route_set[0].uri if self.dialog.route_set else self.dialog.remote_target
        found = self.endpoint.destination_nowait(target) if isinstance(target, SipUri) else None
        if found is not None:
            return found
        if self.flow is not None:
            return self.flow
        raise TransportUnavailable(f"no route to {target}")

    def send_in_dialog(self, method: str, *, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                       content_type: str | None = None) -> ClientTransaction | None:
        """Send a request within the dialog (BYE, NOTIFY, re-INVITE, INFO...)."""
        if self.dialog is None or self.dialog.state is DialogState.TERMINATED and method != "BYE":
            return None
        try:
            address = self._next_hop_address()
            request, _ = self.dialog.create_request(
                method, via=self.endpoint.via(address.transport),
                contact=self.endpoint.contact(address.transport),
                headers=[("User-Agent", self.manager.config.user_agent), *headers], body=body,
                content_type=content_type)
            return self.endpoint.send_request(request, address)
        except (TransportUnavailable, SipParseError) as exc:
            log.info("leg %s: cannot send %s: %s", self.id, method, exc)
            return None

    def hangup(self, status: int = 487) -> None:
        """End this leg the way its state allows: BYE, CANCEL or a final error response."""
        if self.state is LegState.TERMINATED:
            return
        if self.state is LegState.CONFIRMED:
            self.send_in_dialog("BYE")
        elif self.role == "uas":
            self.reject(status)
        else:
            self.cancel()
        self._terminated()

    def _terminated(self) -> None:
        if self.state is not LegState.TERMINATED:
            self.state = LegState.TERMINATED
            if self.dialog is not None:
                self.dialog.state = DialogState.TERMINATED
            if self.tx is not None:
                self.tx.on_response = None  # no more ACKs to repeat; and no leg <-> transaction cycle

    def receive_in_dialog(self, incoming: IncomingRequest) -> None:
        """A request within this leg's dialog (not ACK, not CANCEL)."""
        request = incoming.request
        if self.dialog is None or self.state is LegState.TERMINATED:
            incoming.respond(481)
            return
        refused = self.dialog.receive_request(request)
        if refused is not None:
            incoming.respond(refused, headers=[("Retry-After", "1")] if refused == 500 else [])
            return
        method = request.method
        if method == "BYE":
            incoming.respond(200)
            self._terminated()
            self.call._leg_gone(self, "normal_clearing", None)
        elif method in ("INVITE", "UPDATE"):
            self._receive_offer(incoming)
        elif method == "INFO":
            self.call._on_info(self, incoming)
        elif method == "REFER":
            self.call._on_refer(self, incoming)
        elif method == "NOTIFY":
            incoming.respond(200)
        else:
            incoming.respond(405, headers=[("Allow", ALLOW)])

    def _receive_offer(self, incoming: IncomingRequest) -> None:
        """re-INVITE or UPDATE: answer from our engine leg and tell the call about hold changes."""
        request = incoming.request
        headers = self._uas_headers() if request.method == "INVITE" else []
        if not request.body:
            if request.method == "UPDATE":
                incoming.respond(200)
                return
            body = self.media.offer(prefer=self.media.codec)  # offer in the 2xx, answer in the ACK
            incoming.respond(200, headers=headers, body=body, content_type="application/sdp")
            return
        was_held = self.remote_hold
        try:
            body = self.media.answer(request.body, prefer=self.media.codec)
        except SipParseError as exc:
            warning = ("Warning", f'399 hotline "{exc.reason[:100]}"')
            incoming.respond(488 if exc.status_hint == 488 else 400, headers=[warning])
            return
        incoming.respond(200, headers=headers, body=body, content_type="application/sdp")
        self.remote_hold = self.media.remote_hold
        if self.remote_hold != was_held:
            self.call._on_remote_hold(self, self.remote_hold)

    async def wait_final(self) -> Response | None:
        if self.tx is None:
            return None
        return await self.tx.final_response()


def parse_refer_to(value: str) -> tuple[SipUri, str | None]:
    """The Refer-To URI and the Replaces header value embedded in it, if any (RFC 3515, 3891)."""
    target = parse_name_addr(value, "Refer-To").uri
    if not isinstance(target, SipUri):
        raise SipParseError("Refer-To must be a sip: or sips: URI")
    replaces = None
    for name, header_value in target.headers:
        if name.lower() == "replaces":
            replaces = header_value
    return target.without_headers(), replaces
