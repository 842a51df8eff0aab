"""Routing policy: agent states, strategies, offers (RONA, reject, ring-all races),
wrap-up, priorities, cross-queue fairness, queue limits, escalation, callbacks.

Every test drives the public inputs with explicit ``now`` and asserts on the
exact decisions and event records that come out.
"""

from __future__ import annotations

import random

import pytest
from acd_harness import Harness, agent, of, offered_agents, one_offer, queue

from orchestrator.acd import (
    AgentConfig,
    CallbackMode,
    ConflictError,
    Destination,
    EscalationStep,
    JoinRule,
    NotFoundError,
    QueueConfig,
    Strategy,
)
from orchestrator.acd import effects as fx
from orchestrator.acd import events as ev

# ---------------------------------------------------------------------------- agent states


def test_login_needs_a_registered_device_to_be_available():
    h = Harness([queue()], [agent("a")])
    out = h.agent_login("a", "d1")
    assert [(e.state, e.previous) for e in of(out, ev.AgentState)] == [("unregistered", "offline")]
    out = h.call_arrived("c1", "q")
    assert offered_agents(out) == []
    out = h.at(1).device_registered("d1")
    # the agent becomes routable and takes the waiting call at once
    assert offered_agents(out) == ["a"]
    assert h.state("a") == "ringing"


def test_registered_before_login_is_available_at_login():
    h = Harness([queue()], [agent("a")])
    h.device_registered("d1")
    out = h.agent_login("a", "d1")
    assert [(e.state, e.previous) for e in of(out, ev.AgentState)] == [("available", "offline")]


def test_unregistered_device_is_not_offered_and_busy_device_is_not_offered():
    h = Harness([queue()], [agent("a"), agent("b")])
    h.login("a", "b")
    h.device_unregistered("dev-a")
    h.device_busy("dev-b")
    assert h.state("a") == "unregistered" and h.state("b") == "busy"
    assert offered_agents(h.call_arrived("c1", "q")) == []
    out = h.at(5).device_idle("dev-b")
    assert offered_agents(out) == ["b"]


def test_break_with_reason_and_back():
    h = Harness([queue()], [agent("a")])
    h.login("a")
    out = h.set_state("a", "break", reason="lunch")
    (st,) = of(out, ev.AgentState)
    assert (st.state, st.reason) == ("break", "lunch")
    assert h.acd.agent_snapshot("a").reason == "lunch"
    assert offered_agents(h.call_arrived("c1", "q")) == []
    assert offered_agents(h.at(3).set_state("a", "available")) == ["a"]


def test_one_device_per_login():
    h = Harness([queue()], [agent("a"), agent("b"), agent("c", devices=("desk-c",))])
    h.agent_login("a", "d1")
    with pytest.raises(ConflictError, match="in use"):
        h.agent_login("b", "d1")
    with pytest.raises(ConflictError, match="already logged in"):
        h.agent_login("a", "d2")
    with pytest.raises(ConflictError, match="may not log in"):
        h.agent_login("c", "d1")
    with pytest.raises(NotFoundError):
        h.agent_login("nobody", "d9")
    h.agent_logout("a")
    h.agent_login("b", "d1")  # the device is free again
    assert h.acd.agent_snapshot("b").device == "d1"


def test_logout_while_ringing_withdraws_the_offer_and_keeps_the_call():
    h = Harness([queue()], [agent("a"), agent("b")])
    h.login("a")
    offer = one_offer(h.call_arrived("c1", "q"))
    out = h.at(2).agent_logout("a")
    assert of(out, fx.CancelOffer)[0].offer == offer.offer
    assert of(out, ev.CallOfferEnded)[0].reason == "agent-unavailable"
    assert h.state("a") == "offline"
    assert h.acd.call_snapshot("c1").state == "waiting"
    h.at(3).login("b")
    assert offered_agents(h.last) == ["b"]


def test_logout_on_a_call_is_a_conflict_and_break_applies_after_wrapup():
    h = Harness([queue(wrapup=10)], [agent("a")])
    h.login("a")
    h.offer_answered(one_offer(h.call_arrived("c1", "q")).offer)
    with pytest.raises(ConflictError, match="on_call"):
        h.agent_logout("a")
    h.at(5).set_state("a", "break", reason="coffee")
    assert h.state("a") == "on_call"
    h.at(20).call_ended("c1")
    assert h.state("a") == "wrap_up"
    h.tick_to(30)
    assert h.state("a") == "break"


def test_device_lost_while_ringing_withdraws_the_offer():
    h = Harness([queue()], [agent("a")])
    h.login("a")
    one_offer(h.call_arrived("c1", "q"))
    out = h.at(1).device_unregistered("dev-a")
    assert of(out, ev.CallOfferEnded)[0].reason == "agent-unavailable"
    assert h.state("a") == "unregistered"
    assert h.acd.call_snapshot("c1").position == 1


