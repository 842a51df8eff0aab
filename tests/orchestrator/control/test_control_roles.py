"""The full role matrix: for every method, every role that must not call it gets -32003,
an unauthenticated connection gets -32001, and role agent is confined to itself.

The expected policy is written out here by hand (not read from the table), so a
change to the table that widens a role fails this test.
"""

from __future__ import annotations

import json

import pytest

from orchestrator.control import METHODS, ROLES
from tests.orchestrator.control.control_fakes import CallCentre
from tests.orchestrator.control.test_control_params import sample

A, S, G, C, V = "admin", "supervisor", "agent", "crm", "viewer"
POLICY = {
    "system.ping": {A, S, G, C, V},
    "system.version": {A, S, G, C, V},
    "system.stats": {A, S},
    "auth.login": {A, S, G, C, V},
    "auth.whoami": {A, S, G, C, V},
    "agent.list": {A, S, C, V},
    "agent.get": {A, S, G, C, V},
    "agent.login": {A, S, G},
    "agent.logout": {A, S, G},
    "agent.set_state": {A, S, G},
    "queue.list": {A, S, G, C, V},
    "queue.get": {A, S, G, C, V},
    "queue.stats": {A, S, G, C, V},
    "call.list": {A, S, G, C},
    "call.get": {A, S, G, C},
    "call.originate": {A, S, G, C},
    "call.answer": {A, S, G, C},
    "call.hangup": {A, S, G, C},
    "call.hold": {A, S, G, C},
    "call.unhold": {A, S, G, C},
    "call.transfer": {A, S, G, C},
    "call.send_dtmf": {A, S, G, C},
    "call.set_data": {A, S, G, C},
    "recording.start": {A, S, G, C},
    "recording.stop": {A, S, G, C},
    "recording.pause": {A, S, G, C},
    "recording.resume": {A, S, G, C},
    "recording.get": {A, S, C},
    "recording.list": {A, S, C},
    "supervisor.listen": {A, S},
    "supervisor.whisper": {A, S},
    "supervisor.barge": {A, S},
    "ivr.list": {A, S},
    "ivr.validate": {A, S},
    "ivr.reload": {A},
    "cdr.query": {A, S, G, C},
    "report.queues": {A, S},
    "report.agents": {A, S},
    "report.intervals": {A, S},
    "events.subscribe": {A, S, G, C, V},
    "events.unsubscribe": {A, S, G, C, V},
    "audit.query": {A},
}
CONTRACT_METHODS = ["system.ping", "system.version", "system.stats", "agent.list", "agent.get",
    "agent.login", "agent.logout", "agent.set_state", "queue.list", "queue.get", "queue.stats",
    "call.list", "call.get", "call.originate", "call.hangup", "call.hold", "call.unhold", "call.transfer",
    "call.send_dtmf", "call.set_data", "recording.start", "recording.stop", "recording.pause",
    "recording.resume", "recording.get", "recording.list", "supervisor.listen", "supervisor.whisper",
    "supervisor.barge", "ivr.list", "ivr.validate", "ivr.reload", "cdr.query", "report.queues",
    "report.agents", "report.intervals", "events.subscribe", "auth.login"]

FORBIDDEN = [(m, r) for m in sorted(METHODS) for r in ROLES if r not in POLICY[m]]
ALLOWED = [(m, r) for m in sorted(METHODS) for r in ROLES if r in POLICY[m]]


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


@pytest.fixture(scope="module")
def flows_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("roles")


def make_centre(flows_dir):
    """Five agents logged in, two calls ringing 9001 and 9002."""
    cc = CallCentre(flows_dir)
    cc.login_all()
    cc.c1 = cc.calls.originate("+441", "2000", queue="support")["call"]
    cc.c2 = cc.calls.originate("+442", "2000", queue="support")["call"]
    return cc


@pytest.fixture
def centre(flows_dir):
    return make_centre(flows_dir)


def test_the_policy_covers_the_table_and_the_contract():
    assert set(POLICY) == set(METHODS)
    assert set(CONTRACT_METHODS) <= set(METHODS)


def test_the_table_grants_exactly_the_policy():
    for name, method in METHODS.items():
        assert set(method.roles) == POLICY[name], name


@pytest.mark.parametrize("role", ROLES)
def test_forbidden_roles_get_32003(centre, role):
    """Every method this role must not call answers -32003, with params and without."""
    wrong = []
    for method in sorted(m for m, r in FORBIDDEN if r == role):
        params = {p.name: sample(p.kind) for p in METHODS[method].schema.params if p.required}
        out = call(centre, centre.session(role), method, params)
        if out.get("error") != {"code": -32003, "message": f"forbidden: role {role} may not call {method}"}:
            wrong.append((method, out))
        # without params too: the role is checked before the params, so nothing about them leaks
        if call(centre, centre.session(role), method).get("error", {}).get("code") != -32003:
            wrong.append((method, "no params"))
    assert not wrong
    assert sum(1 for _, r in FORBIDDEN if r == role) == sum(1 for m in POLICY if role not in POLICY[m])


