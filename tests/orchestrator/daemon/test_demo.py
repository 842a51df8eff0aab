"""`hotline demo`: the embedded call centre runs, simulated SIP agents and callers make calls,
the wallboard's feed moves, the summary it prints is what the event log says, and Ctrl-C
stops it cleanly.

The demo runs as a subprocess on free ports (its fixed 5060/8080 may be in use on a shared
machine) with its state in a temporary directory; a WebSocket client we did not write
(websocket-client) logs in with the wallboard's token from the ready line and watches the
queue and call events while it runs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import websocket
from daemon_harness import free_port

from orchestrator.store import EventLog

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
CALL_LINE = re.compile(r"\d\d:\d\d:\d\d  call (\S+)  from (\d+)  dialled (\d+)  (.*)$")
SUMMARY = re.compile(r"calls offered (\d+)\s+answered (\d+)\s+abandoned (\d+)\s+service level \(20 s\) (\S+)")


def demo_command(state: Path, rtp: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", "demo", "--sip", f"127.0.0.1:{free_port()}",
            "--http", f"127.0.0.1:{free_port()}", "--state-dir", str(state), "--rtp-ports", f"{rtp}-{rtp + 1999}",
            *extra]


def watch(url: str, token: str, topics: list[str], seen: list, stop: threading.Event) -> None:
    ws = websocket.create_connection(url, timeout=5)
    try:
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "auth.login", "params": [token], "id": 1}))
        assert "result" in json.loads(ws.recv())
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "events.subscribe", "params": [topics],
                            "id": 2}))
        while not stop.is_set():
            try:
                msg = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, OSError):
                return
            if "method" in msg:
                seen.append(msg)
    finally:
        ws.close()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_demo_runs_calls_and_reports_them(tmp_path):
    state = tmp_path / "var"
    cmd = demo_command(state, 45000 + 2 * (os.getpid() % 1000), "--duration", "25", "--callers-per-minute", "40",
                       "--talk", "6", "--patience", "12", "--grace", "10", "--seed", "7")
    errors = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
    seen: list = []     # what the wallboard (its viewer token) receives
    pops: list = []     # what a CRM-like admin client receives
    done = threading.Event()
    watchers: list[threading.Thread] = []
    lines: list[str] = []
    try:
        ready = proc.stdout.readline()
        lines.append(ready)
        m = re.search(r"wallboard http://127\.0\.0\.1:(\d+)/#token=(\S+?);", ready)
        assert m, ready + (tmp_path / "stderr").read_text()[-3000:]
        url = f"ws://127.0.0.1:{m.group(1)}/rpc"
        admin = (state / "admin.token").read_text().strip()
        watchers = [threading.Thread(target=watch, args=(url, m.group(2), ["queue.*"], seen, done)),
                    threading.Thread(target=watch, args=(url, admin, ["call.*"], pops, done))]
        for w in watchers:
            w.start()
        out = proc.stdout.read()  # to the end: the demo exits after --duration and --grace
        proc.wait(timeout=60)
    finally:
        done.set()
        stop(proc)
        for w in watchers:
            w.join(timeout=10)
    errors.close()
    text = "".join(lines) + out
    assert proc.returncode == 0, text + (tmp_path / "stderr").read_text()[-3000:]

    # the admin token the demo printed is the one in ./var/admin.token (mode 0600)
    token_file = state / "admin.token"
    assert f"admin token: {token_file.read_text().strip()}" in text
    assert token_file.stat().st_mode & 0o077 == 0
    assert "5 simulated agents registered" in text

    # the summary
    m = SUMMARY.search(text)
    assert m, text
    offered, answered, abandoned = (int(m.group(i)) for i in (1, 2, 3))
    assert offered > 0 and answered > 0, text
    calls_in = int(re.search(r"(\d+) calls in \(", text).group(1))

    # a line per call, every one of them ended (the last ones hung up when the demo stopped)
    calls = {}
    for line in text.splitlines():
        found = CALL_LINE.match(line)
        if found:
            calls[found.group(1)] = found
    assert len(calls) == calls_in >= offered, text
    rest = [c.group(4) for c in calls.values()]
    assert any(re.match(r"queue \w+  agent 90\d\d  waited \d+s  talked \d+s  answered", r) for r in rest), text
    # callers walked the IVR with RFC 4733 digits (language, menu choice) into the queues, or dialled one
    assert any(c.group(3) == "1000" and re.match(r"ivr (choose_language=\d )?main_menu=[123]", c.group(4))
               for c in calls.values()), text
    assert any(c.group(3) in ("2000", "2001") and c.group(4).startswith("queue ") for c in calls.values()), text

    # the same numbers from the event log, through `hotline report`, with the command the demo printed
    printed = re.search(r"the same numbers: hotline report queues (.*)$", text, re.MULTILINE)
    assert printed, text
    args = shlex.split(printed.group(1))
    args[args.index("--db") + 1] = f"sqlite:///{state}/hotline.db"  # the demo ran with another ./var
    rep = subprocess.run([sys.executable, "-m", "orchestrator.cli", "report", "queues", *args, "--csv"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    rows = list(csv.DictReader(io.StringIO(rep.stdout)))
    assert sum(int(r["queued"]) for r in rows) == offered
    assert sum(int(r["answered"]) for r in rows) == answered
    assert sum(int(r["abandoned"]) for r in rows) == abandoned

    with EventLog(f"sqlite:///{state}/hotline.db", read_only=True) as log:
        records = {r.call: r for r in log.call_records_sync(limit=None)}
        registered = log.read_sync(types="device.registered")
    assert set(records) == set(calls)
    # the agents registered through the registrar, authenticated by digest (the REGISTER after the 401)
    bindings = [e.data["binding"] for e in registered]
    assert {b["username"] for b in bindings} == {"9001", "9002", "9003", "9004", "9005"}, bindings
    assert all(b["cseq"] == 2 for b in bindings), bindings
    # each line is its call's record

    for call, line in calls.items():
        r = records[call]
        assert line.group(3) == r.callee and (f"agent {r.agent}" in line.group(4)) == (r.agent is not None)
    # real RTP both ways: the recording of an answered call holds both parties talking
    talked = [a for r in records.values() if r.agent and (r.talk or 0) > 4 for a in r.recording_analytics.values()]
    assert any(a["talk_left"] > 0.5 and a["talk_right"] > 0.5 for a in talked), talked
    assert list((state / "recordings").rglob("*.wav"))

    # the wallboard's feed moved: queue statistics changed while it ran, and agents got screen pops
    stats = [e["params"] for e in seen if e["method"] == "queue.stats"]
    assert len({json.dumps(s, sort_keys=True) for s in stats}) >= 3, stats[:5]
    assert any(s.get("waiting", 0) > 0 for s in stats) or any(s.get("answered", 0) > 0 for s in stats), stats[:5]
    offers = [e["params"] for e in pops if e["method"] == "call.offered"]
    assert offers and all(str(o.get("agent", "")).startswith("90") for o in offers), offers[:3]


def test_ctrl_c_stops_the_demo_cleanly_with_a_summary(tmp_path):
    state = tmp_path / "var"
    cmd = demo_command(state, 43000 + 2 * (os.getpid() % 1000), "--callers-per-minute", "60", "--talk", "60",
                       "--patience", "60", "--seed", "3")
    errors = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline(), proc.stdout.readline()]
        assert "simulated agents registered" in lines[2], "".join(lines) + (tmp_path / "stderr").read_text()
        url = f"sqlite:///{state}/hotline.db"
        deadline = time.monotonic() + 60
        answered: list = []
        while time.monotonic() < deadline and not answered:  # calls are up, an agent is talking
            time.sleep(1.0)
            with EventLog(url, read_only=True) as log:
                answered = [e for e in log.read_sync(types="call.answered") if e.agent]
        assert answered, (tmp_path / "stderr").read_text()[-3000:]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        stop(proc)
    errors.close()
    text = "".join(lines) + out
    assert proc.returncode == 0, text + (tmp_path / "stderr").read_text()[-3000:]
    assert "SIGINT: stopping" in text and SUMMARY.search(text), text
    assert "Traceback" not in (tmp_path / "stderr").read_text()
    # the calls that were up were hung up by the stop, and each has its line and its record
    assert re.search(r"answered \(cut: the demo stopped\)", text), text
    with EventLog(url, read_only=True) as log:
        records = log.call_records_sync(limit=None)
    assert records and not [r.call for r in records if r.open]
    assert {r.call for r in records} == {m.group(1) for m in map(CALL_LINE.match, text.splitlines()) if m}
