"""Calls per second through the B2BUA, with media anchored in the engine, side
by side with Kamailio as a stateful proxy on the same machine (the ceiling a
pure proxy reaches).

Each call: INVITE, 100, 180, 200, ACK, a hold of HOTLINE_B2BUA_HOLD_MS, BYE,
200 - SIPp's embedded uac/uas made route-set aware (bench/sipp/uac_latency.xml
and uas_bench.xml). Through Hotline every call also gets two engine legs (an
RTP/RTCP port pair each) and a bridge, and emits its call events. SIPp times
INVITE->100 (rtd 1), INVITE->180 (rtd 2) and INVITE->200 (rtd 3) for every
call (-trace_rtt -rtt_freq 1); we report p50/p99 of each.

The run is open loop at a fixed rate (SIPp ``-r``) for a fixed number of
calls, so the measured time is about the same for a system that keeps up and
grows (SIPp's concurrency cap ``-l`` throttles it) for one that does not;
the numbers that matter are in ``extra_info`` and in
``bench/results/b2bua-<rate>cps.json``: calls per second achieved, failed
calls, latencies, and the CPU each server used.

    # quick (default 100 cps for 10 s):
    .venv/bin/python -m pytest -q bench/test_bench_b2bua.py -p no:cacheprovider
    # the goal's scale:
    HOTLINE_B2BUA_RATE=500 HOTLINE_B2BUA_SECONDS=60 .venv/bin/python -m pytest -q bench/test_bench_b2bua.py
    # Python's default garbage collector thresholds instead of the tuned ones (gc.freeze(), 5000/10/100):
    HOTLINE_B2BUA_GC= .venv/bin/python -m pytest -q bench/test_bench_b2bua.py -k hotline
    # where Hotline's time goes: a sampling flame graph (py-spy, low overhead)...
    HOTLINE_B2BUA_PYSPY=/tmp/b2bua.svg .venv/bin/python -m pytest -q bench/test_bench_b2bua.py -k hotline
    # ...or cProfile of the server process (slows it down; top entries printed):
    HOTLINE_B2BUA_PROFILE=/tmp/b2bua.prof .venv/bin/python -m pytest -q bench/test_bench_b2bua.py -k hotline

The Hotline side runs in its own process (``python -m bench.test_bench_b2bua
--serve``), like Kamailio, so each server's CPU time is measured alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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

RATE = float(os.environ.get("HOTLINE_B2BUA_RATE", "100"))
SECONDS = float(os.environ.get("HOTLINE_B2BUA_SECONDS", "10"))
HOLD_MS = int(os.environ.get("HOTLINE_B2BUA_HOLD_MS", "2000"))
PROFILE = os.environ.get("HOTLINE_B2BUA_PROFILE")
PYSPY = os.environ.get("HOTLINE_B2BUA_PYSPY")  # a flame graph (SVG) of the Hotline process, by py-spy
# gc.set_threshold for the Hotline server process, after gc.freeze() ("" keeps Python's defaults).
GC_TUNING = tuple(int(x) for x in os.environ.get("HOTLINE_B2BUA_GC", "5000,10,100").split(",") if x)
KAMAILIO_CHILDREN = int(os.environ.get("HOTLINE_B2BUA_KAMAILIO_CHILDREN", "2"))

KAMAILIO_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
children={children}
listen=udp:127.0.0.1:{port}
auto_aliases=no
dns=no
rev_dns=no
dns_try_ipv6=no
use_dns_cache=no
disable_tcp=yes
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "kex.so"
loadmodule "corex.so"
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 10000)
modparam("rr", "enable_full_lr", 1)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
    if (is_method("INVITE")) {{ record_route(); }}
    $du = "sip:127.0.0.1:{uas_port}";
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}
"""


