"""RTP packets (RFC 3550 section 5), parsed and built in native code.

``RtpPacket.parse(data)`` checks the packet the way RFC 3550 (5.1, 5.3.1 and
appendix A.1) asks - version 2, room for the CSRC list and the header
extension, a padding count between 1 and what follows the headers - and
raises ``ValueError`` saying what is wrong. ``serialize()`` writes it back.
Padding octets other than the final count are written as zeros, so
``RtpPacket.parse(p.serialize()) == p`` for every valid packet ``p``.

Header extensions are kept as the profile value and the raw data (RFC 3550
5.3.1); ``extension_elements()`` reads RFC 8285 one-byte (0xBEDE) and
two-byte (0x100X) elements, and ``RtpPacket.with_extension_elements`` builds
them.

``ReceiveStats`` tracks one remote source the way RFC 3550 appendix A does
(A.1 validation and sequence tracking, A.3 loss, A.8 jitter) and produces the
``mediacore.rtcp.ReportBlock`` for our SR/RR; ``SendStats`` produces the
sender info of our SR. They are native objects the engine also uses directly.

This is the Python-level view for tools, tests and signalling; the media
engine parses packets natively without Python (DESIGN.md rule 1).

>>> from mediacore.rtp import RtpPacket
>>> p = RtpPacket(payload_type=0, sequence_number=1, timestamp=160, ssrc=0x1234, payload=b"\\xff" * 160)
>>> RtpPacket.parse(p.serialize()) == p
True
>>> RtpPacket.parse(b"\\x40" + bytes(11))
Traceback (most recent call last):
...
ValueError: RTP version is not 2
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from mediacore import _rtp
from mediacore.rtcp import ReportBlock

__all__ = [
    "RtpPacket",
    "ReceiveStats",
    "ReceiveStatistics",
    "SendStats",
    "SenderInfo",
    "MAX_CSRC",
    "ONE_BYTE_PROFILE",
    "TWO_BYTE_PROFILE",
    "is_rtcp",
]

#: Most CSRC identifiers a packet can carry (the 4-bit CC field).
MAX_CSRC: int = _rtp.MAX_CSRC
#: RFC 8285 header extension profile values.
ONE_BYTE_PROFILE: int = _rtp.ONE_BYTE_PROFILE
TWO_BYTE_PROFILE: int = _rtp.TWO_BYTE_PROFILE


def _check_uint(name: str, value: object, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be in 0..{(1 << bits) - 1}, got {value}")
    return value


def _check_bytes(name: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise ValueError(f"{name} must be bytes, got {type(value).__name__}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RtpPacket:
    """One RTP packet (RFC 3550 5.1). All fields are keyword-only.

    ``padding`` and ``extension`` are the P and X bits. Left as ``None`` they
    follow ``padding_size`` (P is set when it is not 0) and the extension
    fields (X is set when ``extension_profile`` or ``extension_data`` is
    non-empty); given explicitly they must agree with them.
    """

    version: int = 2
    padding: bool = None  # type: ignore[assignment]  # None: derived, see the class docstring
    extension: bool = None  # type: ignore[assignment]
    marker: bool = False
    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    csrc: tuple[int, ...] = ()
    payload: bytes = b""
    #: The 16-bit "defined by profile" field of the header extension (5.3.1).
    extension_profile: int = 0
    #: The header extension's data, a multiple of 4 bytes.
    extension_data: bytes = b""
    #: Padding octets at the end, including the count octet (0 when P is clear).
    padding_size: int = 0

    def __post_init__(self) -> None:
        setf = object.__setattr__
        if self.version != 2:
            raise ValueError(f"version must be 2 (RFC 3550), got {self.version!r}")
        setf(self, "marker", bool(self.marker))
        _check_uint("payload_type", self.payload_type, 7)
        _check_uint("sequence_number", self.sequence_number, 16)
        _check_uint("timestamp", self.timestamp, 32)
        _check_uint("ssrc", self.ssrc, 32)
        csrc = tuple(self.csrc)
        if len(csrc) > MAX_CSRC:
            raise ValueError(f"csrc holds at most {MAX_CSRC} identifiers, got {len(csrc)}")
        for i, c in enumerate(csrc):
            _check_uint(f"csrc[{i}]", c, 32)
        setf(self, "csrc", csrc)
        setf(self, "payload", _check_bytes("payload", self.payload))
        _check_uint("extension_profile", self.extension_profile, 16)
        ext = _check_bytes("extension_data", self.extension_data)
        if len(ext) % 4:
            raise ValueError(f"extension_data must be a multiple of 4 bytes, got {len(ext)}")
        if len(ext) > 4 * 0xFFFF:
            raise ValueError(f"extension_data must be at most {4 * 0xFFFF} bytes, got {len(ext)}")
        setf(self, "extension_data", ext)
        _check_uint("padding_size", self.padding_size, 8)
        if self.padding is None:
            setf(self, "padding", self.padding_size > 0)
        elif bool(self.padding) != (self.padding_size > 0):
            raise ValueError(
                f"padding={self.padding!r} disagrees with padding_size={self.padding_size} "
                "(the P bit is set exactly when padding_size >= 1)"
            )
        else:
            setf(self, "padding", bool(self.padding))
        if self.extension is None:
            setf(self, "extension", bool(self.extension_profile or ext))
        elif not self.extension and (self.extension_profile or ext):
            raise ValueError("extension=False but extension_profile/extension_data are set")
        else:
            setf(self, "extension", bool(self.extension))

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one RTP packet; ``ValueError`` says what is malformed."""
        # The native parser validates everything and fills the instance's
        # __dict__ itself (no __post_init__: there is nothing left to check).
        return _rtp.rtp_parse_into(cls, data)

    def serialize(self) -> bytes:
        """The packet's bytes (padding octets zero, then the count)."""
        return _rtp.rtp_serialize(
            self.marker,
            self.payload_type,
            self.sequence_number,
            self.timestamp,
            self.ssrc,
            list(self.csrc),
            self.payload,
            self.extension,
            self.extension_profile,
            self.extension_data,
            self.padding_size,
        )

    def __bytes__(self) -> bytes:
        return self.serialize()

    @property
    def header_size(self) -> int:
        """Bytes before the payload: fixed header, CSRCs and extension."""
        return 12 + 4 * len(self.csrc) + (4 + len(self.extension_data) if self.extension else 0)

    def extension_elements(self) -> list[tuple[int, bytes]]:
        """The RFC 8285 elements of the header extension as ``(id, value)`` pairs.

        Padding octets are skipped and a one-byte id of 15 ends the list (RFC
        8285 4.2). ``ValueError`` if there is no extension, if its profile is
        neither RFC 8285 form, or if an element runs past the end.
        """
        if not self.extension:
            raise ValueError("packet has no header extension")
        return _rtp.rtp_elements(self.extension_profile, self.extension_data)

    def with_extension_elements(self, elements: Iterable[tuple[int, bytes]]) -> RtpPacket:
        """A copy carrying ``elements`` (``(id, value)`` pairs) as an RFC 8285 extension.

        The one-byte form is used when every id is 1..14 and every value 1..16
        bytes long, the two-byte form otherwise (ids 1..255, values 0..255 bytes).
        """
        pairs: list[tuple[int, bytes]] = []
        for i, item in enumerate(elements):
            try:
                ident, value = item
            except (TypeError, ValueError):
                raise ValueError(f"elements[{i}] must be an (id, value) pair") from None
            if isinstance(ident, bool) or not isinstance(ident, int) or not 1 <= ident <= 255:
                raise ValueError(f"elements[{i}] id must be an int in 1..255, got {ident!r}")
            pairs.append((ident, _check_bytes(f"elements[{i}] value", value)))
        profile, data = _rtp.rtp_write_elements(pairs)
        return dataclasses.replace(self, extension=True, extension_profile=profile, extension_data=data)


