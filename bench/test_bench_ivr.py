"""IVR flow machine throughput: is pure-Python flow stepping a bottleneck?

The goal is 2,000 concurrent IVR sessions. Here 10,000 sessions are alive at
once and advance together, one event each per pass, through the demo main
IVR: welcome (barge-in digit), language typed ahead, CRM lookup answered,
main menu prompt, "2", support queue, answered. That is 7 events and about
45 effects per call. There is no baseline implementation to compare with,
so the groups are marked "absolute" and the result to read is
``extra_info["events_per_s"]`` (and ``calls_per_s``).

    .venv/bin/python -m pytest -q bench/test_bench_ivr.py -p no:cacheprovider
"""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from orchestrator.ivr import Enqueue, FlowEnded, FlowRegistry, load_flows

IVR_DIR = Path(__file__).resolve().parent.parent / "ivr"
SESSIONS = 10_000
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Europe/London")).timestamp()


def _demo_registry() -> FlowRegistry:
    spec = importlib.util.spec_from_file_location("ivr_build_prompts", IVR_DIR / "build_prompts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_prompts()
    return FlowRegistry(load_flows(IVR_DIR))


def _walk_all(registry: FlowRegistry) -> tuple[int, int, list]:
    sessions = [registry.start("main") for _ in range(SESSIONS)]
    events = effects = 0
    last = []
    for i, s in enumerate(sessions):
        effects += len(s.call_started({"caller_id": f"+44{i:09d}"}, now=NOW))
    steps = (
        lambda s: s.digit("1", now=NOW),  # barge-in: English, typed ahead
        lambda s: s.lookup_result({"name": "Ada", "vip": False}, s.request_id, now=NOW),
        lambda s: s.playback_done(s.play_id, now=NOW),  # main menu prompt ends
        lambda s: s.digit("2", now=NOW),  # support
        lambda s: s.queue_result("answered", now=NOW),
    )
    events += SESSIONS
    for step in steps:
        for s in sessions:
            out = step(s)
            effects += len(out)
            last = out
        events += SESSIONS
    return events, effects, [sessions, last]


def test_bench_flow_steps_10k_sessions(benchmark):
    registry = _demo_registry()
    benchmark.group = "ivr-10k-concurrent-sessions (absolute, no baseline)"
    events, effects, (sessions, last) = benchmark.pedantic(
        _walk_all, args=(registry,), rounds=3, iterations=1
    )
    assert all(s.finished and s.outcome == "answered" for s in sessions)
    assert isinstance(last[-1], FlowEnded) and last[-1].outcome == "answered"
    assert all(
        s.vars["queue"] == "support" and s.vars["queue_skills"] == ("support", "lang_en") for s in sessions
    )
    assert events == 6 * SESSIONS
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        sessions=SESSIONS,
        events=events,
        effects=effects,
        events_per_s=round(events / median),
        calls_per_s=round(SESSIONS / median),
    )


def test_bench_support_call_enqueue_effects(benchmark):
    """One call's path to the support queue, checked for the Enqueue it must produce."""
    registry = _demo_registry()
    benchmark.group = "ivr-one-call (absolute, no baseline)"

    def one_call():
        s = registry.start("main")
        s.call_started({"caller_id": "+441"}, now=NOW)
        s.digit("1", now=NOW)
        s.lookup_failed("timeout", now=NOW)
        s.playback_done(now=NOW)
        return s.digit("2", now=NOW)

    out = benchmark(one_call)
    enq = [e for e in out if isinstance(e, Enqueue)]
    assert len(enq) == 1 and enq[0].queue == "support" and enq[0].skills == ("support", "lang_en")
    benchmark.extra_info["events"] = 5


def test_bench_reload_demo_flows(benchmark):
    """Cost of a hot reload (SIGHUP / ivr.reload): read, compile and lint-check ivr/*.yaml."""
    registry = _demo_registry()
    benchmark.group = "ivr-reload (absolute, no baseline)"
    result = benchmark.pedantic(registry.reload, args=(IVR_DIR,), rounds=5, iterations=1)
    assert result.ok and set(registry.flows) == {"main", "after_hours", "callback", "survey"}
