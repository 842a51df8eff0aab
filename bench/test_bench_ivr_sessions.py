"""Concurrent IVR sessions driven by SIPp: how many callers can hear a prompt and key in digits
at once, with no digit missed, and what it costs the daemon.

Each SIPp caller (bench/sipp/ivr_bench_caller.xml) calls the IVR, hears the prompt for a hold
time, presses 1 2 3 4 with SIPp's shipped RFC 2833 captures (payload type 101), and waits for
Hotline to hang up. Hotline runs in its own process (``python -m bench.test_bench_ivr_sessions
--serve``): the B2BUA, the media engine (2 threads), the CallCentre's IVR runner on this flow,
and an SQLite event log::

    prompt: collect, 4 digits, barge-in    ->  done: hang up
            (a long spoken prompt)             missed: hang up (a digit never came)

Calls arrive at ``rate`` per second and each is held long enough that all ``N`` sessions are
in the IVR at the same time, the prompt playing to every one of them; then their digits arrive
(at the same rate). For each N the run checks, from the daemon's own counters and from its
event log: every call reached the IVR and was answered, the sessions in progress at the peak
(sampled every 0.25 s in the daemon) and the prompts playing then (engine players), every digit
collected (4 x N, each entry "1234"), no failed SIPp call. It reports the daemon's CPU time:
over the whole run, and its share of the machine (cores) while all N sessions were up.

    # quick, a small scale:
    HOTLINE_IVR_SESSIONS=100,200 .venv/bin/python -m pytest -q bench/test_bench_ivr_sessions.py -p no:cacheprovider
    # the goal (make bench): 250, 500, 1000, 2000 concurrent sessions
    .venv/bin/python -m pytest -q bench/test_bench_ivr_sessions.py -p no:cacheprovider
    # further: HOTLINE_IVR_SESSIONS=3000 HOTLINE_IVR_RATE=100 ...

Results: ``extra_info`` of each benchmark and ``bench/results/ivr-sessions.json`` (with the
machine's load average before and after: other work on the machine shows there).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench.procfs import cpu_seconds, free_port

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "bench" / "sipp"
RESULTS = ROOT / "bench" / "results"
PCAPS = Path("/usr/share/sip-tester")

SESSIONS = [int(n) for n in os.environ.get("HOTLINE_IVR_SESSIONS", "250,500,1000,2000").split(",") if n]
MAX_RATE = float(os.environ.get("HOTLINE_IVR_RATE", "50"))
ENGINE_THREADS = int(os.environ.get("HOTLINE_IVR_ENGINE_THREADS", "2"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# one media port per SIPp call instead of one for all (see bench/sipp/ivr_bench_caller_port_per_call.xml)
PORT_PER_CALL = os.environ.get("HOTLINE_IVR_PORT_PER_CALL", "") not in ("", "0")
SCENARIO = "ivr_bench_caller_port_per_call.xml" if PORT_PER_CALL else "ivr_bench_caller.xml"
PYSPY = os.environ.get("HOTLINE_IVR_PYSPY")  # where py-spy writes collapsed stacks of the daemon (raw format)
DIGITS = "1234"
PROMPT_TEXT = ("Thank you for calling Hotline. Please key in your four digit customer code now. "
               "You may start at any time. ")

_results: dict[int, dict] = {}


def bound_udp_ports() -> set[int]:
    """UDP ports bound on this machine now (/proc/net/udp and udp6)."""
    ports: set[int] = set()
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def free_media_block(calls: int, lo: int = 15000, hi: int = 32768) -> int:
    """A base port for SIPp's media: SIPp binds ``base`` and sends each call's RTP from
    ``base + 4 (n - 1)``, so none of those ports may be in use (a call whose port is taken
    never sends its digits). Below the ephemeral range, where other programs' sockets come and go."""
    span = 4 * calls + 4
    taken = bound_udp_ports()
    for base in range(lo, hi - span, 2):
        if not any(p in taken for p in range(base, base + span)):
            return base
    raise RuntimeError(f"no free block of {span} UDP ports in {lo}-{hi}")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the threads of ``pid`` by name ("trio" for the main thread; the engine's
    threads keep the process name), summed over threads of the same name."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = "trio" if task.name == str(pid) else (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def prompt(tmp_path_factory) -> Path:
    """About a minute of speech (espeak-ng + sox), longer than any hold time."""
    need("espeak-ng", "sox")
    from tools.prompts import make_speech

    d = tmp_path_factory.mktemp("ivr-bench-prompt")
    once = make_speech(PROMPT_TEXT, d / "once.wav", rate=8000)
    out = d / "prompt.wav"
    subprocess.run(["sox", str(once), str(out), "repeat", "9"], check=True, capture_output=True)
    return out


