"""The recorder as the engine uses it: split formatter/writer, pause, overruns, crashes.

The crash tests run a real recorder in a subprocess, kill it with SIGKILL in the
middle of a call, and check that repair() leaves a file that plays what was
written, to within one flush interval, sample for sample (WAV) or by decoding
it with opusdec (Ogg Opus).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from mediacore.recorder import (OggOpusRecorder, Recorder, RecorderStats, WavRecorder, repair)

ROOT = Path(__file__).resolve().parents[2]
needs_opusdec = pytest.mark.skipif(shutil.which("opusdec") is None, reason="opus-tools not installed")


def wav_frames(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return data.reshape(-1, w.getnchannels())


@pytest.fixture(scope="module")
def call(speech_8k) -> tuple[np.ndarray, np.ndarray]:
    """A 'caller' and an 'agent': the espeak-ng speech and its time reversal."""
    caller = speech_8k[:8000 * 5].copy()
    return caller, (caller[::-1] // 2).copy()


# --------------------------------------------------------------------------- split API, threads
def test_writer_thread_drains_while_the_media_thread_writes(tmp_path, call):
    """Two threads through the SPSC buffer give the same bytes as one thread."""
    caller, agent = call
    ref = tmp_path / "ref.wav"
    with WavRecorder(ref, channels=2) as rec:
        rec.write(caller, agent)

    out = tmp_path / "threaded.wav"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    rec = Recorder("pcm16", channels=2, buffer_bytes=8 * 1024)  # small: the writer must keep up
    stop = threading.Event()

    def writer():
        while not stop.is_set() or not rec.complete:
            rec.drain(fd)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for i in range(0, len(caller), 160):
            while rec.buffered_bytes > 6 * 1024:  # the media thread never blocks; the test paces it
                pass
            rec.write(caller[i:i + 160], agent[i:i + 160])
        while not rec.stop():
            pass
    finally:
        stop.set()
        t.join(10)
        os.close(fd)
    st = rec.statistics()
    assert st.overruns == 0 and st.samples_recorded == len(caller)
    assert out.read_bytes() == ref.read_bytes()


def test_overrun_drops_whole_frames_and_keeps_the_file_valid(tmp_path, call):
    caller, agent = call
    rec = Recorder("pcm16", channels=2, buffer_bytes=44 + 960 * 4 * 3)  # header + 3 chunks of 960
    for i in range(0, 8000, 160):
        rec.write(caller[i:i + 160], agent[i:i + 160])  # nobody drains
    st = rec.statistics()
    assert st.overruns > 0 and st.samples_dropped > 0
    assert st.samples_recorded + st.samples_dropped == 8000
    path = tmp_path / "overrun.wav"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    rec.stop()
    rec.drain(fd)
    os.close(fd)
    assert rec.complete
    data = wav_frames(path)
    assert len(data) == st.samples_recorded
    assert np.array_equal(data[:, 0], caller[:st.samples_recorded])  # the first frames, in order


def test_ogg_overrun_drops_pages_and_the_stream_stays_valid(tmp_path):
    from tests.mediacore.test_ogg_opus import check_stream

    rng = np.random.default_rng(1)
    noise = rng.integers(-20000, 20000, 48000 * 6, dtype=np.int16)  # hard to compress
    rec = Recorder("opus", sample_rate=48000, channels=2, bitrate=256000, complexity=0, buffer_bytes=131072,
                   page_ms=500, serial=7)
    for i in range(0, len(noise), 960):
        rec.write(noise[i:i + 960], noise[i:i + 960][::-1].copy())
    st = rec.statistics()
    assert st.overruns > 0 and st.samples_dropped > 0
    assert st.samples_recorded + st.samples_dropped == len(noise)
    path = tmp_path / "overrun.opus"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    rec.drain(fd)
    while not rec.stop():
        rec.drain(fd)
    rec.drain(fd)
    os.close(fd)
    check_stream(path.read_bytes(), channels=2, rate=48000, samples=st.samples_recorded)


def test_drain_error_is_an_oserror_and_nothing_is_lost(tmp_path, call):
    caller, _ = call
    rec = Recorder("ulaw", channels=1)
    rec.write(caller[:800])
    with pytest.raises(OSError):
        rec.drain(987654)  # not an open file
    assert rec.statistics().write_errors == 1
    path = tmp_path / "after-error.wav"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    rec.stop()
    rec.drain(fd, sync=True)
    os.close(fd)
    assert rec.complete and path.stat().st_size == 58 + 800


# --------------------------------------------------------------------------- pause (PCI DSS)
@pytest.mark.parametrize("fmt", ["pcm16", "ulaw"])
@pytest.mark.parametrize("mode", ["silence", "gap"])
def test_paused_audio_is_never_recorded(tmp_path, call, fmt, mode):
    caller, agent = call
    secret = np.full(4000, 12345, np.int16)  # "the card number"
    path = tmp_path / f"{fmt}-{mode}.wav"
    with WavRecorder(path, channels=2, format=fmt, pause_mode=mode) as rec:
        rec.write(caller[:8000], agent[:8000])
        rec.pause()
        assert rec.paused
        rec.write(secret, secret)
        rec.resume()
        rec.write(caller[8000:16000], agent[8000:16000])
        st = rec.statistics()
    assert st.samples_paused == 4000 and st.samples_in == 20000
    raw = path.read_bytes()
    if fmt == "pcm16":
        data = wav_frames(path)
        assert not np.any(data == 12345)
        expected = (np.concatenate([caller[:8000], np.zeros(4000, np.int16), caller[8000:16000]])
                    if mode == "silence" else caller[:16000])
        assert np.array_equal(data[:, 0], expected)
    else:
        from mediacore import g711

        secret_code = g711.ulaw_encode(secret[:1])
        body = raw[58:]
        assert len(body) == 2 * (20000 if mode == "silence" else 16000)
        assert body.count(secret_code * 8) == 0


# --------------------------------------------------------------------------- crash safety
CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from mediacore.recorder import OggOpusRecorder, WavRecorder
    kind, path, src = sys.argv[1], sys.argv[2], sys.argv[3]
    caller = np.load(src)
    agent = (caller[::-1] // 2).copy()
    cls = WavRecorder if kind == "wav" else OggOpusRecorder
    rec = cls(path, sample_rate=8000, channels=2, flush_ms=100)
    last = -1
    for i in range(0, len(caller), 160):
        rec.write(caller[i:i + 160], agent[i:i + 160])
        st = rec.statistics()
        if st.bytes_written != last:  # a flush reached the file: say how much audio it holds
            last = st.bytes_written
            print(st.samples_recorded, flush=True)
        time.sleep(0.001)
    time.sleep(60)  # never closes: the parent kills it
""")


