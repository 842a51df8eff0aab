"""Crash safety: `kill -9` the daemon during live, recorded calls; the restarted daemon gives every
call that had started a record, and every recording of those calls plays.

The daemon is `hotline demo` (its simulated agents and callers are real SIP user agents in the
same process, so they die with it: the calls are cut mid-conversation, as a power cut would). It
restarts on the same state directory with no callers; the checks read the event log (SQLite)
and the recordings with sox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.store import EventLog
from tests.orchestrator.daemon.test_demo import ROOT, free_port

pytestmark = [pytest.mark.timeout(240)]


def demo(state: Path, sip: int, http: int, rtp: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", "demo", "--sip", f"127.0.0.1:{sip}",
            "--http", f"127.0.0.1:{http}", "--state-dir", str(state), "--rtp-ports", f"{rtp}-{rtp + 1999}",
            *extra]


def events(url: str) -> list:
    with EventLog(url, read_only=True) as log:
        return list(log.iter_events())


def test_kill_9_during_recorded_calls_then_restart(tmp_path):
    sip, http = free_port(), free_port()
    rtp = 47000 + 2 * (os.getpid() % 1000)
    state = tmp_path / "var"
    url = f"sqlite:///{state}/hotline.db"
    errors = (tmp_path / "first.err").open("w")
    first = subprocess.Popen(demo(state, sip, http, rtp, "--duration", "600", "--callers-per-minute", "100",
                                  "--talk", "60", "--patience", "90", "--seed", "3"),
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        deadline = time.monotonic() + 90
        answered: set[str] = set()
        while time.monotonic() < deadline and len(answered) < 3:
            time.sleep(1.0)
            assert first.poll() is None, (tmp_path / "first.err").read_text()[-3000:]
            if (state / "hotline.db").exists():
                answered = {e.call for e in events(url) if e.type == "call.answered" and e.agent}
        assert len(answered) >= 3, "no calls were answered by agents in 90 s"
        time.sleep(3.0)  # a few seconds of conversation reach the recordings
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        errors.close()
    before = events(url)
    started = {e.call for e in before if e.type == "call.incoming"}
    ended_before = {e.call for e in before if e.type == "call.ended"}
    live_at_kill = started - ended_before
    assert answered <= started and answered & live_at_kill, "the kill did not catch answered calls live"

    second = subprocess.run(demo(state, sip, http, rtp, "--duration", "2", "--callers-per-minute", "0",
                                 "--grace", "0"), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]

    after = events(url)
    # a call's record ends with call.ended, or call.abandoned for one still waiting in a queue
    ended = {}
    for e in after:
        if e.type in ("call.ended", "call.abandoned"):
            ended.setdefault(e.call, e)
    missing = started - ended.keys()
    assert not missing, f"calls without an end after the restart: {sorted(missing)}"
    for call in live_at_kill:
        end = ended[call]
        assert end.data.get("reason") == "node_restart" and end.data.get("synthetic") is True, end
    for call in answered & live_at_kill:  # answered by an agent: ended, with the agent and a talk time
        end = ended[call]
        assert end.type == "call.ended" and end.data.get("agent") and end.data.get("talk", 0) > 0, end

    # every recording of those calls was recovered, is ready, and plays: sox reads it and it holds audio
    metas = [json.loads(p.read_text()) for p in (state / "recordings").rglob("*.json")]
    cut = [m for m in metas if m.get("call") in live_at_kill]
    assert {m["call"] for m in cut} >= answered & live_at_kill, [m.get("call") for m in metas]
    for meta in cut:
        assert meta["state"] == "ready" and meta["recovered"] is True, meta
        wav = state / "recordings" / meta["file"]
        info = subprocess.run(["soxi", "-D", str(wav)], capture_output=True, text=True, check=True)
        # a call that had just started holds a fraction of a second; the answered ones, seconds
        assert float(info.stdout) > (2.0 if meta["call"] in answered else 0.0), (wav, info.stdout)
        subprocess.run(["sox", str(wav), "-n", "stat"], capture_output=True, check=True)
