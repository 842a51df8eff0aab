"""Event fan-out: topic patterns, role filtering, the screen pop, slow consumers."""

from __future__ import annotations

import fnmatch
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.control import EventHub, Principal
from orchestrator.control.events import topic_matcher
from tests.orchestrator.control.control_fakes import CallCentre


def run(coro):
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("suspended")


def call(cc, session, method, params=None):
    req = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        req["params"] = params
    return json.loads(run(cc.server.handle(session, json.dumps(req))))


def events(session):
    return [json.loads(t) for t in session.take_events(10_000)]


ADMIN = Principal("root", "admin")


# ---------------------------------------------------------------------------------------------- topics

names = st.lists(st.sampled_from(["call", "agent", "queue", "state", "offered", "x_1", "a"]), min_size=2,
                 max_size=4).map(".".join)
patterns = st.lists(st.sampled_from(["call", "agent", "*", "state", ".", "offered", "x_1", "a"]), min_size=1,
                    max_size=5).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=3), names)
def test_topic_patterns_match_like_shell_globs(pats, name):
    """Model: fnmatch on our alphabet (no ? or [ ]), where * also spans dots."""
    assert topic_matcher(pats)(name) == any(fnmatch.fnmatchcase(name, p) for p in pats)


def test_subscribe_replaces_topics_and_unsubscribe_stops(tmp_path):
    cc = CallCentre(tmp_path)
    s = cc.session("admin")
    assert call(cc, s, "events.subscribe", {"topics": ["call.*", "call.*", "agent.state"]})["result"] == \
        {"topics": ["call.*", "agent.state"]}
    cc.publish({"type": "queue.stats", "queue": "support", "waiting": 1})
    cc.publish({"type": "call.incoming", "call": "c9"})
    assert [e["method"] for e in events(s)] == ["call.incoming"]
    call(cc, s, "events.subscribe", {"topics": ["queue.*"]})
    cc.publish({"type": "queue.stats", "queue": "support", "waiting": 1})
    cc.publish({"type": "call.incoming", "call": "c9"})
    assert [e["method"] for e in events(s)] == ["queue.stats"]
    assert call(cc, s, "events.unsubscribe")["result"] == {"topics": []}
    cc.publish({"type": "queue.stats", "queue": "support", "waiting": 2})
    assert events(s) == [] and cc.hub.statistics().subscribers == 0


def test_notifications_are_json_rpc_with_the_event_and_its_time(tmp_path):
    cc = CallCentre(tmp_path)
    s = cc.session("crm")
    call(cc, s, "events.subscribe", {"topics": ["*"]})
    cc.clock.advance(7)
    cc.login_all("9001")
    got = events(s)
    assert got[0] == {"jsonrpc": "2.0", "method": "agent.state", "params": {
        "type": "agent.state", "at": cc.clock(), "agent": "9001", "state": "unregistered", "previous": "offline",
        "reason": None, "device": "dev-9001", "call": None, "queue": None, "time": cc.clock()}}
    assert [e["params"]["state"] for e in got] == ["unregistered", "available"]


def test_bad_events_are_refused():
    hub = EventHub()
    for bad in ({"type": "Call.X"}, {"type": "call"}, {"call": "c1"}, {"type": 3}):
        with pytest.raises(ValueError, match="type"):
            hub.publish(bad)


# ---------------------------------------------------------------------------------------------- roles

def scenario(cc):
    """Two calls: c1 answered by 9001 (held, ended, wrap-up), c2 by 9002; a queue.stats."""
    cc.login_all("9001", "9002")
    c1 = cc.calls.originate("+441", "2000", queue="support")["call"]
    c2 = cc.calls.originate("+442", "2000", queue="support")["call"]
    owner = {c: cc.calls.calls[c]["agent"] for c in (c1, c2)}
    mine = c1 if owner[c1] == "9001" else c2
    theirs = c2 if mine == c1 else c1
    for c in (c1, c2):
        cc.calls.answer(c)
    cc.calls.hold(mine)
    cc.calls.set_data(mine, {"ticket": 7})
    cc.publish({"type": "queue.stats", "queue": "support", "waiting": 0})
    cc.calls.hangup(mine)
    cc.calls.hangup(theirs)
    cc.publish({"type": "recording.ready", "call": theirs, "recording": "r9"})
    return mine, theirs


