"""Benchmark harness: every comparison is measured side by side in one run.

A benchmark marks itself as the reference of its group with
``benchmark.extra_info["role"] = "baseline"`` (audioop, rtpengine, a naive
algorithm...). At the end of the run this prints, per group, each contender's
median time and its speed ratio against the baseline (baseline median / its
median: above 1 means faster than the baseline), and writes the same table to
``bench/results/ratios-latest.json`` with the machine and versions.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        model = [l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")]
        info["cpu"] = model[0].split(":", 1)[1].strip() if model else "?"
    except OSError:
        info["cpu"] = "?"
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, check=False).stdout.strip()
    except OSError:
        pass
    return info


def ratio_table(benchmarks) -> list[dict]:
    groups: dict[str, list] = {}
    for b in benchmarks:
        groups.setdefault(b.group or b.name, []).append(b)
    rows = []
    for group, items in sorted(groups.items()):
        base = [b for b in items if b.extra_info.get("role") == "baseline"]
        for b in items:
            s = b.stats
            row = {
                "group": group,
                "name": b.name,
                "role": b.extra_info.get("role", "ours"),
                "min_s": s.min,
                "median_s": s.median,
                "max_s": s.max,
                "rounds": s.rounds,
                "extra": {k: v for k, v in b.extra_info.items() if k != "role"},
            }
            if base and b not in base:
                row["speedup_vs_baseline"] = base[0].stats.median / s.median
                row["baseline"] = base[0].name
            rows.append(row)
    return rows


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    rows = ratio_table(session.benchmarks)
    tr = terminalreporter
    tr.section("ratios against the baseline measured in the same run")
    for r in rows:
        ratio = f"{r['speedup_vs_baseline']:.2f}x {r['baseline']}" if "speedup_vs_baseline" in r else (
            "(baseline)" if r["role"] == "baseline" else "")
        tr.write_line(f"{r['group']:<34} {r['name']:<44} median {r['median_s'] * 1e6:10.2f} us  {ratio}")
    RESULTS.mkdir(exist_ok=True)
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": _machine(), "results": rows}
    (RESULTS / "ratios-latest.json").write_text(json.dumps(out, indent=2))
