"""Opus encode and decode throughput, ours against opuslib, side by side.

Both call the same libopus (1.3.1 here): opuslib through ctypes, ours through
pybind11 into C++. The work inside libopus is identical (the tests check the
packets are bit-identical), so the ratio is the difference in binding
overhead per frame. Each round codes one second of espeak-ng speech as 50
frames of 20 ms at 16 kHz, complexity 5, the product's default; extra_info
reports frames per second per core (median).
"""

from __future__ import annotations

import numpy as np
import opuslib
import opuslib.api.ctl
import opuslib.api.encoder
import pytest

from mediacore import opus

RATE = 16000
FRAME = RATE // 50
COMPLEXITY = 5
BITRATE = 24000


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> np.ndarray:
    from tests.conftest import read_wav
    from tools.prompts import make_speech

    wav = make_speech("Thank you for calling. Your call is important to us. Please hold.",
                      tmp_path_factory.mktemp("bench-opus") / "speech.wav", rate=RATE)
    x = read_wav(wav)[1]
    return x[: RATE].reshape(-1, FRAME)  # 1 s: 50 frames of 20 ms


def _ours_encoder() -> opus.Encoder:
    return opus.Encoder(RATE, complexity=COMPLEXITY, bitrate=BITRATE)


def _opuslib_encoder() -> opuslib.Encoder:
    e = opuslib.Encoder(RATE, 1, "voip")
    opuslib.api.encoder.encoder_ctl(e.encoder_state, opuslib.api.ctl.set_complexity, COMPLEXITY)
    opuslib.api.encoder.encoder_ctl(e.encoder_state, opuslib.api.ctl.set_bitrate, BITRATE)
    return e


def _report(benchmark, n_frames: int) -> None:
    benchmark.extra_info["frames"] = n_frames
    benchmark.extra_info["frames_per_second"] = round(n_frames / benchmark.stats.stats.median)


def test_encode_ours(benchmark, frames):
    enc = _ours_encoder()
    benchmark.group = "opus-encode-16k-20ms-c5"
    packets = benchmark.pedantic(lambda: [enc.encode(f) for f in frames], rounds=30, warmup_rounds=2)
    _report(benchmark, len(frames))
    assert len(packets) == 50 and all(len(p) > 2 for p in packets)
    fresh, ref = _ours_encoder(), _opuslib_encoder()
    assert [fresh.encode(f) for f in frames] == [ref.encode(f.tobytes(), FRAME) for f in frames]


def test_encode_opuslib(benchmark, frames):
    enc = _opuslib_encoder()
    raw = [f.tobytes() for f in frames]
    benchmark.group = "opus-encode-16k-20ms-c5"
    benchmark.extra_info["role"] = "baseline"
    packets = benchmark.pedantic(lambda: [enc.encode(r, FRAME) for r in raw], rounds=30, warmup_rounds=2)
    _report(benchmark, len(frames))
    assert len(packets) == 50 and all(len(p) > 2 for p in packets)


def _packets(frames) -> list[bytes]:
    enc = _ours_encoder()
    return [enc.encode(f) for f in frames]


def test_decode_ours(benchmark, frames):
    packets = _packets(frames)
    dec = opus.Decoder(RATE)
    benchmark.group = "opus-decode-16k-20ms"
    out = benchmark.pedantic(lambda: [dec.decode(p) for p in packets], rounds=50, warmup_rounds=2)
    _report(benchmark, len(packets))
    assert [len(y) for y in out] == [FRAME] * 50
    fresh, ref = opus.Decoder(RATE), opuslib.Decoder(RATE, 1)
    assert all(np.array_equal(fresh.decode(p), np.frombuffer(ref.decode(p, FRAME), np.int16)) for p in packets)


def test_decode_opuslib(benchmark, frames):
    packets = _packets(frames)
    dec = opuslib.Decoder(RATE, 1)
    benchmark.group = "opus-decode-16k-20ms"
    benchmark.extra_info["role"] = "baseline"
    out = benchmark.pedantic(lambda: [dec.decode(p, FRAME) for p in packets], rounds=50, warmup_rounds=2)
    _report(benchmark, len(packets))
    assert [len(y) for y in out] == [2 * FRAME] * 50
