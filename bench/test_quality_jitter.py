"""Jitter buffer delay against the hindsight-optimal fixed buffer.

Five minutes of 20 ms G.711 speech packets (15,000) over each of netsim's
delay scenarios (Gaussian, Pareto-tailed, delay spikes, reordering), three
seeds each, no packet loss, through mediacore.jitter.Playout with its
defaults (adaptive target, time-stretching) on a 20 ms clock. For each run:

- ``late``: the fraction of the stream's frames that had to be concealed
  because their packet was not there in time (this includes the underrun
  holds that a delay spike causes: the packets are still played later);
- ``added delay``: mean time from a packet's arrival to the playout of its
  first sample;
- the oracle: the smallest *fixed* playout delay T (send time + T) that
  would have had the same late fraction, knowing the whole trace in
  advance, and its mean added delay ``mean(T - d)`` over on-time packets.
  A receiver on a 20 ms clock can only realize fixed delays on that clock's
  grid, so the best fixed buffer *it* could run is also given (``grid
  oracle``: T rounded up to the grid).

Goal (Media core I): mean added delay at most 1.2x the oracle's, at 1% late
loss or less. Results: bench/results/jitter_delay.json and jitter_delay.png.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from mediacore import g711, netsim
from mediacore.jitter import FrameKind, Playout

RESULTS = Path(__file__).resolve().parent / "results"
N = 15_000
FRAME = 160
SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def payloads(tmp_path_factory) -> list[bytes]:
    from tests.conftest import read_wav
    from tools.prompts import make_speech

    wav = make_speech(
        "Thank you for calling. Your call is important to us. Please hold while we connect you to the "
        "next available agent.",
        tmp_path_factory.mktemp("jb") / "speech.wav",
        rate=8000,
    )
    pcm = read_wav(wav)[1]
    frames = len(pcm) // FRAME
    codes = g711.ulaw_encode(np.tile(pcm[: frames * FRAME], N // frames + 1)[: N * FRAME])
    return [codes[i * FRAME : (i + 1) * FRAME] for i in range(N)]


def oracle(
    network_delay: np.ndarray, late_fraction: float, grid_ms: float | None = None
) -> tuple[float, float]:
    """(T, mean added delay) of the best fixed buffer with at most this late fraction."""
    d = np.sort(network_delay)
    allowed = int(math.floor(late_fraction * len(d) + 1e-9))  # packets it may lose
    t = d[len(d) - 1 - allowed]
    if grid_ms:
        t = math.ceil(t / grid_ms - 1e-9) * grid_ms
    on_time = d[d <= t]
    return float(t), float(np.mean(t - on_time))


def run(name: str, seed: int, payloads: list[bytes]) -> dict:
    trace = netsim.scenario(name, N, seed=seed)
    res = Playout("PCMU").run_trace(trace, payloads)
    last = int(np.flatnonzero(res.kinds == FrameKind.NORMAL)[-1])
    late_frames = int(np.sum(res.kinds[: last + 1] == FrameKind.CONCEALED))
    late = late_frames / N
    ours = float(np.mean(res.added_delay_ms))
    t, best = oracle(trace.network_delay_ms, late)
    t_grid, best_grid = oracle(trace.network_delay_ms, late, grid_ms=20.0)
    s = res.stats
    return {
        "late_fraction": late,
        "packets_played": int(len(res.played_sequences)),
        "ours_added_delay_ms": ours,
        "oracle_T_ms": t,
        "oracle_added_delay_ms": best,
        "ratio": ours / best if best > 0 else float("inf"),
        "grid_oracle_T_ms": t_grid,
        "grid_oracle_added_delay_ms": best_grid,
        "ratio_to_grid_oracle": ours / best_grid if best_grid > 0 else float("inf"),
        "target_delay_ms_at_end": s.target_delay_ms,
        "removed_ms": s.removed_samples_for_acceleration / 8.0,
        "inserted_ms": s.inserted_samples_for_deceleration / 8.0,
        "packets_late": s.packets_late,
    }


def test_delay_against_the_hindsight_oracle(payloads):
    started = time.perf_counter()
    results = {name: [run(name, seed, payloads) for seed in SEEDS] for name in sorted(netsim.SCENARIOS)}
    summary = {}
    for name, runs in results.items():
        summary[name] = {
            key: float(np.median([r[key] for r in runs]))
            for key in (
                "late_fraction",
                "ours_added_delay_ms",
                "oracle_added_delay_ms",
                "ratio",
                "grid_oracle_added_delay_ms",
                "ratio_to_grid_oracle",
            )
        }
        summary[name]["ratio_max"] = max(r["ratio"] for r in runs)
        summary[name]["late_fraction_max"] = max(r["late_fraction"] for r in runs)
    goals = {name: (s["late_fraction_max"] <= 0.01 and s["ratio"] <= 1.2) for name, s in summary.items()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "jitter_delay.json").write_text(
        json.dumps(
            {
                "what": "Playout (defaults) on 5-minute netsim traces vs the hindsight-optimal fixed buffer, "
                "3 seeds",
                "seconds": round(time.perf_counter() - started, 1),
                "goal_met (late <= 1% and median ratio <= 1.2)": goals,
                "summary_median_of_seeds": summary,
                "runs": results,
            },
            indent=2,
        )
    )
    _plot(results)
    for name, s in summary.items():
        print(
            f"{name:>9}: ours {s['ours_added_delay_ms']:6.1f} ms  "
            f"oracle {s['oracle_added_delay_ms']:6.1f} ms  "
            f"ratio {s['ratio']:.2f} (max {s['ratio_max']:.2f})  "
            f"grid-oracle ratio {s['ratio_to_grid_oracle']:.2f}  "
            f"late {100 * s['late_fraction']:.2f}% (max {100 * s['late_fraction_max']:.2f}%)"
        )
    for name, runs in results.items():
        for r in runs:
            # No network loss in these traces: a packet is played or was late.
            assert r["packets_played"] + r["packets_late"] == N, (name, r)
            assert r["late_fraction"] <= 0.01, (name, r)
    for name, s in summary.items():
        assert s["ratio"] <= 1.2, (name, s)


def _plot(results: dict) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = [
        ("ours_added_delay_ms", "ours (adaptive)", "tab:green"),
        ("oracle_added_delay_ms", "hindsight-optimal fixed", "tab:gray"),
        ("grid_oracle_added_delay_ms", "optimal fixed on the 20 ms clock", "tab:blue"),
    ]
    for i, (key, label, color) in enumerate(series):
        vals = np.array([[r[key] for r in results[n]] for n in names])
        med = np.median(vals, axis=1)
        ax.bar(
            x + (i - 1) * 0.27,
            med,
            0.27,
            label=label,
            color=color,
            yerr=[med - vals.min(axis=1), vals.max(axis=1) - med],
            capsize=3,
        )
    for j, n in enumerate(names):
        late = np.median([r["late_fraction"] for r in results[n]])
        ax.annotate(f"late {100 * late:.2f}%", (x[j], 2), ha="center", fontsize=8, color="white")
    ax.set_xticks(x, names)
    ax.set_ylabel("mean added delay (ms)")
    ax.set_title("Jitter buffer delay at the same late loss (median, min-max of 3 seeds)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "jitter_delay.png", dpi=120)
    plt.close(fig)
