"""A fake checkout and a quiet context for the bench runner's tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from orchestrator.benchrun.progress import Progress
from orchestrator.benchrun.suites import Context


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "conftest.py").write_text("")
    return root


@pytest.fixture
def ctx(fake_root: Path) -> Context:
    return Context(root=fake_root, results_dir=fake_root / "bench" / "results", quick=True, repeat=3,
                   progress=Progress(io.StringIO()))
