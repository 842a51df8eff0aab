"""``hotline bench [SUITE...]``: run the benchmarks, write JSON results and plots, update the report.

    hotline bench                  every suite (what `make bench` runs)
    hotline bench --quick          a smoke run of about a minute
    hotline bench relay capacity   some suites
    hotline bench --list           the suites, and whether each can run here
    hotline bench --report-only    rebuild docs/PERFORMANCE.md from bench/results/bench-*.json

Progress goes to stderr (bars on a terminal, lines otherwise); the results go
to ``bench/results/bench-<run id>.json`` (and ``bench-latest.json``), the
plots to ``bench/results/*.png``, and the tables of ``docs/PERFORMANCE.md``
are refilled from every run kept (the newest full result of each suite).
Exit status: 0 when no suite failed (unavailable suites do not fail a run),
1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator.benchrun import machine, plots, report, results
from orchestrator.benchrun.progress import Progress
from orchestrator.benchrun.suites import SUITES, Context, Suite, run_suite, select

__all__ = ["main", "run"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline bench", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="suites: " + ", ".join(s.name for s in SUITES))
    p.add_argument("suites", nargs="*", metavar="SUITE", help="suites to run (default: all, or the quick set)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, one run each: a smoke run of about a minute")
    p.add_argument("--repeat", type=int, default=3, help="runs of each scenario measurement (default 3)")
    p.add_argument("--list", action="store_true", help="list the suites and whether each can run here")
    p.add_argument("--root", type=Path, default=None, help="the source checkout (default: found from here)")
    p.add_argument("--results-dir", type=Path, default=None, help="default: ROOT/bench/results")
    p.add_argument("--doc", type=Path, default=None, help="the report to refill (default: ROOT/docs/PERFORMANCE.md)")
    p.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    p.add_argument("--no-report", action="store_true", help="do not refill the report")
    p.add_argument("--report-only", action="store_true", help="run nothing; refill the report from saved runs")
    p.add_argument("--bars", choices=("auto", "always", "never"), default="auto",
                   help="progress bars (auto: when stderr is a terminal)")
    return p


def run(suites: Sequence[Suite], ctx: Context, *, command: str, plots_too: bool = True) -> dict:
    """Run the suites in order; returns the run document (also written under ctx.results_dir)."""
    doc = results.new_run(command=command, quick=ctx.quick, repeat=ctx.repeat, machine=machine.machine_info(),
                          versions=machine.versions(ctx.root))
    ctx.log_dir = ctx.results_dir / "logs" / doc["run_id"]
    overall = ctx.progress.task("hotline bench", len(suites))
    for suite in suites:
        overall.note(suite.name)
        result = run_suite(suite, ctx)
        doc["suites"].append(result)
        overall.advance(1, f"{suite.name}: {result['status']}")
        # Save after every suite: an interrupted run keeps what it measured.
        results.write_run(doc, ctx.results_dir)
        doc["finished"] = ""
    overall.close()
    if plots_too:
        try:
            plots.make_plots(doc, ctx.results_dir)
        except Exception as e:  # noqa: BLE001 - a plot must not cost the measurements
            ctx.progress.line(f"plots failed: {type(e).__name__}: {e}")
    results.write_run(doc, ctx.results_dir)
    return doc


def _summary_lines(doc: dict) -> list[str]:
    lines = []
    for s in doc["suites"]:
        head = f"{s['name']:<15} {s['status']:<11} {s['seconds']:7.1f} s  load {s['load_before']} -> {s['load_after']}"
        lines.append(head + (f"  {s['reason']}" if s.get("reason") else ""))
        for r in s["ratios"][:40]:
            lines.append(f"    {r['group'][:50]:<50} {r['ours'][:36]:<36} {r['ratio']:7.2f}x {r['baseline'][:30]}"
                         f" ({r['metric']})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    root = (args.root or machine.find_root())
    if root is None or not (root / "bench").is_dir():
        parser.error("cannot find the source checkout (bench/): run from the repository or give --root")
    root = root.resolve()
    results_dir = (args.results_dir or root / "bench" / "results").resolve()
    doc_path = args.doc or root / "docs" / "PERFORMANCE.md"
    progress = Progress(bars={"auto": None, "always": True, "never": False}[args.bars])
    ctx = Context(root=root, results_dir=results_dir, quick=args.quick, repeat=args.repeat, progress=progress)

    try:
        chosen = select(args.suites, quick=args.quick)
    except ValueError as e:
        parser.error(str(e))

    if args.list:
        for s in SUITES:
            reason = s.unavailable(ctx)
            flag = "quick" if s.quick_default else ""
            print(f"{s.name:<15} {flag:<6} {s.title}" + (f"\n{'':<22} not available: {reason}" if reason else ""))
        return 0

    if not args.report_only:
        command = "hotline bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        doc = run(chosen, ctx, command=command.strip(), plots_too=not args.no_plots)
        path = results_dir / f"bench-{doc['run_id']}.json"
        print("\n".join(_summary_lines(doc)))
        print(f"results: {path}")
        for s in doc["suites"]:
            for p in s["plots"]:
                print(f"plot: {p}")
        failed = any(s["status"] == "failed" for s in doc["suites"])
    else:
        failed = False

    if not args.no_report:
        runs = results.load_runs(results_dir)
        if runs:
            report.update_document(doc_path, report.render_blocks(runs))
            print(f"report: {doc_path}")
        else:
            print(f"report: no runs under {results_dir}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

