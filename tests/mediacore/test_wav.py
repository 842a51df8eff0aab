"""WAV recordings: headers, channel order, G.711, and crash repair.

Checked against files sox wrote (byte-identical headers), Python's ``wave``,
``soxi``/``sox``, and mediacore.g711. Repair is checked on real truncations
and on hypothesis-made damage: it never fails on garbage, the result always
opens, and running it twice changes nothing.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediacore import _recorder, g711
from mediacore.recorder import WavRecorder, repair, repair_wav

AUDIO = Path(__file__).resolve().parents[2].parent / "shared" / "peers" / "audio"
needs_sox = pytest.mark.skipif(shutil.which("soxi") is None, reason="sox not installed")


class Params:
    def __init__(self, tag, nchannels, framerate, sampwidth, nframes, fact):
        self.tag, self.nchannels, self.framerate = tag, nchannels, framerate
        self.sampwidth, self.nframes, self.fact = sampwidth, nframes, fact


def parse_riff(raw: bytes) -> tuple[Params, bytes]:
    """A small independent RIFF/WAVE reader (Python's wave only reads PCM)."""
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    off, fmt, fact = 12, None, None
    while off + 8 <= len(raw):
        cid, size = raw[off:off + 4], struct.unpack_from("<I", raw, off + 4)[0]
        body = raw[off + 8:off + 8 + size]
        assert len(body) == size, f"chunk {cid!r} runs past the end"
        if cid == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", body)
        elif cid == b"fact":
            fact = struct.unpack_from("<I", body)[0]
        elif cid == b"data":
            tag, ch, rate, byte_rate, align, bits = fmt
            assert byte_rate == rate * align and align == ch * bits // 8
            return Params(tag, ch, rate, bits // 8, size // align, fact), body
        off += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def read_wav(path) -> tuple[Params, np.ndarray]:
    p, body = parse_riff(Path(path).read_bytes())
    if p.tag == 1:  # cross-check PCM files with Python's own reader
        with wave.open(str(path), "rb") as w:
            assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (p.nchannels, p.framerate, p.nframes)
            assert w.readframes(p.nframes) == body
    else:
        assert p.fact == p.nframes
    data = np.frombuffer(body, "<i2" if p.sampwidth == 2 else np.uint8)
    return p, data.reshape(-1, p.nchannels) if p.nchannels > 1 else data


def soxi(path, flag: str) -> str:
    return subprocess.run(["soxi", flag, str(path)], check=True, capture_output=True, text=True).stdout.strip()


# --------------------------------------------------------------------------- headers
@pytest.mark.skipif(not (AUDIO / "welcome_ulaw.wav").exists(), reason="peer audio not present")
@pytest.mark.parametrize("name, codec, header", [("welcome_ulaw.wav", 7, 58), ("welcome_8k.wav", 1, 44)])
def test_header_is_byte_identical_to_what_sox_writes(name, codec, header):
    real = (AUDIO / name).read_bytes()
    data_bytes = len(real) - header
    assert _recorder.wav_header(codec, 1, 8000, data_bytes) == real[:header]


def test_header_fields_for_stereo_alaw_48k_rejected_and_16k_pcm():
    h = _recorder.wav_header(6, 2, 8000, 1001, pad_written=True)
    riff, = struct.unpack_from("<I", h, 4)
    assert h[:4] == b"RIFF" and h[8:16] == b"WAVEfmt "
    tag, ch, rate, byte_rate, align, bits, cb = struct.unpack_from("<HHIIHHH", h, 20)
    assert (tag, ch, rate, byte_rate, align, bits, cb) == (6, 2, 8000, 16000, 2, 8, 0)
    assert h[38:42] == b"fact" and struct.unpack_from("<II", h, 42) == (4, 500)
    assert h[50:54] == b"data" and struct.unpack_from("<I", h, 54) == (1001,)
    assert riff == 58 - 8 + 1001 + 1  # odd data: the pad byte counts once written
    assert struct.unpack_from("<I", _recorder.wav_header(6, 2, 8000, 1001, pad_written=False), 4) == (58 - 8 + 1001,)
    with pytest.raises(ValueError):
        _recorder.wav_header(7, 1, 44100, 0)


# --------------------------------------------------------------------------- recordings
@pytest.fixture(scope="module")
def speech(speech_8k) -> np.ndarray:
    return speech_8k[: 8000 * 3].copy()


@needs_sox
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_pcm16_recording_reads_back_exactly(tmp_path, speech, rate, channels):
    src = np.resize(speech, rate * 2)  # 2 s at this rate (content is not resampled: exact data matters)
    agent = (src[::-1] // 2).copy()
    path = tmp_path / "call.wav"
    with WavRecorder(path, sample_rate=rate, channels=channels, flush_ms=200) as rec:
        for i in range(0, len(src), rate // 50):
            rec.write(src[i:i + rate // 50], agent[i:i + rate // 50])
    p, data = read_wav(path)
    assert (p.nchannels, p.framerate, p.sampwidth, p.nframes) == (channels, rate, 2, rate * 2)
    if channels == 2:
        assert np.array_equal(data[:, 0], src) and np.array_equal(data[:, 1], agent)
    else:
        assert np.array_equal(data, np.clip(src.astype(np.int32) + agent, -32768, 32767).astype(np.int16))
    assert soxi(path, "-s") == str(rate * 2) and soxi(path, "-c") == str(channels)
    assert soxi(path, "-r") == str(rate)
    assert os.path.getsize(path) == 44 + rate * 2 * channels * 2


@needs_sox
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_recording_decodes_like_mediacore_g711(tmp_path, speech, law):
    path = tmp_path / f"call-{law}.wav"
    agent = np.zeros_like(speech)
    with WavRecorder(path, channels=2, format=law) as rec:
        rec.write(speech, agent)
    p, codes = read_wav(path)
    assert p.nchannels == 2 and p.sampwidth == 1 and p.nframes == len(speech)
    assert p.tag == (7 if law == "ulaw" else 6)
    encode = getattr(g711, f"{law}_encode")
    assert codes[:, 0].tobytes() == encode(speech)
    assert codes[:, 1].tobytes() == encode(agent)
    # sox decodes the file; its left channel is what mediacore decodes.
    out = tmp_path / "decoded.wav"
    subprocess.run(["sox", str(path), "-e", "signed-integer", "-b", "16", str(out)], check=True)
    _, pcm = read_wav(out)
    decode = getattr(g711, f"{law}_decode")
    assert np.array_equal(pcm[:, 0], decode(encode(speech)))
    assert np.array_equal(pcm[:, 1], decode(encode(agent)))  # A-law has no zero: silence decodes to 8
    assert soxi(path, "-e") == ("u-law" if law == "ulaw" else "A-law")


@needs_sox
def test_far_end_audio_is_only_on_the_right(tmp_path, speech):
    path = tmp_path / "agent-only.wav"
    with WavRecorder(path, channels=2) as rec:
        rec.write(None, speech)
    out = subprocess.run(["sox", str(path), "-n", "remix", "1", "stat"], capture_output=True, text=True)
    assert "Maximum amplitude:     0.000000" in out.stderr
    out = subprocess.run(["sox", str(path), "-n", "remix", "2", "stat"], capture_output=True, text=True)
    assert "Maximum amplitude:     0.000000" not in out.stderr
    _, data = read_wav(path)
    assert np.array_equal(data[:, 1], speech) and not data[:, 0].any()


def test_odd_g711_mono_length_gets_a_pad_byte(tmp_path):
    path = tmp_path / "odd.wav"
    with WavRecorder(path, channels=1, format="ulaw") as rec:
        rec.write(np.arange(801, dtype=np.int16))
    raw = path.read_bytes()
    assert len(raw) == 58 + 801 + 1 and raw[-1] == 0
    assert struct.unpack_from("<I", raw, 4) == (len(raw) - 8,)
    assert struct.unpack_from("<I", raw, 54) == (801,)
    assert read_wav(path)[0].nframes == 801
    assert not repair_wav(path).changed


def test_header_is_kept_valid_while_recording(tmp_path, speech):
    """Without close(): after each flush the file on disk is already a valid WAV of what was flushed."""
    path = tmp_path / "live.wav"
    rec = WavRecorder(path, channels=2, flush_ms=100)
    assert read_wav(path)[0].nframes == 0  # the header is there before any audio
    for k in range(1, 11):
        rec.write(speech[(k - 1) * 800:k * 800], None)
        p, data = read_wav(path)
        assert p.nframes == k * 800
        assert np.array_equal(data[:, 0], speech[:k * 800])
    assert rec.statistics().header_updates >= 10
    rec.close()


# --------------------------------------------------------------------------- repair
def _good_wav(tmp_path, name="good.wav", frames=4000, channels=2, fmt="pcm16") -> Path:
    path = tmp_path / name
    with WavRecorder(path, channels=channels, format=fmt) as rec:
        rec.write(np.arange(frames, dtype=np.int16) * 7, np.arange(frames, dtype=np.int16) * -3)
    return path


@pytest.mark.parametrize("fmt, block, header", [("pcm16", 4, 44), ("ulaw", 2, 58), ("alaw", 2, 58)])
@pytest.mark.parametrize("cut", [0, 1, 2, 3, 777, 3999])
def test_repair_of_a_truncated_file_keeps_every_whole_frame(tmp_path, fmt, block, header, cut):
    path = _good_wav(tmp_path, fmt=fmt)
    full = path.read_bytes()
    # A killed writer: data beyond what the header says, cut mid-frame.
    data_len = len(full) - header - cut
    damaged = bytearray(full[:header + data_len])
    struct.pack_into("<I", damaged, header - 4, 0)  # header still says "no data"
    path.write_bytes(damaged)
    result = repair(path)
    frames = data_len // block
    assert result.kind == "wav" and result.changed
    assert result.duration == frames / 8000
    p, data = read_wav(path)
    assert p.nframes == frames
    original = read_wav(_good_wav(tmp_path, name="ref.wav", fmt=fmt))[1]
    assert np.array_equal(data, original[:frames])
    if fmt != "pcm16":
        assert struct.unpack_from("<I", path.read_bytes(), 46) == (frames,)  # fact chunk
    again = repair(path)
    assert not again.changed and path.stat().st_size == result.new_size


def test_repair_keeps_chunks_after_the_data(tmp_path):
    path = _good_wav(tmp_path)
    raw = bytearray(path.read_bytes())
    info = b"LIST" + struct.pack("<I", 13) + b"INFOISFT\x05\x00\x00\x00sox\x00\x00\x00"[:13] + b"\x00"
    raw += info
    struct.pack_into("<I", raw, 4, len(raw) - 8)
    path.write_bytes(raw)
    assert not repair(path).changed
    assert path.read_bytes() == raw
    # A stale RIFF size (found by fuzz_wav_repair): only the size is fixed, the chunk stays.
    stale = bytearray(raw)
    struct.pack_into("<I", stale, 4, len(raw) - 8 - len(info))
    path.write_bytes(stale)
    result = repair(path)
    assert result.changed and result.new_size == len(raw)
    assert path.read_bytes() == raw


def test_repair_refuses_what_is_not_a_wav(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(ValueError, match="fmt"):
        repair_wav(bad)
    bad.write_bytes(b"hello world, not audio")
    with pytest.raises(ValueError, match="not a WAV or Ogg"):
        repair(bad)
    with pytest.raises(FileNotFoundError):
        repair_wav(tmp_path / "missing.wav")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, 16100),
    mutations=st.lists(st.tuples(st.integers(0, 16100), st.integers(0, 255)), max_size=6),
    tail=st.binary(max_size=40),
    fmt=st.sampled_from(["pcm16", "ulaw"]),
)
def test_repair_never_fails_on_damage_and_is_idempotent(tmp_path, cut, mutations, tail, fmt):
    base = _good_wav(tmp_path, name=f"base-{fmt}.wav", frames=2000, fmt=fmt).read_bytes()
    raw = bytearray(base[:cut])
    for at, value in mutations:
        if at < len(raw):
            raw[at] = value
    raw += tail
    plan = _recorder.plan_wav_repair(bytes(raw))
    assert plan["status"] in (0, -1, -2, -3)
    if plan["status"] != 0:
        return
    assert plan["data_offset"] + plan["data_bytes"] <= plan["new_size"] <= max(plan["old_size"], plan["data_offset"]
                                                                              + plan["data_bytes"] + 1)
    path = tmp_path / "fuzz.wav"
    path.write_bytes(raw)
    first = repair_wav(path)
    assert first.new_size == path.stat().st_size
    assert not repair_wav(path).changed
    # What the repaired header says is what is in the file.
    after = path.read_bytes()
    assert struct.unpack_from("<I", after, 4)[0] == len(after) - 8 or not first.changed
    plan2 = _recorder.plan_wav_repair(after)
    assert plan2["data_offset"] + plan2["data_bytes"] <= len(after)