# ---------------------------------------------------------------------------- strategies


def _free_all(h, agents, t0=1.0):
    """Log in agents at distinct times so idle order = login order."""
    for i, a in enumerate(agents):
        h.at(t0 + i).login(a)


def _serve(h, call, t):
    """Arrive, answer whoever is offered, end: returns the agent who took it."""
    out = h.at(t).call_arrived(call, "q")
    offer = one_offer(out)
    h.at(t + 1).offer_answered(offer.offer)
    h.at(t + 2).call_ended(call)
    return offer.agent


def test_longest_idle_picks_the_agent_idle_longest():
    h = Harness([queue(strategy="longest-idle")], [agent(x) for x in "abc"])
    _free_all(h, "abc")
    assert _serve(h, "c1", 10) == "a"
    assert _serve(h, "c2", 20) == "b"  # a is idle since 12 now, b since 2
    assert _serve(h, "c3", 30) == "c"
    assert _serve(h, "c4", 40) == "a"


def test_round_robin_continues_after_the_last_one_rung():
    h = Harness([queue(strategy="round-robin")], [agent(x) for x in "abcd"])
    _free_all(h, "abcd")
    got = [_serve(h, f"c{i}", 10 * (i + 1)) for i in range(6)]
    assert got == ["a", "b", "c", "d", "a", "b"]


def test_round_robin_skips_busy_agents():
    h = Harness([queue(strategy="round-robin")], [agent(x) for x in "abc"])
    _free_all(h, "abc")
    assert _serve(h, "c1", 10) == "a"
    h.at(15).set_state("b", "break")
    assert _serve(h, "c2", 20) == "c"
    assert _serve(h, "c3", 30) == "a"


def test_sequential_always_starts_from_the_first_in_order():
    h = Harness([queue(strategy="sequential")],
                [agent("a", {"q": 1}), agent("b", {"q": 0}), agent("c", {"q": 0})])
    _free_all(h, "abc")
    assert _serve(h, "c1", 10) == "b"
    assert _serve(h, "c2", 20) == "b"
    # b busy: next in order is c, then a (penalty 1)
    offer_b = one_offer(h.at(30).call_arrived("c3", "q"))
    assert offer_b.agent == "b"
    assert offered_agents(h.at(31).call_arrived("c4", "q")) == ["c"]
    assert offered_agents(h.at(32).call_arrived("c5", "q")) == ["a"]


def test_fewest_calls_and_least_talk_time():
    h = Harness([queue(strategy="fewest-calls")], [agent(x) for x in "ab"])
    _free_all(h, "ab")
    assert _serve(h, "c1", 10) == "a"   # both 0 calls: longest idle breaks the tie
    assert _serve(h, "c2", 20) == "b"
    assert _serve(h, "c3", 30) == "a"
    h2 = Harness([queue(strategy="least-talk-time")], [agent(x) for x in "ab"])
    _free_all(h2, "ab")
    o = one_offer(h2.at(10).call_arrived("c1", "q"))
    assert o.agent == "a"
    h2.at(11).offer_answered(o.offer)
    h2.at(300).call_ended("c1")          # a talked 289 s
    o = one_offer(h2.at(310).call_arrived("c2", "q"))
    assert o.agent == "b"
    h2.at(311).offer_answered(o.offer)
    h2.at(320).call_ended("c2")          # b talked 9 s
    assert offered_agents(h2.at(400).call_arrived("c3", "q")) == ["b"]


def test_random_is_seeded_and_covers_only_the_lowest_penalty_tier():
    agents = [agent(f"a{i}") for i in range(5)] + [agent("z", {"q": 3})]
    seen = set()
    for seed in range(40):
        h = Harness([queue(strategy="random")], agents, rng=random.Random(seed))
        _free_all(h, [a.id for a in agents])
        seen.add(offered_agents(h.at(50).call_arrived("c", "q"))[0])
    assert seen == {f"a{i}" for i in range(5)}
    picks = []
    for _ in range(2):
        h = Harness([queue(strategy="random")], agents, rng=random.Random(7))
        _free_all(h, [a.id for a in agents])
        picks.append([offered_agents(h.at(50 + i).call_arrived(f"c{i}", "q"))[0] for i in range(5)])
    assert picks[0] == picks[1] and sorted(picks[0]) == [f"a{i}" for i in range(5)]


