"""The capacity report: fills the tables of docs/PERFORMANCE.md from results JSON.

The document is prose written by people with generated blocks between
markers::

    <!-- bench:capacity -->
    ...generated, replaced on every update...
    <!-- /bench:capacity -->

``update_document`` replaces only what is between the markers, so the
analysis around them stays as written. Each block says which run it comes
from: the command, the date, the commit and the load average before and
after the suite. For every suite the newest successful result is used, a full
run's before a quick one's (a quick smoke run does not overwrite full numbers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BLOCKS", "TEMPLATE", "fmt_seconds", "pick_suites", "render_blocks", "update_document"]

BLOCKS = ("runs", "relay", "capacity", "growth", "profile", "sip", "quality", "ratios", "reproduce")

TEMPLATE = """# Hotline performance

How much one machine carries, how cost grows with load, where the time goes,
and the command that reproduces each number. Everything between
`<!-- bench:... -->` markers is written by `hotline bench` from its results
JSON (`bench/results/bench-*.json`); the text around it is ours.

## The runs behind these numbers
<!-- bench:runs -->
<!-- /bench:runs -->

## Relay against rtpengine
<!-- bench:relay -->
<!-- /bench:relay -->

## Concurrent calls per kind
<!-- bench:capacity -->
<!-- /bench:capacity -->

## How cost grows with load
<!-- bench:growth -->
<!-- /bench:growth -->

## Where the time goes
<!-- bench:profile -->
<!-- /bench:profile -->

## SIP call rate
<!-- bench:sip -->
<!-- /bench:sip -->

## Audio quality
<!-- bench:quality -->
<!-- /bench:quality -->

## Side by side: every ratio
<!-- bench:ratios -->
<!-- /bench:ratios -->

