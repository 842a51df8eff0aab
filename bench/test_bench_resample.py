"""Resampling throughput, ours against scipy.signal.resample_poly, side by side.

Two sizes per direction: one 20 ms frame (the per-packet case: ours keeps its
filter history across frames, resample_poly starts from scratch each call)
and 60 s of espeak-ng speech (the kernel). The filters differ: ours is a
longer Kaiser design (80 dB, 10 % transition band), resample_poly's default
is Kaiser beta 5 with a half-length of 10 taps per phase, so ours does more
multiply-adds per sample; tests/mediacore/test_resample.py compares the
outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from mediacore.resample import RATES, Resampler, resample

DIRECTIONS = [(a, b) for a in RATES for b in RATES if a != b]
IDS = [f"{a // 1000}k-{b // 1000}k" for a, b in DIRECTIONS]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[int, np.ndarray]:
    """60 s of speech at each rate (a sentence, repeated)."""
    from tests.conftest import read_wav
    from tools.prompts import make_speech

    d = tmp_path_factory.mktemp("bench-resample")
    text = "Please hold while we transfer your call to the next available agent."
    out = {}
    for rate in RATES:
        x = read_wav(make_speech(text, d / f"s{rate}.wav", rate=rate))[1]
        out[rate] = np.resize(x, 60 * rate)
    return out


def _factors(src: int, dst: int) -> tuple[int, int]:
    return max(1, dst // src), max(1, src // dst)


@pytest.mark.parametrize("src, dst", DIRECTIONS, ids=IDS)
def test_frame_ours(benchmark, speech, src, dst):
    frame = speech[src][: src // 50]
    r = Resampler(src, dst)
    benchmark.group = f"resample-20ms-{src // 1000}k-{dst // 1000}k"
    benchmark.extra_info["kernel"] = r.kernel
    out = benchmark(r.process, frame)
    assert len(out) == dst // 50


@pytest.mark.parametrize("src, dst", DIRECTIONS, ids=IDS)
def test_frame_scipy(benchmark, speech, src, dst):
    frame = speech[src][: src // 50].astype(np.float64)
    benchmark.group = f"resample-20ms-{src // 1000}k-{dst // 1000}k"
    benchmark.extra_info["role"] = "baseline"
    out = benchmark(resample_poly, frame, *_factors(src, dst))
    assert len(out) == dst // 50


@pytest.mark.parametrize("src, dst", DIRECTIONS, ids=IDS)
def test_60s_ours(benchmark, speech, src, dst):
    x = speech[src]
    benchmark.group = f"resample-60s-{src // 1000}k-{dst // 1000}k"
    out = benchmark.pedantic(resample, args=(x, src, dst), rounds=10, warmup_rounds=1)
    assert len(out) == 60 * dst
    assert np.sqrt(np.mean(out.astype(float) ** 2)) > 500  # speech came through


@pytest.mark.parametrize("src, dst", DIRECTIONS, ids=IDS)
def test_60s_scipy(benchmark, speech, src, dst):
    x = speech[src].astype(np.float64)
    benchmark.group = f"resample-60s-{src // 1000}k-{dst // 1000}k"
    benchmark.extra_info["role"] = "baseline"
    out = benchmark.pedantic(resample_poly, args=(x, *_factors(src, dst)), rounds=10, warmup_rounds=1)
    assert len(out) == 60 * dst