def test_skills_strategy_prefers_proficiency_and_honours_minimums():
    q = queue(strategy="skills", skills={"billing": 2})
    h = Harness([q], [agent("novice", skills={"billing": 1}), agent("mid", skills={"billing": 3}),
                      agent("expert", skills={"billing": 5}), agent("none")])
    _free_all(h, ["novice", "mid", "expert", "none"])
    assert _serve(h, "c1", 10) == "expert"
    h.at(20).set_state("expert", "break")
    assert _serve(h, "c2", 30) == "mid"
    h.at(40).set_state("mid", "break")
    # novice (1 < 2) and none (no skill) are not eligible: the call waits
    assert offered_agents(h.at(50).call_arrived("c3", "q")) == []
    assert h.acd.call_snapshot("c3").position == 1


def test_call_level_skills_are_added_to_the_queue_requirement():
    h = Harness([queue(skills={"support": 1})],
                [agent("en", skills={"support": 3}), agent("fr", skills={"support": 2, "french": 4})])
    _free_all(h, ["en", "fr"])
    assert offered_agents(h.at(10).call_arrived("c1", "q", skills={"french": 3})) == ["fr"]
    assert offered_agents(h.at(11).call_arrived("c2", "q", skills={"french": 3})) == []
    assert offered_agents(h.at(12).call_arrived("c3", "q")) == ["en"]


def test_ring_all_first_answer_wins_and_late_answers_are_refused():
    h = Harness([queue(strategy="ring-all")], [agent(x) for x in "abc"])
    _free_all(h, "abc")
    out = h.at(10).call_arrived("c1", "q")
    offers = {o.agent: o.offer for o in of(out, fx.Offer)}
    assert sorted(offers) == ["a", "b", "c"]
    assert all(o.ring_all for o in of(out, fx.Offer))
    out = h.at(12).offer_answered(offers["b"])
    assert [b.agent for b in of(out, fx.Bridge)] == ["b"]
    cancelled = of(out, fx.CancelOffer)
    assert sorted(c.agent for c in cancelled) == ["a", "c"]
    assert {c.reason for c in cancelled} == {"answered-elsewhere"}
    # a and c answered at the same instant as b: refused, with the reason
    out = h.at(12).offer_answered(offers["a"])
    assert out == [fx.RefuseAnswer(offer=offers["a"], agent="a", device="dev-a", reason="answered-elsewhere")]
    out = h.at(12).offer_answered(offers["b"])  # a duplicate 200 OK from the winner
    assert of(out, fx.RefuseAnswer)[0].reason == "already-answered"
    assert h.state("a") == "available" and h.state("c") == "available" and h.state("b") == "on_call"
    out = h.at(13).offer_answered(99999)
    assert out[0].reason == "unknown-offer"


def test_ring_all_max_and_penalty_tier():
    h = Harness([queue(strategy="ring-all", ring_all_max=2)],
                [agent("a"), agent("b"), agent("c"), agent("z", {"q": 1})])
    _free_all(h, "abcz")
    assert offered_agents(h.at(10).call_arrived("c1", "q")) == ["a", "b"]
    assert offered_agents(h.at(11).call_arrived("c2", "q")) == ["c"]
    assert offered_agents(h.at(12).call_arrived("c3", "q")) == ["z"]


def test_penalty_tiers_with_longest_idle():
    h = Harness([queue()], [agent("backup", {"q": 2}), agent("main", {"q": 0})])
    _free_all(h, ["backup", "main"])
    assert offered_agents(h.at(10).call_arrived("c1", "q")) == ["main"]
    assert offered_agents(h.at(11).call_arrived("c2", "q")) == ["backup"]


def test_queue_max_penalty_excludes_and_escalation_widens_it():
    q = queue(max_penalty=0, escalation=(EscalationStep.widen(30, max_penalty=5),))
    h = Harness([q], [agent("backup", {"q": 2})])
    h.login("backup")
    assert offered_agents(h.at(1).call_arrived("c1", "q")) == []
    out = h.tick_to(31)
    assert [e.action for e in of(out, ev.CallEscalated)] == ["widen"]
    assert offered_agents(out) == ["backup"]


# ---------------------------------------------------------------------------- offers: RONA, reject, busy


def test_rona_pauses_the_agent_and_the_caller_keeps_their_place():
    h = Harness([queue(ring_timeout=15)], [agent("a"), agent("b")])
    h.at(0).login("a")
    first = one_offer(h.at(1).call_arrived("c1", "q"))
    h.at(2).call_arrived("c2", "q")
    h.at(3).call_arrived("c3", "q")
    assert h.acd.next_deadline() == 16
    out = h.tick_to(16)
    ended = of(out, ev.CallOfferEnded)[0]
    assert (ended.offer, ended.reason, ended.ring) == (first.offer, "timeout", 15)
    assert of(out, fx.CancelOffer)[0].reason == "timeout"
    st = [e for e in of(out, ev.AgentState) if e.agent == "a"][-1]
    assert (st.state, st.reason) == ("break", "rona")
    # c1 is back at the head, ahead of c2 and c3
    assert h.acd.call_snapshot("c1").position == 1
    assert h.acd.call_snapshot("c2").position == 2
    assert offered_agents(h.at(20).login("b") or h.last) == ["b"]
    assert of(h.last, fx.Offer)[0].call == "c1"


