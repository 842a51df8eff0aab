"""JSON-RPC 2.0 framing and dispatch against the specification's own examples and corner cases.

The examples in section 7 of the specification are used verbatim (with our method
names). The sans-IO core is driven without any event loop: the dispatcher's coroutine
is stepped by hand, which also proves it needs nothing from Trio.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.control import (
    InvalidParams,
    LineFramer,
    MessageTooLarge,
    Principal,
    RpcServer,
    TokenStore,
    assemble,
    parse,
)
from orchestrator.control.methods import Method
from orchestrator.control.protocol import Invalid, Request, to_json
from orchestrator.control.schema import Int, Param, Schema


def run(coro):
    """Drive a coroutine that never suspends (no event loop at all)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine suspended: the core needed an event loop")


def spec_server():
    """An RpcServer whose table has the specification's example methods, and an admin session."""
    def subtract(ctx, p):
        return p["minuend"] - p["subtrahend"]

    def total(ctx, p):
        return sum(p["values"] or [])

    def boom(ctx, p):
        raise RuntimeError("bug")

    calls = []

    def update(ctx, p):
        calls.append(p)

    class Ints(Int):
        def check(self, name, value):
            if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                raise InvalidParams(f"{name}: must be an array of integers")
            return value

    anyone = frozenset({"admin"})
    table = {
        "subtract": Method("subtract", Schema(Param("minuend", Int()), Param("subtrahend", Int())), anyone, False,
                           subtract, "spec example"),
        "sum": Method("sum", Schema(Param("values", Ints(), required=False)), anyone, False, total, "sum"),
        "update": Method("update", Schema(Param("a", Int(), required=False), Param("b", Int(), required=False),
                                          Param("c", Int(), required=False), Param("d", Int(), required=False),
                                          Param("e", Int(), required=False)), anyone, False, update, "notify"),
        "get_data": Method("get_data", Schema(), anyone, False, lambda ctx, p: ["hello", 5], "data"),
        "boom": Method("boom", Schema(), anyone, False, boom, "a bug"),
    }
    tokens = TokenStore()
    server = RpcServer(tokens=tokens, methods=table, clock=lambda: 0.0)
    session = server.new_session(transport="test", principal=Principal("root", "admin"))
    return server, session, calls


def rpc(server, session, text):
    out = run(server.handle(session, text))
    return None if out is None else json.loads(out)


# ---------------------------------------------------------------------------------------------- spec section 7

def test_positional_and_named_parameters():
    server, s, _ = spec_server()
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}') == \
        {"jsonrpc": "2.0", "result": 19, "id": 1}
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}') == \
        {"jsonrpc": "2.0", "result": -19, "id": 2}
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, '
                          '"id": 3}') == {"jsonrpc": "2.0", "result": 19, "id": 3}
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, '
                          '"id": 4}') == {"jsonrpc": "2.0", "result": 19, "id": 4}


def test_notifications_get_no_response_even_on_error():
    server, s, calls = spec_server()
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}') is None
    assert calls == [{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}]
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "foobar"}') is None            # unknown method
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "subtract", "params": ["x"]}') is None  # bad params
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "boom"}') is None               # internal error


def test_method_not_found_and_reserved_names():
    server, s, _ = spec_server()
    assert rpc(server, s, '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}') == \
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found: foobar"}, "id": "1"}
    out = rpc(server, s, '{"jsonrpc": "2.0", "method": "rpc.discover", "id": 7}')
    assert out["error"]["code"] == -32601 and out["id"] == 7


def test_parse_error_has_null_id():
    server, s, _ = spec_server()
    out = rpc(server, s, '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    assert out["error"]["code"] == -32700 and out["id"] is None and set(out) == {"jsonrpc", "error", "id"}


def test_invalid_request_object():
    server, s, _ = spec_server()
    out = rpc(server, s, '{"jsonrpc": "2.0", "method": 1, "params": "bar"}')
    assert out["error"]["code"] == -32600 and out["id"] is None


def test_batch_with_invalid_json_is_one_parse_error():
    server, s, _ = spec_server()
    out = rpc(server, s, '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
                         '{"jsonrpc": "2.0", "method"]')
    assert isinstance(out, dict) and out["error"]["code"] == -32700 and out["id"] is None


def test_empty_batch_is_one_invalid_request_not_an_array():
    server, s, _ = spec_server()
    out = rpc(server, s, "[]")
    assert out == {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: empty batch"},
                   "id": None}


def test_invalid_batch_elements_each_get_an_error():
    server, s, _ = spec_server()
    assert rpc(server, s, "[1]") == [{"jsonrpc": "2.0", "error": {"code": -32600, "message":
                                     "Invalid Request: a request must be a JSON object"}, "id": None}]
    out = rpc(server, s, "[1,2,3]")
    assert [o["error"]["code"] for o in out] == [-32600] * 3 and all(o["id"] is None for o in out)


def test_mixed_batch_in_order():
    server, s, _ = spec_server()
    out = rpc(server, s, """[
        {"jsonrpc": "2.0", "method": "sum", "params": [[1,2,4]], "id": "1"},
        {"jsonrpc": "2.0", "method": "update", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]""")
    assert out == [
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": 'Invalid Request: jsonrpc must be exactly "2.0"'},
         "id": None},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found: foo.get"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
    ]