def _kill_mid_call(tmp_path, kind: str, caller: np.ndarray, after_samples: int) -> tuple[Path, int]:
    src = tmp_path / "caller.npy"
    np.save(src, caller)
    path = tmp_path / f"killed.{kind}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(path), str(src)], stdout=subprocess.PIPE,
                             text=True, env=env)
    flushed = 0
    try:
        for line in child.stdout:
            flushed = int(line)
            if flushed >= after_samples:
                break
        child.send_signal(signal.SIGKILL)
        rest = child.communicate(timeout=30)[0]
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    for line in rest.split():
        flushed = max(flushed, int(line))
    return path, flushed


FLUSH = 800  # 100 ms at 8 kHz


@pytest.mark.parametrize("after", [8000, 13000])
def test_wav_killed_mid_call_is_repaired_with_what_was_flushed(tmp_path, call, after):
    caller, agent = call
    path, flushed = _kill_mid_call(tmp_path, "wav", caller, after)
    # Even before repair, the header kept up: the file opens with >= the flushed audio.
    assert len(wav_frames(path)) >= flushed
    result = repair(path)
    frames = round(result.duration * 8000)
    assert flushed <= frames <= flushed + FLUSH
    data = wav_frames(path)
    assert len(data) == frames
    assert np.array_equal(data[:, 0], caller[:frames]) and np.array_equal(data[:, 1], agent[:frames])
    assert not repair(path).changed


