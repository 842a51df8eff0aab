"""From ``ivr/NAME.yaml`` to a :class:`~orchestrator.ivr.flow.Flow`, or to problems.

Every problem is a :class:`Problem` with the file and the real YAML line
(``file:line: message``). The checks, in order: YAML syntax and duplicate
keys; the top-level keys; each node's type, keys and values (parsed by the
kind its :class:`~orchestrator.ivr.nodes.Field` declares: expressions,
templates, patterns, schedules...); targets that name no node; prompt files
missing for a language; then the graph: nodes unreachable from ``start``,
loops with no exit, and loops a silent caller would go round forever (no
retry limit: put ``max_visits`` on one node of the loop).

A flow with any problem is refused: the registry only ever holds flows that
lint clean. Flow files are read here (this is the edge); the session itself
never touches the file system.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from .expr import ExpressionError, compile_expression, compile_template
from .flow import Flow, FlowSet
from .hours import parse_holidays, parse_schedule, parse_timezone
from .nodes import COMMON_FIELDS, NODE_TYPES, Edge, Field, Node
from .source import LocatedList, LocatedMap, load_located

__all__ = [
    "Problem",
    "FlowError",
    "parse_flow",
    "check_file",
    "load_flow",
    "load_flows",
    "check_gotos",
    "TOP_LEVEL_KEYS",
]

TOP_LEVEL_KEYS = {
    "description": "Free text for people reading the flow.",
    "start": "The node a call enters first.",
    "entries": "Other nodes that other flows enter with 'goto' (node:); they count as reachable.",
    "languages": "Language codes the prompts exist in; the first is the default.",
    "prompts": "Directory of prompt files, relative to the flow file (default: prompts).",
    "variables": "Variables every call starts with (the call's own variables override them).",
    "nodes": "Node name -> node.",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_PROMPT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*(/[A-Za-z0-9_][A-Za-z0-9_-]*)*$")
_DTMF = "0123456789*#ABCD"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a flow file; ``str()`` is ``file:line: message``."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class FlowError(ValueError):
    """A flow (or set of flows) that does not load; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems) or "invalid flow")


