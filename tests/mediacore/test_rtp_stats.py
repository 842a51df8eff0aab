"""RFC 3550 receive statistics against the appendix's algorithms written out in plain Python."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediacore import rtcp
from mediacore.rtcp import ReportBlock
from mediacore.rtp import ReceiveStats, RtpPacket, SendStats
from tests.pcap import udp_datagrams

SEQ_MOD = 1 << 16
G711A = Path("/usr/share/sip-tester/g711a.pcap")


class Model:
    """RFC 3550 A.1 (update_seq), A.3 (loss) and A.8 (integer jitter), transcribed.

    With the two deviations the native header documents: 16-bit "in sequence"
    during probation, and transit (re)initialised on the first valid packet
    and on a restart; plus the 255 clamp of an all-lost interval.
    """

    def __init__(self, clock_rate, min_sequential=2, max_dropout=3000, max_misorder=100):
        self.rate, self.min_seq, self.max_dropout, self.max_misorder = (
            clock_rate,
            min_sequential,
            max_dropout,
            max_misorder,
        )
        self.started = False
        self.probation = 0
        self.transit = None
        self.jitter = 0
        self.restarted = False

    def init_seq(self, seq):
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update_seq(self, seq):
        udelta = (seq - self.max_seq) % SEQ_MOD
        if self.probation:
            if seq == (self.max_seq + 1) % SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self.init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = self.min_seq - 1
                self.max_seq = seq
            return False
        elif udelta < self.max_dropout:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
        elif udelta <= SEQ_MOD - self.max_misorder:
            if seq == self.bad_seq:
                self.init_seq(seq)
                self.restarted = True
            else:
                self.bad_seq = (seq + 1) & (SEQ_MOD - 1)
                return False
        self.received += 1
        return True

    def on_packet(self, seq, ts, arrival_ns):
        if not self.started:
            self.started = True
            self.init_seq(seq)
            self.max_seq = (seq - 1) % SEQ_MOD
            self.probation = self.min_seq
        if not self.update_seq(seq):
            return False
        arrival = (arrival_ns * self.rate // 1_000_000_000) % 2**32
        transit = (arrival - ts) % 2**32
        if self.transit is None or self.restarted:
            self.restarted = False
        else:
            d = (transit - self.transit) % 2**32
            d = d - 2**32 if d >= 2**31 else d
            self.jitter += abs(d) - ((self.jitter + 8) >> 4)
        self.transit = transit
        return True

    def report(self):
        valid = self.started and self.probation == 0
        extended_max = (self.cycles + self.max_seq) % 2**32
        fraction = lost24 = 0
        if valid:
            expected = extended_max - self.base_seq + 1
            lost = expected - self.received
            lost24 = max(-0x800000, min(0x7FFFFF, lost))
            expected_interval = expected - self.expected_prior
            self.expected_prior = expected
            received_interval = self.received - self.received_prior
            self.received_prior = self.received
            lost_interval = expected_interval - received_interval
            if expected_interval != 0 and lost_interval > 0:
                fraction = min(255, (lost_interval << 8) // expected_interval)
        return (fraction, lost24, extended_max, self.jitter >> 4)


def block_tuple(b: ReportBlock):
    return (b.fraction_lost, b.cumulative_lost, b.highest_sequence, b.jitter)


def feed(packets, clock_rate=8000, **cfg):
    stats, model = ReceiveStats(7, clock_rate, **cfg), Model(clock_rate, **cfg)
    for seq, ts, t in packets:
        assert stats.on_packet(seq, ts, t) == model.on_packet(seq, ts, t)
    return stats, model


# ---------------------------------------------------------------- A.1


def test_probation_then_valid():
    s = ReceiveStats(1, 8000)
    assert [s.on_packet(100 + i, 160 * i, 20_000_000 * i) for i in range(4)] == [False, True, True, True]
    st_ = s.statistics()
    assert st_.valid and st_.base_seq == 101 and st_.received == 3 and st_.probation_dropped == 1
    assert st_.expected == 3 and st_.lost == 0


def test_probation_restarts_on_a_gap():
    s = ReceiveStats(1, 8000, min_sequential=3)
    assert [s.on_packet(q, 0, 0) for q in (10, 11, 13, 14, 15, 16)] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]
    assert s.statistics().base_seq == 15


def test_probation_across_the_wrap_is_accepted():
    s = ReceiveStats(1, 8000)
    assert [s.on_packet(q, 0, 0) for q in (65535, 0, 1)] == [False, True, True]
    assert s.statistics().base_seq == 0


def test_sequence_wrap_extends_the_highest_sequence():
    seqs = [(65530 + i) % SEQ_MOD for i in range(12)]
    s = ReceiveStats(1, 8000, min_sequential=1)
    for q in seqs:
        assert s.on_packet(q, 0, 0)
    st_ = s.statistics()
    assert st_.cycles == 65536 and st_.max_seq == 5 and st_.extended_max == 65536 + 5
    assert st_.expected == 12 == st_.received
    assert s.report_block(0).highest_sequence == 0x10005


def test_large_jump_needs_confirmation_then_restarts():
    s = ReceiveStats(1, 8000, min_sequential=1)
    for q in range(100, 110):
        s.on_packet(q, 0, 0)
    assert not s.on_packet(20000, 0, 0)  # a lone jump: refused
    assert s.on_packet(110, 0, 0)  # the stream carries on
    assert not s.on_packet(30000, 0, 0)
    assert s.on_packet(30001, 0, 0)  # two in sequence: the sender restarted
    st_ = s.statistics()
    assert st_.bad_sequence == 2 and st_.restarts == 1
    assert st_.base_seq == 30001 and st_.received == 1 and st_.extended_max == 30001


def test_late_and_duplicate_packets_count_as_received():
    s = ReceiveStats(1, 8000, min_sequential=1)
    for q in (1, 2, 4, 3, 4, 5):
        assert s.on_packet(q, 0, 0)
    st_ = s.statistics()
    # Only the 3 behind the highest is "late": A.1 cannot tell the second 4 (delta 0) from in-order.
    assert st_.late == 1 and st_.received == 6 and st_.expected == 5 and st_.lost == -1
    assert s.report_block(0).cumulative_lost == -1


# ---------------------------------------------------------------- A.3


def test_fraction_and_cumulative_loss_per_interval():
    s = ReceiveStats(1, 8000, min_sequential=1)
    lost = {5, 17, 18, 60, 61, 62, 63}
    for q in range(100):
        if q not in lost:
            s.on_packet(q, 0, 0)
    b = s.report_block(0)
    assert b.cumulative_lost == 7 and b.highest_sequence == 99
    assert b.fraction_lost == 7 * 256 // 100  # 17
    for q in range(100, 200, 2):  # every other packet lost in the next interval
        s.on_packet(q, 0, 0)
    b = s.report_block(0)
    assert b.fraction_lost == 49 * 256 // 99 and b.cumulative_lost == 7 + 49
    b = s.report_block(0)  # empty interval
    assert b.fraction_lost == 0 and b.cumulative_lost == 56


def test_loss_fields_clamp_to_the_wire_formats():
    from mediacore import _rtp

    assert _rtp.loss_fields(100, 0, 100, 0) == (255, 100)  # everything lost: 255, not 256 wrapped to 0
    assert _rtp.loss_fields(10**8, 0, 10, 5) == (128, 0x7FFFFF)
    assert _rtp.loss_fields(0, 10**8, 0, 0) == (0, -0x800000)
    assert _rtp.loss_fields(10, 12, 10, 12) == (0, -2)  # duplicates: negative loss, zero fraction


# ---------------------------------------------------------------- A.8


def test_constant_transit_gives_zero_jitter_and_a_step_gives_the_appendix_value():
    packets = [(i, 160 * i, 20_000_000 * i + 5_000_000) for i in range(50)]
    s, _ = feed(packets, min_sequential=1)
    assert s.statistics().jitter == 0
    # One packet 10 ms late (80 timestamp units at 8 kHz): J = 80/16 = 5 after it...
    s.on_packet(50, 160 * 50, 20_000_000 * 50 + 15_000_000)
    assert s.statistics().jitter == 5
    # ... and the next, on time again (|D| = 80 again): 16J = 80 + 80 - ((80 + 8) >> 4) = 155, J = 9.
    s.on_packet(51, 160 * 51, 20_000_000 * 51 + 5_000_000)
    assert s.statistics().jitter == 9


def test_alternating_delay_converges_to_the_alternation():
    # Transit alternates by 40 units: |D| = 40 every packet, so J -> 40.
    packets = [(i, 160 * i, 20_000_000 * i + (5_000_000 if i % 2 else 0)) for i in range(400)]
    s, m = feed(packets, min_sequential=1)
    assert s.statistics().jitter == m.jitter >> 4
    assert 38 <= s.statistics().jitter <= 40


KINDS = ["next"] * 8 + ["lose", "dup", "back", "jump"]
ops = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 65535), st.integers(0, 30_000_000), st.integers(0, 15)),
    min_size=1,
    max_size=150,
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([8000, 16000, 48000, 90000]),
    st.integers(1, 3),
    st.integers(0, SEQ_MOD - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**40),
    ops,
)
def test_native_stats_match_the_appendix_model(clock_rate, min_seq, start, ts0, t0, steps):
    stats, model = (
        ReceiveStats(9, clock_rate, min_sequential=min_seq),
        Model(clock_rate, min_sequential=min_seq),
    )
    seq = start
    step = clock_rate // 50
    for i, (kind, amount, delay_ns, report) in enumerate(steps):
        if kind == "lose":
            seq += 2 + amount % 49
        elif kind == "back":
            seq -= 1 + amount % 200
        elif kind == "jump":
            seq += 3000 + amount % 62536
        elif kind == "next":
            seq += 1
        seq %= SEQ_MOD
        ts = (ts0 + step * i) % 2**32
        arrival = t0 + 20_000_000 * i + delay_ns
        assert stats.on_packet(seq, ts, arrival) == model.on_packet(seq, ts, arrival)
        if report == 0:
            assert block_tuple(stats.report_block(arrival)) == model.report()
    assert block_tuple(stats.report_block(0)) == model.report()
    assert stats.statistics().jitter == model.jitter >> 4


@pytest.mark.skipif(not G711A.exists(), reason="sip-tester's g711a.pcap not installed")
def test_real_capture_jitter_matches_the_model_and_tshark():
    packets = []
    for d in udp_datagrams(G711A):
        p = RtpPacket.parse(d.payload)
        packets.append((p.sequence_number, p.timestamp, round(d.time * 1e6) * 1000))  # microsecond capture
    assert len(packets) == 236
    stats, model = ReceiveStats(1, 8000), Model(8000)
    history = []
    for seq, ts, t in packets:
        assert stats.on_packet(seq, ts, t) == model.on_packet(seq, ts, t)
        history.append(stats.statistics().jitter)
    assert history[-1] == model.jitter >> 4
    b = stats.report_block(packets[-1][2])
    assert (b.fraction_lost, b.cumulative_lost) == (0, 0) and b.highest_sequence == packets[-1][0]
    # Wireshark's RTP analysis (floating point, ms) on the same capture: max jitter 0.829 ms
    # = 6.6 units; ours is the integer estimate in whole units, so within a unit of it.
    if shutil.which("tshark"):
        out = subprocess.run(
            ["tshark", "-r", str(G711A), "-d", "udp.port==2006,rtp", "-q", "-z", "rtp,streams"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        row = [line for line in out.splitlines() if "0xDEE0EE8F" in line][0].split()
        max_jitter_ms = float(row[-1]) if row[-1][0].isdigit() else float(row[-2])
        assert abs(max(history) / 8.0 - max_jitter_ms) <= 0.125 + 1e-9


# ---------------------------------------------------------------- LSR / DLSR / RTT


def test_lsr_dlsr_from_the_last_sender_report():
    s = ReceiveStats(1, 8000, min_sequential=1)
    s.on_packet(1, 0, 0)
    assert (s.report_block(0).last_sr, s.report_block(0).delay_since_last_sr) == (0, 0)
    ntp = (0xB705 << 32) | 0x2000_0000  # 46853.125 s
    s.on_sender_report(ntp, 1_000_000_000)
    b = s.report_block(1_000_000_000 + 5_250_000_000)  # 5.25 s later
    assert b.last_sr == 0xB7052000 and b.delay_since_last_sr == 0x54000
    assert s.statistics().have_sr and s.statistics().last_sr == 0xB7052000


def test_round_trip_through_sr_and_rr():
    """Sender A sends an SR; B reports 5.25 s later; A hears the RR 0.875 s after that: RTT 0.875 s."""
    base_unix = 1_700_000_000_000_000_000
    a_send = SendStats(0xA, 8000)
    a_send.on_sent(16000, 160, 0)
    sr_time = 2_000_000_000
    info = a_send.sender_info(rtcp.ntp_from_unix_ns(base_unix + sr_time), sr_time)
    assert info.rtp_timestamp == 16000 + 16000 and info.packet_count == 1 and info.octet_count == 160
    b_recv = ReceiveStats(0xA, 8000)
    b_recv.on_sender_report(info.ntp_timestamp, 50_000_000)  # B's own clock
    block = b_recv.report_block(50_000_000 + 5_250_000_000)
    arrival = rtcp.ntp_from_unix_ns(base_unix + sr_time + 5_250_000_000 + 875_000_000 + 437_500_000)
    rtt = rtcp.round_trip_time(arrival, block)
    assert rtt is not None and abs(rtt - (0.875 + 0.4375)) < 2 / 65536


def test_bad_arguments_raise_valueerror():
    with pytest.raises(ValueError, match="clock_rate must be in"):
        ReceiveStats(1, 0)
    with pytest.raises(ValueError, match="min_sequential must be in"):
        ReceiveStats(1, 8000, min_sequential=0)
    with pytest.raises(ValueError, match="ssrc must be in"):
        ReceiveStats(-1, 8000)
    s = ReceiveStats(1, 8000)
    with pytest.raises(ValueError, match="sequence_number must be in 0..65535"):
        s.on_packet(65536, 0, 0)
    with pytest.raises(ValueError, match="timestamp must be in"):
        s.on_packet(1, -1, 0)
    with pytest.raises(ValueError, match="same length"):
        s.on_packets([1, 2], [0], [0, 0])
    with pytest.raises(ValueError, match="clock_rate must be in"):
        SendStats(1, 0)


# ---------------------------------------------------------------- a real peer: baresip

BARESIP_CONFIG = """\
poll_method epoll
sip_listen 127.0.0.1:{sip}
call_local_timeout 120
call_max_calls 4
audio_path /usr/share/baresip
audio_source aufile,{wav}
audio_player aubridge,nil
audio_alert aubridge,nil
ausrc_srate 8000
auplay_srate 8000
ausrc_channels 1
auplay_channels 1
audio_level no
ausrc_format s16
auplay_format s16
auenc_format s16
audec_format s16
audio_buffer 20-160
rtp_ports {rtp_min}-{rtp_max}
rtcp_mux no
jitter_buffer_delay 5-10
rtp_stats yes
rtp_timeout 0
net_interface 127.0.0.1
dns_server 127.0.0.1:53
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
"""
SIP_A, SIP_B, RTP_A, RTP_B = 5190, 5192, (11100, 11119), (11120, 11139)


def _baresip_dir(root: Path, name: str, sip: int, rtp_range: tuple[int, int], wav: Path) -> Path:
    d = root / name
    d.mkdir()
    (d / "config").write_text(
        BARESIP_CONFIG.format(sip=sip, wav=wav, rtp_min=rtp_range[0], rtp_max=rtp_range[1])
    )
    (d / "accounts").write_text(
        f"<sip:{name}@127.0.0.1:{sip}>;regint=0;answermode=auto;audio_codecs=pcmu;ptime=20\n"
    )
    (d / "contacts").write_text("")
    return d


@pytest.mark.peers
@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("baresip") and shutil.which("tshark")), reason="needs baresip and tshark"
)
def test_our_report_blocks_match_what_baresip_reports(tmp_path, speech_8k):
    """Capture a baresip-to-baresip call on lo; replay the caller's RTP and SRs into ReceiveStats
    and compare with the report blocks the callee sent about that same stream."""
    import time
    import wave

    from mediacore import rtcp
    from mediacore.rtp import is_rtcp

    wav = tmp_path / "speech.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(speech_8k.tobytes() * 2)  # about 12 s: two SR intervals (5 s each)
    a = _baresip_dir(tmp_path, "a", SIP_A, RTP_A, wav)
    b = _baresip_dir(tmp_path, "b", SIP_B, RTP_B, wav)
    cap = tmp_path / "call.pcap"
    tshark = subprocess.Popen(
        [
            "tshark",
            "-i",
            "lo",
            "-f",
            f"udp portrange {RTP_A[0]}-{RTP_B[1]}",
            "-w",
            str(cap),
            "-a",
            "duration:30",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    callee = None
    try:
        deadline = time.monotonic() + 15
        while not cap.exists() and time.monotonic() < deadline:  # tshark creates the file when capturing
            time.sleep(0.1)
        callee = subprocess.Popen(
            ["baresip", "-f", str(b)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        # The call lasts as long as the speech file, then the caller hangs up.
        subprocess.run(
            ["baresip", "-f", str(a), "-e", f"/dial sip:b@127.0.0.1:{SIP_B}", "-t", "15"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        time.sleep(0.5)
    finally:
        if callee is not None:
            callee.terminate()
            callee.wait(timeout=10)
        tshark.terminate()
        tshark.wait(timeout=20)
    datagrams = udp_datagrams(cap)
    # baresip picks its ports inside each range; tell the streams apart by range and RFC 5761 type.
    from_a = [d for d in datagrams if RTP_A[0] <= d.src[1] <= RTP_A[1]]
    from_b = [d for d in datagrams if RTP_B[0] <= d.src[1] <= RTP_B[1]]
    a_rtp = [d for d in from_a if not is_rtcp(d.payload)]
    a_rtcp = [d for d in from_a if is_rtcp(d.payload)]
    b_rtcp = [d for d in from_b if is_rtcp(d.payload)]
    assert len(a_rtp) > 200, f"only {len(a_rtp)} RTP packets captured from the caller"
    # Events in capture order: the caller's RTP and SRs into our stats; at each SR/RR of the
    # callee, compare its block about the caller with ours.
    events = sorted(
        [(d.time, "rtp", d) for d in a_rtp]
        + [(d.time, "a", d) for d in a_rtcp]
        + [(d.time, "b", d) for d in b_rtcp],
        key=lambda e: e[0],
    )
    ssrc = RtpPacket.parse(a_rtp[0].payload).ssrc
    ours = ReceiveStats(ssrc, 8000)
    compared = 0
    for t, kind, d in events:
        now = round(t * 1e6) * 1000
        if kind == "rtp":
            p = RtpPacket.parse(d.payload)
            ours.on_packet(p.sequence_number, p.timestamp, now, len(p.payload))
            continue
        packets = rtcp.parse(d.payload, reduced_size=True)  # baresip's PING APP and BYE-first compounds
        if kind == "a":
            for sr in (p for p in packets if isinstance(p, rtcp.SenderReport)):
                ours.on_sender_report(sr.ntp_timestamp, now)
            continue
        for report in (p for p in packets if isinstance(p, (rtcp.SenderReport, rtcp.ReceiverReport))):
            theirs = next(blk for blk in report.reports if blk.ssrc == ssrc)
            mine = ours.report_block(now)
            assert mine.highest_sequence == theirs.highest_sequence
            assert (mine.fraction_lost, mine.cumulative_lost) == (
                theirs.fraction_lost,
                theirs.cumulative_lost,
            )
            assert mine.last_sr == theirs.last_sr
            assert (
                abs(mine.delay_since_last_sr - theirs.delay_since_last_sr) < 66
            )  # 1 ms: capture vs socket time
            assert abs(mine.jitter - theirs.jitter) <= 3  # arrival stamped at capture vs at baresip's socket
            compared += 1
    assert compared >= 2  # SRs at about 5 s and 10 s; the second carries LSR/DLSR
