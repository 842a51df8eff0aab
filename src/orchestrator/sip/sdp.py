"""SDP: the Session Description Protocol, RFC 4566 (section 5 syntax).

:class:`SessionDescription` keeps every line type RFC 4566 defines, in order
(session: v o s i u e p c b t r z k a; media: m i c b k a), so that a
description parses and serializes back to the same octets when its lines are
in the RFC's order. Attribute order and repetition are preserved. A type
letter RFC 4566 does not define makes the whole description invalid (5: "a
parser MUST completely ignore any session description that contains a type
letter that it does not understand"): :class:`SdpParseError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError

__all__ = ["SdpParseError", "Origin", "Connection", "Timing", "Media", "SessionDescription", "RtpMap",
           "STATIC_PAYLOAD_TYPES"]


class SdpParseError(SipParseError):
    """The body is not a valid session description (status hint 400)."""


# RFC 3551 Table 4 (audio) static payload types we may meet.
STATIC_PAYLOAD_TYPES = {
    0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 4: ("G723", 8000, 1), 8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1), 13: ("CN", 8000, 1), 18: ("G729", 8000, 1),
}

_SESSION_ORDER = "vosiuepcbtrzka"
_MEDIA_ORDER = "icbka"
_LINE_RE = re.compile(r"([a-z])=(.*)")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass
class Origin:
    username: str
    session_id: str
    session_version: str
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return " ".join([self.username, self.session_id, self.session_version, self.nettype, self.addrtype,
                         self.address])


@dataclass
class Connection:
    nettype: str
    addrtype: str
    address: str  # may carry /ttl and /number for multicast

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @property
    def host(self) -> str:
        return self.address.split("/")[0]


@dataclass
class Timing:
    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RtpMap:
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int = 1

    def __str__(self) -> str:
        chans = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{chans}"


def _attr_value(attributes: list[tuple[str, str | None]], name: str) -> str | None:
    for key, value in attributes:
        if key == name:
            return "" if value is None else value
    return None


@dataclass
class Media:
    """One ``m=`` section."""

    media: str
    port: int
    proto: str
    formats: list[str]
    num_ports: int | None = None
    title: str | None = None
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[str] = field(default_factory=list)
    key: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """First value of ``a=name[:value]`` ('' for a flag), or None."""
        return _attr_value(self.attributes, name)

    def attributes_named(self, name: str) -> list[str]:
        return ["" if v is None else v for k, v in self.attributes if k == name]

    @property
    def direction(self) -> str | None:
        for key, value in self.attributes:
            if value is None and key in _DIRECTIONS:
                return key
        return None

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> codec, from a=rtpmap, else the RFC 3551 static table."""
        out: dict[int, RtpMap] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in STATIC_PAYLOAD_TYPES:
                name, rate, chans = STATIC_PAYLOAD_TYPES[int(fmt)]
                out[int(fmt)] = RtpMap(int(fmt), name, rate, chans)
        for value in self.attributes_named("rtpmap"):
            m = re.fullmatch(r"([0-9]{1,3}) +([^/ ]+)/([0-9]+)(?:/([0-9]+))?", value.strip())
            if m and int(m.group(1)) <= 127:
                out[int(m.group(1))] = RtpMap(int(m.group(1)), m.group(2), int(m.group(3)),
                                              int(m.group(4) or 1))
        return out

    def fmtp(self) -> dict[int, str]:
        out = {}
        for value in self.attributes_named("fmtp"):
            pt, _, params = value.partition(" ")
            if pt.isdigit():
                out[int(pt)] = params.strip()
        return out

    def lines(self) -> list[str]:
        ports = f"{self.port}/{self.num_ports}" if self.num_ports is not None else str(self.port)
        out = [f"m={self.media} {ports} {self.proto} {' '.join(self.formats)}".rstrip()]
        if self.title is not None:
            out.append(f"i={self.title}")
        out += [f"c={c}" for c in self.connections]
        out += [f"b={b}" for b in self.bandwidths]
        if self.key is not None:
            out.append(f"k={self.key}")
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        return out


