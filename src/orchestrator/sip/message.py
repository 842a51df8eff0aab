"""SIP requests and responses: RFC 3261 section 7 (message format), with the
response construction rules of section 8.2.6 and the ACK/CANCEL construction
of sections 17.1.1.3 and 9.1.

A :class:`Request` or :class:`Response` is a small mutable object: a start
line, a :class:`~orchestrator.sip.headers.Headers` and a ``bytes`` body.
Typed views (``msg.via``, ``msg.cseq``, ``msg.from_``...) are parsed on first
use, validated, and cached until the headers change; an invalid value raises
:class:`SipParseError` with a status hint, so an application decides per
header how strict to be (RFC 4475 asks for exactly that).

Framing (where the body ends) lives in :mod:`orchestrator.sip.framing`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from ._grammar import is_token
from .errors import LocalProtocolError, SipParseError
from .fields import (
    AuthHeader,
    CSeq,
    MediaType,
    NameAddr,
    Via,
    parse_auth_header,
    parse_call_id,
    parse_content_length,
    parse_cseq,
    parse_delta_seconds,
    parse_max_forwards,
    parse_media_type,
    parse_name_addr,
    parse_sip_date,
    parse_token_list,
    parse_via,
)
from .headers import Headers, canonical_name
from .uri import Uri, parse_uri

__all__ = [
    "Message", "Request", "Response", "SIP_VERSION", "REASON_PHRASES",
    "parse_head", "make_response", "make_ack", "make_cancel",
]

SIP_VERSION = "SIP/2.0"
T = TypeVar("T")

_REQUEST_LINE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+) ([^ \t]+) ([Ss][Ii][Pp]/[0-9]{1,3}\.[0-9]{1,3})")
_STATUS_LINE = re.compile(
    r"([Ss][Ii][Pp]/[0-9]{1,3}\.[0-9]{1,3}) ([1-6][0-9][0-9])(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")
_VERSION_RE = re.compile(r"SIP/[0-9]{1,3}\.[0-9]{1,3}")
_LINE_SPLIT = re.compile(r"\r?\n")

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    199: "Early Dialog Terminated", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 494: "Security Agreement Required", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
    607: "Unwanted",
}


class Message:
    """Common part of requests and responses: headers, body, typed views."""

    __slots__ = ("headers", "body", "version", "_cache", "_cache_version")

    def __init__(self, headers: Headers | Iterable[tuple[str, str]] = (), body: bytes = b"",
                 version: str = SIP_VERSION) -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise LocalProtocolError("body: must be bytes")
        self.body = bytes(body)
        if not _VERSION_RE.fullmatch(version):
            raise LocalProtocolError(f"version: {version!r} is not SIP/x.y")
        self.version = version
        self._cache: dict[str, Any] = {}
        self._cache_version = -1

    # -- typed views ---------------------------------------------------------
    def _typed(self, key: str, compute: Callable[[], T]) -> T:
        if self._cache_version != self.headers.version:
            self._cache.clear()
            self._cache_version = self.headers.version
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = compute()
            return value

    def _single(self, name: str) -> str:
        values = self.headers.get_all(name)
        if not values:
            raise SipParseError(f"missing {name} header")
        if len(values) > 1:
            raise SipParseError(f"more than one {name} header")
        return values[0]

    def _optional_single(self, name: str) -> str | None:
        values = self.headers.get_all(name)
        if len(values) > 1:
            raise SipParseError(f"more than one {name} header")
        return values[0] if values else None

    @property
    def via(self) -> list[Via]:
        """Every Via value, top first (RFC 3261 20.42)."""
        return self._typed("via", lambda: [parse_via(v) for v in self.headers.values("Via")])

    @property
    def top_via(self) -> Via:
        vias = self.via
        if not vias:
            raise SipParseError("missing Via header")
        return vias[0]

    @property
    def from_(self) -> NameAddr:
        """The From header (trailing underscore: ``from`` is a Python keyword)."""
        return self._typed("from", lambda: parse_name_addr(self._single("From"), "From"))

    @property
    def to(self) -> NameAddr:
        return self._typed("to", lambda: parse_name_addr(self._single("To"), "To"))

    @property
    def call_id(self) -> str:
        return self._typed("call_id", lambda: parse_call_id(self._single("Call-ID")))

    @property
    def cseq(self) -> CSeq:
        return self._typed("cseq", lambda: parse_cseq(self._single("CSeq")))

    @property
    def max_forwards(self) -> int | None:
        def compute() -> int | None:
            value = self._optional_single("Max-Forwards")
            return None if value is None else parse_max_forwards(value)
        return self._typed("max_forwards", compute)

    @property
    def content_length(self) -> int | None:
        """The Content-Length header as sent (framing already checked it against the body)."""
        def compute() -> int | None:
            value = self._optional_single("Content-Length")
            return None if value is None else parse_content_length(value)
        return self._typed("content_length", compute)

    @property
    def content_type(self) -> MediaType | None:
        def compute() -> MediaType | None:
            value = self._optional_single("Content-Type")
            return None if value is None else parse_media_type(value)
        return self._typed("content_type", compute)

    @property
    def expires(self) -> int | None:
        def compute() -> int | None:
            value = self._optional_single("Expires")
            return None if value is None else parse_delta_seconds(value)
        return self._typed("expires", compute)

    @property
    def contact_is_star(self) -> bool:
        """``Contact: *`` (REGISTER removing every binding, RFC 3261 10.2.2)."""
        return [v for v in self.headers.values("Contact")] == ["*"]

    @property
    def contact(self) -> list[NameAddr]:
        def compute() -> list[NameAddr]:
            values = self.headers.values("Contact")
            if values == ["*"]:
                return []
            return [parse_name_addr(v, "Contact") for v in values]
        return self._typed("contact", compute)

    @property
    def route(self) -> list[NameAddr]:
        return self._typed("route", lambda: [
            parse_name_addr(v, "Route") for v in self.headers.values("Route")])

    @property
    def record_route(self) -> list[NameAddr]:
        return self._typed("record_route", lambda: [
            parse_name_addr(v, "Record-Route") for v in self.headers.values("Record-Route")])

    def _tokens(self, name: str) -> tuple[str, ...]:
        return self._typed(name, lambda: parse_token_list([v for v in self.headers.values(name) if v], name))

    @property
    def require(self) -> tuple[str, ...]:
        return self._tokens("Require")

    @property
    def proxy_require(self) -> tuple[str, ...]:
        return self._tokens("Proxy-Require")

    @property
    def supported(self) -> tuple[str, ...]:
        return self._tokens("Supported")

    @property
    def unsupported(self) -> tuple[str, ...]:
        return self._tokens("Unsupported")

    @property
    def allow(self) -> tuple[str, ...]:
        return self._tokens("Allow")

    @property
    def accept(self) -> list[MediaType]:
        return self._typed("accept", lambda: [
            parse_media_type(v, "Accept") for v in self.headers.values("Accept") if v])

    def _auth(self, name: str) -> list[AuthHeader]:
        return self._typed(name, lambda: [parse_auth_header(v, name) for v in self.headers.get_all(name)])

    @property
    def authorization(self) -> list[AuthHeader]:
        return self._auth("Authorization")

    @property
    def proxy_authorization(self) -> list[AuthHeader]:
        return self._auth("Proxy-Authorization")

    @property
    def www_authenticate(self) -> list[AuthHeader]:
        return self._auth("WWW-Authenticate")

    @property
    def proxy_authenticate(self) -> list[AuthHeader]:
        return self._auth("Proxy-Authenticate")

    @property
    def date(self) -> datetime | None:
        def compute() -> datetime | None:
            value = self._optional_single("Date")
            return None if value is None else parse_sip_date(value)
        return self._typed("date", compute)

    # -- serialization -------------------------------------------------------
    def start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """The message as octets. Content-Length is made to match the body (added if absent)."""
        body = self.body
        lines = [self.start_line()]
        length_done = False
        for name, value in self.headers:
            if name == "Content-Length":
                if length_done:
                    continue
                length_done = True
                if not (value.isdigit() and value.isascii() and int(value) == len(body)):
                    value = str(len(body))
            lines.append(f"{name}: {value}")
        if not length_done:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body

    def __bytes__(self) -> bytes:
        return self.serialize()

    def _same_content(self, other: Message) -> bool:
        return self.version == other.version and self.headers == other.headers and self.body == other.body


class Request(Message):
    """A SIP request: ``method``, ``uri``, headers and body."""

    __slots__ = ("method", "uri")

    def __init__(self, method: str, uri: Uri | str, headers: Headers | Iterable[tuple[str, str]] = (),
                 body: bytes = b"", version: str = SIP_VERSION) -> None:
        if not isinstance(method, str) or not is_token(method):
            raise LocalProtocolError(f"method: {method!r} is not a token")
        if isinstance(uri, str):
            try:
                uri = parse_uri(uri)
            except SipParseError as exc:
                raise LocalProtocolError(f"uri: {exc.reason}") from None
        self.method = method
        self.uri = uri
        super().__init__(headers, body, version)

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return self.method == other.method and self.uri == other.uri and self._same_content(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        size = f"{len(self.headers)} headers, {len(self.body)} body octets"
        return f"<Request {self.method} {self.uri} ({size})>"

    def copy(self) -> Request:
        return Request(self.method, self.uri, self.headers.copy(), self.body, self.version)


class Response(Message):
    """A SIP response: ``status_code``, ``reason``, headers and body."""

    __slots__ = ("status_code", "reason")

    def __init__(self, status_code: int, reason: str | None = None,
                 headers: Headers | Iterable[tuple[str, str]] = (), body: bytes = b"",
                 version: str = SIP_VERSION) -> None:
        if not isinstance(status_code, int) or not 100 <= status_code <= 699:
            raise LocalProtocolError(f"status_code: must be 100..699, not {status_code!r}")
        if reason is None:
            reason = REASON_PHRASES.get(status_code, "")
        if "\r" in reason or "\n" in reason:
            raise LocalProtocolError("reason: contains CR or LF")
        self.status_code = status_code
        self.reason = reason
        super().__init__(headers, body, version)

    def start_line(self) -> str:
        return f"{self.version} {self.status_code} {self.reason}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (self.status_code == other.status_code and self.reason == other.reason
                and self._same_content(other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.status_code} {self.reason!r} ({len(self.headers)} headers)>"

    def copy(self) -> Response:
        return Response(self.status_code, self.reason, self.headers.copy(), self.body, self.version)


# ---------------------------------------------------------------------------
# Parsing the head (start line + header fields)
# ---------------------------------------------------------------------------
def parse_head(head: bytes | str) -> Request | Response:
    """Parse the start line and header fields; the body is left empty.

    ``head`` ends before the empty line. Raises :class:`SipParseError` only:
    400 for a malformed request, ``status_hint=None`` (drop) for a response.
    """
    text = head if isinstance(head, str) else bytes(head).decode("utf-8", "surrogateescape")
    lines = _LINE_SPLIT.split(text)
    start = lines[0]
    is_response = start[:4].upper() == "SIP/"
    try:
        fields = _parse_fields(lines)
        if is_response:
            m = _STATUS_LINE.fullmatch(start)
            if not m:
                raise SipParseError("malformed Status-Line")
            msg: Request | Response = Response.__new__(Response)
            msg.status_code = int(m.group(2))
            msg.reason = m.group(3) or ""
        else:
            m = _REQUEST_LINE.fullmatch(start)
            if not m:
                raise SipParseError(
                    "malformed Request-Line (RFC 3261 7.1: Method SP Request-URI SP SIP-Version)")
            msg = Request.__new__(Request)
            msg.method = m.group(1)
            msg.uri = parse_uri(m.group(2))
        msg.version = m.group(1 if is_response else 3).upper()
    except SipParseError as exc:
        if is_response:
            exc.status_hint = None  # never answer a response (RFC 3261 18.1.2)
        raise
    msg.headers = Headers._trusted(fields)
    msg.body = b""
    msg._cache = {}
    msg._cache_version = -1
    return msg


def _parse_fields(lines: list[str]) -> list[tuple[str, str]]:
    fields: list[list[str]] = []
    for line in lines[1:]:
        if not line:
            raise SipParseError("empty line inside the header section")
        if "\r" in line:
            raise SipParseError("bare CR in the header section")
        if line[0] in " \t":
            if not fields:
                raise SipParseError("continuation line before the first header field")
            fields[-1][1] += " " + line.strip(" \t")
            continue
        colon = line.find(":")
        if colon < 0:
            raise SipParseError("header line without ':'")
        name = line[:colon].rstrip(" \t")
        if not is_token(name):
            raise SipParseError(f"invalid header name {name[:40]!r}")
        fields.append([canonical_name(name), line[colon + 1:]])
    return [(name, value.strip(" \t")) for name, value in fields]


# ---------------------------------------------------------------------------
# Building messages from other messages
# ---------------------------------------------------------------------------
def make_response(request: Request, status_code: int, reason: str | None = None, *,
                  to_tag: str | None = None, headers: Iterable[tuple[str, str]] = (),
                  body: bytes = b"") -> Response:
    """A response to ``request`` per RFC 3261 8.2.6.2.

    Copies every Via (in order), From, Call-ID, CSeq and To (adding ``to_tag``
    unless the To already has one; a 100 never gets a tag), Timestamp for a
    100, and Record-Route for responses that can create a dialog (12.1.1).
    """
    if not isinstance(request, Request):
        raise LocalProtocolError("request: must be a Request")
    out = Headers()
    for name, value in request.headers:
        if name in ("Via", "From", "Call-ID", "CSeq"):
            out.add(name, value)
        elif name == "To":
            if to_tag and status_code != 100 and request.to.tag is None:
                value = str(request.to.with_tag(to_tag))
            out.add(name, value)
        elif name == "Timestamp" and status_code == 100:
            out.add(name, value)
        elif name == "Record-Route" and 100 < status_code < 300:
            out.add(name, value)
    for name, value in headers:
        out.add(name, value)
    if out.get("Content-Length") is None:
        out.add("Content-Length", str(len(body)))
    return Response(status_code, reason, out, body)


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 17.1.1.3): same branch as the INVITE."""
    headers = Headers()
    headers.add("Via", str(invite.top_via))
    for name, value in invite.headers:
        if name == "Route":
            headers.add(name, value)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    headers.add("Max-Forwards", "70")
    headers.add("Content-Length", "0")
    return Request("ACK", invite.uri, headers)


def make_cancel(request: Request) -> Request:
    """A CANCEL for ``request`` (RFC 3261 9.1): same Request-URI, Call-ID, To, From,
    CSeq number and top Via (so same branch), and the same Route headers."""
    headers = Headers()
    headers.add("Via", str(request.top_via))
    for name, value in request.headers:
        if name == "Route":
            headers.add(name, value)
    headers.add("From", request.headers.get("From") or "")
    headers.add("To", request.headers.get("To") or "")
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{request.cseq.seq} CANCEL")
    headers.add("Max-Forwards", "70")
    headers.add("Content-Length", "0")
    return Request("CANCEL", request.uri, headers)