def test_offer_timeout_input_and_answer_after_timeout_is_refused():
    h = Harness([queue(rona_break=False)], [agent("a")])
    h.login("a")
    o = one_offer(h.at(1).call_arrived("c1", "q"))
    h.at(5).offer_timeout(o.offer)
    out = h.at(6).offer_answered(o.offer)
    assert out[0].reason == "timeout"
    # rona_break=False: the agent is available again and gets the call back
    assert h.state("a") == "ringing"


def test_reject_and_busy_delays():
    h = Harness([queue(reject_delay=30, busy_delay=60)], [agent("a"), agent("b")])
    h.login("a")
    o = one_offer(h.at(1).call_arrived("c1", "q"))
    out = h.at(2).offer_rejected(o.offer)
    assert of(out, ev.CallOfferEnded)[0].reason == "rejected"
    assert of(out, fx.CancelOffer) == []        # the device already declined
    assert h.state("a") == "available"          # still available, but not offered before 32
    assert h.acd.agent_snapshot("a").routable is False
    assert h.acd.next_deadline() == 32
    out = h.tick_to(32)
    o = one_offer(out)
    assert (o.agent, o.call) == ("a", "c1")
    out = h.at(33).offer_rejected(o.offer, busy=True)
    assert of(out, ev.CallOfferEnded)[0].reason == "busy"
    assert h.acd.next_deadline() == 93


# ---------------------------------------------------------------------------- wrap-up


def test_wrapup_per_queue_and_per_agent_and_early_done():
    h = Harness([queue(wrapup=30)], [agent("a"), agent("b", wrapup=5)])
    h.login("a", "b")
    for call, t in (("c1", 1), ("c2", 2)):
        h.at(t + 1).offer_answered(one_offer(h.at(t).call_arrived(call, "q")).offer)
    h.at(10).call_ended("c1")
    h.at(10).call_ended("c2")
    assert h.state("a") == "wrap_up" and h.state("b") == "wrap_up"
    out = h.tick_to(15)
    assert [(e.agent, e.wrapup) for e in of(out, ev.CallWrapupEnded)] == [("b", 5)]
    out = h.at(20).wrapup_done("a")
    assert [(e.agent, e.wrapup) for e in of(out, ev.CallWrapupEnded)] == [("a", 10)]
    assert h.state("a") == "available"
    assert h.at(21).wrapup_done("a") == []
    assert h.acd.statistics().ignored_inputs == 1


def test_hold_is_excluded_from_talk():
    h = Harness([queue()], [agent("a")])
    h.login("a")
    offer = one_offer(h.at(0).call_arrived("c1", "q"))
    h.at(1).offer_answered(offer.offer)
    h.at(10).call_held("c1")
    h.at(40).call_resumed("c1")
    h.at(50).call_held("c1")
    out = h.at(60).call_ended("c1")
    (end,) = of(out, ev.CallEnded)
    assert (end.talk, end.hold) == (19.0, 40.0)


# ---------------------------------------------------------------------------- priorities and fairness


def test_priority_first_then_arrival_order():
    h = Harness([queue()], [agent("a")])
    h.login("a")
    busy = one_offer(h.at(0).call_arrived("c0", "q"))
    h.offer_answered(busy.offer)
    h.at(1).call_arrived("c1", "q")
    h.at(2).call_arrived("vip", "q", priority=5)
    h.at(3).call_arrived("c2", "q")
    assert [h.acd.call_snapshot(c).position for c in ("vip", "c1", "c2")] == [1, 2, 3]
    served = []
    t = 10
    for _ in range(3):
        h.at(t).call_ended(h.acd.agent_snapshot("a").call)
        o = one_offer(h.last)
        served.append(o.call)
        h.at(t + 1).offer_answered(o.offer)
        t += 10
    assert served == ["vip", "c1", "c2"]


