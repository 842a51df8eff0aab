"""Recording at rest: encryption throughput against a plain copy, and analytics cost per call-minute.

Encryption (group ``recording-encrypt-16MiB``). One round takes a 16 MiB
recording (about 17 minutes of stereo 8 kHz PCM16) from one file to another
in the page cache: the baseline is a plain durable copy (``shutil.copyfile``,
the kernel's copy, then fsync), the contenders are our AES-256-GCM container writer
(64 KiB and 1 MiB chunks, SHA-256 of both sides included, fsync and atomic
rename included) and the reader that decrypts and authenticates it back.
``extra_info["MB_per_s"]`` is the throughput of each. AES-GCM itself
(OpenSSL, AES-NI) runs at gigabytes per second; the container's cost is
mostly the two SHA-256 digests (plaintext for the metadata, container for
integrity checks) and the fsync.

Analytics (group ``recording-analytics-call-minute``). One round analyses
one minute of a stereo call (espeak-ng speech alternating between the
parties): ours runs webrtcvad on both channels plus the smoothing and the
statistics; the baseline reads the same WAV with Python's ``wave`` module
and thresholds the RMS energy of each 20 ms frame (the cheapest detector one
could write, and a much worse one). ``extra_info["percent_of_core"]`` is
the share of one core the analysis of a call costs while it lasts.
"""

from __future__ import annotations

import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from orchestrator.recording.analytics import analyze_file
from orchestrator.recording.crypto import KeyRing, decrypt_file, encrypt_file
from tests.conftest import read_wav
from tools.prompts import make_speech

SIZE = 16 * 1024 * 1024
RING = KeyRing.single(bytes(range(32)), "bench")


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("enc") / "call.wav"
    rng = np.random.default_rng(3)
    path.write_bytes(rng.integers(-3000, 3000, SIZE // 2, dtype=np.int16).tobytes())
    return path


def _throughput(benchmark) -> None:
    benchmark.extra_info["MB_per_s"] = round(SIZE / 1e6 / benchmark.stats.stats.median, 1)


def _durable_copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)  # the container writer fsyncs before it renames: so does the baseline
    finally:
        os.close(fd)


def test_copy_baseline(benchmark, big, tmp_path):
    benchmark.group = "recording-encrypt-16MiB"
    benchmark.extra_info["role"] = "baseline"
    out = tmp_path / "copy.wav"
    benchmark.pedantic(_durable_copy, args=(big, out), rounds=8, warmup_rounds=1)
    assert out.stat().st_size == SIZE
    _throughput(benchmark)


@pytest.mark.parametrize("chunk", [64 * 1024, 1024 * 1024], ids=["64KiB", "1MiB"])
def test_encrypt(benchmark, big, tmp_path, chunk):
    benchmark.group = "recording-encrypt-16MiB"
    out = tmp_path / "call.hlrec"
    result = benchmark.pedantic(encrypt_file, args=(big, out, RING), kwargs={"chunk_size": chunk}, rounds=8,
                                warmup_rounds=1)
    assert result.plaintext_size == SIZE and out.stat().st_size == result.stored_size
    assert result.stored_size == SIZE + 16 * (SIZE // chunk) + 53 + len("bench")  # header: 53 + key id
    _throughput(benchmark)


def test_decrypt(benchmark, big, tmp_path):
    benchmark.group = "recording-encrypt-16MiB"
    enc = tmp_path / "call.hlrec"
    sealed = encrypt_file(big, enc, RING)
    out = tmp_path / "back.wav"
    result = benchmark.pedantic(decrypt_file, args=(enc, out, RING), rounds=8, warmup_rounds=1)
    assert result.size == SIZE and result.sha256 == sealed.sha256
    _throughput(benchmark)


# ------------------------------------------------------------------------------------------ analytics
@pytest.fixture(scope="module")
def minute(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("minute")
    a = read_wav(make_speech("thank you for calling how can I help you today", d / "a.wav"))[1]
    b = read_wav(make_speech("hi I would like to check the status of my order please", d / "b.wav"))[1]
    left = np.zeros(60 * 8000, np.int16)
    right = np.zeros_like(left)
    t = 0
    while t + 4 * 8000 < len(left):  # the parties take turns, 4 s each
        right[t:t + len(a)] = a
        left[t + 4 * 8000:t + 4 * 8000 + len(b)] = b[: max(0, min(len(b), len(left) - t - 4 * 8000))]
        t += 8 * 8000
    path = d / "minute.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.stack([left, right], axis=1).tobytes())
    return path


def _energy_vad(path: Path) -> tuple[float, float]:
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2).astype(np.float64)
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160, 2)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    talk = rms > 300
    return float(talk[:, 0].sum()) * 0.02, float(talk[:, 1].sum()) * 0.02


def _share(benchmark) -> None:
    benchmark.extra_info["percent_of_core"] = round(100 * benchmark.stats.stats.median / 60.0, 4)


def test_analytics_energy_baseline(benchmark, minute):
    benchmark.group = "recording-analytics-call-minute"
    benchmark.extra_info["role"] = "baseline"
    left, right = benchmark.pedantic(_energy_vad, args=(minute,), rounds=10, warmup_rounds=1)
    assert 10 < left < 30 and 10 < right < 30
    _share(benchmark)


def test_analytics_webrtcvad(benchmark, minute):
    benchmark.group = "recording-analytics-call-minute"
    result = benchmark.pedantic(analyze_file, args=(minute,), rounds=10, warmup_rounds=1)
    assert result.duration == pytest.approx(60.0) and result.turns >= 10
    assert 10 < result.talk_left < 30 and 10 < result.talk_right < 30
    _share(benchmark)


def test_no_leftovers(tmp_path):
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]