@dataclass
class SessionDescription:
    """A whole session description (RFC 4566 section 5)."""

    origin: Origin
    session_name: str = "-"
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=lambda: [Timing()])
    zone: str | None = None
    key: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        return _attr_value(self.attributes, name)

    @property
    def direction(self) -> str | None:
        for key, value in self.attributes:
            if value is None and key in _DIRECTIONS:
                return key
        return None

    def connection_for(self, media: Media) -> Connection | None:
        """The media-level c= line if any, else the session-level one (RFC 4566 5.7)."""
        return media.connections[0] if media.connections else self.connection

    # -- text ------------------------------------------------------------------------------
    def serialize(self) -> bytes:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out += [f"e={e}" for e in self.emails] + [f"p={p}" for p in self.phones]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={b}" for b in self.bandwidths]
        for t in self.timings:
            out.append(f"t={t.start} {t.stop}")
            out += [f"r={r}" for r in t.repeats]
        if self.zone is not None:
            out.append(f"z={self.zone}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for m in self.media:
            out += m.lines()
        return ("\r\n".join(out) + "\r\n").encode("utf-8")

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse a session description; raises :class:`SdpParseError` only."""
        try:
            text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        except UnicodeDecodeError:
            raise SdpParseError("SDP is not UTF-8") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        parsed = []
        for line in lines:
            line = line[:-1] if line.endswith("\r") else line
            m = _LINE_RE.fullmatch(line)
            if not m:
                raise SdpParseError(f"SDP: malformed line {line[:40]!r}")
            parsed.append((m.group(1), m.group(2)))
        if not parsed or parsed[0] != ("v", "0"):
            raise SdpParseError("SDP: must start with v=0")
        return _build(parsed)


def _split(value: str, n: int, what: str) -> list[str]:
    parts = value.split(" ")
    if len(parts) != n or not all(parts):
        raise SdpParseError(f"SDP: {what} needs {n} fields")
    return parts


def _connection(value: str) -> Connection:
    nettype, addrtype, address = _split(value, 3, "c=")
    return Connection(nettype, addrtype, address)


def _attribute(value: str) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    if not _TOKEN_RE.fullmatch(name):
        raise SdpParseError(f"SDP: bad attribute name {name[:30]!r}")
    return name, rest if colon else None


def _int(text: str, what: str, maximum: int) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 20 or int(text) > maximum:
        raise SdpParseError(f"SDP: bad {what}")
    return int(text)


def _build(lines: list[tuple[str, str]]) -> SessionDescription:
    session: dict = {"emails": [], "phones": [], "bandwidths": [], "timings": [], "attributes": []}
    media: list[Media] = []
    rank = -1
    current: Media | None = None
    for letter, value in lines:
        if letter == "m":
            parts = value.split(" ")
            if len(parts) < 3 or not all(parts[:3]):
                raise SdpParseError("SDP: m= needs media, port and proto")
            port_text, _, count = parts[1].partition("/")
            current = Media(media=parts[0], port=_int(port_text, "port", 65535), proto=parts[2],
                            formats=[f for f in parts[3:] if f],
                            num_ports=_int(count, "port count", 65535) if count else None)
            media.append(current)
            rank = -1
            continue
        if current is not None:
            pos = _MEDIA_ORDER.find(letter)
            if pos < 0:
                raise SdpParseError(f"SDP: {letter}= is not allowed in a media section")
            if pos < rank or (pos == rank and letter in "ik"):
                raise SdpParseError(f"SDP: {letter}= out of order")
            rank = pos
            if letter == "i":
                current.title = value
            elif letter == "c":
                current.connections.append(_connection(value))
            elif letter == "b":
                current.bandwidths.append(value)
            elif letter == "k":
                current.key = value
            else:
                current.attributes.append(_attribute(value))
            continue
        pos = _SESSION_ORDER.find(letter)
        if pos < 0:
            raise SdpParseError(f"SDP: unknown type letter {letter!r}")
        if pos < rank and not (letter == "t" and rank == _SESSION_ORDER.find("r")):
            raise SdpParseError(f"SDP: {letter}= out of order")
        if pos == rank and letter not in "epbtra":
            raise SdpParseError(f"SDP: {letter}= repeated")
        rank = pos
        if letter == "v":
            continue
        if letter == "o":
            session["origin"] = Origin(*_split(value, 6, "o="))
        elif letter == "s":
            session["session_name"] = value
        elif letter == "i":
            session["information"] = value
        elif letter == "u":
            session["uri"] = value
        elif letter == "e":
            session["emails"].append(value)
        elif letter == "p":
            session["phones"].append(value)
        elif letter == "c":
            session["connection"] = _connection(value)
        elif letter == "b":
            session["bandwidths"].append(value)
        elif letter == "t":
            start, stop = _split(value, 2, "t=")
            timing = Timing(_int(start, "start time", 2**64), _int(stop, "stop time", 2**64))
            session["timings"].append(timing)
        elif letter == "r":
            if not session["timings"]:
                raise SdpParseError("SDP: r= without t=")
            session["timings"][-1].repeats.append(value)
        elif letter == "z":
            session["zone"] = value
        elif letter == "k":
            session["key"] = value
        else:
            session["attributes"].append(_attribute(value))
    if "origin" not in session or "session_name" not in session:
        raise SdpParseError("SDP: o= and s= are mandatory")
    if not session["timings"]:
        raise SdpParseError("SDP: at least one t= is mandatory")
    return SessionDescription(media=media, **session)