class _Bad(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


# ---------------------------------------------------------------- value parsers, by Field.kind


def _dtmf_key(key: Any) -> str:
    if isinstance(key, bool):
        raise _Bad(f"{key!r} is not a DTMF digit")
    if isinstance(key, int) and 0 <= key <= 9:
        return str(key)
    if isinstance(key, str) and len(key) == 1 and key in _DTMF:
        return key
    raise _Bad(f"{key!r} is not a DTMF digit (0-9, '*', '#', A-D)")


def _p_str(v: Any, f: Field) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad("must be a non-empty string")
    return v


def _p_bool(v: Any, f: Field) -> bool:
    if not isinstance(v, bool):
        raise _Bad("must be true or false")
    return v


def _p_int(v: Any, f: Field) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad("must be a whole number")
    _range(v, f)
    return v


def _p_number(v: Any, f: Field) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad("must be a number of seconds")
    _range(v, f)
    return float(v)


def _range(v: float, f: Field) -> None:
    if f.minimum is not None and v < f.minimum:
        raise _Bad(f"must be at least {f.minimum:g}")
    if f.maximum is not None and v > f.maximum:
        raise _Bad(f"must be at most {f.maximum:g}")


def _p_target(v: Any, f: Field) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad("must be a node name")
    return v


def _p_prompts(v: Any, f: Field) -> tuple[str, ...]:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or (f.required and not items):
        raise _Bad("must be a prompt name or a list of prompt names")
    out = []
    for i, p in enumerate(items):
        if not isinstance(p, str) or not _PROMPT.match(p):
            line = items.item_line(i) if isinstance(items, LocatedList) else None
            raise _Bad(f"bad prompt name {p!r} (letters, digits, _ and -, '/' for a subdirectory)", line)
        out.append(p)
    return tuple(out)


def _p_digit(v: Any, f: Field) -> str:
    return _dtmf_key(v)


def _p_digits(v: Any, f: Field) -> str:
    if v is None:
        return ""
    if not isinstance(v, str) or any(c not in _DTMF for c in v):
        raise _Bad("must be a string of DTMF digits such as '#' (quote it)")
    return v


def _p_varname(v: Any, f: Field) -> str:
    if not isinstance(v, str) or not _VAR.match(v):
        raise _Bad("must be a variable name (letters, digits, _)")
    return v


def _p_flowname(v: Any, f: Field) -> str:
    if not isinstance(v, str) or not _NAME.match(v):
        raise _Bad("must be a flow name (its file name without .yaml)")
    return v


def _p_expr(v: Any, f: Field) -> Any:
    try:
        return compile_expression(v)
    except ExpressionError as e:
        raise _Bad(f"bad expression {v!r}: {e}") from None


def _p_template(v: Any, f: Field) -> Any:
    try:
        return compile_template(v)
    except ExpressionError as e:
        raise _Bad(f"bad template {v!r}: {e}") from None


def _p_pattern(v: Any, f: Field) -> re.Pattern[str]:
    if not isinstance(v, str) or not v:
        raise _Bad("must be a regular expression string")
    try:
        pattern = re.compile(v)
    except re.error as e:
        raise _Bad(f"bad pattern {v!r}: {e}") from None
    return pattern


def _mapping(v: Any, what: str) -> LocatedMap:
    if not isinstance(v, LocatedMap) or not v:
        raise _Bad(f"must be a mapping of {what}")
    return v


def _p_choices(v: Any, f: Field) -> dict[str, str]:
    m = _mapping(v, "digits to node names")
    out: dict[str, str] = {}
    for key, target in m.items():
        try:
            digit = _dtmf_key(key)
        except _Bad as e:
            raise _Bad(f"choice {e.message}", m.key_line(key)) from None
        if digit in out:
            raise _Bad(f"choice '{digit}' is given twice", m.key_line(key))
        if not isinstance(target, str) or not target:
            raise _Bad(f"choice '{digit}' must name a node", m.value_line(key))
        out[digit] = target
    return out


def _p_language_choices(v: Any, f: Field) -> dict[str, str]:
    m = _mapping(v, "digits to language codes")
    out: dict[str, str] = {}
    for key, lang in m.items():
        try:
            digit = _dtmf_key(key)
        except _Bad as e:
            raise _Bad(f"choice {e.message}", m.key_line(key)) from None
        if not isinstance(lang, str) or not _LANG.match(lang):
            raise _Bad(f"choice '{digit}': {lang!r} is not a language code", m.value_line(key))
        out[digit] = lang
    return out


def _p_exprmap(v: Any, f: Field) -> dict[str, Any]:
    if isinstance(v, LocatedMap) and not v and not f.required:
        return {}
    m = _mapping(v, "names to expressions")
    out = {}
    for key, value in m.items():
        if not isinstance(key, str) or not _VAR.match(key):
            raise _Bad(f"{key!r} is not a variable name", m.key_line(key))
        try:
            out[key] = compile_expression(value)
        except ExpressionError as e:
            raise _Bad(f"bad expression for '{key}': {e}", m.value_line(key)) from None
    return out


def _p_resultmap(v: Any, f: Field) -> dict[str, str]:
    m = _mapping(v, "variable names to paths in the answer")
    out = {}
    for key, value in m.items():
        if not isinstance(key, str) or not _VAR.match(key):
            raise _Bad(f"{key!r} is not a variable name", m.key_line(key))
        if not isinstance(value, str) or not _PATH.match(value):
            raise _Bad(f"{value!r} is not a path such as 'customer.name'", m.value_line(key))
        out[key] = value
    return out


def _p_cases(v: Any, f: Field) -> tuple[tuple[Any, str], ...]:
    if not isinstance(v, LocatedList) or not v:
        raise _Bad("must be a list of {when: expression, goto: node}")
    out = []
    for i, case in enumerate(v):
        line = v.item_line(i)
        if not isinstance(case, LocatedMap) or set(case) != {"when", "goto"}:
            raise _Bad(f"case {i} must have exactly 'when' and 'goto'", line)
        try:
            when = compile_expression(case["when"])
        except ExpressionError as e:
            raise _Bad(f"bad expression in case {i}: {e}", case.value_line("when")) from None
        goto = case["goto"]
        if not isinstance(goto, str) or not goto:
            raise _Bad(f"case {i}: 'goto' must name a node", case.value_line("goto"))
        out.append((when, goto))
    return tuple(out)


def _p_timezone(v: Any, f: Field) -> Any:
    try:
        return parse_timezone(v)
    except ValueError as e:
        raise _Bad(str(e)) from None


def _p_schedule(v: Any, f: Field) -> Any:
    try:
        return parse_schedule(v)
    except ValueError as e:
        line = None
        if isinstance(v, LocatedMap):
            key = str(e).split(":", 1)[0]
            line = v.value_line(key) if key in v else None
        raise _Bad(f"bad schedule: {e}", line) from None


def _p_holidays(v: Any, f: Field) -> Any:
    if isinstance(v, LocatedList):
        for i, item in enumerate(v):
            try:
                parse_holidays([item])
            except ValueError as e:
                raise _Bad(f"bad holidays: {e}", v.item_line(i)) from None
    try:
        return parse_holidays(v)
    except ValueError as e:
        raise _Bad(f"bad holidays: {e}") from None


def _p_skills(v: Any, f: Field) -> Any:
    if isinstance(v, str):
        return _p_expr(v, f)
    if not isinstance(v, list):
        raise _Bad("must be a list of skill names or one expression")
    out = []
    for i, item in enumerate(v):
        try:
            out.append(compile_template(item))
        except ExpressionError as e:
            raise _Bad(
                f"bad skill {item!r}: {e}", v.item_line(i) if isinstance(v, LocatedList) else None
            ) from None
    return tuple(out)


_PARSERS = {
    "str": _p_str,
    "bool": _p_bool,
    "int": _p_int,
    "number": _p_number,
    "target": _p_target,
    "prompts": _p_prompts,
    "digit": _p_digit,
    "digits": _p_digits,
    "varname": _p_varname,
    "flowname": _p_flowname,
    "expr": _p_expr,
    "template": _p_template,
    "pattern": _p_pattern,
    "choices": _p_choices,
    "language_choices": _p_language_choices,
    "exprmap": _p_exprmap,
    "resultmap": _p_resultmap,
    "cases": _p_cases,
    "timezone": _p_timezone,
    "schedule": _p_schedule,
    "holidays": _p_holidays,
    "skills": _p_skills,
}


def _default(f: Field) -> Any:
    if f.default is None:
        return None
    if f.kind in ("expr",):
        return compile_expression(f.default)
    if f.kind in ("template",):
        return compile_template(f.default)
    if isinstance(f.default, dict):
        return dict(f.default)
    return f.default


# ---------------------------------------------------------------- the compiler


class _Compiler:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def node(self, name: str, raw: Any, line: int, languages: tuple[str, ...]) -> Node | None:
        if not isinstance(raw, LocatedMap):
            self.problem(line, f"node '{name}' must be a mapping with a 'type'")
            return None
        node_type = raw.get("type")
        if node_type is None:
            self.problem(line, f"node '{name}' has no 'type'")
            return None
        cls = NODE_TYPES.get(node_type) if isinstance(node_type, str) else None
        if cls is None:
            self.problem(
                raw.value_line("type"),
                f"node '{name}' has unknown type '{node_type}' (known: {', '.join(sorted(NODE_TYPES))})",
            )
            return None
        fields = {**COMMON_FIELDS, **cls.FIELDS}
        values: dict[str, Any] = {}
        ok = True
        for key in raw:
            if key not in fields:
                self.problem(raw.key_line(key), f"node '{name}' ({node_type}): unknown key '{key}'")
                ok = False
        for key, f in fields.items():
            if key not in raw:
                if f.required:
                    if key == "closed" and node_type == "business_hours":
                        self.problem(
                            line, f"node '{name}' (business_hours) has no default branch: add 'closed'"
                        )
                    elif f.kind in ("target", "choices", "cases"):
                        self.problem(line, f"node '{name}' ({node_type}) is a dead end: it has no '{key}'")
                    else:
                        self.problem(line, f"node '{name}' ({node_type}): missing '{key}'")
                    ok = False
                else:
                    values[key] = _default(f)
                continue
            try:
                values[key] = _PARSERS[f.kind](raw[key], f)
            except _Bad as e:
                self.problem(
                    e.line or raw.value_line(key),
                    f"node '{name}' ({node_type}): '{key}' {e.message}"
                    if not e.message.startswith(("bad ", "choice", "case"))
                    else f"node '{name}' ({node_type}): {e.message}",
                )
                ok = False
        if not ok:
            return None
        ok = self.cross_checks(name, node_type, raw, values, line, languages)
        if not ok:
            return None
        return cls(name, line, values, tuple(self.edges(raw, fields, values)))

    def cross_checks(
        self,
        name: str,
        node_type: str,
        raw: LocatedMap,
        values: dict[str, Any],
        line: int,
        languages: tuple[str, ...],
    ) -> bool:
        problems_before = len(self.problems)
        where = f"node '{name}' ({node_type})"
        if (values.get("max_visits") is None) != (values.get("on_max_visits") is None):
            self.problem(line, f"{where}: 'max_visits' and 'on_max_visits' go together")
        if node_type == "collect":
            if values["min_digits"] > values["max_digits"]:
                self.problem(raw.value_line("min_digits"), f"{where}: 'min_digits' is more than 'max_digits'")
            pattern = values.get("pattern")
            if pattern is not None and not _pattern_can_match_dtmf(
                pattern, values["min_digits"], values["max_digits"]
            ):
                self.problem(
                    raw.value_line("pattern"),
                    f"{where}: bad pattern {pattern.pattern!r}: no DTMF entry of "
                    f"{values['min_digits']} to {values['max_digits']} digits matches it",
                )
        if node_type == "survey" and values["min"] > values["max"]:
            self.problem(raw.value_line("min"), f"{where}: 'min' is more than 'max'")
        if node_type == "lookup" and ("url" in raw) == ("method" in raw):
            self.problem(line, f"{where}: give exactly one of 'url' and 'method'")
        if node_type == "queue" and values.get("max_wait") is not None and values.get("on_timeout") is None:
            self.problem(raw.value_line("max_wait"), f"{where} is a dead end: 'max_wait' needs 'on_timeout'")
        if node_type == "callback" and values["accept"] == values["decline"]:
            self.problem(raw.value_line("decline"), f"{where}: 'accept' and 'decline' are the same digit")
        if node_type == "language":
            for digit, lang in values["choices"].items():
                if lang not in languages:
                    self.problem(
                        raw["choices"].value_line(digit) if isinstance(raw["choices"], LocatedMap) else line,
                        f"{where}: language '{lang}' is not in the flow's languages ({', '.join(languages)})",
                    )
        return len(self.problems) == problems_before

    @staticmethod
    def edges(raw: LocatedMap, fields: Mapping[str, Field], values: Mapping[str, Any]) -> Iterable[Edge]:
        for key, f in fields.items():
            value = values.get(key)
            if value is None:
                continue
            if f.kind == "target":
                yield Edge(key, value, f.passive, raw.value_line(key))
            elif f.kind == "choices":
                m = raw[key]
                by_digit = {_dtmf_key(k): m.value_line(k) for k in m}
                for digit, target in value.items():
                    yield Edge(digit, target, f.passive, by_digit[digit])
            elif f.kind == "cases":
                cases = raw[key]
                for i, (_, target) in enumerate(value):
                    yield Edge(f"cases[{i}]", target, True, cases[i].value_line("goto"))


def _pattern_can_match_dtmf(pattern: re.Pattern[str], min_len: int, max_len: int) -> bool:
    """Does some DTMF entry of min_len..max_len digits match the pattern?

    A search over the entries callers actually type, not a proof: every entry
    of up to 3 keys, then each 0-2 key prefix followed by one key repeated,
    and every run of ascending digits. A pattern that matches none of them
    (letters, a literal '-', more digits than max_digits allows) is reported.
    """
    keys = "0123456789*#"
    lengths = range(max(min_len, 1), max_len + 1)

    def candidates():
        yield ""
        for a in keys:
            yield a
            for b in keys:
                yield a + b
                for c in keys:
                    yield a + b + c
        prefixes = [""] + list(keys) + [a + b for a in keys for b in keys]
        for n in lengths:
            for start in range(10):
                yield ("0123456789" * 8)[start : start + n]
            for prefix in prefixes:
                if len(prefix) < n:
                    for fill in keys:
                        yield prefix + fill * (n - len(prefix))

    return any(len(c) <= max_len and pattern.fullmatch(c) for c in candidates())


def parse_flow(
    text: str,
    *,
    name: str,
    path: str | None = None,
    base_dir: str | Path | None = None,
    check_prompts: bool = True,
) -> tuple[Flow | None, list[Problem]]:
    """Compile flow ``name`` from YAML ``text``.

    ``path`` is the file name used in problems; prompt files are looked up under
    ``base_dir`` (the flow file's directory) when ``check_prompts`` is true.
    Returns (flow, []) or (None, problems sorted by line).
    """
    shown = path or f"<{name}>"
    c = _Compiler(shown)
    doc, yaml_problems = load_located(text)
    for p in yaml_problems:
        c.problem(p.line, p.message)
    if doc is None and not yaml_problems:
        c.problem(1, "the file is empty: a flow needs 'start' and 'nodes'")
    if doc is None:
        return None, sorted(c.problems)
    if not isinstance(doc, LocatedMap):
        c.problem(1, "a flow must be a mapping with 'start' and 'nodes'")
        return None, sorted(c.problems)

    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            c.problem(doc.key_line(key), f"unknown key '{key}' at the top level")

    languages: tuple[str, ...] = ("en",)
    if "languages" in doc:
        raw = doc["languages"]
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(x, str) and _LANG.match(x) for x in raw)
        ):
            c.problem(
                doc.value_line("languages"), "'languages' must be a list of language codes such as [en, es]"
            )
        elif len(set(raw)) != len(raw):
            c.problem(doc.value_line("languages"), "'languages' lists a language twice")
        else:
            languages = tuple(raw)
    prompts_dir = doc.get("prompts", "prompts")
    if not isinstance(prompts_dir, str) or not prompts_dir or ".." in Path(prompts_dir).parts:
        c.problem(doc.value_line("prompts"), "'prompts' must be a directory inside the flow's directory")
        prompts_dir = "prompts"
    defaults: dict[str, Any] = {}
    if "variables" in doc:
        raw = doc["variables"]
        if not isinstance(raw, LocatedMap):
            c.problem(doc.value_line("variables"), "'variables' must map names to values")
        else:
            for key, value in raw.items():
                if not isinstance(key, str) or not _VAR.match(key):
                    c.problem(raw.key_line(key), f"variable {key!r} is not a name (letters, digits, _)")
                elif isinstance(value, (dict, date)):
                    c.problem(
                        raw.value_line(key),
                        f"variable '{key}' must be a string, number, boolean, null or list",
                    )
                else:
                    defaults[key] = tuple(value) if isinstance(value, list) else value
    description = doc.get("description", "")
    if not isinstance(description, str):
        c.problem(doc.value_line("description"), "'description' must be text")
        description = ""

    nodes: dict[str, Node] = {}
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, LocatedMap) or not raw_nodes:
        c.problem(
            doc.value_line("nodes") if "nodes" in doc else 1,
            "'nodes' must be a mapping of node names to nodes",
        )
        raw_nodes = LocatedMap(1)
    node_lines: dict[str, int] = {}
    for node_name, raw in raw_nodes.items():
        line = raw_nodes.key_line(node_name)
        node_lines[str(node_name)] = line
        if not isinstance(node_name, str) or not _NAME.match(node_name):
            c.problem(line, f"bad node name {node_name!r} (letters, digits, _ and -)")
            continue
        node = c.node(node_name, raw, line, languages)
        if node is not None:
            nodes[node_name] = node

    start = doc.get("start")
    if start is None:
        c.problem(1, "missing 'start': the node a call enters first")
    elif not isinstance(start, str) or start not in node_lines:
        c.problem(doc.value_line("start"), f"'start' points to unknown node '{start}'")
        start = None

    for node in nodes.values():
        for edge in node.edges:
            if edge.target not in node_lines:
                c.problem(
                    edge.line, f"node '{node.name}': '{edge.label}' points to unknown node '{edge.target}'"
                )

    prompt_paths: dict[tuple[str, str], str] = {}
    base = Path(base_dir) if base_dir is not None else None
    missing_reported: set[tuple[str, str]] = set()
    for node in nodes.values():
        for prompt in node.prompt_names:
            for lang in languages:
                rel = f"{prompts_dir}/{lang}/{prompt}.wav"
                full = str(base / rel) if base is not None else rel
                prompt_paths[(lang, prompt)] = full
                if (
                    check_prompts
                    and base is not None
                    and (lang, prompt) not in missing_reported
                    and not Path(full).is_file()
                ):
                    missing_reported.add((lang, prompt))
                    c.problem(
                        node.line,
                        f"node '{node.name}': prompt '{prompt}' has no file for language '{lang}' ({rel})",
                    )

    entries: tuple[str, ...] = ()
    if "entries" in doc:
        raw = doc["entries"]
        if not isinstance(raw, LocatedList) or not all(isinstance(x, str) for x in raw):
            c.problem(doc.value_line("entries"), "'entries' must be a list of node names")
        else:
            for i, entry in enumerate(raw):
                if entry not in node_lines:
                    c.problem(raw.item_line(i), f"'entries' names unknown node '{entry}'")
            entries = tuple(raw)

    if not c.problems and start is not None:
        from .analysis import graph_problems

        for line, message in graph_problems(nodes, start, entries):
            c.problem(line, message)

    if c.problems:
        return None, sorted(c.problems)
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    flow = Flow(
        name=name,
        version=version,
        start=start,
        nodes=nodes,
        languages=languages,  # type: ignore[arg-type]
        defaults=defaults,
        prompt_paths=prompt_paths,
        path=path,
        description=description,
        entries=entries,
    )
    return flow, []


