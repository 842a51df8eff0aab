"""Relay I/O designs, measured (bench/tools/iobench.cpp): the evidence behind
the engine's choice of one port per call (README, "Relay I/O").

Runs iobench three times and records min/median/max CPU microseconds per
relayed packet for each design in bench/results/io_strategies.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def iobench() -> Path:
    found = sorted(ROOT.glob("build/*/iobench"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not found:
        pytest.skip("iobench is not built (CMake target iobench, built by `make build`)")
    return found[0]


def test_relay_io_designs():
    runs = [json.loads(subprocess.run([str(iobench()), "--packets", "300000", "--calls", "200"], check=True,
                                      capture_output=True, text=True, timeout=300).stdout) for _ in range(3)]
    designs = ("port_per_call", "port_per_call_connected", "shared_port")
    summary = {}
    for d in designs:
        assert all(r[d]["packets"] == 300000 for r in runs), f"{d} lost packets"
        totals = [r[d]["total_us"] for r in runs]
        summary[d] = {"total_us": {"min": min(totals), "median": statistics.median(totals), "max": max(totals)},
                      "recv_us_median": statistics.median(r[d]["recv_us"] for r in runs),
                      "send_us_median": statistics.median(r[d]["send_us"] for r in runs)}
    base = summary["port_per_call"]["total_us"]["median"]
    for d in designs:
        summary[d]["relative_to_port_per_call"] = summary[d]["total_us"]["median"] / base
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "io_strategies.json").write_text(json.dumps(
        {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": "bench/tools/iobench --packets 300000 --calls 200",
         "runs": runs, "summary": summary}, indent=2))
    for d in designs:
        s = summary[d]
        print(f"{d:<26} {s['total_us']['median']:.2f} us/packet (min {s['total_us']['min']:.2f}, "
              f"max {s['total_us']['max']:.2f})  x{s['relative_to_port_per_call']:.2f}")