def plan(sessions: int) -> tuple[float, int]:
    """(calls per second, hold ms): all ``sessions`` in the IVR at once, then their digits."""
    rate = min(MAX_RATE, max(5.0, sessions / 10.0))
    hold_ms = int(1000 * (sessions / rate + 5.0))
    return rate, hold_ms


def run_load(sessions: int, port: int, workdir: Path, server: subprocess.Popen) -> dict:
    rate, hold_ms = plan(sessions)
    stats_file = workdir / "sipp_stats.csv"
    media = free_media_block(sessions if PORT_PER_CALL else 1)
    cmd = ["sipp", "-sf", str(SCENARIOS / SCENARIO), f"127.0.0.1:{port}", "-s", "1000",
           "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(media),
           "-r", f"{rate:g}", "-m", str(sessions), "-l", str(sessions + 50), "-d", str(hold_ms),
           "-nostdin", "-buff_size", "4194304", "-trace_stat", "-stf", str(stats_file), "-fd", "1",
           "-trace_err", "-timeout", f"{int(sessions / rate + hold_ms / 1000 + 60)}s", "-timeout_error"]
    load_before = os.getloadavg()
    cpu_before = cpu_seconds(server.pid)
    started = time.monotonic()
    sipp = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False,
                          timeout=sessions / rate + hold_ms / 1000 + 180)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(server.pid) - cpu_before
    if not stats_file.exists():
        raise RuntimeError(f"SIPp did not run (rc {sipp.returncode}): {sipp.stderr[-2000:]} {sipp.stdout[-2000:]}")
    rows = [r for r in csv.DictReader(stats_file.open(), delimiter=";") if r["CallRate(P)"] != "CallRate(P)"]
    last = rows[-1]
    failures = {k[len("Failed"):-3]: int(v) for k, v in last.items()
                if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and v and int(v)}
    text = "".join(path.read_text(errors="replace") for path in workdir.glob("*_errors.log"))
    aborted = sorted({int(m) for m in re.findall(r"Call-ID: (\d+)-\d+@", text)} |
                     {int(m) for m in re.findall(r"[Dd]ead call (\d+)-", text)} |
                     {int(m) for m in re.findall(r"Call-Id '(\d+)-", text)})
    errors = {"calls": aborted[:50], "count": len(aborted)}
    return {"sessions": sessions, "scenario": SCENARIO, "rate_cps": rate, "hold_ms": hold_ms,
            "sipp_rc": sipp.returncode,
            "successful": int(last["SuccessfulCall(C)"]), "failed": int(last["FailedCall(C)"]),
            "failures": failures, "sipp_errors": errors,
            "sipp_peak_calls": max(int(r["CurrentCall"]) for r in rows),
            "elapsed_s": round(elapsed, 1), "server_cpu_seconds": round(cpu, 2),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()]}


