"""PNG plots of a run (matplotlib, Agg backend): one function per figure, each from the results JSON.

- cost per call as calls grow (capacity suite): CPU share and RSS against
  concurrent calls, per kind, with the fitted line and its R^2;
- relay packets per second per core, Hotline against rtpengine (relay suite);
- PESQ against packet loss (plc suite, from bench/results/plc_pesq.json);
- jitter-buffer added delay against the hindsight oracle (jitter suite);
- where the engine's CPU goes, by part of the stack (profile suite).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_plots", "plot_cost_growth", "plot_jitter", "plot_pesq", "plot_profile", "plot_relay"]

KIND_COLORS = {"relay": "tab:blue", "record": "tab:green", "transcode": "tab:red", "conference": "tab:purple",
               "ivr": "tab:orange"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_cost_growth(metrics: dict, path: Path) -> Path:
    """CPU (% of one core) and RSS (MiB) against concurrent calls, per kind, with the fitted lines."""
    plt = _pyplot()
    fig, (ax_cpu, ax_rss) = plt.subplots(1, 2, figsize=(11, 4.5))
    runs = metrics.get("runs", [])
    for kind, k in metrics.get("kinds", {}).items():
        color = KIND_COLORS.get(kind, None)
        rows = [r for r in runs if r["kind"] == kind]
        if not rows:
            continue
        xs = [r["effective_calls"] for r in rows]
        ax_cpu.scatter(xs, [100 * r["cpu_share"] for r in rows], color=color, s=14)
        fit = k.get("fit_cpu", {})
        if "slope" in fit:
            x1 = max(xs)
            ax_cpu.plot([0, x1], [100 * fit["intercept"], 100 * (fit["intercept"] + fit["slope"] * x1)],
                        color=color, label=f"{kind}: {100 * fit['slope']:.3f}% per call, R²={fit['r2']:.3f}")
        ax_rss.scatter([r["calls"] for r in rows], [r["rss_bytes"] / 2**20 for r in rows], color=color, s=14)
        fit = k.get("fit_rss", {})
        if "slope" in fit:
            x1 = max(r["calls"] for r in rows)
            ax_rss.plot([0, x1], [fit["intercept"] / 2**20, (fit["intercept"] + fit["slope"] * x1) / 2**20],
                        color=color, label=f"{kind}: {fit['slope'] / 1024:.0f} KiB per call, R²={fit['r2']:.3f}")
    ax_cpu.axhline(100, color="grey", linestyle=":", linewidth=1)
    ax_cpu.set_xlabel("concurrent calls (offered)")
    ax_cpu.set_ylabel("engine CPU, % of one core")
    ax_cpu.set_title("CPU as calls grow (one media thread)")
    ax_rss.set_xlabel("concurrent calls")
    ax_rss.set_ylabel("engine process RSS, MiB")
    ax_rss.set_title("Memory as calls grow")
    for ax in (ax_cpu, ax_rss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_relay(metrics: dict, path: Path) -> Path:
    """Median packets per second per core of each relay at each size, with min-max bars."""
    import numpy as np

    plt = _pyplot()
    sizes = list(metrics.get("sizes", {}))
    relays = sorted({r for s in sizes for r in metrics["sizes"][s]}, key=lambda r: r != "hotline")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(len(sizes))
    width = 0.8 / max(1, len(relays))
    for i, relay in enumerate(relays):
        vals = [metrics["sizes"][s].get(relay, {}).get("packets_per_core_second") for s in sizes]
        med = np.array([v["median"] if v else 0 for v in vals])
        lo = med - np.array([v["min"] if v else 0 for v in vals])
        hi = np.array([v["max"] if v else 0 for v in vals]) - med
        ax.bar(x + (i - (len(relays) - 1) / 2) * width, med / 1000, width, yerr=[lo / 1000, hi / 1000],
               capsize=4, label=relay, color="tab:green" if relay == "hotline" else "tab:grey")
    ax.set_xticks(x, [f"{s} calls" for s in sizes])
    ax.set_ylabel("thousand packets per second per core")
    ax.set_title("Relay: packets per core (median, min-max over runs)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_pesq(artifact: dict, path: Path) -> Path:
    """PESQ (median, min-max over seeds) of each concealment method at each loss condition."""
    import numpy as np

    plt = _pyplot()
    results = artifact["results"]
    conditions = list(results)
    methods = [m for m in results[conditions[0]] if isinstance(results[conditions[0]][m], dict)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(len(conditions))
    for i, m in enumerate(methods):
        med = np.array([results[c][m]["median"] for c in conditions])
        lo = med - np.array([results[c][m]["min"] for c in conditions])
        hi = np.array([results[c][m]["max"] for c in conditions]) - med
        ax.errorbar(x + (i - len(methods) / 2) * 0.05, med, yerr=[lo, hi], label=m, marker="o", capsize=3)
    ax.set_xticks(x, conditions)
    ax.set_xlabel("packet loss")
    ax.set_ylabel("PESQ MOS-LQO (narrowband)")
    ax.set_title("Concealment quality against packet loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_jitter(artifact: dict, path: Path) -> Path:
    """Added delay of our jitter buffer against the hindsight-optimal fixed buffer, per network scenario."""
    import numpy as np

    plt = _pyplot()
    runs = artifact["runs"]
    scenarios = list(runs)
    series = {"ours": "ours_added_delay_ms", "oracle (hindsight)": "oracle_added_delay_ms",
              "oracle on the 20 ms grid": "grid_oracle_added_delay_ms"}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(len(scenarios))
    for i, (label, key) in enumerate(series.items()):
        vals = [[r[key] for r in runs[s]] for s in scenarios]
        med = np.array([float(np.median(v)) for v in vals])
        lo = med - np.array([min(v) for v in vals])
        hi = np.array([max(v) for v in vals]) - med
        ax.bar(x + (i - 1) * 0.27, med, 0.27, yerr=[lo, hi], capsize=3, label=label)
    ax.set_xticks(x, scenarios)
    ax.set_ylabel("mean added delay, ms")
    ax.set_title("Jitter buffer delay against the oracle (median, min-max of seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_profile(metrics: dict, path: Path) -> Path:
    """Share of the engine's CPU samples by part of the stack (kernel, ours, libopus...), per kind."""
    plt = _pyplot()
    kinds = [k for k, v in metrics.items() if isinstance(v, dict) and "by_part" in v]
    parts = ["kernel", "ours", "libopus", "libc", "python", "other"]
    colors = {"kernel": "tab:grey", "ours": "tab:green", "libopus": "tab:red", "libc": "tab:blue",
              "python": "tab:orange", "other": "tab:brown"}
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(kinds) + 1.8))
    left = [0.0] * len(kinds)
    for part in parts:
        vals = [100 * metrics[k]["by_part"].get(part, 0.0) for k in kinds]
        ax.barh(kinds, vals, left=left, label=part, color=colors[part])
        left = [a + b for a, b in zip(left, vals)]
    ax.set_xlabel("% of the engine's CPU samples")
    ax.set_title("Where the engine's CPU goes (perf, cpu-clock)")
    ax.legend(ncol=3, fontsize=8)
    return _save(fig, path)


