"""The methods over the real services (ACD policy, IVR registry and lint, orchestrator.metrics) and
over the stand-ins for the ones still being written; service errors map to the contract's codes."""

from __future__ import annotations

import json

import pytest
import trio

from orchestrator.control import Services
from orchestrator.control.telemetry import QueueStatsPublisher
from orchestrator.metrics import agent_metrics, interval_metrics, queue_metrics, queue_stats
from tests.orchestrator.control.control_fakes import TINY_FLOW, CallCentre


def run(coro):
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("suspended")


def call(cc, method, params=None, role="admin"):
    req = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        req["params"] = params
    return json.loads(run(cc.server.handle(cc.session(role), json.dumps(req))))


@pytest.fixture
def cc(tmp_path):
    centre = CallCentre(tmp_path)
    centre.login_all("9001", "9002", "9003")
    return centre


def day_of_traffic(cc):
    """A few calls over an hour: answered quickly and late, abandoned, across two queues."""
    made = []
    for i in range(12):
        q = "support" if i % 3 else "sales"
        c = cc.calls.originate(f"+4430{i}", "2000", queue=q)["call"]
        made.append(c)
        cc.clock.advance(25 * (i % 4))
        if cc.calls.calls[c]["state"] == "ringing":
            cc.calls.answer(c)
        cc.clock.advance(60)
        cc.calls.hangup(c)
        cc.clock.advance(300)
    return made


def test_agents_and_queues_over_the_acd(cc):
    agents = call(cc, "agent.list")["result"]
    assert [a["agent"] for a in agents] == ["9001", "9002", "9003", "9004", "9005"]
    assert [a["state"] for a in agents] == ["available"] * 3 + ["offline"] * 2
    assert call(cc, "agent.list", {"state": "offline"})["result"][0]["agent"] == "9004"
    assert call(cc, "agent.get", ["nobody"])["error"] == {"code": -32004, "message": "agent: no agent 'nobody'"}
    out = call(cc, "agent.login", {"agent": "9004", "device": "dev-9001"})
    assert out["error"]["code"] == -32009 and "dev-9001" in out["error"]["message"]
    out = call(cc, "agent.login", {"agent": "9004", "device": "dev-9004", "state": "break", "reason": "training"})
    assert (out["result"]["state"], out["result"]["reason"]) == ("break", "training")
    assert call(cc, "agent.get", {"agent": "9004"})["result"]["device"] == "dev-9004"
    queues = call(cc, "queue.list")["result"]
    assert [q["queue"] for q in queues] == cc.acd.queues()
    assert call(cc, "queue.get", ["sales"])["result"]["agents_by_state"]["available"] == 3
    assert call(cc, "queue.get", ["nope"])["error"]["code"] == -32004


def test_agent_since_follows_the_state_events(cc):
    cc.clock.advance(30)
    call(cc, "agent.set_state", {"agent": "9002", "state": "break", "reason": "lunch"})
    got = call(cc, "agent.get", {"agent": "9002"})["result"]
    assert (got["state"], got["reason"], got["since"]) == ("break", "lunch", cc.clock())
    assert call(cc, "agent.get", {"agent": "9004"})["result"]["since"] is None     # no state event seen


def test_queue_stats_is_orchestrator_metrics(cc):
    day_of_traffic(cc)
    for q in ("support", "sales"):
        got = call(cc, "queue.stats", {"queue": q})["result"]
        want = queue_stats(cc.acd.queue_snapshot(q, cc.clock()), cc.events).to_dict()
        assert got == json.loads(json.dumps(want))
        assert got["queued"] == 8 if q == "support" else got["queued"] == 4
    first = next(e for e in cc.events if e.type == "call.queued" and e.queue == "support")
    windowed = call(cc, "queue.stats", {"queue": "support", "from": first.at, "to": first.at + 1})
    assert windowed["result"]["queued"] == 1


def test_reports_are_orchestrator_metrics(cc):
    day_of_traffic(cc)
    assert call(cc, "report.queues")["result"] == json.loads(json.dumps(
        [dict(vars(m)) for m in queue_metrics(cc.events).values()]))
    agents = call(cc, "report.agents")["result"]
    want = agent_metrics(cc.events)
    assert [a["agent"] for a in agents] == sorted(want) and all(
        a["handled"] == want[a["agent"]].handled for a in agents)
    rows = call(cc, "report.intervals", {"interval": 1800})["result"]
    want_rows = interval_metrics(cc.events, interval=1800)
    assert [(r["start"], r["queue"]["queue"], r["queue"]["queued"]) for r in rows] == \
        [(w.start, w.queue.queue, w.queue.queued) for w in want_rows]
    assert sum(r["queue"]["queued"] for r in rows) == 12


def test_ivr_list_validate_reload(cc):
    flows = call(cc, "ivr.list")["result"]
    assert [(f["name"], f["nodes"]) for f in flows] == [("tiny", 1)]
    assert call(cc, "ivr.validate", {"source": TINY_FLOW, "name": "x"})["result"] == {"ok": True, "problems": []}
    bad = TINY_FLOW.replace("reason: done", "reasn: done")
    assert call(cc, "ivr.validate", {"source": bad})["result"] == {"ok": False, "problems": [
        {"line": 7, "message": "node 'bye' (hangup): unknown key 'reasn'"}]}
    (cc.flow_dir / "second.yaml").write_text(TINY_FLOW)
    out = call(cc, "ivr.reload")["result"]
    assert (out["added"], out["changed"], out["removed"]) == (["second"], [], [])
    (cc.flow_dir / "third.yaml").write_text(bad)
    out = call(cc, "ivr.reload")
    assert out["error"]["code"] == -32009 and out["error"]["data"]["problems"] == [
        f"{cc.flow_dir / 'third.yaml'}:7: node 'bye' (hangup): unknown key 'reasn'"]
    assert [f["name"] for f in call(cc, "ivr.list")["result"]] == ["second", "tiny"]        # unchanged