def test_batch_of_notifications_gets_nothing():
    server, s, calls = spec_server()
    text = '[{"jsonrpc": "2.0", "method": "update", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "update", ' \
           '"params": [7]}]'
    assert run(server.handle(s, text)) is None
    assert len(calls) == 2


# ---------------------------------------------------------------------------------------------- ids and members

@pytest.mark.parametrize("rid", ["abc", "", 0, -5, 12345678901234567890, 1.5, None])
def test_valid_ids_are_echoed_exactly(rid):
    server, s, _ = spec_server()
    out = rpc(server, s, json.dumps({"jsonrpc": "2.0", "method": "subtract", "params": [3, 1], "id": rid}))
    assert out == {"jsonrpc": "2.0", "result": 2, "id": rid}


def test_id_null_is_a_request_not_a_notification():
    server, s, _ = spec_server()
    out = rpc(server, s, '{"jsonrpc": "2.0", "method": "foobar", "id": null}')
    assert out["id"] is None and out["error"]["code"] == -32601


@pytest.mark.parametrize("rid", [True, [1], {"a": 1}])
def test_ids_of_other_types_are_invalid(rid):
    server, s, _ = spec_server()
    out = rpc(server, s, json.dumps({"jsonrpc": "2.0", "method": "subtract", "params": [3, 1], "id": rid}))
    assert out["error"]["code"] == -32600 and out["id"] is None


@pytest.mark.parametrize("body, why", [
    ('{"method": "sum", "id": 1}', "jsonrpc"),
    ('{"jsonrpc": "1.0", "method": "sum", "id": 1}', "jsonrpc"),
    ('{"jsonrpc": 2.0, "method": "sum", "id": 1}', "jsonrpc"),
    ('{"jsonrpc": "2.0", "id": 1}', "method"),
    ('{"jsonrpc": "2.0", "method": null, "id": 1}', "method"),
    ('{"jsonrpc": "2.0", "method": "sum", "params": 3, "id": 1}', "params"),
    ('{"jsonrpc": "2.0", "method": "sum", "params": "x", "id": 1}', "params"),
    ('{"jsonrpc": "2.0", "method": "sum", "params": null, "id": 1}', "params"),
    ('"a string"', "object"),
    ("42", "object"),
    ("null", "object"),
])
def test_invalid_requests_name_what_is_wrong_and_echo_a_valid_id(body, why):
    server, s, _ = spec_server()
    out = rpc(server, s, body)
    assert out["error"]["code"] == -32600 and why in out["error"]["message"]
    assert out["id"] == (1 if '"id": 1' in body else None)


@pytest.mark.parametrize("text", ["", "   ", "NaN", '{"a": Infinity}', "[1,]", "\ufeff{}", '{"a":1}{"b":2}'])
def test_non_json_is_a_parse_error(text):
    server, s, _ = spec_server()
    out = rpc(server, s, text)
    assert out["error"]["code"] == -32700 and out["id"] is None


def test_invalid_utf8_bytes_are_a_parse_error():
    server, s, _ = spec_server()
    out = json.loads(run(server.handle(s, b'{"jsonrpc": "2.0", "method": "\xff", "id": 1}')))
    assert out["error"]["code"] == -32700


def test_deep_nesting_is_a_parse_error_not_a_crash():
    server, s, _ = spec_server()
    out = rpc(server, s, "[" * 100_000 + "]" * 100_000)
    assert out["error"]["code"] == -32700


def test_batch_size_is_bounded():
    server, s, _ = spec_server()
    text = json.dumps([{"jsonrpc": "2.0", "method": "get_data", "id": i} for i in range(101)])
    out = rpc(server, s, text)
    assert isinstance(out, dict) and out["error"]["code"] == -32600 and "at most 100" in out["error"]["message"]
    assert len(rpc(server, s, text.replace(', {"jsonrpc": "2.0", "method": "get_data", "id": 100}', ""))) == 100


def test_internal_error_hides_the_details(caplog):
    server, s, _ = spec_server()
    out = rpc(server, s, '{"jsonrpc": "2.0", "method": "boom", "id": 1}')
    assert out["error"] == {"code": -32603, "message": "Internal error (see the daemon log)"}
    assert "bug" in caplog.text


def test_response_has_result_xor_error():
    server, s, _ = spec_server()
    ok = rpc(server, s, '{"jsonrpc": "2.0", "method": "update", "id": 1}')
    assert ok == {"jsonrpc": "2.0", "result": None, "id": 1}      # a null result is still a result
    bad = rpc(server, s, '{"jsonrpc": "2.0", "method": "subtract", "id": 2}')
    assert set(bad) == {"jsonrpc", "error", "id"} and bad["error"]["message"] == "minuend: required"