def family(pid: int) -> list[int]:
    """``pid`` and its children (Kamailio forks its workers)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.name))
    return pids


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_load(target: str, workdir: Path, server_pids: list[int]) -> dict:
    """Run the SIPp UAC against ``target`` (host:port); return its results."""
    calls = max(1, int(RATE * SECONDS))
    limit = int(RATE * (HOLD_MS / 1000 + 2) * 2) + 50
    stats_file = workdir / "uac_stats.csv"
    cmd = ["sipp", "-sf", str(SCENARIOS / "uac_latency.xml"), target, "-s", "service", "-i", "127.0.0.1",
           "-p", str(free_port()), "-r", f"{RATE:g}", "-m", str(calls), "-d", str(HOLD_MS), "-l", str(limit),
           "-nostdin", "-trace_stat", "-stf", str(stats_file), "-fd", "1", "-trace_rtt", "-rtt_freq", "1",
           "-buff_size", "4194304", "-trace_err", "-timeout", f"{int(SECONDS + HOLD_MS / 1000 + 60)}s",
           "-timeout_error"]
    cpu_before = cpu_seconds(*server_pids)
    started = time.monotonic()
    uac = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                         timeout=SECONDS + HOLD_MS / 1000 + 120)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(*server_pids) - cpu_before
    rows = [r for r in csv.DictReader(stats_file.open(), delimiter=";") if r["CallRate(P)"] != "CallRate(P)"]
    last = rows[-1]
    # Per-second call rates while calls were still being created, the first (ramp-up) second left out.
    rates = [float(r["CallRate(P)"]) for r in rows if int(r["TotalCallCreated"]) < calls][1:]
    rtt: dict[str, list[float]] = {"1": [], "2": [], "3": []}
    for path in workdir.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[2] in rtt:
                rtt[parts[2]].append(float(parts[1]))
    successful, failed = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])
    active = max(1e-9, elapsed - HOLD_MS / 1000)
    return {
        "target_cps": RATE, "seconds": SECONDS, "hold_ms": HOLD_MS, "calls": calls,
        "successful": successful, "failed": failed, "sipp_rc": uac.returncode,
        "achieved_cps": round(successful / active, 1),
        "min_sustained_cps": round(min(rates), 1) if rates else None,
        "retransmissions": int(last.get("Retransmissions(C)", 0) or 0),
        "calls_with_100": len(rtt["1"]), "calls_with_180": len(rtt["2"]),
        "invite_to_100_ms": {"p50": percentile(rtt["1"], 50), "p99": percentile(rtt["1"], 99)},
        "invite_to_180_ms": {"p50": percentile(rtt["2"], 50), "p99": percentile(rtt["2"], 99)},
        "invite_to_200_ms": {"p50": percentile(rtt["3"], 50), "p99": percentile(rtt["3"], 99)},
        "server_cpu_seconds": round(cpu, 2), "server_cpu_share": round(cpu / elapsed, 3),
        "server_cpu_ms_per_call": round(1000 * cpu / successful, 3) if successful else None,
        "elapsed_s": round(elapsed, 2),
    }


def need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def save(name: str, result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"b2bua-{RATE:g}cps.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = {**result, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path.write_text(json.dumps(data, indent=2))


def report(benchmark, name: str, result: dict) -> None:
    benchmark.extra_info.update(result)
    save(name, result)
    print(f"\n{name}: {json.dumps(result)}")


@pytest.fixture
def uas():
    need("sipp")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="b2bua-bench-uas-"))
    proc = subprocess.Popen(["sipp", "-sf", str(SCENARIOS / "uas_bench.xml"), "-i", "127.0.0.1",
                             "-p", str(port), "-bind_local", "-nostdin", "-buff_size", "4194304"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield port
    stop(proc, signal.SIGUSR1)
    shutil.rmtree(workdir, ignore_errors=True)


def test_bench_kamailio_stateful_proxy(benchmark, uas, tmp_path):
    need("sipp", "kamailio")
    port = free_port()
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(port=port, uas_port=uas, children=KAMAILIO_CHILDREN))
    kamailio = subprocess.Popen(["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(tmp_path),
                                 "-w", str(tmp_path), "-m", "128", "-M", "16"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert kamailio.poll() is None, kamailio.stderr.read()
        pids = family(kamailio.pid)
        benchmark.group = "b2bua: calls per second"
        benchmark.extra_info["role"] = "baseline"
        result = benchmark.pedantic(run_load, args=(f"127.0.0.1:{port}", tmp_path, pids), rounds=1,
                                    iterations=1)
    finally:
        stop(kamailio)
    report(benchmark, "kamailio", result)
    # The reference is held to 99 %: Kamailio's two worker processes sometimes forward a 200
    # before the 180 it got just earlier, and SIPp then fails that call (seen 1 to 54 in
    # 1,000 to 30,000 calls, more on a loaded machine; the errors log shows the order).
    assert result["successful"] >= 0.99 * result["calls"], result


def test_bench_hotline_b2bua_with_media_anchored(benchmark, uas, tmp_path):
    need("sipp")
    port = free_port()
    cmd = [sys.executable, "-m", "bench.test_bench_b2bua", "--serve", "--port", str(port),
           "--uas-port", str(uas)]
    if PROFILE:
        cmd += ["--profile", PROFILE]
    server = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    spy = None
    try:
        assert server.stdout.readline().strip() == "READY"
        pyspy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if PYSPY and pyspy:
            spy = subprocess.Popen([pyspy, "record", "--pid", str(server.pid), "--rate", "200", "--format",
                                    "flamegraph", "-o", PYSPY], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        benchmark.group = "b2bua: calls per second"
        result = benchmark.pedantic(run_load, args=(f"127.0.0.1:{port}", tmp_path, [server.pid]), rounds=1,
                                    iterations=1)
        if spy is not None:
            stop(spy, signal.SIGINT)  # py-spy writes its flame graph on SIGINT
        server.stdin.close()  # the server prints its statistics and exits
        summary = json.loads(server.stdout.read() or "{}")
        server.wait(timeout=30)
    finally:
        if spy is not None:
            stop(spy)
        stop(server)
    result["hotline"] = summary
    report(benchmark, "hotline", result)
    assert summary.get("calls_answered") == result["successful"]  # every call really went through the B2BUA
    assert summary.get("bridges") == result["successful"]  # ... and was bridged in the engine
    assert result["calls_with_100"] >= result["successful"]  # a 100 Trying for every call, at once
    assert result["successful"] > 0 and result["failed"] == 0, result


# ---------------------------------------------------------------------------- the server process
def serve(port: int, uas_port: int, profile: str | None) -> None:
    import collections
    import gc

    import trio

    from mediacore.engine import Engine
    from orchestrator.calls import (
        CallbackSink,
        CallManager,
        CallManagerConfig,
        DialPlan,
        InMemoryLocator,
        OpenAuthenticator,
        ToUri,
    )
    from orchestrator.transport import EndpointConfig, SipEndpoint, UdpTransport

    counts: collections.Counter[str] = collections.Counter()
    pauses: list[float] = []
    young_max = [0.0, 0.0]
    gc_started = [0.0]

    def gc_timer(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
            return
        took = time.perf_counter() - gc_started[0]
        generation = info.get("generation", 0)
        if generation == 2:
            pauses.append(took)
        else:
            young_max[generation] = max(young_max[generation], took)

    gc.callbacks.append(gc_timer)

    async def main() -> dict:
        with Engine(port_range=(20000, 29999), threads=1, stats_interval=0) as engine:
            endpoint = SipEndpoint([UdpTransport("127.0.0.1", port, socket_buffer_bytes=4 << 20)],
                                   config=EndpointConfig(rate_limit=None))
            plan = DialPlan(dids={"service": ToUri(f"sip:service@127.0.0.1:{uas_port}")})
            manager = CallManager(
                endpoint, engine, router=plan,
                locator=InMemoryLocator(), authenticator=OpenAuthenticator(),
                events=CallbackSink(lambda event: counts.update([event.name])),
                config=CallManagerConfig())
            async with trio.open_nursery() as nursery:
                await nursery.start(endpoint.run)
                await nursery.start(manager.run)
                if GC_TUNING:
                    # Long-lived start-up objects out of the collector's way, and collections less
                    # often: with Python's defaults, full collections of a heap of live calls paused
                    # the loop for 300-400 ms at 200-250 cps; with very large thresholds the young
                    # collections themselves took 100-500 ms. A finished call leaves no cycles
                    # (calls/leg.py), so the collector has little to find anyway.
                    gc.freeze()
                    gc.set_threshold(*GC_TUNING)
                print("READY", flush=True)
                stdin = trio.lowlevel.FdStream(os.dup(0))
                while await stdin.receive_some(1024):
                    pass
                stats = manager.statistics()
                ep = endpoint.statistics()
                nursery.cancel_scope.cancel()
            engine_stats = engine.statistics()
        udp = ep.transports[0]
        return {"calls_answered": stats.calls_answered, "bridges": stats.bridges, "events": dict(counts),
                "rejected_overload": stats.rejected_overload, "shed_stateless": ep.shed_invites,
                "retransmissions_sent": ep.layer.retransmissions_sent,
                "retransmissions_absorbed": ep.layer.retransmissions_absorbed,
                "datagrams_received": udp.datagrams_received, "datagrams_sent": udp.datagrams_sent,
                "engine_port_exhausted": engine_stats.port_exhausted,
                "gc_full_collections": len(pauses), "gc_full_max_ms": round(1000 * max(pauses, default=0), 1),
                "gc_young_max_ms": [round(1000 * t, 1) for t in young_max],
                "max_queue_delay_ms": round(1000 * udp.max_queue_delay, 1),
                "loop_lag_ms": round(1000 * stats.loop_lag, 1),
                "loop_lag_refusals": stats.rejected_loop_lag}

    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        summary = profiler.runcall(trio.run, main)
        profiler.dump_stats(profile)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        summary = trio.run(main)
    print(json.dumps(summary, default=str), flush=True)


def _main() -> None:
    parser = argparse.ArgumentParser(description="Hotline B2BUA server for the calls-per-second benchmark")
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uas-port", type=int, required=True)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    serve(args.port, args.uas_port, args.profile)


if __name__ == "__main__":
    _main()