@needs_opusdec
@pytest.mark.parametrize("after", [8000, 13000])
def test_ogg_killed_mid_call_is_repaired_with_what_was_flushed(tmp_path, call, after):
    from tests.mediacore.test_ogg_opus import opusdec, parse_pages

    caller, _ = call
    path, flushed = _kill_mid_call(tmp_path, "opus", caller, after)
    result = repair(path)
    pages = parse_pages(path.read_bytes())
    assert pages[-1]["flags"] & 0x04 and [p["seq"] for p in pages] == list(range(len(pages)))
    frames = round(result.duration * 8000)
    # Playable length = flushed audio minus the encoder's 6.5 ms look-ahead, to one flush.
    assert flushed - 52 <= frames <= flushed + FLUSH
    decoded = opusdec(path, 8000, tmp_path)
    assert len(decoded) == frames
    left = decoded[:, 0].astype(np.float64)
    ref = caller[:frames].astype(np.float64)
    assert np.corrcoef(left, ref)[0, 1] > 0.9  # the caller's speech, time-aligned
    assert not repair(path).changed


# --------------------------------------------------------------------------- API
def test_statistics_are_a_frozen_record(tmp_path, call):
    caller, agent = call
    with WavRecorder(tmp_path / "s.wav") as rec:
        rec.write(caller[:1600], agent[:1600])
        st = rec.statistics()
    assert isinstance(st, RecorderStats)
    assert st.samples_in == st.samples_recorded == 1600 and st.samples_dropped == 0
    with pytest.raises(AttributeError):
        st.samples_in = 0  # type: ignore[misc]


def test_closed_and_stopped_recorders_refuse_writes(tmp_path, call):
    caller, _ = call
    rec = WavRecorder(tmp_path / "c.wav")
    rec.close()
    rec.close()  # idempotent
    assert rec.closed
    with pytest.raises(ValueError, match="closed"):
        rec.write(caller[:160])
    native = Recorder("pcm16")
    assert native.stop()
    with pytest.raises(ValueError, match="stopped"):
        native.write(caller[:160])


def test_durable_mode_and_mono_mix(tmp_path):
    path = tmp_path / "d.wav"
    a = np.full(800, 30000, np.int16)
    with WavRecorder(path, channels=1, durable=True) as rec:
        rec.write(a, a)  # saturating mix
        rec.write(None, np.full(800, -7, np.int16))
    data = wav_frames(path)[:, 0]
    assert np.all(data[:800] == 32767) and np.all(data[800:] == -7)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(format="mp3"), "format"),
        (dict(format="ulaw", sample_rate=16000), "8000 for G.711"),
        (dict(sample_rate=44100), "sample_rate"),
        (dict(channels=3), "channels"),
        (dict(pause_mode="mute"), "pause_mode"),
        (dict(flush_ms=5), "flush_ms"),
    ],
)
def test_bad_wav_settings(tmp_path, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        WavRecorder(tmp_path / "x.wav", **kwargs)
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(bitrate=100), "bitrate"),
        (dict(complexity=11), "complexity"),
        (dict(comments=["no equals sign"]), "KEY=value"),
        (dict(serial=-1), "serial"),
    ],
)
def test_bad_ogg_settings(tmp_path, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        OggOpusRecorder(tmp_path / "x.opus", **kwargs)


def test_native_layer_refuses_bad_settings_too():
    from mediacore import _recorder

    with pytest.raises(ValueError, match="page_ms"):
        _recorder.Recorder(_recorder.RecordingFormat.OGG_OPUS, page_ms=5)
    with pytest.raises(ValueError, match="buffer_bytes"):
        _recorder.Recorder(_recorder.RecordingFormat.WAV_PCM16, buffer_bytes=10)


@pytest.mark.parametrize(
    "left, right, needle",
    [
        (np.zeros(160, np.float32), None, "int16"),
        (np.zeros((2, 160), np.int16), None, "one-dimensional"),
        (np.zeros(320, np.int16)[::2], None, "contiguous"),
        (np.zeros(160, np.int16), np.zeros(161, np.int16), "same length"),
        ([0] * 160, None, "numpy"),
        (None, None, "both be None"),
    ],
    ids=["float32", "2d", "strided", "lengths", "list", "none"],
)
def test_bad_frames(tmp_path, left, right, needle):
    with WavRecorder(tmp_path / "f.wav") as rec:
        with pytest.raises(ValueError, match=needle):
            rec.write(left, right)
