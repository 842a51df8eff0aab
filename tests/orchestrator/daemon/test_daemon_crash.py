"""Crash safety (issue 6): after ``kill -9`` during live calls, the restarted daemon has a record for
every call that had started (ended as failed or abandoned where the outcome is unknown), and
every recording of those calls plays.

``hotline serve`` runs as a subprocess with recording policy "always". Real peers make the
calls: one headless baresip is the phone of agents 7001-7003 (it registers with digest and
answers by itself, sending speech), and SIPp callers send SIPp's shipped G.711 A-law capture.
When the daemon is killed five calls are live, one in each state crash recovery tells apart:

* three answered by agents -> ``call.ended``, outcome answered, with the agent and a talk time;
* one waiting in the queue, no agent free -> ``call.abandoned`` with the queue and its wait;
* one in the IVR, hearing a long prompt -> ``call.ended``, outcome failed.

The policy is "always", so all five are being recorded (from the moment Hotline answers).

All carry reason ``node_restart``. The daemon restarts on the same config and state; its spool
recovery repairs the recordings' headers, and sox must read each file with the duration its
record gives, and hear the caller's audio in it. The store runs on SQLite (unencrypted WAV
recordings) and on PostgreSQL (recordings encrypted with a key file, exported for playback with
``hotline recordings export``, then read by sox).

``hotline demo`` (the embedded call centre, simulated phones in the daemon's own process) gets
the same treatment at the end of the file, with more calls.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_harness import (
    CALLER,
    ROOT,
    Baresip,
    Sipp,
    agent,
    agent_states,
    base_config,
    free_port,
    need,
    read_events,
    rtp_block,
    serving,
    sox_rms,
    soxi_duration,
    wait_for,
    write_config,
)

from orchestrator.store import EventLog

pytestmark = [pytest.mark.timeout(180), pytest.mark.peers, pytest.mark.slow]

AGENTS = ["7001", "7002", "7003"]


def ends(events: list) -> dict:
    """call -> the event that ended its record (``call.ended`` or ``call.abandoned``), the first one."""
    out: dict = {}
    for e in events:
        if e.type in ("call.ended", "call.abandoned") and e.call:
            out.setdefault(e.call, e)
    return out


def hotline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request) -> tuple[str, str | None]:
    """(kind, url): the PostgreSQL URL is a fresh schema on the session's private server (tests/pg.py)."""
    if request.param == "sqlite":
        return "sqlite", None
    return "postgresql", request.getfixturevalue("postgres_url")


