"""The control plane over the store engineer's event log (SQLite): the audit sink and audit.query,
report.* and cdr.query through orchestrator.report - the same numbers as orchestrator.metrics."""

from __future__ import annotations

import json

import pytest
import trio

from orchestrator.control import StoreAudit, StoreReports
from orchestrator.metrics import queue_metrics
from orchestrator.store import EventLog
from tests.orchestrator.control.control_fakes import CallCentre


@pytest.fixture
def log(tmp_path):
    with EventLog(f"sqlite:///{tmp_path / 'hotline.db'}", node="n1") as event_log:
        yield event_log


async def rpc(cc, session, method, params=None):
    req = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        req["params"] = params
    return json.loads(await cc.server.handle(session, json.dumps(req)))


def test_audit_entries_are_durable_in_the_store_and_queryable(tmp_path, log):
    cc = CallCentre(tmp_path)
    cc.server.audit = StoreAudit(log)
    cc.login_all("9001")

    async def main():
        admin = cc.session("admin")
        for reason in ("lunch", "training"):
            cc.clock.advance(10)
            out = await rpc(cc, cc.session("supervisor"), "agent.set_state",
                            {"agent": "9001", "state": "break", "reason": reason})
            assert out["result"]["state"] == "break"
        c = cc.calls.originate("+441", "2000", queue="sales")["call"]
        await rpc(cc, admin, "call.send_dtmf", {"call": c, "digits": "4111"})   # refused: ringing, still audited
        assert (await rpc(cc, cc.session("viewer"), "call.hangup", {"call": c}))["error"]["code"] == -32003
        return await rpc(cc, admin, "audit.query", {"limit": 3})

    rows = trio.run(main)["result"]
    assert [(r["principal"], r["method"], r["result"]) for r in rows] == [
        ("wallboard", "call.hangup", "error"), ("root", "call.send_dtmf", "error"),
        ("sue", "agent.set_state", "ok")]
    assert rows[1]["params"] == {"call": "c1", "digits": "***"} and rows[1]["error"].startswith("-32009 ")
    assert rows[2]["params"]["reason"] == "training" and rows[2]["role"] == "supervisor"
    stored = log.audit_entries_sync()
    assert len(stored) == 4 and stored[0].at == cc.clock() - 10 and stored[0].node == "n1"
    assert "4111" not in json.dumps([e.to_json() for e in stored])


def test_reports_and_cdr_query_over_the_store(tmp_path, log):
    cc = CallCentre(tmp_path)
    cc.server.services.reports = cc.server.services.cdr = StoreReports(log)
    cc.login_all("9001", "9002")
    for i in range(6):
        c = cc.calls.originate(f"+44{i}", "2000", queue=("support", "sales")[i % 2])["call"]
        cc.clock.advance(15 * i)
        if cc.calls.calls[c]["state"] == "ringing":
            cc.calls.answer(c)
        cc.clock.advance(40)
        cc.calls.hangup(c)
        cc.clock.advance(100)
    log.append_many_sync([e for e in cc.events])

    async def main():
        s = cc.session("supervisor")
        return (await rpc(cc, s, "report.queues"), await rpc(cc, s, "report.intervals", {"interval": 3600}),
                await rpc(cc, s, "cdr.query", {"limit": 4}), await rpc(cc, cc.session("agent"), "cdr.query"))

    queues, intervals, cdrs, mine = trio.run(main)
    want = queue_metrics(cc.events)
    assert {q["queue"]: (q["queued"], q["answered"], q["service_level"]) for q in queues["result"]} == \
        {q: (m.queued, m.answered, m.service_level) for q, m in want.items()}
    assert sum(r["queued"] for r in intervals["result"]) == 6
    assert len(cdrs["result"]) == 4 and all(r["queue"] in ("support", "sales") for r in cdrs["result"])
    assert mine["result"] and all(r["agent"] == "9001" for r in mine["result"])
