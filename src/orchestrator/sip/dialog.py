"""Dialogs: RFC 3261 section 12 (creation 12.1, requests within 12.2,
termination 12.3), with the ACK for a 2xx of section 13.2.2.4.

A :class:`Dialog` holds the state both UAs keep: Call-ID, local and remote
tags, local and remote URIs, CSeq numbers, the remote target and the route
set. It builds in-dialog requests (loose and strict routing, 12.2.1.1) and
checks incoming ones (12.2.2). Like the rest of the package it does no I/O:
the caller adds a Via and hands the request to the transaction layer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import LocalProtocolError, SipParseError
from .fields import CSeq, NameAddr, Via
from .headers import Headers
from .message import Request, Response
from .uri import SipUri, Uri

__all__ = ["Dialog", "DialogId", "DialogState"]

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class DialogId:
    call_id: str
    local_tag: str
    remote_tag: str


class Dialog:
    """State of one dialog, from the point of view of this UA."""

    def __init__(self, *, call_id: str, local_tag: str, remote_tag: str, local_uri: NameAddr,
                 remote_uri: NameAddr, local_seq: int | None, remote_seq: int | None, remote_target: Uri,
                 route_set: list[NameAddr], secure: bool, state: DialogState) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.remote_target = remote_target
        self.route_set = route_set
        self.secure = secure
        self.state = state

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    def __repr__(self) -> str:
        return f"<Dialog {self.state.value} {self.call_id} {self.local_tag}/{self.remote_tag}>"

    # -- creation (12.1) -------------------------------------------------------------------
    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The UAC side, from a 1xx (with a To tag) or 2xx to ``request`` (12.1.2)."""
        code = response.status_code
        if not 100 < code < 300:
            raise LocalProtocolError("response: only a 101-299 response creates a dialog")
        remote_tag = response.to.tag
        local_tag = request.from_.tag
        if not remote_tag or not local_tag:
            raise SipParseError("a dialog needs both a From tag and a To tag")
        contacts = response.contact
        if len(contacts) != 1 and code >= 200:
            raise SipParseError("a dialog-creating 2xx needs exactly one Contact")
        target = contacts[0].uri if contacts else request.uri
        return cls(
            call_id=request.call_id, local_tag=local_tag, remote_tag=remote_tag,
            local_uri=request.from_, remote_uri=response.to,
            local_seq=request.cseq.seq, remote_seq=None, remote_target=target,
            route_set=list(reversed(response.record_route)),
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            state=DialogState.CONFIRMED if code >= 200 else DialogState.EARLY)

    @classmethod
    def from_uas(cls, request: Request, response: Response) -> Dialog:
        """The UAS side, from ``request`` and the 1xx/2xx (with a To tag) it sends (12.1.1)."""
        code = response.status_code
        if not 100 < code < 300:
            raise LocalProtocolError("response: only a 101-299 response creates a dialog")
        local_tag = response.to.tag
        if not local_tag:
            raise LocalProtocolError("response: needs a To tag to create a dialog")
        contacts = request.contact
        if len(contacts) != 1:
            raise SipParseError("a dialog-creating request needs exactly one Contact")
        return cls(
            call_id=request.call_id, local_tag=local_tag, remote_tag=request.from_.tag or "",
            local_uri=response.to, remote_uri=request.from_,
            local_seq=None, remote_seq=request.cseq.seq, remote_target=contacts[0].uri,
            route_set=list(request.record_route),
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            state=DialogState.CONFIRMED if code >= 200 else DialogState.EARLY)

    # -- requests within the dialog (12.2.1) -----------------------------------------------
    def create_request(self, method: str, *, via: Via, contact: NameAddr | None = None,
                       headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                       content_type: str | None = None, max_forwards: int = 70) -> tuple[Request, Uri]:
        """A request within the dialog, and the URI of its next hop.

        Loose routing (the first route has ``lr``) keeps the remote target as
        Request-URI; strict routing puts the first route there and the remote
        target at the end of the Route set (12.2.1.1). ``CSeq`` is the next
        local number (ACK and CANCEL reuse their INVITE's: see :meth:`create_ack`).
        """
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError("the dialog is terminated")
        if method in ("ACK", "CANCEL"):
            raise LocalProtocolError(f"{method}: use create_ack (ACK) or make_cancel (CANCEL)")
        self.local_seq = (self.local_seq if self.local_seq is not None else 0) + 1
        return self._build(method, self.local_seq, via, contact, headers, body, content_type, max_forwards)

    def create_ack(self, invite: Request, *, via: Via, body: bytes = b"",
                   content_type: str | None = None) -> tuple[Request, Uri]:
        """The ACK for a 2xx to ``invite`` (13.2.2.4): same CSeq number, method ACK, new branch."""
        return self._build("ACK", invite.cseq.seq, via, None, None, body, content_type, 70)

    def _build(self, method: str, seq: int, via: Via, contact: NameAddr | None,
               extra: list[tuple[str, str]] | None, body: bytes, content_type: str | None,
               max_forwards: int) -> tuple[Request, Uri]:
        routes = list(self.route_set)
        if routes and not (isinstance(routes[0].uri, SipUri) and routes[0].uri.lr):
            first = routes[0].uri
            # 12.2.1.1: strip what a Request-URI may not carry (19.1.1: headers, method).
            ruri: Uri = first
            if isinstance(first, SipUri):
                ruri = first.without_headers().without_params("method")
            routes = routes[1:] + [NameAddr(self.remote_target)]
            next_hop: Uri = ruri
        else:
            ruri = self.remote_target
            next_hop = routes[0].uri if routes else ruri
        h = Headers()
        h.add("Via", str(via))
        h.add("Max-Forwards", str(max_forwards))
        for route in routes:
            h.add("Route", str(route))
        h.add("From", str(self.local_uri))
        h.add("To", str(self.remote_uri))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", str(CSeq(seq, method)))
        if contact is not None:
            h.add("Contact", str(contact))
        for name, value in extra or ():
            h.add(name, value)
        if body or content_type:
            if not content_type:
                raise LocalProtocolError("content_type: needed with a body")
            h.add("Content-Type", content_type)
        h.add("Content-Length", str(len(body)))
        return Request(method, ruri, h, body), next_hop

    # -- incoming (12.2.2) -----------------------------------------------------------------
    def matches(self, message: Request | Response) -> bool:
        """Whether ``message`` belongs to this dialog (Call-ID and tags)."""
        try:
            if isinstance(message, Request):
                return (message.call_id == self.call_id and message.to.tag == self.local_tag
                        and (message.from_.tag or "") == self.remote_tag)
            return (message.call_id == self.call_id and message.from_.tag == self.local_tag
                    and message.to.tag == self.remote_tag)
        except SipParseError:
            return False

    def receive_request(self, request: Request) -> int | None:
        """Apply an in-dialog request (12.2.2). Returns a status to answer with instead
        (500 for a CSeq lower than the last one), or ``None`` when it may be processed."""
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq <= self.remote_seq:
                return 500
            self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS and request.method != "ACK":
            contacts = request.contact
            if len(contacts) == 1:
                self.remote_target = contacts[0].uri
        if request.method == "BYE":
            self.state = DialogState.TERMINATED
        return None

    def receive_response(self, request: Request, response: Response) -> None:
        """Apply a response to a request this UA sent in the dialog (12.1.2, 12.2.1.2)."""
        code = response.status_code
        if self.state is DialogState.EARLY and 200 <= code < 300 and request.method == "INVITE":
            self.state = DialogState.CONFIRMED
            self.route_set = list(reversed(response.record_route))  # the 2xx's route set wins
        if 200 <= code < 300 and request.method in TARGET_REFRESH_METHODS:
            contacts = response.contact
            if len(contacts) == 1:
                self.remote_target = contacts[0].uri
        if code in (481, 408) or (request.method == "BYE" and code >= 200):
            self.state = DialogState.TERMINATED
        elif self.state is DialogState.EARLY and code >= 300 and request.method == "INVITE":
            self.state = DialogState.TERMINATED