def is_rtcp(data: bytes | bytearray | memoryview | Sequence[int]) -> bool:
    """Whether a datagram on a multiplexed RTP/RTCP port is RTCP (RFC 5761 section 4).

    RTCP packet types 192..223 occupy the second octet where RTP has the marker
    bit and payload types 64..95, which RTP must not use when multiplexing.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


# ---------------------------------------------------------------- statistics


@dataclasses.dataclass(frozen=True)
class ReceiveStatistics:
    """A snapshot of one source's reception state (RFC 3550 A.1/A.3/A.8 names)."""

    ssrc: int
    #: Out of probation: at least ``min_sequential`` packets arrived in sequence.
    valid: bool
    max_seq: int
    #: Count of sequence number wraps, shifted left 16 bits (A.1).
    cycles: int
    base_seq: int
    #: ``cycles + max_seq``: the extended highest sequence number.
    extended_max: int
    #: Valid packets received (duplicates count; A.1).
    received: int
    #: ``extended_max - base_seq + 1`` (0 before the source is valid).
    expected: int
    #: ``expected - received``, unclamped (negative with duplicates).
    lost: int
    #: Interarrival jitter in timestamp units (A.8).
    jitter: int
    #: Every packet handed to ``on_packet``.
    packets: int
    probation_dropped: int
    #: Packets refused as a large sequence jump that the next packet did not confirm.
    bad_sequence: int
    #: Sequence restarts (a large jump confirmed by the following packet).
    restarts: int
    #: Late packets (reordered or duplicated) that were still counted.
    late: int
    payload_octets: int
    have_sr: bool
    last_sr: int


