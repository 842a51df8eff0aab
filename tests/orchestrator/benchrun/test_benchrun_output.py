"""The run document (JSON schema), the plots (valid PNGs) and the report (tables filled from a run)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from benchrun_fakes import Broken, FakeScenario, MissingPeer

from orchestrator.benchrun import cli, plots, report, results
from orchestrator.benchrun.suites import capacity_summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


def capacity_metrics() -> dict:
    rows = []
    for kind, per_call, rss in (("record", 0.0012, 420_000), ("transcode", 0.01, 380_000)):
        sizes = (100, 200, 400) if kind == "record" else (10, 20, 40)
        for r, jitter in enumerate((0.0, 0.002, -0.002), start=1):
            for n in sizes:
                rows.append({"kind": kind, "calls": n, "run": r, "cpu_share": 0.01 + per_call * n + jitter,
                             "cpu_ms_per_call_second": 10 * per_call * 100, "rss_bytes": 16e6 + rss * n,
                             "rss_bytes_per_call": rss, "loss_ratio": 0.0, "engine_loss_ratio": 0.0,
                             "tick_overruns": 0, "effective_calls": n, "offered_ratio": 1.0, "generator_behind": 0,
                             "latency_us_p50": 60, "latency_us_p99": 800, "packets_in_per_s": 100.0 * n,
                             "generator_limited": False})
    return {"duration_s": 8.0, "warmup_s": 3.0, "loss_limit": 0.001, "runs": rows,
            "kinds": {k: capacity_summary(k, [r for r in rows if r["kind"] == k]) for k in ("record", "transcode")}}


def relay_metrics() -> dict:
    s = lambda a, b, c: {"min": a, "median": b, "max": c, "n": 3}
    by = {"hotline": {"packets_per_core_second": s(150e3, 160e3, 170e3), "relay_cpu_share": s(0.3, 0.31, 0.33),
                      "loss_ratio": s(0, 0, 0), "latency_us_p50": s(50, 55, 60), "latency_us_p99": s(800, 900, 1000)},
          "rtpengine": {"packets_per_core_second": s(70e3, 80e3, 90e3), "relay_cpu_share": s(0.6, 0.62, 0.7),
                        "loss_ratio": s(0, 0, 0), "latency_us_p50": s(90, 95, 99),
                        "latency_us_p99": s(1000, 1200, 1300)}}
    return {"duration_s": 8.0, "warmup_s": 3.0, "sizes": {"500": by}, "runs": []}


def make_run(quick: bool = False, run_id: str = "20260101-120000") -> dict:
    doc = results.new_run(command="hotline bench relay capacity", quick=quick, repeat=3,
                          machine={"cpu": "Test CPU", "cpus": 2, "kernel": "6.1"},
                          versions={"commit": "abc1234def", "commit_short": "abc1234", "dirty": False, "python": "3.11",
                                    "numpy": "2.0", "libopus": "libopus 1.3.1", "rtpengine": "10.5",
                                    "kamailio": "5.6.3", "sipp": "v3.6.1", "kernel": "6.1", "cpu": "Test CPU"})
    doc["run_id"] = run_id + ("-quick" if quick else "")
    def base() -> dict:
        return {"status": "ok", "reason": None, "seconds": 12.0, "load_before": [1.5, 1.2, 1.0],
                "load_after": [1.7, 1.3, 1.0], "benchmarks": [], "ratios": [], "artifacts": {}, "plots": []}

    doc["suites"] = [
        {**base(), "name": "relay", "title": "relay", "commands": ["python -m bench.relaybench ..."],
         "metrics": relay_metrics(),
         "ratios": [{"group": "relay 500 calls", "metric": "packets_per_core_second", "ours": "hotline",
                     "baseline": "rtpengine", "higher_is_better": True,
                     "ours_value": relay_metrics()["sizes"]["500"]["hotline"]["packets_per_core_second"],
                     "baseline_value": relay_metrics()["sizes"]["500"]["rtpengine"]["packets_per_core_second"],
                     "ratio": 2.0}]},
        {**base(), "name": "capacity", "title": "capacity", "commands": ["python -m bench.capacity ..."],
         "metrics": capacity_metrics()},
    ]
    doc["finished"] = doc["started"]
    return doc


def test_a_made_up_run_is_valid():
    assert results.validate(make_run()) == []


@pytest.mark.parametrize("breakage, where", [
    (lambda d: d.pop("versions"), "<root>"),
    (lambda d: d["suites"][0].update(status="great"), "suites/0/status"),
    (lambda d: d["suites"][1].pop("load_before"), "suites/1"),
    (lambda d: d["suites"][0]["ratios"][0]["ours_value"].pop("median"), "suites/0/ratios/0/ours_value"),
    (lambda d: d.update(schema="other/1"), "schema"),
])
def test_schema_catches_broken_documents(breakage, where):
    doc = make_run()
    breakage(doc)
    errors = results.validate(doc)
    assert errors and errors[0].startswith(where)


def test_write_and_load_runs(tmp_path):
    a, b = make_run(run_id="20260101-120000"), make_run(quick=True, run_id="20260102-090000")
    pa = results.write_run(a, tmp_path)
    results.write_run(b, tmp_path)
    assert pa.name == "bench-20260101-120000.json"
    assert json.loads((tmp_path / "bench-latest.json").read_text())["run_id"] == "20260102-090000-quick"
    (tmp_path / "bench-20250101-000000.json").write_text('{"schema": "something else"}')
    (tmp_path / "bench-20250102-000000.json").write_text("not json")
    assert [r["run_id"] for r in results.load_runs(tmp_path)] == ["20260101-120000", "20260102-090000-quick"]


@pytest.mark.parametrize("fn, data, size_at_least", [
    (plots.plot_cost_growth, capacity_metrics(), (800, 300)),
    (plots.plot_relay, relay_metrics(), (500, 300)),
])
def test_plots_are_valid_pngs(tmp_path, fn, data, size_at_least):
    path = fn(data, tmp_path / "x.png")
    w, h = png_size(path)
    assert w >= size_at_least[0] and h >= size_at_least[1]


def test_quality_and_profile_plots(tmp_path):
    pesq = {"results": {c: {m: {"min": 2.5 + i / 10, "median": 3 + i / 10, "max": 3.2 + i / 10, "all": []}
                            for i, m in enumerate(("ours", "silence"))} | {"loss_rate_mean": 0.03}
                        for c in ("0%", "3%", "5%")}}
    jitter = {"runs": {s: [{"ours_added_delay_ms": 30 + k, "oracle_added_delay_ms": 28 + k,
                            "grid_oracle_added_delay_ms": 40 + k} for k in range(3)] for s in ("gaussian", "spikes")}}
    profile = {"record": {"calls": 500, "cpu_share": 0.5, "by_part": {"kernel": 0.7, "ours": 0.25, "libc": 0.05}},
               "transcode": {"calls": 40, "cpu_share": 0.4, "by_part": {"libopus": 0.6, "ours": 0.2, "kernel": 0.2}}}
    for fn, data in ((plots.plot_pesq, pesq), (plots.plot_jitter, jitter), (plots.plot_profile, profile)):
        w, h = png_size(fn(data, tmp_path / f"{fn.__name__}.png"))
        assert w > 300 and h > 100


def test_make_plots_attaches_paths_to_suites(tmp_path):
    doc = make_run()
    made = plots.make_plots(doc, tmp_path)
    assert sorted(p.name for p in made) == ["capacity_cost_growth.png", "relay_pps_per_core.png"]
    assert doc["suites"][0]["plots"] == [str(tmp_path / "relay_pps_per_core.png")]
    assert results.validate(doc) == []


def test_report_fills_the_tables_from_a_run(tmp_path):
    doc_path = tmp_path / "PERFORMANCE.md"
    text = report.update_document(doc_path, report.render_blocks([make_run()]))
    assert doc_path.read_text() == text
    capacity = text.split("<!-- bench:capacity -->")[1].split("<!-- /bench:capacity -->")[0]
    # record: 0.12 % of a core per call, 420,000 bytes per call = 410 KiB; (1 - 0.01) / 0.0012 = 825 calls
    assert "| record | 825 (extrapolated) | 400 | 0.120% of a core | 410 KiB | 1.000 (9 runs) | 1.000 |" in capacity
    assert "| transcode | 99 (extrapolated) | 40 | 1.000% of a core | 371 KiB |" in capacity
    relay = text.split("<!-- bench:relay -->")[1].split("<!-- /bench:relay -->")[0]
    assert "| 500 | hotline | 160,000 (150,000-170,000) | **2.00x** | 31.0% (30.0-33.0) |" in relay
    assert "load average (1/5/15 min) 1.50/1.20/1.00 before, 1.70/1.30/1.00 after" in relay
    assert "commit `abc1234`" in relay and "`hotline bench relay capacity`" in relay
    growth = text.split("<!-- bench:growth -->")[1]
    assert "| record | 200 | 200 | 25.0 (24.8-25.2) |" in growth
    assert "*Not measured yet: `hotline bench profile`.*" in text
    assert "- capacity: `python -m bench.capacity ...`" in text


def test_report_keeps_the_prose_around_the_blocks(tmp_path):
    doc_path = tmp_path / "PERFORMANCE.md"
    doc_path.write_text("# Perf\n\nOur analysis stays.\n<!-- bench:relay -->\nold table\n<!-- /bench:relay -->\n"
                        "Closing words.\n")
    text = report.update_document(doc_path, report.render_blocks([make_run()]))
    assert text.startswith("# Perf\n\nOur analysis stays.\n<!-- bench:relay -->\n*From run")
    assert "old table" not in text and text.endswith("<!-- /bench:relay -->\nClosing words.\n")
    assert "bench:capacity" not in text  # blocks the document does not have are not added


def test_report_prefers_full_runs_and_successes():
    full = make_run(run_id="20260101-120000")
    quick = make_run(quick=True, run_id="20260105-120000")
    failed = make_run(run_id="20260106-120000")
    for s in failed["suites"]:
        s.update(status="failed", reason="boom")
    picked = report.pick_suites([full, quick, failed])
    assert picked["relay"][0]["run_id"] == "20260101-120000"
    picked = report.pick_suites([quick, failed])
    assert picked["capacity"][0]["run_id"] == "20260105-120000-quick"
    picked = report.pick_suites([failed])
    assert picked["relay"][1]["status"] == "failed"
    assert "`relay`: failed: boom" in report.render_blocks([failed])["relay"]


def test_fmt_seconds():
    assert [report.fmt_seconds(x) for x in (2.5, 0.0123, 4.5e-6, 3e-8)] == ["2.50 s", "12.30 ms", "4.50 µs", "30 ns"]


def test_cli_run_writes_a_valid_document_and_the_report(ctx, tmp_path):
    doc = cli.run([FakeScenario("a"), Broken(), MissingPeer()], ctx, command="hotline bench a broken missing")
    assert [s["status"] for s in doc["suites"]] == ["ok", "failed", "unavailable"]
    assert results.validate(doc) == []
    saved = json.loads((ctx.results_dir / f"bench-{doc['run_id']}.json").read_text())
    assert saved["suites"][0]["metrics"]["value"]["median"] == 2.0
    assert saved["versions"]["python"] and saved["machine"]["cpus"]
    assert (ctx.results_dir / "bench-latest.json").is_file()


def test_cli_main_list_report_only_and_usage(fake_root, tmp_path, capsys):
    assert cli.main(["--list", "--root", str(fake_root)]) == 0
    listing = capsys.readouterr().out
    assert "callcentre-day" in listing and "capacity" in listing
    results_dir = tmp_path / "res"
    results.write_run(make_run(), results_dir)
    doc = tmp_path / "P.md"
    assert cli.main(["--report-only", "--root", str(fake_root), "--results-dir", str(results_dir),
                     "--doc", str(doc)]) == 0
    assert "| 500 | hotline |" in doc.read_text()
    with pytest.raises(SystemExit) as e:
        cli.main(["--root", str(fake_root), "no-such-suite"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["--root", str(fake_root), "--repeat", "0"])