def test_kill_9_during_live_calls_then_restart(tmp_path, store):
    need("sipp", "baresip", "sox", "soxi")
    kind, url = store
    state = tmp_path / "var"
    flows = tmp_path / "flows"
    (flows / "prompts" / "en").mkdir(parents=True)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(flows / "prompts" / "en" / "long.wav"),
                    "synth", "60", "sine", "300"], check=True, timeout=30)
    (flows / "main.yaml").write_text("start: long\nnodes:\n  long: {type: play, prompts: [long], next: wait}\n"
                                     "  wait: {type: queue, queue: support}\n")
    recording = {"dir": str(state / "recordings"), "policy": "always", "format": "wav", "stereo": True}
    if kind == "postgresql":
        keys = state / "recording.keys"
        state.mkdir()
        made = hotline("recordings", "--dir", str(state / "recordings"), "--key-file", str(keys), "rotate-key")
        assert made.returncode == 0, made.stderr
        recording["key_file"] = str(keys)
    doc = base_config(state, node="crash-test", storage=url, flows=flows, recording=recording)
    doc["agent"] = [agent(a, "support") for a in AGENTS]
    config = write_config(tmp_path / "hotline.toml", doc)
    peers = []
    with serving(config, doc, tmp_path / "first.log") as first:
        try:
            first.start()
            phones = Baresip(tmp_path, AGENTS, first.sip_port)
            peers.append(phones)
            wait_for("the agents available", lambda: set(agent_states(first).values()) == {"available"},
                     alive=first.alive)
            target = f"127.0.0.1:{first.sip_port}"
            peers.append(Sipp(tmp_path / "sipp", "queue-callers", CALLER, target, "2000", calls=4))
            peers.append(Sipp(tmp_path / "sipp", "ivr-caller", CALLER, target, "1000"))

            def settled() -> bool:
                events = first.events()
                kinds = [e.type for e in events]
                return (kinds.count("call.answered") == 3 and kinds.count("call.queued") == 4
                        and kinds.count("recording.started") == 5
                        and any(e.type == "call.ivr" and e.data.get("node") == "long" for e in events))
            wait_for("3 calls answered, 1 waiting, 1 in the IVR, all recording", settled, alive=first.alive)
            live = first.call("call.list")
            recording_now = [r for r in first.call("recording.list") if r["state"] == "recording"]
            assert len(live) == 5 and len(recording_now) == 5, (live, recording_now)
            time.sleep(3.0)  # seconds of conversation reach the recordings
            first.kill9()
        finally:
            for peer in peers:
                peer.stop()  # the phones and callers go too: nobody will send a BYE
    log_url = doc["storage"]["url"]
    before = read_events(log_url)
    started = {e.call for e in before if e.type == "call.incoming"}
    assert len(started) == 5 and not ends(before), "the kill did not catch the calls live"
    answered = {e.call: e.agent for e in before if e.type == "call.answered"}
    waiting = {e.call for e in before if e.type == "call.queued"} - answered.keys()
    in_ivr = started - answered.keys() - waiting
    assert len(answered) == 3 and len(waiting) == 1 and len(in_ivr) == 1
    recorded = {e.data["recording"]: e.call for e in before if e.type == "recording.started"}

    # -- the restart: same config, same state ----------------------------------------------------
    with serving(config, doc, tmp_path / "second.log") as second:
        second.start()
        recordings = {r["recording"]: r for r in second.call("recording.list")}
        records = {r["call"]: r for r in second.call("cdr.query", {"limit": 100})}
        states = agent_states(second)
        second.send(signal.SIGTERM)
        assert second.wait(60) == 0, second.tail()
    warned = second.logged("event log: 5 call(s) were live when this node stopped")
    assert warned and set(warned[0]["calls"]) == started
    repaired = second.logged("recordings recovered after a stop")
    assert repaired and set(repaired[0]["recovered"]) == set(recorded), second.tail()
    assert set(states) == set(AGENTS)  # logged in again at start (from the config)

    # every call that had started has an end, with the reason, shaped by what was known of it
    with EventLog(log_url, read_only=True) as log:
        after = list(log.iter_events())
        cdrs = {call: log.call_record_sync(call) for call in started}
    end = ends(after)
    assert set(end) == started
    for call in started:
        assert end[call].data["reason"] == "node_restart" and end[call].data["synthetic"] is True, end[call]
        cdr = cdrs[call]
        assert not cdr.open and cdr.synthetic and cdr.end_reason == "node_restart", cdr
        assert records[call]["outcome"] == cdr.outcome  # cdr.query over JSON-RPC says the same
    for call, who in answered.items():
        assert end[call].type == "call.ended" and end[call].data["agent"] == who, end[call]
        assert (cdrs[call].outcome, cdrs[call].agent, cdrs[call].queue) == ("answered", who, "support")
        assert cdrs[call].talk is not None and cdrs[call].talk >= 0
    (call,) = waiting
    assert end[call].type == "call.abandoned" and end[call].data["queue"] == "support", end[call]
    assert cdrs[call].outcome == "abandoned" and cdrs[call].wait >= 0
    (call,) = in_ivr
    assert end[call].type == "call.ended" and cdrs[call].outcome == "failed", end[call]
    logged_off = {e.agent for e in after if e.type == "agent.state" and e.data.get("reason") == "node_restart"}
    assert logged_off == set(AGENTS)

    # every recording of those calls was recovered, and plays
    ready = {e.data["recording"]: e for e in after if e.type == "recording.ready"}
    assert set(ready) == set(recorded)
    for rec, call in recorded.items():
        meta = recordings[rec]
        assert (meta["call"], meta["state"], meta["recovered"]) == (call, "ready", True), meta
        assert meta["encrypted"] is (kind == "postgresql")
        assert rec in cdrs[call].recordings  # linked to the call record
        if kind == "postgresql":
            audio = tmp_path / f"{rec}.wav"
            out = hotline("recordings", "--config", str(config), "export", rec, "-o", str(audio))
            assert out.returncode == 0, out.stderr
        else:
            audio = state / "recordings" / meta["file"]
        duration = soxi_duration(audio)
        assert abs(duration - meta["duration"]) < 0.1, (rec, duration, meta["duration"])
        assert duration > 2.0, (rec, duration)  # each was recorded for seconds before the kill
        left, right = tmp_path / f"{rec}-caller.wav", tmp_path / f"{rec}-heard.wav"
        subprocess.run(["sox", str(audio), str(left), "remix", "1"], check=True, timeout=30)
        subprocess.run(["sox", str(audio), str(right), "remix", "2"], check=True, timeout=30)
        assert sox_rms(left) > 0.01, rec  # the caller's voice (SIPp's capture) is in it
        if call in answered or call in in_ivr:  # and what the caller heard: the agent's phone, or the prompt
            assert sox_rms(right) > 0.01, rec
    verified = hotline("recordings", "--config", str(config), "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def demo(state: Path, sip: int, http: int, rtp: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", "demo", "--sip", f"127.0.0.1:{sip}", "--http",
            f"127.0.0.1:{http}", "--state-dir", str(state), "--rtp-ports", f"{rtp}-{rtp + 1999}", *extra]