def _int_arg(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


_I64 = (-(1 << 63), (1 << 63) - 1)


class ReceiveStats:
    """Reception statistics of one remote RTP source (RFC 3550 appendix A).

    Feed every packet of the source with ``on_packet(seq, timestamp,
    arrival_ns)`` (``arrival_ns`` from one monotonic clock, e.g.
    ``time.monotonic_ns()``), every SR it sends with ``on_sender_report``, and
    call ``report_block(now_ns)`` when sending an RR/SR: that closes the
    report interval (``fraction_lost`` covers the packets since the previous
    call). ``clock_rate`` is the payload format's RTP timestamp rate.
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        ssrc: int,
        clock_rate: int,
        *,
        min_sequential: int = 2,
        max_dropout: int = 3000,
        max_misorder: int = 100,
    ) -> None:
        self._native = _rtp.ReceiveStats(
            _int_arg("ssrc", ssrc, 0, 2**32 - 1),
            _int_arg("clock_rate", clock_rate, 1, 2**32 - 1),
            _int_arg("min_sequential", min_sequential, 1, 1000),
            _int_arg("max_dropout", max_dropout, 1, 32767),
            _int_arg("max_misorder", max_misorder, 1, 32767),
        )

    @property
    def ssrc(self) -> int:
        return self._native.ssrc

    def on_packet(
        self, sequence_number: int, timestamp: int, arrival_ns: int, payload_bytes: int = 0
    ) -> bool:
        """Account one packet; True if it is valid for statistics (A.1 update_seq)."""
        return bool(
            self._native.on_packet(
                _int_arg("sequence_number", sequence_number, 0, 65535),
                _int_arg("timestamp", timestamp, 0, 2**32 - 1),
                _int_arg("arrival_ns", arrival_ns, *_I64),
                _int_arg("payload_bytes", payload_bytes, 0, 2**63 - 1),
            )
        )

    def on_packets(
        self, sequence_numbers: Sequence[int], timestamps: Sequence[int], arrivals_ns: Sequence[int]
    ) -> list[bool]:
        """``on_packet`` for many packets in one native call (same validation by the binding)."""
        if not len(sequence_numbers) == len(timestamps) == len(arrivals_ns):
            raise ValueError("sequence_numbers, timestamps and arrivals_ns must have the same length")
        try:
            return [
                bool(v)
                for v in self._native.on_packets(list(sequence_numbers), list(timestamps), list(arrivals_ns))
            ]
        except TypeError as exc:
            raise ValueError(
                f"sequence numbers must be 0..65535, timestamps 0..2**32-1, arrivals int64: {exc}"
            ) from None

    def on_sender_report(self, ntp_timestamp: int, arrival_ns: int) -> None:
        """An SR from this source arrived: its NTP timestamp becomes LSR, ``arrival_ns`` starts DLSR."""
        self._native.on_sender_report(
            _int_arg("ntp_timestamp", ntp_timestamp, 0, 2**64 - 1), _int_arg("arrival_ns", arrival_ns, *_I64)
        )

    def report_block(self, now_ns: int) -> ReportBlock:
        """The report block about this source as of ``now_ns`` (A.3, 6.4.1); starts a new interval."""
        return ReportBlock._from_native(self._native.report_block(_int_arg("now_ns", now_ns, *_I64)))

    def statistics(self) -> ReceiveStatistics:
        return ReceiveStatistics(**self._native.snapshot())


@dataclasses.dataclass(frozen=True)
class SenderInfo:
    """The sender info of an SR (RFC 3550 6.4.1)."""

    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int


class SendStats:
    """What our SR reports about one stream we send (RFC 3550 6.4.1)."""

    __slots__ = ("_native",)

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self._native = _rtp.SendStats(
            _int_arg("ssrc", ssrc, 0, 2**32 - 1), _int_arg("clock_rate", clock_rate, 1, 2**32 - 1)
        )

    @property
    def ssrc(self) -> int:
        return self._native.ssrc

    def on_sent(self, timestamp: int, payload_bytes: int, now_ns: int) -> None:
        self._native.on_sent(
            _int_arg("timestamp", timestamp, 0, 2**32 - 1),
            _int_arg("payload_bytes", payload_bytes, 0, 2**63 - 1),
            _int_arg("now_ns", now_ns, *_I64),
        )

    def sender_info(self, ntp_now: int, now_ns: int) -> SenderInfo:
        """Sender info for an SR sent now: the RTP timestamp is extrapolated from the last packet sent."""
        return SenderInfo(
            *self._native.sender_info(
                _int_arg("ntp_now", ntp_now, 0, 2**64 - 1), _int_arg("now_ns", now_ns, *_I64)
            )
        )
