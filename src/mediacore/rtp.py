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

__all__ = [
    "RtpPacket",
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

_FIELDS = (
    "version", "padding", "extension", "marker", "payload_type", "sequence_number", "timestamp", "ssrc",
    "csrc", "payload", "extension_profile", "extension_data", "padding_size",
)


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
        fields = _rtp.rtp_parse(data)
        # The native parser has validated everything: skip __post_init__.
        packet = cls.__new__(cls)
        packet.__dict__.update(zip(_FIELDS, fields))
        return packet

    def serialize(self) -> bytes:
        """The packet's bytes (padding octets zero, then the count)."""
        return _rtp.rtp_serialize(
            self.marker, self.payload_type, self.sequence_number, self.timestamp, self.ssrc, list(self.csrc),
            self.payload, self.extension, self.extension_profile, self.extension_data, self.padding_size,
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
