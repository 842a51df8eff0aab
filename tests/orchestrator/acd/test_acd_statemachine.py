"""Hypothesis state machine over the routing policy, with a naive linear-scan model beside it.

Random queues (every strategy, skills, penalties, limits, empty rules,
escalation, callbacks) and agents; random inputs in any order (arrivals,
answers - including late and duplicate ones -, rejects, timeouts, hang-ups,
holds, callbacks, logins, breaks, device changes, time passing).

Checked after every step:
* every routing decision equals what :mod:`orchestrator.acd.naive` finds by
  scanning all agents / all calls (for ``random``: one of the agents it may pick);
* no agent is on two calls or rung for two; no call is offered to two agents
  except by ring-all;
* no routable agent is eligible for a waiting call (the index invariant);
* a call is never lost: once it leaves the ACD it has exactly one outcome
  (answered, abandoned, exited, rejected, callback failed), never two;
* the per-queue counters agree with the agents and calls.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from orchestrator.acd import (
    Acd,
    AgentConfig,
    ConflictError,
    Destination,
    EscalationStep,
    QueueConfig,
    Strategy,
    naive,
)
from orchestrator.acd import effects as fx
from orchestrator.acd import events as ev

TERMINAL = (ev.CallAnswered, ev.CallAbandoned, ev.CallExited, ev.CallRejected)
SKILLS = ("s0", "s1")


@st.composite
def queue_configs(draw, names):
    out = []
    for i, name in enumerate(names):
        other = names[(i + 1) % len(names)]
        choices = [
            EscalationStep.widen(10, skills={"s0": 1}),
            EscalationStep.raise_priority(15, by=2),
            EscalationStep.offer_callback(20),
            EscalationStep.voicemail(60, name),
        ]
        if other != name:
            choices.append(EscalationStep.overflow(40, other))
        steps = draw(st.lists(st.sampled_from(choices), max_size=3, unique_by=lambda s: (s.action, s.after)))
        steps.sort(key=lambda s: s.after)
        out.append(QueueConfig(
            name=name,
            strategy=draw(st.sampled_from(list(Strategy))),
            skills=draw(st.sampled_from([{}, {"s0": 2}, {"s0": 3, "s1": 1}])),
            ring_timeout=draw(st.sampled_from([5.0, 12.0])),
            ring_all_max=draw(st.sampled_from([None, 2])),
            wrapup=draw(st.sampled_from([0.0, 4.0])),
            reject_delay=draw(st.sampled_from([0.0, 3.0])),
            busy_delay=draw(st.sampled_from([0.0, 7.0])),
            rona_break=draw(st.booleans()),
            max_wait=draw(st.sampled_from([None, 50.0])),
            on_timeout=draw(st.sampled_from([Destination.parse("voicemail:x"), Destination.parse(f"queue:{other}")]
                                            if other != name else [Destination.parse("voicemail:x")])),
            max_length=draw(st.sampled_from([None, None, 3])),
            join_empty=draw(st.sampled_from(["never", "never", "no-logged-in", "no-staffed"])),
            leave_empty=draw(st.sampled_from(["never", "never", "no-staffed"])),
            announce_every=draw(st.sampled_from([None, 9.0])),
            escalation=tuple(steps),
            callback_mode=draw(st.sampled_from(["agent-first", "caller-first"])),
            callback_attempts=draw(st.sampled_from([1, 2])),
            callback_retry=5.0,
        ))
    return out


class AcdMachine(RuleBasedStateMachine):
    @initialize(data=st.data())
    def setup(self, data):
        names = ["q0", "q1", "q2"][: data.draw(st.integers(1, 3))]
        queues = data.draw(queue_configs(names))
        agents = []
        for i in range(data.draw(st.integers(1, 5))):
            qs = data.draw(st.dictionaries(st.sampled_from(names), st.integers(0, 2), min_size=1))
            skills = data.draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5)))
            agents.append(AgentConfig(id=f"a{i}", queues=qs, skills=skills))
        self.acd = Acd(queues, agents)
        self.queues = names
        self.agent_ids = [a.id for a in agents]
        self.now = 0.0
        self.log: list = []
        self.arrived: list[str] = []
        self.offers_seen: list[int] = []
        self.n = 0
        for i, aid in enumerate(self.agent_ids):
            if data.draw(st.booleans()):
                self.now = float(i)   # distinct idle times
                self.feed(self.acd.agent_login(aid, "d-" + aid, self.now))
                self.feed(self.acd.device_registered("d-" + aid, self.now))

    # -------------------------------------------------------------- helpers

    def feed(self, out):
        self.log.extend(out)
        for o in out:
            if isinstance(o, fx.Offer):
                self.offers_seen.append(o.offer)
        return out

    def active_offers(self):
        return sorted(self.acd._offers)

    def calls_in(self, *states):
        return sorted(c.id for c in self.acd._calls.values() if c.state in states)

    def check_agent_pick(self, agent_id, expected_call, out):
        got = [o.call for o in out if isinstance(o, (fx.Offer, fx.DialCallback)) and o.agent == agent_id]
        if got:
            assert got[0] == expected_call, (agent_id, got, expected_call)

    # -------------------------------------------------------------- time

    @rule(dt=st.sampled_from([0.5, 1.0, 2.0, 6.0, 13.0, 30.0]))
    def advance(self, dt):
        target = self.now + dt
        while True:
            d = self.acd.next_deadline()
            if d is None or d > target:
                break
            self.now = max(self.now, d)
            self.feed(self.acd.tick(self.now))
        self.now = target
        self.feed(self.acd.tick(self.now))

    # -------------------------------------------------------------- calls

    @rule(data=st.data(), priority=st.integers(0, 2), own=st.sampled_from([{}, {}, {"s1": 2}]))
    def arrive(self, data, priority, own):
        name = data.draw(st.sampled_from(self.queues))
        q = self.acd._queues[name]
        req = {**q.cfg.skills, **own}
        expected = naive.agents_for(self.acd, name, req, q.cfg.max_penalty, self.now)
        self.n += 1
        cid = f"c{self.n}"
        self.arrived.append(cid)
        out = self.feed(self.acd.call_arrived(cid, name, self.now, priority=priority, skills=own))
        if any(isinstance(o, (ev.CallRejected, ev.CallOverflowed)) for o in out):
            return
        got = [o.agent for o in out if isinstance(o, (fx.Offer, fx.DialCallback))]
        if q.cfg.strategy is Strategy.RANDOM:
            assert (got == []) == (expected == []) and set(got) <= set(expected)
        else:
            assert got == expected, (got, expected)

    @precondition(lambda self: self.acd._calls)
    @rule(data=st.data())
    def hang_up(self, data):
        cid = data.draw(st.sampled_from(sorted(self.acd._calls)))
        self.feed(self.acd.call_abandoned(cid, self.now))

    @precondition(lambda self: any(c.state == "connected" for c in self.acd._calls.values()))
    @rule(data=st.data())
    def end(self, data):
        self.feed(self.acd.call_ended(data.draw(st.sampled_from(self.calls_in("connected"))), self.now))

    @precondition(lambda self: any(c.state == "connected" for c in self.acd._calls.values()))
    @rule(data=st.data(), held=st.booleans())
    def hold(self, data, held):
        cid = data.draw(st.sampled_from(self.calls_in("connected")))
        self.feed((self.acd.call_held if held else self.acd.call_resumed)(cid, self.now))

    @precondition(lambda self: self.offers_seen)
    @rule(data=st.data(), prefer_live=st.booleans())
    def answer(self, data, prefer_live):
        pool = self.active_offers() if prefer_live and self.acd._offers else self.offers_seen
        offer = data.draw(st.sampled_from(pool))
        live = offer in self.acd._offers
        out = self.feed(self.acd.offer_answered(offer, self.now))
        if live:
            assert any(isinstance(o, (fx.Bridge, fx.DialCallback)) for o in out)
            assert not any(isinstance(o, fx.RefuseAnswer) for o in out)
        else:
            assert len(out) == 1 and isinstance(out[0], fx.RefuseAnswer)

    @precondition(lambda self: self.acd._offers)
    @rule(data=st.data(), kind=st.sampled_from(["reject", "busy", "timeout"]))
    def fail_offer(self, data, kind):
        offer = data.draw(st.sampled_from(self.active_offers()))
        if kind == "timeout":
            self.feed(self.acd.offer_timeout(offer, self.now))
        else:
            self.feed(self.acd.offer_rejected(offer, self.now, busy=kind == "busy"))

    @precondition(lambda self: any(c.state == "waiting" and c.callback is None for c in self.acd._calls.values()))
    @rule(data=st.data())
    def callback(self, data):
        cands = [c.id for c in self.acd._calls.values() if c.state == "waiting" and c.callback is None]
        cid = data.draw(st.sampled_from(sorted(cands)))
        before = self.acd.call_snapshot(cid).position
        self.feed(self.acd.callback_requested(cid, "+1" + cid, self.now))
        assert self.acd.call_snapshot(cid).position == before

    @precondition(lambda self: any(c.state in ("dialing", "reserved") for c in self.acd._calls.values()))
    @rule(data=st.data(), ok=st.booleans())
    def callback_result(self, data, ok):
        cid = data.draw(st.sampled_from(self.calls_in("dialing", "reserved")))
        self.feed((self.acd.callback_answered if ok else self.acd.callback_failed)(cid, self.now))

    # -------------------------------------------------------------- agents

    @rule(data=st.data(), what=st.sampled_from(["login", "available", "wrapup_done", "register", "idle"]))
    def agent_gets_ready(self, data, what):
        aid = data.draw(st.sampled_from(self.agent_ids))
        a = self.acd._agents[aid]
        expected = naive.call_for(self.acd, aid)
        try:
            if what == "login":
                out = self.acd.agent_login(aid, "d-" + aid, self.now)
            elif what == "available":
                out = self.acd.set_state(aid, "available", self.now)
            elif what == "wrapup_done":
                out = self.acd.wrapup_done(aid, self.now)
            elif what == "register":
                out = self.acd.device_registered("d-" + aid, self.now)
            else:
                out = self.acd.device_idle("d-" + aid, self.now)
        except ConflictError:
            assert not a.logged_in
            return
        self.feed(out)
        self.check_agent_pick(aid, expected, out)

    @rule(data=st.data(), what=st.sampled_from(["logout", "break", "unregister", "busy"]))
    def agent_goes(self, data, what):
        aid = data.draw(st.sampled_from(self.agent_ids))
        a = self.acd._agents[aid]
        try:
            if what == "logout":
                out = self.acd.agent_logout(aid, self.now)
            elif what == "break":
                out = self.acd.set_state(aid, "break", self.now, reason="x")
            elif what == "unregister":
                out = self.acd.device_unregistered("d-" + aid, self.now)
            else:
                out = self.acd.device_busy("d-" + aid, self.now)
        except ConflictError:
            assert (what == "logout" and a.activity in ("on_call", "reserved")) or (what == "break" and not a.logged_in)
            return
        self.feed(out)
        assert not any(isinstance(o, (fx.Offer, fx.DialCallback)) and o.agent == aid for o in out)

    # -------------------------------------------------------------- invariants

    @invariant()
    def invariants_hold(self):
        check_invariants(self.acd, self.now, self.log, self.arrived)


def check_invariants(acd, now, log, arrived):
    """Every invariant of the module docstring, on the policy's state and its output log."""
    # agents: derived state, routable flag = readiness, one call or one offer at most
    busy_with: dict[str, str] = {}
    for a in acd._agents.values():
        assert a.state == acd._derive_state(a)
        assert a.routable == naive.agent_ready(a, now), (a.id, a.routable)
        if a.activity == "ringing":
            assert a.offer is not None and a.offer.active and a.offer.agent is a
            assert a.offer.id in acd._offers
        else:
            assert a.offer is None
        if a.activity in ("on_call", "reserved", "wrap_up"):
            assert a.call is not None
            if a.activity != "wrap_up":
                assert a.call.agent is a
                assert a.call.id not in busy_with
                busy_with[a.call.id] = a.id
    for c in acd._calls.values():
        if c.state in ("connected", "dialing", "reserved"):
            assert busy_with.get(c.id) == c.agent.id
    # offers: live, one per agent, several per call only for ring-all
    per_agent: dict[str, int] = {}
    for o in acd._offers.values():
        assert o.active and o.call.state == "offering" and o.call.offers.get(o.id) is o
        per_agent[o.agent.id] = per_agent.get(o.agent.id, 0) + 1
    assert all(n == 1 for n in per_agent.values())
    for c in acd._calls.values():
        if len(c.offers) > 1:
            assert c.queue.cfg.strategy is Strategy.RING_ALL
        if c.state == "offering":
            assert c.offers
    # the index invariant
    ready = [a for a in acd._agents.values() if naive.agent_ready(a, now)]
    for c in naive.waiting_calls(acd):
        for a in ready:
            assert not naive.eligible(a, c.queue.name, c.req_skills, c.max_penalty), (c.id, a.id)
    # calls are never lost, and have one outcome
    outcomes: dict[str, int] = {}
    for o in log:
        if isinstance(o, TERMINAL) or (isinstance(o, ev.CallbackFailed) and o.final):
            outcomes[o.call] = outcomes.get(o.call, 0) + 1
    for cid in arrived:
        n = outcomes.get(cid, 0)
        c = acd._calls.get(cid)
        if c is None or c.state == "connected":
            assert n == 1, (cid, n)
        else:
            assert n == 0, (cid, c.state, n)
    # counters
    for q in acd._queues.values():
        assert q.waiting == sum(len(b.waiting) for b in q.buckets.values())
        for state, n in q.state_counts.items():
            assert n == sum(1 for a in q.members.values() if a.state == state)
        for b in q.buckets.values():
            assert b.staffed == sum(1 for a in q.members.values() if a.staffed and b.eligible(a))
            for key in b.waiting:
                assert key[3].bucket is b and key[3].state == "waiting"


AcdMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=40, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestAcdStateMachine = AcdMachine.TestCase


# ---------------------------------------------------------------------------- long random walks
# Hypothesis explores odd corners with short runs; these seeded walks add long,
# busy runs (many agents ready at once, many calls waiting) with the same checks.

import random

import pytest


def _random_config(rng: random.Random):
    names = [f"q{i}" for i in range(rng.randint(1, 3))]
    queues = []
    for i, name in enumerate(names):
        other = names[(i + 1) % len(names)]
        steps = [EscalationStep.widen(20, skills={"s0": 1}), EscalationStep.raise_priority(30, by=1)]
        if other != name:
            steps.append(EscalationStep.overflow(90, other))
        queues.append(QueueConfig(
            name=name, strategy=rng.choice(list(Strategy)), skills=rng.choice([{}, {"s0": 2}]),
            ring_timeout=rng.choice([8.0, 15.0]), ring_all_max=rng.choice([None, 3]),
            wrapup=rng.choice([0.0, 5.0]), reject_delay=rng.choice([0.0, 4.0]), rona_break=rng.random() < 0.5,
            max_wait=rng.choice([None, 200.0]), max_length=rng.choice([None, 12]),
            leave_empty=rng.choice(["never", "no-staffed"]), announce_every=rng.choice([None, 25.0]),
            escalation=tuple(sorted(rng.sample(steps, rng.randint(0, len(steps))), key=lambda s: s.after)),
            callback_mode=rng.choice(["agent-first", "caller-first"]), callback_retry=10.0))
    agents = []
    for i in range(rng.randint(8, 16)):
        qs = {q: rng.randint(0, 1) for q in rng.sample(names, rng.randint(1, len(names)))}
        skills = {s: rng.randint(1, 5) for s in SKILLS if rng.random() < 0.7}
        agents.append(AgentConfig(id=f"a{i}", queues=qs, skills=skills))
    return queues, agents