def test_agent_in_several_queues_takes_the_longest_waiting_caller():
    qs = [queue("sales"), queue("support"), queue("billing")]
    h = Harness(qs, [agent("a", ("sales", "support", "billing")), agent("b", ("sales",))])
    h.at(0).call_arrived("s1", "support")
    h.at(1).call_arrived("b1", "billing")
    h.at(2).call_arrived("x1", "sales")
    h.at(3).call_arrived("s2", "support")
    h.at(10).login("a")
    assert of(h.last, fx.Offer)[0].call == "s1"
    h.at(11).offer_answered(of(h.last, fx.Offer)[0].offer)
    h.at(12).call_ended("s1")
    assert of(h.last, fx.Offer)[0].call == "b1"
    # b serves only sales: it takes x1 though s2 waits in support
    h.at(13).login("b")
    assert of(h.last, fx.Offer)[0].call == "x1"


def test_priority_beats_wait_across_queues():
    h = Harness([queue("a"), queue("b")], [agent("x", ("a", "b"))])
    h.at(0).call_arrived("old", "a")
    h.at(5).call_arrived("vip", "b", priority=1)
    h.at(6).login("x")
    assert of(h.last, fx.Offer)[0].call == "vip"


# ---------------------------------------------------------------------------- queue limits and empty rules


def test_max_length_sends_the_next_caller_to_the_full_destination():
    q = queue(max_length=2, on_full=Destination(kind="voicemail", target="q-vm"))
    h = Harness([q], [agent("a")])
    h.call_arrived("c1", "q")
    h.call_arrived("c2", "q")
    out = h.call_arrived("c3", "q")
    (rej,) = of(out, ev.CallRejected)
    assert (rej.reason, rej.destination) == ("full", "voicemail:q-vm")
    assert of(out, fx.Route)[0].destination == "voicemail:q-vm"
    assert of(out, ev.CallQueued) == []
    assert h.acd.calls() == ["c1", "c2"]


def test_max_wait_times_out_to_voicemail_but_not_while_ringing():
    q = queue(max_wait=60, on_timeout=Destination.parse("voicemail:support"), ring_timeout=20, rona_break=True)
    h = Harness([q], [agent("a")])
    h.at(0).call_arrived("c1", "q")
    h.at(50).login("a")
    one_offer(h.last)
    out = h.tick_to(65)   # max wait passed while ringing: nothing yet
    assert of(out, ev.CallExited) == []
    out = h.tick_to(70)   # RONA at 70: back in the queue past its max wait -> out
    (ex,) = of(out, ev.CallExited)
    assert (ex.reason, ex.destination, ex.wait) == ("timeout", "voicemail:support", 70)
    assert h.acd.calls() == []


def test_join_empty_rules():
    no_staff = queue("s", join_empty=JoinRule.NO_STAFFED, on_empty=Destination.parse("voicemail:s"))
    no_login = queue("l", join_empty="no-logged-in")
    h = Harness([no_staff, no_login], [agent("a", ("s", "l"))])
    out = h.call_arrived("c1", "s")
    assert of(out, ev.CallRejected)[0].reason == "empty"
    assert of(h.call_arrived("c2", "l"), ev.CallRejected)[0].destination == "hangup"
    h.login("a")
    h.set_state("a", "break")
    # logged in but on break: "l" lets callers in, "s" does not
    assert of(h.call_arrived("c3", "l"), ev.CallQueued)
    assert of(h.call_arrived("c4", "s"), ev.CallRejected)
    h.set_state("a", "available")
    assert offered_agents(h.last) == ["a"]
    # ringing/on a call still counts as staffed
    assert of(h.call_arrived("c5", "s"), ev.CallQueued)


def test_leave_empty_when_the_last_staffed_agent_goes():
    q = queue(leave_empty="no-staffed", on_empty=Destination.parse("voicemail:q"))
    h = Harness([q], [agent("a"), agent("b")])
    h.login("a", "b")
    h.offer_answered(one_offer(h.call_arrived("c0", "q")).offer)
    h.offer_answered(one_offer(h.call_arrived("c1", "q")).offer)
    h.call_arrived("c2", "q")
    h.call_arrived("c3", "q")
    h.callback_requested("c3", "+15550003")
    h.at(1).set_state("a", "break")     # a's break is pending (on a call): it will take no more calls
    assert h.acd.call_snapshot("c2").state == "waiting"   # b is still staffed
    out = h.at(2).set_state("b", "break")
    (ex,) = of(out, ev.CallExited)
    assert (ex.call, ex.reason, ex.destination, ex.wait) == ("c2", "leave-empty", "voicemail:q", 2)
    assert of(out, fx.Route)[0].destination == "voicemail:q"
    assert h.acd.call_snapshot("c3").callback == "+15550003"  # a callback keeps its place


# ---------------------------------------------------------------------------- escalation and overflow


