"""G.711 Appendix I style PLC on real speech (espeak-ng): pitch continuity,
attenuation over long losses, smooth return, and the two baselines."""

from __future__ import annotations

import numpy as np
import pytest

from mediacore import plc as plc_module
from mediacore.jitter import accelerate, find_period, preemptive_expand
from mediacore.plc import G711Plc, conceal_losses

FRAME = 160


def voiced_frames(speech: np.ndarray, count: int) -> list[int]:
    """Start indices of loud, strongly periodic 20 ms frames (vowels), each
    with at least 60 ms of history before it."""
    starts = []
    for start in range(480, len(speech) - 2 * FRAME, FRAME):
        seg = speech[start - 280 : start].astype(np.int16)
        if np.sqrt(np.mean(speech[start : start + FRAME].astype(float) ** 2)) < 2000:
            continue
        lag, corr = find_period(np.ascontiguousarray(seg), 40, 120, 160)
        if corr > 0.9:
            starts.append(start)
    assert len(starts) >= count, f"only {len(starts)} voiced frames"
    step = len(starts) // count
    return starts[::step][:count]


def normalized_correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(float), b.astype(float)
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / denom) if denom else 0.0


def conceal_after(speech: np.ndarray, start: int, samples: int) -> np.ndarray:
    plc = G711Plc(8000)
    for i in range(start - 480, start, FRAME):
        plc.good(speech[i : i + FRAME])
    return plc.conceal(samples)


def test_concealment_of_voiced_speech_continues_the_pitch(speech_8k):
    """Over the first 10 ms of a lost vowel frame, the substitute tracks the
    real waveform far better than silence (0) or repeating the last frame."""
    ours, repeat = [], []
    for start in voiced_frames(speech_8k, 12):
        truth = speech_8k[start : start + 80]
        ours.append(normalized_correlation(conceal_after(speech_8k, start, 80), truth))
        repeat.append(normalized_correlation(speech_8k[start - FRAME : start - FRAME + 80], truth))
    ours_median, repeat_median = float(np.median(ours)), float(np.median(repeat))
    assert ours_median > 0.6, ours
    assert ours_median > repeat_median + 0.3, (ours, repeat)


def test_pitch_of_a_synthetic_vowel_is_found():
    t = np.arange(2000)
    # 125 Hz fundamental (64 samples) with harmonics.
    x = sum(np.sin(2 * np.pi * k * 125 * t / 8000) / k for k in (1, 2, 3))
    pcm = (6000 * x).astype(np.int16)
    plc = G711Plc(8000)
    plc.good(pcm)
    out = plc.conceal(80)
    assert plc.pitch == 64
    # A pure periodic signal continues almost exactly for the first 10 ms.
    expected = pcm[2000 - 64 : 2000 - 64 + 80]
    expected = np.concatenate((pcm[-64:], pcm[-64:]))[:80]
    assert np.max(np.abs(out[16:80].astype(int) - expected[16:80])) < 60


def test_long_loss_fades_to_silence_by_60_ms(speech_8k):
    start = voiced_frames(speech_8k, 1)[0]
    out = conceal_after(speech_8k, start, 800).astype(float)  # 100 ms
    blocks = [np.sqrt(np.mean(out[i : i + 80] ** 2)) for i in range(0, 800, 80)]  # 10 ms each
    # Attenuation starts after 10 ms and goes down 20% per 10 ms.
    assert blocks[0] > 1000
    for a, b in zip(blocks[1:6], blocks[2:6], strict=False):
        assert b < a
    assert np.all(out[480:] == 0)  # silent from 60 ms on
    assert blocks[4] < 0.55 * blocks[0]


def test_return_to_real_audio_is_a_smooth_crossfade(speech_8k):
    """After 40 ms of concealment the first good frame blends in: across the
    join and the crossfade no step is bigger than the steps already in the
    concealed or the real signal, and the join bends the waveform less (second
    difference) than splicing the real frame in abruptly."""
    steps_ours, steps_abrupt = [], []
    for start in voiced_frames(speech_8k, 10):
        plc = G711Plc(8000)
        for i in range(start - 480, start, FRAME):
            plc.good(speech_8k[i : i + FRAME])
        concealed = plc.conceal(2 * FRAME).astype(int)
        real = speech_8k[start + 2 * FRAME : start + 3 * FRAME]
        back = plc.good(real).astype(int)
        own = max(np.max(np.abs(np.diff(concealed))), np.max(np.abs(np.diff(real.astype(int)))))
        joined = np.concatenate((concealed[-1:], back[:96]))
        assert np.max(np.abs(np.diff(joined))) <= own, (start, np.max(np.abs(np.diff(joined))), own)
        abrupt = np.concatenate((concealed[-2:], real[:3].astype(int)))
        steps_ours.append(np.max(np.abs(np.diff(np.concatenate((concealed[-2:], back[:3])), 2))))
        steps_abrupt.append(np.max(np.abs(np.diff(abrupt, 2))))
        # After the crossfade (4 ms + 4 ms per 10 ms beyond the first: 12 ms
        # for 40 ms of loss), the output is the real signal exactly.
        assert np.array_equal(back[96:], real[96:].astype(int))
    assert np.mean(steps_ours) < 0.8 * np.mean(steps_abrupt), (steps_ours, steps_abrupt)


