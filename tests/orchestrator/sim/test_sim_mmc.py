"""The simulator runs the real policy; on an M/M/c queue its measured service level is Erlang C's.

M/M/2 at 50 % load (1 erlang, AHT 100 s, no wrap-up, immediate answers, no
abandonment), 36,000 calls, a 1,000 s warm-up discarded, fixed seed. The
service level comes from orchestrator.metrics over the ACD's own events.
Over seeds 1-6 with 30,000 calls the difference to Erlang C had a standard
deviation of 0.006 at every threshold (no bias), so the 2-point bound is
over 3 standard deviations (this seed: -0.4, -0.6, -0.7 points at 0, 20,
60 s). The mean wait is noisier (a few long busy periods weigh a lot): it is
checked within 15 % (this seed: +8.8 %).
"""

from __future__ import annotations

import pytest

from orchestrator import metrics
from orchestrator import plan as erlang
from orchestrator.acd import AgentConfig, EscalationStep, QueueConfig
from orchestrator.acd import events as ev
from orchestrator.sim import Arrivals, Simulation, constant, exponential

AGENTS, TRAFFIC, AHT, CALLS = 2, 1.0, 100.0, 36_000


@pytest.fixture(scope="module")
def mm2():
    rate = TRAFFIC / AHT * 3600
    sim = Simulation([QueueConfig(name="q", ring_timeout=30)],
                     [AgentConfig(id=f"a{i}", queues={"q": 0}) for i in range(AGENTS)],
                     [Arrivals(queue="q", rate=rate)], talk=exponential(AHT), seed=1)
    return sim.run(CALLS / rate * 3600)


def test_mmc_service_level_is_within_2_points_of_erlang_c(mm2):
    records = [r for r in metrics.call_records(mm2.events) if r.queued_at >= 1000 and r.outcome == "answered"]
    assert len(records) > 0.95 * CALLS
    waits = [r.wait for r in records]
    for threshold in (0.0, 20.0, 60.0):
        measured = metrics.service_level(waits, [], threshold=threshold)
        predicted = erlang.service_level(TRAFFIC, AGENTS, AHT, threshold)
        assert abs(measured - predicted) <= 0.02, (threshold, measured, predicted)
    # the same through queue_metrics, as reports compute it
    q = metrics.queue_metrics(mm2.events, start=1000)["q"]
    assert abs(q.service_level - erlang.service_level(TRAFFIC, AGENTS, AHT, 20.0)) <= 0.02
    assert q.asa == pytest.approx(erlang.average_speed_of_answer(TRAFFIC, AGENTS, AHT), rel=0.15)


def test_mmc_occupancy_is_the_load(mm2):
    occupancy = [a.occupancy for a in mm2.agent_metrics(start=1000).values()]
    assert len(occupancy) == AGENTS
    assert sum(occupancy) / AGENTS == pytest.approx(TRAFFIC / AGENTS, abs=0.02)


def _small(seed, **kw):
    queue = QueueConfig(name="q", wrapup=10, ring_timeout=15, max_wait=600,
                        escalation=(EscalationStep.offer_callback(60),), callback_retry=30)
    agents = [AgentConfig(id=f"a{i}", queues={"q": 0}) for i in range(3)]
    sim = Simulation([queue], agents, [Arrivals(queue="q", rate=[(0, 80), (1800, 10)])], talk=exponential(150),
                     patience=exponential(120), answer_delay=constant(2.0), no_answer=0.15, callback_accept=0.5,
                     callback_reach=0.8, seed=seed, **kw)
    return sim.run(3600)


def test_same_seed_same_events_and_every_call_is_accounted_for():
    a, b = _small(5), _small(5)
    assert a.events == b.events and a.arrivals == b.arrivals
    assert _small(6).events != a.events
    records = metrics.call_records(a.events)
    outcomes = {r.outcome for r in records}
    assert {"answered", "abandoned"} <= outcomes
    queued = {e.call for e in a.events if isinstance(e, ev.CallQueued)}
    assert len(queued) == a.arrivals
    m = a.queue_metrics()["q"]
    assert m.callbacks_requested > 0 and m.callbacks_answered > 0
    # a caller who took a callback is never counted as an abandon
    callbacks = {e.call for e in a.events if isinstance(e, ev.CallbackRequested)}
    assert not callbacks & {e.call for e in a.events if isinstance(e, ev.CallAbandoned)}
    ronas = [e for e in a.events if isinstance(e, ev.CallOfferEnded) and e.reason == "timeout"]
    assert ronas and all(r.ring == 15 for r in ronas)


def test_simulation_arguments_are_checked():
    with pytest.raises(ValueError, match="no_answer"):
        Simulation([QueueConfig(name="q")], [], [Arrivals(queue="q", rate=1)], talk=constant(1), no_answer=2)
    with pytest.raises(ValueError, match="arrivals"):
        Simulation([QueueConfig(name="q")], [], [], talk=constant(1))
    with pytest.raises(ValueError, match="rate"):
        Arrivals(queue="q", rate=[(10, 5), (5, 5)]).segments()
