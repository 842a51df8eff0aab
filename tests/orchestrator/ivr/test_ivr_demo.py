"""The demo flows walked end to end by scripted callers, random callers
(hypothesis) on every demo flow, and the purity of the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orchestrator.ivr as ivr
from orchestrator.ivr import (
    TERMINAL_OUTCOMES,
    DigitsCollected,
    Enqueue,
    FlowEnded,
    FlowRegistry,
    Hangup,
    Lookup,
    NodeEntered,
    Play,
    Record,
    RequestCallback,
    SetVariable,
    Transfer,
)

from ivr_testkit import IVR_DIR, LONDON, OPEN_TIME, ROOT, Caller, demo_flowset, of

SATURDAY_EVENING = datetime(2026, 3, 14, 15, 0, tzinfo=LONDON)
CHRISTMAS = datetime(2026, 12, 25, 11, 0, tzinfo=LONDON)
CALLER = "+442071234567"


@pytest.fixture(scope="module")
def registry() -> FlowRegistry:
    return FlowRegistry(demo_flowset())


def main_call(registry, now=OPEN_TIME, **variables) -> Caller:
    c = Caller(registry.start("main"), now)
    c.start(caller_id=CALLER, **variables)
    return c


def prompt_names(c: Caller) -> list[str]:
    """Played prompts as lang/name, in order."""
    return [f"{Path(p).parent.name}/{Path(p).stem}" for e in of(c.log, Play) for p in e.prompts]


def to_main_menu(c: Caller, crm: dict | None = None) -> None:
    c.prompt_ends()  # welcome
    c.prompt_ends()  # language prompt
    c.timer_fires()  # no language choice: keep English
    assert isinstance(c.log[-1], Lookup)
    if crm is None:
        c.crm_fails("timeout")
    else:
        c.crm_answers(crm)
    assert c.s.node_name == "main_menu"
    c.prompt_ends()


def test_press_2_for_support(registry):
    c = main_call(registry)
    to_main_menu(c, {"name": "Ada Lovelace", "vip": False, "account": "1234567"})
    out = c.press("2")
    enq = of(out, Enqueue)[0]
    assert (enq.queue, enq.skills, enq.priority, enq.max_wait) == (
        "support",
        ("support", "lang_en"),
        0,
        120.0,
    )
    assert enq.data["customer_name"] == "Ada Lovelace" and enq.data["caller_id"] == CALLER
    assert enq.data["menu_choice"] == "2"
    assert prompt_names(c) == ["en/welcome", "en/choose_language", "en/main_menu"]
    assert c.queue("answered")[-1].outcome == "answered"
    assert [e.node for e in of(c.log, NodeEntered)] == [
        "welcome",
        "choose_language",
        "office_hours",
        "identify_caller",
        "check_vip",
        "main_menu",
        "support",
    ]
    assert of(c.log, Lookup)[0].params == {"number": CALLER}


def test_vip_gets_priority(registry):
    c = main_call(registry)
    to_main_menu(c, {"name": "Grace", "vip": True})
    assert of(c.press("1"), Enqueue)[0].priority == 10


def test_typing_ahead_through_the_welcome_and_the_lookup(registry):
    c = main_call(registry)
    c.press("1")  # barge-in on the welcome: English, typed ahead into the language menu
    assert c.s.node_name == "identify_caller"
    c.press("2")  # typed during the CRM lookup
    out = c.crm_fails()
    assert of(out, Play) == []  # the menu prompt is skipped: the choice is already there
    assert of(out, Enqueue)[0].queue == "support"
    assert prompt_names(c) == ["en/welcome"]


def test_spanish(registry):
    c = main_call(registry)
    c.prompt_ends()
    c.press("2")
    c.crm_fails()
    assert of(c.log, Play)[-1].prompts == (str(IVR_DIR / "prompts" / "es" / "main_menu.wav"),)
    assert of(c.press("1"), Enqueue)[0].skills == ("sales", "lang_es")


def test_billing_collects_the_account_number(registry):
    c = main_call(registry)
    to_main_menu(c)
    c.press("3")
    c.prompt_ends()
    out = c.press("12345678")  # max_digits: no terminator needed
    assert of(out, DigitsCollected)[-1].digits == "12345678"
    assert of(out, Enqueue)[0].data["account"] == "12345678"


def test_menu_failure_goes_to_the_operator(registry):
    c = main_call(registry)
    to_main_menu(c)
    c.press("9")
    c.prompt_ends()
    c.timer_fires()
    c.prompt_ends()
    out = c.timer_fires()
    assert of(out, Transfer) == [Transfer(target="9001")]
    assert prompt_names(c)[-4:] == ["en/invalid_choice", "en/main_menu", "en/no_input", "en/main_menu"]


def test_after_hours_voicemail(registry):
    c = main_call(registry, SATURDAY_EVENING)
    c.prompt_ends()
    c.prompt_ends()
    c.timer_fires()
    assert c.s.flow.name == "after_hours" and prompt_names(c)[-1] == "en/closed"
    c.prompt_ends()
    c.prompt_ends()  # the options menu
    c.press("1")
    assert prompt_names(c)[-1] == "en/leave_message"
    assert c.prompt_ends() == [
        Record(
            name="after_hours.voicemail", max_duration=120.0, silence_timeout=5.0, terminators="#", beep=True
        )
    ]
    c.recorded("/var/hotline/voicemail/1.wav", 17.2)
    c.stay_silent()
    assert c.ended.variables["voicemail"] == "/var/hotline/voicemail/1.wav"
    assert prompt_names(c)[-2:] == ["en/message_saved", "en/goodbye"]
    assert of(c.log, Hangup) == [Hangup(reason="after hours")]


def test_holiday_message(registry):
    c = main_call(registry, CHRISTMAS)
    c.prompt_ends()
    c.press("1")
    assert prompt_names(c)[-1] == "en/holiday_closed"
    assert SetVariable(name="holiday", value="Christmas Day") in c.log


def test_callback_offer_accepted(registry):
    c = main_call(registry)
    to_main_menu(c)
    c.press("1")
    out = c.queue("timeout")  # 120 s in the sales queue
    assert of(out, NodeEntered)[-1] == NodeEntered(flow="callback", node="offer", node_type="callback")
    c.prompt_ends()
    out = c.press("1")
    assert of(out, RequestCallback) == [RequestCallback(number=CALLER, queue="sales", data=dict(c.s.vars))]
    c.stay_silent()
    assert c.ended.outcome == "hangup" and c.ended.variables["callback_number"] == CALLER
    assert prompt_names(c)[-2:] == ["en/callback_confirmed", "en/goodbye"]


def test_callback_declined_returns_to_the_same_queue(registry):
    c = main_call(registry)
    to_main_menu(c)
    c.press("2")
    c.queue("timeout")
    out = c.press("2")
    enq = of(out, Enqueue)[0]
    assert (enq.queue, enq.skills, enq.priority) == ("support", ("support", "lang_en"), 1)
    c.queue("unavailable")
    c.stay_silent()
    assert prompt_names(c)[-2:] == ["en/sorry_busy", "en/goodbye"]


def test_survey_score_is_stored(registry):
    for score in range(1, 6):
        c = Caller(registry.start("survey"))
        c.start(caller_id=CALLER)
        c.press(str(score))  # barge-in on the intro, typed ahead into the question
        c.stay_silent()
        assert c.ended.variables["survey_score"] == score
        assert prompt_names(c) == ["en/survey_intro", "en/survey_thanks"]


def test_survey_without_a_score(registry):
    c = Caller(registry.start("survey"))
    c.start()
    c.stay_silent()
    assert "survey_score" not in c.ended.variables and of(c.log, Hangup) == [Hangup(reason="survey done")]


def test_silent_callers_always_end(registry):
    for now in (OPEN_TIME, SATURDAY_EVENING, CHRISTMAS):
        for name in registry.flows:
            c = Caller(registry.start(name), now)
            c.start(caller_id=CALLER)
            c.stay_silent()
            assert c.ended.outcome in ("hangup", "transfer")


# ----------------------------------------------------------------------------- random callers

EVENTS = st.one_of(
    st.tuples(st.just("digit"), st.sampled_from("0123456789*#")),
    st.tuples(st.just("play"), st.sampled_from(["current", "stale"])),
    st.tuples(st.just("timeout"), st.sampled_from(["current", "stale"])),
    st.tuples(
        st.just("lookup"),
        st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.text(max_size=5),
                    "vip": st.booleans(),
                    "account": st.text("0123456789", max_size=8),
                },
            ),
            st.sampled_from(["error", "timeout"]),
        ),
    ),
    st.tuples(st.just("record"), st.tuples(st.sampled_from(["", "/rec/x.wav"]), st.floats(0, 200))),
    st.tuples(st.just("queue"), st.sampled_from(["answered", "timeout", "unavailable"])),
    st.tuples(st.just("hangup"), st.none()),
)


def _check(effects, flows, known_prompts) -> None:
    for e in effects:
        if isinstance(e, Play):
            assert e.prompts and all(p in known_prompts for p in e.prompts), e
        elif isinstance(e, NodeEntered):
            assert e.node in flows[e.flow].nodes
        elif isinstance(e, Enqueue):
            assert e.queue in ("sales", "support", "billing")
        elif isinstance(e, FlowEnded):
            assert e.outcome in TERMINAL_OUTCOMES and e.outcome != "loop"


@pytest.mark.parametrize("flow_name", ["main", "after_hours", "callback", "survey"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENTS, max_size=40), when=st.sampled_from([OPEN_TIME, SATURDAY_EVENING, CHRISTMAS]))
def test_random_callers_never_break_a_demo_flow(registry, flow_name, events, when):
    flows = registry.flows
    known_prompts = {p for f in flows.values() for p in f.prompt_paths.values()}
    assert all(Path(p).is_file() for p in known_prompts)
    c = Caller(registry.start(flow_name), when)
    _check(c.start(caller_id=CALLER, queue="support"), flows, known_prompts)
    s = c.s
    for kind, arg in events:
        if kind == "digit":
            out = c.press(arg)
        elif kind == "play":
            out = c._take(s.playback_done(s.play_id if arg == "current" else 10_000, now=c.now))
        elif kind == "timeout":
            out = c._take(s.timeout(s.timer_id if arg == "current" else 10_000, now=c.now))
        elif kind == "lookup":
            out = c._take(
                s.lookup_result(arg, now=c.now) if isinstance(arg, dict) else s.lookup_failed(arg, now=c.now)
            )
        elif kind == "record":
            out = c.recorded(*arg)
        elif kind == "queue":
            out = c.queue(arg)
        else:
            out = c.hang_up()
        _check(out, flows, known_prompts)
    _check(c.stay_silent(), flows, known_prompts)  # whatever happened, a silent caller reaches the end
    ended = [e for e in c.log if isinstance(e, FlowEnded)]
    assert len(ended) == 1 and c.log[-1] is ended[0] and s.finished


# ----------------------------------------------------------------------------- purity

FORBIDDEN = {"trio", "socket", "time", "asyncio", "threading"}
# The Trio runner that drives sessions on real calls, and its HTTP client: the thin service
# shell around the pure interpreter. The package's __init__ does not import them (checked below).
SERVICE_SHELLS = {"runner.py", "runner_http.py"}


def test_package_source_imports_no_io_or_clock_modules():
    package = Path(ivr.__file__).parent
    for path in sorted(package.glob("*.py")):
        if path.name in SERVICE_SHELLS:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_importing_the_package_loads_no_io_or_thread_modules():
    # `time` is left out here only because CPython's datetime module imports it internally.
    code = (
        "import sys, orchestrator.ivr, orchestrator.ivr.cli; "
        "print(sorted(m for m in ('trio', 'socket', 'asyncio', 'threading', 'subprocess') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT / "src"
    )
    assert out.stdout.strip() == "[]"
