"""SIP and other URIs: RFC 3261 section 19.1 (syntax, section 25.1 grammar) and
the comparison rules of section 19.1.4.

Components are stored *unescaped* (``sip:%75se%72@example.com`` has user
``"user"``), and escaped again minimally when the URI is rendered. A URI parsed
from text remembers that text and renders it unchanged, so a value forwarded
untouched keeps its exact octets; a URI built or modified in code renders in
canonical form. Equality (``==``) is structural; :meth:`SipUri.equivalent`
implements the protocol's own comparison rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ._grammar import (
    HEADER_SAFE,
    PARAM_SAFE,
    PASSWORD_SAFE,
    UNRESERVED,
    USER_SAFE,
    check_escaped,
    escape,
    unescape,
)
from .errors import SipParseError

__all__ = ["SipUri", "AbsoluteUri", "Uri", "parse_uri", "format_host"]

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_IPV4_RE = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?"
)
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]")
_URIC = frozenset(UNRESERVED + ";/?:@&=+$,")

# Parameters that always take part in a comparison (RFC 3261 19.1.4).
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def is_valid_host(host: str) -> bool:
    if host.startswith("["):
        return _IPV6_RE.fullmatch(host) is not None and host.count(":") >= 2
    return _IPV4_RE.fullmatch(host) is not None or _HOSTNAME_RE.fullmatch(host) is not None


def format_host(host: str) -> str:
    """Bracket a bare IPv6 address; other hosts are returned unchanged."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def _split_hostport(text: str, what: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {what}")
        host, rest = text[:end + 1], text[end + 1:]
    else:
        host, sep, port_text = text.partition(":")
        rest = sep + port_text
    if not is_valid_host(host):
        raise SipParseError(f"invalid host {host!r} in {what}")
    port = None
    if rest:
        if rest[0] != ":" or not rest[1:].isdigit() or not rest[1:].isascii() or len(rest) > 7:
            raise SipParseError(f"invalid port in {what}")
        port = int(rest[1:])
        if port > 65535:
            raise SipParseError(f"port out of range in {what}")
    return host, port