## Reproducing
<!-- bench:reproduce -->
<!-- /bench:reproduce -->
"""


def fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.2f} µs"
    return f"{s * 1e9:.0f} ns"


def _mmm(v: dict | None, scale: float = 1.0, digits: int = 0, unit: str = "") -> str:
    """median (min-max) of a summary."""
    if not v:
        return "-"
    f = f"{{:,.{digits}f}}"
    med, lo, hi = (f.format(v[k] * scale) for k in ("median", "min", "max"))
    if v.get("n", 1) <= 1 or lo == hi:
        return f"{med}{unit}"
    return f"{med}{unit} ({lo}-{hi})"


def _load(x: Sequence[float]) -> str:
    return "/".join(f"{v:.2f}" for v in x) if x else "?"


def pick_suites(runs: Sequence[dict]) -> dict[str, tuple[dict, dict]]:
    """suite name -> (run, suite result): the newest ok result, full runs before quick ones;
    a suite that never succeeded keeps its newest result (to show why)."""
    picked: dict[str, tuple[dict, dict]] = {}

    def rank(run: dict, suite: dict) -> tuple:
        return (suite["status"] == "ok", not run["quick"], run["run_id"].replace("-quick", ""))

    for run in runs:
        for suite in run["suites"]:
            cur = picked.get(suite["name"])
            if cur is None or rank(run, suite) >= rank(*cur):
                picked[suite["name"]] = (run, suite)
    return picked


def _source(run: dict, suite: dict) -> str:
    v = run["versions"]
    return (f"*From run `{run['run_id']}` ({'quick' if run['quick'] else 'full'}): `{run['command']}`, "
            f"{run['started']}, commit `{v.get('commit_short') or (v.get('commit') or '?')[:9]}`"
            f"{' (uncommitted changes)' if v.get('dirty') else ''}, load average (1/5/15 min) "
            f"{_load(suite['load_before'])} before, {_load(suite['load_after'])} after; "
            f"{run['machine'].get('cpus')} × {run['machine'].get('cpu')}.*")


def _missing(name: str, picked: dict) -> str | None:
    if name not in picked:
        return f"*Not measured yet: `hotline bench {name}`.*"
    run, suite = picked[name]
    if suite["status"] != "ok":
        return f"*`{name}`: {suite['status']}: {suite.get('reason') or ''}* ({run['run_id']})"
    return None


def _block_runs(picked: dict) -> str:
    lines = ["| suite | status | run | commit | load before | load after | time |",
             "|---|---|---|---|---|---|---|"]
    for name, (run, s) in picked.items():
        status = s["status"] + (f": {s['reason']}" if s.get("reason") and s["status"] != "ok" else "")
        lines.append(f"| {name} | {status[:90]} | {run['run_id']} | {run['versions'].get('commit_short') or '?'} | "
                     f"{_load(s['load_before'])} | {_load(s['load_after'])} | {s['seconds']:.0f} s |")
    runs = {run["run_id"]: run for run, _ in picked.values()}
    for run in runs.values():
        v = run["versions"]
        lines.append("")
        lines.append(f"Run `{run['run_id']}`: `{run['command']}` on {run['machine'].get('cpus')} × "
                     f"{run['machine'].get('cpu')} ({run['machine'].get('virtualization') or 'bare metal?'}), "
                     f"kernel {v.get('kernel')}; Python {v.get('python')}, numpy {v.get('numpy')}, "
                     f"{v.get('libopus')}, rtpengine {v.get('rtpengine')}, Kamailio {v.get('kamailio')}, "
                     f"SIPp {v.get('sipp')}, perf {v.get('perf')}; repeat {run['repeat']}.")
    return "\n".join(lines)


def _block_relay(picked: dict) -> str:
    miss = _missing("relay", picked)
    if miss:
        return miss
    run, s = picked["relay"]
    m = s["metrics"]
    lines = [_source(run, s), "",
             "| calls | relay | packets/s per core | ratio | CPU (share of a core) | loss | latency p50 µs | p99 µs |",
             "|---|---|---|---|---|---|---|---|"]
    ratios = {(r["group"], r["metric"]): r for r in s["ratios"]}
    for n, by in m.get("sizes", {}).items():
        for relay, f in by.items():
            r = ratios.get((f"relay {n} calls", "packets_per_core_second"))
            ratio = f"**{r['ratio']:.2f}x**" if r and relay == "hotline" else ("1.00" if relay == "rtpengine" else "")
            lines.append(f"| {n} | {relay} | {_mmm(f['packets_per_core_second'])} | {ratio} | "
                         f"{_mmm(f['relay_cpu_share'], 100, 1, '%')} | {_mmm(f['loss_ratio'], 100, 3, '%')} | "
                         f"{_mmm(f['latency_us_p50'])} | {_mmm(f['latency_us_p99'])} |")
    lines.append("")
    lines.append(f"Median (min-max) over {run['repeat'] if not run['quick'] else 1} run(s) of "
                 f"{m.get('duration_s')} s ({m.get('warmup_s')} s warm-up); ratio = Hotline's median packets per "
                 f"core / rtpengine's, measured in turns in the same run. Plot: `bench/results/relay_pps_per_core.png`.")
    if m.get("note"):
        lines.append(m["note"])
    return "\n".join(lines)


def _block_capacity(picked: dict) -> str:
    miss = _missing("capacity", picked)
    if miss:
        return miss
    run, s = picked["capacity"]
    m = s["metrics"]
    lines = [_source(run, s), "",
             ("| kind | calls per core (fitted line at 100%) | most calls measured under 0.1% loss | "
              "CPU per call | RSS per call | R² CPU | R² RSS | generator fell behind at |"),
             "|---|---|---|---|---|---|---|---|"]
    for kind, k in m.get("kinds", {}).items():
        fc, fr = k.get("fit_cpu", {}), k.get("fit_rss", {})
        per_core = "-"
        if "calls_per_core" in k:
            per_core = f"{k['calls_per_core']:,.0f}" + (" (extrapolated)" if k.get("calls_per_core_extrapolated") else "")
        cpu = f"{100 * fc['slope']:.3f}% of a core" if "slope" in fc else "-"
        rss = f"{fr['slope'] / 1024:,.0f} KiB" if "slope" in fr else "-"
        maxed = k.get("measured_max_calls")
        lines.append(f"| {kind} | {per_core} | {maxed if maxed is not None else 'none'} | {cpu} | {rss} | "
                     f"{fc.get('r2', float('nan')):.3f} ({fc.get('n', 0)} runs) | {fr.get('r2', float('nan')):.3f} | "
                     f"{', '.join(map(str, k.get('generator_limited_at', []))) or '-'} |")
    lines.append("")
    lines.append("Calls per core: where the least-squares line through the engine's CPU share against the "
                 "offered calls (points under 90% of the core) reaches 100% of one core. The engine ran one "
                 "media thread pinned to CPU 0; the generator had CPU 1, so on this 2-core machine the other "
                 "core is not free for a second media thread. \"Most calls measured\" counts only sizes where "
                 "the generator kept its schedule: beyond that the load offered was less than nominal.")
    return "\n".join(lines)


def _block_growth(picked: dict) -> str:
    miss = _missing("capacity", picked)
    if miss:
        return miss
    run, s = picked["capacity"]
    m = s["metrics"]
    lines = [_source(run, s), "",
             ("| kind | calls | offered (effective) | engine CPU, % of a core | CPU per call-second | RSS MiB | "
              "loss | tick overruns | latency p99 µs |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, k in m.get("kinds", {}).items():
        for n, p in k["points"].items():
            lines.append(f"| {kind} | {n} | {_mmm(p['effective_calls'])} | {_mmm(p['cpu_share'], 100, 1)} | "
                         f"{_mmm(p['cpu_ms_per_call_second'], 1, 3, ' ms')} | {_mmm(p['rss_bytes'], 2**-20, 1)} | "
                         f"{_mmm(p['loss_ratio'], 100, 3, '%')} | {_mmm(p['tick_overruns'])} | "
                         f"{_mmm(p['latency_us_p99'])} |")
    lines.append("")
    lines.append(f"Median (min-max) over the runs of {m.get('duration_s')} s ({m.get('warmup_s')} s warm-up). "
                 "Loss: counted by the generator end to end for relay and record; for the kinds whose packets the "
                 "engine makes (transcode, conference, ivr), sequence gaps on arrival plus ticks run late. "
                 "Plot: `bench/results/capacity_cost_growth.png`.")
    return "\n".join(lines)


def _block_profile(picked: dict) -> str:
    miss = _missing("profile", picked)
    if miss:
        return miss
    run, s = picked["profile"]
    lines = [_source(run, s), "", "| kind | calls | engine CPU | kernel | ours (mediacore) | libopus | libc | python |",
             "|---|---|---|---|---|---|---|---|"]
    kinds = {k: v for k, v in s["metrics"].items() if isinstance(v, dict) and "by_part" in v}
    for kind, v in kinds.items():
        p = v["by_part"]
        lines.append(f"| {kind} | {v['calls']} | {100 * v['cpu_share']:.0f}% | " + " | ".join(
            f"{100 * p.get(x, 0):.1f}%" for x in ("kernel", "ours", "libopus", "libc", "python")) + " |")
    for kind, v in kinds.items():
        lines.append("")
        lines.append(f"Top symbols, {kind} ({v['calls']} calls), share of the engine's samples:")
        lines.append("")
        lines.append("| share | where | symbol |")
        lines.append("|---|---|---|")
        for sym in v["top_symbols"][:8]:
            lines.append(f"| {100 * sym['share']:.1f}% | {sym['part']} | `{sym['symbol'][:70]}` |")
    return "\n".join(lines)


def _extra(extra: dict, key: str, digits: int = 1) -> str:
    """An extra_info figure: a number from one run, or {min, median, max} over runs."""
    v = extra.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = {"min": v, "median": v, "max": v, "n": 1}
    return _mmm(v, 1.0, digits) if isinstance(v, dict) else "-"


def _block_sip(picked: dict) -> str:
    miss = _missing("sip-rate", picked)
    if miss:
        return miss
    run, s = picked["sip-rate"]
    lines = [_source(run, s), "", "| server | calls/s achieved | failed | CPU ms per call | INVITE->200 p50 ms | p99 ms |",
             "|---|---|---|---|---|---|"]
    for b in s["benchmarks"]:
        e = b["extra"]
        lines.append(f"| {b['name'].replace('test_bench_', '')} | {_extra(e, 'achieved_cps')} | "
                     f"{_extra(e, 'failed', 0)} | {_extra(e, 'server_cpu_ms_per_call', 3)} | "
                     f"{_extra(e, 'invite_to_200_ms.p50', 2)} | {_extra(e, 'invite_to_200_ms.p99', 2)} |")
    for r in s["ratios"]:
        lines.append(f"\n{r['metric']}: Hotline {r['ratio']:.2f}x Kamailio (above 1: Hotline better).")
    return "\n".join(lines)


def _block_quality(picked: dict) -> str:
    out = []
    plc = picked.get("plc")
    if plc and plc[1]["status"] == "ok" and "plc_pesq.json" in plc[1]["artifacts"]:
        run, s = plc
        a = s["artifacts"]["plc_pesq.json"]["results"]
        conds = list(a)
        methods = [m for m in a[conds[0]] if isinstance(a[conds[0]][m], dict)]
        out += [_source(run, s), "", "PESQ-NB, median (min-max) over seeds:", "",
                "| loss | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for c in conds:
            out.append(f"| {c} | " + " | ".join(_mmm(a[c][m], 1, 2) for m in methods) + " |")
        out += ["", "Plot: `bench/results/plc_pesq_vs_loss.png`.", ""]
    else:
        out.append(_missing("plc", picked) or "*plc: no PESQ results in the run.*")
    jb = picked.get("jitter")
    if jb and jb[1]["status"] == "ok" and "jitter_delay.json" in jb[1]["artifacts"]:
        run, s = jb
        a = s["artifacts"]["jitter_delay.json"]["summary_median_of_seeds"]
        out += ["", _source(run, s), "", "Jitter buffer, median of seeds:", "",
                "| network | late | ours added delay ms | oracle ms | ours / oracle | oracle on the 20 ms grid ms |",
                "|---|---|---|---|---|---|"]
        for name, v in a.items():
            out.append(f"| {name} | {100 * v['late_fraction']:.2f}% | {v['ours_added_delay_ms']:.1f} | "
                       f"{v['oracle_added_delay_ms']:.1f} | {v['ratio']:.2f} | {v['grid_oracle_added_delay_ms']:.1f} |")
        out += ["", "Plot: `bench/results/jitter_delay_vs_oracle.png`."]
    else:
        out.append("")
        out.append(_missing("jitter", picked) or "*jitter: the quick run measures speed only (no delay study).*")
    return "\n".join(out)


def _block_ratios(picked: dict) -> str:
    lines = ["| suite | group | ours | baseline | ours median | baseline median | ratio |",
             "|---|---|---|---|---|---|---|"]
    sources = []
    for name, (run, s) in picked.items():
        if s["status"] != "ok" or not s["ratios"] or name in ("relay", "sip-rate"):
            continue
        sources.append(f"{name}: run `{run['run_id']}`, load {_load(s['load_before'])} -> {_load(s['load_after'])}")
        for r in s["ratios"]:
            if r["metric"] == "time":
                ov, bv = fmt_seconds(r["ours_value"]["median"]), fmt_seconds(r["baseline_value"]["median"])
            else:
                ov, bv = f"{r['ours_value']['median']:.4g}", f"{r['baseline_value']['median']:.4g}"
            lines.append(f"| {name} | {r['group'][:48]} | {r['ours'].replace('test_', '')[:40]} | "
                         f"{r['baseline'].replace('test_', '')[:34]} | {ov} | {bv} | {r['ratio']:.2f}x |")
    if len(lines) == 2:
        return "*No side-by-side microbenchmarks measured yet.*"
    lines.append("")
    lines.append("Ratio above 1: ours is faster than the baseline measured in the same pytest run "
                 "(baseline median / ours median, pytest-benchmark rounds). " + "; ".join(sources) + ".")
    return "\n".join(lines)


def _block_reproduce(picked: dict) -> str:
    lines = [("Each suite alone: `hotline bench SUITE` (add `--quick` for a smoke run, `--repeat N` for more "
              "runs). The commands each suite ran:"), ""]
    for name, (_, s) in picked.items():
        for c in s["commands"]:
            lines.append(f"- {name}: `{c}`")
    return "\n".join(lines)


def render_blocks(runs: Sequence[dict]) -> dict[str, str]:
    picked = pick_suites(runs)
    return {
        "runs": _block_runs(picked),
        "relay": _block_relay(picked),
        "capacity": _block_capacity(picked),
        "growth": _block_growth(picked),
        "profile": _block_profile(picked),
        "sip": _block_sip(picked),
        "quality": _block_quality(picked),
        "ratios": _block_ratios(picked),
        "reproduce": _block_reproduce(picked),
    }


def update_document(path: Path, blocks: dict[str, str]) -> str:
    """Replace each ``<!-- bench:NAME -->`` block of the document at ``path`` (the template if it does not
    exist yet); returns the new text. Blocks missing from the document are left out."""
    text = path.read_text() if path.exists() else TEMPLATE
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- bench:{re.escape(name)} -->\n).*?(<!-- /bench:{re.escape(name)} -->)", re.DOTALL)
        text = pattern.sub(lambda m, b=body: m.group(1) + b.rstrip() + "\n" + m.group(2), text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
