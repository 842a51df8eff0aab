"""Every state-changing method lands in the audit log: who, role, what, params (secrets
redacted), when, and how it ended - including refused attempts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.control import METHODS, AuditEntry, MemoryAuditLog, redact
from orchestrator.control.audit import REDACTED
from tests.orchestrator.control.control_fakes import CallCentre

MUTATING = sorted(m for m, x in METHODS.items() if x.mutating)


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


@pytest.fixture
def cc(tmp_path):
    centre = CallCentre(tmp_path)
    centre.login_all()
    return centre


def live_call(cc, answered=True):
    call_id = cc.calls.originate("+4415", "2000", queue="support")["call"]
    if answered:
        cc.calls.answer(call_id)
    return call_id


def params_for(cc, method):
    """Valid params that make each state-changing method succeed on a fresh centre."""
    c = live_call(cc, answered=method != "call.answer")
    return {
        "agent.login": {"agent": "9005", "device": "dev-9005"},
        "agent.logout": {"agent": "9004"},
        "agent.set_state": {"agent": "9004", "state": "break", "reason": "lunch"},
        "call.originate": {"from": "+4477", "to": "2000", "queue": "sales", "data": {"password": "hunter2"}},
        "call.answer": {"call": c},
        "call.hangup": {"call": c, "reason": "done"},
        "call.hold": {"call": c},
        "call.unhold": {"call": c},
        "call.transfer": {"call": c, "to": "2001"},
        "call.send_dtmf": {"call": c, "digits": "4111111111111111"},
        "call.set_data": {"call": c, "data": {"account": "A-1", "card_number": "4111111111111111"}},
        "recording.start": {"call": c},
        "recording.stop": {"call": c},
        "recording.pause": {"call": c},
        "recording.resume": {"call": c},
        "supervisor.listen": {"call": c, "device": "dev-sup"},
        "supervisor.whisper": {"call": c, "device": "dev-sup"},
        "supervisor.barge": {"call": c, "device": "dev-sup"},
        "ivr.reload": {},
    }[method]


def prepare(cc, method, params):
    """State some methods need first (a held call to unhold, a recording to stop...)."""
    if method == "agent.login":
        cc.feed(cc.acd.agent_logout("9005", cc.clock()))
    if method == "call.unhold":
        cc.calls.hold(params["call"])
    if method in ("recording.stop", "recording.pause"):
        cc.recordings.start(params["call"])
    if method == "recording.resume":
        cc.recordings.start(params["call"])
        cc.recordings.pause(params["call"])


def test_every_state_changing_method_is_in_the_table_set():
    assert MUTATING == sorted(["agent.login", "agent.logout", "agent.set_state", "call.originate", "call.answer",
                               "call.hangup", "call.hold", "call.unhold", "call.transfer", "call.send_dtmf",
                               "call.set_data", "recording.start", "recording.stop", "recording.pause",
                               "recording.resume", "supervisor.listen", "supervisor.whisper", "supervisor.barge",
                               "ivr.reload"])


@pytest.mark.parametrize("method", MUTATING)
def test_a_successful_call_is_audited(cc, method):
    params = params_for(cc, method)
    prepare(cc, method, params)
    cc.clock.advance(5)
    before = len(cc.audit)
    out = call(cc, cc.session("admin", transport="unix"), method, params)
    assert "result" in out, out
    assert len(cc.audit) == before + 1
    entry = cc.audit.entries[-1]
    assert (entry.principal, entry.role, entry.method, entry.result, entry.error) == \
        ("root", "admin", method, "ok", None)
    assert entry.at == cc.clock() and entry.transport == "unix"
    text = json.dumps(entry.to_dict())
    assert "hunter2" not in text and "4111111111111111" not in text
    for key, value in params.items():
        if key in ("digits",):
            assert entry.params[key] == REDACTED
        elif key == "data":
            assert set(entry.params[key]) == set(value)
        else:
            assert entry.params[key] == value


@pytest.mark.parametrize("method", MUTATING)
def test_refused_calls_are_audited_with_the_error(cc, method):
    params = params_for(cc, method)
    out = call(cc, cc.session("viewer"), method, params)
    assert out["error"]["code"] == -32003
    entry = cc.audit.entries[-1]
    assert (entry.principal, entry.role, entry.method, entry.result) == ("wallboard", "viewer", method, "error")
    assert entry.error == f"-32003 forbidden: role viewer may not call {method}"
    out = call(cc, cc.session(None), method, params)
    entry = cc.audit.entries[-1]
    assert (entry.principal, entry.role, entry.error) == ("anonymous", None,
                                                         "-32001 not authenticated: call auth.login first")


def test_failures_of_the_service_are_audited(cc):
    c = live_call(cc, answered=False)
    out = call(cc, cc.session("supervisor"), "call.hold", {"call": c})
    assert out["error"]["code"] == -32009
    entry = cc.audit.entries[-1]
    assert entry.result == "error" and entry.error.startswith("-32009 call: hold needs a connected call")
    out = call(cc, cc.session("supervisor"), "call.hangup", ["nope"])
    assert out["error"]["code"] == -32004
    assert cc.audit.entries[-1].params == {"call": "nope"} and cc.audit.entries[-1].error.startswith("-32004")


def test_reads_are_not_audited_but_logins_are(cc):
    s = cc.session(None)
    call(cc, s, "auth.login", {"token": "wrong-token-but-long-enough-000000"})
    call(cc, s, "auth.login", {"token": cc.token["crm"]})
    call(cc, s, "queue.list")
    call(cc, s, "call.list")
    assert [(e.method, e.principal, e.result) for e in cc.audit.entries] == [
        ("auth.login", "anonymous", "error"), ("auth.login", "crm", "ok")]
    assert all(e.params == {"token": REDACTED} for e in cc.audit.entries)


def test_admins_query_the_audit_log(cc):
    for i in range(3):
        cc.clock.advance(10)
        call(cc, cc.session("supervisor"), "agent.set_state", {"agent": "9003", "state": "break", "reason": f"r{i}"})
    call(cc, cc.session("admin"), "agent.set_state", {"agent": "9003", "state": "available"})
    rows = call(cc, cc.session("admin"), "audit.query", {"principal": "sue", "limit": 2})["result"]
    assert [r["params"]["reason"] for r in rows] == ["r2", "r1"]            # newest first
    assert all(r["method"] == "agent.set_state" and r["role"] == "supervisor" for r in rows)
    rows = call(cc, cc.session("admin"), "audit.query", {"from": cc.clock() - 5})["result"]
    assert [r["principal"] for r in rows] == ["root", "sue"]
    assert call(cc, cc.session("supervisor"), "audit.query")["error"]["code"] == -32003


def test_an_async_failing_sink_does_not_break_the_call(tmp_path):
    class Broken:
        def append(self, entry):
            raise OSError("disk full")

    cc = CallCentre(tmp_path)
    cc.server.audit = Broken()
    cc.login_all("9001")
    out = call(cc, cc.session("admin"), "agent.set_state", {"agent": "9001", "state": "break"})
    assert out["result"]["state"] == "break"
    assert cc.server.statistics().audit_failures == 1


@given(st.recursive(st.text(max_size=4) | st.integers(),
                    lambda inner: st.dictionaries(st.sampled_from(["a", "token", "pin", "x_password", "spin", "card"]),
                                                  inner, max_size=4) | st.lists(inner, max_size=3), max_leaves=10))
def test_redact_removes_every_secret_key_at_any_depth(value):
    out = redact({"v": value})

    def walk(orig, red):
        if isinstance(orig, dict):
            for k, v in orig.items():
                if k in ("token", "pin", "x_password", "card"):
                    assert red[k] == REDACTED
                else:
                    walk(v, red[k])
        elif isinstance(orig, list):
            for o, r in zip(orig, red, strict=True):
                walk(o, r)
        else:
            assert orig == red

    walk(value, out["v"])


def test_memory_log_bounds_and_checks():
    log = MemoryAuditLog(capacity=2)
    for i in range(3):
        log.append(AuditEntry(at=i, principal="p", role="admin", method=f"m{i}"))
    assert [e.method for e in log.entries] == ["m1", "m2"]
    with pytest.raises(ValueError, match="entry"):
        log.append({"at": 1})
    with pytest.raises(ValueError, match="capacity"):
        MemoryAuditLog(0)
