"""Parameter validation of every method in the table: -32602 names the parameter and says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.control import METHODS, InvalidParams
from orchestrator.control.schema import (
    Bool,
    Choice,
    Digits,
    Int,
    IntChoice,
    JsonObject,
    Number,
    Param,
    Schema,
    Str,
    StrList,
    Time,
)
from tests.orchestrator.control.control_fakes import CallCentre


def sample(kind):
    """A valid value of each parameter type."""
    if isinstance(kind, Choice):
        return kind.choices[0]
    if isinstance(kind, IntChoice):
        return kind.choices[0]
    if isinstance(kind, Digits):
        return "12#"
    if isinstance(kind, Str):
        return "x1"
    if isinstance(kind, Int):
        return kind.min if kind.min is not None else 1
    if isinstance(kind, Number):
        return 1.0
    if isinstance(kind, Bool):
        return True
    if isinstance(kind, JsonObject):
        return {"k": "v"}
    if isinstance(kind, StrList):
        return ["call.*"]
    if isinstance(kind, Time):
        return 1_700_000_000
    raise AssertionError(f"no sample for {kind!r}")


def wrong(kind):
    """A value of the wrong JSON type for each parameter type."""
    if isinstance(kind, (JsonObject, StrList)):
        return "not-a-container"
    return [1]


CASES = [(m.name, p) for m in METHODS.values() for p in m.schema.params]


def call(cc, session, method, params):
    """One request through the whole dispatcher (the fakes are synchronous: no event loop needed)."""
    coro = cc.server.handle(session, json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}))
    try:
        coro.send(None)
    except StopIteration as stop:
        return json.loads(stop.value)
    raise AssertionError("suspended")


@pytest.fixture(scope="module")
def centre(tmp_path_factory):
    return CallCentre(tmp_path_factory.mktemp("params"))


def valid_params(method):
    return {p.name: sample(p.kind) for p in METHODS[method].schema.params if p.required}


def test_every_method_has_a_schema_and_every_param_a_sample():
    assert len(METHODS) >= 42
    for name, p in CASES:
        assert p.kind.check(p.name, sample(p.kind)) is not None or isinstance(p.kind, Bool), (name, p.name)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_missing_required_param_says_required(centre, method):
    for param in (p for p in METHODS[method].schema.params if p.required):
        params = valid_params(method)
        del params[param.name]
        out = call(centre, centre.session("admin"), method, params)
        assert out["error"] == {"code": -32602, "message": f"{param.name}: required"}, param.name


@pytest.mark.parametrize("method", sorted(METHODS))
def test_wrong_type_names_the_param_and_the_expected_type(centre, method):
    for param in METHODS[method].schema.params:
        params = valid_params(method)
        params[param.name] = wrong(param.kind)
        out = call(centre, centre.session("admin"), method, params)
        assert out["error"]["code"] == -32602, param.name
        assert out["error"]["message"].startswith(f"{param.name}: must "), out


@pytest.mark.parametrize("method", sorted(METHODS))
def test_unknown_param_is_named(centre, method):
    params = {**valid_params(method), "colour": "blue"}
    out = call(centre, centre.session("admin"), method, params)
    assert out["error"]["code"] == -32602
    assert out["error"]["message"].startswith("colour: unknown parameter (expected ")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_too_many_positional_params(centre, method):
    n = len(METHODS[method].schema.params)
    out = call(centre, centre.session("admin"), method, [sample(p.kind) for p in METHODS[method].schema.params]
               + ["extra"])
    assert out["error"]["code"] == -32602
    assert out["error"]["message"].startswith(f"params: at most {n} positional parameters")


def test_the_contract_examples(centre):
    s = centre.session("admin")
    assert call(centre, s, "agent.set_state", {"state": "break"})["error"]["message"] == "agent: required"
    assert call(centre, s, "agent.set_state", {"agent": "9001", "state": "lunch"})["error"]["message"] == \
        "state: must be one of available, break, offline"
    assert call(centre, s, "cdr.query", {"limit": 0})["error"]["message"] == \
        "limit: must be an integer from 1 to 10000"
    assert call(centre, s, "call.transfer", {"call": "c1", "to": "2001", "mode": "warm"})["error"]["message"] == \
        "mode: must be one of blind, attended"
    assert call(centre, s, "call.send_dtmf", {"call": "c1", "digits": "12x"})["error"]["message"] == \
        "digits: must be DTMF digits (0-9, *, #, A-D)"
    assert call(centre, s, "report.intervals", {"interval": 600})["error"]["message"] == \
        "interval: must be one of 900, 1800, 3600"
    assert call(centre, s, "events.subscribe", {"topics": ["call.*", "Agent.State"]})["error"]["message"] == \
        "topics[1]: must be a topic pattern (lower-case letters, digits, _ . and *)"
    assert call(centre, s, "events.subscribe", {"topics": []})["error"]["message"] == "topics: must not be empty"
    assert call(centre, s, "cdr.query", {"from": 200, "to": 100})["error"]["message"] == \
        "to: must not be before from"
    assert call(centre, s, "cdr.query", {"from": "yesterday"})["error"]["message"] == \
        "from: must be Unix seconds or an ISO 8601 time with a UTC offset"
    assert call(centre, s, "agent.get", {"agent": "../etc"})["error"]["message"] == \
        "agent: must be an id (letters, digits and _ . : @ + -)"
    assert call(centre, s, "call.set_data", {"call": "c1", "data": {"x": "y" * 20000}})["error"]["message"] \
        .startswith("data: must be at most 16384 bytes of JSON")


def test_positional_params_bind_in_declared_order(centre):
    centre.login_all("9002")
    s = centre.session("admin")
    out = call(centre, s, "agent.set_state", ["9002", "break", "lunch"])
    assert out["result"]["state"] == "break" and out["result"]["reason"] == "lunch"
    out = call(centre, s, "agent.set_state", {"agent": "9002", "state": "available", "reason": None})
    assert out["result"]["state"] == "available"           # null for an optional param = not given


# ---------------------------------------------------------------------------------------------- kinds vs models

@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3),
                 st.none()), st.integers(-5, 5), st.integers(0, 10))
def test_int_kind_matches_a_plain_model(value, lo, span):
    kind = Int(min=lo, max=lo + span)
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and float(value).is_integer()
          and lo <= value <= lo + span)
    if ok:
        assert kind.check("n", value) == int(value)
    else:
        with pytest.raises(InvalidParams, match=f"^n: must be an integer from {lo} to {lo + span}$"):
            kind.check("n", value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.integers(1, 4), st.integers(4, 10))
def test_str_kind_bounds(value, lo, hi):
    kind = Str(min_len=lo, max_len=hi)
    if lo <= len(value) <= hi:
        assert kind.check("s", value) == value
    else:
        with pytest.raises(InvalidParams, match="^s: must "):
            kind.check("s", value)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_time_kind_reads_iso_8601_and_unix_seconds(when):
    kind = Time()
    assert kind.check("from", when.isoformat()) == pytest.approx(when.timestamp())
    assert kind.check("from", when.isoformat().replace("+00:00", "Z")) == pytest.approx(when.timestamp())
    assert kind.check("from", when.timestamp()) == when.timestamp()
    with pytest.raises(InvalidParams):
        kind.check("from", when.replace(tzinfo=None).isoformat())      # no offset: ambiguous, refused


def test_schema_definition_errors():
    with pytest.raises(ValueError, match="same name"):
        Schema(Param("a", Str()), Param("a", Int()))
    assert Schema(Param("a", Str(), required=False, default="d")).bind(None) == {"a": "d"}
    assert Schema(Param("a", Str())).bind(None, defaults={"a": "me"}) == {"a": "me"}
