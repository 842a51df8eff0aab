"""Tone generation: call-progress tables, cadence exactness, phase continuity, levels.

The player is checked sample by sample (within 1 LSB) against a plain numpy model of what a
tone is (bursts of summed sines starting at phase 0, exact silence between),
with frames of arbitrary sizes so that every frame boundary is exercised.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediacore import dtmf, tones
from mediacore.tones import Tone, TonePlayer

RATES = [8000, 16000, 48000]


def model(tone: Tone, rate: int, n: int) -> np.ndarray:
    """What the player must produce: n samples of ``tone`` from its start."""
    out = np.zeros(n)
    bursts = []
    if tone.continuous:
        bursts.append((0, n))
    else:
        pos = 0
        while pos < n:
            for on, off in tone.cadence:
                bursts.append((pos, pos + on * rate // 1000))
                pos += (on + off) * rate // 1000
            if not tone.repeat:
                break
    for start, end in bursts:
        end = min(end, n)
        if start >= end:
            continue
        k = np.arange(end - start)
        for f, level in tone.components:
            out[start:end] += dtmf.ZERO_DBM0_PEAK * 10 ** (level / 20) * np.sin(2 * np.pi * f * k / rate)
    return np.clip(np.rint(out), -32768, 32767)


def play_in_frames(tone: Tone, rate: int, n: int, frame_sizes) -> np.ndarray:
    player = TonePlayer(rate)
    player.play(tone)
    parts, got, i = [], 0, 0
    while got < n:
        size = min(frame_sizes[i % len(frame_sizes)], n - got)
        parts.append(player.read(size))
        got += size
        i += 1
    return np.concatenate(parts)


# ---------------------------------------------------------------- tables

@pytest.mark.parametrize("region, name, components, cadence", [
    ("us", "dial", ((350.0, -13.0), (440.0, -13.0)), ()),
    ("us", "ringback", ((440.0, -19.0), (480.0, -19.0)), ((2000, 4000),)),
    ("us", "busy", ((480.0, -24.0), (620.0, -24.0)), ((500, 500),)),
    ("us", "congestion", ((480.0, -24.0), (620.0, -24.0)), ((250, 250),)),
    ("eu", "dial", ((425.0, -13.0),), ()),
    ("eu", "ringback", ((425.0, -13.0),), ((1000, 4000),)),
    ("eu", "busy", ((425.0, -13.0),), ((500, 500),)),
    ("eu", "congestion", ((425.0, -13.0),), ((250, 250),)),
    ("cn", "dial", ((450.0, -13.0),), ()),
    ("cn", "ringback", ((450.0, -13.0),), ((1000, 4000),)),
    ("cn", "busy", ((450.0, -13.0),), ((350, 350),)),
    ("cn", "congestion", ((450.0, -13.0),), ((700, 700),)),
])
def test_call_progress_tables(region, name, components, cadence):
    tone = tones.call_progress_tone(name, region)
    assert tone == Tone(components=components, cadence=cadence, repeat=bool(cadence))


def test_dtmf_tone_frequencies_twist_and_deviation():
    assert tones.dtmf_tone("5").components == ((770.0, -10.0), (1336.0, -10.0))
    assert tones.dtmf_tone("d", level_dbm0=-20, twist_db=3).components == ((941.0, -20.0), (1633.0, -17.0))
    low, high = tones.dtmf_tone("1", low_deviation=0.015, high_deviation=-0.035).components
    assert low[0] == pytest.approx(697 * 1.015) and high[0] == pytest.approx(1209 * 0.965)
    assert tones.dtmf_tone("#", duration_ms=80, pause_ms=40).cadence == ((80, 40),)
    assert tones.dtmf_tone("#", duration_ms=0).continuous
    # Every key of the Q.23 keypad.
    keypad = ["123A", "456B", "789C", "*0#D"]
    for r, row in enumerate(keypad):
        for c, key in enumerate(row):
            (fl, _), (fh, _) = tones.dtmf_tone(key).components
            assert (fl, fh) == ((697.0, 770.0, 852.0, 941.0)[r], (1209.0, 1336.0, 1477.0, 1633.0)[c])


# ---------------------------------------------------------------- the samples

@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("region, name", [("us", "busy"), ("eu", "congestion"), ("cn", "busy"), ("us", "ringback")])
def test_cadence_and_waveform_exact_across_frame_boundaries(rate, region, name):
    tone = tones.call_progress_tone(name, region)
    period = sum(on + off for on, off in tone.cadence) * rate // 1000
    n = 2 * period + rate // 10
    ours = play_in_frames(tone, rate, n, [rate // 50, 7, 333, 1, 4096])
    expected = model(tone, rate, n)
    assert np.max(np.abs(ours - expected)) <= 1
    # Count the cadence directly: the silent runs are exact zeros of the right length.
    on, off = (s * rate // 1000 for s in tone.cadence[0])
    for cycle in range(2):
        start = cycle * period
        assert np.count_nonzero(ours[start + on:start + on + off]) == 0
        assert np.count_nonzero(ours[start:start + on]) >= on - 2 * on * 1300 // rate  # sines touch 0 rarely
        assert ours[start + on - 1] != 0 or ours[start + on - 2] != 0  # on until its very last samples


@pytest.mark.parametrize("rate", RATES)
def test_frame_size_does_not_change_the_output(rate):
    tone = tones.call_progress_tone("congestion", "cn")
    n = 3 * rate
    whole = play_in_frames(tone, rate, n, [n])
    assert np.array_equal(whole, play_in_frames(tone, rate, n, [rate // 50]))
    assert np.array_equal(whole, play_in_frames(tone, rate, n, [1, 2, 3, 97, 1000]))


@pytest.mark.parametrize("f", [425.0, 697.0, 1633.0, 3999.0])
def test_long_continuous_tone_does_not_drift(f):
    # 60 s at 8 kHz in 20 ms frames: the phase accumulator keeps the waveform
    # within 1 LSB of the exact sine at the end.
    tone = Tone(components=((f, -10.0),))
    player = TonePlayer(8000)
    player.play(tone)
    for _ in range(2999):
        player.read(160)
    last = player.read(160)
    k = np.arange(2999 * 160, 3000 * 160)
    exact = np.rint(dtmf.ZERO_DBM0_PEAK * 10 ** (-0.5) * np.sin(2 * np.pi * f * k / 8000))
    assert np.max(np.abs(last - exact)) <= 1
    assert player.position == 480_000 and not player.done


@pytest.mark.parametrize("level", [0.0, -10.0, -25.0])
def test_level_in_dbm0(level):
    pcm = tones.render(Tone(components=((1000.0, level),)), 8000, duration_ms=1000).astype(float)
    rms_db = 20 * np.log10(np.sqrt(np.mean(pcm ** 2)) / (dtmf.ZERO_DBM0_PEAK / np.sqrt(2)))
    assert rms_db == pytest.approx(level, abs=0.01)


def test_zero_dbm0_is_3_17_db_below_full_scale():
    assert 20 * np.log10(32768 / dtmf.ZERO_DBM0_PEAK) == pytest.approx(3.17, abs=0.001)


def test_sum_saturates_instead_of_wrapping():
    loud = Tone(components=((500.0, 3.17), (500.0, 3.17), (500.0, 3.17)))
    pcm = tones.render(loud, 8000, duration_ms=100)
    assert pcm.max() == 32767 and pcm.min() == -32768
    # Saturated, not wrapped: the sign follows the sine.
    k = np.arange(len(pcm))
    s = np.sin(2 * np.pi * 500 * k / 8000)
    assert np.all(pcm[s > 0.5] > 30000) and np.all(pcm[s < -0.5] < -30000)


@settings(max_examples=60, deadline=None)
@given(rate=st.sampled_from(RATES),
       components=st.lists(st.tuples(st.floats(50, 3900), st.floats(-40, -6)), min_size=1, max_size=4),
       cadence=st.lists(st.tuples(st.integers(1, 120), st.integers(0, 120)), min_size=1, max_size=8),
       repeat=st.booleans(),
       frames=st.lists(st.integers(1, 700), min_size=1, max_size=6))
def test_any_tone_matches_the_model(rate, components, cadence, repeat, frames):
    tone = Tone(components=tuple(components), cadence=tuple(cadence), repeat=repeat)
    period = sum(on + off for on, off in cadence) * rate // 1000
    n = 2 * period + 50
    ours = play_in_frames(tone, rate, n, frames)
    assert np.max(np.abs(ours - model(tone, rate, n))) <= 1


# ---------------------------------------------------------------- player semantics

def test_finite_tones_queue_and_finish():
    player = TonePlayer(8000)
    player.enqueue(tones.dtmf_tone("1", duration_ms=50, pause_ms=50))
    player.enqueue(tones.dtmf_tone("2", duration_ms=50, pause_ms=50))
    assert not player.done
    first = player.read(800)
    assert not player.done
    assert np.count_nonzero(player.read(800)[400:]) == 0
    assert player.done
    assert np.count_nonzero(player.read(160)) == 0  # zeros once nothing is left
    assert np.count_nonzero(first[400:]) == 0 and np.count_nonzero(first[:400]) > 390


def test_play_replaces_and_stop_silences():
    player = TonePlayer(8000)
    player.play(tones.call_progress_tone("dial", "us"))
    assert np.count_nonzero(player.read(160)) > 150
    player.play(tones.call_progress_tone("busy", "eu"))
    assert np.array_equal(player.read(160), model(tones.call_progress_tone("busy", "eu"), 8000, 160))
    player.stop()
    assert player.done and np.count_nonzero(player.read(160)) == 0


def test_repeating_and_continuous_tones_are_never_done():
    player = TonePlayer(8000)
    player.play(tones.call_progress_tone("ringback", "cn"))
    player.read(8000 * 12)
    assert not player.done


def test_read_into_preallocated_frame():
    player = TonePlayer(16000)
    player.play(tones.call_progress_tone("busy", "us"))
    out = np.empty(320, np.int16)
    assert player.read_into(out) is out
    assert np.max(np.abs(out - model(tones.call_progress_tone("busy", "us"), 16000, 320))) <= 1


def test_render_and_dtmf_sequence_lengths():
    assert len(tones.dtmf_sequence("0123456789*#", duration_ms=70, pause_ms=30)) == 12 * 800
    assert len(tones.dtmf_sequence("1", 48000)) == 9600
    assert len(tones.render(tones.call_progress_tone("busy", "us"), 16000, duration_ms=2500)) == 40000
    assert len(tones.render([tones.dtmf_tone("1"), tones.dtmf_tone("2", pause_ms=20)], 8000)) == 1760


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, needle", [
    ({"components": ()}, "1 to 4"),
    ({"components": ((440.0, -10.0),) * 5}, "1 to 4"),
    ({"components": ((0.0, -10.0),)}, "frequency"),
    ({"components": ((440.0, 6.0),)}, "level"),
    ({"components": (("x", -10.0),)}, "pairs"),
    ({"components": ((440.0, -10.0),), "cadence": ((0, 100),)}, "0 < on_ms"),
    ({"components": ((440.0, -10.0),), "cadence": ((100, -1),)}, "0 <= off_ms"),
    ({"components": ((440.0, -10.0),), "cadence": ((100, 100),) * 9}, "at most 8"),
])
def test_bad_tone(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        Tone(**kwargs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        tones.call_progress_tone("howler")
    with pytest.raises(ValueError, match="region"):
        tones.call_progress_tone("busy", "uk")
    with pytest.raises(ValueError, match="digit"):
        tones.dtmf_tone("x")
    with pytest.raises(ValueError, match="level_dbm0"):
        tones.dtmf_tone("1", level_dbm0=10)
    with pytest.raises(ValueError, match="3.17"):
        tones.dtmf_tone("1", level_dbm0=0, twist_db=8)
    with pytest.raises(ValueError, match="sample_rate"):
        TonePlayer(44100)
    with pytest.raises(ValueError, match="half the sample rate"):
        TonePlayer(8000).play(Tone(components=((4500.0, -10.0),)))
    TonePlayer(16000).play(Tone(components=((4500.0, -10.0),)))  # fine at 16 kHz
    with pytest.raises(ValueError, match="mediacore.tones.Tone"):
        TonePlayer(8000).play("busy")
    with pytest.raises(ValueError, match="n must be"):
        TonePlayer(8000).read(-1)
    with pytest.raises(ValueError, match="int16"):
        TonePlayer(8000).read_into(np.empty(10, np.float32))
    readonly = np.empty(10, np.int16)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        TonePlayer(8000).read_into(readonly)
    with pytest.raises(ValueError, match="duration_ms"):
        tones.render(tones.call_progress_tone("busy", "us"))
    player = TonePlayer(8000)
    for _ in range(16):
        player.enqueue(tones.dtmf_tone("1"))
    with pytest.raises(ValueError, match="queue is full"):
        player.enqueue(tones.dtmf_tone("1"))
