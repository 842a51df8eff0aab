"""RTP packets: hand-assembled bytes, SIPp's shipped captures, a plain-Python model, bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediacore import rtp
from mediacore.rtp import RtpPacket
from tests.pcap import udp_datagrams

SIPP_PCAPS = Path("/usr/share/sip-tester")


# ---------------------------------------------------------------- helpers


def udp_payloads(path: Path) -> list[bytes]:
    return [d.payload for d in udp_datagrams(path)]


def model_parse(data: bytes) -> dict:
    """RFC 3550 5.1/5.3.1/A.1 written out plainly: the oracle for the native parser."""
    if len(data) < 12:
        raise ValueError("short")
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    if b0 >> 6 != 2:
        raise ValueError("version")
    cc = b0 & 0x0F
    pos = 12 + 4 * cc
    if len(data) < pos:
        raise ValueError("csrc")
    csrc = struct.unpack(f"!{cc}I", data[12:pos])
    profile, ext = 0, b""
    if b0 & 0x10:
        if len(data) < pos + 4:
            raise ValueError("extension")
        profile, words = struct.unpack("!HH", data[pos : pos + 4])
        if len(data) < pos + 4 + 4 * words:
            raise ValueError("extension")
        ext = data[pos + 4 : pos + 4 + 4 * words]
        pos += 4 + 4 * words
    pad = 0
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or pad > len(data) - pos:
            raise ValueError("padding")
    return dict(
        version=2,
        padding=bool(b0 & 0x20),
        extension=bool(b0 & 0x10),
        marker=bool(b1 & 0x80),
        payload_type=b1 & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        csrc=csrc,
        payload=data[pos : len(data) - pad],
        extension_profile=profile,
        extension_data=ext,
        padding_size=pad,
    )


FIELDS = (
    "version",
    "padding",
    "extension",
    "marker",
    "payload_type",
    "sequence_number",
    "timestamp",
    "ssrc",
    "csrc",
    "payload",
    "extension_profile",
    "extension_data",
    "padding_size",
)


def fields(p: RtpPacket) -> dict:
    return {k: getattr(p, k) for k in FIELDS}


# A packet using every header feature: V=2 P=1 X=1 CC=2, M=1 PT=96, two CSRCs,
# an RFC 8285 one-byte extension (id 1 = 0xAA, id 2 = BB CC DD, 2 padding
# octets), payload "hello", 4 padding octets.
FULL = (
    bytes.fromhex("b2e01234deadbeef010203040000000a0000000bbede000210aa22bbccdd0000")
    + b"hello"
    + bytes([0, 0, 0, 4])
)


# ---------------------------------------------------------------- exact parses


def test_hand_assembled_packet_with_every_feature():
    p = RtpPacket.parse(FULL)
    assert p == RtpPacket(
        marker=True,
        payload_type=96,
        sequence_number=0x1234,
        timestamp=0xDEADBEEF,
        ssrc=0x01020304,
        csrc=(10, 11),
        payload=b"hello",
        extension_profile=0xBEDE,
        extension_data=bytes.fromhex("10aa22bbccdd0000"),
        padding_size=4,
    )
    assert p.padding and p.extension and p.version == 2
    assert p.header_size == 32
    assert p.extension_elements() == [(1, b"\xaa"), (2, b"\xbb\xcc\xdd")]
    assert p.serialize() == FULL
    assert bytes(p) == FULL


def test_minimal_header_and_rfc3551_pcmu_frame():
    data = bytes.fromhex("80000001000000a012345678") + b"\xff" * 160
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (0, 1, 160, 0x12345678)
    assert not (p.padding or p.extension or p.marker) and p.csrc == () and p.padding_size == 0
    assert p.payload == b"\xff" * 160
    assert p.serialize() == data


@pytest.mark.skipif(not (SIPP_PCAPS / "g711a.pcap").exists(), reason="sip-tester's g711a.pcap not installed")
def test_sipp_g711a_capture_parses_and_reserializes_byte_exact():
    packets = udp_payloads(SIPP_PCAPS / "g711a.pcap")
    assert len(packets) == 236
    parsed = [RtpPacket.parse(d) for d in packets]
    assert {p.payload_type for p in parsed} == {8}  # PCMA
    assert len({p.ssrc for p in parsed}) == 1
    assert {len(p.payload) for p in parsed} == {240}  # 30 ms at 8 kHz
    for a, b in zip(parsed, parsed[1:], strict=False):
        assert b.sequence_number == (a.sequence_number + 1) & 0xFFFF
        assert b.timestamp == (a.timestamp + 240) & 0xFFFFFFFF
    assert parsed[0].marker and not any(p.marker for p in parsed[1:])
    assert [p.serialize() for p in parsed] == packets
    assert [model_parse(d) for d in packets] == [fields(p) for p in parsed]
    assert rtp._rtp.rtp_reserialize_many(packets) == b"".join(packets)


@pytest.mark.skipif(
    not (SIPP_PCAPS / "dtmf_2833_1.pcap").exists(), reason="sip-tester's DTMF pcaps not installed"
)
def test_sipp_rfc2833_capture():
    packets = [RtpPacket.parse(d) for d in udp_payloads(SIPP_PCAPS / "dtmf_2833_1.pcap")]
    assert len(packets) == 10
    assert {p.payload_type for p in packets} == {101}
    assert {len(p.payload) for p in packets} == {4}
    assert {p.payload[0] for p in packets} == {1}  # event "1" (RFC 4733)
    ends = [p for p in packets if p.payload[1] & 0x80]
    assert len(ends) == 3 and len({p.timestamp for p in packets}) == 1  # one event, one timestamp


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "shorter than the 12-byte"),
        (bytes.fromhex("8000000100000000000000"), "shorter than the 12-byte"),
        (bytes.fromhex("400000010000000000000000"), "version is not 2"),
        (bytes.fromhex("000000010000000000000000"), "version is not 2"),
        (bytes.fromhex("c00000010000000000000000"), "version is not 2"),
        (bytes.fromhex("810000010000000000000000"), "CSRC count exceeds"),
        (bytes.fromhex("8f000001000000000000000000000001"), "CSRC count exceeds"),
        (bytes.fromhex("900000010000000000000000"), "header extension exceeds"),
        (bytes.fromhex("900000010000000000000000bede"), "header extension exceeds"),
        (bytes.fromhex("900000010000000000000000bede0001"), "header extension exceeds"),
        (bytes.fromhex("900000010000000000000000bede0001000000"), "header extension exceeds"),
        (bytes.fromhex("a0000001000000000000000000"), "padding count is 0"),
        (bytes.fromhex("a000000100000000000000000003"), "padding count is 0 or exceeds"),
        (bytes.fromhex("a00000010000000000000000"), "padding count is 0 or exceeds"),
        # the padding may not eat into the extension
        (bytes.fromhex("b00000010000000000000000bede0000") + b"\x05", "padding count is 0 or exceeds"),
    ],
)
def test_malformed_packets_raise_valueerror_saying_why(data, message):
    with pytest.raises(ValueError, match=message):
        RtpPacket.parse(data)


def test_every_truncation_of_a_valid_packet_is_refused_or_consistent():
    for n in range(len(FULL)):
        cut = FULL[:n]
        try:
            expected = model_parse(cut)
        except ValueError:
            with pytest.raises(ValueError):
                RtpPacket.parse(cut)
        else:
            assert fields(RtpPacket.parse(cut)) == expected


def test_padding_may_be_the_whole_body():
    p = RtpPacket.parse(bytes.fromhex("a0000001000000000000000000000004"))
    assert p.payload == b"" and p.padding_size == 4


def test_accepts_bytes_like_and_rejects_other_types():
    assert RtpPacket.parse(bytearray(FULL)) == RtpPacket.parse(memoryview(FULL)) == RtpPacket.parse(FULL)
    with pytest.raises(ValueError, match="C-contiguous"):
        RtpPacket.parse(memoryview(FULL + FULL)[::2])
    with pytest.raises(TypeError):
        RtpPacket.parse("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(version=1), "version must be 2"),
        (dict(payload_type=128), "payload_type must be in 0..127"),
        (dict(payload_type=-1), "payload_type must be in 0..127"),
        (dict(sequence_number=65536), "sequence_number must be in 0..65535"),
        (dict(timestamp=1 << 32), "timestamp must be in"),
        (dict(ssrc=-1), "ssrc must be in"),
        (dict(ssrc=1.5), "ssrc must be an int"),
        (dict(csrc=tuple(range(16))), "at most 15"),
        (dict(csrc=(1 << 32,)), r"csrc\[0\] must be in"),
        (dict(payload="text"), "payload must be bytes"),
        (dict(extension_data=b"abc"), "multiple of 4"),
        (dict(extension_profile=0x10000), "extension_profile must be in"),
        (dict(padding_size=256), "padding_size must be in 0..255"),
        (dict(padding=True), "disagrees with padding_size=0"),
        (dict(padding=False, padding_size=4), "disagrees with padding_size=4"),
        (dict(extension=False, extension_data=b"abcd"), "extension=False but"),
    ],
)
def test_constructor_validates_each_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RtpPacket(**kwargs)


def test_flags_are_derived_when_left_out():
    p = RtpPacket(padding_size=2, extension_profile=0xBEDE)
    assert p.padding and p.extension
    assert RtpPacket(extension=True).serialize() == bytes.fromhex("90000000000000000000000000000000")


# ---------------------------------------------------------------- RFC 8285 elements


def test_two_byte_elements_round_trip_and_zero_length_values():
    p = RtpPacket().with_extension_elements([(1, b""), (200, b"x" * 20), (3, b"abc")])
    assert p.extension_profile == rtp.TWO_BYTE_PROFILE
    assert RtpPacket.parse(p.serialize()).extension_elements() == [(1, b""), (200, b"x" * 20), (3, b"abc")]


def test_one_byte_id_15_stops_and_overrun_raises():
    stop = RtpPacket(extension_profile=0xBEDE, extension_data=bytes.fromhex("10aaf020bb000000"))
    assert stop.extension_elements() == [(1, b"\xaa")]
    overrun = RtpPacket(extension_profile=0xBEDE, extension_data=bytes.fromhex("10aa3fbb"))
    with pytest.raises(ValueError, match="runs past the end"):
        overrun.extension_elements()
    two_byte_appbits = RtpPacket(extension_profile=0x100F, extension_data=bytes.fromhex("0702abcd"))
    assert two_byte_appbits.extension_elements() == [(7, b"\xab\xcd")]
    with pytest.raises(ValueError, match="neither the RFC 8285"):
        RtpPacket(extension_profile=0x1234, extension_data=b"\x00" * 4).extension_elements()
    with pytest.raises(ValueError, match="no header extension"):
        RtpPacket().extension_elements()
    with pytest.raises(ValueError, match="id must be an int in 1..255"):
        RtpPacket().with_extension_elements([(0, b"a")])
    with pytest.raises(ValueError, match="at most 255 bytes"):
        RtpPacket().with_extension_elements([(1, b"a" * 256)])


def test_is_rtcp_demultiplexing_rfc5761():
    assert rtp.is_rtcp(bytes([0x80, 200]))  # SR
    assert rtp.is_rtcp(bytes([0x81, 201]))  # RR
    assert not rtp.is_rtcp(FULL)
    assert not rtp.is_rtcp(bytes([0x80, 0x00])) and not rtp.is_rtcp(b"\x80")


# ---------------------------------------------------------------- properties

u32 = st.integers(0, 2**32 - 1)


@st.composite
def packets(draw) -> RtpPacket:
    extension = draw(st.booleans())
    words = draw(st.integers(0, 8))
    return RtpPacket(
        marker=draw(st.booleans()),
        payload_type=draw(st.integers(0, 127)),
        sequence_number=draw(st.integers(0, 65535)),
        timestamp=draw(u32),
        ssrc=draw(u32),
        csrc=tuple(draw(st.lists(u32, max_size=15))),
        payload=draw(st.binary(max_size=300)),
        extension=extension,
        extension_profile=draw(st.integers(0, 65535)) if extension else 0,
        extension_data=draw(st.binary(min_size=4 * words, max_size=4 * words)) if extension else b"",
        padding_size=draw(st.integers(0, 255)),
    )


@settings(max_examples=300, deadline=None)
@given(packets())
def test_parse_of_serialize_is_identity(p):
    data = p.serialize()
    assert len(data) == p.header_size + len(p.payload) + p.padding_size
    assert RtpPacket.parse(data) == p
    assert model_parse(data) == fields(p)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80).map(lambda b: bytes([0x80 | (b[0] & 0x3F)]) + b[1:] if b else b))
def test_native_parser_agrees_with_the_plain_python_model_on_arbitrary_bytes(data):
    try:
        expected = model_parse(data)
    except ValueError:
        with pytest.raises(ValueError):
            RtpPacket.parse(data)
        return
    p = RtpPacket.parse(data)
    assert fields(p) == expected
    # Re-serializing gives the same bytes except padding octets, normalised to zero.
    out = p.serialize()
    body = len(data) - p.padding_size
    assert out[:body] == data[:body] and len(out) == len(data)
    if p.padding_size:
        assert out[-1] == data[-1] and out[body:-1] == bytes(p.padding_size - 1)