@dataclass(frozen=True, eq=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 19.1.1), components unescaped."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"
    _text: str | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.scheme not in ("sip", "sips"):
            raise ValueError(f"scheme: must be 'sip' or 'sips', not {self.scheme!r}")
        if not isinstance(self.host, str) or not is_valid_host(format_host(self.host)):
            raise ValueError(f"host: not a valid host name or address: {self.host!r}")
        object.__setattr__(self, "host", format_host(self.host))  # IPv6 kept as a bracketed reference
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ValueError(f"port: must be 0..65535, not {self.port!r}")
        if self.user == "":
            raise ValueError("user: must be None or non-empty")
        if self.password is not None and self.user is None:
            raise ValueError("password: needs a user")
        for name, _ in self.params:
            if not name:
                raise ValueError("params: parameter names must be non-empty")
        for name, _ in self.headers:
            if not name:
                raise ValueError("headers: header names must be non-empty")

    # -- access ------------------------------------------------------------
    def param(self, name: str) -> str | None:
        """Value of a URI parameter ('' for a flag such as ``lr``), or None if absent."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return "" if value is None else value
        return None

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.upper() if value else None

    @property
    def lr(self) -> bool:
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr") or None

    # -- building ----------------------------------------------------------
    def with_params(self, **params: str | None) -> SipUri:
        """A copy with the given parameters set (value None = a flag like ``lr``)."""
        keep = [(k, v) for k, v in self.params if k.lower() not in {p.lower() for p in params}]
        keep.extend(params.items())
        return replace(self, params=tuple(keep))

    def without_params(self, *names: str) -> SipUri:
        drop = {n.lower() for n in names}
        return replace(self, params=tuple((k, v) for k, v in self.params if k.lower() not in drop))

    def without_headers(self) -> SipUri:
        return replace(self, headers=())

    def canonical(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, USER_SAFE))
            if self.password is not None:
                out.append(":" + escape(self.password, PASSWORD_SAFE))
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params:
            out.append(";" + escape(name, PARAM_SAFE))
            if value is not None:
                out.append("=" + escape(value, PARAM_SAFE))
        if self.headers:
            out.append("?" + "&".join(
                escape(n, HEADER_SAFE) + "=" + escape(v, HEADER_SAFE) for n, v in self.headers))
        return "".join(out)

    def __str__(self) -> str:
        return self._text if self._text is not None else self.canonical()

    # -- comparison (RFC 3261 19.1.4) -------------------------------------
    def equivalent(self, other: object) -> bool:
        """True when the two URIs are equivalent per RFC 3261 section 19.1.4."""
        if not isinstance(other, SipUri):
            return False
        if self.scheme != other.scheme or self.user != other.user or self.password != other.password:
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        mine = {k.lower(): (v or "").lower() for k, v in self.params}
        theirs = {k.lower(): (v or "").lower() for k, v in other.params}
        for name in _SIGNIFICANT_PARAMS:
            if mine.get(name) != theirs.get(name):
                return False
        for name in mine.keys() & theirs.keys():
            if mine[name] != theirs[name]:
                return False
        return {(k.lower(), v) for k, v in self.headers} == {(k.lower(), v) for k, v in other.headers}


@dataclass(frozen=True, eq=True)
class AbsoluteUri:
    """Any other URI (``tel:``, ``http:``, ``urn:``...): scheme plus opaque text."""

    scheme: str
    rest: str

    def __post_init__(self) -> None:
        if not _SCHEME_RE.fullmatch(self.scheme or ""):
            raise ValueError(f"scheme: invalid URI scheme {self.scheme!r}")
        if not self.rest:
            raise ValueError("rest: must be non-empty")

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"

    def equivalent(self, other: object) -> bool:
        return (isinstance(other, AbsoluteUri) and self.scheme.lower() == other.scheme.lower()
                and self.rest == other.rest)


Uri = SipUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse a URI; ``sip``/``sips`` give a :class:`SipUri`, others an :class:`AbsoluteUri`.

    Raises :class:`SipParseError` (400) on invalid syntax.
    """
    m = _SCHEME_RE.match(text)
    if not m or m.end() >= len(text) or text[m.end()] != ":":
        raise SipParseError(f"not a URI: {text[:60]!r}")
    scheme = m.group().lower()
    rest = text[m.end() + 1:]
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text)
    check_escaped(rest, _URIC, f"{scheme} URI")
    return AbsoluteUri(m.group(), rest)


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1:]
        if "@" in rest:
            raise SipParseError("unescaped '@' in SIP URI")
        user_text, colon, password_text = userinfo.partition(":")
        check_escaped(user_text, USER_SAFE, "URI user")
        user = unescape(user_text, "URI user")
        if colon:
            check_escaped(password_text, PASSWORD_SAFE, "URI password", allow_empty=True)
            password = unescape(password_text, "URI password")
    headers_text = None
    q = rest.find("?")
    if q >= 0:
        rest, headers_text = rest[:q], rest[q + 1:]
    hostport, *param_texts = rest.split(";")
    host, port = _split_hostport(hostport, "SIP URI")
    params = []
    for p in param_texts:
        name, eq, value = p.partition("=")
        check_escaped(name, PARAM_SAFE, "URI parameter name")
        if eq:
            check_escaped(value, PARAM_SAFE, "URI parameter value")
        params.append((unescape(name, "URI parameter"), unescape(value, "URI parameter") if eq else None))
    headers = []
    if headers_text is not None:
        for h in headers_text.split("&"):
            name, eq, value = h.partition("=")
            if not eq:
                raise SipParseError("URI header without '='")
            check_escaped(name, HEADER_SAFE, "URI header name")
            check_escaped(value, HEADER_SAFE, "URI header value", allow_empty=True)
            headers.append((unescape(name, "URI header"), unescape(value, "URI header")))
    try:
        uri = SipUri(host=host, user=user, password=password, port=port, params=tuple(params),
                     headers=tuple(headers), scheme=scheme)
    except ValueError as exc:  # defensive: the checks above should make this unreachable
        raise SipParseError(str(exc)) from None
    object.__setattr__(uri, "_text", text)
    return uri
