"""The systemd unit in packaging/ is one systemd accepts, and it runs what the CLI provides."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "packaging" / "systemd" / "hotline.service"


def test_the_unit_verifies_with_the_real_executable(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    hotline = Path(sys.executable).parent / "hotline"
    assert hotline.exists()
    text = UNIT.read_text()
    assert "Type=notify" in text and "ExecReload=/bin/kill -HUP $MAINPID" in text
    unit = tmp_path / "hotline.service"
    unit.write_text(text.replace("/opt/hotline/.venv/bin/hotline", str(hotline)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                         check=False)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "hotline.service" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_the_unit_runs_the_check_the_cli_has():
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "serve", "--help"], capture_output=True,
                         text=True, timeout=60, check=True)
    assert "--check" in out.stdout and "--config" in out.stdout