@pytest.mark.parametrize("seed", range(6))
def test_long_random_walk_matches_the_naive_router(seed):
    rng = random.Random(seed)
    queues, agents = _random_config(rng)
    acd = Acd(queues, agents, rng=random.Random(seed))
    names = [q.name for q in queues]
    ids = [a.id for a in agents]
    now = 0.0
    log: list = []
    arrived: list[str] = []
    compared = {"arrive": 0, "agent": 0, "several_ready": 0}
    for aid in ids:
        now += 1.0
        log += acd.agent_login(aid, "d-" + aid, now)
        log += acd.device_registered("d-" + aid, now)
    # alternate quiet phases (agents pile up ready) and busy ones (calls pile up waiting)
    weights = ([1, 12, 10, 8, 4, 2, 5, 1, 2, 1, 8, 2, 1], [8, 12, 8, 8, 4, 2, 2, 1, 2, 1, 4, 1, 1])
    for step in range(1200):
        op = rng.choices(["arrive", "answer", "end", "tick", "wrapup", "fail", "abandon", "callback",
                          "cb_result", "break", "back", "device", "reconfig"],
                         weights=weights[(step // 150) % 2])[0]
        out: list = []
        if op == "arrive":
            name = rng.choice(names)
            q = acd._queues[name]
            own = rng.choice([{}, {}, {"s1": 2}])
            req = {**q.cfg.skills, **own}
            expected = naive.agents_for(acd, name, req, q.cfg.max_penalty, now)
            compared["several_ready"] += sum(1 for a in acd._agents.values() if naive.agent_ready(a, now)
                                             and naive.eligible(a, name, req, q.cfg.max_penalty)) > 1
            cid = f"c{step}"
            arrived.append(cid)
            out = acd.call_arrived(cid, name, now, priority=rng.choice([0, 0, 1]), skills=own)
            if not any(isinstance(o, (ev.CallRejected, ev.CallOverflowed)) for o in out):
                got = [o.agent for o in out if isinstance(o, fx.Offer)]
                if q.cfg.strategy is Strategy.RANDOM:
                    assert (got == []) == (expected == []) and set(got) <= set(expected)
                else:
                    assert got == expected, (step, got, expected)
                compared["arrive"] += 1
        elif op == "answer" and acd._offers:
            out = acd.offer_answered(rng.choice(sorted(acd._offers)), now)
        elif op == "end":
            live = sorted(c.id for c in acd._calls.values() if c.state == "connected")
            if live:
                cid = rng.choice(live)
                aid = acd._calls[cid].agent.id
                expected_call = naive.call_for(acd, aid)
                out = acd.call_ended(cid, now)
                got = [o.call for o in out if isinstance(o, (fx.Offer, fx.DialCallback)) and o.agent == aid]
                if got:
                    assert got[0] == expected_call, (step, got, expected_call)
                    compared["agent"] += 1
        elif op == "tick":
            target = now + rng.choice([0.5, 2.0, 5.0, 20.0])
            while (d := acd.next_deadline()) is not None and d <= target:
                now = max(now, d)
                out += acd.tick(now)
            now = target
            out += acd.tick(now)
        elif op == "fail" and acd._offers:
            offer = rng.choice(sorted(acd._offers))
            out = acd.offer_rejected(offer, now, busy=rng.random() < 0.5) if rng.random() < 0.5 \
                else acd.offer_timeout(offer, now)
        elif op == "abandon" and acd._calls:
            out = acd.call_abandoned(rng.choice(sorted(acd._calls)), now)
        elif op == "callback":
            waiting = sorted(c.id for c in acd._calls.values() if c.state == "waiting" and c.callback is None)
            if waiting:
                out = acd.callback_requested(rng.choice(waiting), "+1", now)
        elif op == "cb_result":
            dialing = sorted(c.id for c in acd._calls.values() if c.state in ("dialing", "reserved"))
            if dialing:
                cid = rng.choice(dialing)
                out = (acd.callback_answered if rng.random() < 0.7 else acd.callback_failed)(cid, now)
        elif op == "reconfig":
            aid = rng.choice(ids)
            qs = {q: rng.randint(0, 1) for q in rng.sample(names, rng.randint(1, len(names)))}
            skills = {sk: rng.randint(1, 5) for sk in SKILLS if rng.random() < 0.7}
            out = acd.update_agent(AgentConfig(id=aid, queues=qs, skills=skills), now)
        elif op in ("wrapup", "back", "break", "device"):
            # wrap-up done / back from break: mostly by an agent that is in that state
            want = {"wrapup": "wrap_up", "back": "break"}.get(op)
            pool = [a for a in ids if acd._agents[a].state == want] if want else []
            aid = rng.choice(pool) if pool and rng.random() < 0.8 else rng.choice(ids)
            if op in ("wrapup", "back"):
                expected_call = naive.call_for(acd, aid)
                out = acd.wrapup_done(aid, now) if op == "wrapup" else acd.set_state(aid, "available", now)
                got = [o.call for o in out if isinstance(o, (fx.Offer, fx.DialCallback)) and o.agent == aid]
                if got:
                    assert got[0] == expected_call, (step, got, expected_call)
                    compared["agent"] += 1
            elif op == "break":
                out = acd.set_state(aid, "break", now, reason="x")
            else:
                dev = "d-" + aid
                out = acd.device_busy(dev, now) if rng.random() < 0.2 else acd.device_idle(dev, now)
        log += out
        check_invariants(acd, now, log, arrived)
    # the walk did exercise both directions of routing, with choices to make
    assert compared["arrive"] > 50 and compared["several_ready"] > 5 and compared["agent"] >= 1
    assert acd.statistics().decisions > 50


@pytest.mark.parametrize("seed", range(4))
def test_agent_side_choice_matches_the_naive_router_with_many_waiting_calls(seed):
    """Many calls waiting over several queues, priorities, skills and escalations; agents come
    back one at a time and each must get exactly the call the naive scan picks."""
    rng = random.Random(100 + seed)
    names = ["q0", "q1", "q2"]
    queues = [QueueConfig(name=n, strategy=rng.choice(list(Strategy)), skills=rng.choice([{}, {"s0": 2}]),
                          escalation=(EscalationStep.widen(50, skills={"s0": 1}),
                                      EscalationStep.raise_priority(80, by=1)))
              for n in names]
    agents = [AgentConfig(id=f"a{i}", queues={q: rng.randint(0, 1) for q in rng.sample(names, rng.randint(1, 3))},
                          skills={s: rng.randint(1, 5) for s in SKILLS if rng.random() < 0.7}) for i in range(20)]
    acd = Acd(queues, agents)
    log: list = []
    arrived: list[str] = []
    now = 0.0
    for a in agents:
        log += acd.agent_login(a.id, "d-" + a.id, now, state="break")
        log += acd.device_registered("d-" + a.id, now)
    for i in range(80):
        now += rng.uniform(0, 3)
        log += acd.tick(now)
        arrived.append(f"c{i}")
        log += acd.call_arrived(f"c{i}", rng.choice(names), now, priority=rng.choice([0, 0, 0, 1, 2]),
                                skills=rng.choice([{}, {}, {"s1": 2}]))
    compared = 0
    for _ in range(150):
        now += rng.uniform(0, 2)
        while (d := acd.next_deadline()) is not None and d <= now:
            log += acd.tick(d)
        log += acd.tick(now)
        on_break = [a.id for a in agents if acd._agents[a.id].state == "break"]
        if on_break:
            aid = rng.choice(on_break)
            expected = naive.call_for(acd, aid)
            out = acd.set_state(aid, "available", now)
            log += out
            got = [o.call for o in out if isinstance(o, fx.Offer) and o.agent == aid]
            assert got == ([expected] if expected else []), (got, expected)
            compared += bool(got)
            if got:
                offer = next(o.offer for o in out if isinstance(o, fx.Offer) and o.agent == aid)
                log += acd.offer_answered(offer, now)
        connected = sorted(c.id for c in acd._calls.values() if c.state == "connected")
        if connected and rng.random() < 0.5:
            cid = rng.choice(connected)
            aid = acd._calls[cid].agent.id
            log += acd.call_ended(cid, now)
            log += acd.set_state(aid, "break", now) if acd._agents[aid].state != "ringing" else []
        check_invariants(acd, now, log, arrived)
    assert compared >= 30
