"""Hot reload (new calls get the new version, calls in progress keep theirs) and
per-node metrics."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from orchestrator.ivr import FlowRegistry, FlowSet, Hangup, Transfer, load_flows

from ivr_testkit import IVR_DIR, Caller, build_demo_prompts, flow_from, of

FLOW = """
start: menu
nodes:
  menu:
    type: menu
    prompts: [main_menu]
    choices: {1: agent}
    max_retries: 1
    on_failure: bye
  agent:
    type: transfer
    target: "{target}"
  bye:
    type: hangup
"""


@pytest.fixture
def flow_dir(tmp_path):
    build_demo_prompts()
    shutil.copytree(IVR_DIR / "prompts" / "en", tmp_path / "prompts" / "en")
    return tmp_path


def write(flow_dir, target: str, name: str = "front") -> None:
    (flow_dir / f"{name}.yaml").write_text(
        textwrap.dedent(FLOW).replace("{target}", target)
    )  # line 1 is blank


def test_hot_reload_keeps_calls_in_progress_on_their_version(flow_dir):
    write(flow_dir, "9001")
    reg = FlowRegistry()
    first = reg.reload(flow_dir)
    assert first.ok and first.added == ("front",) and reg.statistics().flows == ("front",)

    old_call = Caller(reg.start("front"))
    old_call.start()
    v1 = old_call.s.version

    write(flow_dir, "9002")
    second = reg.reload(flow_dir)
    assert second.ok and second.changed == ("front",) and second.version != v1 == first.version

    new_call = Caller(reg.start("front"))
    new_call.start()
    assert new_call.s.version == second.version

    assert of(old_call.press("1"), Transfer) == [Transfer(target="9001")]  # started on version 1
    assert of(new_call.press("1"), Transfer) == [Transfer(target="9002")]


def test_a_bad_reload_changes_nothing(flow_dir):
    write(flow_dir, "9001")
    reg = FlowRegistry()
    reg.reload(flow_dir)
    version = reg.version
    (flow_dir / "front.yaml").write_text(
        textwrap.dedent(FLOW).replace("{target}", "9003").replace("on_failure: bye", "on_failure: byee")
    )
    write(flow_dir, "7000", name="second")  # a good new file does not go in alone: all or nothing
    result = reg.reload(flow_dir)
    assert not result.ok and result.version == version == reg.version
    assert [str(p) for p in result.problems] == [
        f"{flow_dir / 'front.yaml'}:9: node 'menu': 'on_failure' points to unknown node 'byee'"
    ]
    assert set(reg.flows) == {"front"}
    call = Caller(reg.start("front"))
    call.start()
    assert of(call.press("1"), Transfer) == [Transfer(target="9001")]
    stats = reg.statistics()
    assert (stats.reloads, stats.reloads_refused, stats.sessions_started) == (1, 1, 1)


def test_removed_flow_still_serves_its_calls(flow_dir):
    write(flow_dir, "9001")
    reg = FlowRegistry()
    reg.reload(flow_dir)
    call = Caller(reg.start("front"))
    call.start()
    (flow_dir / "front.yaml").unlink()
    write(flow_dir, "7000", name="other")
    result = reg.reload(flow_dir)
    assert result.removed == ("front",) and result.added == ("other",)
    with pytest.raises(ValueError, match="no flow named 'front'"):
        reg.start("front")
    assert of(call.press("1"), Transfer) == [Transfer(target="9001")]


def test_replace_is_atomic_and_validated():
    reg = FlowRegistry(FlowSet.of(flow_from(textwrap.dedent(FLOW).replace("{target}", "1"), "a")))
    with pytest.raises(ValueError, match="flows: expected a FlowSet"):
        reg.replace({"a": None})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="flows: expected a FlowSet"):
        FlowRegistry({"a": None})  # type: ignore[arg-type]
    assert set(reg.flows) == {"a"}


def test_flow_versions_are_content_hashes(flow_dir):
    write(flow_dir, "9001")
    a = load_flows(flow_dir)
    b = load_flows(flow_dir)
    assert a["front"].version == b["front"].version and a.version == b.version
    write(flow_dir, "9001 ")
    assert load_flows(flow_dir)["front"].version != a["front"].version


def test_per_node_metrics(flow_dir):
    write(flow_dir, "9001")
    reg = FlowRegistry()
    reg.reload(flow_dir)
    # 3 callers choose 1; 2 give up silently (retries used); 1 presses 7 then hangs up.
    for _ in range(3):
        c = Caller(reg.start("front"))
        c.start()
        c.press("1")
    for _ in range(2):
        c = Caller(reg.start("front"))
        c.start()
        c.stay_silent()
        assert of(c.log, Hangup) == [Hangup(reason="normal")]
    c = Caller(reg.start("front"))
    c.start()
    c.press("7")
    c.hang_up()

    snap = reg.metrics.snapshot()
    menu = snap.get("front", "menu")
    assert menu.entries == 6 and menu.hangups == 1
    assert dict(menu.exits) == {"1": 3, "on_failure": 2}
    assert dict(menu.retries) == {"timeout": 4, "invalid": 1}
    agent = snap.get("front", "agent")
    assert (agent.entries, dict(agent.exits), agent.hangups) == (3, {"transfer": 3}, 0)
    assert snap.as_dict()["front"]["bye"] == {
        "entries": 2,
        "exits": {"hangup": 2},
        "retries": {},
        "hangups": 0,
    }
    assert snap.get("front", "nope") is None
    # Snapshots are frozen copies.
    Caller(reg.start("front")).start()
    assert reg.metrics.snapshot().get("front", "menu").entries == 7 and menu.entries == 6


def test_metrics_add_up_across_versions(flow_dir):
    write(flow_dir, "9001")
    reg = FlowRegistry()
    reg.reload(flow_dir)
    Caller(reg.start("front")).start()
    write(flow_dir, "9002")
    reg.reload(flow_dir)
    Caller(reg.start("front")).start()
    assert reg.metrics.snapshot().get("front", "menu").entries == 2
