"""RTP parse + serialize: native in bulk against a plain-Python ``struct`` codec, side by side.

The workload is 1,000 real RTP packets: SIPp's shipped ``g711a.pcap`` (236
PCMA packets, 252 bytes each) repeated, with every fourth packet rewritten to
carry two CSRCs and an RFC 8285 one-byte header extension so the optional
header paths are exercised too.

- ``rtp-roundtrip-1000``: parse every packet and serialize it again. Ours is
  one native call over the list (``_rtp.rtp_reserialize_many``, the engine's
  per-packet C++ path, GIL released); the baseline is the same work in plain
  Python with ``struct`` (RFC 3550 checks included). Both must reproduce the
  input bytes exactly.
- ``rtp-parse-one``: the Python-level ``RtpPacket.parse`` of one packet (a
  frozen dataclass with bytes payload) against the ``struct`` parser building
  the same fields; this is the cost tools and tests pay, not the engine.
- ``rtcp-parse-compound``: ``mediacore.rtcp.parse`` of an SR + SDES + BYE
  datagram into dataclasses (no baseline; for scale).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from mediacore import _rtp, rtcp
from mediacore.rtp import RtpPacket

G711A = Path("/usr/share/sip-tester/g711a.pcap")
N_PACKETS = 1000


def _packets() -> list[bytes]:
    if G711A.exists():
        from tests.pcap import udp_datagrams

        base = [d.payload for d in udp_datagrams(G711A)]
    else:  # keep the benchmark runnable without sip-tester: synthetic PCMA packets
        base = [
            RtpPacket(
                payload_type=8,
                sequence_number=i,
                timestamp=240 * i,
                ssrc=0xDEE0EE8F,
                payload=bytes([0xD5]) * 240,
            ).serialize()
            for i in range(236)
        ]
    out = []
    for i in range(N_PACKETS):
        p = RtpPacket.parse(base[i % len(base)])
        if i % 4 == 0:
            p = RtpPacket(
                marker=p.marker,
                payload_type=p.payload_type,
                sequence_number=p.sequence_number,
                timestamp=p.timestamp,
                ssrc=p.ssrc,
                csrc=(0x11111111, 0x22222222),
                payload=p.payload,
            ).with_extension_elements([(1, b"\x30"), (3, b"\x01\x02\x03")])
        out.append(p.serialize())
    return out


PACKETS = _packets()
EXPECTED = b"".join(PACKETS)
_HDR = struct.Struct("!BBHII")


def py_parse(data: bytes) -> tuple:
    """RFC 3550 5.1 / 5.3.1 / A.1 parse with struct, as a careful pure-Python codec would."""
    if len(data) < 12:
        raise ValueError("short")
    b0, b1, seq, ts, ssrc = _HDR.unpack_from(data)
    if b0 >> 6 != 2:
        raise ValueError("version")
    cc = b0 & 0x0F
    pos = 12 + 4 * cc
    if len(data) < pos:
        raise ValueError("csrc")
    csrc = struct.unpack_from(f"!{cc}I", data, 12)
    profile, ext = 0, b""
    if b0 & 0x10:
        if len(data) < pos + 4:
            raise ValueError("extension")
        profile, words = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + 4 * words
        if len(data) < end:
            raise ValueError("extension")
        ext = data[pos + 4 : end]
        pos = end
    pad = 0
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or pad > len(data) - pos:
            raise ValueError("padding")
    return (
        bool(b1 & 0x80),
        b1 & 0x7F,
        seq,
        ts,
        ssrc,
        csrc,
        data[pos : len(data) - pad],
        bool(b0 & 0x10),
        profile,
        ext,
        pad,
    )


def py_serialize(marker, pt, seq, ts, ssrc, csrc, payload, extension, profile, ext, pad) -> bytes:
    b0 = 0x80 | (0x20 if pad else 0) | (0x10 if extension else 0) | len(csrc)
    parts = [_HDR.pack(b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)]
    if csrc:
        parts.append(struct.pack(f"!{len(csrc)}I", *csrc))
    if extension:
        parts.append(struct.pack("!HH", profile, len(ext) // 4))
        parts.append(ext)
    parts.append(payload)
    if pad:
        parts.append(bytes(pad - 1) + bytes([pad]))
    return b"".join(parts)


def py_reserialize_many(packets: list[bytes]) -> bytes:
    return b"".join([py_serialize(*py_parse(p)) for p in packets])


def test_roundtrip_bulk_native(benchmark):
    benchmark.group = "rtp-roundtrip-1000"
    benchmark.extra_info["packets"] = N_PACKETS
    out = benchmark(_rtp.rtp_reserialize_many, PACKETS)
    assert out == EXPECTED


def test_roundtrip_bulk_python_struct(benchmark):
    benchmark.group = "rtp-roundtrip-1000"
    benchmark.extra_info["role"] = "baseline"
    benchmark.extra_info["packets"] = N_PACKETS
    out = benchmark(py_reserialize_many, PACKETS)
    assert out == EXPECTED


@pytest.mark.parametrize("which", [0, 1], ids=["plain", "csrc+ext"])
def test_parse_one_rtppacket(benchmark, which):
    data = PACKETS[1 if which == 0 else 0]
    benchmark.group = f"rtp-parse-one-{'plain' if which == 0 else 'csrc+ext'}"
    p = benchmark(RtpPacket.parse, data)
    assert p.serialize() == data
    assert (p.marker, p.payload_type, p.sequence_number, p.timestamp, p.ssrc, p.csrc, p.payload) == py_parse(
        data
    )[:7]


@pytest.mark.parametrize("which", [0, 1], ids=["plain", "csrc+ext"])
def test_parse_one_python_struct(benchmark, which):
    data = PACKETS[1 if which == 0 else 0]
    benchmark.group = f"rtp-parse-one-{'plain' if which == 0 else 'csrc+ext'}"
    benchmark.extra_info["role"] = "baseline"
    fields = benchmark(py_parse, data)
    assert py_serialize(*fields) == data


def test_rtcp_parse_compound(benchmark):
    sr = rtcp.SenderReport(
        ssrc=1,
        ntp_timestamp=1 << 40,
        rtp_timestamp=160,
        packet_count=10,
        octet_count=1600,
        reports=tuple(rtcp.ReportBlock(ssrc=i, jitter=i) for i in range(4)),
    )
    sdes = rtcp.SourceDescription(
        chunks=(rtcp.SdesChunk(ssrc=1, items=(rtcp.SdesItem.cname("agent@hotline"),)),)
    )
    data = rtcp.serialize([sr, sdes, rtcp.Goodbye(sources=(1,), reason="bye")])
    benchmark.group = "rtcp-parse-compound"
    packets = benchmark(rtcp.parse, data)
    assert packets[0] == sr and len(packets) == 3
