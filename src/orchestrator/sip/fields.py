"""Typed, validated views of the header fields calls need (RFC 3261 section 20,
grammar of section 25.1).

Each ``parse_*`` function takes one (unfolded) header value - or one element of
a comma-separated list - and returns a frozen value object, raising
:class:`SipParseError` (400) when the value does not match the grammar. Each
value object renders back with ``str()`` in canonical form.

Header parameters keep their value text as received (a quoted value keeps its
quotes), so forwarding them is lossless; :func:`unquote` gives the content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ._grammar import WORD_CHARS, Scanner, is_token, quote
from .errors import SipParseError
from .uri import AbsoluteUri, SipUri, Uri, format_host, is_valid_host, parse_uri

__all__ = [
    "Params", "Via", "NameAddr", "CSeq", "MediaType", "AuthHeader",
    "parse_via", "parse_name_addr", "parse_cseq", "parse_max_forwards", "parse_content_length",
    "parse_delta_seconds", "parse_call_id", "parse_media_type", "parse_token_list", "parse_auth_header",
    "parse_sip_date", "unquote", "param_value",
]

Params = tuple[tuple[str, str | None], ...]
MAX_UINT32 = 2**32 - 1

_DIGITS_RE = re.compile(r"[0-9]+")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_TOKENS_BEFORE_LAQUOT = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*[ \t]*<")


def unquote(value: str | None) -> str | None:
    """Content of a parameter value: quotes and quoted-pairs removed if it is quoted."""
    if value is None or not value.startswith('"'):
        return value
    sc = Scanner(value, "quoted value")
    out = sc.quoted_string()
    if not sc.at_end():
        raise sc.error("text after quoted-string")
    return out


def param_value(params: Params, name: str) -> str | None:
    """Value of a parameter ('' for a flag), or None if absent; names are case-insensitive."""
    lname = name.lower()
    for key, value in params:
        if key.lower() == lname:
            return "" if value is None else value
    return None


def _format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _gen_value(sc: Scanner) -> str:
    """gen-value = token / host / quoted-string (returned as written)."""
    c = sc.peek()
    if c == '"':
        return sc.raw_quoted_string()
    if c == "[":
        end = sc.text.find("]", sc.pos)
        if end < 0:
            raise sc.error("unterminated IPv6 reference")
        value = sc.text[sc.pos:end + 1]
        if not is_valid_host(value):
            raise sc.error("invalid IPv6 reference")
        sc.pos = end + 1
        return value
    return sc.token()


_PARAMS_FAST = re.compile(r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~]+)?)*")


def _parse_params(sc: Scanner) -> Params:
    """``*( SEMI generic-param )`` up to the end of the value."""
    if _PARAMS_FAST.fullmatch(sc.text, sc.pos):  # compact token params: no LWS, no quotes
        rest = sc.text[sc.pos:]
        sc.pos = len(sc.text)
        return tuple((name, value if eq else None) for name, eq, value in
                     (p.partition("=") for p in rest.split(";")[1:]))
    params = []
    while True:
        sc.skip_ws()
        if sc.at_end():
            return tuple(params)
        if not sc.accept(";"):
            raise sc.error("expected ';' or end of value")
        name = sc.token()
        value = None
        if sc.accept("="):
            value = _gen_value(sc)
        params.append((name, value))


def _check_params(params: Params, what: str) -> None:
    for name, value in params:
        if not is_token(name):
            raise ValueError(f"{what}: parameter name {name!r} is not a token")
        if value is not None and value != "":
            if not (is_token(value) or is_valid_host(value) or (value.startswith('"') and _is_quoted(value))):
                raise ValueError(f"{what}: parameter {name} value {value!r} is not a token, host or quoted")


def _is_quoted(value: str) -> bool:
    try:
        sc = Scanner(value, "value")
        sc.quoted_string()
        return sc.at_end()
    except SipParseError:
        return False


# ---------------------------------------------------------------------------
# Via (RFC 3261 20.42)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    def __post_init__(self) -> None:
        if not is_token(self.transport):
            raise ValueError(f"transport: not a token: {self.transport!r}")
        if not isinstance(self.host, str) or not is_valid_host(format_host(self.host)):
            raise ValueError(f"host: invalid: {self.host!r}")
        object.__setattr__(self, "host", format_host(self.host))  # IPv6 kept as a bracketed reference
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ValueError(f"port: out of range: {self.port!r}")
        _check_params(self.params, "Via")

    def param(self, name: str) -> str | None:
        return param_value(self.params, name)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def rport(self) -> int | None | bool:
        """RFC 3581: None if absent, True if present without a value, else the port."""
        value = self.param("rport")
        if value is None:
            return None
        return True if value == "" else int(value)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def with_params(self, **params: str | None) -> Via:
        names = {k.lower() for k in params}
        kept = [(k, v) for k, v in self.params if k.lower() not in names]
        return replace(self, params=tuple(kept) + tuple(params.items()))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {format_host(self.host)}{port}{_format_params(self.params)}"


def _host(sc: Scanner) -> str:
    if sc.peek() == "[":
        end = sc.text.find("]", sc.pos)
        if end < 0:
            raise sc.error("unterminated IPv6 reference")
        host = sc.text[sc.pos:end + 1]
        sc.pos = end + 1
    else:
        start = sc.pos
        text, n = sc.text, len(sc.text)
        while sc.pos < n and text[sc.pos] in _HOST_CHARS:
            sc.pos += 1
        host = text[start:sc.pos]
    if not is_valid_host(host):
        raise sc.error(f"invalid host {host!r}")
    return host


_VIA_FAST = re.compile(
    r"SIP/2\.0/([A-Za-z0-9\-.!%*_+`'~]+) ([A-Za-z0-9\-.]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~]+)?)*)")


def parse_via(value: str) -> Via:
    """Parse one via-parm (one element of a Via list)."""
    m = _VIA_FAST.fullmatch(value)
    if m:  # the usual compact form: no LWS, no quoted or IPv6 parameter values
        params = tuple((name, val if eq else None) for name, eq, val in
                       (p.partition("=") for p in m.group(4).split(";")[1:]))
        port = int(m.group(3)) if m.group(3) else None
        return _checked_via(m.group(1), m.group(2), port, params, "SIP", "2.0")
    sc = Scanner(value, "Via")
    sc.skip_ws()
    name = sc.token()
    sc.expect("/")
    version = sc.token()
    sc.expect("/")
    transport = sc.token()
    if not sc.skip_ws():
        raise sc.error("expected whitespace before sent-by")
    host = _host(sc)
    port = None
    if sc.accept(":"):
        m = _DIGITS_RE.match(sc.text, sc.pos)
        if not m or len(m.group()) > 5 or int(m.group()) > 65535:
            raise sc.error("invalid port")
        port = int(m.group())
        sc.pos = m.end()
    params = _parse_params(sc)
    return _checked_via(transport, host, port, params, name, version)


def _checked_via(transport: str, host: str, port: int | None, params: Params, name: str, version: str) -> Via:
    if not is_valid_host(host) or (port is not None and port > 65535):
        raise SipParseError("Via: invalid sent-by")
    for pname, pvalue in params:
        lname = pname.lower()
        if lname == "ttl" and not (pvalue and pvalue.isdigit() and len(pvalue) <= 3 and int(pvalue) <= 255):
            raise SipParseError("Via: ttl must be 0..255")
        if lname == "rport" and pvalue and (not pvalue.isdigit() or len(pvalue) > 5 or int(pvalue) > 65535):
            raise SipParseError("Via: invalid rport")
        if lname in ("received", "maddr", "branch") and not pvalue:
            raise SipParseError(f"Via: {lname} needs a value")
        if lname == "received" and not is_valid_host(pvalue or ""):
            raise SipParseError("Via: received must be an address")
    try:
        return Via(transport=transport.upper(), host=host, port=port, params=params,
                   protocol=f"{name.upper()}/{version}")
    except ValueError as exc:
        raise SipParseError(f"Via: {exc}") from None


# ---------------------------------------------------------------------------
# name-addr / addr-spec (From, To, Contact, Route, Record-Route...)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class NameAddr:
    """``"Display" <uri>;params`` - From, To, Contact, Route, Record-Route, Reply-To..."""

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    def __post_init__(self) -> None:
        if not isinstance(self.uri, (SipUri, AbsoluteUri)):
            raise ValueError("uri: must be a SipUri or AbsoluteUri (use parse_uri)")
        if self.display_name is not None and ("\r" in self.display_name or "\n" in self.display_name):
            raise ValueError("display_name: contains CR or LF")
        _check_params(self.params, "name-addr")

    def param(self, name: str) -> str | None:
        return param_value(self.params, name)

    @property
    def tag(self) -> str | None:
        return self.param("tag") or None

    def with_tag(self, tag: str) -> NameAddr:
        if not is_token(tag):
            raise ValueError(f"tag: not a token: {tag!r}")
        kept = tuple((k, v) for k, v in self.params if k.lower() != "tag")
        return replace(self, params=kept + (("tag", tag),))

    def with_params(self, **params: str | None) -> NameAddr:
        names = {k.lower() for k in params}
        kept = [(k, v) for k, v in self.params if k.lower() not in names]
        return replace(self, params=tuple(kept) + tuple(params.items()))

    def __str__(self) -> str:
        name = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri}>{_format_params(self.params)}"


def parse_name_addr(value: str, what: str = "name-addr") -> NameAddr:
    """Parse ``( name-addr / addr-spec ) *( SEMI param )`` (RFC 3261 20.10, 20.20, 20.39)."""
    try:
        return _parse_name_addr(value, what)
    except SipParseError as exc:
        if exc.reason.startswith(what):
            raise
        raise SipParseError(f"{what}: {exc.reason}") from None


def _parse_name_addr(value: str, what: str) -> NameAddr:
    sc = Scanner(value, what)
    sc.skip_ws()
    display = None
    c = sc.peek()
    if c == '"':
        display = sc.quoted_string()
        sc.skip_ws()
        if sc.peek() != "<":
            raise sc.error("expected '<' after display name")
    elif c != "<":
        # Token display name: "*(token LWS) <". RFC 4475 3.1.1.6 asks us to accept
        # a missing LWS before '<' (a known bug in the RFC 3261 grammar).
        m = _TOKENS_BEFORE_LAQUOT.match(sc.text, sc.pos)
        if m:
            display = " ".join(sc.text[sc.pos:m.end() - 1].split())
            sc.pos = m.end() - 1
    if sc.peek() == "<":
        end = sc.text.find(">", sc.pos)
        if end < 0:
            raise sc.error("missing '>'")
        uri = parse_uri(sc.text[sc.pos + 1:end])
        sc.pos = end + 1
    else:
        uri_text = sc.take_until(" \t;,")
        if "?" in uri_text:
            raise sc.error("a URI with headers must be enclosed in '<>'")
        uri = parse_uri(uri_text)
    params = _parse_params(sc)
    try:
        return NameAddr(uri=uri, display_name=display, params=params)
    except ValueError as exc:
        raise SipParseError(f"{what}: {exc}") from None


# ---------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CSeq:
    """``CSeq: 4711 INVITE`` (RFC 3261 20.16)."""

    seq: int
    method: str

    def __post_init__(self) -> None:
        if not 0 <= self.seq <= MAX_UINT32:
            raise ValueError(f"seq: must fit in 32 bits, not {self.seq!r}")
        if not is_token(self.method):
            raise ValueError(f"method: not a token: {self.method!r}")

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_CSEQ_RE = re.compile(r"[ \t]*([0-9]+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*")


def parse_cseq(value: str) -> CSeq:
    m = _CSEQ_RE.fullmatch(value)
    if not m:
        raise SipParseError("CSeq: expected 'number method'")
    if len(m.group(1).lstrip("0")) > 10 or int(m.group(1)) > MAX_UINT32:
        raise SipParseError("CSeq: sequence number does not fit in 32 bits")
    return CSeq(int(m.group(1)), m.group(2))


def _uint(value: str, what: str, maximum: int) -> int:
    text = value.strip()
    if not text or not text.isdigit() or not text.isascii():
        raise SipParseError(f"{what}: expected digits")
    if len(text.lstrip("0")) > len(str(maximum)) or int(text) > maximum:
        raise SipParseError(f"{what}: value out of range")
    return int(text)


def parse_max_forwards(value: str) -> int:
    return _uint(value, "Max-Forwards", 255)


def parse_content_length(value: str) -> int:
    return _uint(value, "Content-Length", MAX_UINT32)


def parse_delta_seconds(value: str, what: str = "Expires") -> int:
    return _uint(value, what, MAX_UINT32)


def parse_call_id(value: str) -> str:
    """``word [ "@" word ]`` (RFC 3261 20.8)."""
    text = value.strip()
    parts = text.split("@")
    if len(parts) > 2 or not all(parts) or not all(c in WORD_CHARS for p in parts for c in p):
        raise SipParseError("Call-ID: not word [@ word]")
    return text


def parse_token_list(values: list[str], what: str) -> tuple[str, ...]:
    """Option tags, methods: each list element must be a token."""
    out = []
    for v in values:
        if not is_token(v):
            raise SipParseError(f"{what}: {v!r} is not a token")
        out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class MediaType:
    """``type/subtype;params`` (Content-Type, Accept; RFC 3261 20.15, 20.1)."""

    type: str
    subtype: str
    params: Params = ()

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}".lower()

    def param(self, name: str) -> str | None:
        return param_value(self.params, name)

    def matches(self, other: MediaType) -> bool:
        """Whether this (possibly wildcard) range covers ``other``."""
        t, s = self.type.lower(), self.subtype.lower()
        return (t == "*" or t == other.type.lower()) and (s == "*" or s == other.subtype.lower())

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{_format_params(self.params)}"


def parse_media_type(value: str, what: str = "Content-Type") -> MediaType:
    sc = Scanner(value, what)
    sc.skip_ws()
    mtype = sc.token()
    sc.expect("/")
    subtype = sc.token()
    params = []
    while True:
        sc.skip_ws()
        if sc.at_end():
            break
        sc.expect(";")
        name = sc.token()
        sc.expect("=")
        val = sc.raw_quoted_string() if sc.peek() == '"' else sc.token()
        params.append((name, val))
    return MediaType(mtype, subtype, tuple(params))


# ---------------------------------------------------------------------------
# Authorization / WWW-Authenticate (RFC 3261 20.7, 20.44; RFC 7616, RFC 8760)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AuthHeader:
    """A challenge or credentials: ``scheme name=value, name="quoted value"...``.

    ``params`` hold (name, value, quoted) with the value already unquoted.
    """

    scheme: str
    params: tuple[tuple[str, str, bool], ...] = ()

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for key, value, _ in self.params:
            if key.lower() == lname:
                return value
        return None

    def __str__(self) -> str:
        parts = [f"{k}={quote(v)}" if q else f"{k}={v}" for k, v, q in self.params]
        return f"{self.scheme} " + ", ".join(parts) if parts else self.scheme


def parse_auth_header(value: str, what: str = "Authorization") -> AuthHeader:
    sc = Scanner(value, what)
    sc.skip_ws()
    scheme = sc.token()
    params: list[tuple[str, str, bool]] = []
    if not sc.at_end():
        if not sc.skip_ws():
            raise sc.error("expected whitespace after the scheme")
        while not sc.at_end():
            if sc.accept(","):  # empty list elements are allowed (RFC 7235)
                continue
            name = sc.token()
            sc.expect("=")
            if sc.peek() == '"':
                params.append((name, sc.quoted_string(), True))
            else:
                params.append((name, sc.token(), False))
            sc.skip_ws()
            if not sc.at_end():
                sc.expect(",")
    return AuthHeader(scheme, tuple(params))


# ---------------------------------------------------------------------------
# Date (RFC 3261 20.17: rfc1123-date, GMT only)
# ---------------------------------------------------------------------------
_MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT")


def parse_sip_date(value: str) -> datetime:
    m = _DATE_RE.fullmatch(value.strip())
    if not m:
        raise SipParseError("Date: expected an RFC 1123 date in GMT")
    try:
        return datetime(int(m.group(4)), _MONTHS[m.group(3)], int(m.group(2)), int(m.group(5)),
                        int(m.group(6)), int(m.group(7)), tzinfo=timezone.utc)
    except ValueError:
        raise SipParseError("Date: impossible date") from None

