"""G.711 throughput against CPython's audioop (C), side by side.

Two sizes: one 20 ms frame (160 samples, the per-packet case, where call
overhead dominates) and one minute of audio (480,000 samples, the kernel).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mediacore import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SIZES = {"20ms": 160, "1s": 8000, "60s": 480_000}


def _pcm(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    # Speech-like amplitude distribution: Laplacian, clipped to int16.
    return np.clip(rng.laplace(0, 3000, n), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encode_ours(benchmark, law, size):
    pcm = _pcm(SIZES[size])
    benchmark.group = f"g711-{law}-encode-{size}"
    benchmark.extra_info["samples"] = SIZES[size]
    out = benchmark(getattr(g711, f"{law}_encode"), pcm)
    assert len(out) == SIZES[size]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encode_audioop(benchmark, law, size):
    raw = _pcm(SIZES[size]).tobytes()
    benchmark.group = f"g711-{law}-encode-{size}"
    benchmark.extra_info["role"] = "baseline"
    out = benchmark(getattr(audioop, f"lin2{law}"), raw, 2)
    assert len(out) == SIZES[size]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decode_ours(benchmark, law, size):
    codes = getattr(g711, f"{law}_encode")(_pcm(SIZES[size]))
    benchmark.group = f"g711-{law}-decode-{size}"
    out = benchmark(getattr(g711, f"{law}_decode"), codes)
    assert out.shape == (SIZES[size],)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decode_audioop(benchmark, law, size):
    codes = getattr(g711, f"{law}_encode")(_pcm(SIZES[size]))
    benchmark.group = f"g711-{law}-decode-{size}"
    benchmark.extra_info["role"] = "baseline"
    out = benchmark(getattr(audioop, f"{law}2lin"), codes, 2)
    assert len(out) == 2 * SIZES[size]


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decode_ours_into_preallocated(benchmark, law):
    codes = getattr(g711, f"{law}_encode")(_pcm(160))
    out = np.empty(160, np.int16)
    benchmark.group = f"g711-{law}-decode-20ms"
    decode = getattr(g711, f"{law}_decode")
    benchmark(decode, codes, out=out)
    assert np.array_equal(out, decode(codes))
