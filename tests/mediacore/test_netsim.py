"""mediacore.netsim: trace generators are deterministic and do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from mediacore import netsim


def test_packets_are_a_constant_rate_stream_with_wraps():
    t = netsim.packets(100, seq0=65530, ts0=2**32 - 320, start_ms=1000.0)
    assert len(t) == 100 and t.frame_samples == 160
    assert t.seq.dtype == np.uint16 and t.timestamp.dtype == np.uint32
    assert list(t.seq[:8]) == [65530, 65531, 65532, 65533, 65534, 65535, 0, 1]
    assert list(t.timestamp[:4]) == [2**32 - 320, 2**32 - 160, 0, 160]
    assert np.allclose(np.diff(t.send_ms), 20.0) and t.send_ms[0] == 1000.0
    assert np.array_equal(t.arrival_ms, t.send_ms)
    assert t.marker[0] and not t.marker[1:].any()


def test_drift_changes_the_send_interval_not_the_timestamps():
    fast = netsim.packets(1000, drift_ppm=1000.0)
    slow = netsim.packets(1000, drift_ppm=-1000.0)
    assert np.all(np.diff(fast.timestamp.astype(np.int64)) == 160)
    assert np.diff(fast.send_ms).mean() == pytest.approx(20.0 / 1.001)
    assert np.diff(slow.send_ms).mean() == pytest.approx(20.0 / 0.999)


def test_talkspurts_mark_their_first_packet_and_skip_silence():
    t = netsim.packets(3000, talkspurt_ms=(1000.0, 500.0), seed=1)
    assert 0 < len(t) < 3000
    assert np.all(np.diff(t.seq.astype(np.int64)) % 65536 == 1)  # seq counts sent packets
    gaps = np.diff(t.timestamp.astype(np.int64)) > 160
    # Every timestamp gap (silence) is followed by a marked packet, and only those.
    assert np.array_equal(gaps, t.marker[1:])
    assert t.marker.sum() > 10


def test_jitter_models_are_seeded_and_non_negative():
    base = netsim.packets(5000)
    a = netsim.gaussian_jitter(base, base_ms=30, sigma_ms=10, seed=3)
    b = netsim.gaussian_jitter(base, base_ms=30, sigma_ms=10, seed=3)
    assert np.array_equal(a.arrival_ms, b.arrival_ms)
    d = a.network_delay_ms
    assert d.min() >= 0 and d.mean() == pytest.approx(30, abs=1) and d.std() == pytest.approx(10, abs=0.5)
    p = netsim.pareto_jitter(base, base_ms=20, scale_ms=5, alpha=2.5, seed=3).network_delay_ms
    assert p.min() >= 20 and np.percentile(p, 99.9) > 20 + 5 * 5  # heavy tail


def test_delay_spikes_deliver_the_backlog_at_once():
    t = netsim.delay_spikes(netsim.packets(5000), every_ms=10_000, height_ms=300, seed=2)
    d = t.network_delay_ms
    assert d.max() <= 300 and d.max() > 250
    # Packets sent during a stall all arrive when it ends: equal arrival times.
    stalled = d > 0
    assert stalled.sum() > 20
    assert len(np.unique(np.round(t.arrival_ms[stalled], 6))) < stalled.sum() / 10


def test_reorder_and_received_order():
    t = netsim.reorder(netsim.packets(2000), probability=0.1, extra_ms=50, seed=5)
    rx = t.received()
    assert np.all(np.diff(rx.arrival_ms) >= 0)
    late = np.diff(rx.seq.astype(np.int64)) < 0
    assert 100 < late.sum() < 300


def test_duplicates_appear_twice_in_arrival_order():
    t = netsim.duplicate(netsim.packets(1000), probability=0.05, extra_ms=2.0, seed=7)
    assert 1020 < len(t) < 1080
    seq, counts = np.unique(t.seq, return_counts=True)
    assert len(seq) == 1000 and counts.max() == 2


def test_random_loss_rate_and_gilbert_elliott_bursts():
    n = 200_000
    lost = netsim.loss_mask_random(n, 0.05, seed=1)
    assert lost.mean() == pytest.approx(0.05, abs=0.003)
    ge = netsim.loss_mask_gilbert_elliott(n, p_good_to_bad=0.02, p_bad_to_good=0.25, seed=1)
    assert ge.mean() == pytest.approx(0.02 / 0.27, abs=0.01)
    # Mean burst length 1 / p_bad_to_good = 4 packets.
    edges = np.diff(np.concatenate(([0], ge.astype(int), [0])))
    bursts = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    assert bursts.mean() == pytest.approx(4.0, abs=0.3)
    t = netsim.gilbert_elliott_loss(netsim.packets(1000), p_good_to_bad=0.05, p_bad_to_good=0.5, seed=4)
    assert t.lost.any() and np.isnan(t.arrival_ms[t.lost]).all()
    assert len(t.received()) == (~t.lost).sum()


@pytest.mark.parametrize("name", sorted(netsim.SCENARIOS))
def test_scenarios(name):
    t = netsim.scenario(name, 3000, seed=1)
    assert len(t) == 3000 and not t.lost.any()
    assert np.all(t.network_delay_ms >= 0)
    assert np.array_equal(netsim.scenario(name, 3000, seed=1).arrival_ms, t.arrival_ms)


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda: netsim.packets(-1), "n must"),
        (lambda: netsim.packets(10, ptime_ms=0), "ptime_ms"),
        (lambda: netsim.packets(10, talkspurt_ms=(0, 1)), "talkspurt_ms"),
        (lambda: netsim.loss_mask_random(10, 1.5), "probability"),
        (lambda: netsim.loss_mask_gilbert_elliott(10, p_good_to_bad=-1, p_bad_to_good=0.5), "p_good_to_bad"),
        (lambda: netsim.scenario("nope"), "scenario"),
        (lambda: netsim.gaussian_jitter(netsim.packets(3), base_ms=1, sigma_ms=-1), "sigma_ms"),
    ],
)
def test_bad_arguments(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()