def _flow_name(path: Path) -> str:
    return path.name[:-5] if path.name.endswith(".yaml") else path.stem


def check_file(path: str | Path) -> tuple[Flow | None, list[Problem]]:
    """Read and compile one flow file (name: the file name without .yaml)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem(str(path), 1, f"cannot read the file: {e}")]
    return parse_flow(text, name=_flow_name(p), path=str(path), base_dir=p.parent)


def load_flow(path: str | Path) -> Flow:
    """Compile one flow file; raises :class:`FlowError` with its problems."""
    flow, problems = check_file(path)
    if flow is None:
        raise FlowError(problems)
    return flow


def check_gotos(flows: Mapping[str, Flow], known: Mapping[str, Flow | None] | None = None) -> list[Problem]:
    """Problems with ``goto`` nodes: unknown flows or unknown nodes in them.

    ``known`` may add flows (by name) that exist but are not in ``flows``
    (``None`` when the flow exists but did not compile: its nodes are unknown).
    """
    everything: dict[str, Flow | None] = {**(known or {}), **flows}
    problems = []
    for flow in flows.values():
        for node in flow.nodes.values():
            if node.TYPE != "goto":
                continue
            other_name = node.flow  # type: ignore[attr-defined]
            entry = node.node  # type: ignore[attr-defined]
            shown = flow.path or f"<{flow.name}>"
            if other_name not in everything:
                problems.append(
                    Problem(shown, node.line, f"node '{node.name}': goto to unknown flow '{other_name}'")
                )
                continue
            other = everything[other_name]
            if entry is not None and other is not None:
                if entry not in other.nodes:
                    problems.append(
                        Problem(
                            shown, node.line, f"node '{node.name}': flow '{other_name}' has no node '{entry}'"
                        )
                    )
                elif entry != other.start and entry not in other.entries:
                    problems.append(
                        Problem(
                            shown,
                            node.line,
                            f"node '{node.name}': node '{entry}' of flow '{other_name}' is not "
                            f"in its 'entries'",
                        )
                    )
    return sorted(problems)


def load_flows(source: str | Path | Iterable[str | Path]) -> FlowSet:
    """Compile a directory's ``*.yaml`` (or the given files) into a FlowSet.

    All or nothing: raises :class:`FlowError` with every problem of every file.
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        paths = sorted(Path(source).glob("*.yaml"))
    elif isinstance(source, (str, Path)):
        paths = [Path(source)]
    else:
        paths = [Path(p) for p in source]
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in paths:
        flow, found = check_file(path)
        problems.extend(found)
        if flow is not None:
            if flow.name in flows:
                problems.append(Problem(str(path), 1, f"a second flow named '{flow.name}'"))
            flows[flow.name] = flow
    if not problems:
        problems.extend(check_gotos(flows))
    if problems:
        raise FlowError(problems)
    return FlowSet(flows)
