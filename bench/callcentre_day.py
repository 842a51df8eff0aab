"""A mixed call-centre load through the daemon: IVR, queues, recording and supervisor listening at once.

``hotline demo`` runs as its own process (free ports, state in a temporary
directory) with ``--agents`` simulated agents, Poisson callers at
``--callers-per-minute`` (60 % walk the IVR with RFC 4733 digits, the rest
dial a queue), every answered call recorded (policy ``always``), and a
simulated supervisor phone. While it runs, this script is the supervisor's
screen: a WebSocket JSON-RPC client (admin token) that starts
``supervisor.listen`` on each call an agent answers, one at a time per
``--listeners`` slot, and samples the daemon process's CPU and memory.

It prints one JSON object: the centre's numbers from the event log (offered,
answered, abandoned, service level, ASA, AHT, from ``hotline report``), the
supervisor sessions started and refused, recordings written, and the daemon's
CPU share (of one core) and peak RSS over the run::

    .venv/bin/python -m bench.callcentre_day --duration 60 --callers-per-minute 120 --agents 20
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import websocket

from bench.procfs import cpu_seconds, free_port, rss_bytes

ROOT = Path(__file__).resolve().parent.parent


class Supervisor(threading.Thread):
    """Listens in on answered calls through JSON-RPC, ``slots`` at a time."""

    def __init__(self, url: str, token: str, slots: int) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.slots = url, token, slots
        self.stop = threading.Event()
        self.started_ok = 0
        self.refused: dict[str, int] = {}
        self.queue_stats = 0
        self.calls_answered = 0

    def run(self) -> None:
        ws = websocket.create_connection(self.url, timeout=1)
        try:
            ws.send(json.dumps({"jsonrpc": "2.0", "method": "auth.login", "params": [self.token], "id": 1}))
            ws.send(json.dumps({"jsonrpc": "2.0", "method": "events.subscribe",
                                "params": [["call.*", "queue.*"]], "id": 2}))
            listening: set[str] = set()
            pending: dict[int, str] = {}
            next_id = 10
            while not self.stop.is_set():
                try:
                    msg = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                except (websocket.WebSocketConnectionClosedException, OSError):
                    return
                method, params = msg.get("method"), msg.get("params") or {}
                if method == "queue.stats":
                    self.queue_stats += 1
                elif method == "call.answered" and params.get("agent"):
                    self.calls_answered += 1
                    if len(listening) + len(pending) < self.slots:
                        next_id += 1
                        pending[next_id] = params["call"]
                        ws.send(json.dumps({"jsonrpc": "2.0", "method": "supervisor.listen", "id": next_id,
                                            "params": {"call": params["call"], "device": "8001"}}))
                elif method == "call.ended":
                    listening.discard(params.get("call"))
                elif msg.get("id") in pending:
                    call = pending.pop(msg["id"])
                    if "result" in msg:
                        self.started_ok += 1
                        listening.add(call)
                    else:
                        key = str(msg.get("error", {}).get("message", "?"))[:60]
                        self.refused[key] = self.refused.get(key, 0) + 1
        finally:
            ws.close()


def run(*, duration: float, callers_per_minute: float, agents: int, talk: float = 12.0, patience: float = 40.0,
        listeners: int = 2, seed: int = 1, grace: float = 20.0) -> dict:
    sip, http = free_port(), free_port()
    rtp = 46000 + 2 * (os.getpid() % 1000)
    with tempfile.TemporaryDirectory(prefix="hotline-day-") as tmp:
        state = Path(tmp) / "var"
        cmd = [sys.executable, "-m", "orchestrator.cli", "demo", "--duration", f"{duration:g}",
               "--callers-per-minute", f"{callers_per_minute:g}", "--agents", str(agents), "--supervisor",
               "--talk", f"{talk:g}", "--patience", f"{patience:g}", "--grace", f"{grace:g}", "--seed", str(seed),
               "--sip", f"127.0.0.1:{sip}", "--http", f"127.0.0.1:{http}", "--state-dir", str(state),
               "--rtp-ports", f"{rtp}-{rtp + 5999}"]
        errors = (Path(tmp) / "stderr").open("w+")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
        sup = None
        samples: list[tuple[float, float, int]] = []
        try:
            lines = [proc.stdout.readline()]
            if "ready" not in lines[0]:
                raise RuntimeError("the demo did not start: " + (Path(tmp) / "stderr").read_text()[-2000:])
            token = (state / "admin.token").read_text().strip()
            sup = Supervisor(f"ws://127.0.0.1:{http}/rpc", token, listeners)
            sup.start()
            t0 = time.monotonic()

            def sample() -> None:
                while proc.poll() is None:
                    try:
                        samples.append((time.monotonic() - t0, cpu_seconds(proc.pid), rss_bytes(proc.pid)))
                    except (FileNotFoundError, ProcessLookupError):
                        return
                    time.sleep(1.0)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            out = proc.stdout.read()
            proc.wait(timeout=120)
        finally:
            if sup is not None:
                sup.stop.set()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        errors.close()
        text = "".join(lines) + out
        if proc.returncode != 0:
            raise RuntimeError(f"the demo failed ({proc.returncode}): " + text[-1000:]
                               + (Path(tmp) / "stderr").read_text()[-2000:])
        rep = subprocess.run([sys.executable, "-m", "orchestrator.cli", "report", "queues", "--db",
                              f"sqlite:///{state}/hotline.db", "--from", "-1h", "--csv"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120, check=True)
        rows = list(csv.DictReader(io.StringIO(rep.stdout)))
        recordings = len(list((state / "recordings").rglob("*.wav")))
        if sup is not None:
            sup.join(timeout=5)
    # CPU over the loaded window: from the first sample to the end of --duration
    loaded = [s for s in samples if s[0] <= duration + 1]
    cpu_share = ((loaded[-1][1] - loaded[0][1]) / (loaded[-1][0] - loaded[0][0])
                 if len(loaded) > 2 and loaded[-1][0] > loaded[0][0] else None)

    def total(key: str) -> int:
        return sum(int(r[key]) for r in rows)

    answered, late = total("answered"), total("abandoned") - total("short_abandoned")
    within = total("answered_within")
    asa = [float(r["asa"]) * int(r["answered"]) for r in rows if r["asa"]]
    m = re.search(r"service level \(20 s\) (\S+)", text)
    return {
        "duration_s": duration, "callers_per_minute": callers_per_minute, "agents": agents,
        "offered": total("queued"), "answered": answered, "abandoned": total("abandoned"),
        "service_level_printed": m.group(1) if m else None,
        "answered_within_20s": within, "asa_s": round(sum(asa) / answered, 2) if answered and asa else None,
        "recordings": recordings,
        "supervisor_listens": sup.started_ok if sup else 0, "supervisor_refused": sup.refused if sup else {},
        "queue_stats_events": sup.queue_stats if sup else 0,
        "daemon_cpu_share": round(cpu_share, 3) if cpu_share is not None else None,
        "daemon_peak_rss_bytes": max((s[2] for s in samples), default=0),
        "late_abandons": late,
        "call_lines": sum(1 for x in text.splitlines() if re.match(r"\d\d:\d\d:\d\d  call ", x)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--callers-per-minute", type=float, default=120)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--talk", type=float, default=12)
    ap.add_argument("--patience", type=float, default=40)
    ap.add_argument("--listeners", type=int, default=2)
    ap.add_argument("--grace", type=float, default=20, help="seconds calls may take to finish after --duration")
    args = ap.parse_args(argv)
    print(json.dumps(run(duration=args.duration, callers_per_minute=args.callers_per_minute, agents=args.agents,
                         talk=args.talk, patience=args.patience, listeners=args.listeners, grace=args.grace)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
