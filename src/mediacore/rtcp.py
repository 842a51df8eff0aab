"""RTCP packets (RFC 3550 section 6), parsed and built in native code.

``parse(data)`` returns the packets of one (compound) RTCP datagram as frozen
dataclasses - ``SenderReport``, ``ReceiverReport`` (each with
``ReportBlock``\\ s), ``SourceDescription`` (``SdesChunk``\\ s of
``SdesItem``\\ s), ``Goodbye``, ``App``, and ``UnknownPacket`` for other types
(RTPFB, PSFB, XR...). It applies the validity checks of RFC 3550 appendix A.2
- version 2 everywhere, the first packet an SR or RR, padding only on the last
packet, length fields adding up exactly to the datagram - and checks each
packet against its count field; anything malformed raises ``ValueError``
saying what. ``reduced_size=True`` accepts a first packet of any type
(reduced-size RTCP, RFC 5506).

Every packet class has ``serialize()``; ``serialize(packets)`` builds a
compound datagram (first packet SR or RR unless ``reduced_size``), optionally
padding the last packet. ``parse(serialize(ps)) == ps``.

SDES item values and the BYE reason are ``bytes`` (RFC 3550 says UTF-8; a
``str`` given to a constructor is encoded as UTF-8), so any received packet
round-trips exactly. NTP helpers for the LSR/DLSR round-trip time (6.4.1) are
here too.

>>> from mediacore import rtcp
>>> rr = rtcp.ReceiverReport(ssrc=1, reports=(rtcp.ReportBlock(ssrc=2, fraction_lost=64),))
>>> sdes = rtcp.SourceDescription(chunks=(rtcp.SdesChunk(ssrc=1, items=(rtcp.SdesItem.cname("a@b"),)),))
>>> rtcp.parse(rtcp.serialize([rr, sdes])) == [rr, sdes]
True
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence
from typing import ClassVar

from mediacore import _rtp

__all__ = [
    "PacketType",
    "SdesType",
    "ReportBlock",
    "SenderReport",
    "ReceiverReport",
    "SdesItem",
    "SdesChunk",
    "SourceDescription",
    "Goodbye",
    "App",
    "UnknownPacket",
    "RtcpPacket",
    "parse",
    "serialize",
    "ntp_from_unix_ns",
    "unix_ns_from_ntp",
    "ntp_middle32",
    "round_trip_time",
    "MAX_COUNT",
]

#: Most report blocks / chunks / sources one packet can carry (5-bit count).
MAX_COUNT = 31


class PacketType(enum.IntEnum):
    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204


class SdesType(enum.IntEnum):
    """SDES item types (RFC 3550 6.5)."""

    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


# ---------------------------------------------------------------- validation helpers


def _uint(name: str, value: object, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be in 0..{(1 << bits) - 1}, got {value}")
    return value


def _bytes(name: str, value: object, *, text: bool = False) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if text and isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"{name} must be bytes{' or str' if text else ''}, got {type(value).__name__}")


def _words(name: str, value: bytes) -> bytes:
    if len(value) % 4:
        raise ValueError(f"{name} must be a multiple of 4 bytes (32-bit words), got {len(value)}")
    return value


def _padding(padding: int) -> int:
    if (
        isinstance(padding, bool)
        or not isinstance(padding, int)
        or padding < 0
        or padding > 252
        or padding % 4
    ):
        raise ValueError(f"padding must be a multiple of 4 in 0..252, got {padding!r}")
    return padding


def _seq(name: str, value: object) -> tuple:
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a sequence, got {type(value).__name__}")
    return tuple(value)


_set = object.__setattr__


# ---------------------------------------------------------------- report blocks


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReportBlock:
    """One reception report block (RFC 3550 6.4.1)."""

    ssrc: int
    #: Interval loss as 8-bit fixed point: lost / expected * 256.
    fraction_lost: int = 0
    #: Cumulative packets lost, signed 24-bit (negative with duplicates).
    cumulative_lost: int = 0
    #: Extended highest sequence number received (cycles << 16 | max seq).
    highest_sequence: int = 0
    #: Interarrival jitter in timestamp units.
    jitter: int = 0
    #: LSR: middle 32 bits of the NTP timestamp of the last SR received (0: none).
    last_sr: int = 0
    #: DLSR: delay since that SR, in 1/65536 s.
    delay_since_last_sr: int = 0

    def __post_init__(self) -> None:
        _uint("ssrc", self.ssrc, 32)
        _uint("fraction_lost", self.fraction_lost, 8)
        lost = self.cumulative_lost
        if isinstance(lost, bool) or not isinstance(lost, int) or not -(1 << 23) <= lost < (1 << 23):
            raise ValueError(f"cumulative_lost must be an int in -8388608..8388607, got {lost!r}")
        _uint("highest_sequence", self.highest_sequence, 32)
        _uint("jitter", self.jitter, 32)
        _uint("last_sr", self.last_sr, 32)
        _uint("delay_since_last_sr", self.delay_since_last_sr, 32)

    @property
    def loss_ratio(self) -> float:
        """``fraction_lost`` as a ratio in [0, 1)."""
        return self.fraction_lost / 256.0

    def _native(self) -> tuple[int, int, int, int, int, int, int]:
        return (
            self.ssrc,
            self.fraction_lost,
            self.cumulative_lost,
            self.highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        )

    @classmethod
    def _from_native(cls, t: Sequence[int]) -> ReportBlock:
        b = cls.__new__(cls)
        b.__dict__.update(zip(_BLOCK_FIELDS, t, strict=True))
        return b


_BLOCK_FIELDS = (
    "ssrc",
    "fraction_lost",
    "cumulative_lost",
    "highest_sequence",
    "jitter",
    "last_sr",
    "delay_since_last_sr",
)


def _blocks(reports: Iterable[ReportBlock]) -> tuple[ReportBlock, ...]:
    reports = _seq("reports", reports)
    if len(reports) > MAX_COUNT:
        raise ValueError(
            f"reports holds at most {MAX_COUNT} blocks per packet, got {len(reports)} "
            "(send the rest in further RR packets)"
        )
    for i, r in enumerate(reports):
        if not isinstance(r, ReportBlock):
            raise ValueError(f"reports[{i}] must be a ReportBlock, got {type(r).__name__}")
    return reports


# ---------------------------------------------------------------- SR / RR


@dataclasses.dataclass(frozen=True, kw_only=True)
class SenderReport:
    """SR (RFC 3550 6.4.1): sender info and up to 31 report blocks."""

    packet_type: ClassVar[int] = PacketType.SR
    ssrc: int
    #: 64-bit NTP timestamp (32.32 fixed point seconds since 1900).
    ntp_timestamp: int = 0
    rtp_timestamp: int = 0
    packet_count: int = 0
    octet_count: int = 0
    reports: tuple[ReportBlock, ...] = ()
    #: Profile-specific extension (a multiple of 4 bytes).
    profile_extension: bytes = b""

    def __post_init__(self) -> None:
        _uint("ssrc", self.ssrc, 32)
        _uint("ntp_timestamp", self.ntp_timestamp, 64)
        _uint("rtp_timestamp", self.rtp_timestamp, 32)
        _uint("packet_count", self.packet_count, 32)
        _uint("octet_count", self.octet_count, 32)
        _set(self, "reports", _blocks(self.reports))
        _set(
            self,
            "profile_extension",
            _words("profile_extension", _bytes("profile_extension", self.profile_extension)),
        )

    def serialize(self, *, padding: int = 0) -> bytes:
        return _rtp.rtcp_sender_report(
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
            [r._native() for r in self.reports],
            self.profile_extension,
            _padding(padding),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReceiverReport:
    """RR (RFC 3550 6.4.2): up to 31 report blocks from a receiver."""

    packet_type: ClassVar[int] = PacketType.RR
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    profile_extension: bytes = b""

    def __post_init__(self) -> None:
        _uint("ssrc", self.ssrc, 32)
        _set(self, "reports", _blocks(self.reports))
        _set(
            self,
            "profile_extension",
            _words("profile_extension", _bytes("profile_extension", self.profile_extension)),
        )

    def serialize(self, *, padding: int = 0) -> bytes:
        return _rtp.rtcp_receiver_report(
            self.ssrc, [r._native() for r in self.reports], self.profile_extension, _padding(padding)
        )


# ---------------------------------------------------------------- SDES


@dataclasses.dataclass(frozen=True, kw_only=True)
class SdesItem:
    """One SDES item (RFC 3550 6.5). For PRIV (type 8), ``prefix`` is the prefix string."""

    type: int
    value: bytes = b""
    prefix: bytes | None = None

    def __post_init__(self) -> None:
        t = self.type
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 255:
            raise ValueError(f"SDES item type must be an int in 1..255 (0 ends a chunk), got {t!r}")
        if isinstance(t, SdesType):
            _set(self, "type", int(t))
        value = _bytes("value", self.value, text=True)
        _set(self, "value", value)
        if self.type == SdesType.PRIV:
            prefix = _bytes("prefix", b"" if self.prefix is None else self.prefix, text=True)
            _set(self, "prefix", prefix)
            if 1 + len(prefix) + len(value) > 255:
                raise ValueError(
                    f"PRIV item must fit 255 bytes: 1 + prefix {len(prefix)} + value {len(value)}"
                )
        else:
            if self.prefix is not None:
                raise ValueError(f"prefix is only for PRIV items (type 8), not type {self.type}")
            if len(value) > 255:
                raise ValueError(f"SDES item value must be at most 255 bytes, got {len(value)}")

    @classmethod
    def cname(cls, value: str | bytes) -> SdesItem:
        return cls(type=SdesType.CNAME, value=value)

    def _wire(self) -> bytes:
        if self.type == SdesType.PRIV:
            assert self.prefix is not None
            return bytes([len(self.prefix)]) + self.prefix + self.value
        return self.value

    @classmethod
    def _from_wire(cls, type_: int, data: bytes) -> SdesItem:
        item = cls.__new__(cls)
        if type_ == SdesType.PRIV:  # the native parser checked the prefix length
            n = data[0]
            item.__dict__.update(type=type_, value=data[1 + n :], prefix=data[1 : 1 + n])
        else:
            item.__dict__.update(type=type_, value=data, prefix=None)
        return item


@dataclasses.dataclass(frozen=True, kw_only=True)
class SdesChunk:
    ssrc: int
    items: tuple[SdesItem, ...] = ()

    def __post_init__(self) -> None:
        _uint("ssrc", self.ssrc, 32)
        items = _seq("items", self.items)
        for i, it in enumerate(items):
            if not isinstance(it, SdesItem):
                raise ValueError(f"items[{i}] must be an SdesItem, got {type(it).__name__}")
        _set(self, "items", items)

    def get(self, type_: int) -> bytes | None:
        """Value of the first item of this type, or None."""
        return next((it.value for it in self.items if it.type == type_), None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SourceDescription:
    """SDES (RFC 3550 6.5): up to 31 chunks of items."""

    packet_type: ClassVar[int] = PacketType.SDES
    chunks: tuple[SdesChunk, ...] = ()

    def __post_init__(self) -> None:
        chunks = _seq("chunks", self.chunks)
        if len(chunks) > MAX_COUNT:
            raise ValueError(f"chunks holds at most {MAX_COUNT} per packet, got {len(chunks)}")
        for i, c in enumerate(chunks):
            if not isinstance(c, SdesChunk):
                raise ValueError(f"chunks[{i}] must be an SdesChunk, got {type(c).__name__}")
        _set(self, "chunks", chunks)

    def serialize(self, *, padding: int = 0) -> bytes:
        return _rtp.rtcp_sdes(
            [(c.ssrc, [(it.type, it._wire()) for it in c.items]) for c in self.chunks], _padding(padding)
        )


# ---------------------------------------------------------------- BYE / APP / other


@dataclasses.dataclass(frozen=True, kw_only=True)
class Goodbye:
    """BYE (RFC 3550 6.6): sources leaving, with an optional reason."""

    packet_type: ClassVar[int] = PacketType.BYE
    sources: tuple[int, ...] = ()
    reason: bytes | None = None

    def __post_init__(self) -> None:
        sources = _seq("sources", self.sources)
        if len(sources) > MAX_COUNT:
            raise ValueError(f"sources holds at most {MAX_COUNT} per packet, got {len(sources)}")
        for i, s in enumerate(sources):
            _uint(f"sources[{i}]", s, 32)
        _set(self, "sources", sources)
        if self.reason is not None:
            reason = _bytes("reason", self.reason, text=True)
            if len(reason) > 255:
                raise ValueError(f"reason must be at most 255 bytes, got {len(reason)}")
            _set(self, "reason", reason)

    def serialize(self, *, padding: int = 0) -> bytes:
        return _rtp.rtcp_bye(list(self.sources), self.reason, _padding(padding))


@dataclasses.dataclass(frozen=True, kw_only=True)
class App:
    """APP (RFC 3550 6.7): application-defined packet."""

    packet_type: ClassVar[int] = PacketType.APP
    subtype: int = 0
    ssrc: int = 0
    #: Four ASCII characters naming the application.
    name: bytes = b"\0\0\0\0"
    #: Application data, a multiple of 4 bytes.
    data: bytes = b""

    def __post_init__(self) -> None:
        _uint("subtype", self.subtype, 5)
        _uint("ssrc", self.ssrc, 32)
        name = _bytes("name", self.name, text=True)
        if len(name) != 4:
            raise ValueError(f"name must be exactly 4 bytes, got {len(name)}")
        _set(self, "name", name)
        _set(self, "data", _words("data", _bytes("data", self.data)))

    def serialize(self, *, padding: int = 0) -> bytes:
        return _rtp.rtcp_app(self.subtype, self.ssrc, self.name, self.data, _padding(padding))


@dataclasses.dataclass(frozen=True, kw_only=True)
class UnknownPacket:
    """A packet type this module does not decode (RTPFB 205, PSFB 206, XR 207...), kept whole."""

    packet_type: int
    count: int = 0
    #: Everything after the 4-byte header, padding excluded (a multiple of 4 bytes).
    body: bytes = b""

    def __post_init__(self) -> None:
        _uint("packet_type", self.packet_type, 8)
        if self.packet_type in PacketType._value2member_map_:
            raise ValueError(f"packet_type {self.packet_type} has its own class; use it")
        _uint("count", self.count, 5)
        _set(self, "body", _words("body", _bytes("body", self.body)))

    def serialize(self, *, padding: int = 0) -> bytes:
        return _rtp.rtcp_raw(self.packet_type, self.count, self.body, _padding(padding))


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | App | UnknownPacket


# ---------------------------------------------------------------- compound


def _new(cls: type, **fields: object) -> object:
    obj = cls.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def _from_native(t: tuple) -> RtcpPacket:
    kind = t[0]
    blocks = ReportBlock._from_native
    if kind == 200:
        _, ssrc, ntp, rtp_ts, packets, octets, reports, ext = t
        return _new(
            SenderReport,
            ssrc=ssrc,
            ntp_timestamp=ntp,
            rtp_timestamp=rtp_ts,
            packet_count=packets,
            octet_count=octets,
            reports=tuple(map(blocks, reports)),
            profile_extension=ext,
        )
    if kind == 201:
        _, ssrc, reports, ext = t
        return _new(ReceiverReport, ssrc=ssrc, reports=tuple(map(blocks, reports)), profile_extension=ext)
    if kind == 202:
        chunks = tuple(
            _new(SdesChunk, ssrc=ssrc, items=tuple(SdesItem._from_wire(ty, data) for ty, data in items))
            for ssrc, items in t[1]
        )
        return _new(SourceDescription, chunks=chunks)
    if kind == 203:
        return _new(Goodbye, sources=tuple(t[1]), reason=t[2])
    if kind == 204:
        _, subtype, ssrc, name, data = t
        return _new(App, subtype=subtype, ssrc=ssrc, name=name, data=data)
    _, count, body = t
    return _new(UnknownPacket, packet_type=kind, count=count, body=body)


def parse(data: bytes | bytearray | memoryview, *, reduced_size: bool = False) -> list[RtcpPacket]:
    """The packets of one RTCP datagram, checked per RFC 3550 A.2; ``ValueError`` if malformed."""
    return [_from_native(t) for t in _rtp.rtcp_parse(data, bool(reduced_size))]


def serialize(packets: Iterable[RtcpPacket], *, padding: int = 0, reduced_size: bool = False) -> bytes:
    """One compound datagram; ``padding`` octets (a multiple of 4) go on the last packet.

    Unless ``reduced_size`` (RFC 5506), the first packet must be an SR or RR,
    as RFC 3550 6.1 requires of a compound packet.
    """
    packets = list(packets)
    if not packets:
        raise ValueError("packets must not be empty")
    for i, p in enumerate(packets):
        if not isinstance(p, (SenderReport, ReceiverReport, SourceDescription, Goodbye, App, UnknownPacket)):
            raise ValueError(f"packets[{i}] is not an RTCP packet: {type(p).__name__}")
    if not reduced_size and not isinstance(packets[0], (SenderReport, ReceiverReport)):
        raise ValueError(
            "a compound RTCP packet must start with a SenderReport or ReceiverReport "
            "(pass reduced_size=True for RFC 5506)"
        )
    _padding(padding)
    last = len(packets) - 1
    return b"".join(p.serialize(padding=padding if i == last else 0) for i, p in enumerate(packets))


# ---------------------------------------------------------------- NTP, RTT


def ntp_from_unix_ns(unix_ns: int) -> int:
    """64-bit NTP timestamp (32.32 seconds since 1900) of a Unix time in ns."""
    return _rtp.ntp_from_unix_ns(unix_ns)


def unix_ns_from_ntp(ntp: int) -> int:
    """Unix time in ns of a 64-bit NTP timestamp (era 0: before 2036-02-07)."""
    return _rtp.unix_ns_from_ntp(_uint("ntp", ntp, 64))


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (the LSR format, 16.16 seconds)."""
    return _rtp.ntp_middle32(_uint("ntp", ntp, 64))


def round_trip_time(arrival_ntp: int, block: ReportBlock) -> float | None:
    """RTT in seconds from a report block about our stream (RFC 3550 6.4.1: A - LSR - DLSR).

    ``arrival_ntp`` is the 64-bit NTP time the report arrived. None when the
    block carries no LSR (the peer has not received an SR yet) or the result is
    negative (clocks disagree).
    """
    q16 = _rtp.rtt_q16(ntp_middle32(arrival_ntp), block.last_sr, block.delay_since_last_sr)
    return None if q16 < 0 else q16 / 65536.0
