"""`hotline ivr lint` and `graph`: each problem class on a small bad flow, with
the exact ``file:line: message``; the demo flows lint clean; the JSON Schema
agrees with the loader; the SVG is well-formed XML."""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
import yaml

from orchestrator.ivr import NODE_TYPES, load_flow
from orchestrator.ivr.cli import graph, lint, main
from orchestrator.ivr.graph import to_dot
from orchestrator.ivr.schema import build_schema, schema_text

from ivr_testkit import IVR_DIR, build_demo_prompts

DEMO_FLOWS = sorted(IVR_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def prompt_wav() -> Path:
    build_demo_prompts()
    return IVR_DIR / "prompts" / "en" / "welcome.wav"


@pytest.fixture
def write(tmp_path, prompt_wav):
    """write(name, yaml, prompts=[...]) -> path; the named prompts get real WAV files."""

    def _write(name: str, text: str, prompts: tuple[str, ...] = ("hello", "menu", "sorry")) -> Path:
        for p in prompts:
            target = tmp_path / "prompts" / "en" / f"{p}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(prompt_wav, target)
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


def messages(path: Path) -> list[str]:
    return [str(p) for p in lint([path])]


GOOD = """
start: hello
nodes:
  hello:
    type: play
    prompts: [hello]
    next: menu
  menu:
    type: menu
    prompts: [menu]
    choices: {1: bye}
    on_failure: bye
  bye:
    type: hangup
"""


def test_good_flow_is_clean(write, capsys):
    path = write("good", GOOD)
    assert lint([path]) == []
    assert main(["lint", str(path)]) == 0
    assert capsys.readouterr().out == "1 flow file(s): no problems\n"


@pytest.mark.parametrize("flow", DEMO_FLOWS, ids=lambda p: p.name)
def test_demo_flows_lint_clean(flow, prompt_wav):
    assert [str(p) for p in lint([flow])] == []


def test_demo_directory_lints_clean_through_main(prompt_wav, capsys):
    assert main(["lint", str(IVR_DIR)]) == 0
    assert capsys.readouterr().out == f"{len(DEMO_FLOWS)} flow file(s): no problems\n"


def test_unknown_node_type(write):
    path = write("f", GOOD.replace("    type: hangup", "    type: hang_up"))
    known = ", ".join(sorted(NODE_TYPES))
    assert messages(path) == [f"{path}:13: node 'bye' has unknown type 'hang_up' (known: {known})"]


def test_unknown_target(write):
    path = write("f", GOOD.replace("choices: {1: bye}", "choices: {1: bye, 2: byebye}"))
    assert messages(path) == [f"{path}:10: node 'menu': '2' points to unknown node 'byebye'"]


def test_unknown_start(write):
    path = write("f", GOOD.replace("start: hello", "start: helo"))
    assert messages(path) == [f"{path}:1: 'start' points to unknown node 'helo'"]


def test_unreachable_node(write):
    path = write("f", GOOD + "  orphan:\n    type: hangup\n")
    assert messages(path) == [f"{path}:14: node 'orphan' is unreachable from start 'hello'"]


def test_dead_end(write):
    path = write("f", GOOD.replace("    next: menu\n", ""))
    assert messages(path) == [f"{path}:3: node 'hello' (play) is a dead end: it has no 'next'"]


def test_queue_max_wait_without_on_timeout_is_a_dead_end(write):
    path = write(
        "f",
        """
        start: q
        nodes:
          q:
            type: queue
            queue: sales
            max_wait: 60
        """,
    )
    assert messages(path) == [f"{path}:6: node 'q' (queue) is a dead end: 'max_wait' needs 'on_timeout'"]


def test_missing_prompt_file(write):
    path = write("f", GOOD.replace("prompts: [menu]", "prompts: [menu, missing_one]"))
    assert messages(path) == [
        f"{path}:7: node 'menu': prompt 'missing_one' has no file for language 'en' "
        "(prompts/en/missing_one.wav)"
    ]


def test_missing_prompt_for_a_second_language(write):
    path = write("f", "languages: [en, es]\n" + textwrap.dedent(GOOD).lstrip("\n"))
    lines = messages(path)
    assert lines == [
        f"{path}:4: node 'hello': prompt 'hello' has no file for language 'es' (prompts/es/hello.wav)",
        f"{path}:8: node 'menu': prompt 'menu' has no file for language 'es' (prompts/es/menu.wav)",
    ]


def test_loop_with_no_exit(write):
    path = write(
        "f",
        """
        start: a
        nodes:
          a:
            type: menu
            prompts: [menu]
            choices: {1: b}
            on_failure: b
          b:
            type: menu
            prompts: [menu]
            choices: {1: a}
            on_failure: a
            max_visits: 3
            on_max_visits: a
        """,
    )
    assert messages(path) == [f"{path}:3: loop with no exit: a, b lead only to each other"]


def test_loop_with_no_retry_limit(write):
    path = write(
        "f",
        GOOD.replace("on_failure: bye", "on_failure: sorry")
        + """\
  sorry:
    type: play
    prompts: [sorry]
    next: menu
""",
    )
    assert messages(path) == [
        f"{path}:7: loop with no retry limit: a caller who presses nothing goes round menu, sorry forever "
        "(set max_visits on one of them)"
    ]


def test_max_visits_bounds_the_loop(write):
    path = write(
        "f",
        GOOD.replace("on_failure: bye", "on_failure: sorry")
        + """\
  sorry:
    type: play
    prompts: [sorry]
    next: menu
    max_visits: 2
    on_max_visits: bye
""",
    )
    assert messages(path) == []


def test_bad_patterns(write):
    collect = """
        start: c
        nodes:
          c:
            type: collect
            prompts: [hello]
            variable: account
            pattern: "{pattern}"
            next: end
            on_failure: end
          end:
            type: hangup
        """
    path = write("f", collect.replace("{pattern}", "([0-9]"))
    assert messages(path) == [
        f"{path}:7: node 'c' (collect): bad pattern '([0-9]': "
        "missing ), unterminated subpattern at position 0"
    ]
    for i, pattern in enumerate(["[a-z]+", "[0-9]{4", "\\\\d{3}-\\\\d{4}"]):
        path = write(f"g{i}", collect.replace("{pattern}", pattern))
        shown = pattern  # YAML unescapes "\\\\d" to \\d, and repr() doubles the backslash again
        assert messages(path) == [
            f"{path}:7: node 'c' (collect): bad pattern '{shown}': no DTMF entry of 1 to 16 digits matches it"
        ]
    path = write(
        "h",
        collect.replace("{pattern}", "[0-9]{6}").replace(
            "variable: account", "variable: account\n            max_digits: 4"
        ),
    )
    assert messages(path) == [
        f"{path}:8: node 'c' (collect): bad pattern '[0-9]{{6}}': no DTMF entry of 1 to 4 digits matches it"
    ]
    for ok in ["07[0-9]{9}", "1234[0-9]{4}", "[0-9]+\\\\*", "(1|2)#?"]:
        assert messages(write("ok", collect.replace("{pattern}", ok))) == [], ok


def test_business_hours_without_default_branch(write):
    path = write(
        "f",
        """
        start: hours
        nodes:
          hours:
            type: business_hours
            timezone: Europe/London
            schedule: {mon-fri: "09:00-17:00"}
            open: end
          end:
            type: hangup
        """,
    )
    assert messages(path) == [f"{path}:3: node 'hours' (business_hours) has no default branch: add 'closed'"]


def test_bad_schedule_and_time_zone_lines(write):
    path = write(
        "f",
        """
        start: hours
        nodes:
          hours:
            type: business_hours
            timezone: Europe/Londres
            schedule:
              mon-fri: "09:00-17:00"
              sat: "9am-1pm"
            open: end
            closed: end
          end:
            type: hangup
        """,
    )
    assert messages(path) == [
        f"{path}:5: node 'hours' (business_hours): 'timezone' unknown time zone 'Europe/Londres'",
        f"{path}:8: node 'hours' (business_hours): bad schedule: sat: bad opening hours '9am-1pm': "
        "expected 'HH:MM-HH:MM'",
    ]


def test_expression_errors_have_lines(write):
    path = write(
        "f",
        """
        start: check
        nodes:
          check:
            type: condition
            if: "vip = true"
            then: end
            else: end
          set:
            type: set
            values:
              ok: "1 + 1"
              bad: "(a or"
            next: end
          end:
            type: hangup
        """,
    )
    assert messages(path) == [
        f"{path}:5: node 'check' (condition): bad expression 'vip = true': "
        "unexpected character '=' (column 5)",
        f"{path}:12: node 'set' (set): bad expression for 'bad': unexpected end of expression (column 6)",
    ]


def test_unknown_keys_duplicates_and_yaml_errors(write):
    path = write(
        "f",
        GOOD.replace("    next: menu\n", "    next: menu\n    nxt: menu\n").replace(
            "  bye:\n", "  bye:\n    type: hangup\n"
        ),
    )
    assert messages(path) == [
        f"{path}:7: node 'hello' (play): unknown key 'nxt'",
        f"{path}:15: duplicate key 'type' (first at line 14)",
    ]
    path = write("g", "start: a\nnodes:\n  a: {type: hangup\n")
    assert messages(path) == [
        f"{path}:4: YAML syntax error: while parsing a flow mapping did not find expected ',' or '}}'"
    ]


def test_menu_choices_must_be_dtmf(write):
    path = write("f", GOOD.replace("choices: {1: bye}", "choices: {1: bye, x: bye, 10: bye}"))
    assert messages(path) == [
        f"{path}:10: node 'menu' (menu): choice 'x' is not a DTMF digit (0-9, '*', '#', A-D)"
    ]


def test_goto_checks(write):
    write("other", GOOD)
    path = write(
        "f",
        """
        start: a
        nodes:
          a:
            type: menu
            prompts: [menu]
            choices: {1: b, 2: c, 3: d}
            on_failure: b
          b:
            type: goto
            flow: other
            node: bye
          c:
            type: goto
            flow: nowhere
          d:
            type: goto
            flow: other
            node: nope
        """,
    )
    assert messages(path) == [
        f"{path}:8: node 'b': node 'bye' of flow 'other' is not in its 'entries'",
        f"{path}:12: node 'c': goto to unknown flow 'nowhere'",
        f"{path}:15: node 'd': flow 'other' has no node 'nope'",
    ]


def test_main_prints_problems_and_exits_1(write, capsys):
    good = write("good", GOOD)
    bad = write("bad", GOOD.replace("next: menu", "next: menuu"))
    assert main(["lint", str(good), str(bad)]) == 1
    assert capsys.readouterr().out == f"{bad}:6: node 'hello': 'next' points to unknown node 'menuu'\n"


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["lint", str(missing)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{missing}:1: cannot read the file:")


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as info:
        main(["lint"])
    assert info.value.code == 2


# ----------------------------------------------------------------------------- schema


def _as_json(value):
    """What an editor validates: YAML loaded, then JSON-typed (keys as text, dates as text)."""
    if isinstance(value, dict):
        return {str(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def test_committed_schema_is_generated_from_the_node_tables():
    assert (IVR_DIR / "schema.json").read_text() == schema_text()


def test_schema_is_valid_and_accepts_every_demo_flow():
    jsonschema = pytest.importorskip("jsonschema")
    schema = build_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for flow in DEMO_FLOWS:
        errors = list(validator.iter_errors(_as_json(yaml.safe_load(flow.read_text()))))
        assert errors == [], (flow, [e.message for e in errors])


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["nodes"]["hello"].update(type="hang_up"),
        lambda d: d["nodes"]["hello"].update(nxt="menu"),
        lambda d: d["nodes"]["hello"].pop("next"),
        lambda d: d["nodes"]["menu"].update(choices={"x": "bye"}),
        lambda d: d["nodes"]["menu"].update(max_retries=99),
        lambda d: d.update(colour="blue"),
    ],
)
def test_schema_and_loader_both_reject(change, write):
    jsonschema = pytest.importorskip("jsonschema")
    doc = yaml.safe_load(textwrap.dedent(GOOD))
    change(doc)
    assert list(jsonschema.Draft202012Validator(build_schema()).iter_errors(_as_json(doc)))
    assert lint([write("f", yaml.safe_dump(doc))])


def test_schema_lists_every_node_type_and_key():
    schema = build_schema()
    for node_type, cls in NODE_TYPES.items():
        props = set(schema["$defs"][node_type]["properties"])
        assert props == {"type", "description", "max_visits", "on_max_visits", *cls.FIELDS}


# ----------------------------------------------------------------------------- graph


@pytest.mark.parametrize("flow", DEMO_FLOWS, ids=lambda p: p.name)
def test_graph_svg_is_valid_and_shows_every_node(flow, tmp_path, prompt_wav):
    if shutil.which("dot") is None:
        pytest.fail("Graphviz 'dot' is not installed (Debian package graphviz; `make` installs it)")
    out = tmp_path / "flow.svg"
    assert main(["graph", str(flow), "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    compiled = load_flow(flow)
    assert set(compiled.nodes) <= titles
    edges = sum(len(n.edges) for n in compiled.nodes.values())
    edge_titles = [
        t.text for t in root.iter("{http://www.w3.org/2000/svg}title") if t.text and "->" in t.text
    ]
    assert len(edge_titles) == edges + 1  # graphviz titles each edge "a->b"; +1 for the start arrow


def test_graph_dot_text(tmp_path, prompt_wav):
    out = tmp_path / "main.dot"
    assert graph(IVR_DIR / "main.yaml", out) == []
    text = out.read_text()
    assert text == to_dot(load_flow(IVR_DIR / "main.yaml"))
    assert '"main_menu" -> "support" [label="2", style=solid];' in text
    assert '"main_menu" -> "operator" [label="on_failure", style=dashed];' in text


def test_graph_refuses_a_bad_flow(write, tmp_path, capsys):
    bad = write("bad", GOOD.replace("next: menu", "next: menuu"))
    out = tmp_path / "bad.svg"
    assert main(["graph", str(bad), "-o", str(out)]) == 1
    assert capsys.readouterr().out == f"{bad}:6: node 'hello': 'next' points to unknown node 'menuu'\n"
    assert not out.exists()


def test_graph_without_graphviz(write, tmp_path, monkeypatch, capsys):
    import orchestrator.ivr.graph as graph_module

    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    assert main(["graph", str(write("good", GOOD)), "-o", str(tmp_path / "x.svg")]) == 1
    assert "Graphviz's 'dot' is not installed (Debian package: graphviz)" in capsys.readouterr().err


def test_demo_flows_json_roundtrip_of_schema_file():
    assert json.loads((IVR_DIR / "schema.json").read_text())["title"] == "Hotline IVR flow"


def test_readme_documents_every_node_type_and_key():
    readme = (IVR_DIR / "README.md").read_text()
    for node_type, cls in NODE_TYPES.items():
        section = readme.split(f"### `{node_type}`\n", 1)[1].split("### ", 1)[0]
        for key in cls.FIELDS:
            assert f"| `{key}` |" in section, (node_type, key)
