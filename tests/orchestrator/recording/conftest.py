"""Fixtures for the recording tests: real speech (espeak-ng + sox), key files, configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from recording_kit import AGENT_TEXT, CALLER_TEXT, SHORT_TEXT

from orchestrator.recording import RecordingConfig, add_key
from tests.conftest import read_wav
from tools.prompts import make_speech


@pytest.fixture(scope="session")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """Three utterances at 8 kHz: caller, agent and a short one (espeak-ng, resampled by sox)."""
    d = tmp_path_factory.mktemp("voices")
    out = {}
    for name, text in (("caller", CALLER_TEXT), ("agent", AGENT_TEXT), ("short", SHORT_TEXT)):
        out[name] = read_wav(make_speech(text, d / f"{name}.wav", rate=8000))[1]
    return out


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "recording.keys"
    add_key(path, "k2024")
    return path


@pytest.fixture
def config(tmp_path: Path, key_file: Path) -> RecordingConfig:
    return RecordingConfig.from_mapping({"dir": str(tmp_path / "recordings"), "key_file": str(key_file),
                                         "retention_days": 30, "chunk_size": 4096})
