"""Call records: exact records for real call shapes, queries, and incremental == rebuilt from the log."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.acd import AgentConfig, EscalationStep, QueueConfig
from orchestrator.sim import Arrivals, Simulation, constant, exponential
from orchestrator.store import EventLog, cdr


def fold(events) -> dict[str, dict]:
    """The projection as a plain fold over events in sequence order (the model of the table)."""
    records: dict[str, dict] = {}
    for e in events:
        if e.call is not None:
            records[e.call] = cdr.apply(records.get(e.call), e)
    return records


def _full_call() -> list[dict]:
    """A call through the B2BUA, the IVR, the ACD, the recorder and a CRM."""
    return [
        {"type": "call.incoming", "at": 1000.0, "call": "k1", "caller": "+15550100", "callee": "1000",
         "trunk": "carrier-a"},
        {"type": "call.ivr", "at": 1001.0, "call": "k1", "node": "menu", "digits": "2"},
        {"type": "call.ivr", "at": 1009.5, "call": "k1", "node": "account", "digits": "12345",
         "data": {"account": "12345", "lang": "en"}},
        {"type": "call.queued", "at": 1012.0, "call": "k1", "queue": "support", "priority": 0,
         "caller": "+15550100", "position": 1, "ewt": 30.0, "skills": [], "overflow_from": None},
        {"type": "call.offered", "at": 1012.0, "call": "k1", "queue": "support", "agent": "a7", "device": "d7",
         "offer": 1, "caller": "+15550100"},
        {"type": "call.offer_ended", "at": 1027.0, "call": "k1", "queue": "support", "agent": "a7", "offer": 1,
         "reason": "timeout", "ring": 15.0},
        {"type": "call.offered", "at": 1027.0, "call": "k1", "queue": "support", "agent": "a3", "device": "d3",
         "offer": 2, "caller": "+15550100"},
        {"type": "call.answered", "at": 1030.0, "call": "k1", "queue": "support", "agent": "a3", "offer": 2,
         "wait": 18.0},
        {"type": "recording.started", "at": 1030.0, "call": "k1", "recording": "rec-1"},
        {"type": "call.set_data", "at": 1031.0, "call": "k1", "data": {"crm_id": "C-9", "vip": True}},
        {"type": "call.held", "at": 1100.0, "call": "k1", "queue": "support", "agent": "a3"},
        {"type": "call.resumed", "at": 1130.0, "call": "k1", "queue": "support", "agent": "a3"},
        {"type": "call.held", "at": 1200.0, "call": "k1", "queue": "support", "agent": "a3"},
        {"type": "call.resumed", "at": 1205.0, "call": "k1", "queue": "support", "agent": "a3"},
        {"type": "call.ended", "at": 1300.0, "call": "k1", "cause": 200, "reason": "caller_hangup"},
        {"type": "recording.ready", "at": 1301.0, "call": "k1", "recording": "rec-1"},
        {"type": "call.wrapup_ended", "at": 1330.0, "call": "k1", "queue": "support", "agent": "a3", "wrapup": 30.0},
        {"type": "call.survey", "at": 1340.0, "call": "k1", "score": 4},
    ]


def test_a_full_call_gives_an_exact_record(open_log):
    log = open_log()
    log.append_many_sync(_full_call())
    r = log.call_record_sync("k1")
    assert (r.caller, r.callee, r.trunk, r.node) == ("+15550100", "1000", "carrier-a", "n1")
    assert (r.arrived_at, r.queued_at, r.answered_at, r.ended_at) == (1000.0, 1012.0, 1030.0, 1300.0)
    assert (r.ivr, r.wait, r.hold, r.talk, r.wrapup) == (11.0, 18.0, 35.0, 235.0, 30.0)
    assert (r.outcome, r.end_cause, r.end_reason, r.open, r.synthetic) == ("answered", 200, "caller_hangup", False,
                                                                           False)
    assert (r.queue, r.queues, r.agent, r.agents, r.offers) == ("support", ("support",), "a3", ("a3",), 2)
    assert r.recordings == ("rec-1",)
    assert dict(r.data) == {"crm_id": "C-9", "vip": True}
    assert dict(r.ivr_data) == {"menu": "2", "account": "12345", "lang": "en"}
    assert r.survey == 4.0 and r.last_at == 1340.0 and r.last_seq == 18
    assert r.to_json()["queues"] == ["support"]


@pytest.mark.parametrize("events, expect", [
    # the ACD's own talk/hold win over the B2BUA's hold events
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.answered", "at": 5.0, "call": "x", "queue": "q", "agent": "a", "wait": 5.0},
      {"type": "call.held", "at": 10.0, "call": "x"},
      {"type": "call.ended", "at": 100.0, "call": "x", "queue": "q", "agent": "a", "talk": 80.0, "hold": 15.0}],
     {"outcome": "answered", "talk": 80.0, "hold": 15.0, "wait": 5.0, "ended_at": 100.0}),
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.abandoned", "at": 42.0, "call": "x", "queue": "q", "wait": 42.0, "ringing": False}],
     {"outcome": "abandoned", "wait": 42.0, "open": False, "talk": None, "hold": None}),
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.callback_requested", "at": 30.0, "call": "x", "queue": "q", "number": "+1", "wait": 30.0}],
     {"outcome": "callback", "callback": True, "open": True}),
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.callback_requested", "at": 30.0, "call": "x", "queue": "q", "number": "+1", "wait": 30.0},
      {"type": "call.answered", "at": 90.0, "call": "x", "queue": "q", "agent": "a", "wait": 90.0, "callback": True},
      {"type": "call.ended", "at": 150.0, "call": "x", "queue": "q", "agent": "a", "talk": 60.0, "hold": 0.0}],
     {"outcome": "answered", "callback": True, "wait": 90.0, "talk": 60.0}),
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.callback_requested", "at": 30.0, "call": "x", "queue": "q", "number": "+1", "wait": 30.0},
      {"type": "call.callback_failed", "at": 90.0, "call": "x", "queue": "q", "agent": "a", "attempt": 3,
       "final": True}],
     {"outcome": "callback", "open": False, "end_reason": "callback_failed", "ended_at": 90.0}),
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.exited", "at": 300.0, "call": "x", "queue": "q", "reason": "timeout",
       "destination": "voicemail:q", "wait": 300.0}],
     {"outcome": "voicemail", "open": False, "end_reason": "timeout", "wait": 300.0}),
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.exited", "at": 60.0, "call": "x", "queue": "q", "reason": "leave-empty",
       "destination": "hangup:480", "wait": 60.0}],
     {"outcome": "failed", "open": False}),
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.exited", "at": 60.0, "call": "x", "queue": "q", "reason": "escalation",
       "destination": "extension:200", "wait": 60.0}],
     {"outcome": "transferred", "open": True, "transferred_to": "extension:200"}),
    ([{"type": "call.rejected", "at": 3.0, "call": "x", "queue": "q", "reason": "full", "destination": "hangup"}],
     {"outcome": "failed", "open": False, "queues": ["q"], "queue": "q"}),
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": "q"},
      {"type": "call.overflowed", "at": 60.0, "call": "x", "queue": "q", "to_queue": "q2", "wait": 60.0,
       "reason": "overflow"},
      {"type": "call.queued", "at": 60.0, "call": "x", "queue": "q2"},
      {"type": "call.answered", "at": 70.0, "call": "x", "queue": "q2", "agent": "b", "wait": 70.0}],
     {"outcome": "answered", "queues": ["q", "q2"], "queue": "q2", "queued_at": 0.0, "wait": 70.0}),
    ([{"type": "call.incoming", "at": 0.0, "call": "x", "from": "+1", "to": "2000"},
      {"type": "call.answered", "at": 4.0, "call": "x", "agent": "a"},
      {"type": "call.transferred", "at": 50.0, "call": "x", "to": "sip:bob@example.com", "mode": "blind"},
      {"type": "call.ended", "at": 90.0, "call": "x", "cause": "BYE"}],
     {"outcome": "transferred", "transferred_to": "sip:bob@example.com", "caller": "+1", "callee": "2000",
      "talk": 86.0, "hold": 0.0, "wait": None, "end_cause": "BYE"}),
    ([{"type": "call.incoming", "at": 0.0, "call": "x"},
      {"type": "call.ivr", "at": 1.0, "call": "x", "node": "menu"},
      {"type": "call.ended", "at": 21.0, "call": "x", "cause": 487}],
     {"outcome": "failed", "ivr": 20.0, "end_cause": 487, "wait": None}),
    # ill-typed fields are treated as absent, never an error
    ([{"type": "call.queued", "at": 0.0, "call": "x", "queue": 5},
      {"type": "call.answered", "at": 9.0, "call": "x", "agent": ["a"], "wait": "long", "callback": "yes"},
      {"type": "call.set_data", "at": 9.5, "call": "x", "data": "not a mapping"},
      {"type": "call.ended", "at": 10.0, "call": "x", "talk": True, "hold": None, "cause": 1.5,
       "outcome": "bogus"}],
     {"outcome": "answered", "queue": None, "agent": None, "wait": 9.0, "callback": False, "talk": 1.0,
      "end_cause": None}),
])
def test_call_shapes(events, expect):
    import json

    from orchestrator.store.events import decode_row

    rec = None
    for seq, e in enumerate(events, 1):
        data = {k: v for k, v in e.items() if k not in ("type", "at")}
        stored = decode_row(seq, "n", e["at"], e["type"], data.get("call"), None, None, json.dumps(data))
        rec = cdr.apply(rec, stored)
    got = {k: rec[k] if k != "open" else rec["is_open"] for k in expect}
    assert got == expect


def test_call_record_queries(open_log):
    log = open_log()
    odd = 'q_%"\\x'  # LIKE wildcards, a quote and a backslash must match literally
    log.append_many_sync([
        {"type": "call.queued", "at": 10.0, "call": "a", "queue": "support"},
        {"type": "call.answered", "at": 12.0, "call": "a", "queue": "support", "agent": "ann", "wait": 2.0},
        {"type": "call.queued", "at": 20.0, "call": "b", "queue": "sales"},
        {"type": "call.overflowed", "at": 30.0, "call": "b", "queue": "sales", "to_queue": "support", "wait": 10.0,
         "reason": "x"},
        {"type": "call.queued", "at": 30.0, "call": "b", "queue": "support"},
        {"type": "call.abandoned", "at": 40.0, "call": "b", "queue": "support", "wait": 20.0},
        {"type": "call.queued", "at": 50.0, "call": "c", "queue": odd},
        {"type": "call.queued", "at": 60.0, "call": "d", "queue": "qx%"},
    ])
    ids = lambda rs: [r.call for r in rs]
    assert ids(log.call_records_sync()) == ["a", "b", "c", "d"]
    assert ids(log.call_records_sync(since=10.0, until=50.0)) == ["a", "b"]  # arrived_at in [since, until)
    assert ids(log.call_records_sync(queue="support")) == ["a", "b"]
    assert ids(log.call_records_sync(queue="sales")) == ["b"]
    assert ids(log.call_records_sync(queue=odd)) == ["c"]
    assert ids(log.call_records_sync(queue="q_")) == []
    assert ids(log.call_records_sync(agent="ann")) == ["a"]
    assert ids(log.call_records_sync(outcome="abandoned")) == ["b"]
    assert ids(log.call_records_sync(open=True)) == ["a", "c", "d"]
    assert ids(log.call_records_sync(limit=1)) == ["a"]
    with pytest.raises(ValueError, match="outcome"):
        log.call_records_sync(outcome="lost")
    with pytest.raises(ValueError, match="queue"):
        log.call_records_sync(queue=3)
    with pytest.raises(ValueError, match="call"):
        log.call_record_sync("")
    assert log.call_record_sync("nope") is None


# -- incremental == rebuilt ---------------------------------------------------------------------------------

_num = st.none() | st.floats(min_value=0, max_value=500, allow_nan=False) | st.sampled_from(["x", True, -1])
_fields = st.fixed_dictionaries({}, optional={
    "queue": st.sampled_from(["q1", "q2", None]),  # the envelope refuses a non-string queue/agent/call
    "agent": st.sampled_from(["a1", "a2", None]),
    "wait": _num, "talk": _num, "hold": _num, "wrapup": _num, "score": _num,
    "destination": st.sampled_from(["voicemail:q1", "hangup", "hangup:486", "queue:q2", "extension:7", None, 3]),
    "outcome": st.sampled_from(list(cdr.OUTCOMES) + ["bogus", None]),
    "cause": st.sampled_from([486, "BYE", None, True, 2.5]),
    "reason": st.sampled_from(["timeout", "caller_hangup", None]),
    "data": st.sampled_from([{"k": 1}, {"k": 2, "j": [1, 2]}, "text", None]),
    "node": st.sampled_from(["menu", "pin", None]), "digits": st.sampled_from(["1", "42", None]),
    "final": st.booleans(), "callback": st.booleans(), "to_queue": st.sampled_from(["q2", None]),
    "recording": st.sampled_from(["r1", "r2", None]), "to": st.sampled_from(["sip:x@y", None]),
    "caller": st.sampled_from(["+1", "+2", None]), "callee": st.sampled_from(["1000", None]),
})
_types = st.sampled_from([
    "call.incoming", "call.ivr", "call.queued", "call.offered", "call.answered", "call.abandoned",
    "call.callback_requested", "call.callback_failed", "call.held", "call.resumed", "call.transferred",
    "call.overflowed", "call.exited", "call.rejected", "call.ended", "call.wrapup_ended", "call.set_data",
    "call.survey", "call.something_new", "recording.started", "recording.ready", "agent.state", "queue.stats",
])


@st.composite
def _stream(draw):
    n = draw(st.integers(min_value=1, max_value=60))
    events = []
    for _ in range(n):
        e = {"type": draw(_types), "at": draw(st.floats(min_value=0, max_value=1000, allow_nan=False)),
             **draw(_fields)}
        if e["type"] == "agent.state":
            e.update(agent="a1", state=draw(st.sampled_from(["available", "on_call"])), previous="x")
        if e["type"] != "queue.stats" and draw(st.integers(0, 9)):
            e["call"] = draw(st.sampled_from(["c1", "c2", "c3", "c4"]))
        events.append(e)
    cuts = draw(st.lists(st.integers(min_value=1, max_value=n), max_size=6))
    return events, sorted(set(cuts))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(stream=_stream())
def test_random_streams_incremental_records_equal_the_rebuilt_ones(url_factory, stream):
    events, cuts = stream
    with EventLog(url_factory(), node="n1", recover=False) as log:
        start = 0
        for cut in cuts + [len(events)]:  # appended in random batches, some through the nowait path
            if cut > start:
                if cut % 2:
                    log.append_many_sync(events[start:cut])
                else:
                    for e in events[start:cut]:
                        log.append_nowait(e)
                    log.flush_sync()
            start = cut
        incremental = log.raw_call_records_sync()
        assert incremental == fold(log.read_sync())
        assert set(incremental) == {e["call"] for e in events if "call" in e}
        assert log.rebuild_call_records() == len(incremental)
        assert log.raw_call_records_sync() == incremental
        assert log.statistics().projection_errors == 0


def _sim_events():
    queues = [QueueConfig(name="support", wrapup=10, ring_timeout=15, max_wait=300,
                          escalation=(EscalationStep.offer_callback(60), EscalationStep.overflow(90, "sales"))),
              QueueConfig(name="sales", wrapup=5, ring_timeout=15, max_wait=200,
                          escalation=(EscalationStep.voicemail(150, "sales"),))]
    agents = [AgentConfig(id=f"a{i}", queues={"support": 0, "sales": 1} if i % 2 else {"sales": 0})
              for i in range(4)]
    sim = Simulation(queues, agents, [Arrivals(queue="support", rate=90), Arrivals(queue="sales", rate=40)],
                     talk=exponential(120), patience=exponential(150), answer_delay=constant(2.0), no_answer=0.1,
                     callback_accept=0.4, seed=7)
    return sim.run(3600.0).events


def test_a_simulated_hour_of_the_real_acd_gives_the_same_records_both_ways(open_log):
    events = _sim_events()
    log = open_log(recover=False)
    for i in range(0, len(events), 37):
        log.append_many_sync(events[i:i + 37])
    incremental = log.raw_call_records_sync()
    assert incremental == fold(log.read_sync())
    assert log.rebuild_call_records() == len(incremental)
    assert log.raw_call_records_sync() == incremental
    outcomes = {r["outcome"] for r in incremental.values()}
    assert {"answered", "abandoned", "voicemail"} <= outcomes
    assert any(r["callback"] and r["outcome"] == "answered" for r in incremental.values())
    # every call the ACD queued has a record
    assert {e.call for e in events if e.type == "call.queued"} <= set(incremental)


def test_recording_analytics_and_purges_land_in_the_call_record(tmp_path):
    from orchestrator.store import EventLog

    log = EventLog(f"sqlite:///{tmp_path}/x.db")
    try:
        log.append_sync({"type": "call.incoming", "call": "c1", "caller": "100"})
        log.append_sync({"type": "recording.ready", "call": "c1", "recording": "r1"})
        log.append_sync({"type": "recording.analyzed", "call": "c1", "recording": "r1", "talk_left": 12.5,
                         "talk_right": 30.25, "overtalk": 1.5, "silence": 4.0, "longest_silence": 2.0,
                         "turns": 7, "duration": 48.0, "frames": [1, 2, 3]})
        log.append_sync({"type": "recording.purged", "call": "c1", "recording": "r1"})
        rec = log.call_record_sync("c1")
        assert rec.recordings == ("r1",)
        assert dict(rec.recording_analytics["r1"]) == {"talk_left": 12.5, "talk_right": 30.25, "overtalk": 1.5,
                                                        "silence": 4.0, "longest_silence": 2.0, "turns": 7,
                                                        "duration": 48.0}
        assert rec.purged_recordings == ("r1",)
        assert log.rebuild_call_records() >= 1 and log.call_record_sync("c1") == rec  # the projection rebuilds alike
    finally:
        log.close()
