"""No full scans: the agent/call records a routing decision looks at do not grow with the centre.

The policy counts every agent or call record a decision inspects
(``Acd.inspections``). Passing it as the ``clock`` of the scenario's timed
decision gives the count for exactly that decision. A centre of 100 agents
and 10 waiting calls and one of 10,000 agents, 50 skills and 1,000 waiting
calls must show the same counts - while the naive reference, which answers
the same question by scanning, looks at every agent or every waiting call.
"""

from __future__ import annotations

import pytest

from orchestrator.acd import effects as fx
from orchestrator.acd import naive
from orchestrator.sim.scenarios import Center

DECISIONS = 300


@pytest.fixture(scope="module")
def centres():
    return {"small": Center(agents=100, skills=10, waiting=10, seed=3),
            "large": Center(agents=10_000, skills=50, waiting=1_000, seed=3)}


def _inspections(centre: Center, decide) -> list[int]:
    counter = lambda: centre.acd.inspections
    return [decide(counter)[1] for _ in range(DECISIONS)]


def test_centres_have_the_intended_shape(centres):
    large = centres["large"].acd.statistics()
    assert (large.calls_waiting, large.calls_connected, large.agents_logged_in, large.agents_routable) == \
        (1000, 5000, 10_000, 5000)
    small = centres["small"].acd.statistics()
    assert (small.calls_waiting, small.agents_logged_in) == (10, 100)


def test_agent_available_decision_inspects_one_head_per_queue_of_the_agent(centres):
    per_size = {name: _inspections(c, c.agent_frees_up) for name, c in centres.items()}
    # 3 skills per agent -> at most 3 bucket heads, whatever the size
    assert max(per_size["small"]) <= 3 and max(per_size["large"]) <= 3
    assert max(per_size["large"]) == max(per_size["small"])
    assert min(per_size["large"]) >= 1


def test_call_arrival_decision_inspects_only_the_agent_it_picks(centres):
    per_size = {name: _inspections(c, c.call_arrives) for name, c in centres.items()}
    assert set(per_size["small"]) == {1} and set(per_size["large"]) == {1}


def test_large_centre_decisions_agree_with_the_naive_reference(centres):
    large = centres["large"]
    acd = large.acd
    for _ in range(20):
        agent = large.sample_hot_agent()
        expected = naive.call_for(acd, agent)
        out, _ = large.agent_frees_up()
        offer = next(o for o in out if isinstance(o, fx.Offer))
        assert (offer.agent, offer.call) == (agent, expected)
    for i in range(20):
        queue = large.sample_cold_queue()
        large.now += 0.001
        expected = naive.agents_for(acd, queue, {queue: 1}, None, large.now)
        out = acd.call_arrived(f"probe{i}", queue, large.now)
        assert [o.agent for o in out if isinstance(o, fx.Offer)] == expected
        acd.call_abandoned(f"probe{i}", large.now)
