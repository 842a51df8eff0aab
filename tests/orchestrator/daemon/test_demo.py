"""`hotline demo`: the embedded call centre runs, simulated SIP agents and callers make calls,
the wallboard's feed moves, and the summary it prints is what the event log says.

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
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import websocket

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.timeout(240)]


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the demo listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket(socket.AF_INET) as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


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


def test_demo_runs_calls_and_reports_them(tmp_path):
    sip, http = free_port(), free_port()
    rtp = 45000 + 2 * (os.getpid() % 1000)
    state = tmp_path / "var"
    cmd = [sys.executable, "-m", "orchestrator.cli", "demo", "--duration", "30", "--callers-per-minute", "40",
           "--talk", "6", "--patience", "12", "--grace", "25", "--seed", "7",
           "--sip", f"127.0.0.1:{sip}", "--http", f"127.0.0.1:{http}", "--state-dir", str(state),
           "--rtp-ports", f"{rtp}-{rtp + 1999}"]
    errors = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
    seen: list = []     # what the wallboard (its viewer token) receives
    pops: list = []     # what a CRM-like admin client receives
    stop = threading.Event()
    watchers: list[threading.Thread] = []
    lines: list[str] = []
    try:
        ready = proc.stdout.readline()
        lines.append(ready)
        m = re.search(r"wallboard http://127\.0\.0\.1:(\d+)/#token=(\S+?);", ready)
        assert m, ready + (tmp_path / "stderr").read_text()[-3000:]
        assert int(m.group(1)) == http
        url = f"ws://127.0.0.1:{http}/rpc"
        admin = (state / "admin.token").read_text().strip()
        watchers = [threading.Thread(target=watch, args=(url, m.group(2), ["queue.*"], seen, stop)),
                    threading.Thread(target=watch, args=(url, admin, ["call.*"], pops, stop))]
        for w in watchers:
            w.start()
        out = proc.stdout.read()  # to the end: the demo exits after --duration and --grace
        proc.wait(timeout=60)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
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

    # the summary, and a line per finished call
    m = re.search(r"calls offered (\d+)\s+answered (\d+)\s+abandoned (\d+)\s+service level \(20 s\) (\S+)", text)
    assert m, text
    offered, answered, abandoned = (int(m.group(i)) for i in (1, 2, 3))
    assert offered >= 5 and answered >= 3, text
    call_lines = [line for line in text.splitlines() if re.match(r"\d\d:\d\d:\d\d  call ", line)]
    assert len(call_lines) >= answered, text
    assert any(re.search(r"queue \w+  agent 90\d\d  waited \d+s  talked \d+s  answered", x) for x in call_lines)

    # the same numbers from the event log, through `hotline report`
    db = f"sqlite:///{state}/hotline.db"
    rep = subprocess.run([sys.executable, "-m", "orchestrator.cli", "report", "queues", "--db", db, "--from", "-1h",
                          "--csv"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    rows = list(csv.DictReader(io.StringIO(rep.stdout)))
    assert sum(int(r["queued"]) for r in rows) == offered
    assert sum(int(r["answered"]) for r in rows) == answered
    assert sum(int(r["abandoned"]) for r in rows) == abandoned

    # answered calls were recorded (policy "always")
    assert list((state / "recordings").rglob("*.wav")) or list((state / "recordings").rglob("*.hlrec"))

    # the wallboard's feed moved: queue statistics changed while it ran, and agents got screen pops
    stats = [e["params"] for e in seen if e["method"] == "queue.stats"]
    assert len({json.dumps(s, sort_keys=True) for s in stats}) >= 3, stats[:5]
    offers = [e["params"] for e in pops if e["method"] == "call.offered"]
    assert offers and all(str(o.get("agent", "")).startswith("90") for o in offers), offers[:3]
