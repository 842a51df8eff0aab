"""The IVR expression language and templates: semantics, totality, parse errors."""

from __future__ import annotations

import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.ivr import ExpressionError, compile_expression, compile_template


def ev(src, **variables):
    return compile_expression(src).evaluate(variables)


@pytest.mark.parametrize(
    "src, variables, expected",
    [
        ("1", {}, 1),
        ("2.5", {}, 2.5),
        ("'it\\'s'", {}, "it's"),
        ('"double"', {}, "double"),
        ("true", {}, True),
        ("null", {}, None),
        ("x", {"x": 7}, 7),
        ("missing", {}, None),
        ("x == 7", {"x": 7}, True),
        ("x != 7", {"x": 7}, False),
        ("x < 10 and x >= 7", {"x": 7}, True),
        ("x <= 6 or x > 7", {"x": 7}, False),
        ("not vip", {"vip": False}, True),
        ("not not vip", {"vip": 1}, True),
        ("language in ['en', 'es']", {"language": "es"}, True),
        ("language not in ['en', 'es']", {"language": "fr"}, True),
        ("'sup' in queue", {"queue": "support"}, True),
        ("crm.tier == 'gold'", {"crm": {"tier": "gold"}}, True),
        ("crm.tier.level", {"crm": {"tier": "gold"}}, None),
        ("a + b", {"a": 2, "b": 3}, 5),
        ("'lang_' + language", {"language": "en"}, "lang_en"),
        ("a - b - c", {"a": 10, "b": 3, "c": 2}, 5),
        ("-a + 1", {"a": 3}, -2),
        ("(a or b) and c", {"a": 0, "b": 1, "c": "yes"}, "yes"),
        ("name or 'caller'", {"name": ""}, "caller"),
        ("not a == b", {"a": 1, "b": 2}, True),  # not binds looser than ==
        ("[1, x, 'z']", {"x": 2}, [1, 2, "z"]),
        ("[]", {}, []),
    ],
)
def test_evaluates(src, variables, expected):
    assert ev(src, **variables) == expected


@pytest.mark.parametrize(
    "src, variables",
    [
        ("x < 3", {"x": "2"}),  # string vs number: not comparable -> false
        ("x >= 3", {"x": None}),
        ("x <= 'a'", {"x": 1}),
        ("1 in x", {"x": 5}),  # not a container
        ("1 in x", {"x": "123"}),  # a number is never in a string
        ("[1] in m", {"m": {"a": 1}}),  # unhashable item against a mapping
    ],
)
def test_mismatched_kinds_are_false_not_errors(src, variables):
    assert ev(src, **variables) is False


def test_arithmetic_on_mismatched_kinds_is_null():
    assert ev("a + b", a=1, b="x") is None
    assert ev("a - b", a="x", b="y") is None
    assert ev("-a", a="x") is None
    assert ev("a + 1", a=True) is None  # booleans are not numbers here


def test_yaml_scalars_are_constants():
    for value in (3, 2.5, True, False, None):
        e = compile_expression(value)
        assert e.evaluate({}) == value and e.names == frozenset()


def test_names_are_recorded():
    assert compile_expression("a == b.c or d in [e]").names == frozenset({"a", "b.c", "d", "e"})


@pytest.mark.parametrize(
    "src, message, column",
    [
        ("", "empty expression", 1),
        ("x ==", "unexpected end of expression", 5),
        ("x = 1", "unexpected character '='", 3),
        ("(x == 1", "expected ')', found end of expression", 8),
        ("a < b < c", "comparisons do not chain: use 'and'", 7),
        ("x == 1 y", "unexpected name 'y'", 8),
        ("__import__('os')", "unexpected '('", 11),
        ("'unterminated", 'unexpected character "\'"', 1),
        ("'bad \\q'", "unknown escape \\q", 6),
        ("x not y", "expected 'in', found name 'y'", 7),
        ("x and", "unexpected end of expression", 6),
        ("1 +", "unexpected end of expression", 4),
    ],
)
def test_parse_errors_name_the_column(src, message, column):
    with pytest.raises(ExpressionError) as info:
        compile_expression(src)
    assert info.value.message == message
    assert info.value.column == column


def test_non_string_source_is_an_error():
    with pytest.raises(ExpressionError):
        compile_expression(["x"])


def test_no_python_eval_reachable():
    # Attribute access and calls are not in the grammar at all.
    for src in ("x.__class__", "open('f')", "x[0]", "lambda: 1"):
        try:
            e = compile_expression(src)
        except ExpressionError:
            continue
        assert e.evaluate({"x": "s"}) is None  # a dotted name is a variable path, never an attribute


def test_templates():
    t = compile_template("lang_{language}-{crm.tier}{{literal}}")
    assert t.render({"language": "es", "crm": {"tier": "gold"}}) == "lang_es-gold{literal}"
    assert t.render({}) == "lang_-{literal}"
    assert t.names == frozenset({"language", "crm.tier"})
    assert compile_template(2000).render({}) == "2000"
    assert compile_template("{flag}").render({"flag": True}) == "true"
    assert compile_template("").render({}) == ""


@pytest.mark.parametrize(
    "src, message",
    [
        ("{unclosed", "'{' is never closed"),
        ("a}b", "'}' without '{' (write '}}' for a literal brace)"),
        ("{not a name}", "{not a name} is not a variable name"),
    ],
)
def test_template_errors(src, message):
    with pytest.raises(ExpressionError) as info:
        compile_template(src)
    assert info.value.message == message


OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@given(
    st.integers(-1000, 1000),
    st.integers(-1000, 1000),
    st.sampled_from(sorted(OPS)),
    st.sampled_from(["and", "or"]),
    st.booleans(),
)
def test_matches_python_on_numbers(a, b, op, join, flag):
    """Against a plain Python model: comparisons of ints combined with and/or/not."""
    src = f"a {op} b {join} not flag"
    model = (OPS[op](a, b) and not flag) if join == "and" else (OPS[op](a, b) or not flag)
    assert ev(src, a=a, b=b, flag=flag) == model


@given(st.text(alphabet="ab'\" \\", max_size=8), st.text(alphabet="ab", max_size=4))
def test_string_literals_round_trip(text, other):
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    assert ev(f"'{escaped}'") == text
    assert ev(f"'{escaped}' + x", x=other) == text + other


@given(st.text(max_size=30))
def test_never_crashes_on_arbitrary_text(src):
    try:
        e = compile_expression(src)
    except ExpressionError:
        return
    e.evaluate({"x": 1, "y": "s", "z": [1], "m": {"k": None}})
