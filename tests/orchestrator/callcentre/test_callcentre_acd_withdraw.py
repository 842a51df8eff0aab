"""``Acd.call_withdrawn``: the small policy input the IVR runner needs.

An IVR queue node may give the call its own ``max_wait`` ("after two minutes,
offer a callback"). When it runs out the caller is still on the line and goes
back to the flow: the call must leave the ACD without counting as an abandon
(which would spoil the abandon rate and the service level) - a ``CallExited``
with destination ``ivr``, offers cancelled, agents freed.
"""

from __future__ import annotations

import pytest

from orchestrator.acd import Acd, AgentConfig, ConflictError, QueueConfig
from orchestrator.acd import effects as fx
from orchestrator.acd import events as ev
from orchestrator.metrics import queue_metrics


def make() -> Acd:
    return Acd([QueueConfig(name="q", ring_timeout=10, rona_break=False)],
               [AgentConfig(id="a1", queues={"q": 0}), AgentConfig(id="a2", queues={"q": 0})])


def test_a_waiting_call_is_withdrawn_as_an_exit_not_an_abandon():
    acd = make()
    out = acd.call_arrived("c1", "q", 100.0, caller="+1")
    assert [type(o) for o in out] == [ev.CallQueued, fx.StartHoldMusic]
    out = acd.call_withdrawn("c1", 130.0)
    assert out == [ev.CallExited(at=130.0, call="c1", queue="q", reason="ivr-timeout", destination="ivr",
                                 wait=30.0)]
    assert acd.calls() == [] and acd.queue_snapshot("q", 130.0).waiting == 0
    m = queue_metrics([ev.CallQueued(at=100.0, call="c1", queue="q", priority=0, caller="+1", position=1, ewt=None),
                       *out])["q"]
    assert (m.abandoned, m.exited, m.abandon_rate) == (0, 1, 0.0)


def test_a_ringing_call_is_withdrawn_and_the_agent_freed_for_the_next_caller():
    acd = make()
    acd.agent_login("a1", "d1", 0.0)
    acd.device_registered("d1", 0.0)
    out = acd.call_arrived("c1", "q", 10.0)
    offer = next(o for o in out if isinstance(o, fx.Offer))
    acd.call_arrived("c2", "q", 11.0)
    out = acd.call_withdrawn("c1", 12.0, reason="flow")
    kinds = [type(o).__name__ for o in out]
    assert kinds[:2] == ["CallOfferEnded", "CancelOffer"]
    assert out[0].reason == "withdrawn" and out[1].offer == offer.offer
    exited = next(o for o in out if isinstance(o, ev.CallExited))
    assert (exited.reason, exited.destination, exited.wait) == ("flow", "ivr", 2.0)
    # the freed agent is offered the next waiting caller at once
    nxt = [o for o in out if isinstance(o, fx.Offer)]
    assert len(nxt) == 1 and nxt[0].call == "c2" and nxt[0].agent == "a1"
    # a late answer to the withdrawn offer is refused with the reason
    refused = acd.offer_answered(offer.offer, 12.5)
    assert refused == [fx.RefuseAnswer(offer=offer.offer, agent="a1", device="d1", reason="withdrawn")]


def test_connected_calls_and_callbacks_cannot_be_withdrawn_and_unknown_calls_are_ignored():
    acd = make()
    acd.agent_login("a1", "d1", 0.0)
    acd.device_registered("d1", 0.0)
    offer = next(o for o in acd.call_arrived("c1", "q", 1.0) if isinstance(o, fx.Offer))
    acd.offer_answered(offer.offer, 2.0)
    with pytest.raises(ConflictError, match="connected"):
        acd.call_withdrawn("c1", 3.0)
    acd.call_arrived("c2", "q", 4.0)
    acd.callback_requested("c2", "+15550100", 5.0)
    with pytest.raises(ConflictError, match="waiting caller"):
        acd.call_withdrawn("c2", 6.0)
    before = acd.statistics().ignored_inputs
    assert acd.call_withdrawn("nope", 7.0) == []
    assert acd.statistics().ignored_inputs == before + 1
    with pytest.raises(ValueError, match="reason"):
        acd.call_withdrawn("c2", 8.0, reason="")
