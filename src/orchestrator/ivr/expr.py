"""The small, safe expression language of IVR flows, and ``{var}`` templates.

Flows are data written by operators, so conditions are never handed to
Python's ``eval``. An expression is parsed once, when the flow is loaded,
into a tree of closures; evaluating it only reads the session's variables.

Grammar (lowest precedence first)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") sum]
    sum     := unary (("+" | "-") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | STRING | "true" | "false" | "null" | NAME
             | "(" expr ")" | "[" [expr ("," expr)*] "]"

``NAME`` is a variable (``caller_id``) or a dotted path into a mapping
variable (``crm.vip``); a variable that is not set is ``null``. Strings use
single or double quotes with backslash escapes.

Evaluation is total, so a running call never fails on an expression: ordering
(``<``...) between values of different kinds is false, ``in`` on something
that is not a container is false, ``+``/``-`` on mismatched kinds give
``null``. ``and``/``or`` return an operand, as in Python.

Templates (``"lang_{language}"``) substitute variables by name; ``{{`` and
``}}`` are literal braces; an unset variable renders as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ExpressionError", "Expression", "Template", "compile_expression", "compile_template", "lookup"]

Evaluator = Callable[[Mapping[str, Any]], Any]


class ExpressionError(ValueError):
    """An expression or template that does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (column {column})")
        self.message = message
        self.column = column


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<op>==|!=|<=|>=|<|>|\+|-|\(|\)|\[|\]|,)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def lookup(variables: Mapping[str, Any], name: str) -> Any:
    """The value of variable ``name``; a dotted name walks into mappings."""
    try:
        return variables[name]
    except KeyError:
        pass
    if "." not in name:
        return None
    value: Any = variables
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _tokenize(text: str) -> list[tuple[str, Any, int]]:
    tokens: list[tuple[str, Any, int]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise ExpressionError(f"unexpected character {text[col - 1]!r}", col)
        col = m.start(m.lastgroup) + 1 if m.lastgroup else pos + 1
        kind = m.lastgroup
        raw = m.group(kind)
        if kind == "number":
            tokens.append(("value", float(raw) if "." in raw else int(raw), col))
        elif kind == "string":
            tokens.append(("value", _unquote(raw, col), col))
        elif kind == "name":
            if raw in ("true", "false", "null"):
                tokens.append(("value", {"true": True, "false": False, "null": None}[raw], col))
            elif raw in _KEYWORDS:
                tokens.append(("op", raw, col))
            else:
                tokens.append(("name", raw, col))
        else:
            tokens.append(("op", raw, col))
        pos = m.end()
    tokens.append(("end", None, end + 1))
    return tokens


def _unquote(raw: str, col: int) -> str:
    out = []
    i = 1
    while i < len(raw) - 1:
        c = raw[i]
        if c == "\\":
            nxt = raw[i + 1]
            if nxt not in _ESCAPES:
                raise ExpressionError(f"unknown escape \\{nxt}", col + i)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _less(a: Any, b: Any) -> bool | None:
    """a < b when both are numbers or both strings, else None (incomparable)."""
    if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return a < b
    return None


def _contains(item: Any, container: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, (list, tuple, Mapping)):
        try:
            return item in container
        except TypeError:  # an unhashable item tested against a mapping
            return False
    return False


def _add(a: Any, b: Any) -> Any:
    if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return a + b
    return None


def _sub(a: Any, b: Any) -> Any:
    return a - b if _is_number(a) and _is_number(b) else None


def _compare(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    if op == "==":
        return lambda v: left(v) == right(v)
    if op == "!=":
        return lambda v: left(v) != right(v)
    if op == "in":
        return lambda v: _contains(left(v), right(v))
    if op == "not in":
        return lambda v: not _contains(left(v), right(v))
    if op == "<":
        return lambda v: _less(left(v), right(v)) is True
    if op == ">":
        return lambda v: _less(right(v), left(v)) is True
    if op == "<=":

        def le(v: Mapping[str, Any]) -> bool:
            a, b = left(v), right(v)
            return _less(b, a) is False

        return le

    def ge(v: Mapping[str, Any]) -> bool:
        a, b = left(v), right(v)
        return _less(a, b) is False

    return ge


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.names: set[str] = set()

    def peek(self) -> tuple[str, Any, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, Any, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, op: str) -> bool:
        kind, value, _ = self.tokens[self.i]
        return kind == "op" and value == op

    def expect(self, op: str) -> None:
        kind, value, col = self.take()
        if kind != "op" or value != op:
            raise ExpressionError(f"expected {op!r}, found {_describe(kind, value)}", col)

    def parse(self) -> Evaluator:
        if self.peek()[0] == "end":
            raise ExpressionError("empty expression", 1)
        ev = self.or_()
        kind, value, col = self.peek()
        if kind != "end":
            raise ExpressionError(f"unexpected {_describe(kind, value)}", col)
        return ev

    def or_(self) -> Evaluator:
        ev = self.and_()
        while self.at("or"):
            self.take()
            left, right = ev, self.and_()
            ev = (lambda a, b: lambda v: a(v) or b(v))(left, right)
        return ev

    def and_(self) -> Evaluator:
        ev = self.not_()
        while self.at("and"):
            self.take()
            left, right = ev, self.not_()
            ev = (lambda a, b: lambda v: a(v) and b(v))(left, right)
        return ev

    def not_(self) -> Evaluator:
        if self.at("not"):
            self.take()
            inner = self.not_()
            return lambda v: not inner(v)
        return self.compare()

    def compare(self) -> Evaluator:
        left = self.sum_()
        kind, value, _ = self.peek()
        if kind == "op" and value in ("==", "!=", "<", "<=", ">", ">=", "in", "not"):
            self.take()
            op = value
            if op == "not":
                self.expect("in")
                op = "not in"
            right = self.sum_()
            ev = _compare(op, left, right)
            kind, value, col = self.peek()
            if kind == "op" and value in ("==", "!=", "<", "<=", ">", ">=", "in"):
                raise ExpressionError("comparisons do not chain: use 'and'", col)
            return ev
        return left

    def sum_(self) -> Evaluator:
        ev = self.unary()
        while self.at("+") or self.at("-"):
            op = self.take()[1]
            left, right = ev, self.unary()
            fn = _add if op == "+" else _sub
            ev = (lambda a, b, f: lambda v: f(a(v), b(v)))(left, right, fn)
        return ev

    def unary(self) -> Evaluator:
        if self.at("-"):
            self.take()
            inner = self.unary()
            return lambda v: _sub(0, inner(v))
        return self.atom()

    def atom(self) -> Evaluator:
        kind, value, col = self.take()
        if kind == "value":
            return lambda v, c=value: c
        if kind == "name":
            self.names.add(value)
            if "." in value:
                return lambda v, n=value: lookup(v, n)
            return lambda v, n=value: v.get(n)
        if kind == "op" and value == "(":
            ev = self.or_()
            self.expect(")")
            return ev
        if kind == "op" and value == "[":
            items: list[Evaluator] = []
            if not self.at("]"):
                items.append(self.or_())
                while self.at(","):
                    self.take()
                    items.append(self.or_())
            self.expect("]")
            return lambda v: [item(v) for item in items]
        raise ExpressionError(f"unexpected {_describe(kind, value)}", col)


def _describe(kind: str, value: Any) -> str:
    if kind == "end":
        return "end of expression"
    if kind == "value":
        return f"value {value!r}"
    if kind == "name":
        return f"name {value!r}"
    return repr(value)


class Expression:
    """A parsed expression: call :meth:`evaluate` with the session's variables."""

    __slots__ = ("source", "names", "_ev")

    def __init__(self, source: str, evaluator: Evaluator, names: frozenset[str]) -> None:
        self.source = source
        self.names = names
        self._ev = evaluator

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        return self._ev(variables)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(source: Any) -> Expression:
    """Parse ``source``; a YAML number, boolean or null is a constant.

    Raises :class:`ExpressionError` (a ``ValueError``) with the column.
    """
    if source is None or isinstance(source, (bool, int, float)):
        return Expression(repr(source), lambda v, c=source: c, frozenset())
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {type(source).__name__}", 1)
    parser = _Parser(source)
    ev = parser.parse()
    return Expression(source, ev, frozenset(parser.names))


class Template:
    """A string with ``{variable}`` placeholders, parsed once."""

    __slots__ = ("source", "names", "_parts", "_constant")

    def __init__(self, source: str, parts: tuple[tuple[bool, str], ...]) -> None:
        self.source = source
        self._parts = parts
        self.names = frozenset(text for is_var, text in parts if is_var)
        self._constant = None if self.names else "".join(text for _, text in parts)

    def render(self, variables: Mapping[str, Any]) -> str:
        if self._constant is not None:
            return self._constant
        out = []
        for is_var, text in self._parts:
            if not is_var:
                out.append(text)
                continue
            value = lookup(variables, text)
            if value is None:
                continue
            out.append(("true" if value else "false") if isinstance(value, bool) else str(value))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def compile_template(source: Any) -> Template:
    """Parse a template string (a YAML number is taken as its text)."""
    if isinstance(source, bool) or not isinstance(source, (str, int)):
        raise ExpressionError(f"a template must be a string, not {type(source).__name__}", 1)
    source = str(source)
    parts: list[tuple[bool, str]] = []
    literal: list[str] = []
    i = 0
    while i < len(source):
        c = source[i]
        if c in "{}" and source[i + 1 : i + 2] == c:
            literal.append(c)
            i += 2
        elif c == "}":
            raise ExpressionError("'}' without '{' (write '}}' for a literal brace)", i + 1)
        elif c == "{":
            close = source.find("}", i + 1)
            if close < 0:
                raise ExpressionError("'{' is never closed", i + 1)
            name = source[i + 1 : close].strip()
            if not _NAME.match(name):
                raise ExpressionError(f"{{{name}}} is not a variable name", i + 1)
            if literal:
                parts.append((False, "".join(literal)))
                literal = []
            parts.append((True, name))
            i = close + 1
        else:
            literal.append(c)
            i += 1
    if literal or not parts:
        parts.append((False, "".join(literal)))
    return Template(source, tuple(parts))
