"""RFC 4733 telephone-event: payload bits, sender and receiver procedures.

Real bytes: the RFC 2833 captures shipped with SIPp (/usr/share/sip-tester,
PT 101, one digit each: 7 progress packets and the final packet 3 times).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediacore import dtmf
from mediacore.dtmf import DigitEnd, DigitStart, TelephoneEventReceiver, TelephoneEventSender
from mediacore.rtp import RtpPacket
from tests.pcap import udp_datagrams

SIPP = Path("/usr/share/sip-tester")
SIPP_FILES = {**{str(d): f"dtmf_2833_{d}.pcap" for d in range(10)}, "#": "dtmf_2833_pound.pcap",
              "*": "dtmf_2833_star.pcap"}


def sipp_packets(digit: str) -> list[tuple[float, RtpPacket]]:
    path = SIPP / SIPP_FILES[digit]
    if not path.exists():
        pytest.skip(f"{path} not installed (Debian package sip-tester)")
    return [(d.time, RtpPacket.parse(d.payload)) for d in udp_datagrams(path)]


def feed(receiver: TelephoneEventReceiver, packets, start_ms: int = 0) -> list:
    out = []
    for i, p in enumerate(packets):
        out += receiver.receive(p.timestamp, p.marker, p.payload, now_ms=start_ms + 20 * i)
    return out


def run_sender(sender: TelephoneEventSender, start: int = 1000, ticks: int = 200):
    packets = []
    for i in range(ticks):
        p = sender.tick((start + i * sender.packet_interval) & 0xFFFFFFFF)
        if p is not None:
            packets.append(p)
    return packets


# ---------------------------------------------------------------- payload format (2.3)

def test_payload_bits_match_rfc_figure_1():
    # event 11 (#), E=1, R=0, volume 10, duration 2240: the SIPp end packet for '#'.
    assert dtmf.build_payload("#", end=True, volume=10, duration=2240) == bytes.fromhex("0b8a08c0")
    assert dtmf.build_payload(5, volume=63, duration=0xFFFF) == bytes.fromhex("053fffff")
    block, = dtmf.parse_payload(bytes.fromhex("0b8a08c0"))
    assert (block.event, block.end, block.volume, block.duration, block.digit) == (11, True, 10, 2240, "#")


def test_reserved_bit_is_ignored_on_parse():
    with_r = dtmf.parse_payload(bytes([3, 0x80 | 0x40 | 7, 0x01, 0x40]))[0]
    assert (with_r.event, with_r.end, with_r.volume, with_r.duration) == (3, True, 7, 320)


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF))
def test_build_then_parse_is_identity(event, end, volume, duration):
    block, = dtmf.parse_payload(dtmf.build_payload(event, end=end, volume=volume, duration=duration))
    assert (block.event, block.end, block.volume, block.duration) == (event, end, volume, duration)


def test_several_blocks_in_one_payload():
    blocks = dtmf.parse_payload(dtmf.build_payload("1", end=True, duration=800) +
                                dtmf.build_payload("2", end=True, duration=640))
    assert [(b.digit, b.duration) for b in blocks] == [("1", 800), ("2", 640)]


@pytest.mark.parametrize("payload, needle", [(b"", "empty"), (b"\x01\x02\x03", "multiple of 4"),
                                             (bytes(68), "more than 16"), ("text", "bytes-like")])
def test_malformed_payload_is_a_value_error(payload, needle):
    with pytest.raises(ValueError, match=needle):
        dtmf.parse_payload(payload)


def test_digit_codes():
    assert [dtmf.event_code(d) for d in "0123456789*#ABCD!"] == list(range(17))
    assert dtmf.event_code("a") == 12
    assert [dtmf.event_digit(c) for c in range(17)] == list("0123456789*#ABCD!")
    assert dtmf.event_digit(17) is None and dtmf.event_digit(-1) is None
    with pytest.raises(ValueError, match="one of 0-9"):
        dtmf.event_code("x")


# ---------------------------------------------------------------- real captures (SIPp)

@pytest.mark.parametrize("digit", list(SIPP_FILES))
def test_sipp_capture_gives_exactly_one_digit(digit):
    packets = sipp_packets(digit)
    assert len(packets) == 10 and all(p.payload_type == 101 for _, p in packets)
    receiver = TelephoneEventReceiver(8000)
    t0 = packets[0][0]
    reports = []
    for t, p in packets:
        reports += receiver.receive(p.timestamp, p.marker, p.payload, now_ms=round((t - t0) * 1000))
    reports += receiver.flush()
    ts = packets[0][1].timestamp
    assert reports == [DigitStart(digit=digit, event=dtmf.event_code(digit), timestamp=ts, volume=10),
                       DigitEnd(digit=digit, event=dtmf.event_code(digit), timestamp=ts, volume=10, duration=2240,
                                reason="end")]
    stats = receiver.statistics()
    assert (stats.packets, stats.events, stats.duplicates, stats.malformed) == (10, 1, 2, 0)


@pytest.mark.parametrize("digit", list(SIPP_FILES))
def test_our_sender_matches_the_sipp_capture_structure(digit):
    theirs = [p for _, p in sipp_packets(digit)]
    # The capture updates every 320 timestamp units and ends at 2240; send the same.
    sender = TelephoneEventSender(101, 8000, ptime_ms=40, volume=10)
    sender.send(digit, duration_ms=280)
    ours = run_sender(sender, start=theirs[0].timestamp)
    # Ours: 6 updates (320 ... 1920) and the final packet 3 times. Theirs also has
    # a first packet with duration 0 (RFC 2833 style; RFC 4733 2.3.5 reserves 0).
    assert [p.duration for p in ours] == [320, 640, 960, 1280, 1600, 1920, 2240, 2240, 2240]
    assert [p.payload for p in ours] == [p.payload for p in theirs[1:]]
    assert theirs[0].payload[2:] == b"\x00\x00" and theirs[0].marker
    assert [p.marker for p in ours] == [True] + [False] * 8
    assert {p.timestamp for p in ours} == {theirs[0].timestamp}
    assert [p.end for p in ours] == [False] * 6 + [True] * 3
    assert [p.retransmission for p in ours] == [False] * 7 + [True] * 2
    # And the receiver hears ours exactly as it heard theirs.
    receiver = TelephoneEventReceiver()
    reports = feed(receiver, ours)
    assert [type(r) for r in reports] == [DigitStart, DigitEnd]
    assert reports[1].duration == 2240 and reports[1].digit == digit


# ---------------------------------------------------------------- sender (2.5.1)

def test_sender_default_packets_for_one_digit():
    sender = TelephoneEventSender(101)
    sender.send("5")  # 100 ms at 8 kHz, 20 ms packets
    packets = run_sender(sender, start=16000)
    assert [(p.marker, p.timestamp, p.event, p.end, p.duration, p.volume) for p in packets] == [
        (True, 16000, 5, False, 160, 10), (False, 16000, 5, False, 320, 10), (False, 16000, 5, False, 480, 10),
        (False, 16000, 5, False, 640, 10), (False, 16000, 5, True, 800, 10), (False, 16000, 5, True, 800, 10),
        (False, 16000, 5, True, 800, 10)]
    assert all(p.payload_type == 101 for p in packets)
    assert sender.idle and sender.statistics().packets == 7


def test_sender_event_shorter_than_one_packet_interval():
    # The first packet is also the last: M on it only, not on its repeats (found by the fuzzer).
    sender = TelephoneEventSender(101, ptime_ms=50)
    sender.send("1", duration_ms=20)
    packets = run_sender(sender, start=0, ticks=5)
    assert [(p.marker, p.end, p.duration, p.retransmission) for p in packets] == [
        (True, True, 160, False), (False, True, 160, True), (False, True, 160, True)]


def test_sender_spaces_digits_and_honours_min_gap():
    sender = TelephoneEventSender(96, 8000, min_gap_ms=100)
    sender.send("12", duration_ms=60, volume=7)
    packets = run_sender(sender, start=0)
    starts = [p for p in packets if p.marker]
    assert [(p.digit, p.timestamp) for p in starts] == [("1", 0), ("2", 1280)]  # 480 + 800 gap, next tick boundary
    assert all(p.volume == 7 for p in packets)
    assert sum(p.end for p in packets) == 6


def test_sender_segments_long_events():
    sender = TelephoneEventSender(101, 8000)
    sender.send("9", duration_ms=20_000)  # 160000 units: segments of 0xFFFF, 0xFFFF and the rest
    packets = run_sender(sender, start=4_294_960_000, ticks=1100)  # crosses the 32-bit wrap too
    segments = sorted({p.timestamp for p in packets}, key=lambda t: (t - 4_294_960_000) & 0xFFFFFFFF)
    assert segments == [4_294_960_000, (4_294_960_000 + 0xFFFF) & 0xFFFFFFFF,
                        (4_294_960_000 + 2 * 0xFFFF) & 0xFFFFFFFF]
    finals = [p for p in packets if p.duration == 0xFFFF]
    assert len(finals) == 6 and not any(p.end for p in finals)  # each segment's end, 3 times, no E bit
    assert sum(p.marker for p in packets) == 1
    last = [p for p in packets if p.end]
    assert len(last) == 3 and last[0].duration == 160_000 - 2 * 0xFFFF
    assert sender.statistics().segments == 2
    receiver = TelephoneEventReceiver()
    reports = feed(receiver, packets)
    assert reports == [DigitStart(digit="9", event=9, timestamp=4_294_960_000, volume=10),
                       DigitEnd(digit="9", event=9, timestamp=4_294_960_000, volume=10, duration=160_000,
                                reason="end")]
    assert receiver.statistics().segments == 2


def test_sender_cancel_ends_the_current_event_at_once():
    sender = TelephoneEventSender(101)
    sender.send("123", duration_ms=200)
    first = [sender.tick(i * 160) for i in range(3)]
    sender.cancel()
    rest = run_sender(sender, start=480, ticks=10)
    assert [p.duration for p in first] == [160, 320, 480]
    assert [(p.end, p.duration) for p in rest] == [(True, 480)] * 3
    assert sender.idle


@pytest.mark.parametrize("kwargs, needle", [
    ({"payload_type": 128}, "payload_type"), ({"payload_type": 101, "clock_rate": 10}, "clock_rate"),
    ({"payload_type": 101, "ptime_ms": 0}, "ptime_ms"), ({"payload_type": 101, "clock_rate": 11025}, "whole number"),
    ({"payload_type": 101, "end_repeats": 0}, "end_repeats"), ({"payload_type": 101, "volume": 64}, "volume")])
def test_sender_bad_configuration(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        TelephoneEventSender(**kwargs)


def test_sender_bad_digits_and_full_queue():
    sender = TelephoneEventSender(101)
    with pytest.raises(ValueError, match="one of 0-9"):
        sender.send("12x")
    assert sender.queued == 0  # nothing half-queued
    with pytest.raises(ValueError, match="non-empty"):
        sender.send("")
    with pytest.raises(ValueError, match="duration_ms"):
        sender.send("1", duration_ms=0)
    sender.send("0" * 64)
    with pytest.raises(ValueError, match="queue"):
        sender.send("1")


# ---------------------------------------------------------------- receiver (2.5.2)

def packets_for(digits: str, duration_ms: int = 100, start: int = 0, gap_ms: int = 60):
    sender = TelephoneEventSender(101, min_gap_ms=gap_ms)
    sender.send(digits, duration_ms=duration_ms)
    return run_sender(sender, start=start, ticks=400)


def test_lost_start_packets_still_one_digit():
    packets = packets_for("7")
    reports = feed(TelephoneEventReceiver(), packets[2:])
    assert [(type(r).__name__, r.digit) for r in reports] == [("DigitStart", "7"), ("DigitEnd", "7")]
    assert reports[1].duration == 800 and reports[1].reason == "end"


def test_repeated_start_packet_is_not_a_second_digit():
    packets = packets_for("7")
    receiver = TelephoneEventReceiver()
    reports = feed(receiver, [packets[0], packets[0], packets[1], packets[0]] + packets[2:] + [packets[0]])
    assert [type(r) for r in reports] == [DigitStart, DigitEnd]
    assert receiver.statistics().duplicates == 3  # the late start, and 2 end retransmissions


def test_all_end_packets_lost_then_next_event_ends_it():
    packets = [p for p in packets_for("12") if not (p.digit == "1" and p.end)]
    reports = feed(TelephoneEventReceiver(), packets)
    assert [(type(r).__name__, r.digit) for r in reports] == [("DigitStart", "1"), ("DigitEnd", "1"),
                                                                ("DigitStart", "2"), ("DigitEnd", "2")]
    assert reports[1].reason == "new-event" and reports[1].duration == 640  # the last update seen
    assert reports[3].reason == "end"


def test_event_without_end_times_out():
    packets = [p for p in packets_for("3") if not p.end]
    receiver = TelephoneEventReceiver(timeout_ms=200)
    reports = feed(receiver, packets, start_ms=1000)  # last packet at 1060 ms
    assert [type(r) for r in reports] == [DigitStart]
    assert receiver.active_digit == "3"
    assert receiver.poll(1259) == []
    timed_out = receiver.poll(1260)
    assert timed_out == [DigitEnd(digit="3", event=3, timestamp=0, volume=10, duration=640, reason="timeout")]
    # A late packet of the timed-out event is not a new digit.
    assert receiver.receive(0, False, packets[1].payload, now_ms=1300) == []
    assert receiver.active_digit is None and receiver.statistics().timeouts == 1


def test_timeout_checked_when_the_next_packet_arrives():
    packets = packets_for("34")
    first = [p for p in packets if p.digit == "3" and not p.end]
    second = [p for p in packets if p.digit == "4"]
    receiver = TelephoneEventReceiver(timeout_ms=100)
    reports = feed(receiver, first, start_ms=0)
    reports += receiver.receive(second[0].timestamp, True, second[0].payload, now_ms=5000)
    assert [(type(r).__name__, getattr(r, "reason", None)) for r in reports] == [
        ("DigitStart", None), ("DigitEnd", "timeout"), ("DigitStart", None)]


def test_reordered_late_packet_of_a_previous_event_is_dropped():
    packets = packets_for("56")
    five = [p for p in packets if p.digit == "5"]
    six = [p for p in packets if p.digit == "6"]
    order = five[:2] + six[:2] + five[2:3] + six[2:]  # a '5' update arrives after '6' began
    receiver = TelephoneEventReceiver()
    reports = feed(receiver, order)
    assert [(type(r).__name__, r.digit) for r in reports] == [("DigitStart", "5"), ("DigitEnd", "5"),
                                                                ("DigitStart", "6"), ("DigitEnd", "6")]
    assert receiver.statistics().duplicates >= 1


def test_packet_of_an_older_unseen_event_is_stale():
    late = packets_for("8", start=0)
    now = packets_for("9", start=8000)
    receiver = TelephoneEventReceiver()
    reports = feed(receiver, now + late[:3])
    assert [r.digit for r in reports] == ["9", "9"]
    assert receiver.statistics().stale == 3


def test_stream_restart_far_behind_is_a_new_event():
    receiver = TelephoneEventReceiver()
    assert len(feed(receiver, packets_for("1", start=1_000_000))) == 2
    # More than 10 s of timestamps behind: a new timestamp base, not a late packet.
    assert [r.digit for r in feed(receiver, packets_for("2", start=100))] == ["2", "2"]


def test_unknown_events_are_ignored_and_counted():
    receiver = TelephoneEventReceiver()
    assert receiver.receive(0, True, dtmf.build_payload(32, duration=160)) == []  # a fax tone (RFC 4734)
    assert receiver.receive(0, False, dtmf.build_payload(255, end=True, duration=320)) == []
    assert receiver.statistics().unknown_events == 2 and receiver.active_digit is None


def test_flash_event():
    receiver = TelephoneEventReceiver()
    reports = receiver.receive(0, True, dtmf.build_payload("!", end=True, volume=0, duration=2400))
    assert [(type(r).__name__, r.digit, r.event) for r in reports] == [("DigitStart", "!", 16), ("DigitEnd", "!", 16)]


def test_packed_events_in_one_packet():
    # Two complete consecutive events: the second starts where the first ended (2.5.1.5).
    payload = dtmf.build_payload("1", end=True, duration=800) + dtmf.build_payload("2", end=True, duration=800)
    reports = TelephoneEventReceiver().receive(5000, True, payload)
    assert [(type(r).__name__, r.digit, r.timestamp) for r in reports] == [
        ("DigitStart", "1", 5000), ("DigitEnd", "1", 5000), ("DigitStart", "2", 5800), ("DigitEnd", "2", 5800)]


def test_zero_duration_start_packet_is_accepted():
    receiver = TelephoneEventReceiver()
    assert [type(r) for r in receiver.receive(0, True, dtmf.build_payload("4", duration=0))] == [DigitStart]
    assert receiver.flush() == [DigitEnd(digit="4", event=4, timestamp=0, volume=10, duration=0, reason="flush")]


def test_malformed_packets_are_counted_and_change_nothing():
    receiver = TelephoneEventReceiver()
    receiver.receive(0, True, dtmf.build_payload("4", duration=160))
    for bad in (b"", b"\x01\x02", bytes(5), bytes(4 * 17)):
        assert receiver.receive(0, False, bad) == []
    assert receiver.statistics().malformed == 4 and receiver.active_digit == "4"
    with pytest.raises(ValueError, match="bytes-like"):
        receiver.receive(0, False, "text")
    with pytest.raises(ValueError, match="timestamp"):
        receiver.receive(-1, False, b"\x00\x00\x00\x01")


def test_reset_forgets_events():
    receiver = TelephoneEventReceiver()
    p = dtmf.build_payload("6", end=True, duration=800)
    assert len(receiver.receive(100, True, p)) == 2
    assert receiver.receive(100, True, p) == []
    receiver.reset()
    assert len(receiver.receive(100, True, p)) == 2


# ---------------------------------------------------------------- round trip through a bad network

@pytest.mark.parametrize("seed", range(20))
def test_round_trip_through_loss_and_reordering(seed):
    rng = random.Random(seed)
    digits = "".join(rng.choice(dtmf.DIGITS) for _ in range(12))
    sender = TelephoneEventSender(101, 8000, min_gap_ms=40)
    duration_ms = rng.choice([60, 100, 160])
    sender.send(digits, duration_ms=duration_ms)
    sent = run_sender(sender, start=rng.randrange(2**32), ticks=600)
    loss = rng.choice([0.0, 0.1, 0.3])
    kept = [(i, p) for i, p in enumerate(sent) if rng.random() >= loss]
    # Reorder: each packet may be delayed by up to 3 packet times.
    arrival = sorted(kept, key=lambda ip: ip[0] + rng.uniform(0, 3))
    receiver = TelephoneEventReceiver(timeout_ms=300)
    reports = []
    for i, p in arrival:
        reports += receiver.receive(p.timestamp, p.marker, p.payload, now_ms=20 * i)
    reports += receiver.poll(20 * len(sent) + 1000)
    starts = [r for r in reports if isinstance(r, DigitStart)]
    ends = [r for r in reports if isinstance(r, DigitEnd)]
    # Exactly the events some packet of which arrived before any packet of a
    # later event are reported (a packet of an event older than one already
    # begun is stale), once each, in order, each start with its end.
    order = []
    for p in sent:
        if (p.timestamp, p.event) not in order:
            order.append((p.timestamp, p.event))
    first_arrival = {}
    for position, (_, p) in enumerate(arrival):
        first_arrival.setdefault((p.timestamp, p.event), position)
    expected = [k for n, k in enumerate(order) if k in first_arrival and
                all(first_arrival.get(later, 1 << 30) > first_arrival[k] for later in order[n + 1:])]
    assert [(r.timestamp, r.event) for r in starts] == expected
    assert [(r.timestamp, r.event) for r in ends] == expected
    # With no loss every digit arrives, with its exact duration.
    if loss == 0.0:
        assert "".join(r.digit for r in starts) == digits
        assert all(r.reason == "end" for r in ends)
        assert [r.duration for r in ends] == [duration_ms * 8] * len(digits)


# ---------------------------------------------------------------- any input at all

_payloads = st.one_of(
    st.binary(max_size=70),
    st.lists(st.tuples(st.integers(0, 20), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF)),
             min_size=1, max_size=3).map(
        lambda blocks: b"".join(dtmf.build_payload(e, end=end, volume=v, duration=d) for e, end, v, d in blocks)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 70_000), st.booleans(), _payloads, st.integers(0, 100)), max_size=60))
def test_any_packet_sequence_gives_at_most_one_digit_per_event(packets):
    # Timestamps stay within the receiver's 10 s staleness window (80000 at
    # 8 kHz); beyond it an older timestamp is taken as a new stream.
    receiver = TelephoneEventReceiver(timeout_ms=50)
    now = 0
    starts, ends = [], []
    for timestamp, marker, payload, dt in packets:
        now += dt
        for r in receiver.receive(timestamp, marker, payload, now_ms=now) + receiver.poll(now):
            (starts if isinstance(r, DigitStart) else ends).append(r)
    ends += receiver.flush()
    keys = [(r.timestamp, r.event) for r in starts]
    assert len(keys) == len(set(keys))
    assert [(r.timestamp, r.event) for r in ends] == keys  # every start ends, in order, once
    assert all(0 <= r.event <= 16 for r in starts)
    stats = receiver.statistics()
    assert stats.events == len(starts) and stats.packets == len(packets)


# ---------------------------------------------------------------- the pcap reader itself

@pytest.mark.parametrize("fmt", ["pcapng", "nsecpcap", "pcap"])
def test_pcap_reader_agrees_with_tshark_in_every_format(tmp_path, fmt):
    import shutil
    import subprocess

    source = SIPP / SIPP_FILES["#"]
    if not source.exists() or not shutil.which("editcap") or not shutil.which("tshark"):
        pytest.skip("needs sip-tester and tshark (editcap)")
    converted = tmp_path / f"capture.{fmt}"
    subprocess.run(["editcap", "-F", fmt, str(source), str(converted)], check=True, capture_output=True)
    ours = udp_datagrams(converted)
    fields = subprocess.run(["tshark", "-r", str(converted), "-T", "fields", "-e", "frame.time_epoch", "-e",
                             "ip.src", "-e", "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport", "-e", "data.data",
                             "-d", "udp.port==10000,data"],
                            check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(ours) == len(fields) == 10
    for d, line in zip(ours, fields):
        epoch, src, sport, dst, dport, data = line.split("\t")
        assert d.time == pytest.approx(float(epoch), abs=1e-6)
        assert (d.src, d.dst) == ((src, int(sport)), (dst, int(dport)))
        assert d.payload == bytes.fromhex(data)
    assert [d.payload for d in ours] == [d.payload for d in udp_datagrams(source)]


def test_pcap_reader_rejects_what_is_not_a_capture(tmp_path):
    from tests.pcap import PcapError

    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(PcapError, match="not a pcap"):
        udp_datagrams(bad)
    source = SIPP / SIPP_FILES["1"]
    if source.exists():
        cut = tmp_path / "cut.pcap"
        cut.write_bytes(source.read_bytes()[:-10])
        with pytest.raises(PcapError, match="file ends first"):
            udp_datagrams(cut)