def test_unauthenticated_gets_32001(centre):
    wrong = []
    for method in sorted(METHODS):
        out = call(centre, centre.session(None), method,
                   {p.name: sample(p.kind) for p in METHODS[method].schema.params if p.required})
        expected = {"code": -32001, "message": "token: not a valid token" if method == "auth.login"
                    else "not authenticated: call auth.login first"}
        if out.get("error") != expected:
            wrong.append((method, out))
    assert not wrong


@pytest.mark.parametrize("role", ROLES)
def test_allowed_roles_pass_the_role_check(flows_dir, role):
    wrong = []
    for method in sorted(m for m, r in ALLOWED if r == role):
        centre = make_centre(flows_dir)      # allowed calls change state: a fresh centre for each
        params = {p.name: sample(p.kind) for p in METHODS[method].schema.params if p.required}
        if role == "agent" and METHODS[method].own == "agent":
            params.pop("agent", None)
        if role == "agent" and METHODS[method].own == "call":
            params["call"] = own_call(centre)
        if role == "agent" and METHODS[method].own == "originate":
            params["from"] = "dev-9001"
        if method == "auth.login":
            params["token"] = centre.token[role]
        out = call(centre, centre.session(role), method, params)
        if out.get("error", {}).get("code") in (-32001, -32003):
            wrong.append((method, out))
    assert not wrong


def own_call(cc) -> str:
    return next(c for c in (cc.c1, cc.c2) if cc.calls.calls[c]["agent"] == "9001")


def other_call(cc) -> str:
    return next(c for c in (cc.c1, cc.c2) if cc.calls.calls[c]["agent"] != "9001")


OWN_AGENT = sorted(m for m, x in METHODS.items() if x.own == "agent")
OWN_CALL = sorted(m for m, x in METHODS.items() if x.own == "call")


@pytest.mark.parametrize("method", OWN_AGENT)
def test_agent_may_act_only_on_itself(centre, method):
    params = {p.name: sample(p.kind) for p in METHODS[method].schema.params if p.required}
    params["agent"] = "9002"
    out = call(centre, centre.session("agent"), method, params)
    assert out["error"] == {"code": -32003, "message": "agent: an agent may act only on itself (9001)"}


@pytest.mark.parametrize("method", OWN_CALL)
def test_agent_may_act_only_on_its_own_calls(centre, method):
    params = {p.name: sample(p.kind) for p in METHODS[method].schema.params if p.required}
    for call_id in (other_call(centre), "no-such-call"):
        params["call"] = call_id
        out = call(centre, centre.session("agent"), method, params)
        assert out["error"] == {"code": -32003, "message": f"call: {call_id} is not one of your calls"}


def test_agent_defaults_to_itself(centre):
    out = call(centre, centre.session("agent"), "agent.get", {})
    assert out["result"]["agent"] == "9001"


def test_agent_originates_only_from_its_own_device(centre):
    s = centre.session("agent")
    assert call(centre, s, "call.originate", {"from": "dev-9002", "to": "+4420"})["error"]["code"] == -32003
    out = call(centre, s, "call.originate", {"from": "dev-9001", "to": "+4420"})
    assert out["result"]["agent"] == "9001"
    centre.calls.hangup(out["result"]["call"])


def test_agent_lists_only_its_own_calls_and_records(centre):
    s = centre.session("agent")
    listed = call(centre, s, "call.list")["result"]
    assert [c["call"] for c in listed] == [own_call(centre)]
    assert len(call(centre, centre.session("crm"), "call.list")["result"]) == 2
    assert call(centre, s, "cdr.query", {"agent": "9002"})["error"]["code"] == -32003
    assert call(centre, s, "cdr.query", {})["result"] == []


def test_login_switches_principal_and_bad_token_keeps_none(centre):
    s = centre.session(None)
    assert call(centre, s, "auth.login", {"token": "x" * 43})["error"]["code"] == -32001
    assert call(centre, s, "system.ping")["error"]["code"] == -32001
    assert call(centre, s, "auth.login", {"token": centre.token["viewer"]})["result"] == \
        {"principal": "wallboard", "role": "viewer", "agent": None}
    assert call(centre, s, "call.list")["error"]["code"] == -32003
    assert call(centre, s, "auth.login", [centre.token["crm"]])["result"]["role"] == "crm"
    assert call(centre, s, "call.list")["result"]


def test_version_lists_the_methods_of_the_role(centre):
    names = {m["name"] for m in call(centre, centre.session("viewer"), "system.version")["result"]["methods"]}
    assert names == {m for m, roles in POLICY.items() if "viewer" in roles}
