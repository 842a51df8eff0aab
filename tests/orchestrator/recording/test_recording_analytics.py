"""Post-call analytics against a synthetic call with known talk spans (espeak-ng speech placed at known times).

Tolerances. The truth is sample-exact (first and last sample above |200| of
each utterance); the analysis works in 20 ms VAD frames, and webrtcvad
(mode 2) needs a frame or two to call an onset and keeps "speech" for a
short hangover after the last syllable (we measured +0.06 to +0.14 s per
utterance with these voices). So each utterance's talk time may be off by
at most 0.25 s, and every derived figure (overtalk, silences) by 0.25 s per
boundary it depends on; turns are counted exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recording_kit import place, write_stereo

from mediacore.recorder import OggOpusRecorder, WavRecorder
from orchestrator.recording.analytics import CallAnalytics, analyze, analyze_file, analyze_frames, read_audio

RATE = 8000
PER_UTTERANCE = 0.25


def union(spans):
    out = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def length(spans):
    return sum(b - a for a, b in spans)


def intersect(xs, ys):
    out = []
    for a, b in xs:
        for c, d in ys:
            lo, hi = max(a, c), min(b, d)
            if hi > lo:
                out.append((lo, hi))
    return out


@pytest.fixture(scope="module")
def call(voices, tmp_path_factory):
    """A 14 s call: the agent greets, the caller asks, the agent answers over the caller's short reply."""
    agent, caller, short = voices["agent"], voices["caller"], voices["short"]
    right, r_spans = place(14.0, RATE, (0.5, agent), (8.0, agent))
    left, l_spans = place(14.0, RATE, (4.2, caller), (9.0, short))
    path = write_stereo(tmp_path_factory.mktemp("call") / "call.wav", left, right)
    return {"left": left, "right": right, "l": l_spans, "r": r_spans, "path": path}


def test_talk_overtalk_silence_and_turns_match_the_known_spans(call):
    res = analyze_file(call["path"])
    lu, ru = union(call["l"]), union(call["r"])
    assert res.duration == pytest.approx(14.0)
    assert res.talk_left == pytest.approx(length(lu), abs=PER_UTTERANCE * 2)
    assert res.talk_right == pytest.approx(length(ru), abs=PER_UTTERANCE * 2)
    true_over = length(intersect(lu, ru))
    assert true_over > 0.8  # the scenario has real overtalk
    assert res.overtalk == pytest.approx(true_over, abs=2 * PER_UTTERANCE)
    both = union(lu + ru)
    gaps = [b[0] - a[1] for a, b in zip(both, both[1:])]
    assert res.longest_silence == pytest.approx(max(gaps), abs=2 * PER_UTTERANCE)
    assert res.silence == pytest.approx(sum(gaps), abs=2 * PER_UTTERANCE * len(gaps))
    # agent, caller, agent (caller's "yes" overlaps the agent's second turn, then outlasts it? no: see floor)
    floor = []
    t = np.arange(0, 14.0, 0.02)
    for x in t:
        ltalk = any(a <= x < b for a, b in lu)
        rtalk = any(a <= x < b for a, b in ru)
        holder = 1 if ltalk and not rtalk else 2 if rtalk and not ltalk else 0
        if holder and (not floor or floor[-1] != holder):
            floor.append(holder)
    assert res.turns == len(floor) - 1
    assert res.excluded == 0.0 and res.sample_rate == RATE and res.frame_ms == 20 and res.vad_mode == 2


def test_in_memory_and_file_analyses_agree(call):
    assert analyze(call["left"], call["right"], RATE) == analyze_file(call["path"])


def test_pci_pause_and_hold_spans_are_left_out(call):
    # Leave out the caller's whole question: it counts neither as talk nor as silence.
    (q0, q1) = call["l"][0]
    res = analyze_file(call["path"], exclude=[(q0 - 0.1, q1 + 0.1)])
    full = analyze_file(call["path"])
    assert res.excluded == pytest.approx(q1 - q0 + 0.2, abs=0.05)
    assert res.talk_left == pytest.approx(full.talk_left - (q1 - q0), abs=2 * PER_UTTERANCE)
    assert res.talk_right == full.talk_right
    assert res.longest_silence <= full.longest_silence


