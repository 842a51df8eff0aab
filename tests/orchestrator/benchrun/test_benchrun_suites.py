"""Suite selection, running a suite and recording it, pytest-benchmark parsing, ratios, capacity summaries."""

from __future__ import annotations

import io
import os
import textwrap
import time

import pytest
from benchrun_fakes import Broken, FakeScenario, LateUnavailable, MissingPeer

from orchestrator.benchrun.progress import Progress
from orchestrator.benchrun.suites import (
    QUICK_SUITES,
    SUITES,
    CapacitySuite,
    DaemonSuite,
    PytestSuite,
    benchmarks_from_pytest_json,
    capacity_summary,
    run_suite,
    scenario_ratios,
    select,
    time_ratios,
)

ISSUE_SUITES = {"codecs", "jitter", "plc", "mixer", "relay", "sip-rate", "ivr", "acd", "jsonrpc", "callcentre-day"}


def test_registry_has_every_suite_the_issue_names():
    names = [s.name for s in SUITES]
    assert ISSUE_SUITES <= set(names)
    assert {"capacity", "profile"} <= set(names)
    assert len(names) == len(set(names))


def test_select_all_quick_and_named():
    assert [s.name for s in select([], quick=False)] == [s.name for s in SUITES]
    quick = [s.name for s in select([], quick=True)]
    assert quick == [n for n in (s.name for s in SUITES) if n in QUICK_SUITES]
    assert "relay" in quick and "capacity" in quick and "profile" not in quick
    # registry order, whatever order they were named in
    assert [s.name for s in select(["capacity", "codecs"], quick=False)] == ["codecs", "capacity"]


def test_select_unknown_suite():
    with pytest.raises(ValueError, match="unknown suite.*nope"):
        select(["codecs", "nope"], quick=False)


def test_select_from_a_custom_pool():
    pool = [FakeScenario("a"), FakeScenario("b"), Broken()]
    assert [s.name for s in select([], quick=True, suites=pool)] == ["a", "b"]
    assert [s.name for s in select(["broken"], quick=False, suites=pool)] == ["broken"]


def test_run_suite_records_everything(ctx):
    out = run_suite(FakeScenario(), ctx)
    assert out["status"] == "ok" and out["reason"] is None
    assert out["metrics"]["value"] == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
    assert out["ratios"][0]["ratio"] == pytest.approx(2.0)
    assert out["commands"] == ["fake --values 3.0 1.0 2.0"]
    assert len(out["load_before"]) == 3 and len(out["load_after"]) == 3
    assert out["seconds"] >= 0
    log = ctx.progress.stream.getvalue()
    assert "fake: 3/3 value 2.0" in log and "fake: done" in log


def test_a_failing_suite_is_recorded_and_does_not_raise(ctx):
    out = run_suite(Broken(), ctx)
    assert out["status"] == "failed"
    assert out["reason"] == "RuntimeError: the generator crashed"
    assert "the generator crashed" in out["metrics"]["traceback"]


def test_unavailable_suites(ctx):
    out = run_suite(MissingPeer(), ctx)
    assert (out["status"], out["reason"]) == ("unavailable", "not installed: frobnicator")
    assert "missing: not available: not installed: frobnicator" in ctx.progress.stream.getvalue()
    out = run_suite(LateUnavailable(), ctx)
    assert (out["status"], out["reason"]) == ("unavailable", "rtpload is not built")


def test_callcentre_day_needs_the_daemon(ctx):
    import importlib.util

    out = run_suite(DaemonSuite(), ctx)
    assert out["status"] == "unavailable"
    if importlib.util.find_spec("orchestrator.daemon") is None:
        assert out["reason"] == "needs the daemon (hotline serve)"


def _bench(name, group, median, mn, mx, rounds=5, role=None, **extra):
    info = dict(extra)
    if role:
        info["role"] = role
    return {"name": name, "group": group, "extra_info": info,
            "stats": {"min": mn, "median": median, "max": mx, "rounds": rounds, "mean": median}}