@pytest.mark.parametrize("sessions", SESSIONS)
def test_bench_concurrent_ivr_sessions(benchmark, sessions, prompt, tmp_path):
    need("sipp")
    if not (PCAPS / "dtmf_2833_1.pcap").exists():
        pytest.skip("SIPp's shipped DTMF captures are missing (/usr/share/sip-tester)")
    (tmp_path / "pcap").symlink_to(PCAPS)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.test_bench_ivr_sessions", "--serve", "--port",
                               str(port), "--prompt", str(prompt), "--workdir", str(tmp_path)],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    spy = None
    try:
        assert server.stdout.readline().strip() == "READY"
        pyspy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if PYSPY and pyspy:
            spy = subprocess.Popen([pyspy, "record", "--pid", str(server.pid), "--rate", "100", "--format", "raw",
                                    "-o", f"{PYSPY}.{sessions}"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        benchmark.group = "ivr: concurrent sessions (prompt + 4 RFC 2833 digits)"
        benchmark.extra_info["sessions"] = sessions
        result = benchmark.pedantic(run_load, args=(sessions, port, tmp_path, server), rounds=1, iterations=1)
        if spy is not None:
            stop(spy, signal.SIGINT)  # py-spy writes its output on SIGINT
        server.stdin.close()  # the server prints its statistics and exits
        daemon = json.loads(server.stdout.read() or "{}")
        server.wait(timeout=60)
    finally:
        if spy is not None:
            stop(spy)
        stop(server)
    result["daemon"] = daemon
    total = result["server_cpu_seconds"]
    result["cpu_ms_per_session"] = round(1000 * total / sessions, 2)
    result["missed_digits"] = 4 * sessions - daemon.get("digits_logged", 0)
    benchmark.extra_info.update(result)
    _results[sessions] = result
    save()
    print(f"\nivr sessions {sessions}: {json.dumps(result)}")
    # every caller went through the IVR and hung up by it, all N at once, the prompt playing to each
    assert result["failed"] == 0 and result["successful"] == sessions, result
    assert daemon["sessions_started"] == sessions and daemon["outcomes"] == {"hangup": sessions}, daemon
    assert daemon["peak_sessions"] == sessions, daemon
    assert daemon["players_at_peak"] >= sessions, daemon  # a prompt playing to every session
    # every digit collected: four per caller, each entry exactly 1234, in the event log
    assert daemon["entries_logged"] == sessions and daemon["entries_1234"] == sessions, daemon
    assert result["missed_digits"] == 0 and daemon["digits_collected"] == sessions


def save() -> None:
    RESULTS.mkdir(exist_ok=True)
    ok = [n for n, r in sorted(_results.items())
          if r["failed"] == 0 and r["missed_digits"] == 0 and r["daemon"].get("peak_sessions") == n]
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
           "largest_with_no_missed_digit": max(ok, default=None),
           "runs": {str(n): r for n, r in sorted(_results.items())}}
    (RESULTS / "ivr-sessions.json").write_text(json.dumps(out, indent=2))


# ---------------------------------------------------------------------------- the server process
FLOW = """\
description: the IVR benchmark's flow
start: prompt
nodes:
  prompt:
    type: collect
    prompts: [prompt]
    variable: code
    min_digits: 4
    max_digits: 4
    terminator: ""
    timeout: 60
    inter_digit_timeout: 5
    max_retries: 0
    next: done
    on_failure: missed
  done: {type: hangup, reason: collected}
  missed: {type: hangup, reason: missed}
"""


def serve(port: int, prompt: Path, workdir: Path) -> None:
    import gc

    import trio

    from mediacore.engine import Engine
    from orchestrator.acd import Acd
    from orchestrator.callcentre import CallCentre
    from orchestrator.calls import (
        CallManager,
        CallManagerConfig,
        DialPlan,
        InMemoryLocator,
        OpenAuthenticator,
    )
    from orchestrator.calls.routing import ToIvr
    from orchestrator.ivr import FlowRegistry
    from orchestrator.store import EventLog
    from orchestrator.transport import EndpointConfig, SipEndpoint, UdpTransport

    flows = workdir / "flows"
    (flows / "prompts" / "en").mkdir(parents=True, exist_ok=True)
    shutil.copy(prompt, flows / "prompts" / "en" / "prompt.wav")
    (flows / "bench.yaml").write_text(FLOW)
    registry = FlowRegistry()
    result = registry.reload(flows)
    if not result.ok:
        raise SystemExit(f"bad flow: {result.problems}")
    log = EventLog(f"sqlite:///{workdir}/hotline.db", node="bench")
    samples: list[tuple[float, float, int, int, dict]] = []

    async def main() -> dict:
        with Engine(port_range=(40000, 49999), threads=ENGINE_THREADS, stats_interval=0,
                    socket_buffer_bytes=1 << 20) as engine:
            endpoint = SipEndpoint([UdpTransport("127.0.0.1", port, socket_buffer_bytes=4 << 20)],
                                   config=EndpointConfig(rate_limit=None))
            centre = CallCentre(acd=Acd(), registry=registry, log=log, recordings=workdir / "rec")
            manager = CallManager(endpoint, engine, router=DialPlan(dids={"1000": ToIvr("bench")}),
                                  locator=InMemoryLocator(), authenticator=OpenAuthenticator(),
                                  handlers=centre.handlers, events=centre.call_events,
                                  config=CallManagerConfig(media_timeout=0))
            centre.bind(manager)

            async def sample() -> None:
                pid = os.getpid()
                while True:
                    samples.append((time.monotonic(), cpu_seconds(pid), centre.ivr.statistics().sessions_active,
                                    engine.statistics().players, thread_cpu(pid)))
                    await trio.sleep(0.25)

            async with trio.open_nursery() as nursery:
                await nursery.start(endpoint.run)
                await nursery.start(manager.run)
                await nursery.start(centre.run)
                nursery.start_soon(sample)
                gc.freeze()
                gc.set_threshold(50000, 20, 100)
                print("READY", flush=True)
                stdin = trio.lowlevel.FdStream(os.dup(0))
                while await stdin.receive_some(1024):
                    pass
                ivr = centre.ivr.statistics()
                calls = manager.statistics()
                nursery.cancel_scope.cancel()
        peak = max((s[2] for s in samples), default=0)
        at_peak = [s for s in samples if peak and s[2] >= 0.95 * peak]
        plateau = None
        threads: dict[str, float] = {}
        if len(at_peak) >= 2 and at_peak[-1][0] > at_peak[0][0]:
            span = at_peak[-1][0] - at_peak[0][0]
            plateau = round((at_peak[-1][1] - at_peak[0][1]) / span, 3)
            first, last = at_peak[0][4], at_peak[-1][4]
            threads = {name: round((last[name] - first.get(name, 0.0)) / span, 3) for name in last
                       if last[name] - first.get(name, 0.0) > 0.005 * span}
        return {"sessions_started": ivr.sessions_started, "outcomes": dict(ivr.outcomes),
                "digits_received": ivr.digits_received, "digits_collected": ivr.digits_collected,
                "barge_ins": ivr.barge_ins, "prompts_played": ivr.prompts_played,
                "peak_sessions": peak, "players_at_peak": max((s[3] for s in samples if s[2] == peak), default=0),
                "cpu_cores_while_all_up": plateau, "cpu_cores_by_thread_while_all_up": threads,
                "calls_total": calls.calls_total,
                "rejected_overload": calls.rejected_overload, "loop_lag_refusals": calls.rejected_loop_lag}

    summary = trio.run(main)
    summary["trio_thread_cpu_seconds"] = round(samples[-1][4].get("trio", 0.0), 2) if samples else None
    log.flush_sync()
    entries = [e.data.get("digits", "") for e in log.read_sync(types="call.ivr") if e.data.get("event") == "digits"]
    log.close()
    summary.update(entries_logged=len(entries), entries_1234=sum(1 for d in entries if d == DIGITS),
                   digits_logged=sum(len(d) for d in entries))
    print(json.dumps(summary), flush=True)


def _main() -> None:
    parser = argparse.ArgumentParser(description="Hotline IVR server for the concurrent-sessions benchmark")
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prompt", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    serve(args.port, args.prompt, args.workdir)


if __name__ == "__main__":
    _main()
