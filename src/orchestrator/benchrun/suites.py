"""What ``hotline bench`` can run: the suites, and how one suite is run and recorded.

Two families:

- ``PytestSuite``: pytest-benchmark files under bench/. The runner starts
  pytest with ``--benchmark-json`` and reads back each benchmark's min, median
  and max over its rounds, and the ratio against the benchmark of the same
  group marked ``extra_info["role"] = "baseline"`` (bench/conftest.py's
  convention). Scenario files whose benchmarks run one round (the SIP call
  rate through SIPp) are run ``repeat`` times instead, and every number in
  their ``extra_info`` is summarized over the runs.
- Scenario suites that drive processes directly: ``relay`` (Hotline's engine
  and rtpengine in turns, the same generator), ``capacity`` (CPU, memory and
  loss per kind of call as the calls grow, with a fitted line) and
  ``profile`` (perf on the engine). Each figure is min/median/max over
  ``repeat`` runs.

``run_suite`` wraps any suite: it records the load average before and after,
the time taken, the commands, and turns a missing peer into status
``unavailable`` and an error into ``failed`` (the run goes on).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from orchestrator.benchrun.machine import load_average
from orchestrator.benchrun.progress import Progress, Task
from orchestrator.benchrun.pytest_progress import PROGRESS_ENV
from orchestrator.benchrun.stats import flatten, linear_fit, ratio, summarize

__all__ = [
    "QUICK_SUITES",
    "SUITES",
    "CapacitySuite",
    "Context",
    "DaemonSuite",
    "ProfileSuite",
    "PytestSuite",
    "RelaySuite",
    "Suite",
    "SuiteUnavailable",
    "benchmarks_from_pytest_json",
    "run_suite",
    "scenario_ratios",
    "select",
    "time_ratios",
]


class SuiteUnavailable(Exception):
    """A suite cannot run here (a peer is not installed, a tool is not built); says why."""


@dataclass
class Context:
    root: Path
    results_dir: Path
    quick: bool = False
    repeat: int = 3
    progress: Progress = field(default_factory=lambda: Progress(quiet=True))
    python: str = sys.executable
    log_dir: Path | None = None
    workdir: Path | None = None

    def log_path(self, name: str) -> Path:
        d = self.log_dir or (self.results_dir / "logs")
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{name}.log"

    def import_bench(self, module: str):
        """Import bench.<module> from the checkout (bench/ is not an installed package)."""
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))
        return importlib.import_module(f"bench.{module}")


class Suite:
    name = ""
    title = ""
    description = ""
    quick_default = False  # run by `hotline bench --quick` when no suite is named

    def unavailable(self, ctx: Context) -> str | None:
        """Why this suite cannot run here, or None."""
        return None

    def steps(self, ctx: Context) -> int:
        return 1

    def run(self, ctx: Context, task: Task, out: dict) -> None:
        raise NotImplementedError


def _empty_result(suite: Suite) -> dict:
    return {"name": suite.name, "title": suite.title, "status": "ok", "reason": None, "seconds": 0.0,
            "load_before": [], "load_after": [], "commands": [], "benchmarks": [], "ratios": [],
            "metrics": {}, "artifacts": {}, "plots": []}


def run_suite(suite: Suite, ctx: Context) -> dict:
    """Run one suite and return its result record (never raises for a suite's own failure)."""
    out = _empty_result(suite)
    out["load_before"] = load_average()
    t0 = time.monotonic()
    reason = suite.unavailable(ctx)
    if reason:
        out["status"], out["reason"] = "unavailable", reason
        ctx.progress.line(f"{suite.name}: not available: {reason}")
    else:
        task = ctx.progress.task(suite.name, suite.steps(ctx))
        try:
            suite.run(ctx, task, out)
        except SuiteUnavailable as e:
            out["status"], out["reason"] = "unavailable", str(e)
        except Exception as e:  # noqa: BLE001 - a broken suite is recorded, the run goes on
            out["status"] = "failed"
            out["reason"] = f"{type(e).__name__}: {e}"
            out["metrics"]["traceback"] = traceback.format_exc(limit=8)
        task.close(out["status"] if out["status"] != "ok" else "done")
    out["seconds"] = round(time.monotonic() - t0, 2)
    out["load_after"] = load_average()
    return out


# ---------------------------------------------------------------------------- pytest-benchmark suites

def benchmarks_from_pytest_json(runs: Sequence[dict]) -> list[dict]:
    """Benchmarks from one or more ``--benchmark-json`` documents of the same files.

    One run: min/median/max are pytest-benchmark's over its rounds. Several
    runs (scenario benchmarks of one round each): min of the minima, median
    of the medians, max of the maxima, and every number in extra_info as
    {min, median, max, n} over the runs.
    """
    by_key: dict[tuple[str, str], list[dict]] = {}
    order: list[tuple[str, str]] = []
    for doc in runs:
        for b in doc.get("benchmarks", []):
            key = (b.get("group") or b["name"], b["name"])
            if key not in by_key:
                by_key[key] = []
                order.append(key)
            by_key[key].append(b)
    out = []
    for key in order:
        items = by_key[key]
        role = "baseline" if items[0].get("extra_info", {}).get("role") == "baseline" else "ours"
        extras = [{k: v for k, v in flatten(b.get("extra_info", {})).items() if k != "role"} for b in items]
        if len(items) == 1:
            s = items[0]["stats"]
            extra = extras[0]
            row = {"min_s": s["min"], "median_s": s["median"], "max_s": s["max"], "rounds": s["rounds"]}
        else:
            keys = {k for e in extras for k in e}
            extra = {}
            for k in sorted(keys):
                values = [e.get(k) for e in extras]
                try:
                    extra[k] = summarize(values)
                except ValueError:
                    extra[k] = values[-1]
            row = {"min_s": min(b["stats"]["min"] for b in items),
                   "median_s": statistics.median(b["stats"]["median"] for b in items),
                   "max_s": max(b["stats"]["max"] for b in items),
                   "rounds": sum(b["stats"]["rounds"] for b in items), "runs": len(items)}
        out.append({"group": key[0], "name": key[1], "role": role, **row, "extra": extra})
    return out


def _time_summary(b: dict) -> dict:
    n = b.get("runs", b["rounds"])
    return {"min": b["min_s"], "median": b["median_s"], "max": b["max_s"], "n": n}


def time_ratios(benchmarks: Sequence[dict]) -> list[dict]:
    """Per group with a baseline: how many times faster each contender is (baseline median / its median)."""
    groups: dict[str, list[dict]] = {}
    for b in benchmarks:
        groups.setdefault(b["group"], []).append(b)
    out = []
    for group, items in groups.items():
        bases = [b for b in items if b["role"] == "baseline"]
        if not bases:
            continue
        base = bases[0]
        for b in items:
            if b is base or b["median_s"] <= 0 or base["median_s"] <= 0:
                continue
            out.append({"group": group, "metric": "time", "ours": b["name"], "baseline": base["name"],
                        "higher_is_better": False, "ours_value": _time_summary(b),
                        "baseline_value": _time_summary(base),
                        "ratio": ratio(b["median_s"], base["median_s"], higher_is_better=False)})
    return out


def _as_summary(v) -> dict | None:
    if isinstance(v, dict) and {"min", "median", "max"} <= set(v):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return {"min": v, "median": v, "max": v, "n": 1}
    return None


def scenario_ratios(benchmarks: Sequence[dict], metrics: Sequence[tuple[str, bool]]) -> list[dict]:
    """Ratios of extra_info figures (e.g. calls per second) of each contender against its group's baseline."""
    groups: dict[str, list[dict]] = {}
    for b in benchmarks:
        groups.setdefault(b["group"], []).append(b)
    out = []
    for group, items in groups.items():
        bases = [b for b in items if b["role"] == "baseline"]
        if not bases:
            continue
        for metric, higher in metrics:
            base = _as_summary(bases[0]["extra"].get(metric))
            for b in items:
                ours = _as_summary(b["extra"].get(metric))
                if b is bases[0] or ours is None or base is None or ours["median"] <= 0 or base["median"] <= 0:
                    continue
                out.append({"group": group, "metric": metric, "ours": b["name"], "baseline": bases[0]["name"],
                            "higher_is_better": higher, "ours_value": ours, "baseline_value": base,
                            "ratio": ratio(ours["median"], base["median"], higher_is_better=higher)})
    return out


class PytestSuite(Suite):
    """pytest-benchmark files run in a pytest subprocess, with a progress line per test."""

    def __init__(self, name: str, title: str, files: Sequence[str], *, quick_files: Sequence[str] | None = None,
                 optional_files: Sequence[str] = (), artifacts: Sequence[str] = (), repeat_runs: bool = False,
                 ratio_metrics: Sequence[tuple[str, bool]] = (), requires: Sequence[str] = (),
                 env: dict | None = None, quick_env: dict | None = None, quick_default: bool = False,
                 description: str = "", estimated_tests: int = 10, args: Sequence[str] = ()) -> None:
        self.name, self.title, self.description = name, title, description
        self.files, self.quick_files = list(files), list(quick_files) if quick_files is not None else None
        self.optional_files, self.artifacts = list(optional_files), list(artifacts)
        self.repeat_runs, self.ratio_metrics, self.requires = repeat_runs, list(ratio_metrics), list(requires)
        self.env, self.quick_env = dict(env or {}), dict(quick_env or {})
        self.quick_default, self.estimated_tests = quick_default, estimated_tests
        self.args = list(args)  # extra pytest options of a full run (e.g. fewer rounds for a slow suite)

    def selected_files(self, ctx: Context) -> list[str]:
        files = self.quick_files if ctx.quick and self.quick_files is not None else self.files
        files = list(files) + [f for f in self.optional_files if (ctx.root / f).is_file()]
        return [f for f in files if (ctx.root / f).is_file()]

    def unavailable(self, ctx: Context) -> str | None:
        missing = [p for p in self.requires if shutil.which(p) is None]
        if missing:
            return f"not installed: {', '.join(missing)}"
        if not self.selected_files(ctx):
            return f"no benchmark files ({', '.join(self.files)})"
        return None

    def runs(self, ctx: Context) -> int:
        return 1 if (ctx.quick or not self.repeat_runs) else ctx.repeat

    def steps(self, ctx: Context) -> int:
        return self.estimated_tests * self.runs(ctx)

    def pytest_args(self, ctx: Context) -> list[str]:
        args = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
        if ctx.quick:
            args += ["--benchmark-max-time=0.05", "--benchmark-min-rounds=3", "--benchmark-warmup=off"]
        else:
            args += self.args
        return args + self.selected_files(ctx)

    def suite_env(self, ctx: Context) -> dict:
        return {**self.env, **(self.quick_env if ctx.quick else {})}

    def display_command(self, ctx: Context) -> str:
        """The command a reader runs to reproduce this suite (without the runner's plumbing)."""
        env = " ".join(f"{k}={v}" for k, v in self.suite_env(ctx).items())
        return (env + " " if env else "") + " ".join([".venv/bin/python", *self.pytest_args(ctx)])

    def run(self, ctx: Context, task: Task, out: dict) -> None:
        started = time.time()
        docs: list[dict] = []
        outcomes: dict[str, int] = {}
        failed_rc = None
        env = dict(os.environ, **self.suite_env(ctx))
        runs = self.runs(ctx)
        out["commands"].append(self.display_command(ctx) + (f"   # run {runs} times" if runs > 1 else ""))
        with tempfile.TemporaryDirectory(prefix=f"hotline-bench-{self.name}-") as tmp:
            for i in range(runs):
                json_path = Path(tmp) / f"run{i}.json"
                progress_path = Path(tmp) / f"progress{i}.jsonl"
                cmd = [ctx.python, *self.pytest_args(ctx), "-p", "orchestrator.benchrun.pytest_progress",
                       f"--benchmark-json={json_path}"]
                log = ctx.log_path(self.name + (f"-{i + 1}" if runs > 1 else ""))
                rc = _run_with_progress(cmd, ctx.root, dict(env, **{PROGRESS_ENV: str(progress_path)}), log,
                                        progress_path, task, outcomes, runs if i == 0 else 0)
                if json_path.is_file():
                    docs.append(json.loads(json_path.read_text()))
                if rc not in (0, 5):
                    failed_rc = (rc, log)
        out["benchmarks"] = benchmarks_from_pytest_json(docs)
        out["ratios"] = time_ratios(out["benchmarks"]) if not self.repeat_runs else []
        if self.ratio_metrics:
            out["ratios"] += scenario_ratios(out["benchmarks"], self.ratio_metrics)
        out["metrics"]["tests"] = dict(sorted(outcomes.items()))
        out["metrics"]["runs"] = runs
        for name in self.artifacts:
            for path in sorted(ctx.results_dir.glob(name)):
                if path.stat().st_mtime >= started - 1:
                    try:
                        out["artifacts"][path.name] = json.loads(path.read_text())
                    except json.JSONDecodeError:
                        out["artifacts"][path.name] = {"error": "not JSON"}
        if failed_rc is not None:
            rc, log = failed_rc
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            out["status"] = "failed"
            out["reason"] = f"pytest exited {rc} ({log.name}): " + " | ".join(tail)


def _run_with_progress(cmd: list[str], cwd: Path, env: dict, log: Path, progress_path: Path, task: Task,
                       outcomes: dict, grow_to_runs: int) -> int:
    """Run pytest, advancing ``task`` per finished test; on the first run's collection the bar's
    total becomes tests x ``grow_to_runs`` (0: leave it)."""
    pos = 0

    def drain() -> None:
        nonlocal pos
        if not progress_path.is_file():
            return
        with progress_path.open(encoding="utf-8") as f:
            f.seek(pos)
            for line in f:
                if not line.endswith("\n"):
                    break
                pos += len(line.encode())
                event = json.loads(line)
                if event["event"] == "collected" and grow_to_runs:
                    task.grow(event["count"] * grow_to_runs)
                elif event["event"] == "test":
                    outcomes[event["outcome"]] = outcomes.get(event["outcome"], 0) + 1
                    test = event["nodeid"].rsplit("::", 1)[-1]
                    task.advance(1, f"{test[:40]} {event['outcome']}")

    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                drain()
                time.sleep(0.2)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    drain()
    return proc.returncode


# ---------------------------------------------------------------------------- scenario suites

def _need_rtpload(ctx: Context) -> str | None:
    if not any(ctx.root.glob("build/*/rtpload")):
        return "rtpload is not built (CMake target rtpload: `make build`)"
    if (os.cpu_count() or 1) < 2:
        return "needs 2 CPUs (the relay and the generator are pinned to one each)"
    return None


def _summaries(rows: Sequence[dict], fields: Sequence[str]) -> dict:
    out = {}
    for f in fields:
        try:
            out[f] = summarize(r.get(f) for r in rows)
        except ValueError:
            out[f] = None
    return out


RELAY_FIELDS = ("packets_per_core_second", "packets_per_second", "relay_cpu_share", "loss_ratio",
                "latency_us_p50", "latency_us_p99", "latency_us_max", "generator_behind")


class RelaySuite(Suite):
    """Hotline's engine and rtpengine (userspace) relaying the same generated calls, in turns."""

    name = "relay"
    title = "Relay: Hotline's engine against rtpengine in userspace"
    description = ("G.711 calls X -> A -> B -> Y both ways, relay pinned to CPU 0 with one thread, generator "
                   "(bench/tools/rtpload) on CPU 1: packets per second per core, loss, added latency.")
    quick_default = True

    def sizes(self, ctx: Context) -> list[int]:
        return [100] if ctx.quick else [200, 500]

    def timing(self, ctx: Context) -> tuple[float, float]:
        return (4.0, 1.5) if ctx.quick else (8.0, 3.0)

    def relays(self) -> list[str]:
        return ["hotline"] + (["rtpengine"] if shutil.which("rtpengine") else [])

    def unavailable(self, ctx: Context) -> str | None:
        return _need_rtpload(ctx)

    def repeats(self, ctx: Context) -> int:
        return 1 if ctx.quick else ctx.repeat

    def steps(self, ctx: Context) -> int:
        return len(self.sizes(ctx)) * self.repeats(ctx) * len(self.relays())

    def measure(self, ctx: Context, relay: str, calls: int) -> dict:
        rb = ctx.import_bench("relaybench")
        duration, warmup = self.timing(ctx)
        obj = rb.HotlineRelay() if relay == "hotline" else rb.RtpengineRelay()
        r = rb.run(obj, calls, duration=duration, warmup=warmup)
        d = {k: v for k, v in vars(r).items() if k != "extra"}
        d["load"] = load_average()
        return d

    def run(self, ctx: Context, task: Task, out: dict) -> None:
        duration, warmup = self.timing(ctx)
        relays = self.relays()
        if "rtpengine" not in relays:
            out["metrics"]["note"] = "rtpengine is not installed: Hotline measured alone, no ratio"
        for relay in relays:
            for n in self.sizes(ctx):
                out["commands"].append(f".venv/bin/python -m bench.relaybench --relay {relay} --calls {n} "
                                       f"--duration {duration:g} --warmup {warmup:g}")
        rows: list[dict] = []
        for r in range(self.repeats(ctx)):
            for n in self.sizes(ctx):
                # Alternate who goes first, so a drift in the machine's load does not favour one side.
                for relay in (relays if r % 2 == 0 else list(reversed(relays))):
                    task.note(f"{relay} {n} calls, run {r + 1}")
                    rows.append({"run": r + 1, **self.measure(ctx, relay, n)})
                    task.advance(1, f"{relay} {n} calls: {rows[-1]['packets_per_core_second']:.0f} pkt/s/core")
        sizes: dict = {}
        for n in self.sizes(ctx):
            sizes[str(n)] = {relay: _summaries([x for x in rows if x["relay"] == relay and x["calls"] == n],
                                               RELAY_FIELDS) for relay in relays}
        out["metrics"].update({"duration_s": duration, "warmup_s": warmup, "sizes": sizes, "runs": rows})
        if "rtpengine" in relays:
            for n, by in sizes.items():
                for metric, higher in (("packets_per_core_second", True), ("latency_us_p50", False),
                                       ("latency_us_p99", False)):
                    ours, base = by["hotline"][metric], by["rtpengine"][metric]
                    if ours and base and ours["median"] > 0 and base["median"] > 0:
                        out["ratios"].append({
                            "group": f"relay {n} calls", "metric": metric, "ours": "hotline",
                            "baseline": "rtpengine", "higher_is_better": higher, "ours_value": ours,
                            "baseline_value": base,
                            "ratio": ratio(ours["median"], base["median"], higher_is_better=higher)})


CAPACITY_FIELDS = ("cpu_share", "cpu_ms_per_call_second", "rss_bytes", "rss_bytes_per_call", "loss_ratio",
                   "engine_loss_ratio", "tick_overruns", "effective_calls", "offered_ratio", "generator_behind",
                   "latency_us_p50", "latency_us_p99", "packets_in_per_s")
CPU_FIT_LIMIT = 0.9  # points past 90 % of the core are saturated, not on the cost line


def capacity_summary(kind: str, rows: Sequence[dict], loss_limit: float = 0.001) -> dict:
    """Per kind: figures at each size, a line through CPU share against calls and RSS against calls,
    the calls one core carries by that line, and the most calls measured within the loss limit."""
    sizes = sorted({r["calls"] for r in rows})
    points = {str(n): _summaries([r for r in rows if r["calls"] == n], CAPACITY_FIELDS) for n in sizes}
    out: dict = {"points": points}
    fit_rows = [r for r in rows if r["cpu_share"] < CPU_FIT_LIMIT]
    try:
        fit = linear_fit([r["effective_calls"] for r in fit_rows], [r["cpu_share"] for r in fit_rows])
        out["fit_cpu"] = fit
        if fit["slope"] > 0:
            out["calls_per_core"] = round((1.0 - fit["intercept"]) / fit["slope"], 1)
            out["calls_per_core_extrapolated"] = out["calls_per_core"] > max(r["effective_calls"] for r in rows)
    except ValueError as e:
        out["fit_cpu"] = {"error": str(e)}
    try:
        out["fit_rss"] = linear_fit([r["calls"] for r in rows], [r["rss_bytes"] for r in rows])
    except ValueError as e:
        out["fit_rss"] = {"error": str(e)}
    ok = [n for n in sizes
          if (p := points[str(n)])["loss_ratio"] and p["loss_ratio"]["median"] < loss_limit
          and not any(r["generator_limited"] for r in rows if r["calls"] == n)]
    out["measured_max_calls"] = max(ok) if ok else None
    limited = [n for n in sizes if any(r["generator_limited"] for r in rows if r["calls"] == n)]
    out["generator_limited_at"] = limited
    over = [n for n in sizes if points[str(n)]["loss_ratio"] and points[str(n)]["loss_ratio"]["median"] >= loss_limit]
    out["over_loss_limit_at"] = over
    return out


class CapacitySuite(Suite):
    """Concurrent calls per kind as the load grows: CPU, memory, loss; a fitted line per kind."""

    name = "capacity"
    title = "Engine capacity: calls per core and cost growth, per kind of call"
    description = ("bench/capacity.py: the engine (one media thread) on CPU 0, the generator on CPU 1; "
                   "relayed, recorded, transcoded (PCMU<->Opus), 4-party conference and IVR-prompt calls.")
    quick_default = True
    FULL: ClassVar[dict[str, list[int]]] = {"relay": [100, 500, 1000, 2000], "record": [100, 500, 1000, 2000], "transcode": [20, 40, 60, 80],
            "conference": [100, 500, 1000, 2000], "ivr": [100, 500, 1000, 2000]}
    QUICK: ClassVar[dict[str, list[int]]] = {"record": [50, 150], "transcode": [10, 20]}

    def __init__(self, plan: dict[str, list[int]] | None = None) -> None:
        self.plan = plan

    def sizes(self, ctx: Context) -> dict[str, list[int]]:
        return self.plan or (self.QUICK if ctx.quick else self.FULL)

    def timing(self, ctx: Context) -> tuple[float, float]:
        return (4.0, 1.5) if ctx.quick else (5.0, 2.0)

    def repeats(self, ctx: Context) -> int:
        return 1 if ctx.quick else ctx.repeat

    def unavailable(self, ctx: Context) -> str | None:
        return _need_rtpload(ctx)

    def steps(self, ctx: Context) -> int:
        return sum(len(v) for v in self.sizes(ctx).values()) * self.repeats(ctx)

    def measure(self, ctx: Context, kind: str, calls: int) -> dict:
        cap = ctx.import_bench("capacity")
        duration, warmup = self.timing(ctx)
        r = cap.run(kind, calls, duration=duration, warmup=warmup)
        r["load"] = load_average()
        return r

    def run(self, ctx: Context, task: Task, out: dict) -> None:
        duration, warmup = self.timing(ctx)
        plan = self.sizes(ctx)
        for kind, sizes in plan.items():
            out["commands"].append(f".venv/bin/python -m bench.capacity --kind {kind} --calls "
                                   f"{' '.join(map(str, sizes))} --duration {duration:g} --warmup {warmup:g}")
        rows: list[dict] = []
        for r in range(self.repeats(ctx)):
            for kind, sizes in plan.items():
                for n in sizes:
                    task.note(f"{kind} {n} calls, run {r + 1}")
                    rows.append({"run": r + 1, **self.measure(ctx, kind, n)})
                    task.advance(1, f"{kind} {n}: {100 * rows[-1]['cpu_share']:.0f}% core, "
                                    f"loss {100 * rows[-1]['loss_ratio']:.2f}%")
        out["metrics"].update({
            "duration_s": duration, "warmup_s": warmup, "loss_limit": 0.001,
            "kinds": {kind: capacity_summary(kind, [x for x in rows if x["kind"] == kind]) for kind in plan},
            "runs": rows,
        })


class ProfileSuite(Suite):
    """perf record -e cpu-clock -g on the engine during a run of each kind: where the time goes."""

    name = "profile"
    title = "Profiles: the engine's top consumers (perf, cpu-clock)"
    description = "perf record -e cpu-clock -g on the engine process over the measurement window."
    PLAN: ClassVar[dict[str, int]] = {"relay": 500, "record": 500, "transcode": 40, "conference": 500}
    QUICK: ClassVar[dict[str, int]] = {"record": 100}

    def plan(self, ctx: Context) -> dict[str, int]:
        return self.QUICK if ctx.quick else self.PLAN

    def unavailable(self, ctx: Context) -> str | None:
        if shutil.which("perf") is None:
            return "perf is not installed (Debian package linux-perf)"
        probe = subprocess.run(["perf", "record", "-e", "cpu-clock", "-q", "-o", "/dev/null", "--", "true"],
                               capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            return f"perf cannot record here: {probe.stderr.strip()[:200]}"
        return _need_rtpload(ctx)

    def steps(self, ctx: Context) -> int:
        return len(self.plan(ctx))

    def run(self, ctx: Context, task: Task, out: dict) -> None:
        cap = ctx.import_bench("capacity")
        duration, warmup = (5.0, 2.0) if ctx.quick else (8.0, 3.0)
        with tempfile.TemporaryDirectory(prefix="hotline-bench-perf-") as tmp:
            for kind, calls in self.plan(ctx).items():
                data = Path(tmp) / f"{kind}.perf"
                out["commands"].append(f".venv/bin/python -m bench.capacity --kind {kind} --calls {calls} "
                                       f"--duration {duration:g} --warmup {warmup:g} --profile /tmp/{kind}.perf")
                task.note(f"{kind} {calls} calls")
                r = cap.run(kind, calls, duration=duration, warmup=warmup, profile=str(data))
                out["metrics"][kind] = {"calls": calls, "cpu_share": r["cpu_share"], "loss_ratio": r["loss_ratio"],
                                        "load": load_average(), **cap.perf_summary(data)}
                task.advance(1, f"{kind}: kernel {100 * out['metrics'][kind]['by_part'].get('kernel', 0):.0f}%")


class DaemonSuite(Suite):
    """The mixed call-centre day: IVR, queues, recording and supervisor listening at once, through the daemon."""

    name = "callcentre-day"
    title = "A mixed call-centre day (IVR, queues, recording, supervisor listening at once)"
    description = ("bench/callcentre_day.py: hotline demo with simulated SIP agents and Poisson callers (IVR "
                   "walks with RFC 4733 digits, queues, every call recorded) while a JSON-RPC client starts "
                   "supervisor.listen on answered calls; the event log's numbers and the daemon's CPU and memory.")
    FULL: ClassVar[list[dict]] = [{"duration": 60, "callers_per_minute": 60, "agents": 10},
                                  {"duration": 60, "callers_per_minute": 180, "agents": 30}]
    QUICK: ClassVar[list[dict]] = [{"duration": 12, "callers_per_minute": 60, "agents": 10, "grace": 5}]

    def plan(self, ctx: Context) -> list[dict]:
        return self.QUICK if ctx.quick else self.FULL

    def steps(self, ctx: Context) -> int:
        return len(self.plan(ctx))

    def unavailable(self, ctx: Context) -> str | None:
        if not (ctx.root / "bench" / "callcentre_day.py").is_file():
            return "bench/callcentre_day.py is missing"
        return None

    def run(self, ctx: Context, task: Task, out: dict) -> None:
        day = ctx.import_bench("callcentre_day")
        rows = []
        for p in self.plan(ctx):
            out["commands"].append(f".venv/bin/python -m bench.callcentre_day --duration {p['duration']} "
                                   f"--callers-per-minute {p['callers_per_minute']} --agents {p['agents']}"
                                   + (f" --grace {p['grace']}" if "grace" in p else ""))
            task.note(f"{p['callers_per_minute']}/min, {p['agents']} agents, {p['duration']} s")
            r = day.run(**p)
            r["load"] = load_average()
            rows.append(r)
            task.advance(1, f"{r['offered']} offered, {r['answered']} answered, SL {r['service_level_printed']}, "
                            f"{r['supervisor_listens']} listens, daemon {100 * (r['daemon_cpu_share'] or 0):.0f}% core")
        out["metrics"]["runs"] = rows


SUITES: list[Suite] = [
    PytestSuite("codecs", "Codecs: G.711 against audioop, Opus against opuslib, resampler, DTMF",
                ["bench/test_bench_g711.py", "bench/test_bench_opus.py", "bench/test_bench_resample.py",
                 "bench/test_bench_dtmf.py"], quick_files=["bench/test_bench_g711.py"], quick_default=True,
                estimated_tests=60),
    PytestSuite("jitter", "Jitter buffer: speed, and delay against the hindsight oracle",
                ["bench/test_bench_jitter.py", "bench/test_quality_jitter.py"],
                quick_files=["bench/test_bench_jitter.py"], artifacts=["jitter_delay.json"], quick_default=True,
                estimated_tests=6),
    PytestSuite("plc", "PLC quality: PESQ against packet loss", ["bench/test_quality_plc.py"],
                artifacts=["plc_pesq.json"], estimated_tests=1),
    PytestSuite("mixer", "Conference mixer (100-party tick) and recorder",
                ["bench/test_bench_mixer.py", "bench/test_bench_recorder.py"],
                quick_files=["bench/test_bench_mixer.py"], quick_default=True, estimated_tests=12),
    PytestSuite("rtp", "RTP/RTCP packets and the relay I/O designs", ["bench/test_bench_rtp.py", "bench/test_bench_io.py"],
                artifacts=["io_strategies.json"], estimated_tests=12),
    RelaySuite(),
    PytestSuite("sip", "SIP parsing, transactions and the registrar",
                ["bench/test_bench_sip.py", "bench/test_bench_registrar.py"], estimated_tests=15),
    PytestSuite("sip-rate", "SIP call rate: the B2BUA (SIPp) against Kamailio as a stateful proxy",
                ["bench/test_bench_b2bua.py"], repeat_runs=True, requires=["sipp"],
                ratio_metrics=[("achieved_cps", True), ("server_cpu_ms_per_call", False),
                               ("invite_to_200_ms.p50", False), ("invite_to_200_ms.p99", False)],
                artifacts=["b2bua-*cps.json"],
                # 200 calls/s for 20 s: both servers sustain it on a quiet 2-core machine (Hotline's ceiling
                # there is about 250/s), so the ratios compare CPU per call and latency at the same load.
                env={"HOTLINE_B2BUA_RATE": "200", "HOTLINE_B2BUA_SECONDS": "20"},
                quick_env={"HOTLINE_B2BUA_RATE": "100", "HOTLINE_B2BUA_SECONDS": "3", "HOTLINE_B2BUA_HOLD_MS": "500"},
                estimated_tests=2),
    PytestSuite("ivr", "IVR: the flow machine, and concurrent sessions driven by SIPp (RFC 2833 digits)",
                ["bench/test_bench_ivr.py", "bench/test_bench_ivr_sessions.py"], requires=["sipp"],
                artifacts=["ivr-sessions.json"], quick_env={"HOTLINE_IVR_SESSIONS": "200"}, estimated_tests=7),
    PytestSuite("acd", "ACD routing decisions (10,000 agents) against a linear scan", ["bench/test_bench_acd.py"],
                artifacts=["acd-latency.json"], estimated_tests=5),
    PytestSuite("jsonrpc", "JSON-RPC control plane: requests/s and event latency",
                ["bench/test_bench_control.py"], artifacts=["control-events.json"], estimated_tests=8),
    PytestSuite("store", "Event store: appends, reports, cross-node delivery", ["bench/test_bench_store.py"],
                estimated_tests=23),
    CapacitySuite(),
    ProfileSuite(),
    DaemonSuite(),
]

QUICK_SUITES = [s.name for s in SUITES if s.quick_default] + ["callcentre-day"]


def select(names: Sequence[str], *, quick: bool, suites: Sequence[Suite] | None = None) -> list[Suite]:
    """The suites to run, in registry order. No names: all (or the quick set). Unknown names raise ValueError."""
    pool = list(SUITES if suites is None else suites)
    by_name = {s.name: s for s in pool}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown suite(s): {', '.join(unknown)} (known: {', '.join(by_name)})")
    if names:
        wanted = set(names)
    elif quick:
        wanted = {s.name for s in pool if s.quick_default or isinstance(s, DaemonSuite)}
    else:
        wanted = set(by_name)
    return [s for s in pool if s.name in wanted]