def test_role_filtering(tmp_path):
    cc = CallCentre(tmp_path, wrapup=30.0)
    sessions = {role: cc.session(role) for role in ("admin", "supervisor", "crm", "viewer", "agent")}
    for s in sessions.values():
        call(cc, s, "events.subscribe", {"topics": ["*"]})
    mine, theirs = scenario(cc)
    got = {role: events(s) for role, s in sessions.items()}
    everything = [e["params"] for e in got["admin"]]
    assert got["supervisor"] == got["crm"] == got["admin"]
    assert {e["type"] for e in everything} >= {"call.queued", "call.offered", "call.answered", "call.held",
                                               "call.ended", "agent.state", "queue.stats", "recording.ready"}
    assert [e["params"] for e in got["viewer"]] == [e for e in everything if e["type"].split(".")[0] in
                                                    ("agent", "queue")]
    agent_view = [e["params"] for e in got["agent"]]
    expected = [e for e in everything if e["type"].startswith("queue.") or e.get("agent") == "9001"
                or (e.get("call") == mine and e["type"] not in ("call.incoming", "call.queued"))]
    assert agent_view == expected
    assert all(e.get("call") != theirs for e in agent_view)
    assert any(e["type"] == "call.offered" and e["call"] == mine for e in agent_view)


def test_agent_loses_sight_of_a_call_after_its_wrapup(tmp_path):
    cc = CallCentre(tmp_path, wrapup=30.0)
    s = cc.session("agent")
    call(cc, s, "events.subscribe", {"topics": ["call.*"]})
    cc.login_all("9001")
    c = cc.calls.originate("+441", "2000", queue="support")["call"]
    cc.calls.answer(c)
    cc.calls.hangup(c)
    cc.publish({"type": "call.note", "call": c})            # still its call: in wrap-up
    assert cc.hub.owns_call("9001", c)
    cc.clock.advance(31)
    cc.feed(cc.acd.tick(cc.clock()))                       # wrap-up ends
    assert not cc.hub.owns_call("9001", c)
    cc.publish({"type": "call.note", "call": c})            # no longer its call
    assert [e["method"] for e in events(s)] == ["call.offered", "call.answered",
                                                "call.ended", "call.note", "call.wrapup_ended"]


# ---------------------------------------------------------------------------------------------- the screen pop

def test_screen_pop_has_caller_queue_ivr_data_and_crm_data(tmp_path):
    cc = CallCentre(tmp_path)
    agent = cc.session("agent")
    crm = cc.session("crm")
    call(cc, agent, "events.subscribe", {"topics": ["call.offered"]})
    call(cc, crm, "events.subscribe", {"topics": ["call.queued"]})
    # the caller walks the IVR, then waits: nobody is logged in yet
    c = "c-ivr-1"
    cc.calls.calls[c] = {"call": c, "caller": "+441632960001", "queue": "support", "agent": None,
                         "state": "queued", "data": {}, "offer": None}
    cc.publish({"type": "call.ivr", "call": c, "node": "account", "digits": "12345678"})
    cc.publish({"type": "call.ivr", "call": c, "node": "menu", "data": {"language": "en", "reason": "billing"}})
    cc.feed(cc.acd.call_arrived(c, "support", cc.clock(), caller="+441632960001", data={"account": "12345678"}))
    queued = events(crm)
    assert [e["params"]["call"] for e in queued] == [c]
    # the CRM looks the caller up and attaches the customer
    out = call(cc, crm, "call.set_data", {"call": c, "data": {"customer": "C-1001", "name": "Ada Lovelace"}})
    assert out["result"]["data"] == {"customer": "C-1001", "name": "Ada Lovelace"}
    cc.login_all("9001")
    pops = events(agent)
    assert len(pops) == 1
    pop = pops[0]["params"]
    assert pops[0]["method"] == "call.offered"
    assert (pop["call"], pop["caller"], pop["queue"], pop["agent"]) == (c, "+441632960001", "support", "9001")
    assert pop["data"] == {"account": "12345678", "customer": "C-1001", "name": "Ada Lovelace"}
    assert pop["ivr"] == {"account": "12345678", "language": "en", "reason": "billing"}


