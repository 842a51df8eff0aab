"""Shared fixtures: real audio made by the project's own tools, cached per session."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# A private PostgreSQL server (postgres_server / postgres_url fixtures) for any test folder.
pytest_plugins = ["tests.pg"]


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """Read a PCM16 WAV file (mono or interleaved) into (rate, int16 array)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels())
        return w.getframerate(), data


@pytest.fixture(scope="session")
def speech_8k(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About 6 s of synthetic English speech at 8 kHz (espeak-ng, resampled by sox)."""
    from tools.prompts import make_speech

    out = tmp_path_factory.mktemp("speech") / "speech_8k.wav"
    make_speech(
        "Thank you for calling. Your call is important to us. "
        "Please hold while we connect you to the next available agent.",
        out,
        rate=8000,
    )
    return read_wav(out)[1]


def have(program: str) -> bool:
    return shutil.which(program) is not None


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
