"""RTCP: hand-assembled RFC 3550 packets, A.2 validity checks, round trips, tshark as an outside decoder."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediacore import rtcp
from mediacore.rtcp import (
    App,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    SdesChunk,
    SdesItem,
    SdesType,
    SenderReport,
    SourceDescription,
    UnknownPacket,
)

# ---------------------------------------------------------------- hand assembly (independent of the builder)


def header(pt: int, count: int, body: bytes, padding: int = 0) -> bytes:
    if padding:
        body = body + bytes(padding - 1) + bytes([padding])
    words = (4 + len(body)) // 4 - 1
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, pt, words) + body


def block_bytes(ssrc, fraction, lost, highest, jitter, lsr, dlsr) -> bytes:
    return (
        struct.pack("!IB", ssrc, fraction)
        + (lost & 0xFFFFFF).to_bytes(3, "big")
        + struct.pack("!IIII", highest, jitter, lsr, dlsr)
    )


def sdes_chunk(ssrc: int, items: list[tuple[int, bytes]]) -> bytes:
    raw = b"".join(bytes([t, len(v)]) + v for t, v in items)
    return struct.pack("!I", ssrc) + raw + bytes(4 - len(raw) % 4)


SR_BODY = struct.pack("!IIIIII", 0x11223344, 0xE1234567, 0x80000000, 160000, 1000, 172000)
BLOCK = block_bytes(0x55667788, 64, -3, 0x0001_0005, 42, 0x45670000, 0x00018000)
SR = header(200, 1, SR_BODY + BLOCK)
CNAME = sdes_chunk(0x11223344, [(1, b"alice@example.com"), (6, b"hotline")])
SDES = header(202, 1, CNAME)
BYE = header(203, 2, struct.pack("!II", 1, 2) + bytes([6]) + b"hangup" + b"\0")
APP = header(204, 3, struct.pack("!I", 7) + b"HTLN" + b"data")
RTPFB = header(205, 1, struct.pack("!II", 1, 2) + b"\x00\x10\x00\x01")  # a generic NACK (RFC 4585)


def test_hand_assembled_sr_sdes_bye_app_compound():
    data = SR + SDES + BYE + APP + RTPFB
    packets = rtcp.parse(data)
    assert packets == [
        SenderReport(
            ssrc=0x11223344,
            ntp_timestamp=0xE1234567_80000000,
            rtp_timestamp=160000,
            packet_count=1000,
            octet_count=172000,
            reports=(
                ReportBlock(
                    ssrc=0x55667788,
                    fraction_lost=64,
                    cumulative_lost=-3,
                    highest_sequence=0x10005,
                    jitter=42,
                    last_sr=0x45670000,
                    delay_since_last_sr=0x18000,
                ),
            ),
        ),
        SourceDescription(
            chunks=(
                SdesChunk(
                    ssrc=0x11223344,
                    items=(
                        SdesItem(type=SdesType.CNAME, value=b"alice@example.com"),
                        SdesItem(type=SdesType.TOOL, value=b"hotline"),
                    ),
                ),
            )
        ),
        Goodbye(sources=(1, 2), reason=b"hangup"),
        App(subtype=3, ssrc=7, name=b"HTLN", data=b"data"),
        UnknownPacket(packet_type=205, count=1, body=struct.pack("!II", 1, 2) + b"\x00\x10\x00\x01"),
    ]
    assert packets[0].reports[0].loss_ratio == 0.25
    assert packets[1].chunks[0].get(SdesType.CNAME) == b"alice@example.com"
    assert packets[1].chunks[0].get(SdesType.NOTE) is None
    # Byte-exact rebuild, packet by packet and as a compound.
    assert [p.serialize() for p in packets] == [SR, SDES, BYE, APP, RTPFB]
    assert rtcp.serialize(packets) == data


def test_empty_rr_is_the_minimal_compound():
    rr = header(201, 0, struct.pack("!I", 9))
    assert rtcp.parse(rr) == [ReceiverReport(ssrc=9)]
    assert ReceiverReport(ssrc=9).serialize() == rr == bytes.fromhex("80c9000100000009")


def test_sdes_every_item_type_priv_and_empty_chunk():
    items = [(t, f"v{t}".encode()) for t in range(1, 8)] + [(8, bytes([3]) + b"pfx" + b"value")]
    data = header(201, 0, struct.pack("!I", 1)) + header(202, 2, sdes_chunk(1, items) + sdes_chunk(2, []))
    _, sdes = rtcp.parse(data)
    chunk, empty = sdes.chunks
    assert [it.type for it in chunk.items] == list(range(1, 9))
    assert chunk.items[7] == SdesItem(type=SdesType.PRIV, prefix=b"pfx", value=b"value")
    assert empty == SdesChunk(ssrc=2, items=())
    assert rtcp.serialize([ReceiverReport(ssrc=1), sdes]) == data
    # The chunk with no items is SSRC + 4 null octets.
    assert sdes_chunk(2, []) == b"\0\0\0\x02\0\0\0\0"


@pytest.mark.parametrize("reason_len", range(0, 9))
def test_bye_reason_padding_to_word_boundary(reason_len):
    reason = b"x" * reason_len
    data = header(201, 0, b"\0\0\0\1") + header(
        203, 1, b"\0\0\0\5" + bytes([reason_len]) + reason + bytes((-(1 + reason_len)) % 4)
    )
    assert rtcp.parse(data)[1] == Goodbye(sources=(5,), reason=reason)
    assert rtcp.serialize([ReceiverReport(ssrc=1), Goodbye(sources=(5,), reason=reason)]) == data


def test_bye_without_reason_differs_from_empty_reason():
    assert Goodbye(sources=(5,)).serialize() == header(203, 1, b"\0\0\0\5")
    assert Goodbye(sources=(5,), reason=b"").serialize() == header(203, 1, b"\0\0\0\5" + b"\0\0\0\0")
    assert rtcp.parse(Goodbye(sources=(5,), reason="").serialize(), reduced_size=True) == [
        Goodbye(sources=(5,), reason=b"")
    ]


def test_padding_on_the_last_packet_only():
    data = SR + header(202, 1, CNAME, padding=8)
    assert rtcp.parse(data) == rtcp.parse(SR + SDES)
    assert rtcp.serialize(rtcp.parse(SR + SDES), padding=8) == data
    with pytest.raises(ValueError, match="padding bit set on a packet that is not the last"):
        rtcp.parse(header(200, 1, SR_BODY + BLOCK, padding=4) + SDES)


def test_report_blocks_at_the_31_limit_and_profile_extension():
    blocks = tuple(
        ReportBlock(ssrc=i, cumulative_lost=-(1 << 23) if i % 2 else (1 << 23) - 1) for i in range(31)
    )
    sr = SenderReport(ssrc=1, reports=blocks, profile_extension=b"EXT!" * 2)
    assert rtcp.parse(sr.serialize()) == [sr]
    with pytest.raises(ValueError, match="at most 31 blocks"):
        ReceiverReport(ssrc=1, reports=blocks + (ReportBlock(ssrc=99),))


# ---------------------------------------------------------------- malformed input


def _with_word(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt) :]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "too short"),
        (SR[:3], "too short"),
        (SR + b"\0\0", "too short"),
        (bytes([0x40]) + SR[1:], "version is not 2"),
        (SR + bytes([0x40]) + SDES[1:], "version is not 2"),
        (SDES + SR, "does not start with SR or RR"),
        (APP, "does not start with SR or RR"),
        (SR[:-4], "length field runs past"),
        (_with_word(SR, 2, "!H", 100), "length field runs past"),
        (
            header(200, 1, SR_BODY + BLOCK, padding=4) + SDES,
            "padding bit set on a packet that is not the last",
        ),
        (SR + header(202, 1, CNAME, padding=4)[:-1] + b"\0", "padding count is 0"),
        (SR + header(202, 1, CNAME, padding=4)[:-1] + b"\x03", "not a multiple of 4"),
        (
            header(201, 0, b"\0\0\0\1")[:0] + bytes([0xA0, 201, 0, 1]) + b"\0\0\0\x08",
            "larger than the packet",
        ),
        (header(200, 2, SR_BODY + BLOCK), "shorter than its count field"),
        (header(201, 1, b"\0\0\0\1"), "shorter than its count field"),
        (SR + header(202, 2, CNAME), "malformed SDES"),  # count says 2 chunks, 1 present
        (SR + header(202, 0, CNAME), "malformed SDES"),  # data after the announced chunks
        (
            SR + header(202, 1, struct.pack("!I", 1) + bytes([1, 10]) + b"ab"),
            "malformed SDES",
        ),  # item overrun
        (
            SR + header(202, 1, struct.pack("!I", 1) + bytes([1, 2]) + b"ab"),
            "malformed SDES",
        ),  # no terminator
        (
            SR + header(202, 1, struct.pack("!I", 1) + bytes([1, 1]) + b"a" + b"\x07"),
            "malformed SDES",
        ),  # junk pad
        (
            SR + header(202, 1, struct.pack("!I", 1) + bytes([8, 2, 5, 0])),
            "malformed SDES",
        ),  # PRIV prefix overrun
        (SR + header(203, 1, b"\0\0\0\5" + bytes([9]) + b"abc"), "malformed BYE"),  # reason overrun
        (SR + header(203, 1, b"\0\0\0\5" + bytes([2]) + b"ab\x01"), "malformed BYE"),  # non-null padding
        (
            SR + header(203, 1, b"\0\0\0\5" + bytes([2]) + b"ab\0" + b"\0\0\0\0"),
            "malformed BYE",
        ),  # extra word
        (SR + header(203, 2, b"\0\0\0\5"), "shorter than its count field"),
        (SR + header(204, 0, b"\0\0\0\5"), "APP packet shorter"),
    ],
)
def test_malformed_datagrams_raise_valueerror_saying_why(data, message):
    with pytest.raises(ValueError, match=message):
        rtcp.parse(data)


def test_reduced_size_rtcp_accepts_any_first_packet():
    assert rtcp.parse(APP, reduced_size=True) == [App(subtype=3, ssrc=7, name=b"HTLN", data=b"data")]
    assert rtcp.serialize([Goodbye(sources=(1,))], reduced_size=True) == header(203, 1, b"\0\0\0\1")
    with pytest.raises(ValueError, match="must start with a SenderReport or ReceiverReport"):
        rtcp.serialize([Goodbye(sources=(1,))])


def test_every_truncation_is_refused():
    data = SR + SDES + BYE
    for n in range(len(data)):
        if n in (len(SR), len(SR + SDES)):
            continue  # these prefixes are complete compound packets
        with pytest.raises(ValueError):
            rtcp.parse(data[:n])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ReportBlock(ssrc=1, fraction_lost=256), "fraction_lost must be in 0..255"),
        (lambda: ReportBlock(ssrc=1, cumulative_lost=1 << 23), "cumulative_lost must be an int in"),
        (lambda: ReportBlock(ssrc=-1), "ssrc must be in"),
        (lambda: SenderReport(ssrc=1, ntp_timestamp=1 << 64), "ntp_timestamp must be in"),
        (lambda: SenderReport(ssrc=1, profile_extension=b"abc"), "multiple of 4"),
        (lambda: ReceiverReport(ssrc=1, reports=[1]), r"reports\[0\] must be a ReportBlock"),
        (lambda: ReceiverReport(ssrc=1, reports=5), "reports must be a sequence"),
        (lambda: SdesItem(type=0), "type must be an int in 1..255"),
        (lambda: SdesItem(type=1, value=b"x" * 256), "at most 255 bytes"),
        (lambda: SdesItem(type=8, prefix=b"p" * 100, value=b"v" * 155), "PRIV item must fit 255 bytes"),
        (lambda: SdesItem(type=1, prefix=b"p"), "prefix is only for PRIV"),
        (lambda: SourceDescription(chunks=[SdesChunk(ssrc=i) for i in range(32)]), "at most 31"),
        (lambda: Goodbye(sources=range(32)), "at most 31"),
        (lambda: Goodbye(reason=b"r" * 256), "at most 255 bytes"),
        (lambda: App(name=b"ABC"), "exactly 4 bytes"),
        (lambda: App(subtype=32), "subtype must be in 0..31"),
        (lambda: App(data=b"abc"), "multiple of 4"),
        (lambda: UnknownPacket(packet_type=200), "has its own class"),
        (lambda: UnknownPacket(packet_type=205, body=b"ab"), "multiple of 4"),
        (lambda: rtcp.serialize([]), "must not be empty"),
        (lambda: rtcp.serialize([ReceiverReport(ssrc=1)], padding=3), "multiple of 4"),
        (lambda: rtcp.serialize([ReceiverReport(ssrc=1), "x"]), r"packets\[1\] is not an RTCP packet"),
    ],
)
def test_constructors_and_builders_validate(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_text_is_utf8_encoded():
    item = SdesItem(type=SdesType.NAME, value="Zoë")
    assert item.value == "Zoë".encode()
    assert Goodbye(reason="über").reason == "über".encode()


# ---------------------------------------------------------------- NTP and RTT


def test_ntp_conversions():
    assert rtcp.ntp_from_unix_ns(0) == 2208988800 << 32
    assert rtcp.ntp_from_unix_ns(500_000_000) == (2208988800 << 32) | 0x80000000
    assert rtcp.ntp_from_unix_ns(-1_000_000_000) == 2208988799 << 32
    assert rtcp.unix_ns_from_ntp((2208988800 << 32) | 0x40000000) == 250_000_000
    assert rtcp.ntp_middle32(0x0000B710_80000000) == 0xB7108000
    for ns in (0, 1, 999_999_999, 1_700_000_000_123_456_789):
        back = rtcp.unix_ns_from_ntp(rtcp.ntp_from_unix_ns(ns))
        assert 0 <= ns - back <= 1  # NTP fractions are 0.23 ns: at most one ns lost by flooring


def test_rfc3550_figure_2_round_trip_time():
    # RFC 3550 6.4.1, Figure 2: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
    # DLSR = 0x0005:4000 (5.250 s): RTT = 0x0006:2000 = 6.125 s.
    block = ReportBlock(ssrc=1, last_sr=0xB7052000, delay_since_last_sr=0x00054000)
    arrival_ntp = 0xB710_8000 << 16
    assert rtcp.round_trip_time(arrival_ntp, block) == 6.125
    assert rtcp.round_trip_time(arrival_ntp, ReportBlock(ssrc=1)) is None  # no LSR yet
    early = ReportBlock(ssrc=1, last_sr=0xB7052000, delay_since_last_sr=0x00100000)
    assert rtcp.round_trip_time(arrival_ntp, early) is None  # negative: clocks disagree


# ---------------------------------------------------------------- properties

u32 = st.integers(0, 2**32 - 1)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(1 << 23), (1 << 23) - 1),
    highest_sequence=u32,
    jitter=u32,
    last_sr=u32,
    delay_since_last_sr=u32,
)
words = st.integers(0, 4).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))
sender_reports = st.builds(
    SenderReport,
    ssrc=u32,
    ntp_timestamp=st.integers(0, 2**64 - 1),
    rtp_timestamp=u32,
    packet_count=u32,
    octet_count=u32,
    reports=st.lists(blocks, max_size=31).map(tuple),
    profile_extension=words,
)
receiver_reports = st.builds(
    ReceiverReport, ssrc=u32, reports=st.lists(blocks, max_size=31).map(tuple), profile_extension=words
)
plain_items = st.builds(
    SdesItem, type=st.sampled_from([t for t in range(1, 256) if t != 8]), value=st.binary(max_size=255)
)
priv_items = st.binary(max_size=100).flatmap(
    lambda prefix: st.builds(
        SdesItem, type=st.just(8), prefix=st.just(prefix), value=st.binary(max_size=254 - len(prefix))
    )
)
chunks = st.builds(SdesChunk, ssrc=u32, items=st.lists(plain_items | priv_items, max_size=6).map(tuple))
sdes = st.builds(SourceDescription, chunks=st.lists(chunks, max_size=31).map(tuple))
byes = st.builds(
    Goodbye, sources=st.lists(u32, max_size=31).map(tuple), reason=st.none() | st.binary(max_size=255)
)
apps = st.builds(
    App, subtype=st.integers(0, 31), ssrc=u32, name=st.binary(min_size=4, max_size=4), data=words
)
unknown = st.builds(
    UnknownPacket,
    packet_type=st.integers(205, 255) | st.integers(0, 199),
    count=st.integers(0, 31),
    body=words,
)
any_packet = sender_reports | receiver_reports | sdes | byes | apps | unknown


@pytest.mark.parametrize(
    "strategy",
    [sender_reports, receiver_reports, sdes, byes, apps, unknown],
    ids=["SR", "RR", "SDES", "BYE", "APP", "other"],
)
def test_each_type_round_trips(strategy):
    @settings(max_examples=100, deadline=None)
    @given(strategy, st.sampled_from([0, 4, 8, 252]))
    def run(packet, padding):
        data = packet.serialize(padding=padding)
        assert len(data) % 4 == 0
        assert rtcp.parse(data, reduced_size=True) == [packet]
        if padding == 0:
            assert rtcp.serialize(rtcp.parse(data, reduced_size=True), reduced_size=True) == data

    run()


@settings(max_examples=80, deadline=None)
@given(sender_reports | receiver_reports, st.lists(any_packet, max_size=5), st.sampled_from([0, 4, 16]))
def test_compound_round_trips(first, rest, padding):
    packets = [first, *rest]
    data = rtcp.serialize(packets, padding=padding)
    assert rtcp.parse(data) == packets


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_datagrams_are_refused_or_canonical(data):
    """Whatever parse accepts re-serializes to the same bytes (no padding involved)."""
    base = bytearray(data.draw(st.sampled_from([SR + SDES + BYE + APP + RTPFB, SR + SDES, SR])))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    blob = bytes(base[:cut])
    try:
        packets = rtcp.parse(blob)
    except ValueError:
        return
    if not any(blob[i] & 0x20 for i in _header_offsets(blob)):
        assert rtcp.serialize(packets) == blob


def _header_offsets(blob: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(blob):
        out.append(pos)
        pos += 4 * (struct.unpack("!H", blob[pos + 2 : pos + 4])[0] + 1)
    return out


# ---------------------------------------------------------------- an outside decoder: tshark


def _pcap(datagrams: list[bytes], port: int) -> bytes:
    """Classic pcap, Ethernet/IPv4/UDP 127.0.0.1 -> 127.0.0.1:port, checksums zero (valid for UDP/IPv4)."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, d in enumerate(datagrams):
        udp = struct.pack("!HHHH", 40000, port, 8 + len(d), 0) + d
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            i,
            0,
            64,
            17,
            0,
            bytes([127, 0, 0, 1]),
            bytes([127, 0, 0, 1]),
        )
        csum = sum(struct.unpack("!10H", ip))
        csum = (csum & 0xFFFF) + (csum >> 16)
        csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
        ip = ip[:10] + struct.pack("!H", csum) + ip[12:]
        frame = b"\0" * 12 + b"\x08\x00" + ip + udp
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_what_we_build(tmp_path: Path):
    sr = SenderReport(
        ssrc=0xCAFEBABE,
        ntp_timestamp=0xE1234567_80000000,
        rtp_timestamp=12345,
        packet_count=50,
        octet_count=8000,
        reports=(
            ReportBlock(
                ssrc=0x01020304,
                fraction_lost=26,
                cumulative_lost=-2,
                highest_sequence=70000,
                jitter=17,
                last_sr=0xB7052000,
                delay_since_last_sr=0x54000,
            ),
        ),
    )
    sdes = SourceDescription(chunks=(SdesChunk(ssrc=0xCAFEBABE, items=(SdesItem.cname("agent7@hotline"),)),))
    bye = Goodbye(sources=(0xCAFEBABE,), reason="call ended")
    path = tmp_path / "rtcp.pcap"
    path.write_bytes(_pcap([rtcp.serialize([sr, sdes, bye], padding=4)], 5005))
    fields = [
        "rtcp.senderssrc",
        "rtcp.timestamp.rtp",
        "rtcp.sender.packetcount",
        "rtcp.sender.octetcount",
        "rtcp.ssrc.identifier",
        "rtcp.ssrc.fraction",
        "rtcp.ssrc.cum_nr",
        "rtcp.ssrc.ext_high",
        "rtcp.ssrc.jitter",
        "rtcp.ssrc.lsr",
        "rtcp.ssrc.dlsr",
        "rtcp.sdes.text",
        "rtcp.padding.count",
        "rtcp.length_check",
        "_ws.expert",
    ]
    cmd = ["tshark", "-r", str(path), "-d", "udp.port==5005,rtcp", "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    values = dict(zip(fields, out.split("|"), strict=True))
    assert values["rtcp.senderssrc"] == "0xcafebabe"
    assert values["rtcp.timestamp.rtp"] == "12345"
    assert values["rtcp.sender.packetcount"] == "50" and values["rtcp.sender.octetcount"] == "8000"
    assert values["rtcp.ssrc.identifier"] == "0x01020304,0xcafebabe,0xcafebabe"  # block, SDES chunk, BYE
    assert values["rtcp.ssrc.fraction"] == "26"
    assert values["rtcp.ssrc.cum_nr"] == "-2"
    assert values["rtcp.ssrc.ext_high"] == "70000"
    assert values["rtcp.ssrc.jitter"] == "17"
    assert values["rtcp.ssrc.lsr"] == str(0xB7052000)
    assert values["rtcp.ssrc.dlsr"] == str(0x54000)
    assert values["rtcp.sdes.text"] == "agent7@hotline,call ended"  # tshark files the BYE reason here too
    assert values["rtcp.padding.count"] == "4"
    assert values["rtcp.length_check"] in ("True", "1")
    assert values["_ws.expert"] == ""  # no malformed-packet or length warnings


# ---------------------------------------------------------------- a real peer: baresip 1.0.0

BARESIP = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "fuzz_rtcp"
# Capture times (Unix microseconds, tshark on lo) of datagrams 3, 4 and 5 below: inputs for the RTT checks.
T3_US, T4_US, T5_US = 1795331571492219, 1795331571495402, 1795331576492292


def _baresip(n: int) -> bytes:
    return next(BARESIP.glob(f"baresip_{n}_*")).read_bytes()


def test_baresip_rtcp_parses_and_reserializes_byte_exact():
    """Every RTCP datagram of a 10 s baresip-to-baresip call (PCMU, rtcp_mux off), as captured.

    baresip sends an APP "PING"/"PONG" alone and a BYE-first compound at hangup: neither starts
    with SR/RR, so RFC 3550 A.2 refuses them and reduced_size=True accepts them.
    """
    datagrams = [_baresip(n) for n in range(1, 8)]
    parsed = [rtcp.parse(d, reduced_size=True) for d in datagrams]
    assert parsed[0] == [App(subtype=0, ssrc=0xB6A6B9E3, name=b"PING", data=b"PONG")]
    assert parsed[1] == [App(subtype=0, ssrc=0xBEB793AE, name=b"PING", data=b"PONG")]
    sr, sdes = parsed[2]
    assert (sr.ssrc, sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (0xB6A6B9E3, 250, 40000, 58672)
    assert sr.reports == (ReportBlock(ssrc=0xBEB793AE, highest_sequence=11688, jitter=4),)
    assert sdes.chunks[0].get(SdesType.CNAME) == b"sip:rb@127.0.0.1:5192"
    assert parsed[5][0] == Goodbye(sources=(0xBEB793AE,), reason=b"Adjo")
    for n in (1, 2, 6, 7):
        with pytest.raises(ValueError, match="does not start with SR or RR"):
            rtcp.parse(datagrams[n - 1])
    for n in (3, 4, 5):
        assert rtcp.parse(datagrams[n - 1]) == parsed[n - 1]
    assert [rtcp.serialize(p, reduced_size=True) for p in parsed] == datagrams


def test_baresip_report_blocks_give_a_loopback_round_trip_time():
    sr_b = rtcp.parse(_baresip(3))[0]
    sr_a, _ = rtcp.parse(_baresip(4))
    block = sr_a.reports[0]  # a's report about b, answering SR 3
    assert block.ssrc == sr_b.ssrc and block.last_sr == rtcp.ntp_middle32(sr_b.ntp_timestamp)
    # A - LSR - DLSR with A the capture time of datagram 4: well under a millisecond on loopback.
    rtt = rtcp.round_trip_time(rtcp.ntp_from_unix_ns(T4_US * 1000), block)
    assert rtt is not None and 0 <= rtt < 0.001
    # baresip's NTP clock is the capture clock: SR 3's timestamp is within 1 ms of its capture.
    assert abs(rtcp.unix_ns_from_ntp(sr_b.ntp_timestamp) - T3_US * 1000) < 1_000_000
    # b's next SR reports on a's SR 4 five seconds later: A - LSR - DLSR is ~0 again (signed here).
    block_b = rtcp.parse(_baresip(5))[0].reports[0]
    a_mid = rtcp.ntp_middle32(rtcp.ntp_from_unix_ns(T5_US * 1000))
    signed = (a_mid - block_b.last_sr - block_b.delay_since_last_sr + 2**31) % 2**32 - 2**31
    assert abs(signed) < 66  # 1 ms in 1/65536 s