@pytest.mark.parametrize("kind", ["ulaw", "alaw", "opus"])
def test_g711_and_opus_recordings_give_the_same_analytics(call, tmp_path, kind):
    path = tmp_path / f"call.{'opus' if kind == 'opus' else 'wav'}"
    rec = OggOpusRecorder(path, RATE, 2) if kind == "opus" else WavRecorder(path, RATE, 2, format=kind)
    with rec:
        rec.write(call["left"], call["right"])
    info, _ = read_audio(path)
    assert (info.sample_rate, info.channels) == (RATE, 2)
    ref = analyze_file(call["path"])
    res = analyze_file(path)
    assert res.duration == pytest.approx(ref.duration, abs=0.08)  # Opus pre-skip / last page
    for name in ("talk_left", "talk_right", "overtalk", "longest_silence"):
        assert getattr(res, name) == pytest.approx(getattr(ref, name), abs=0.2), name
    assert res.turns == ref.turns


def test_mono_and_foreign_files_are_refused(tmp_path, voices):
    mono = tmp_path / "mono.wav"
    with WavRecorder(mono, RATE, 1) as rec:
        rec.write(voices["agent"])
    with pytest.raises(ValueError, match="analytics need a stereo recording"):
        analyze_file(mono)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"ID3\x03" + bytes(100))
    with pytest.raises(ValueError, match="not a WAV or Ogg file"):
        analyze_file(junk)


def test_silence_only_call():
    res = analyze(np.zeros(RATE * 3, np.int16), np.zeros(RATE * 3, np.int16), RATE)
    assert res == CallAnalytics(duration=3.0, talk_left=0.0, talk_right=0.0, overtalk=0.0, silence=0.0,
                                longest_silence=0.0, turns=0, excluded=0.0, sample_rate=RATE, frame_ms=20, vad_mode=2)


# -------------------------------------------------------------------- the frame logic against a plain model
def model(left, right, excluded, min_speech, max_gap):
    def smooth(flags):
        f = list(flags)
        runs, i = [], 0
        while i < len(f):
            if f[i]:
                j = i
                while j < len(f) and f[j]:
                    j += 1
                runs.append((i, j))
                i = j
            else:
                i += 1
        for a, b in runs:
            if b - a < min_speech:
                for k in range(a, b):
                    f[k] = False
        kept = [(a, b) for a, b in runs if b - a >= min_speech]
        for (_, e), (s, _) in zip(kept, kept[1:]):
            if s - e <= max_gap:
                for k in range(e, s):
                    f[k] = True
        return f

    n = len(left)
    lf = [x and not e for x, e in zip(smooth(left), excluded)]
    rf = [x and not e for x, e in zip(smooth(right), excluded)]
    talk = [a or b for a, b in zip(lf, rf)]
    silence = longest = run = 0
    if any(talk):
        first = talk.index(True)
        last = n - talk[::-1].index(True)
        for k in range(first, last):
            if not talk[k] and not excluded[k]:
                run += 1
                silence += 1
                longest = max(longest, run)
            else:
                run = 0
    turns, holder = 0, 0
    for a, b in zip(lf, rf):
        h = 1 if a and not b else 2 if b and not a else 0
        if h:
            if holder and h != holder:
                turns += 1
            holder = h
    return sum(lf), sum(rf), sum(a and b for a, b in zip(lf, rf)), silence, longest, turns, sum(excluded)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=120).flatmap(lambda n: st.tuples(
    st.lists(st.booleans(), min_size=n, max_size=n), st.lists(st.booleans(), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n))), st.integers(1, 4), st.integers(0, 6))
def test_frame_analysis_matches_a_plain_model(flags, min_speech, max_gap):
    left, right, excluded = flags
    res = analyze_frames(np.array(left, bool), np.array(right, bool), excluded=np.array(excluded, bool),
                         frame_ms=20, min_speech_ms=20 * min_speech, max_gap_ms=20 * max_gap)
    tl, tr, over, silence, longest, turns, ex = model(left, right, excluded, min_speech, max_gap)
    sec = 0.02
    assert res.talk_left == pytest.approx(tl * sec)
    assert res.talk_right == pytest.approx(tr * sec)
    assert res.overtalk == pytest.approx(over * sec)
    assert res.silence == pytest.approx(silence * sec)
    assert res.longest_silence == pytest.approx(longest * sec)
    assert res.turns == turns
    assert res.excluded == pytest.approx(ex * sec)