def test_escalation_widens_skills_over_time():
    q = queue(skills={"billing": 4}, escalation=(EscalationStep.widen(30, skills={"billing": 2}),))
    h = Harness([q], [agent("junior", skills={"billing": 2})])
    h.login("junior")
    h.at(0).call_arrived("c1", "q")
    assert h.acd.next_deadline() == 30
    out = h.tick_to(30)
    (esc,) = of(out, ev.CallEscalated)
    assert (esc.step, esc.action, esc.skills) == (1, "widen", (("billing", 2),))
    assert offered_agents(out) == ["junior"]


def test_escalation_priority_then_overflow_keeps_the_wait():
    support = queue("support", escalation=(EscalationStep.raise_priority(20, by=3),
                                           EscalationStep.overflow(60, "sales")))
    sales = queue("sales")
    h = Harness([support, sales], [agent("s", ("sales",))])
    h.at(0).call_arrived("c1", "support")
    out = h.tick_to(20)
    assert of(out, ev.CallEscalated)[0].priority == 3
    h.at(30).call_arrived("x1", "sales")
    out = h.tick_to(60)
    (ov,) = of(out, ev.CallOverflowed)
    assert (ov.queue, ov.to_queue, ov.wait) == ("support", "sales", 60)
    (qd,) = of(out, ev.CallQueued)
    assert (qd.queue, qd.overflow_from, qd.priority, qd.position) == ("sales", "support", 3, 1)
    h.at(61).login("s")
    o = of(h.last, fx.Offer)[0]
    assert o.call == "c1"
    out = h.at(62).offer_answered(o.offer)
    assert of(out, ev.CallAnswered)[0].wait == 62  # counted from the first queue


def test_escalation_to_voicemail_and_offer_callback():
    q = queue(escalation=(EscalationStep.offer_callback(45), EscalationStep.voicemail(120, "q-box")))
    h = Harness([q], [agent("a")])
    h.at(0).call_arrived("c1", "q")
    h.at(1).call_arrived("c2", "q")
    out = h.tick_to(46)
    opts = of(out, fx.OfferCallbackOption)
    assert [(o.call, o.position) for o in opts] == [("c1", 1), ("c2", 2)]
    h.at(50).callback_requested("c2", "+15550002")
    out = h.tick_to(130)
    (ex,) = of(out, ev.CallExited)
    assert (ex.call, ex.reason, ex.destination) == ("c1", "escalation", "voicemail:q-box")
    assert h.acd.call_snapshot("c2").state == "waiting"  # a callback is not sent to voicemail


def test_overflow_loop_is_cut():
    a = queue("a", max_length=1, on_full=Destination.parse("queue:b"))
    b = queue("b", max_length=1, on_full=Destination.parse("queue:a"))
    h = Harness([a, b], [])
    h.call_arrived("c1", "a")
    h.call_arrived("c2", "b")
    out = h.call_arrived("c3", "a")
    assert len(of(out, ev.CallOverflowed)) == 8
    assert of(out, ev.CallRejected)[-1].destination == "hangup"


# ---------------------------------------------------------------------------- announcements


def test_position_and_ewt_announcements_and_comfort_prompts():
    q = queue(announce_every=30, comfort_every=45, music="jazz", expected_handle_time=120)
    h = Harness([q], [agent("a"), agent("b")])
    h.login("a", "b")
    for i in range(2):
        h.offer_answered(one_offer(h.call_arrived(f"busy{i}", "q")).offer)
    out = h.at(1).call_arrived("c1", "q")
    assert of(out, fx.StartHoldMusic)[0].music == "jazz"
    (qd,) = of(out, ev.CallQueued)
    # 2 agents, 120 s handle time, nobody ahead: 120 / 2
    assert (qd.position, qd.ewt) == (1, 60.0)
    h.at(2).call_arrived("c2", "q")
    assert of(h.last, ev.CallQueued)[0].ewt == 120.0
    out = h.tick_to(31)
    assert [(a.call, a.position, a.ewt) for a in of(out, fx.Announce)] == [("c1", 1, 60.0)]
    out = h.tick_to(46)
    assert [(a.call, a.position) for a in of(out, fx.Announce)] == [("c2", 2)]
    assert [p.call for p in of(out, fx.PlayComfort)] == ["c1"]


# ---------------------------------------------------------------------------- callbacks


