"""Playout: jitter buffer + decoder + PLC + time-stretch, one PCM frame per tick.

Speech comes from espeak-ng (tests/conftest.py), is encoded with our G.711
(or Opus) and carried over mediacore.netsim traces with fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from mediacore import g711, l16, netsim
from mediacore.jitter import FrameKind, Playout

FRAME = 160


def ulaw_payloads(pcm: np.ndarray, n: int) -> list[bytes]:
    """n 20 ms mu-law payloads of pcm, looped."""
    frames = len(pcm) // FRAME
    codes = g711.ulaw_encode(np.tile(pcm[: frames * FRAME], n // frames + 1)[: n * FRAME])
    return [codes[i * FRAME : (i + 1) * FRAME] for i in range(n)]


def decoded(payloads: list[bytes]) -> np.ndarray:
    return g711.ulaw_decode(b"".join(payloads))


def fixed(**kw) -> Playout:
    opts = dict(min_delay_ms=40, max_delay_ms=40, initial_delay_ms=40, time_stretch=False)
    opts.update(kw)
    return Playout("PCMU", **opts)


def test_clean_network_plays_the_decoded_speech_exactly(speech_8k):
    n = len(speech_8k) // FRAME
    payloads = ulaw_payloads(speech_8k, n)
    trace = netsim.gaussian_jitter(netsim.packets(n), base_ms=25, sigma_ms=0, seed=0)
    res = fixed().run_trace(trace, payloads)
    kinds = res.kinds
    first = int(np.argmax(kinds == FrameKind.NORMAL))
    # 25 ms transit + 40 ms delay: the first packet is due at 65 ms, tick 4 (80 ms).
    assert first == 4 and np.all(kinds[:first] == FrameKind.EMPTY)
    assert np.all(kinds[first : first + n] == FrameKind.NORMAL)
    assert np.array_equal(res.pcm[first * FRAME : (first + n) * FRAME], decoded(payloads))
    s = res.stats
    assert s.concealed_samples == 0 and s.jitter_buffer_emitted_count == n * FRAME
    assert s.inserted_samples_for_deceleration == 0 and s.removed_samples_for_acceleration == 0
    assert np.allclose(res.added_delay_ms, 55.0)


def test_lost_packets_are_concealed_and_good_frames_kept(speech_8k):
    n = len(speech_8k) // FRAME
    payloads = ulaw_payloads(speech_8k, n)
    lost = netsim.loss_mask_random(n, 0.1, seed=3)
    lost[0] = False  # the stream starts with a packet
    trace = netsim.packets(n)
    trace = trace.with_arrival(np.where(lost, np.nan, trace.send_ms + 25.0))
    res = fixed().run_trace(trace, payloads, ticks=n + 4)  # up to the last frame's tick
    first = 4
    kinds = res.kinds[first : first + n]
    assert np.array_equal(kinds == FrameKind.CONCEALED, lost)
    s = res.stats
    assert s.concealed_samples == lost.sum() * FRAME
    # A loss counts once a later packet shows the gap (the stream's last
    # packet is lost here: it is concealed but never known lost).
    assert s.packets_lost == lost[: np.flatnonzero(~lost)[-1]].sum()
    # Good frames are the decoded packets, apart from the crossfade (at most
    # 10 ms) at the start of a frame that follows a loss.
    truth = decoded(payloads)
    out = res.pcm[first * FRAME : (first + n) * FRAME]
    after_loss = np.concatenate(([False], lost[:-1]))
    for k in np.flatnonzero(~lost):
        skip = 80 if after_loss[k] else 0
        seg = slice(k * FRAME + skip, (k + 1) * FRAME)
        assert np.array_equal(out[seg], truth[seg]), k


def test_time_stretch_brings_an_oversized_delay_down(speech_8k):
    n = 3 * len(speech_8k) // FRAME
    payloads = ulaw_payloads(speech_8k, n)
    trace = netsim.gaussian_jitter(netsim.packets(n), base_ms=25, sigma_ms=0, seed=0)
    # Starts at 120 ms; the measured jitter is zero, so the target falls to the floor.
    res = Playout("PCMU", initial_delay_ms=120, min_delay_ms=10).run_trace(trace, payloads)
    delay = res.added_delay_ms
    assert delay[:5].mean() > 100
    assert delay[-50:].mean() < 40
    s = res.stats
    assert s.removed_samples_for_acceleration > 80 * 8  # at least 80 ms removed
    assert s.packets_lost == 0 and s.packets_late == 0
    # No concealment but the hold after the last packet (80 ms: 4 frames).
    assert s.concealed_samples == 4 * FRAME
    last = np.flatnonzero(res.kinds == FrameKind.NORMAL)[-1]
    assert np.all(res.kinds[: last + 1] != FrameKind.CONCEALED)
    assert len(res.pcm) == len(res.kinds) * FRAME


def test_jittery_network_costs_little_concealment(speech_8k):
    n = 3000  # one minute
    trace = netsim.scenario("gaussian", n, seed=5)
    res = Playout("PCMU").run_trace(trace, ulaw_payloads(speech_8k, n))
    s = res.stats
    assert s.packets_received == n and s.packets_lost == 0
    assert s.concealed_samples < 0.01 * n * FRAME
    assert len(res.played_sequences) > 0.99 * n
    d = res.added_delay_ms
    assert 0 <= d.min() and d.mean() < 60


@pytest.mark.parametrize("drift_ppm", [1000.0, -1000.0], ids=["fast-sender", "slow-sender"])
def test_drifting_sender_over_ten_minutes(speech_8k, drift_ppm):
    n = 30_000
    trace = netsim.gaussian_jitter(netsim.packets(n, drift_ppm=drift_ppm), base_ms=30, sigma_ms=5, seed=2)
    res = Playout("PCMU").run_trace(trace, ulaw_payloads(speech_8k, n))
    d = res.added_delay_ms
    minute = 3000
    per_minute = [d[i : i + minute].mean() for i in range(0, len(d) - minute + 1, minute)]
    assert max(per_minute) < 60, per_minute
    assert abs(per_minute[-1] - per_minute[1]) < 15, per_minute
    s = res.stats
    assert s.packets_late + s.packets_lost + s.packets_discarded < 0.005 * n
    assert s.concealed_samples < 0.01 * n * FRAME
    # A fast sender is absorbed by acceleration, a slow one by deceleration.
    if drift_ppm > 0:
        assert s.removed_samples_for_acceleration > 0.5 * 0.001 * n * FRAME
    else:
        assert s.inserted_samples_for_deceleration + s.concealed_samples > 0.5 * 0.001 * n * FRAME


def test_talkspurts_play_every_packet_with_silence_between(speech_8k):
    t = netsim.gaussian_jitter(
        netsim.packets(1500, talkspurt_ms=(1500.0, 700.0), seed=8), base_ms=20, sigma_ms=4, seed=9
    )
    res = Playout("PCMU").run_trace(t, ulaw_payloads(speech_8k, len(t)))
    assert len(res.played_sequences) == len(t)
    assert np.all(np.diff(res.played_sequences) == 1)
    empty = res.kinds == FrameKind.EMPTY
    assert empty.sum() > 200
    assert not np.any(res.pcm.reshape(-1, FRAME)[empty])


def test_l16_wideband_passthrough(tmp_path):
    from tests.conftest import read_wav
    from tools.prompts import make_speech

    wav = make_speech("Your call is important to us.", tmp_path / "w.wav", rate=16000)
    pcm = read_wav(wav)[1]
    frame = 320
    n = len(pcm) // frame
    payloads = [l16.encode(pcm[i * frame : (i + 1) * frame]) for i in range(n)]
    trace = netsim.gaussian_jitter(netsim.packets(n, clock_rate=16000), base_ms=25, sigma_ms=0)
    p = Playout("L16", sample_rate=16000, min_delay_ms=40, max_delay_ms=40, time_stretch=False)
    assert p.frame_samples == 320
    res = p.run_trace(trace, payloads)
    first = int(np.argmax(res.kinds == FrameKind.NORMAL))
    assert np.array_equal(res.pcm[first * frame : (first + n) * frame], pcm[: n * frame])


def test_tick_by_tick_matches_run_trace(speech_8k):
    n = 200
    payloads = ulaw_payloads(speech_8k, n)
    trace = netsim.scenario("reorder", n, seed=4)
    whole = Playout("PCMU").run_trace(trace, payloads, ticks=230)
    p = Playout("PCMU")
    rx = trace.received()
    index = {int(s): i for i, s in enumerate(trace.seq)}
    out, kinds, i = [], [], 0
    buf = np.empty(FRAME, np.int16)
    for k in range(230):
        now = k * 20.0
        while i < len(rx) and rx.arrival_ms[i] <= now:
            p.put(
                int(rx.seq[i]),
                int(rx.timestamp[i]),
                1,
                bool(rx.marker[i]),
                payloads[index[int(rx.seq[i])]],
                float(rx.arrival_ms[i]),
            )
            i += 1
        f = p.tick(now, out=buf) if k % 2 else p.tick(now)
        out.append(f.pcm.copy())
        kinds.append(f.kind)
    assert np.array_equal(np.concatenate(out), whole.pcm)
    assert kinds == [FrameKind(k) for k in whole.kinds]
    assert p.stats() == whole.stats


def test_stats_in_pcm_samples_with_w3c_names(speech_8k):
    n = 500
    res = Playout("PCMU").run_trace(netsim.scenario("pareto", n, seed=1), ulaw_payloads(speech_8k, n))
    w = res.stats.w3c()
    assert w["jitterBufferEmittedCount"] == len(res.played_sequences) * FRAME
    assert w["totalSamplesReceived"] == len(res.kinds) * FRAME
    assert w["concealedSamples"] == res.stats.concealed_samples
    assert 0 < res.stats.mean_delay_ms < 200


# ----------------------------------------------------------------- Opus


@pytest.fixture(scope="module")
def opus_packets(speech_8k):
    opus = pytest.importorskip("mediacore.opus")
    from mediacore import resample

    pcm16 = (
        resample.resample(speech_8k, 8000, 16000)
        if hasattr(resample, "resample")
        else np.repeat(speech_8k, 2)
    )
    enc = opus.Encoder(16000, 1, "voip", bitrate=24000, fec=True, packet_loss_percent=20)
    frame = 320
    n = len(pcm16) // frame
    return pcm16, [enc.encode(pcm16[i * frame : (i + 1) * frame]) for i in range(n)]


def test_opus_single_losses_are_rebuilt_from_fec(opus_packets):
    pcm16, packets = opus_packets
    n = len(packets)
    lost = np.zeros(n, dtype=bool)
    lost[10 : n - 5 : 7] = True  # isolated losses: the next packet carries the FEC
    trace = netsim.packets(n, clock_rate=48000)
    trace = trace.with_arrival(np.where(lost, np.nan, trace.send_ms + 25.0))
    p = Playout("opus", sample_rate=16000, min_delay_ms=40, max_delay_ms=40, time_stretch=False)
    res = p.run_trace(trace, packets)
    s = res.stats
    assert s.concealed_samples == lost.sum() * 320
    # libopus writes LBRR for most voiced frames, not all.
    assert s.fec_recovered_samples >= 0.6 * lost.sum() * 320
    assert s.fec_recovered_samples % 320 == 0
    assert s.decode_errors == 0


def test_opus_without_fec_uses_the_decoder_plc(opus_packets):
    pcm16, packets = opus_packets
    n = len(packets)
    trace = netsim.random_loss(
        netsim.gaussian_jitter(netsim.packets(n, clock_rate=48000), base_ms=25, sigma_ms=0),
        probability=0.1,
        seed=1,
    )
    p = Playout(
        "opus", sample_rate=16000, min_delay_ms=40, max_delay_ms=40, time_stretch=False, use_fec=False
    )
    res = p.run_trace(trace, packets)
    s = res.stats
    assert s.concealed_samples == trace.lost.sum() * 320 and s.fec_recovered_samples == 0
    # The decoder's PLC keeps the level up where the packets were lost.
    frames = res.pcm.reshape(-1, 320)
    concealed = frames[res.kinds == FrameKind.CONCEALED].astype(float)
    assert np.sqrt(np.mean(concealed**2)) > 100


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(codec="G729"), "codec"),
        (dict(codec="PCMU", sample_rate=16000), "sample_rate"),
        (dict(codec="L16", sample_rate=44100), "sample_rate"),
        (dict(codec="PCMU", ptime_ms=0.01), "ptime_ms"),
        (dict(codec="PCMU", accelerate_above_ms=-1), "accelerate_above_ms"),
    ],
)
def test_bad_configuration(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        Playout(**kwargs)


def test_bad_tick_arguments():
    p = Playout("PCMU")
    with pytest.raises(ValueError, match="now_ms"):
        p.tick(float("nan"))
    with pytest.raises(ValueError, match="need 160"):
        p.tick(0.0, out=np.empty(100, np.int16))
    with pytest.raises(ValueError, match="int16"):
        p.tick(0.0, out=np.empty(160, np.float32))
    with pytest.raises(ValueError, match="payloads"):
        p.run_trace(netsim.packets(3), [b"\xff" * 160])


def test_corrupt_payload_is_concealed_not_fatal():
    p = Playout(
        "L16", sample_rate=8000, min_delay_ms=0, max_delay_ms=0, initial_delay_ms=0, time_stretch=False
    )
    p.put(1, 0, 1, True, b"\x01\x02\x03", 0.0)  # odd length: not L16
    f = p.tick(0.0)
    assert f.kind is FrameKind.CONCEALED and len(f.pcm) == 160
    assert p.stats().decode_errors == 1


# ----------------------------------------------------------------- quick quality checks
# (the full sweeps with plots are bench/test_quality_plc.py and bench/test_quality_jitter.py)


def test_quick_delay_against_the_fixed_buffer_oracle(speech_8k):
    n = 6000  # two minutes of Gaussian jitter
    trace = netsim.scenario("gaussian", n, seed=7)
    res = Playout("PCMU").run_trace(trace, ulaw_payloads(speech_8k, n))
    last = int(np.flatnonzero(res.kinds == FrameKind.NORMAL)[-1])
    late = np.sum(res.kinds[: last + 1] == FrameKind.CONCEALED) / n
    d = np.sort(trace.network_delay_ms)
    t = d[len(d) - 1 - int(late * n)]
    oracle = np.mean(t - d[d <= t])
    assert late <= 0.01
    assert res.added_delay_ms.mean() <= 1.25 * oracle


def test_quick_pesq_plc_beats_silence_at_5_percent(speech_8k):
    pesq = pytest.importorskip("pesq")
    from mediacore.plc import conceal_losses

    n = len(speech_8k) // FRAME
    ref = speech_8k[: n * FRAME]
    payloads = ulaw_payloads(speech_8k, n)
    margins = []
    for seed in range(3):
        lost = netsim.loss_mask_random(n, 0.05, seed=seed)
        lost[0] = False
        trace = netsim.packets(n)
        trace = trace.with_arrival(np.where(lost, np.nan, trace.send_ms + 25.0))
        res = fixed().run_trace(trace, payloads, ticks=n + 4)
        ours = res.pcm[4 * FRAME : (4 + n) * FRAME]
        silence = conceal_losses(decoded(payloads), lost, FRAME, "silence")
        margins.append(pesq.pesq(8000, ref, ours, "nb") - pesq.pesq(8000, ref, silence, "nb"))
    assert min(margins) > 0.0 and np.median(margins) > 0.3, margins