def test_two_sided_concealment_ends_on_the_next_frame(speech_8k):
    """With the next packet at hand, the gap runs straight into it (no step,
    no crossfade needed) and tracks the lost audio better than looking back
    only."""
    one_sided, two_sided = [], []
    for start in voiced_frames(speech_8k, 12):
        truth = speech_8k[start : start + FRAME]
        nxt = speech_8k[start + FRAME : start + 2 * FRAME]
        plc = G711Plc(8000)
        for i in range(start - 480, start, FRAME):
            plc.good(speech_8k[i : i + FRAME])
        gap = plc.conceal_before(nxt, FRAME)
        back = plc.good(nxt)
        assert np.array_equal(back, nxt)  # nothing to crossfade
        assert plc.erased_samples == 0
        own = np.max(np.abs(np.diff(nxt.astype(int))))
        assert abs(int(nxt[0]) - int(gap[-1])) <= own
        two_sided.append(normalized_correlation(gap, truth))
        one_sided.append(normalized_correlation(conceal_after(speech_8k, start, FRAME), truth))
    assert np.mean(two_sided) > np.mean(one_sided) + 0.05, (two_sided, one_sided)


def test_good_frames_pass_through_unchanged(speech_8k):
    plc = G711Plc(8000)
    for i in range(0, 8000, FRAME):
        assert np.array_equal(plc.good(speech_8k[i : i + FRAME]), speech_8k[i : i + FRAME])


def test_conceal_before_any_audio_is_silence():
    assert not np.any(G711Plc(8000).conceal(480))


@pytest.mark.parametrize("rate", [16000, 48000])
def test_other_rates_continue_a_tone(rate):
    t = np.arange(rate // 10)
    tone = (8000 * np.sin(2 * np.pi * 200 * t / rate)).astype(np.int16)
    plc = G711Plc(rate)
    plc.good(tone)
    out = plc.conceal(rate // 100)  # 10 ms
    nxt = (8000 * np.sin(2 * np.pi * 200 * (t[-1] + 1 + np.arange(rate // 100)) / rate)).astype(np.int16)
    assert normalized_correlation(out, nxt) > 0.95
    assert plc.pitch == rate // 200 or plc.pitch == 2 * rate // 200


@pytest.mark.parametrize("method", ["plc", "silence", "repeat"])
def test_conceal_losses_keeps_good_frames(speech_8k, method):
    frames = len(speech_8k) // FRAME
    lost = np.zeros(frames, dtype=bool)
    lost[10:13] = True
    out = conceal_losses(speech_8k, lost, FRAME, method)
    good = np.repeat(~lost, FRAME)
    # Good frames are untouched except the crossfade right after a loss (plc).
    keep = good.copy()
    if method == "plc":
        keep[13 * FRAME : 13 * FRAME + 80] = False
    assert np.array_equal(out[keep], speech_8k[: frames * FRAME][keep])
    gap = out[10 * FRAME : 13 * FRAME]
    if method == "silence":
        assert not np.any(gap)
    elif method == "repeat":
        assert np.array_equal(gap, np.tile(speech_8k[9 * FRAME : 10 * FRAME], 3))


def test_bad_arguments():
    with pytest.raises(ValueError, match="sample_rate"):
        G711Plc(11025)
    with pytest.raises(ValueError, match="pcm"):
        G711Plc().good(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="samples"):
        G711Plc().conceal(-1)
    with pytest.raises(ValueError, match="method"):
        conceal_losses(np.zeros(320, np.int16), [False, False], 160, "magic")
    with pytest.raises(ValueError, match="lost"):
        conceal_losses(np.zeros(320, np.int16), [False], 160)
    assert plc_module.METHODS == ("plc", "silence", "repeat")


# ----------------------------------------------------------------- time-stretch


def test_accelerate_removes_one_pitch_period_of_a_vowel(speech_8k):
    start = voiced_frames(speech_8k, 1)[0]
    seg = np.ascontiguousarray(speech_8k[start : start + 320])
    out = accelerate(seg)
    removed = len(seg) - len(out)
    assert 20 <= removed <= 120
    # The tail after the crossfaded period is the input shifted by that period.
    assert np.array_equal(out[removed:], seg[2 * removed :])
    assert out[0] == seg[0]


def test_preemptive_expand_inserts_one_period(speech_8k):
    start = voiced_frames(speech_8k, 1)[0]
    seg = np.ascontiguousarray(speech_8k[start : start + 320])
    out = preemptive_expand(seg)
    added = len(out) - len(seg)
    assert 20 <= added <= 120
    assert np.array_equal(out[:added], seg[:added])
    assert np.array_equal(out[2 * added :], seg[added:])


def test_stretch_leaves_noise_alone_and_cuts_silence():
    noise = np.random.default_rng(1).integers(-8000, 8000, 320).astype(np.int16)
    assert len(accelerate(noise)) == 320
    assert len(preemptive_expand(noise)) == 320
    silence = np.zeros(320, np.int16)
    assert len(accelerate(silence, max_quiet_samples=100)) == 220
    assert len(preemptive_expand(silence, max_quiet_samples=60)) == 380
