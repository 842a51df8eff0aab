"""PLC quality: PESQ (ITU-T P.862, narrowband) of speech through G.711 + jitter buffer + PLC.

16 s of espeak-ng speech (five sentences) is encoded to G.711 mu-law in 20 ms
packets and sent over a network that loses packets: independent losses of 0,
3, 5 and 10%, and bursty Gilbert-Elliott losses (p_gb 0.02, p_bg 0.3: about
6% loss in bursts of 3.3 packets on average), five seeds each. Contenders,
measured in the same run on the same loss patterns:

- ``ours``: mediacore.jitter.Playout (jitter buffer at a fixed 40 ms, our
  G.711 Appendix I style PLC, two-sided when the next packet is already
  buffered), on a network with a constant 25 ms transit;
- ``ours+jitter``: the same with 10 ms Gaussian jitter, the adaptive target
  and time-stretching on (the whole pipeline as a call would use it);
- ``appendix-I``: our PLC looking back only (mediacore.plc.conceal_losses),
  i.e. without the jitter buffer's lookahead;
- ``silence``: lost frames replaced by zeros (baseline);
- ``repeat``: lost frames replaced by the last good frame (baseline).

The reference for PESQ is the original speech, so every score includes the
G.711 coding loss (about 4.0-4.1 for this prompt with no packet loss).

Goal (Media core I): ours beats both baselines at every loss rate, and by at
least 0.5 MOS over silence at 5% random loss. The test asserts the goals
that hold with room to spare (ours above silence everywhere, above repeat at
every random loss rate, >= 0.5 over silence at 5%) and writes all goals to
bench/results/plc_pesq.json (plot: bench/results/plc_pesq.png). At the last
measurement the margin at 5% was 0.58; on the bursty channel ours led repeat
by 0.08 on this prompt but tied it (3.01 vs 3.02) on another prompt we
tried, so that one is recorded, not asserted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from mediacore import g711, netsim
from mediacore.jitter import FrameKind, Playout
from mediacore.plc import conceal_losses

pesq_module = pytest.importorskip("pesq")

RESULTS = Path(__file__).resolve().parent / "results"
FRAME = 160
SEEDS = range(5)
TEXT = (
    "Thank you for calling the support line. Your call is important to us, and an agent will be with you "
    "shortly. Please have your account number ready. While you wait, you can visit our website for answers "
    "to common questions. Calls may be recorded for quality and training purposes."
)
CONDITIONS = {
    "0%": dict(kind="random", p=0.0),
    "3%": dict(kind="random", p=0.03),
    "5%": dict(kind="random", p=0.05),
    "10%": dict(kind="random", p=0.10),
    "bursty ~6%": dict(kind="ge", p_gb=0.02, p_bg=0.3),
}
METHODS = ("ours", "ours+jitter", "appendix-I", "silence", "repeat")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    from tests.conftest import read_wav
    from tools.prompts import make_speech

    wav = make_speech(TEXT, tmp_path_factory.mktemp("plc") / "speech.wav", rate=8000)
    pcm = read_wav(wav)[1]
    return pcm[: len(pcm) // FRAME * FRAME]


def loss_mask(n: int, condition: dict, seed: int) -> np.ndarray:
    if condition["kind"] == "random":
        lost = netsim.loss_mask_random(n, condition["p"], seed=seed)
    else:
        lost = netsim.loss_mask_gilbert_elliott(
            n, p_good_to_bad=condition["p_gb"], p_bad_to_good=condition["p_bg"], seed=seed
        )
    lost[0] = False  # the call starts with a packet, so every contender is aligned the same way
    return lost


def through_playout(payloads: list[bytes], lost: np.ndarray, *, jitter: bool, seed: int) -> np.ndarray:
    n = len(payloads)
    trace = netsim.packets(n)
    if jitter:
        trace = netsim.gaussian_jitter(trace, base_ms=25, sigma_ms=10, seed=1000 + seed)
        p = Playout("PCMU")
    else:
        trace = trace.with_arrival(trace.send_ms + 25.0)
        p = Playout("PCMU", min_delay_ms=40, max_delay_ms=40, time_stretch=False)
    trace = trace.with_arrival(np.where(lost, np.nan, trace.arrival_ms))
    res = p.run_trace(trace, payloads, ticks=n + 60)
    first = int(np.argmax(res.kinds != FrameKind.EMPTY))
    out = res.pcm[first * FRAME :]
    out = out[: n * FRAME]
    return np.pad(out, (0, n * FRAME - len(out)))


def score(reference: np.ndarray, degraded: np.ndarray) -> float:
    return float(pesq_module.pesq(8000, reference, degraded, "nb"))


def test_plc_pesq_against_silence_and_repeat(speech):
    started = time.perf_counter()
    n = len(speech) // FRAME
    codes = g711.ulaw_encode(speech)
    payloads = [codes[i * FRAME : (i + 1) * FRAME] for i in range(n)]
    decoded = g711.ulaw_decode(codes)
    scores: dict[str, dict[str, list[float]]] = {c: {m: [] for m in METHODS} for c in CONDITIONS}
    loss_rates: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    for cname, condition in CONDITIONS.items():
        for seed in SEEDS:
            lost = loss_mask(n, condition, seed)
            loss_rates[cname].append(float(lost.mean()))
            outs = {
                "ours": through_playout(payloads, lost, jitter=False, seed=seed),
                "ours+jitter": through_playout(payloads, lost, jitter=True, seed=seed),
                "appendix-I": conceal_losses(decoded, lost, FRAME, "plc"),
                "silence": conceal_losses(decoded, lost, FRAME, "silence"),
                "repeat": conceal_losses(decoded, lost, FRAME, "repeat"),
            }
            for method, out in outs.items():
                scores[cname][method].append(score(speech, out))

    summary = {
        cname: {
            "loss_rate_mean": float(np.mean(loss_rates[cname])),
            **{
                m: {"min": min(v), "median": float(np.median(v)), "max": max(v), "all": v}
                for m, v in scores[cname].items()
            },
        }
        for cname in CONDITIONS
    }
    lossy = [c for c in CONDITIONS if c != "0%"]
    goals = {
        "beats silence at every loss rate": all(
            summary[c]["ours"]["median"] > summary[c]["silence"]["median"] for c in lossy
        ),
        "beats repeat at every loss rate": all(
            summary[c]["ours"]["median"] > summary[c]["repeat"]["median"] for c in lossy
        ),
        "margin over silence at 5% (goal 0.5)": round(
            summary["5%"]["ours"]["median"] - summary["5%"]["silence"]["median"], 3
        ),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "plc_pesq.json").write_text(
        json.dumps(
            {
                "what": "PESQ-NB (P.862, pypi pesq) of 16 s espeak-ng speech through G.711 + loss, "
                "5 seeds per condition",
                "seconds": round(time.perf_counter() - started, 1),
                "goals": goals,
                "results": summary,
            },
            indent=2,
        )
    )
    _plot(summary)

    for cname, s in summary.items():
        print(
            f"{cname:>11}: "
            + "  ".join(f"{m} {s[m]['median']:.2f} [{s[m]['min']:.2f}-{s[m]['max']:.2f}]" for m in METHODS)
        )
    print("goals:", goals)
    # What holds (the goals that do not are in the JSON and the report).
    assert summary["0%"]["ours"]["median"] == pytest.approx(summary["0%"]["silence"]["median"], abs=0.01)
    for cname in lossy:
        assert summary[cname]["ours"]["median"] > summary[cname]["silence"]["median"], cname
        assert summary[cname]["ours"]["median"] > summary[cname]["appendix-I"]["median"] - 0.02, cname
    for cname in ("3%", "5%", "10%"):
        assert summary[cname]["ours"]["median"] > summary[cname]["repeat"]["median"], cname
    assert goals["margin over silence at 5% (goal 0.5)"] >= 0.5


def _plot(summary: dict) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    styles = {
        "ours": ("tab:green", "o"),
        "ours+jitter": ("tab:olive", "s"),
        "appendix-I": ("tab:purple", "D"),
        "silence": ("tab:red", "v"),
        "repeat": ("tab:blue", "^"),
    }
    for i, method in enumerate(METHODS):
        med = np.array([summary[c][method]["median"] for c in names])
        lo = med - np.array([summary[c][method]["min"] for c in names])
        hi = np.array([summary[c][method]["max"] for c in names]) - med
        color, marker = styles[method]
        ax.errorbar(
            x + (i - 2) * 0.06, med, yerr=[lo, hi], label=method, color=color, marker=marker, capsize=3
        )
    ax.set_xticks(x, names)
    ax.set_xlabel("packet loss (20 ms G.711 frames)")
    ax.set_ylabel("PESQ MOS-LQO (narrowband)")
    ax.set_title("Concealment quality: median and min-max of 5 seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "plc_pesq.png", dpi=120)
    plt.close(fig)
