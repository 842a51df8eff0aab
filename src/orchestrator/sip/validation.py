"""What a UAS (or proxy) answers to a request it cannot or will not process,
before any application logic runs: RFC 3261 section 8.2 (UAS behaviour: 8.2.1
method, 8.2.2 header, 8.2.2.3 Require, 8.2.3 content), 16.3 (proxy checks:
Max-Forwards, Proxy-Require), 8.1.3.3 (responses a UAC discards), and the
behaviours RFC 4475 prescribes for its torture messages.

Everything here is a pure function of a message and a :class:`RequestPolicy`.
:func:`validate_request` returns ``None`` (go ahead) or a :class:`Rejection`
whose :meth:`~Rejection.response` is the response to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._grammar import quote
from .errors import SipParseError
from .fields import MediaType, parse_cseq, parse_via
from .headers import SINGLETON_HEADERS, Headers
from .message import SIP_VERSION, Request, Response, _LINE_SPLIT, _parse_fields, make_response
from .uri import SipUri

__all__ = ["KNOWN_METHODS", "RequestPolicy", "Rejection", "validate_request", "validate_response",
           "stateless_error_response"]

# Methods defined by RFC 3261 and its common extensions (3262, 3265/6665, 3903, 2976/6086, 3515, 3428, 3311).
KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
})
_BODY_METHODS = frozenset({"INVITE", "ACK", "PRACK", "UPDATE"})  # bodies we interpret as session descriptions
_SDP = MediaType("application", "sdp")


@dataclass(frozen=True, kw_only=True)
class RequestPolicy:
    """What this element accepts. ``role="proxy"`` applies the proxy checks of RFC 3261 16.3
    (483 on Max-Forwards 0, Proxy-Require) instead of the UAS ones (Require)."""

    role: Literal["uas", "proxy"] = "uas"
    allowed_methods: frozenset[str] = frozenset({
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "REFER", "NOTIFY"})
    supported_extensions: frozenset[str] = frozenset({"replaces", "norefersub"})
    uri_schemes: frozenset[str] = frozenset({"sip", "sips"})
    content_types: frozenset[str] = frozenset({"application/sdp"})

    def __post_init__(self) -> None:
        if self.role not in ("uas", "proxy"):
            raise ValueError(f"role: must be 'uas' or 'proxy', not {self.role!r}")
        for name in ("allowed_methods", "supported_extensions", "uri_schemes", "content_types"):
            if isinstance(getattr(self, name), str):
                raise ValueError(f"{name}: must be a set of strings, not a string")
        object.__setattr__(self, "uri_schemes", frozenset(s.lower() for s in self.uri_schemes))
        object.__setattr__(self, "content_types", frozenset(s.lower() for s in self.content_types))

    def allow_header(self) -> str:
        return ", ".join(sorted(self.allowed_methods))


@dataclass(frozen=True)
class Rejection:
    """A request that must be answered with ``status_code`` (``detail`` says why)."""

    status_code: int
    detail: str
    headers: tuple[tuple[str, str], ...] = field(default=())

    def response(self, request: Request, *, to_tag: str | None = None) -> Response:
        """The response (RFC 3261 8.2.6), with a Warning 399 carrying ``detail``."""
        extra = [*self.headers, ("Warning", f"399 hotline {quote(_printable(self.detail))}")]
        return make_response(request, self.status_code, to_tag=to_tag, headers=extra)


def _printable(text: str) -> str:
    return "".join(c if " " <= c < "\x7f" else "?" for c in text)[:200]


def _structure(request: Request) -> Rejection | None:
    """Mandatory fields present, single where they must be, and well formed (8.1.1, 20)."""
    headers = request.headers
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if not headers.get_all(name):
            return Rejection(400, f"Missing {name} header")
    for name, _ in headers:
        if name.lower() in SINGLETON_HEADERS and len(headers.get_all(name)) > 1:
            return Rejection(400, f"More than one {name} header")
    try:
        request.via
        request.from_
        request.to
        request.call_id
        request.cseq
        request.max_forwards
        request.content_type
        request.contact
        request.route
        request.record_route
        request.require
        request.proxy_require
        request.accept
        if request.method in ("REGISTER", "SUBSCRIBE"):
            request.expires
    except SipParseError as exc:
        return Rejection(400, exc.reason)
    return None


def validate_request(request: Request, policy: RequestPolicy = RequestPolicy()) -> Rejection | None:
    """Check ``request`` as a UAS (or proxy) must before processing it.

    Returns ``None`` when the request may be processed, else the
    :class:`Rejection` to answer with. An ACK can never be answered: a
    rejection for an ACK means "discard it".
    """
    if request.version != SIP_VERSION:
        return Rejection(505, f"{request.version} is not supported")
    bad = _structure(request)
    if bad:
        return bad
    method = request.method
    allow = (("Allow", policy.allow_header()),)
    if method not in KNOWN_METHODS and method not in policy.allowed_methods:
        return Rejection(501, f"Unknown method {method[:40]}", allow)
    if request.cseq.method != method:
        return Rejection(400, "CSeq method does not match the Request-Line")
    if method not in policy.allowed_methods:
        return Rejection(405, f"{method} is not allowed here", allow)
    scheme = request.uri.scheme.lower()
    if scheme not in policy.uri_schemes:
        return Rejection(416, f"Unsupported URI scheme {scheme[:40]}")
    if isinstance(request.uri, SipUri) and request.uri.headers:
        return Rejection(400, "Request-URI must not contain headers (RFC 3261 19.1.1)")
    if policy.role == "proxy":
        if request.max_forwards == 0:
            return Rejection(483, "Max-Forwards is zero")
        unknown = [t for t in request.proxy_require if t.lower() not in policy.supported_extensions]
    elif method in ("ACK", "CANCEL"):
        unknown = []  # RFC 3261 8.2.2.3: Require is not processed for ACK or CANCEL
    else:
        unknown = [t for t in request.require if t.lower() not in policy.supported_extensions]
    if unknown:
        return Rejection(420, "Unsupported extension", (("Unsupported", ", ".join(unknown)),))
    if policy.role == "uas":
        bad = _content(request, policy)
        if bad:
            return bad
        if method == "REGISTER" and not isinstance(request.to.uri, SipUri):
            return Rejection(400, "REGISTER To must be a SIP or SIPS URI (RFC 3261 10.3)")
    return None


def _content(request: Request, policy: RequestPolicy) -> Rejection | None:
    accept = (("Accept", ", ".join(sorted(policy.content_types))),)
    ctype = request.content_type
    if request.body or ctype is not None:
        if ctype is None:
            return Rejection(400, "Body without Content-Type")
        if ctype.mime not in policy.content_types:
            return Rejection(415, f"Unsupported body type {ctype.mime[:60]}", accept)
        encodings = [v for v in request.headers.values("Content-Encoding") if v.lower() != "identity"]
        if encodings:
            return Rejection(415, "Unsupported Content-Encoding", (("Accept-Encoding", "identity"),))
    if request.method in _BODY_METHODS and request.headers.get_all("Accept"):
        ranges = request.accept
        if not any(r.matches(_SDP) for r in ranges):
            return Rejection(406, "Accept does not allow application/sdp", accept)
    return None


def validate_response(response: Response, *, as_uac: bool = True) -> str | None:
    """Why ``response`` must be discarded, or ``None`` if it may be processed.

    RFC 3261 8.1.3.3 (a UAC discards a response with more than one Via) and
    the mandatory fields; malformed responses are never answered.
    """
    if response.version != SIP_VERSION:
        return f"{response.version} is not supported"
    try:
        vias = response.via
        if not vias:
            return "Missing Via header"
        for name in ("From", "To", "Call-ID", "CSeq"):
            if len(response.headers.get_all(name)) != 1:
                return f"Missing or repeated {name} header"
        response.from_
        response.to
        response.call_id
        response.cseq
    except SipParseError as exc:
        return exc.reason
    if as_uac and len(vias) > 1:
        return "More than one Via in a response to a UAC (RFC 3261 8.1.3.3)"
    return None


def stateless_error_response(data: bytes, error: SipParseError) -> Response | None:
    """Best-effort response to a request that could not be parsed at all.

    RFC 4475 asks for a 400 to most malformed requests; this salvages the
    header fields a response needs (Via, From, To, Call-ID, CSeq) from the raw
    octets, ignoring the damaged parts. Returns ``None`` when the octets are a
    response, the error says to drop, or no usable Via/CSeq can be found.
    """
    if error.status_hint is None:
        return None
    try:
        raw = bytes(data).lstrip(b"\r\n")
        if raw[:4].upper() == b"SIP/":
            return None
        end = raw.find(b"\r\n\r\n")
        head = (raw if end < 0 else raw[:end]).decode("utf-8", "surrogateescape")
        lines = _LINE_SPLIT.split(head)
        keep = [lines[0]]
        for line in lines[1:]:  # drop lines the strict parser rejects, keep folding
            if line and (line[0] in " \t" or ":" in line):
                keep.append(line)
        fields = _parse_fields(keep)
        headers = Headers()
        vias = [v for n, v in fields if n == "Via"]
        cseqs = [v for n, v in fields if n == "CSeq"]
        if not vias or len(cseqs) != 1:
            return None
        parse_via(vias[0].split(",")[0])
        parse_cseq(cseqs[0])
        for name, value in fields:  # copied verbatim, as RFC 3261 8.2.6.2 asks
            if name in ("Via", "From", "To", "Call-ID", "CSeq"):
                headers.add(name, value)
        headers.add("Warning", f"399 hotline {quote(_printable(error.reason))}")
        return Response(error.status_hint, None, headers)
    except (SipParseError, ValueError):
        return None