def test_benchmarks_from_one_pytest_json():
    doc = {"benchmarks": [_bench("test_ours", "g", 2e-6, 1e-6, 3e-6, per_core=5),
                          _bench("test_ref", "g", 8e-6, 7e-6, 9e-6, role="baseline")]}
    rows = benchmarks_from_pytest_json([doc])
    assert rows == [
        {"group": "g", "name": "test_ours", "role": "ours", "min_s": 1e-6, "median_s": 2e-6, "max_s": 3e-6,
         "rounds": 5, "extra": {"per_core": 5}},
        {"group": "g", "name": "test_ref", "role": "baseline", "min_s": 7e-6, "median_s": 8e-6, "max_s": 9e-6,
         "rounds": 5, "extra": {}},
    ]
    (r,) = time_ratios(rows)
    assert (r["ours"], r["baseline"], r["metric"], r["higher_is_better"]) == ("test_ours", "test_ref", "time", False)
    assert r["ratio"] == pytest.approx(4.0)
    assert r["ours_value"] == {"min": 1e-6, "median": 2e-6, "max": 3e-6, "n": 5}


def test_benchmarks_over_repeated_runs_summarize_extra_info():
    runs = [{"benchmarks": [_bench("hot", "cps", t, t, t, rounds=1, achieved_cps=c, latency={"p50": p}),
                            _bench("kam", "cps", t, t, t, rounds=1, role="baseline", achieved_cps=k,
                                   latency={"p50": 2 * p})]}
            for t, c, k, p in [(10.0, 95.0, 100.0, 1.0), (11.0, 99.0, 100.0, 3.0), (12.0, 97.0, 99.0, 2.0)]]
    rows = benchmarks_from_pytest_json(runs)
    hot = rows[0]
    assert (hot["min_s"], hot["median_s"], hot["max_s"], hot["rounds"], hot["runs"]) == (10.0, 11.0, 12.0, 3, 3)
    assert hot["extra"]["achieved_cps"] == {"min": 95.0, "median": 97.0, "max": 99.0, "n": 3}
    assert hot["extra"]["latency.p50"] == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
    ratios = scenario_ratios(rows, [("achieved_cps", True), ("latency.p50", False), ("absent", True)])
    assert [(r["metric"], r["ours"]) for r in ratios] == [("achieved_cps", "hot"), ("latency.p50", "hot")]
    assert ratios[0]["ratio"] == pytest.approx(97.0 / 100.0)
    assert ratios[1]["ratio"] == pytest.approx(4.0 / 2.0)


def test_groups_without_a_baseline_have_no_ratio():
    rows = benchmarks_from_pytest_json([{"benchmarks": [_bench("a", "g1", 1, 1, 1), _bench("b", "g2", 2, 2, 2)]}])
    assert time_ratios(rows) == []


def _cap_row(kind, calls, cpu, rss, loss=0.0, limited=False, run=1):
    return {"kind": kind, "calls": calls, "run": run, "cpu_share": cpu, "cpu_ms_per_call_second": 1000 * cpu / calls,
            "rss_bytes": rss, "rss_bytes_per_call": rss / calls, "loss_ratio": loss, "engine_loss_ratio": 0.0,
            "tick_overruns": 0, "effective_calls": calls, "offered_ratio": 1.0, "generator_behind": 0,
            "latency_us_p50": 50, "latency_us_p99": 900, "packets_in_per_s": 100.0 * calls,
            "generator_limited": limited}


def test_capacity_summary_fits_the_cost_line():
    rows = [_cap_row("record", n, 0.02 + 0.0012 * n + d, 16e6 + 400_000 * n, run=r)
            for r, d in enumerate((0.0, 0.001, -0.001)) for n in (100, 200, 400)]
    rows.append(_cap_row("record", 800, 0.98, 16e6 + 400_000 * 800, loss=0.02))  # saturated: off the line
    s = capacity_summary("record", rows)
    assert s["fit_cpu"]["slope"] == pytest.approx(0.0012, rel=1e-6)
    assert s["fit_cpu"]["n"] == 9  # the saturated point is left out of the cost line
    assert s["calls_per_core"] == pytest.approx((1 - 0.02) / 0.0012, rel=1e-3)
    assert s["calls_per_core_extrapolated"] is True  # 817 calls: past the 800 measured
    assert s["fit_rss"]["slope"] == pytest.approx(400_000) and s["fit_rss"]["r2"] == pytest.approx(1.0)
    assert s["points"]["200"]["cpu_share"]["median"] == pytest.approx(0.26)
    assert s["measured_max_calls"] == 400
    assert s["over_loss_limit_at"] == [800]