def test_demo_kill_9_during_recorded_calls_then_restart(tmp_path):
    """The same acceptance on `hotline demo`: its simulated agents and callers are SIP user agents in
    the daemon's own process, so they die with it, mid-conversation, as in a power cut."""
    need("sox", "soxi")
    sip, http = free_port(), free_port()
    rtp = rtp_block(2000)[0]
    state = tmp_path / "var"
    url = f"sqlite:///{state}/hotline.db"
    with (tmp_path / "first.err").open("w") as errors:
        first = subprocess.Popen(demo(state, sip, http, rtp, "--duration", "600", "--callers-per-minute", "100",
                                      "--talk", "60", "--patience", "90", "--seed", "3"),
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            def three_answered() -> set:
                assert first.poll() is None, (tmp_path / "first.err").read_text()[-3000:]
                if not (state / "hotline.db").exists():
                    return set()
                found = {e.call for e in read_events(url) if e.type == "call.answered" and e.agent}
                return found if len(found) >= 3 else set()
            answered = wait_for("3 calls answered by the demo's agents", three_answered, timeout=90, poll=1.0)
            time.sleep(3.0)  # a few seconds of conversation reach the recordings
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
    before = read_events(url)
    started = {e.call for e in before if e.type == "call.incoming"}
    live_at_kill = started - set(ends(before))
    assert answered <= started and answered & live_at_kill, "the kill did not catch answered calls live"

    second = subprocess.run(demo(state, sip, http, rtp, "--duration", "2", "--callers-per-minute", "0",
                                 "--grace", "0"), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]

    end = ends(read_events(url))
    assert not started - end.keys(), f"calls without an end after the restart: {sorted(started - end.keys())}"
    for call in live_at_kill:
        assert end[call].data.get("reason") == "node_restart" and end[call].data.get("synthetic") is True, end[call]
    for call in answered & live_at_kill:  # answered by an agent: ended, with the agent and a talk time
        assert end[call].type == "call.ended" and end[call].data.get("agent") and end[call].data["talk"] > 0

    metas = [json.loads(p.read_text()) for p in (state / "recordings").rglob("*.json")]
    cut = [m for m in metas if m.get("call") in live_at_kill]
    assert {m["call"] for m in cut} >= answered & live_at_kill, [m.get("call") for m in metas]
    for meta in cut:
        assert meta["state"] == "ready" and meta["recovered"] is True, meta
        duration = soxi_duration(state / "recordings" / meta["file"])
        # a call that had just started holds a fraction of a second; the answered ones, seconds
        assert duration > (2.0 if meta["call"] in answered else 0.0), (meta, duration)
