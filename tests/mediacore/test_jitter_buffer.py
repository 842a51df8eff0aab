"""JitterBuffer (packet layer): ordering, duplicates, lateness, wraps, resets, drift, bad input.

Payloads are real G.711 frames of espeak-ng speech; network behaviour comes
from mediacore.netsim with fixed seeds. Time is simulated: no test sleeps.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mediacore import _jitter, g711, netsim
from mediacore.jitter import FrameKind, JitterBuffer, JitterBufferStats, PutResult

FRAME = 160


@pytest.fixture(scope="module")
def frames(speech_8k) -> list[bytes]:
    """The speech prompt as 20 ms mu-law payloads."""
    codes = g711.ulaw_encode(speech_8k[: len(speech_8k) // FRAME * FRAME])
    return [codes[i : i + FRAME] for i in range(0, len(codes), FRAME)]


def fixed_buffer(**kw) -> JitterBuffer:
    """A buffer that plays at a fixed 40 ms and never adapts, so tests can
    predict exactly which tick plays what."""
    opts = dict(min_delay_ms=40, max_delay_ms=40, initial_delay_ms=40, adapt_frames=False)
    opts.update(kw)
    return JitterBuffer(**opts)


def play(
    jb: JitterBuffer,
    arrivals: list[tuple[float, int, int, bytes]],
    ticks: int,
    *,
    ssrc: int = 1,
    markers: dict[int, bool] | None = None,
    tick_ms: float = 20.0,
):
    """Feed (arrival_ms, seq, ts, payload) in arrival order; get one frame per tick."""
    arrivals = sorted(arrivals, key=lambda a: a[0])
    out, results, i = [], [], 0
    for k in range(ticks):
        now = k * tick_ms
        while i < len(arrivals) and arrivals[i][0] <= now:
            t, seq, ts, payload = arrivals[i]
            results.append(jb.put(seq, ts, ssrc, bool(markers and markers.get(seq)), payload, t))
            i += 1
        out.append(jb.get(now))
    return out, results


def stream(frames, n, *, seq0=0, ts0=0, delay=0.0, start=0.0):
    return [
        (start + k * 20.0 + delay, (seq0 + k) % 65536, (ts0 + k * FRAME) % 2**32, frames[k % len(frames)])
        for k in range(n)
    ]


def normal_payloads(out):
    return [f.payload for f in out if f.kind is FrameKind.NORMAL]


def test_empty_buffer_gives_empty_frames_and_zero_stats():
    jb = JitterBuffer()
    frames = [jb.get(k * 20.0) for k in range(5)]
    assert all(f.kind is FrameKind.EMPTY and f.payload is None and f.sequence is None for f in frames)
    s = jb.stats()
    assert s.packets_received == 0 and s.jitter_buffer_emitted_count == 0 and s.concealed_samples == 0
    assert not jb.playing and jb.buffered_packets == 0


def test_in_order_stream_plays_every_packet_once_in_order(frames):
    jb = fixed_buffer()
    out, results = play(jb, stream(frames, 100, delay=5.0), 103)  # the last packet plays at tick 102
    assert all(r is PutResult.OK for r in results)
    assert normal_payloads(out) == [frames[k % len(frames)] for k in range(100)]
    kinds = [f.kind for f in out]
    # 5 ms transit + 40 ms target: the first packet plays at the tick at 60 ms.
    assert kinds[:3] == [FrameKind.EMPTY] * 3 and kinds[3] is FrameKind.NORMAL
    assert [f.sequence for f in out if f.kind is FrameKind.NORMAL] == list(range(100))
    s = jb.stats()
    assert (s.packets_received, s.packets_lost, s.packets_late, s.concealed_samples) == (100, 0, 0, 0)
    assert s.jitter_buffer_emitted_count == 100 * FRAME
    # Every packet waited 55 ms (arrival at k*20+5, played at k*20+60).
    assert s.mean_delay_ms == pytest.approx(55.0)


def test_reordered_packets_are_played_in_order(frames):
    arrivals = stream(frames, 60, delay=5.0)
    # Swap every 5th packet with its successor: the later one arrives first.
    for k in range(0, 58, 5):
        a, b = arrivals[k], arrivals[k + 1]
        arrivals[k], arrivals[k + 1] = (b[0], a[1], a[2], a[3]), (a[0], b[1], b[2], b[3])
        arrivals[k] = (a[0] + 10.0, a[1], a[2], a[3])
        arrivals[k + 1] = (a[0], b[1], b[2], b[3])
    jb = fixed_buffer()
    out, results = play(jb, arrivals, 63)
    assert all(r is PutResult.OK for r in results)
    assert normal_payloads(out) == [frames[k % len(frames)] for k in range(60)]
    assert jb.stats().packets_reordered == 12


def test_duplicates_are_refused_and_counted(frames):
    arrivals = stream(frames, 40, delay=5.0)
    arrivals += [(t + 3.0, s, ts, p) for t, s, ts, p in arrivals]  # every packet twice
    jb = fixed_buffer()
    out, results = play(jb, arrivals, 43)
    assert results.count(PutResult.DUPLICATE) == 40 and results.count(PutResult.OK) == 40
    assert normal_payloads(out) == [frames[k] for k in range(40)]
    s = jb.stats()
    assert s.packets_duplicated == 40 and s.packets_received == 80


def test_a_copy_of_a_packet_already_played_is_a_duplicate_not_late(frames):
    jb = fixed_buffer()
    play(jb, stream(frames, 10, delay=5.0), 12)
    assert jb.put(3, 3 * FRAME, 1, False, frames[3], 500.0) is PutResult.DUPLICATE


def test_late_packet_is_concealed_then_refused(frames):
    arrivals = stream(frames, 30, delay=5.0)
    t, seq, ts, p = arrivals[10]
    arrivals[10] = (t + 200.0, seq, ts, p)  # far too late for a 40 ms buffer
    jb = fixed_buffer()
    out, results = play(jb, arrivals, 33)
    assert results.count(PutResult.LATE) == 1
    concealed = [f for f in out if f.kind is FrameKind.CONCEALED]
    assert [f.sequence for f in concealed] == [10]
    assert concealed[0].next_payload == frames[11]  # what Opus FEC would use
    assert normal_payloads(out) == [frames[k] for k in range(30) if k != 10]
    s = jb.stats()
    assert (s.packets_late, s.packets_lost, s.concealment_events, s.concealed_samples) == (1, 0, 1, FRAME)


def test_lost_packets_are_concealed_and_counted(frames):
    arrivals = [a for a in stream(frames, 50, delay=5.0) if a[1] not in (7, 20, 21, 22)]
    jb = fixed_buffer()
    out, _ = play(jb, arrivals, 53)
    concealed = [f.sequence for f in out if f.kind is FrameKind.CONCEALED]
    # Packet 23 is not here yet when 20 is due: the buffer holds (conceals
    # without moving on) for 20, then skips 21 and 22 once 23 shows up.
    assert concealed == [7, 20, 20, 21]
    assert normal_payloads(out) == [frames[k] for k in range(50) if k not in (7, 20, 21, 22)]
    s = jb.stats()
    assert (s.packets_lost, s.concealment_events, s.concealed_samples) == (4, 2, 4 * FRAME)


def test_long_loss_burst_goes_silent_then_resumes(frames):
    arrivals = [a for a in stream(frames, 120, delay=5.0) if not 30 <= a[1] < 80]
    jb = fixed_buffer(max_hold_ms=100)
    out, _ = play(jb, arrivals, 130)
    kinds = [f.kind for f in out]
    first_gap = kinds.index(FrameKind.CONCEALED)
    # 100 ms of concealment, then silence until packet 80 plays.
    assert kinds[first_gap : first_gap + 5] == [FrameKind.CONCEALED] * 5
    assert kinds[first_gap + 5] is FrameKind.EMPTY
    assert normal_payloads(out) == [frames[k % len(frames)] for k in range(120) if not 30 <= k < 80]
    assert jb.stats().packets_lost == 50


@pytest.mark.parametrize("seq0", [65500, 65535])
def test_sequence_number_wrap(frames, seq0):
    jb = fixed_buffer()
    out, results = play(jb, stream(frames, 80, seq0=seq0, delay=5.0), 90)
    assert all(r is PutResult.OK for r in results)
    played = [f for f in out if f.kind is FrameKind.NORMAL]
    assert [f.sequence for f in played] == [(seq0 + k) % 65536 for k in range(80)]
    ext = [f.extended_sequence for f in played]
    assert ext == list(range(ext[0], ext[0] + 80))
    assert jb.stats().buffer_resets == 0


def test_timestamp_wrap(frames):
    ts0 = 2**32 - 10 * FRAME
    jb = fixed_buffer()
    out, results = play(jb, stream(frames, 40, ts0=ts0, delay=5.0), 43)
    played = [f for f in out if f.kind is FrameKind.NORMAL]
    assert len(played) == 40 and jb.stats().concealed_samples == 0
    assert [f.timestamp for f in played] == [(ts0 + k * FRAME) % 2**32 for k in range(40)]
    assert [f.extended_timestamp - played[0].extended_timestamp for f in played] == [
        k * FRAME for k in range(40)
    ]


def test_timestamp_jump_resets_and_keeps_playing(frames):
    arrivals = stream(frames, 30, delay=5.0)
    # The sender's timestamps jump by 10^9 mid-stream (a restart, a mixer switch).
    arrivals += [
        (t + 600.0, s + 30, (ts + 10**9) % 2**32, p) for t, s, ts, p in stream(frames, 30, delay=5.0)
    ]
    jb = fixed_buffer()
    out, _ = play(jb, arrivals, 75)
    assert len(normal_payloads(out)) == 60
    assert jb.stats().buffer_resets == 1


def test_ssrc_change_resets_to_the_new_source(frames):
    jb = fixed_buffer()
    first = stream(frames, 20, seq0=100, ts0=5000, delay=5.0)
    out1, _ = play(jb, first, 25)
    second = stream(frames, 20, seq0=40000, ts0=777777, delay=5.0, start=500.0)
    out2, results = [], []
    i = 0
    for k in range(25, 60):
        now = k * 20.0
        while i < len(second) and second[i][0] <= now:
            t, s, ts, p = second[i]
            results.append(jb.put(s, ts, 2, False, p, t))
            i += 1
        out2.append(jb.get(now))
    assert all(r is PutResult.OK for r in results)
    assert [f.sequence for f in out2 if f.kind is FrameKind.NORMAL] == [(40000 + k) for k in range(20)]
    assert jb.stats().buffer_resets == 1


def test_sequence_jump_needs_two_packets_to_reset(frames):
    jb = fixed_buffer()
    play(jb, stream(frames, 10, delay=5.0), 12)
    # One stray packet far away is discarded ...
    assert jb.put(30000, 10 * FRAME, 1, False, frames[0], 240.0) is PutResult.DISCARDED
    assert jb.stats().buffer_resets == 0
    # ... a second that follows it is a new stream.
    assert jb.put(30001, 11 * FRAME, 1, False, frames[1], 260.0) is PutResult.OK
    assert jb.stats().buffer_resets == 1


def test_talkspurts_with_marker_play_every_packet(frames):
    t = netsim.packets(1500, talkspurt_ms=(1200.0, 800.0), seed=3)
    t = netsim.gaussian_jitter(t, base_ms=20, sigma_ms=3, seed=4)
    assert t.marker.sum() > 5  # several talkspurts
    jb = JitterBuffer()
    res = jb.run_trace(t)
    played = res.sequences[res.sequences >= 0]
    assert len(played) == len(t) and np.all(np.diff(played) == 1)
    s = res.stats
    assert s.packets_lost == 0 and s.packets_late == 0
    # Silence between talkspurts is Empty; the end of a talkspurt looks like an
    # underrun, concealed for at most max_hold_ms (80 ms: 4 frames).
    assert (res.kinds == FrameKind.EMPTY).sum() > 300
    assert s.concealed_samples <= 5 * FRAME * t.marker.sum()


@pytest.mark.parametrize("drift_ppm", [1000.0, -1000.0], ids=["fast-sender", "slow-sender"])
def test_sender_clock_drift_over_ten_minutes_keeps_delay_bounded(drift_ppm):
    # 0.1% drift is 600 ms over 10 minutes: without adaptation the buffer would
    # grow (fast sender) or starve (slow sender) by that much.
    t = netsim.packets(30_000, drift_ppm=drift_ppm)
    t = netsim.gaussian_jitter(t, base_ms=30, sigma_ms=5, seed=11)
    jb = JitterBuffer()
    res = jb.run_trace(t)
    waits = res.waits_ms
    minute = 3000
    per_minute = [
        waits[i : i + minute][waits[i : i + minute] >= 0].mean()
        for i in range(0, len(waits) - minute, minute)
    ]
    assert max(per_minute) < 80.0, per_minute
    assert abs(per_minute[-1] - per_minute[1]) < 25.0, per_minute
    s = res.stats
    assert s.packets_late + s.packets_discarded < 0.01 * len(t)
    assert s.concealed_samples < 0.02 * len(t) * FRAME


def test_target_follows_the_jitter():
    calm = JitterBuffer().run_trace(
        netsim.gaussian_jitter(netsim.packets(3000), base_ms=30, sigma_ms=2, seed=1)
    )
    rough = JitterBuffer().run_trace(
        netsim.gaussian_jitter(netsim.packets(3000), base_ms=30, sigma_ms=15, seed=1)
    )
    assert calm.stats.target_delay_ms < 15.0
    assert rough.stats.target_delay_ms > 3 * calm.stats.target_delay_ms
    # Both keep late loss low.
    assert calm.stats.packets_late < 30 and rough.stats.packets_late < 60


def test_stats_w3c_names():
    s = JitterBuffer().stats()
    w = s.w3c()
    for name in (
        "jitterBufferDelay",
        "jitterBufferTargetDelay",
        "jitterBufferEmittedCount",
        "concealedSamples",
        "concealmentEvents",
        "insertedSamplesForDeceleration",
        "removedSamplesForAcceleration",
    ):
        assert name in w
    assert isinstance(s, JitterBufferStats)
    with pytest.raises(AttributeError):
        s.packets_received = 5  # frozen


# ----------------------------------------------------------------- bad input


def test_empty_and_oversize_payloads_are_refused_and_counted(frames):
    jb = JitterBuffer(max_payload=200)
    assert jb.put(1, 160, 1, False, b"", 0.0) is PutResult.INVALID
    assert jb.put(1, 160, 1, False, b"\x00" * 201, 0.0) is PutResult.INVALID
    assert jb.put(1, 160, 1, False, frames[0], 0.0) is PutResult.OK
    s = jb.stats()
    assert s.packets_invalid == 2 and s.packets_received == 1


def test_garbage_payload_bytes_are_just_bytes(frames):
    rng = np.random.default_rng(5)
    jb = fixed_buffer()
    garbage = [rng.integers(0, 256, size=rng.integers(1, 1500), dtype=np.uint8).tobytes() for _ in range(30)]
    out, results = play(jb, [(k * 20.0, k, k * FRAME, g) for k, g in enumerate(garbage)], 40)
    assert normal_payloads(out) == garbage


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(seq=70000), "seq"),
        (dict(seq=-1), "seq"),
        (dict(timestamp=2**32), "timestamp"),
        (dict(ssrc=-5), "ssrc"),
        (dict(payload="text"), "payload"),
        (dict(payload=[1, 2]), "payload"),
        (dict(arrival_ms=float("nan")), "arrival_ms"),
        (dict(arrival_ms="1"), "arrival_ms"),
    ],
)
def test_bad_put_arguments_raise_value_error(kwargs, needle):
    args = dict(seq=1, timestamp=0, ssrc=1, marker=False, payload=b"\x00", arrival_ms=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        JitterBuffer().put(**args)


def test_native_layer_counts_non_finite_times_as_invalid():
    jb = _jitter.JitterBuffer(8000, 160, 8, 100, 0, 100, 0, 0.9, 0.99, 1000, 0, 100, True)
    assert jb.put(1, 0, 1, False, b"\x01", float("inf")) == _jitter.PUT_INVALID
    assert jb.get(float("nan"))[0] == _jitter.EMPTY


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(clock_rate=0), "clock_rate"),
        (dict(ptime_ms=0), "ptime_ms"),
        (dict(ptime_ms=20.01), "ptime_ms"),
        (dict(capacity=1), "capacity"),
        (dict(max_payload=0), "max_payload"),
        (dict(min_delay_ms=50, max_delay_ms=10), "max_delay_ms"),
        (dict(quantile=1.0), "quantile"),
        (dict(forget_factor=1.0), "forget_factor"),
        (dict(reference_window_ms=0), "reference_window_ms"),
    ],
)
def test_bad_configuration_raises_value_error(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        JitterBuffer(**kwargs)


def test_get_rejects_non_finite_time():
    with pytest.raises(ValueError, match="now_ms"):
        JitterBuffer().get(float("inf"))


# ----------------------------------------------------------------- model-based


class PacketStoreModel(RuleBasedStateMachine):
    """The native ring store against a dict keyed by sequence number."""

    CAPACITY = 8

    @initialize(head=st.integers(0, 100))
    def setup(self, head):
        self.store = _jitter.PacketStore(self.CAPACITY, 16)
        self.store.clear(head)
        self.head = head
        self.held: dict[int, bytes] = {}
        self.taken: set[int] = set()

    @rule(offset=st.integers(-4, 12), payload=st.binary(min_size=1, max_size=16))
    def insert(self, offset, payload):
        seq = max(0, self.head + offset)
        code = self.store.insert(seq, seq * 160, payload)
        if seq < self.head or seq >= self.head + self.CAPACITY:
            assert code in (2, 3)  # BeforeHead, PastWindow
        elif seq in self.held or seq in self.taken:
            assert code == 1  # Duplicate
        else:
            assert code == 0
            self.held[seq] = payload

    @rule(offset=st.integers(0, 10))
    def advance(self, offset):
        new_head = self.head + offset
        dropped = self.store.advance(new_head)
        gone = [s for s in self.held if s < new_head]
        assert dropped == len(gone)
        for s in gone:
            del self.held[s]
        self.head = new_head

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def take(self, data):
        seq = data.draw(st.sampled_from(sorted(self.held)))
        self.store.take(seq)
        del self.held[seq]
        self.taken.add(seq)

    @invariant()
    def agrees(self):
        if not hasattr(self, "store"):
            return
        assert self.store.head == self.head
        assert self.store.held == len(self.held)
        for seq in range(self.head - 2, self.head + self.CAPACITY + 2):
            assert self.store.find(seq) == self.held.get(seq)
        first = min(self.held) if self.held else -1
        assert self.store.first_from(self.head) == first


TestPacketStoreModel = PacketStoreModel.TestCase
TestPacketStoreModel.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class JitterBufferInvariants(RuleBasedStateMachine):
    """Random arrivals (reordered, duplicated, late, lost) and gets: whatever
    happens, every packet is accounted for exactly once, Normal frames come
    out in strictly increasing order, and each payload is the one put."""

    def __init__(self):
        super().__init__()
        self.jb = JitterBuffer(capacity=16, initial_delay_ms=20, max_delay_ms=200, max_hold_ms=60)
        self.now = 0.0
        self.next_seq = 65530  # cross the wrap
        self.pending: list[int] = []
        self.emitted: list[int] = []
        self.received = 0

    def payload(self, ext: int) -> bytes:
        return ext.to_bytes(4, "big")

    @rule(count=st.integers(1, 3))
    def send(self, count):
        for _ in range(count):
            self.pending.append(self.next_seq)
            self.next_seq += 1

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), duplicate=st.booleans())
    def deliver(self, data, duplicate):
        ext = data.draw(st.sampled_from(self.pending))
        if not duplicate:
            self.pending.remove(ext)
        self.jb.put(ext % 65536, (ext * FRAME) % 2**32, 9, False, self.payload(ext), self.now)
        self.received += 1

    @precondition(lambda self: bool(self.pending))
    @rule()
    def lose(self):
        self.pending.pop(0)

    @rule(ms=st.sampled_from([0.0, 5.0, 20.0, 20.0, 45.0]))
    def tick(self, ms):
        self.now += ms
        f = self.jb.get(self.now)
        if f.kind is FrameKind.NORMAL:
            ext = int.from_bytes(f.payload, "big")
            assert ext % 65536 == f.sequence
            self.emitted.append(ext)

    @invariant()
    def ordered_and_accounted(self):
        assert all(b > a for a, b in zip(self.emitted, self.emitted[1:], strict=False))
        s = self.jb.stats()
        accounted = (
            len(self.emitted)
            + s.packets_duplicated
            + s.packets_late
            + s.packets_discarded
            + self.jb.buffered_packets
        )
        assert accounted == s.packets_received == self.received


TestJitterBufferInvariants = JitterBufferInvariants.TestCase
TestJitterBufferInvariants.settings = settings(
    max_examples=60, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