def test_call_control_errors_map_to_the_contract_codes(cc):
    c = cc.calls.originate("+44", "2000", queue="support")["call"]
    assert call(cc, "call.hold", {"call": c})["error"] == {
        "code": -32009, "message": f"call: hold needs a connected call; {c} is ringing"}
    assert call(cc, "call.send_dtmf", {"call": c, "digits": "1"})["error"]["code"] == -32009
    assert call(cc, "call.get", {"call": "zzz"})["error"] == {"code": -32004, "message": "call: no live call 'zzz'"}
    assert call(cc, "call.answer", {"call": c})["result"]["state"] == "connected"
    assert call(cc, "call.answer", {"call": c})["error"]["code"] == -32009
    assert call(cc, "call.send_dtmf", {"call": c, "digits": "4#"})["result"] == {"call": c, "sent": 2}
    assert cc.calls.dtmf == [(c, "4#")]
    assert call(cc, "call.list", {"queue": "support"})["result"][0]["call"] == c
    assert call(cc, "call.list", {"queue": "sales"})["result"] == []


def test_recordings_and_supervisor_sessions(cc):
    c = cc.calls.originate("+44", "2000", queue="support")["call"]
    cc.calls.answer(c)
    rec = call(cc, "recording.start", {"call": c})["result"]
    assert call(cc, "recording.start", {"call": c})["error"]["code"] == -32009
    assert call(cc, "recording.resume", {"call": c})["error"]["code"] == -32009        # not paused
    assert call(cc, "recording.pause", {"call": c})["result"]["state"] == "paused"
    assert call(cc, "recording.resume", {"call": c})["result"]["state"] == "recording"
    assert call(cc, "recording.stop", {"call": c})["result"]["state"] == "stopped"
    assert call(cc, "recording.get", {"recording": rec["recording"]})["result"]["state"] == "stopped"
    assert call(cc, "recording.get", {"recording": "r999"})["error"]["code"] == -32004
    assert [r["recording"] for r in call(cc, "recording.list", {"call": c})["result"]] == [rec["recording"]]
    listen = call(cc, "supervisor.listen", {"call": c, "device": "dev-sup"}, role="supervisor")["result"]
    whisper = call(cc, "supervisor.whisper", {"call": c, "device": "dev-sup"}, role="supervisor")["result"]
    assert whisper["session"] == listen["session"] and whisper["mode"] == "whisper" and whisper["switches"] == 1
    assert whisper["supervisor"] == "sue"


def test_cdr_query_window_and_limit(cc):
    made = day_of_traffic(cc)
    rows = call(cc, "cdr.query", {"limit": 3})["result"]
    assert len(rows) == 3
    everything = call(cc, "cdr.query", {"limit": 100})["result"]
    answered = [c for c in made if any(e.type == "call.ended" and e.call == c for e in cc.events)]
    assert [r["call"] for r in everything] == answered
    start = everything[2]["ended_at"]
    assert [r["call"] for r in call(cc, "cdr.query", {"from": start})["result"]] == answered[2:]
    assert all(r["queue"] == "sales" for r in call(cc, "cdr.query", {"queue": "sales"})["result"])


def test_missing_services_say_so(tmp_path):
    cc = CallCentre(tmp_path)
    cc.server.services = Services()
    out = call(cc, "call.list")
    assert out["error"] == {"code": -32603, "message": "calls: the service is not running on this node"}
    stats = call(cc, "system.stats")["result"]
    assert stats["control"]["requests"] >= 1 and stats["events"]["subscribers"] == 0


def test_queue_stats_publisher_sends_only_changes(cc):
    s = cc.session("viewer")
    call_sub = json.dumps({"jsonrpc": "2.0", "method": "events.subscribe", "params": {"topics": ["queue.stats"]},
                           "id": 1})
    run(cc.server.handle(s, call_sub))
    publisher = QueueStatsPublisher(cc.hub, cc.binding, interval=0.01)

    async def main():
        assert await publisher.publish_changed() == 2          # first round: every queue
        assert await publisher.publish_changed() == 0          # nothing changed
        cc.calls.originate("+44", "2001", queue="sales")
        assert await publisher.publish_changed() == 2          # both queues share the agent who rings
        async with trio.open_nursery() as nursery:
            await nursery.start(publisher.run)
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    trio.run(main)
    got = [json.loads(t)["params"] for t in s.take_events()]
    assert [g["queue"] for g in got] == ["support", "sales", "support", "sales"]
    assert got[-1] == {"type": "queue.stats", **queue_stats(cc.acd.queue_snapshot("sales", cc.clock()),
                                                            cc.events).to_dict(), "time": cc.clock()}
    with pytest.raises(ValueError, match="interval"):
        QueueStatsPublisher(cc.hub, cc.binding, interval=0)
