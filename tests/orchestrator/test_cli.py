"""The `hotline` console script as users run it (the installed entry point)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def hotline(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("hotline", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "orchestrator.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_help_lists_commands_and_unknown_commands_fail():
    out = hotline("--help")
    assert out.returncode == 0 and "plan" in out.stdout and "ivr" in out.stdout
    bad = hotline("frobnicate")
    assert bad.returncode == 2 and "unknown command" in bad.stderr


def test_plan_through_the_cli_matches_erlang_c():
    out = hotline("plan", "--calls-per-hour", "600", "--aht", "240", "--sl", "0.8", "--sl-seconds", "20", "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    # 40 erlangs: 46 agents is the smallest count reaching 80% in 20 s (Erlang C).
    assert plan["agents"] == 46


def test_ivr_lint_passes_the_shipped_flows():
    flows = sorted(str(p) for p in (ROOT / "ivr").glob("*.yaml"))
    if not flows:
        pytest.skip("no flows shipped yet")
    out = hotline("ivr", "lint", *flows)
    assert out.returncode == 0, out.stdout + out.stderr
