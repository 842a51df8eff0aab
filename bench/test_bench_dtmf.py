"""DTMF: detector cost per 20 ms frame and RFC 4733 receiver packets per second.

Side by side in one run:

- ``dtmf-detect-20ms``: one 20 ms frame per call, the way a stream is fed,
  ours (native, through the binding) against a straightforward numpy Goertzel
  detector (102-sample blocks, the 8 DFT bins by one matrix product, the
  textbook two-consecutive-blocks decision) on the same frames of the same
  signal. Both must find the same digits.
- ``dtmf-detect-60s``: a minute of audio in one call: the per-frame cost
  without the per-call overhead, which is what the engine pays (it calls the
  C++ object per frame); ``extra_info`` has microseconds per 20 ms frame and
  the channels one core could run. The signal is DTMF back to back, the
  worst case for ours (every window then runs the candidate-only tests).
- ``dtmf-detect-60s-speech``: the usual load, speech (ours only).
- ``rfc4733-receive``: 400 digits of 140 ms, 9 packets each (6 updates and
  the final packet 3 times), through the receiver: ours through
  ``mediacore.dtmf`` (argument checks, dataclasses), ours through the bare
  binding, and a plain-Python receiver implementing the same keyed logic (the
  baseline). The engine calls the C++ receiver directly and pays neither
  Python layer.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from mediacore import dtmf, tones
from mediacore.dtmf import DtmfDetector, TelephoneEventReceiver, TelephoneEventSender

RATE = 8000
FRAME = 160
DIGITS = dtmf.DIGITS


def _digits_signal(seconds: int) -> tuple[np.ndarray, str]:
    one = tones.dtmf_sequence(DIGITS, RATE, duration_ms=100, pause_ms=100, level_dbm0=-10.0)
    reps = seconds * RATE // len(one)
    noise = np.random.default_rng(1).normal(0, 30, reps * len(one))  # a quiet line, about -50 dBm0
    return np.clip(np.tile(one, reps) + noise, -32768, 32767).astype(np.int16), DIGITS * reps


@pytest.fixture(scope="module")
def digits_60s() -> tuple[np.ndarray, str]:
    return _digits_signal(60)


@pytest.fixture(scope="module")
def digits_3s(digits_60s) -> tuple[np.ndarray, str]:
    n = len(tones.dtmf_sequence(DIGITS, RATE))  # 3.2 s: one of each digit
    return digits_60s[0][:n], DIGITS


def _median(benchmark) -> float | None:
    """The median time of this benchmark (None under --benchmark-disable)."""
    return benchmark.stats.stats.median if benchmark.stats is not None else None


def _note_per_frame(benchmark, frames: int) -> None:
    median = _median(benchmark)
    if median is not None:
        per_frame = median / frames
        benchmark.extra_info["us_per_20ms_frame"] = per_frame * 1e6
        benchmark.extra_info["channels_per_core"] = int(0.020 / per_frame)


def _note_packets(benchmark, packets: int) -> None:
    benchmark.extra_info["packets_per_round"] = packets
    median = _median(benchmark)
    if median is not None:
        benchmark.extra_info["packets_per_second"] = int(packets / median)


# ---------------------------------------------------------------- the baseline detector

class NumpyGoertzel:
    """A straightforward block detector: 102-sample blocks, numpy DFT bins.

    Per block: the strongest row and column, both >= -30 dBm0, twist within
    10 dB normal / 6 dB reverse, the other bins of each group 8 dB down, the
    two tones >= 60 % of the block energy. Two consecutive blocks start a
    digit, two without it end it.
    """

    N = 102
    FREQS = np.array([697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0])
    KEYPAD = ["123A", "456B", "789C", "*0#D"]

    def __init__(self) -> None:
        n = np.arange(self.N)
        self.basis = np.exp(-2j * np.pi * np.outer(n, self.FREQS) / RATE)  # N x 8
        amp = dtmf.ZERO_DBM0_PEAK * 10 ** (-30 / 20)
        self.min_power = (amp * self.N / 2) ** 2
        self.pending = np.zeros(0, np.int16)
        self.run_digit, self.run = "", 0
        self.active, self.misses = "", 0
        self.found: list[str] = []

    def process(self, pcm: np.ndarray) -> list[str]:
        x = np.concatenate([self.pending, pcm])
        blocks = len(x) // self.N
        self.pending = x[blocks * self.N:]
        if not blocks:
            return []
        b = x[:blocks * self.N].reshape(blocks, self.N).astype(np.float64)
        power = np.abs(b @ self.basis) ** 2
        total = np.sum(b * b, axis=1) * self.N / 2
        out = []
        for p, e in zip(power, total):
            row, col = int(np.argmax(p[:4])), 4 + int(np.argmax(p[4:]))
            pr, pc = p[row], p[col]
            ok = (pr >= self.min_power and pc >= self.min_power and pc <= pr * 10.0 and pr <= pc * 3.98
                  and np.all(np.delete(p[:4], row) * 6.31 <= pr) and np.all(np.delete(p[4:], col - 4) * 6.31 <= pc)
                  and pr + pc >= 0.6 * e)
            digit = self.KEYPAD[row][col - 4] if ok else ""
            self.run = self.run + 1 if digit and digit == self.run_digit else (1 if digit else 0)
            self.run_digit = digit
            if self.active:
                self.misses = 0 if digit == self.active else self.misses + 1
                if self.misses >= 2:
                    out.append(self.active)
                    self.active = ""
            if not self.active and self.run >= 2:
                self.active, self.misses = digit, 0
        return out


def _frames(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i:i + FRAME] for i in range(0, len(pcm), FRAME)]


def _run_ours(frames: list[np.ndarray]) -> str:
    detector = DtmfDetector(RATE)
    got = []
    for f in frames:
        got += detector.process(f)
    return "".join(d.digit for d in got + detector.flush())


def _run_baseline(frames: list[np.ndarray]) -> str:
    detector = NumpyGoertzel()
    got = []
    for f in frames:
        got += detector.process(f)
    return "".join(got + ([detector.active] if detector.active else []))


# ---------------------------------------------------------------- detector

def test_detect_20ms_frames_ours(benchmark, digits_3s):
    pcm, expected = digits_3s
    frames = _frames(pcm)
    benchmark.group = "dtmf-detect-20ms"
    benchmark.extra_info["frames_per_round"] = len(frames)
    got = benchmark(_run_ours, frames)
    assert got == expected
    _note_per_frame(benchmark, len(frames))


def test_detect_20ms_frames_numpy_baseline(benchmark, digits_3s):
    pcm, expected = digits_3s
    frames = _frames(pcm)
    benchmark.group = "dtmf-detect-20ms"
    benchmark.extra_info["role"] = "baseline"
    benchmark.extra_info["frames_per_round"] = len(frames)
    got = benchmark(_run_baseline, frames)
    assert got == expected
    _note_per_frame(benchmark, len(frames))


def test_detect_60s_ours(benchmark, digits_60s):
    pcm, expected = digits_60s
    benchmark.group = "dtmf-detect-60s"
    got = benchmark(dtmf.detect, pcm, RATE)
    assert "".join(d.digit for d in got) == expected
    _note_per_frame(benchmark, len(pcm) // FRAME)


def test_detect_60s_numpy_baseline(benchmark, digits_60s):
    pcm, expected = digits_60s
    benchmark.group = "dtmf-detect-60s"
    benchmark.extra_info["role"] = "baseline"

    def run() -> str:
        detector = NumpyGoertzel()
        return "".join(detector.process(pcm))

    got = benchmark(run)
    assert got == expected
    _note_per_frame(benchmark, len(pcm) // FRAME)


@pytest.fixture(scope="module")
def speech_60s(tmp_path_factory) -> np.ndarray:
    from tests.conftest import read_wav
    from tools.prompts import make_speech

    text = ("Thank you for calling. All of our agents are busy. Please stay on the line and your call will be "
            "answered in the order it was received. For billing press one, for support press two. ") * 3
    pcm = read_wav(make_speech(text, tmp_path_factory.mktemp("speech") / "s.wav", rate=RATE, voice="en-us+f2"))[1]
    return np.resize(pcm, 60 * RATE)


def test_detect_60s_speech_ours(benchmark, speech_60s):
    benchmark.group = "dtmf-detect-60s-speech"
    got = benchmark(dtmf.detect, speech_60s, RATE)
    assert got == []
    _note_per_frame(benchmark, len(speech_60s) // FRAME)


# ---------------------------------------------------------------- RFC 4733 receiver

@pytest.fixture(scope="module")
def packets() -> list[tuple[int, bool, bytes]]:
    sender = TelephoneEventSender(101, RATE, min_gap_ms=40)
    out = []
    ts = 0
    for _ in range(25):  # 400 digits, 3600 packets
        sender.send(DIGITS, duration_ms=140)
        while not sender.idle:
            p = sender.tick(ts)
            ts = (ts + 160) & 0xFFFFFFFF
            if p is not None:
                out.append((p.timestamp, p.marker, p.payload))
    return out


class PythonReceiver:
    """The same keyed logic in plain Python: one digit per (timestamp, event)."""

    def __init__(self) -> None:
        self.active = None  # (timestamp, event, duration)
        self.ended: list[tuple[int, int]] = []

    def receive(self, timestamp: int, marker: bool, payload: bytes) -> list[tuple]:
        if len(payload) % 4 or not payload:
            return []
        event, flags, duration = struct.unpack_from("!BBH", payload)
        if event > 16:
            return []
        key = (timestamp, event)
        out = []
        if self.active is not None and self.active[:2] == key:
            self.active = (timestamp, event, max(self.active[2], duration))
        else:
            if key in self.ended:
                return []
            if self.active is not None:
                out.append(("end", *self.active))
                self.ended = (self.ended + [self.active[:2]])[-24:]
            self.active = (timestamp, event, duration)
            out.append(("start", timestamp, event))
        if flags & 0x80:
            out.append(("end", *self.active))
            self.ended = (self.ended + [key])[-24:]
            self.active = None
        return out


def test_rfc4733_receive_ours(benchmark, packets):
    benchmark.group = "rfc4733-receive"

    def run() -> int:
        receiver = TelephoneEventReceiver(RATE)
        n = 0
        for ts, marker, payload in packets:
            n += len(receiver.receive(ts, marker, payload))
        return n

    assert benchmark(run) == 2 * 400
    _note_packets(benchmark, len(packets))


def test_rfc4733_receive_python_baseline(benchmark, packets):
    benchmark.group = "rfc4733-receive"
    benchmark.extra_info["role"] = "baseline"

    def run() -> int:
        receiver = PythonReceiver()
        n = 0
        for ts, marker, payload in packets:
            n += len(receiver.receive(ts, marker, payload))
        return n

    assert benchmark(run) == 2 * 400
    _note_packets(benchmark, len(packets))


def test_rfc4733_receive_ours_binding_only(benchmark, packets):
    # The native module without mediacore.dtmf's checks and dataclasses: how
    # much of the per-packet cost is the Python layer.
    from mediacore import _dtmf

    benchmark.group = "rfc4733-receive"

    def run() -> int:
        receiver = _dtmf.TelephoneEventReceiver(RATE)
        n = 0
        for ts, marker, payload in packets:
            n += len(receiver.receive(ts, marker, payload))
        return n

    assert benchmark(run) == 2 * 400
    _note_packets(benchmark, len(packets))