def test_unknown_members_are_ignored():
    server, s, _ = spec_server()
    out = rpc(server, s, '{"jsonrpc": "2.0", "method": "subtract", "params": [2, 1], "id": 1, "x-trace": "abc"}')
    assert out == {"jsonrpc": "2.0", "result": 1, "id": 1}


# ---------------------------------------------------------------------------------------------- parse() model

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12)
request_like = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": st.sampled_from(["sum", "x.y", 3])},
    optional={"id": st.none() | st.integers() | st.text(max_size=5) | st.booleans(),
              "params": st.none() | st.lists(st.integers(), max_size=3) | st.integers() | st.just({})})


def model(obj):
    """What the specification says each element is: ("request", notification?) or ("invalid", id)."""
    if not isinstance(obj, dict):
        return ("invalid", None)
    rid = obj.get("id")
    id_ok = "id" not in obj or rid is None or (isinstance(rid, (int, str, float)) and not isinstance(rid, bool))
    if not id_ok:
        return ("invalid", None)
    if obj.get("jsonrpc") != "2.0" or not isinstance(obj.get("method"), str) or (
            "params" in obj and not isinstance(obj["params"], (list, dict))):
        return ("invalid", rid)
    return ("request", "id" not in obj)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, request_like, st.lists(request_like | json_values, max_size=6)))
def test_parse_classifies_every_json_value_like_the_spec(value):
    msg = parse(json.dumps(value))
    if isinstance(value, list) and value:
        assert msg.batch and len(msg.items) == len(value)
        elements = value
    else:
        assert not msg.batch and len(msg.items) == 1
        elements = [value] if not (isinstance(value, list) and not value) else None
    if elements is None:
        assert isinstance(msg.items[0], Invalid) and msg.items[0].error.code == -32600
        return
    for obj, item in zip(elements, msg.items, strict=True):
        kind, extra = model(obj)
        if kind == "invalid":
            assert isinstance(item, Invalid) and item.id == extra and item.error.code == -32600
        else:
            assert isinstance(item, Request) and item.notification == extra
            assert item.method == obj["method"] and item.params == obj.get("params")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=8))
def test_batch_response_has_one_entry_per_non_notification(spec):
    """Property: a batch answers exactly its non-notification requests, in order, echoing their ids."""
    server, s, _ = spec_server()
    batch = []
    for i, (notify, kind) in enumerate(spec):
        method, params = [("subtract", [5, 2]), ("subtract", ["x"]), ("nope", None), ("get_data", None)][kind]
        req = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            req["params"] = params
        if not notify:
            req["id"] = i
        batch.append(req)
    out = run(server.handle(s, json.dumps(batch)))
    expected_ids = [i for i, (notify, _) in enumerate(spec) if not notify]
    if not expected_ids:
        assert out is None
        return
    answers = json.loads(out)
    assert [a["id"] for a in answers] == expected_ids
    for a in answers:
        kind = spec[a["id"]][1]
        if kind == 0:
            assert a["result"] == 3
        elif kind == 3:
            assert a["result"] == ["hello", 5]
        else:
            assert a["error"]["code"] == (-32602 if kind == 1 else -32601)


def test_assemble_checks_its_arguments():
    msg = parse('[{"jsonrpc": "2.0", "method": "a", "id": 1}]')
    with pytest.raises(ValueError, match="one per item"):
        assemble(msg, [])


def test_to_json_converts_results():
    from dataclasses import dataclass
    from types import MappingProxyType

    @dataclass(frozen=True)
    class Snap:
        a: tuple
        b: object

    assert to_json(Snap((1, 2), MappingProxyType({"x": float("inf")}))) == {"a": [1, 2], "b": {"x": None}}
    with pytest.raises(TypeError, match="cannot send"):
        to_json(object())


# ---------------------------------------------------------------------------------------------- line framing

LINES = [b'{"jsonrpc":"2.0","method":"system.ping","id":1}', b'{"jsonrpc":"2.0","method":"x","params":["\\n"]}',
         '{"jsonrpc":"2.0","method":"caf\u00e9","id":"\u2603"}'.encode()]


def test_framer_whole_bytewise_and_with_trailing_data():
    stream = b"\n".join(LINES) + b"\n"
    assert LineFramer().feed(stream) == LINES
    f = LineFramer()
    out = []
    for i in range(len(stream)):
        out += f.feed(stream[i:i + 1])
    assert out == LINES and f.pending == 0
    f = LineFramer()
    assert f.feed(stream + b'{"partial') == LINES and f.pending == len(b'{"partial')
    assert f.feed(b'": 1}\r\n\n\n') == [b'{"partial": 1}']


def test_framer_bounds_a_line():
    f = LineFramer(max_line=10)
    assert f.feed(b"0123456789\n") == [b"0123456789"]
    with pytest.raises(MessageTooLarge):
        f.feed(b"0123456789A\n")
    f = LineFramer(max_line=10)
    with pytest.raises(MessageTooLarge):
        f.feed(b"x" * 11)          # no newline yet: refused before it grows further
    with pytest.raises(ValueError, match="max_line"):
        LineFramer(0)