@pytest.mark.parametrize("mode", ["agent-first", "caller-first"])
def test_callback_keeps_its_place_and_connects(mode):
    h = Harness([queue(callback_mode=mode)], [agent("a")])
    h.login("a")
    h.offer_answered(one_offer(h.at(0).call_arrived("busy", "q")).offer)
    h.at(1).call_arrived("c1", "q")
    h.at(2).call_arrived("c2", "q")
    h.at(3).call_arrived("c3", "q")
    out = h.at(10).callback_requested("c2", "+15550002")
    assert of(out, ev.CallbackRequested)[0].wait == 8
    assert h.acd.call_snapshot("c2").position == 2
    h.at(20).call_ended("busy")
    h.at(21).offer_answered(one_offer(h.last).offer)       # c1
    out = h.at(30).call_ended("c1")
    if mode == "agent-first":
        o = one_offer(out)
        assert (o.call, o.callback) == ("c2", "+15550002")
        out = h.at(31).offer_answered(o.offer)
        (dial,) = of(out, fx.DialCallback)
        assert (dial.number, dial.agent_connected, dial.attempt) == ("+15550002", True, 1)
        assert of(out, fx.Bridge) == []
    else:
        (dial,) = of(out, fx.DialCallback)
        assert (dial.number, dial.agent_connected) == ("+15550002", False)
        assert h.state("a") == "reserved"
        out = h.at(35).callback_answered("c2")
        o = one_offer(out)
        assert o.call == "c2"
        out = h.at(36).offer_answered(o.offer)
        assert of(out, fx.Bridge)[0].call == "c2"
    if mode == "agent-first":
        out = h.at(36).callback_answered("c2")
    (ans,) = of(out, ev.CallAnswered)
    assert (ans.call, ans.callback, ans.wait) == ("c2", True, 34)
    assert h.acd.call_snapshot("c3").position == 1


def test_callback_retry_keeps_place_and_gives_up_after_attempts():
    h = Harness([queue(callback_attempts=2, callback_retry=100)], [agent("a"), agent("b")])
    h.at(0).call_arrived("c1", "q")
    h.at(1).call_arrived("c2", "q")
    h.at(2).callback_requested("c1", "+1")
    h.at(5).login("a")
    h.at(6).offer_answered(one_offer(h.last).offer)
    out = h.at(20).callback_failed("c1")
    assert [(e.attempt, e.final) for e in of(out, ev.CallbackFailed)] == [(1, False)]
    # the agent is free and takes c2 meanwhile
    assert one_offer(out).call == "c2"
    h.at(21).offer_answered(one_offer(out).offer)
    h.at(50).call_arrived("c3", "q")
    out = h.tick_to(120)   # retry at 120: c1 is back ahead of c3
    assert h.acd.call_snapshot("c1").position == 1 and h.acd.call_snapshot("c3").position == 2
    h.at(121).login("b")
    o = one_offer(h.last)
    assert o.call == "c1"
    h.at(122).offer_answered(o.offer)
    out = h.at(140).callback_failed("c1")
    assert [(e.attempt, e.final) for e in of(out, ev.CallbackFailed)] == [(2, True)]
    assert "c1" not in h.acd.calls()


def test_callback_requires_a_waiting_call():
    h = Harness([queue()], [agent("a")])
    h.login("a")
    one_offer(h.call_arrived("c1", "q"))
    with pytest.raises(ConflictError):
        h.callback_requested("c1", "+1")
    with pytest.raises(NotFoundError):
        h.callback_requested("nope", "+1")
    with pytest.raises(ValueError, match="number"):
        h.callback_requested("c1", "")


# ---------------------------------------------------------------------------- abandon and bad input


def test_abandon_while_waiting_and_while_ringing():
    h = Harness([queue()], [agent("a")])
    h.at(0).call_arrived("c1", "q")
    out = h.at(7).call_abandoned("c1")
    assert of(out, ev.CallAbandoned) == [ev.CallAbandoned(at=7, call="c1", queue="q", wait=7, ringing=False)]
    h.login("a")
    o = one_offer(h.at(8).call_arrived("c2", "q"))
    out = h.at(9).call_abandoned("c2")
    assert of(out, fx.CancelOffer)[0].reason == "caller-abandoned"
    assert of(out, ev.CallAbandoned)[0].ringing is True
    assert h.state("a") == "available"
    assert h.at(10).offer_answered(o.offer)[0].reason == "caller-abandoned"
    assert h.at(11).call_abandoned("c2") == []   # a late duplicate is ignored, and counted
    assert h.acd.statistics().ignored_inputs >= 2


