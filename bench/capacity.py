"""Engine capacity: CPU, memory and loss of N concurrent calls of one kind.

The engine (bench/capacity_server.py, one media thread) runs pinned to CPU 0;
the native generator (bench/tools/rtpload.cpp, the one the relay comparison
uses) runs pinned to CPU 1 and plays every phone: 50 packets/s of 20 ms
G.711 per endpoint. Over the measurement window (after a warm-up) we read the
engine process's CPU time from /proc, its resident memory (VmRSS), the
engine's own counters (ticks, tick overruns, packets lost on arrival at the
legs facing the generator) and the generator's counts.

Kinds (see capacity_server.py for how each is wired): relay, record,
transcode (PCMU <-> Opus), conference (4-party rooms), ivr (a looping prompt
with in-band DTMF detection).

Loss: for relay and record the packets come back to the generator unchanged,
so the generator counts loss end to end (and one-way latency). For the other
kinds the engine makes the packets (mixed, transcoded, played), so loss is
what the engine counts on arrival (sequence gaps at the legs facing the
generator) plus ticks it ran late; the generator's own count is kept too.

    python -m bench.capacity --kind record --calls 100 500 1000
    python -m bench.capacity --kind transcode --calls 200 --profile /tmp/transcode.perf

A run where the generator fell behind its schedule (``generator_behind`` > 0)
offered less load than nominal: ``effective_calls`` says how much was really
offered, and results are marked ``generator_limited``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.capacity_server import KINDS
from bench.relaybench import ROOT, Generator, core_times, process_cpu_seconds, taskset

PPS = 50  # packets per second per endpoint (20 ms ptime)
LOSS_LIMIT = 0.001  # "under 0.1% loss"


def endpoints_for(kind: str, calls: int, room_size: int = 4) -> int:
    """Generator endpoints needed for ``calls`` calls (sessions, members) of a kind."""
    if calls <= 0:
        raise ValueError("calls must be > 0")
    if kind in ("relay", "record"):
        return 2 * calls
    if kind == "transcode":
        if calls % 2:
            raise ValueError("transcode: calls must be even (a generator pair carries two transcoding bridges)")
        return calls
    if kind == "conference":
        if calls % room_size:
            raise ValueError(f"conference: calls (members) must be a multiple of the room size {room_size}")
        return calls
    if kind == "ivr":
        return calls
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def prompt_wav(directory: Path) -> Path:
    """A speech prompt for the IVR kind (espeak-ng + sox, cached)."""
    out = directory / "capacity-prompt-8k.wav"
    if not out.exists():
        sys.path.insert(0, str(ROOT))
        from tools.prompts import make_speech

        make_speech("Welcome to the support line. For sales, press one. For support, press two. "
                    "To hear these options again, press star.", out, rate=8000)
    return out


ENGINE_CPU = 0  # the engine is pinned here; the generator runs on CPU 1


class CapacityServer:
    def __init__(self, spec: dict, cpu: int | None = ENGINE_CPU) -> None:
        env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'src'}")
        self.proc = subprocess.Popen(taskset(cpu) + [sys.executable, "-m", "bench.capacity_server"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            raise RuntimeError(f"capacity server failed (exit {self.proc.returncode})")
        self.started = json.loads(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def command(self, what: str) -> dict:
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> dict:
        out: dict = {}
        if self.proc.poll() is None:
            try:
                out = self.command("stop")
                self.proc.wait(timeout=60)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        return out


def _delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in after if isinstance(after[k], int)}


def run(kind: str, calls: int, *, duration: float = 8.0, warmup: float = 3.0, threads: int = 1,
        room_size: int = 4, profile: str | None = None, workdir: Path | None = None) -> dict:
    """One measurement of ``calls`` concurrent calls of ``kind``; returns a flat dict of figures."""
    n = endpoints_for(kind, calls, room_size)
    tmp = tempfile.TemporaryDirectory(prefix=f"hotline-capacity-{kind}-")
    work = Path(workdir or tmp.name)
    spec: dict = {"kind": kind, "threads": threads, "room_size": room_size}
    if kind == "record":
        spec["record_dir"] = tmp.name
    if kind == "ivr":
        spec["prompt"] = str(prompt_wav(work))
    gen = Generator(n, duration, warmup)
    server = None
    perf = None
    try:
        spec["endpoints"] = gen.ports
        server = CapacityServer(spec)
        gen.go(server.started["dest"])
        t_go = time.monotonic()
        time.sleep(max(0.0, t_go + 0.05 + warmup - time.monotonic()))
        s0 = server.command("stats")
        cpu0, core0, t0 = process_cpu_seconds(server.pid), core_times(ENGINE_CPU), time.monotonic()
        window_left = max(0.5, t_go + 0.05 + duration - 0.3 - t0)
        if profile:
            perf = subprocess.Popen(taskset(1) + ["perf", "record", "-e", "cpu-clock", "-g", "-q", "-o", profile,
                                                  "-p", str(server.pid), "--", "sleep", f"{window_left:.2f}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(window_left)
        cpu1, core1, t1 = process_cpu_seconds(server.pid), core_times(ENGINE_CPU), time.monotonic()
        s1 = server.command("stats")
        out = gen.result(timeout=duration + 60)  # the generator stops sending, then counts the last arrivals
        final = server.stop()
        if perf is not None:
            perf.wait(timeout=60)
    finally:
        gen.kill()
        if server is not None:
            server.stop()
        if perf is not None and perf.poll() is None:
            perf.kill()
            perf.wait()
        tmp.cleanup()
    window = t1 - t0
    cpu = cpu1 - cpu0
    legs = _delta(s1["legs"], s0["legs"])
    internal = _delta(s1["internal_legs"], s0["internal_legs"])
    w0 = s0["engine"]["workers"]
    w1 = s1["engine"]["workers"]
    ticks = sum(b["ticks"] - a["ticks"] for a, b in zip(w0, w1))
    overruns = sum(b["tick_overruns"] - a["tick_overruns"] for a, b in zip(w0, w1))
    packets_in = sum(b["packets_in"] - a["packets_in"] for a, b in zip(w0, w1))
    packets_out = sum(b["packets_out"] - a["packets_out"] for a, b in zip(w0, w1))
    arrived = legs["packets_received"] + legs["packets_lost"]
    engine_loss = legs["packets_lost"] / arrived if arrived > 0 else 0.0
    expected_sent = n * PPS * out["window_s"]
    offered = out["sent_measured"] / expected_sent if expected_sent else 0.0
    end_to_end = kind in ("relay", "record")
    # late ticks: the share of the 20 ms clock's expirations the worker did not serve on time
    # (a late read counts every expiration it missed, so divide by all of them, not by the reads)
    late = overruns / (ticks + overruns) if ticks + overruns else 0.0
    loss = out["loss_ratio"] if end_to_end else max(engine_loss, late)
    result = {
        "kind": kind, "calls": calls, "endpoints": n, "threads": threads, "window_s": round(window, 3),
        "cpu_s": round(cpu, 3), "cpu_share": round(cpu / window, 4),
        "cpu_ms_per_call_second": round(1000 * cpu / window / calls, 4),
        # The engine's core as a whole: its process time plus packet work the kernel ran in
        # ksoftirqd (not charged to the process) plus anything else that ran there.
        "core_busy_share": round((core1[0] - core0[0]) / window, 4),
        "core_softirq_share": round((core1[1] - core0[1]) / window, 4),
        "rss_bytes": s1["rss_bytes"], "idle_rss_bytes": server.started["idle_rss_bytes"],
        "rss_bytes_per_call": round((s1["rss_bytes"] - server.started["idle_rss_bytes"]) / calls, 1),
        "loss_ratio": round(loss, 6), "loss_basis": "generator" if end_to_end else "engine",
        "generator_loss_ratio": out["loss_ratio"] if end_to_end else None, "engine_loss_ratio": round(engine_loss, 6),
        "engine_packets_lost": legs["packets_lost"], "engine_packets_received": legs["packets_received"],
        "concealed_samples": legs["concealed_samples"], "ticks": ticks, "tick_overruns": overruns,
        "internal_packets_received": internal["packets_received"], "internal_packets_lost": internal["packets_lost"],
        "generator_window_s": out["window_s"],
        "packets_in_per_s": round(packets_in / window, 1), "packets_out_per_s": round(packets_out / window, 1),
        "generator_sent": out["sent_measured"],
        "generator_received": out["received_measured"] if end_to_end else None,
        "generator_behind": out["behind_schedule"], "generator_send_errors": out["send_errors"],
        "offered_ratio": round(offered, 4), "effective_calls": round(calls * min(1.0, offered), 1),
        # A few late sends are scheduling noise on a shared machine; 1 % late or 1 % short is a generator
        # that cannot offer the load.
        "generator_limited": out["behind_schedule"] > 0.01 * max(1, out["sent_measured"]) or offered < 0.99,
        "latency_us_p50": out["latency_us"]["p50"] if end_to_end else None,
        "latency_us_p99": out["latency_us"]["p99"] if end_to_end else None,
        "recorder_bytes_written": final.get("engine", {}).get("recorder_bytes_written", 0),
        "recorder_overruns": final.get("engine", {}).get("recorder_overruns", 0),
    }
    result["within_loss_limit"] = result["loss_ratio"] < LOSS_LIMIT
    return result


_PERF_LINE = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[([.kHugv])\]\s+(.*\S)\s*$")
_DSO_LINE = re.compile(r"^\s*([0-9.]+)%\s+(.*\S)\s*$")


def classify(dso: str) -> str:
    """Which part of the stack a shared object is: kernel, ours, libopus, libc, python, other."""
    if dso.startswith("[kernel") or dso in ("[vdso]", "[kernel.kallsyms]"):
        return "kernel"
    if "mediacore" in dso or re.match(r"_\w+\.cpython", dso) or dso.startswith("_engine"):
        return "ours"
    if "libopus" in dso:
        return "libopus"
    if dso.startswith(("libc", "libm", "libstdc++")) or "ld-linux" in dso:
        return "libc"
    if dso.startswith(("python", "libpython")):
        return "python"
    return "other"


def perf_summary(data: str | Path, top: int = 15) -> dict:
    """Top symbols and shared objects of a ``perf record`` file, by self share."""
    def report(fields: str) -> str:
        return subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                               "-F", fields, "--percent-limit", "0.3"],
                              capture_output=True, text=True, check=True, timeout=300).stdout

    symbols = []
    for line in report("overhead,dso,sym").splitlines():
        m = _PERF_LINE.match(line)
        if m:
            share, dso, where, sym = m.groups()
            symbols.append({"share": round(float(share) / 100, 4), "dso": dso, "kernel": where == "k", "symbol": sym,
                            "part": "kernel" if where == "k" else classify(dso)})
    dsos = []
    for line in report("overhead,dso").splitlines():
        m = _DSO_LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            dsos.append({"share": round(float(m.group(1)) / 100, 4), "dso": m.group(2), "part": classify(m.group(2))})
    parts: dict[str, float] = {}
    for d in dsos:
        parts[d["part"]] = round(parts.get(d["part"], 0.0) + d["share"], 4)
    return {"top_symbols": symbols[:top], "by_dso": dsos, "by_part": parts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=KINDS, default="relay")
    ap.add_argument("--calls", type=int, nargs="+", default=[100])
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", default=None, help="perf record the engine during the window into this file")
    args = ap.parse_args(argv)
    if args.profile and shutil.which("perf") is None:
        ap.error("perf is not installed")
    for n in args.calls:
        r = run(args.kind, n, duration=args.duration, warmup=args.warmup, threads=args.threads,
                profile=args.profile)
        print(json.dumps(r))
        if args.profile:
            print(json.dumps(perf_summary(args.profile), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