def test_set_data_merge_false_replaces(tmp_path):
    cc = CallCentre(tmp_path)
    cc.login_all("9001")
    c = cc.calls.originate("+441", "2000", queue="support")["call"]
    s = cc.session("crm")
    call(cc, s, "call.set_data", {"call": c, "data": {"a": 1}})
    out = call(cc, s, "call.set_data", {"call": c, "data": {"b": 2}, "merge": False})
    assert out["result"]["data"] == {"b": 2} and cc.hub.call_data(c) == {"b": 2}


# ---------------------------------------------------------------------------------------------- slow consumers

def test_a_full_queue_drops_and_says_so_in_place():
    hub = EventHub(capacity=4, disconnect_after=100)
    slow = hub.subscribe(ADMIN, ["*"])
    fast = hub.subscribe(ADMIN, ["*"])
    fast_got = []
    for i in range(10):
        hub.publish({"type": "call.tick", "n": i})
        fast_got += fast.take()
    assert [json.loads(t)["params"]["n"] for t in fast_got] == list(range(10))
    got = [json.loads(t) for t in slow.take()]
    assert [e["params"].get("n") for e in got] == [0, 1, 2, 3, None]
    assert got[4]["method"] == "events.dropped" and got[4]["params"]["count"] == 6
    hub.publish({"type": "call.tick", "n": 10})
    assert [json.loads(t)["params"]["n"] for t in slow.take()] == [10]
    assert hub.statistics().dropped == 6 and slow.dropped_total == 6 and not slow.closed


def test_gaps_mark_each_loss_where_it_happened():
    hub = EventHub(capacity=2, disconnect_after=100)
    sub = hub.subscribe(ADMIN, ["*"])
    for i in range(4):                 # 0 1 kept, 2 3 dropped
        hub.publish({"type": "a.b", "n": i})
    first = sub.take(limit=1)          # frees one slot
    hub.publish({"type": "a.b", "n": 4})          # kept after the gap
    hub.publish({"type": "a.b", "n": 5})          # dropped: a second gap
    rest = [json.loads(t) for t in first + sub.take()]
    assert [(e["method"], e["params"].get("n"), e["params"].get("count")) for e in rest] == [
        ("a.b", 0, None), ("a.b", 1, None), ("events.dropped", None, 2), ("a.b", 4, None),
        ("events.dropped", None, 1)]


def test_a_consumer_that_never_reads_is_closed_and_others_go_on():
    hub = EventHub(capacity=8)         # disconnect after a queue's worth of losses
    closed = []
    stuck = hub.subscribe(ADMIN, ["*"])
    stuck.on_close = lambda s: closed.append(s.close_reason)
    woken = []
    fine = hub.subscribe(ADMIN, ["*"])
    fine.wakeup = lambda: woken.append(1)
    for i in range(100):
        hub.publish({"type": "call.tick", "n": i})
        assert len(fine.take()) == 1
    assert closed == ["slow consumer"] and stuck.closed and len(stuck) == 0
    assert hub.statistics().slow_consumers_closed == 1 and hub.statistics().subscribers == 1
    assert len(woken) == 100           # woken once per event: its queue was empty each time


def test_one_encoding_is_shared_by_all_subscribers():
    hub = EventHub()
    subs = [hub.subscribe(ADMIN, ["call.*"]) for _ in range(50)]
    assert hub.publish({"type": "call.tick", "n": 1}) == 50
    texts = [s.take()[0] for s in subs]
    assert all(t is texts[0] for t in texts)


def test_closed_session_leaves_the_hub(tmp_path):
    cc = CallCentre(tmp_path)
    s = cc.session("admin")
    call(cc, s, "events.subscribe", {"topics": ["*"]})
    assert cc.hub.statistics().subscribers == 1
    cc.server.close_session(s)
    assert cc.hub.statistics().subscribers == 0 and s.subscription is None
