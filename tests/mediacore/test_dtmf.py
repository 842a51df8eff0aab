"""In-band DTMF detector: the ITU-T Q.24 acceptance grid, talk-off, G.711, noise.

Signals come from our tone generator (itself checked sample by sample in
test_tones.py), from espeak-ng speech in twelve voices (about 7 minutes, via
tools/prompts.py) and from sox (noise, plucked and sawtooth music).

Q.24 figures asserted (operate / non-operate): level -25 dBm0 per tone found,
-35 dBm0 not; twist 8 dB normal and 4 dB reverse found, 12 dB and 8 dB not;
frequency error +-1.5 % found, +-3.5 % not; 40 ms found, 23 ms not; a 10 ms
interruption is one digit, a 40 ms pause makes two.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediacore import dtmf, g711, tones
from mediacore.dtmf import DtmfDetector, DtmfDigit
from tests.conftest import read_wav

DIGITS = dtmf.DIGITS
RATES = [8000, 16000, 48000]


def signal(parts, rate: int = 8000, lead_ms: float = 0.0) -> np.ndarray:
    """Silence for lead_ms, then the tones one after the other."""
    lead = np.zeros(int(round(lead_ms * rate / 1000)), np.int16)
    return np.concatenate([lead, tones.render(parts, rate)])


def found(pcm, rate: int = 8000, **limits) -> str:
    return "".join(d.digit for d in dtmf.detect(pcm, rate, **limits))


def digit_signal(digit: str, rate: int = 8000, lead_ms: float = 20.0, **kw) -> np.ndarray:
    kw.setdefault("pause_ms", 60)
    return signal([tones.dtmf_tone(digit, **kw)], rate, lead_ms)


# ---------------------------------------------------------------- basics

@pytest.mark.parametrize("rate", RATES)
def test_all_sixteen_digits_with_their_positions(rate):
    pcm = signal([tones.dtmf_tone(d, duration_ms=80, pause_ms=70) for d in DIGITS], rate, lead_ms=30)
    got = dtmf.detect(pcm, rate)
    assert "".join(d.digit for d in got) == DIGITS
    block = 51 * rate // 8000  # the detector's sub-block: its time resolution
    for i, d in enumerate(got):
        start = (30 + 150 * i) * rate // 1000
        end = start + 80 * rate // 1000
        assert abs(d.start_sample - start) <= block, (d, start)
        assert abs(d.end_sample - end) <= block, (d, end)


def test_lower_case_letters_are_the_same_digits():
    assert found(signal([tones.dtmf_tone(d) for d in "abcd"])) == "ABCD"


@pytest.mark.parametrize("frames", [[1], [7, 13], [160], [333, 1, 4096], [10**6]])
def test_frame_size_does_not_change_the_result(frames):
    pcm = tones.dtmf_sequence("159#D*", duration_ms=60, pause_ms=50)
    detector = DtmfDetector()
    got, pos, i = [], 0, 0
    while pos < len(pcm):
        size = frames[i % len(frames)]
        got += detector.process(pcm[pos:pos + size])
        pos += size
        i += 1
    got += detector.flush()
    assert got == dtmf.detect(pcm)
    assert "".join(d.digit for d in got) == "159#D*"


def test_digit_in_progress_flush_and_reset():
    detector = DtmfDetector()
    tone = tones.render(tones.dtmf_tone("7", duration_ms=0), 8000, duration_ms=300)
    assert detector.process(tone[:160]) == [] and detector.digit_in_progress is None
    assert detector.process(tone[160:]) == []
    assert detector.digit_in_progress == "7"  # started, not ended: barge-in can act on it
    end = detector.flush()
    assert len(end) == 1 and end[0].digit == "7" and end[0].start_sample <= 51
    assert detector.digit_in_progress is None
    stats = detector.statistics()
    assert stats.digits == 1 and stats.samples == 2400 and stats.windows == 2400 // 51 - 1
    detector.reset()
    assert detector.statistics().samples == 0


def test_statistics_account_for_every_window():
    detector = DtmfDetector()
    detector.process(np.concatenate([tones.dtmf_sequence("123"), np.random.default_rng(1).integers(
        -8000, 8000, 8000).astype(np.int16)]))
    s = detector.statistics()
    rejected = (s.rejected_level + s.rejected_twist + s.rejected_relative_peak + s.rejected_tone_ratio +
                s.rejected_fill + s.rejected_frequency + s.rejected_harmonic)
    assert s.valid_windows + rejected == s.windows
    assert s.digits == 3


# ---------------------------------------------------------------- Q.24 grid

@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("level", [-25.0, -10.0, 0.0])
def test_level_accepted(rate, level):
    for d in DIGITS:
        assert found(digit_signal(d, rate, level_dbm0=level), rate) == d, (d, level)


@pytest.mark.parametrize("level", [-35.0, -45.0])
def test_level_rejected(level):
    for d in DIGITS:
        assert found(digit_signal(d, level_dbm0=level)) == "", (d, level)


# Worst cases: the weaker tone at -25 dBm0, twist at its limit, both tones off
# by 1.5 % in every combination of signs.
DEVIATIONS = [(0.015, 0.015), (-0.015, -0.015), (0.015, -0.015), (-0.015, 0.015)]


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("twist", [8.0, -4.0])
@pytest.mark.parametrize("low_dev, high_dev", DEVIATIONS)
def test_twist_accepted_at_the_limits_with_frequency_error(rate, twist, low_dev, high_dev):
    level = -25.0 if twist > 0 else -25.0 - twist  # the weaker tone at -25 dBm0
    for d in DIGITS:
        pcm = digit_signal(d, rate, level_dbm0=level, twist_db=twist, low_deviation=low_dev, high_deviation=high_dev)
        assert found(pcm, rate) == d, (d, twist, low_dev, high_dev)


@pytest.mark.parametrize("twist", [12.0, -8.0])
def test_twist_rejected(twist):
    for d in DIGITS:
        assert found(digit_signal(d, level_dbm0=-15.0, twist_db=twist)) == "", (d, twist)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("low_dev, high_dev", [(0.015, 0), (-0.015, 0), (0, 0.015), (0, -0.015)] + DEVIATIONS)
def test_frequency_error_of_1_5_percent_accepted(rate, low_dev, high_dev):
    for d in DIGITS:
        assert found(digit_signal(d, rate, low_deviation=low_dev, high_deviation=high_dev), rate) == d


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("low_dev, high_dev", [(0.035, 0), (-0.035, 0), (0, 0.035), (0, -0.035), (0.035, 0.035),
                                               (-0.035, -0.035), (0.05, 0), (0, -0.06)])
def test_frequency_error_of_3_5_percent_rejected(rate, low_dev, high_dev):
    for d in DIGITS:
        assert found(digit_signal(d, rate, low_deviation=low_dev, high_deviation=high_dev), rate) == "", d


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("lead_ms", [0, 1.6, 3.2, 4.8])  # every alignment against the 6.4 ms sub-blocks
def test_40_ms_accepted(rate, lead_ms):
    for d in DIGITS:
        assert found(digit_signal(d, rate, lead_ms=lead_ms, duration_ms=40, level_dbm0=-25.0), rate) == d


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("duration_ms", [23, 20, 10])
@pytest.mark.parametrize("lead_ms", [0, 1.6, 3.2, 4.8])
def test_23_ms_and_shorter_rejected(rate, duration_ms, lead_ms):
    for d in DIGITS:
        assert found(digit_signal(d, rate, lead_ms=lead_ms, duration_ms=duration_ms, level_dbm0=0.0), rate) == ""


@pytest.mark.parametrize("level", [-10.0, -25.0])
@pytest.mark.parametrize("gap_ms", [5, 10])
@pytest.mark.parametrize("lead_ms", [0, 1.6, 3.2, 4.8])
def test_interruption_of_10_ms_is_one_digit(level, gap_ms, lead_ms):
    for d in "159D":
        parts = [tones.dtmf_tone(d, level_dbm0=level, duration_ms=100, pause_ms=gap_ms),
                 tones.dtmf_tone(d, level_dbm0=level, duration_ms=100, pause_ms=50)]
        assert found(signal(parts, lead_ms=lead_ms)) == d


@pytest.mark.parametrize("level", [-10.0, -25.0])
@pytest.mark.parametrize("lead_ms", [0, 1.6, 3.2, 4.8])
def test_pause_of_40_ms_separates_identical_digits(level, lead_ms):
    for d in "159D":
        parts = [tones.dtmf_tone(d, level_dbm0=level, duration_ms=60, pause_ms=40),
                 tones.dtmf_tone(d, level_dbm0=level, duration_ms=60, pause_ms=50)]
        assert found(signal(parts, lead_ms=lead_ms)) == d + d


def test_a_different_digit_without_pause_is_a_new_digit():
    parts = [tones.dtmf_tone("1", duration_ms=80), tones.dtmf_tone("2", duration_ms=80, pause_ms=50)]
    got = dtmf.detect(signal(parts))
    assert [d.digit for d in got] == ["1", "2"]
    assert got[0].end_sample <= got[1].start_sample + 2 * 51


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(DIGITS), st.integers(45, 200), st.integers(45, 200),
                          st.floats(-24.0, 0.0), st.floats(-3.5, 7.5), st.floats(-0.014, 0.014),
                          st.floats(-0.014, 0.014)), min_size=1, max_size=8),
       st.sampled_from([8000, 16000]))
def test_any_in_spec_digit_string_is_found_exactly(keys, rate):
    parts = []
    for d, on, off, level, twist, low_dev, high_dev in keys:
        level = min(level, 0.0 - max(twist, 0.0))  # keep both tones <= 0 dBm0
        parts.append(tones.dtmf_tone(d, level_dbm0=level, twist_db=twist, duration_ms=on, pause_ms=off,
                                     low_deviation=low_dev, high_deviation=high_dev))
    expected = "".join(k[0] for k in keys)
    assert found(signal(parts, rate, lead_ms=10), rate) == expected


# ---------------------------------------------------------------- G.711

@pytest.mark.parametrize("law", ["ulaw", "alaw"])
@pytest.mark.parametrize("level", [-25.0, -10.0, 0.0])
def test_digits_survive_g711(law, level):
    encode, decode = getattr(g711, f"{law}_encode"), getattr(g711, f"{law}_decode")
    pcm = signal([tones.dtmf_tone(d, level_dbm0=level, duration_ms=50, pause_ms=50) for d in DIGITS], lead_ms=10)
    assert found(decode(encode(pcm))) == DIGITS


def test_twist_and_frequency_limits_hold_through_g711():
    for d in DIGITS:
        pcm = digit_signal(d, level_dbm0=-25.0, twist_db=8.0, low_deviation=-0.015, high_deviation=0.015)
        assert found(g711.ulaw_decode(g711.ulaw_encode(pcm))) == d
        pcm = digit_signal(d, low_deviation=0.035)
        assert found(g711.alaw_decode(g711.alaw_encode(pcm))) == ""


# ---------------------------------------------------------------- talk-off and noise

TALK_OFF_TEXT = (
    "Thank you for calling the customer service centre. All of our agents are busy helping other callers. "
    "Please stay on the line and your call will be answered in the order it was received. "
    "For billing questions press one. For technical support press two. To hear these options again press nine. "
    "Your estimated waiting time is four minutes and thirty seconds. We apologise for the delay. "
    "Did you know you can manage your account online, twenty four hours a day, seven days a week? "
    "Oh, hello! Yes, I am calling about my order, number seven eight three two, it has not arrived yet.")
VOICES = [("en-us", 175), ("en-us+f2", 160), ("en-gb+m3", 190), ("en+f4", 150), ("en-us+f5", 200), ("en+m7", 140),
          ("de", 170), ("fr+f3", 170), ("es+m2", 170), ("cmn", 160), ("it+f1", 165), ("pt+klatt", 170)]


def _need(*programs: str) -> None:
    for p in programs:
        if shutil.which(p) is None:
            pytest.skip(f"{p} is not installed")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, np.ndarray]:
    """About 7 minutes of speech at 8 kHz: one text, twelve voices and languages."""
    _need("espeak-ng", "sox")
    from tools.prompts import make_speech

    out = {}
    folder = tmp_path_factory.mktemp("talkoff")
    for voice, speed in VOICES:
        path = make_speech(TALK_OFF_TEXT, folder / f"{voice.replace('+', '_')}.wav", rate=8000, voice=voice,
                           speed=speed)
        out[voice] = read_wav(path)[1]
    return out


def sox_signal(tmp_path: Path, name: str, *effects: str) -> np.ndarray:
    _need("sox")
    path = tmp_path / f"{name}.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(path), *effects],
                   check=True, capture_output=True)
    return read_wav(path)[1]


def test_speech_is_not_taken_for_digits(speech):
    assert sum(len(x) for x in speech.values()) > 6 * 60 * 8000
    for voice, pcm in speech.items():
        for gain_db in (0, 12):  # as recorded, and a loud talker (clipping)
            x = np.clip(pcm * 10 ** (gain_db / 20), -32768, 32767).astype(np.int16)
            for coded in (x, g711.ulaw_decode(g711.ulaw_encode(x))):
                assert dtmf.detect(coded) == [], (voice, gain_db)


def test_speech_at_16_khz_is_not_taken_for_digits(tmp_path):
    _need("espeak-ng", "sox")
    from tools.prompts import make_speech

    for voice in ("en-us+f2", "en+m7"):
        pcm = read_wav(make_speech(TALK_OFF_TEXT, tmp_path / f"{voice}.wav", rate=16000, voice=voice))[1]
        assert dtmf.detect(np.clip(pcm * 2.0, -32768, 32767).astype(np.int16), 16000) == []


@pytest.mark.parametrize("kind", ["whitenoise", "pinknoise", "brownnoise"])
@pytest.mark.parametrize("volume", ["0.05", "0.3", "0.9"])
def test_noise_is_not_taken_for_digits(tmp_path, kind, volume):
    assert dtmf.detect(sox_signal(tmp_path, kind, "synth", "30", kind, "vol", volume)) == []


def test_music_is_not_taken_for_digits(tmp_path):
    plucked = sox_signal(tmp_path, "pluck", "synth", "0.25", *sum((["pluck", n] for n in (
        "C4", "E4", "G4", "C5", "E5", "G5", "F5", "E6", "A4", "D5", "F#5", "B4")), []), "repeat", "20", "vol", "0.8")
    # Sawtooth chords, including F5 + E6 (698.5 + 1318.5 Hz, within 1.3 % of the
    # '2' pair): their harmonics give them away.
    saw = sox_signal(tmp_path, "saw", "synth", "0.3", "sawtooth", "F5", "sawtooth", "E6", ":", "synth", "0.3",
                     "sawtooth", "C5", "sawtooth", "G5", ":", "synth", "0.3", "sawtooth", "A4", "sawtooth", "E5",
                     "repeat", "10", "vol", "0.5")
    assert dtmf.detect(plucked) == []
    assert dtmf.detect(saw) == []
    detector = DtmfDetector()
    detector.process(saw)
    assert detector.statistics().rejected_harmonic > 0  # it was the harmonic test that caught them


def test_pure_sine_chord_on_a_dtmf_pair_is_a_digit(tmp_path):
    # The limit of any Q.24 receiver: two sines within 1.5 % of a DTMF pair ARE
    # a digit, whatever made them (here F5 + E6 as sines).
    chord = sox_signal(tmp_path, "sine", "synth", "0.3", "sine", "F5", "sine", "E6", "vol", "0.5")
    assert found(chord) == "2"


def test_digits_in_white_noise(tmp_path):
    noise = sox_signal(tmp_path, "noise", "synth", "5", "whitenoise", "vol", "0.075")
    pcm = signal([tones.dtmf_tone(d, level_dbm0=-20, duration_ms=60, pause_ms=60) for d in DIGITS], lead_ms=20)
    mixed = np.clip(pcm.astype(float) + noise[:len(pcm)], -32768, 32767).astype(np.int16)
    snr = 10 * np.log10(np.mean(pcm[pcm != 0].astype(float) ** 2) / np.mean(noise.astype(float) ** 2))
    assert 11 < snr < 13
    assert found(mixed) == DIGITS


def test_digits_over_speech_are_found(speech):
    # Digits at -10 dBm0 per tone, 100 ms each, every ~0.3 s over speech at its
    # recorded level, through G.711: about 1200 digits. Every digit at least
    # 6 dB above the speech under it must be found, and 95 % of all; the
    # misses (measured: 35 of 1236) are all below 4 dB, where the speech is as
    # loud as the tones. No extra or doubled digit is allowed.
    total = asserted = hits = 0
    rng = np.random.default_rng(5)
    for voice, sp in speech.items():
        x = sp.astype(float)
        truth = []
        pos = 2000
        while pos + 1600 < len(sp):
            d = DIGITS[rng.integers(16)]
            burst = tones.render(tones.dtmf_tone(d, level_dbm0=-10.0, duration_ms=100), 8000)
            snr = 10 * np.log10(np.mean(burst.astype(float) ** 2) / max(np.mean(x[pos:pos + 800] ** 2), 1.0))
            x[pos:pos + 800] += burst
            truth.append((d, pos, snr))
            pos += 800 + int(rng.integers(1200, 2800))
        mixed = g711.ulaw_decode(g711.ulaw_encode(np.clip(x, -32768, 32767).astype(np.int16)))
        got = dtmf.detect(mixed)
        # Every detection is a real digit overlapping its tone (speech may hide
        # its first or last milliseconds), each found at most once.
        matched = []
        for g in got:
            near = [i for i, (d, p, _) in enumerate(truth) if d == g.digit and g.start_sample < p + 800 and
                    g.end_sample > p]
            assert near, (voice, g)
            matched.append(near[0])
        assert len(matched) == len(set(matched)), voice
        for i, (d, p, snr) in enumerate(truth):
            total += 1
            hits += i in matched
            if snr >= 6.0:
                asserted += 1
                assert i in matched, (voice, d, p, round(snr, 1))
    assert asserted > 0.6 * total > 600
    assert hits >= 0.95 * total, (hits, total)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad, needle", [
    (np.zeros(160, np.float64), "int16"), (np.zeros(160, np.int32), "int16"),
    (np.zeros((2, 80), np.int16), "one-dimensional"), (np.zeros(320, np.int16)[::2], "contiguous"),
    ([0] * 160, "int16"), ("pcm", "int16"), (b"\x00" * 320, "int16")])
def test_bad_pcm_is_a_value_error(bad, needle):
    with pytest.raises(ValueError, match=needle):
        DtmfDetector().process(bad)


def test_any_int16_buffer_is_accepted():
    import array

    pcm = tones.dtmf_sequence("42")
    assert found(array.array("h", pcm.tobytes())) == "42"
    assert found(memoryview(pcm)) == "42"
    assert DtmfDetector().process(np.zeros(0, np.int16)) == []


@pytest.mark.parametrize("kwargs, needle", [
    ({"sample_rate": 44100}, "sample_rate"), ({"min_level_dbm0": 5}, "min_level_dbm0"),
    ({"max_normal_twist_db": -1}, "max_normal_twist_db"), ({"max_frequency_deviation": 0.2}, "max_frequency"),
    ({"min_tone_energy_ratio": 0}, "min_tone_energy_ratio"), ({"min_harmonic_rejection_db": "x"}, "number")])
def test_bad_limits(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        DtmfDetector(**kwargs)


def test_limits_move_the_boundaries():
    pcm = digit_signal("5", level_dbm0=-40.0)
    assert found(pcm) == ""
    assert found(pcm, min_level_dbm0=-45.0) == "5"
    tilted = digit_signal("5", level_dbm0=-20.0, twist_db=12.0)
    assert found(tilted) == "" and found(tilted, max_normal_twist_db=14.0) == "5"


def test_digit_tuple_shape():
    d = dtmf.detect(tones.dtmf_sequence("9"))[0]
    assert isinstance(d, DtmfDigit) and d == (d.digit, d.start_sample, d.end_sample)
