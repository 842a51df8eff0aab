"""Engine capacity, one point per kind of call, for `pytest bench` (bench/capacity.py does the work).

Each benchmark is one measurement window of ``HOTLINE_CAPACITY_CALLS``
concurrent calls (default 200; transcoded calls default 40) of one kind: the
engine on CPU 0, the generator on CPU 1. It asserts that the calls really
carried media (packets counted on both sides, recordings written,
and no recorder overruns) and puts every figure in ``extra_info``; loss is
recorded, not asserted, for the kinds whose packets the engine makes (on a
loaded machine their ticks run late). The curves
(100 to 2,000 calls, repeated, with fitted lines) and the report come from
``hotline bench capacity``; this file is the quick check that each kind works.

    .venv/bin/python -m pytest -q bench/test_bench_capacity.py -p no:cacheprovider -s
"""

from __future__ import annotations

import os
import shutil

import pytest

from bench.capacity import LOSS_LIMIT, run
from bench.relaybench import ROOT

CALLS = int(os.environ.get("HOTLINE_CAPACITY_CALLS", "200"))
CALLS_TRANSCODED = int(os.environ.get("HOTLINE_CAPACITY_TRANSCODED", "40"))

pytestmark = pytest.mark.skipif(
    not any(ROOT.glob("build/*/rtpload")) or (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None,
    reason="needs rtpload (make build), taskset and 2 CPUs")


@pytest.mark.parametrize("kind", ["relay", "record", "transcode", "conference", "ivr"])
def test_capacity_point(benchmark, kind):
    calls = CALLS_TRANSCODED if kind == "transcode" else CALLS
    benchmark.group = f"capacity: {kind} (absolute, one window)"
    r = benchmark.pedantic(run, args=(kind, calls), kwargs={"duration": 6.0, "warmup": 2.0}, rounds=1,
                           iterations=1)
    benchmark.extra_info.update(r)
    print(f"\n{kind} {calls}: {100 * r['cpu_share']:.1f}% of a core, {r['rss_bytes_per_call'] / 1024:.0f} KiB/call, "
          f"loss {100 * r['loss_ratio']:.3f}% ({r['loss_basis']})")
    # The media really flowed: the generator offered its load and the engine received it.
    assert r["offered_ratio"] > 0.95
    assert r["packets_in_per_s"] >= 0.95 * 50 * r["endpoints"]
    assert r["ticks"] > 0
    if kind in ("relay", "record"):
        assert r["generator_received"] >= (1 - LOSS_LIMIT) * r["generator_sent"]
    if kind == "record":
        # two channels of 16-bit PCM at 8 kHz for every call, for at least the measured window
        assert r["recorder_bytes_written"] >= calls * 32_000 * r["window_s"] * 0.9
        assert r["recorder_overruns"] == 0
    if kind == "transcode":
        # the Opus legs inside the engine really exchanged packets, every 20 ms each
        assert r["internal_packets_received"] >= 0.5 * 50 * r["endpoints"] * r["window_s"]
    if kind in ("transcode", "conference", "ivr"):
        # the engine makes these packets itself, one per leg per 20 ms tick (fewer only when the machine is
        # so loaded that ticks run late: the loss figure says how many)
        assert r["packets_out_per_s"] > 0.5 * 50 * r["endpoints"]