def test_bad_inputs_are_refused_with_the_argument_named():
    h = Harness([queue()], [agent("a")])
    with pytest.raises(NotFoundError, match="queue"):
        h.call_arrived("c1", "nope")
    with pytest.raises(ValueError, match="priority"):
        h.call_arrived("c1", "q", priority="high")
    with pytest.raises(ValueError, match="skills"):
        h.call_arrived("c1", "q", skills={"x": 9})
    h.call_arrived("c1", "q")
    with pytest.raises(ConflictError):
        h.call_arrived("c1", "q")
    with pytest.raises(ValueError, match="backwards"):
        h.acd.tick(-1.0)
    with pytest.raises(ValueError, match="now"):
        h.acd.tick(float("nan"))
    with pytest.raises(ValueError, match="state"):
        h.set_state("a", "sleeping")
    with pytest.raises(ConflictError, match="not logged in"):
        h.set_state("a", "break")


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="strategy"):
        QueueConfig(name="q", strategy="cheapest")
    with pytest.raises(ValueError, match="proficiency"):
        AgentConfig(id="a", skills={"x": 6})
    with pytest.raises(ValueError, match="ring_timeout"):
        QueueConfig(name="q", ring_timeout=0)
    with pytest.raises(ValueError, match="join_empty"):
        QueueConfig(name="q", join_empty="sometimes")
    with pytest.raises(ValueError, match="escalation"):
        QueueConfig(name="q", escalation=(EscalationStep.raise_priority(60), EscalationStep.raise_priority(30)))
    with pytest.raises(ValueError, match="itself"):
        QueueConfig(name="q", escalation=(EscalationStep.overflow(60, "q"),))
    with pytest.raises(ValueError, match="penalty"):
        AgentConfig(id="a", queues={"q": -1})
    with pytest.raises(ValueError, match="target"):
        Destination(kind="voicemail")
    with pytest.raises(ValueError, match="widen"):
        EscalationStep(after=1, action="widen")
    assert QueueConfig(name="q", strategy="ring-all").strategy is Strategy.RING_ALL
    assert QueueConfig(name="q", callback_mode="caller-first").callback_mode is CallbackMode.CALLER_FIRST


def test_queue_snapshot_counts_agents_by_state():
    h = Harness([queue()], [agent("a"), agent("b"), agent("c")])
    h.login("a", "b")
    h.set_state("b", "break", reason="lunch")
    o = one_offer(h.at(1).call_arrived("c1", "q"))
    h.at(2).call_arrived("c2", "q")
    snap = h.acd.queue_snapshot("q", 12)
    assert snap.waiting == 1 and snap.longest_wait == 10
    assert (snap.agents_by_state["ringing"], snap.agents_by_state["break"], snap.agents_by_state["offline"]) == (1, 1, 1)
    assert sum(snap.agents_by_state.values()) == 3
    assert o.agent == "a"


# ---------------------------------------------------------------------------- reload and screen-pop data


def test_update_agent_moves_it_between_queues_and_skills():
    h = Harness([queue("sales"), queue("fr", skills={"french": 3})], [agent("a", ("sales",))])
    h.login("a")
    h.at(1).call_arrived("c1", "fr")
    assert h.acd.call_snapshot("c1").state == "waiting"
    out = h.at(2).update_agent(AgentConfig(id="a", queues={"sales": 0, "fr": 0}, skills={"french": 4}))
    assert one_offer(out).call == "c1"
    snap = h.acd.queue_snapshot("fr", 2)
    assert snap.agents_by_state["ringing"] == 1
    # dropping the skill while ringing does not interrupt the offer, and takes it out of the queue counts
    h.at(3).update_agent(AgentConfig(id="a", queues={"sales": 0}))
    assert sum(h.acd.queue_snapshot("fr", 3).agents_by_state.values()) == 0
    assert h.state("a") == "ringing"


def test_update_agent_can_empty_a_queue():
    q = queue("fr", leave_empty="no-staffed", on_empty=Destination.parse("voicemail:fr"))
    h = Harness([q, queue("en")], [agent("a", ("fr", "en")), agent("b", ("en",))])
    h.login("a", "b")
    h.offer_answered(one_offer(h.at(1).call_arrived("c1", "fr")).offer)
    h.at(2).call_arrived("c2", "fr")
    out = h.at(3).update_agent(AgentConfig(id="a", queues={"en": 0}))
    assert [(e.call, e.reason) for e in of(out, ev.CallExited)] == [("c2", "leave-empty")]
    with pytest.raises(ConflictError, match="devices"):
        h.update_agent(AgentConfig(id="b", queues={"en": 0}, devices=("other",)))


def test_ivr_and_crm_data_reach_the_screen_pop():
    h = Harness([queue()], [agent("a")])
    h.login("a")
    out = h.call_arrived("c1", "q", caller="+15551234", data={"account": "42", "ivr": "billing"})
    (offered,) = of(out, ev.CallOffered)
    assert (offered.caller, dict(offered.data)) == ("+15551234", {"account": "42", "ivr": "billing"})
    assert dict(one_offer(out).data) == {"account": "42", "ivr": "billing"}
    assert offered.to_dict()["data"] == {"account": "42", "ivr": "billing"}
    with pytest.raises(ValueError, match="data"):
        h.call_arrived("c2", "q", data=["not", "a", "mapping"])
