"""Recorder cost per recorded stereo call-second, against Python baselines in the same run.

One round records one second of a stereo call (caller left, agent right,
espeak-ng-like speech from a fixed Laplacian source) as fifty 20 ms frames,
then writes it out, as the synchronous recorder does. Files go to /dev/null, so
the numbers are formatting + encoding + system calls, not disk speed.

- WAV PCM16 and mu-law: ours (native formatter + drain) against Python's
  ``wave`` module (numpy interleave, ``audioop`` for mu-law) writing the same frames.
- Ogg Opus: ours against opuslib (the same libopus, called per frame from
  Python) plus a plain-Python Ogg page writer with a table-driven CRC.

``extra_info["percent_of_core"]`` is the share of one core a recorded call
costs (time per call-second / 1 s).
"""

from __future__ import annotations

import os
import struct
import wave
import warnings

import numpy as np
import pytest

from mediacore.recorder import Recorder

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

RATE = 8000
FRAME = 160
FRAMES = 50  # one second


def _call() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    caller = np.clip(rng.laplace(0, 2000, RATE), -32768, 32767).astype(np.int16)
    agent = np.clip(rng.laplace(0, 1500, RATE), -32768, 32767).astype(np.int16)
    return caller, agent


def _frames():
    caller, agent = _call()
    return [(caller[i:i + FRAME], agent[i:i + FRAME]) for i in range(0, RATE, FRAME)]


def _share(benchmark) -> None:
    benchmark.extra_info["percent_of_core"] = round(100 * benchmark.stats.stats.median / 1.0, 4)


@pytest.fixture
def devnull_fd():
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


# --------------------------------------------------------------------------- WAV
@pytest.mark.parametrize("fmt", ["pcm16", "ulaw"])
def test_wav_call_second_ours(benchmark, devnull_fd, fmt):
    frames = _frames()
    rec = Recorder(fmt, sample_rate=RATE, channels=2, buffer_bytes=1 << 20)

    def one_second():
        for left, right in frames:
            rec.write(left, right)
        return rec.drain(devnull_fd)

    benchmark.group = f"recorder-wav-{fmt}-stereo-call-second"
    benchmark.extra_info["path"] = "50 x write(20 ms) + drain"
    first = one_second()
    written = benchmark(one_second)
    _share(benchmark)
    per_sample = 2 if fmt == "pcm16" else 1
    assert written == RATE * 2 * per_sample and first == written + (44 if fmt == "pcm16" else 58)
    assert rec.statistics().overruns == 0


@pytest.mark.parametrize("fmt", ["pcm16", "ulaw"])
def test_wav_call_second_ours_one_call(benchmark, devnull_fd, fmt):
    """The engine's case: a native caller hands over a second at a time (no Python per frame)."""
    caller, agent = _call()
    rec = Recorder(fmt, sample_rate=RATE, channels=2, buffer_bytes=1 << 20)

    def one_second():
        rec.write(caller, agent)
        return rec.drain(devnull_fd)

    benchmark.group = f"recorder-wav-{fmt}-stereo-call-second"
    one_second()
    written = benchmark(one_second)
    _share(benchmark)
    assert written == RATE * 2 * (2 if fmt == "pcm16" else 1)


@pytest.mark.parametrize("fmt", ["pcm16", "ulaw"])
def test_wav_call_second_python_wave(benchmark, fmt):
    frames = _frames()
    f = open(os.devnull, "wb")
    w = wave.open(f, "wb")
    w.setnchannels(2)
    w.setsampwidth(2 if fmt == "pcm16" else 1)  # wave has no G.711 tag: same bytes, same work
    w.setframerate(RATE)
    stereo = np.empty(2 * FRAME, np.int16)

    def one_second():
        n = 0
        for left, right in frames:
            stereo[0::2] = left
            stereo[1::2] = right
            data = stereo.tobytes() if fmt == "pcm16" else audioop.lin2ulaw(stereo.tobytes(), 2)
            w.writeframes(data)
            n += len(data)
        f.flush()
        return n

    benchmark.group = f"recorder-wav-{fmt}-stereo-call-second"
    benchmark.extra_info["role"] = "baseline"
    written = benchmark(one_second)
    _share(benchmark)
    assert written == RATE * 2 * (2 if fmt == "pcm16" else 1)


# --------------------------------------------------------------------------- Ogg Opus
def test_opus_call_second_ours(benchmark, devnull_fd):
    frames = _frames()
    rec = Recorder("opus", sample_rate=RATE, channels=2, bitrate=32000, page_ms=1000, serial=1)

    def one_second():
        for left, right in frames:
            rec.write(left, right)
        return rec.drain(devnull_fd)

    benchmark.group = "recorder-opus-stereo-call-second"
    benchmark.extra_info["path"] = "50 x write(20 ms) + drain"
    one_second()
    written = benchmark(one_second)
    _share(benchmark)
    st = rec.statistics()
    assert written > 1000 and st.overruns == 0 and st.samples_dropped == 0
    assert st.pages == 2 + st.samples_recorded // RATE  # headers + one page per second


class PythonOggOpus:
    """The same recording in Python: opuslib per frame, Ogg pages with a table CRC."""

    def __init__(self, f) -> None:
        import opuslib

        self.enc = opuslib.Encoder(RATE, 2, opuslib.APPLICATION_VOIP)
        self.enc.bitrate = 32000
        self.enc.complexity = 5  # as ours
        self.f = f
        self.seq = 0
        self.granule = 0
        self.packets: list[bytes] = []
        table = []
        for i in range(256):
            r = i << 24
            for _ in range(8):
                r = ((r << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if r & 0x80000000 else (r << 1) & 0xFFFFFFFF
            table.append(r)
        self.table = table
        self.stereo = np.empty(2 * FRAME, np.int16)

    def crc(self, data: bytes) -> int:
        crc, t = 0, self.table
        for b in data:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ t[((crc >> 24) ^ b) & 0xFF]
        return crc

    def frame(self, left, right) -> None:
        self.stereo[0::2] = left
        self.stereo[1::2] = right
        self.packets.append(self.enc.encode(self.stereo.tobytes(), FRAME))
        self.granule += 960

    def page(self) -> int:
        lacing = b"".join(bytes([255] * (len(p) // 255) + [len(p) % 255]) for p in self.packets)
        body = b"".join(self.packets)
        header = struct.pack("<4sBBqIIIB", b"OggS", 0, 0, self.granule, 1, self.seq, 0, len(lacing))
        page = bytearray(header + lacing + body)
        struct.pack_into("<I", page, 22, self.crc(bytes(page)))
        self.f.write(page)
        self.seq += 1
        self.packets = []
        return len(page)


def test_opus_call_second_python(benchmark):
    frames = _frames()
    f = open(os.devnull, "wb")
    ogg = PythonOggOpus(f)

    def one_second():
        for left, right in frames:
            ogg.frame(left, right)
        n = ogg.page()
        f.flush()
        return n

    benchmark.group = "recorder-opus-stereo-call-second"
    benchmark.extra_info["role"] = "baseline"
    written = benchmark(one_second)
    _share(benchmark)
    assert written > 1000