def make_plots(run: dict, results_dir: Path) -> list[Path]:
    """Every plot the run's suites have data for; each path is also added to its suite's ``plots``."""
    made = []
    for suite in run["suites"]:
        if suite["status"] != "ok":
            continue
        name, metrics, artifacts = suite["name"], suite["metrics"], suite["artifacts"]
        todo = []
        if name == "capacity" and metrics.get("kinds"):
            todo.append((plot_cost_growth, metrics, "capacity_cost_growth.png"))
        if name == "relay" and metrics.get("sizes"):
            todo.append((plot_relay, metrics, "relay_pps_per_core.png"))
        if name == "plc" and "plc_pesq.json" in artifacts:
            todo.append((plot_pesq, artifacts["plc_pesq.json"], "plc_pesq_vs_loss.png"))
        if name == "jitter" and "jitter_delay.json" in artifacts:
            todo.append((plot_jitter, artifacts["jitter_delay.json"], "jitter_delay_vs_oracle.png"))
        if name == "profile" and any(isinstance(v, dict) and "by_part" in v for v in metrics.values()):
            todo.append((plot_profile, metrics, "profile_by_part.png"))
        for fn, data, filename in todo:
            path = fn(data, results_dir / filename)
            suite["plots"].append(str(path))
            made.append(path)
    return made