def test_capacity_summary_ignores_sizes_where_the_generator_fell_behind():
    rows = [_cap_row("relay", 100, 0.1, 2e7), _cap_row("relay", 500, 0.5, 6e7),
            _cap_row("relay", 1000, 0.7, 1e8, limited=True)]
    s = capacity_summary("relay", rows)
    assert s["measured_max_calls"] == 500
    assert s["generator_limited_at"] == [1000]
    assert s["calls_per_core_extrapolated"] is True


def test_capacity_sizes_and_even_transcodes():
    full = CapacitySuite.FULL
    for kind in ("relay", "record"):
        assert full[kind] == [100, 500, 1000, 2000]  # the issue's cost-growth points
    assert set(full) == {"relay", "record", "transcode", "conference", "ivr"}
    assert all(n % 2 == 0 for n in full["transcode"] + CapacitySuite.QUICK["transcode"])
    assert all(n % 4 == 0 for n in full["conference"])


# ---------------------------------------------------------------------------- a real, tiny pytest suite

FAKE_BENCH = textwrap.dedent('''
    def work(n):
        return sum(range(n))

    def test_ours(benchmark):
        benchmark.group = "sum"
        assert benchmark(work, 10) == 45

    def test_reference(benchmark):
        benchmark.group = "sum"
        benchmark.extra_info["role"] = "baseline"
        assert benchmark(work, 2000) == 1999000
''')


def test_pytest_suite_runs_real_pytest_benchmark(ctx):
    (ctx.root / "bench" / "test_bench_fake.py").write_text(FAKE_BENCH)
    (ctx.root / "bench" / "results").mkdir()
    old = ctx.root / "bench" / "results" / "fake.json"
    old.write_text('{"old": true}')
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    suite = PytestSuite("fake", "a fake suite", ["bench/test_bench_fake.py"], artifacts=["fake.json"],
                        estimated_tests=1)
    out = run_suite(suite, ctx)
    assert out["status"] == "ok", out
    assert out["metrics"]["tests"] == {"passed": 2}
    assert [(b["name"], b["role"]) for b in out["benchmarks"]] == [("test_ours", "ours"),
                                                                   ("test_reference", "baseline")]
    ours, ref = out["benchmarks"]
    assert ours["rounds"] >= 3 and ours["min_s"] <= ours["median_s"] <= ours["max_s"]
    (r,) = out["ratios"]
    assert r["ratio"] == pytest.approx(ref["median_s"] / ours["median_s"])
    assert out["commands"] == [(".venv/bin/python -m pytest -q -p no:cacheprovider --benchmark-max-time=0.05 "
                                "--benchmark-min-rounds=3 --benchmark-warmup=off bench/test_bench_fake.py")]
    # the artifact was older than the run: not claimed as this run's
    assert out["artifacts"] == {}
    progress = ctx.progress.stream.getvalue()
    assert "fake: 1/2 test_ours passed" in progress and "fake: 2/2 test_reference passed" in progress


def test_pytest_suite_failure_is_reported(ctx):
    (ctx.root / "bench" / "test_bench_bad.py").write_text("def test_bad(benchmark):\n    assert benchmark(len, 'ab') == 3\n")
    out = run_suite(PytestSuite("bad", "fails", ["bench/test_bench_bad.py"]), ctx)
    assert out["status"] == "failed"
    assert out["reason"].startswith("pytest exited 1 (bad.log)")
    assert out["metrics"]["tests"] == {"failed": 1}


def test_pytest_suite_without_files_or_peers_is_unavailable(ctx):
    assert "no benchmark files" in run_suite(PytestSuite("x", "x", ["bench/none.py"]), ctx)["reason"]
    out = run_suite(PytestSuite("y", "y", ["bench/none.py"], requires=["no-such-program-xyz"]), ctx)
    assert out["reason"] == "not installed: no-such-program-xyz"


def test_progress_plain_lines_and_bars():
    stream = io.StringIO()
    p = Progress(stream)  # a StringIO is not a terminal: plain lines
    t = p.task("s", 2)
    t.advance(1, "one")
    t.close("done")
    assert not p.bars
    assert "s: 1/2 one" in stream.getvalue() and "s: done" in stream.getvalue()
    stream = io.StringIO()
    p = Progress(stream, bars=True)
    t = p.task("s", 2)
    t.advance(2)
    t.close()
    assert "2/2" in stream.getvalue() and "100%" in stream.getvalue()
