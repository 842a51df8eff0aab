"""The flow machine, node type by node type: exact effects for each event."""

from __future__ import annotations

from datetime import datetime

import pytest

from orchestrator.ivr import (
    MAX_HOPS,
    CallStarted,
    CancelTimer,
    Digit,
    DigitsCollected,
    Enqueue,
    FlowEnded,
    FlowSet,
    Hangup,
    Lookup,
    LookupFailed,
    NodeEntered,
    Play,
    PlaybackDone,
    QueueResult,
    Record,
    RecordDone,
    RequestCallback,
    Session,
    SetVariable,
    StartTimer,
    StopPlayback,
    Timeout,
    Transfer,
)

from ivr_testkit import Caller, flow_from, of, types, utc

MENU = """
start: menu
nodes:
  menu:
    type: menu
    prompts: [main_menu]
    choices: {1: sales, 2: support, "#": operator}
    invalid_prompts: [invalid]
    timeout_prompts: [no_input]
    timeout: 5
    max_retries: 2
    variable: choice
    on_failure: operator
  sales: {type: transfer, target: "2001"}
  support: {type: transfer, target: "2000"}
  operator: {type: transfer, target: "9001"}
"""


def caller(text: str, now=1000.0, **variables) -> Caller:
    c = Caller(Session(flow_from(text)), now)
    c.start(**variables)
    return c


# ----------------------------------------------------------------------------- play

PLAY = """
start: hello
nodes:
  hello: {type: play, prompts: [welcome, please_hold], next: menu}
  menu:
    type: menu
    prompts: [main_menu]
    choices: {1: done, 2: done}
    on_failure: done
  done: {type: hangup, reason: bye}
"""


def test_play_then_next():
    c = Caller(Session(flow_from(PLAY)), 1000.0)
    assert c.start() == [
        NodeEntered(flow="t", node="hello", node_type="play"),
        Play(prompts=("prompts/en/welcome.wav", "prompts/en/please_hold.wav"), barge_in=True, play_id=1),
    ]
    assert c.prompt_ends() == [
        NodeEntered(flow="t", node="menu", node_type="menu"),
        Play(prompts=("prompts/en/main_menu.wav",), barge_in=True, play_id=2),
    ]


def test_barge_in_stops_the_prompt_and_the_digit_is_typed_ahead():
    c = caller(PLAY)
    out = c.press("2")
    # The digit stops the welcome, the menu finds it in the buffer and never plays its prompt.
    assert types(out) == [
        "StopPlayback",
        "NodeEntered",
        "DigitsCollected",
        "NodeEntered",
        "Hangup",
        "FlowEnded",
    ]
    assert out[0] == StopPlayback(play_id=1)
    assert out[2] == DigitsCollected(flow="t", node="menu", digits="2")
    assert c.ended.outcome == "hangup" and c.s.typeahead == ""


def test_without_barge_in_digits_wait_for_the_end_of_the_prompt():
    c = caller(PLAY.replace("next: menu}", "next: menu, barge_in: false}"))
    assert c.press("1") == []  # nothing stops, the digit waits
    assert c.s.typeahead == "1"
    out = c.prompt_ends()
    assert types(out) == ["NodeEntered", "DigitsCollected", "NodeEntered", "Hangup", "FlowEnded"]


def test_stale_playback_done_is_ignored():
    c = caller(PLAY)
    c.press("1")  # stops play 1 and ends the call
    assert c.s.finished
    c2 = caller(PLAY.replace("choices: {1: done, 2: done}", "choices: {1: done}"))
    c2.prompt_ends()  # play 2 (menu) starts
    assert c2.s.playback_done(1, now=1000.0) == []  # a late report for play 1
    assert c2.s.ignored_events == 1 and c2.s.play_id == 2


# ----------------------------------------------------------------------------- menu


def test_menu_valid_choice():
    c = caller(MENU)
    c.prompt_ends()
    assert c.log[-1] == StartTimer(timer_id=1, seconds=5.0, at=1005.0)
    out = c.press("2")
    assert out == [
        CancelTimer(timer_id=1),
        DigitsCollected(flow="t", node="menu", digits="2"),
        SetVariable(name="choice", value="2"),
        NodeEntered(flow="t", node="support", node_type="transfer"),
        Transfer(target="2000"),
        FlowEnded(outcome="transfer", flow="t", node="support", variables={"language": "en", "choice": "2"}),
    ]


def test_menu_quoted_hash_choice():
    c = caller(MENU)
    assert of(c.press("#"), Transfer) == [Transfer(target="9001")]


def test_menu_invalid_then_timeout_then_failure():
    c = caller(MENU)
    c.prompt_ends()
    out = c.press("7")  # invalid: re-prompt with the invalid prompt first
    assert out == [
        CancelTimer(timer_id=1),
        Play(prompts=("prompts/en/invalid.wav", "prompts/en/main_menu.wav"), barge_in=True, play_id=2),
    ]
    c.prompt_ends()
    out = c.timer_fires()  # no input: re-prompt with the timeout prompt
    assert out == [
        Play(prompts=("prompts/en/no_input.wav", "prompts/en/main_menu.wav"), barge_in=True, play_id=3)
    ]
    c.prompt_ends()
    out = c.timer_fires()  # third failure > max_retries (2): on_failure
    assert of(out, Transfer) == [Transfer(target="9001")]
    assert not of(out, Play)


def test_menu_barge_in_during_reprompt():
    c = caller(MENU)
    c.press("9")  # invalid during the first prompt (barge-in)
    assert c.log[-1] == Play(
        prompts=("prompts/en/invalid.wav", "prompts/en/main_menu.wav"), barge_in=True, play_id=2
    )
    out = c.press("1")
    assert out[0] == StopPlayback(play_id=2)
    assert of(out, Transfer) == [Transfer(target="2001")]


def test_menu_invalid_flushes_type_ahead():
    c = caller(PLAY.replace("choices: {1: done, 2: done}", "choices: {1: done}\n    max_retries: 1"))
    c.press("9")  # barge-in into the welcome: "9" then "1" typed ahead
    # "9" reached the menu as type-ahead: invalid, the buffer is flushed, the re-prompt plays.
    assert types(c.log[-1:]) == ["Play"] and c.s.node_name == "menu" and c.s.typeahead == ""
    assert c.s.attempts == 1


def test_menu_retry_zero_fails_at_once():
    c = caller(MENU.replace("max_retries: 2", "max_retries: 0"))
    c.prompt_ends()
    assert of(c.timer_fires(), Transfer) == [Transfer(target="9001")]


def test_stale_timeout_is_ignored():
    c = caller(MENU)
    c.prompt_ends()
    c.press("5")  # cancels timer 1, re-prompts
    assert c.s.timeout(1, now=1001) == []
    assert c.s.ignored_events == 1 and not c.s.finished


# ----------------------------------------------------------------------------- collect

COLLECT = """
start: account
nodes:
  account:
    type: collect
    prompts: [enter_account]
    variable: account
    min_digits: 4
    max_digits: 6
    terminator: "#"
    timeout: 5
    inter_digit_timeout: 3
    pattern: "[1-9][0-9]*"
    invalid_prompts: [invalid]
    max_retries: 1
    next: good
    on_failure: bad
  good: {type: hangup, reason: good}
  bad: {type: hangup, reason: bad}
"""


def test_collect_with_terminator():
    c = caller(COLLECT)
    c.prompt_ends()
    out = c.press("1234#")
    assert of(out, DigitsCollected) == [DigitsCollected(flow="t", node="account", digits="1234")]
    assert of(out, SetVariable) == [SetVariable(name="account", value="1234")]
    assert of(out, Hangup) == [Hangup(reason="good")]
    # each digit restarts the inter-digit timer (3 s); the terminator cancels it
    assert [e.seconds for e in of(c.log, StartTimer)] == [5.0, 3.0, 3.0, 3.0, 3.0]


def test_collect_ends_at_max_digits():
    c = caller(COLLECT)
    c.prompt_ends()
    out = c.press("123456")
    assert of(out, SetVariable) == [SetVariable(name="account", value="123456")]
    assert c.s.finished and c.press("7") == []  # a digit after the end is ignored


def test_collect_inter_digit_timeout_ends_the_entry():
    c = caller(COLLECT)
    c.prompt_ends()
    c.press("98765")
    out = c.timer_fires()
    assert of(out, SetVariable) == [SetVariable(name="account", value="98765")]


def test_collect_too_short_then_pattern_mismatch_fails():
    c = caller(COLLECT)
    c.prompt_ends()
    out = c.press("12#")  # fewer than min_digits
    assert of(out, Play) == [
        Play(prompts=("prompts/en/invalid.wav", "prompts/en/enter_account.wav"), barge_in=True, play_id=2)
    ]
    c.prompt_ends()
    out = c.press("0123#")  # long enough but the pattern needs a leading 1-9
    assert of(out, Hangup) == [Hangup(reason="bad")]
    assert "account" not in c.s.variables


def test_collect_type_ahead_complete_entry_skips_the_prompt():
    text = COLLECT.replace("start: account", "start: hello").replace(
        "nodes:\n", "nodes:\n  hello: {type: play, prompts: [welcome], next: account}\n"
    )
    c = caller(text)
    out = c.press("5555#")
    assert of(out, Play) == []
    assert of(out, SetVariable) == [SetVariable(name="account", value="5555")]


def test_collect_type_ahead_partial_entry_waits_for_more():
    text = COLLECT.replace("start: account", "start: hello").replace(
        "nodes:\n", "nodes:\n  hello: {type: play, prompts: [welcome], next: account}\n"
    )
    c = caller(text)
    c.press("55")
    assert c.s.node_name == "account" and c.s.digits == "55" and c.s.play_id is None
    # timer 1 ran after the first digit, the second digit replaced it with timer 2
    assert c.log[-2:] == [CancelTimer(timer_id=1), StartTimer(timer_id=2, seconds=3.0, at=1003.0)]
    out = c.press("66#")
    assert of(out, SetVariable) == [SetVariable(name="account", value="5566")]


def test_collect_without_terminator_takes_hash_as_a_digit():
    c = caller(
        COLLECT.replace('terminator: "#"', 'terminator: ""').replace(
            'pattern: "[1-9][0-9]*"', 'pattern: "[0-9]+#"'
        )
    )
    c.prompt_ends()
    out = c.press("123#")
    c.timer_fires() if not c.s.finished else None
    assert of(c.log, SetVariable) == [SetVariable(name="account", value="123#")]
    assert out


# ----------------------------------------------------------------------------- record

RECORD = """
start: vm
nodes:
  vm:
    type: record
    prompts: [leave_message]
    max_duration: 60
    min_duration: 1
    silence_timeout: 4
    terminators: "#*"
    variable: vm
    next: saved
    on_empty: nothing
  saved: {type: hangup, reason: saved}
  nothing: {type: hangup, reason: empty}
"""


def test_record_message():
    c = caller(RECORD)
    out = c.prompt_ends()
    assert out == [Record(name="t.vm", max_duration=60.0, silence_timeout=4.0, terminators="#*", beep=True)]
    assert c.press("5") == [] and c.s.ignored_events == 1  # the engine handles digits while recording
    out = c.recorded("/var/rec/vm-1.wav", 12.5)
    assert of(out, SetVariable) == [
        SetVariable(name="vm", value="/var/rec/vm-1.wav"),
        SetVariable(name="vm_duration", value=12.5),
    ]
    assert of(out, Hangup) == [Hangup(reason="saved")]


@pytest.mark.parametrize("path, duration", [("", 3.0), ("/var/rec/x.wav", 0.4)])
def test_record_empty_or_too_short(path, duration):
    c = caller(RECORD)
    c.prompt_ends()
    assert of(c.recorded(path, duration), Hangup) == [Hangup(reason="empty")]


def test_record_barge_in_skips_the_greeting():
    c = caller(RECORD)
    out = c.press("1")
    assert out == [
        StopPlayback(play_id=1),
        Record(name="t.vm", max_duration=60.0, silence_timeout=4.0, terminators="#*", beep=True),
    ]
    assert c.s.typeahead == ""


def test_record_done_before_recording_is_ignored():
    c = caller(RECORD)
    assert c.recorded("/x.wav", 3) == [] and c.s.ignored_events == 1


# ----------------------------------------------------------------------------- condition, switch, set

LOGIC = """
start: compute
variables: {tier: basic}
nodes:
  compute:
    type: set
    values: {score: "calls + 1", lang_skill: "'lang_' + language"}
    next: route
  route:
    type: switch
    cases:
      - {when: "tier == 'gold' and score > 3", goto: gold}
      - {when: "tier in ['silver', 'gold']", goto: silver}
    default: check
  check:
    type: condition
    if: "score >= 2"
    then: silver
    else: basic
  gold: {type: transfer, target: gold}
  silver: {type: transfer, target: silver}
  basic: {type: transfer, target: "{lang_skill}"}
"""


@pytest.mark.parametrize(
    "variables, target",
    [
        ({"tier": "gold", "calls": 5}, "gold"),
        ({"tier": "gold", "calls": 1}, "silver"),
        ({"tier": "silver", "calls": 0}, "silver"),
        ({"calls": 1}, "silver"),
        ({"calls": 0}, "lang_en"),
        ({}, "lang_en"),  # calls unset: null + 1 is null, null >= 2 is false
        ({"language": "es"}, "lang_es"),
    ],
)
def test_switch_condition_set(variables, target):
    c = caller(LOGIC, **variables)
    assert of(c.log, Transfer) == [Transfer(target=target)]
    assert c.ended.variables["lang_skill"] == "lang_" + variables.get("language", "en")


def test_exits_are_labelled_for_metrics():
    from orchestrator.ivr import FlowRegistry

    reg = FlowRegistry(FlowSet.of(flow_from(LOGIC)))
    for variables in ({"tier": "gold", "calls": 9}, {"tier": "silver"}, {"calls": 0}):
        Caller(reg.start("t")).start(**variables)
    snap = reg.metrics.snapshot()
    assert dict(snap.get("t", "route").exits) == {"cases[0]": 1, "cases[1]": 1, "default": 1}
    assert dict(snap.get("t", "check").exits) == {"else": 1}
    assert dict(snap.get("t", "basic").exits) == {"transfer": 1}


# ----------------------------------------------------------------------------- business hours

HOURS = """
start: hours
nodes:
  hours:
    type: business_hours
    timezone: Europe/London
    schedule: {mon-fri: "08:00-18:00"}
    holidays: [{12-25: Christmas}]
    open: open
    closed: closed
    holiday: holiday
  open: {type: hangup, reason: open}
  closed: {type: hangup, reason: closed}
  holiday: {type: hangup, reason: "holiday"}
"""


@pytest.mark.parametrize(
    "now, reason",
    [
        (utc(2026, 3, 27, 7, 30), "closed"),  # Friday 07:30 GMT
        (utc(2026, 3, 30, 7, 30), "open"),  # Monday after the spring change: 08:30 BST
        (utc(2026, 12, 25, 12, 0), "holiday"),
        (utc(2026, 12, 26, 12, 0), "closed"),  # Saturday
    ],
)
def test_business_hours_node(now, reason):
    c = caller(HOURS, now=now)
    assert of(c.log, Hangup) == [Hangup(reason=reason)]


def test_business_hours_holiday_defaults_to_closed_and_names_the_day():
    c = caller(
        HOURS.replace("    holiday: holiday\n", "").replace(
            '  holiday: {type: hangup, reason: "holiday"}\n', ""
        ),
        now=utc(2026, 12, 25, 12, 0),
    )
    assert of(c.log, Hangup) == [Hangup(reason="closed")]
    assert SetVariable(name="holiday", value="Christmas") in c.log


def test_now_as_aware_datetime_and_naive_refused():
    s = Session(flow_from(HOURS))
    out = s.call_started({}, now=datetime(2026, 3, 30, 8, 30, tzinfo=utc(2026, 1, 1).astimezone().tzinfo))
    assert of(out, FlowEnded)
    with pytest.raises(ValueError, match="timezone-aware"):
        Session(flow_from(HOURS)).call_started({}, now=datetime(2026, 3, 30, 8, 30))


# ----------------------------------------------------------------------------- language

LANG = """
start: pick
languages: [en, es]
nodes:
  pick:
    type: language
    prompts: [choose_language]
    choices: {1: en, 2: es}
    max_retries: 1
    next: hello
  hello: {type: play, prompts: [welcome], next: end}
  end: {type: hangup}
"""


def test_language_choice_changes_the_prompt_files():
    c = caller(LANG)
    out = c.press("2")
    assert SetVariable(name="language", value="es") in out
    assert of(out, Play) == [Play(prompts=("prompts/es/welcome.wav",), barge_in=True, play_id=2)]


def test_language_no_choice_keeps_the_default():
    c = caller(LANG, language="fr")  # not one of the flow's languages: prompts fall back to the first
    c.prompt_ends()
    c.timer_fires()
    c.prompt_ends()
    out = c.timer_fires()
    assert of(out, Play) == [Play(prompts=("prompts/en/welcome.wav",), barge_in=True, play_id=3)]


# ----------------------------------------------------------------------------- lookup

LOOKUP = """
start: crm
nodes:
  crm:
    type: lookup
    url: "https://crm.invalid/api/caller/{caller_id}"
    params: {number: caller_id, digits: "account + ''"}
    timeout: 2
    result: {customer: customer.name, vip: flags.vip}
    next: ok
    on_error: err
    on_timeout: slow
  ok: {type: transfer, target: "{customer}"}
  err: {type: hangup, reason: error}
  slow: {type: hangup, reason: timeout}
"""


def test_lookup_result_mapped_into_variables():
    c = caller(LOOKUP, caller_id="+441234", account="42")
    assert c.log[-1] == Lookup(
        kind="http",
        target="https://crm.invalid/api/caller/+441234",
        params={"number": "+441234", "digits": "42"},
        timeout=2.0,
        request_id=1,
    )
    out = c.crm_answers({"customer": {"name": "Ada"}, "flags": {"vip": True}, "other": 1})
    assert of(out, SetVariable) == [
        SetVariable(name="customer", value="Ada"),
        SetVariable(name="vip", value=True),
    ]
    assert of(out, Transfer) == [Transfer(target="Ada")]


def test_lookup_missing_fields_are_left_unset():
    c = caller(LOOKUP, caller_id="1")
    c.crm_answers({"customer": "not a mapping"})
    assert "customer" not in c.s.vars and of(c.log, Transfer) == [Transfer(target="")]


@pytest.mark.parametrize("reason, hangup", [("error", "error"), ("timeout", "timeout")])
def test_lookup_failures(reason, hangup):
    c = caller(LOOKUP, caller_id="1")
    assert of(c.crm_fails(reason), Hangup) == [Hangup(reason=hangup)]


def test_lookup_timeout_defaults_to_on_error_and_jsonrpc_kind():
    text = (
        LOOKUP.replace('url: "https://crm.invalid/api/caller/{caller_id}"', "method: crm.lookup_caller")
        .replace("    on_timeout: slow\n", "")
        .replace("  slow: {type: hangup, reason: timeout}\n", "")
    )
    c = caller(text, caller_id="1")
    assert c.log[-1].kind == "jsonrpc" and c.log[-1].target == "crm.lookup_caller"
    assert of(c.crm_fails("timeout"), Hangup) == [Hangup(reason="error")]


def test_lookup_stale_answer_is_ignored_and_digits_are_typed_ahead():
    c = caller(LOOKUP, caller_id="1")
    assert c.s.lookup_result({"customer": {"name": "X"}}, 99, now=1000) == []
    assert c.s.ignored_events == 1
    assert c.press("12") == [] and c.s.typeahead == "12"


# ----------------------------------------------------------------------------- queue, transfer, callback

QUEUE = """
start: q
variables: {vip: false}
nodes:
  q:
    type: queue
    queue: "support"
    skills: [support, "lang_{language}", "{missing}"]
    priority: "vip_priority + 1"
    max_wait: 60
    on_timeout: offer
    on_unavailable: sorry
  offer:
    type: callback
    prompts: [callback_offer]
    on_accept: thanks
    on_decline: q
    max_visits: 2
    on_max_visits: sorry
  thanks: {type: hangup, reason: callback}
  sorry: {type: hangup, reason: sorry}
"""


def test_queue_enqueue_and_answer():
    c = caller(QUEUE, caller_id="+4400", vip_priority=4)
    enq = of(c.log, Enqueue)[0]
    assert (enq.queue, enq.skills, enq.priority, enq.max_wait) == ("support", ("support", "lang_en"), 5, 60.0)
    assert enq.data["caller_id"] == "+4400"
    assert c.press("1") == [] and c.s.typeahead == ""  # digits in queue are not kept
    out = c.queue("answered")
    assert out == [FlowEnded(outcome="answered", flow="t", node="q", variables=dict(c.s.vars))]


def test_queue_priority_expression_not_a_number_is_zero():
    c = caller(QUEUE, caller_id="1")
    assert of(c.log, Enqueue)[0].priority == 0


def test_queue_timeout_callback_accepted():
    c = caller(QUEUE, caller_id="+4400")
    c.queue("timeout")
    out = c.press("1")
    assert of(out, RequestCallback) == [RequestCallback(number="+4400", queue="support", data=dict(c.s.vars))]
    assert of(out, Hangup) == [Hangup(reason="callback")]


def test_callback_declined_back_to_queue_then_max_visits():
    c = caller(QUEUE, caller_id="+4400")
    c.queue("timeout")
    c.press("2")  # decline: back to the queue
    assert len(of(c.log, Enqueue)) == 2
    c.queue("timeout")
    c.prompt_ends()
    c.timer_fires()  # no answer, re-prompt
    c.prompt_ends()
    c.timer_fires()
    c.prompt_ends()
    out = c.timer_fires()  # retries used: decline -> queue
    assert of(out, Enqueue)
    out = c.queue("timeout")  # third visit to the offer exceeds max_visits (2)
    assert of(out, Hangup) == [Hangup(reason="sorry")]


def test_callback_without_a_number_is_not_offered():
    c = caller(QUEUE)  # no caller_id
    out = c.queue("timeout")
    assert not of(out, Play) and of(out, Enqueue)


@pytest.mark.parametrize("outcome, reason", [("unavailable", "sorry")])
def test_queue_unavailable(outcome, reason):
    c = caller(QUEUE)
    assert of(c.queue(outcome), Hangup) == [Hangup(reason=reason)]


def test_queue_outcome_without_branch_hangs_up():
    c = caller("start: q\nnodes:\n  q: {type: queue, queue: sales}\n")
    assert of(c.queue("unavailable"), Hangup) == [Hangup(reason="queue unavailable")]
    assert c.ended.outcome == "hangup"


def test_queue_result_when_not_queued_is_ignored():
    c = caller(LOOKUP, caller_id="1")
    assert c.queue("answered") == [] and c.s.ignored_events == 1


# ----------------------------------------------------------------------------- survey

SURVEY = """
start: score
nodes:
  score:
    type: survey
    prompts: [survey_question]
    invalid_prompts: [survey_invalid]
    max_retries: 1
    next: thanks
    on_failure: bye
  thanks: {type: hangup, reason: thanks}
  bye: {type: hangup, reason: no score}
"""


@pytest.mark.parametrize("score", [1, 2, 3, 4, 5])
def test_survey_scores(score):
    c = caller(SURVEY)
    c.press(str(score))
    assert c.ended.variables["survey_score"] == score
    assert SetVariable(name="survey_score", value=score) in c.log


@pytest.mark.parametrize("keys", ["06", "9*", "#0"])
def test_survey_out_of_range_twice_has_no_score(keys):
    c = caller(SURVEY)
    c.press(keys[0])
    c.press(keys[1])
    assert of(c.log, Hangup) == [Hangup(reason="no score")]
    assert "survey_score" not in c.ended.variables


# ----------------------------------------------------------------------------- goto, hangup, loops


def test_goto_other_flow_with_its_defaults():
    a = flow_from("start: go\nnodes:\n  go: {type: goto, flow: b, node: second}\n", "a")
    b = flow_from(
        "start: first\nentries: [second]\nvariables: {x: 1, y: 2}\nnodes:\n"
        "  first: {type: hangup}\n  second: {type: transfer, target: '{x}{y}'}\n",
        "b",
    )
    c = Caller(Session(FlowSet.of(a, b), "a"), 0)
    out = c.start(y=5)
    assert of(out, NodeEntered)[-1] == NodeEntered(flow="b", node="second", node_type="transfer")
    assert of(out, Transfer) == [Transfer(target="15")]
    assert c.ended.flow == "b"


def test_goto_unknown_flow_at_run_time_hangs_up():
    a = flow_from("start: go\nnodes:\n  go: {type: goto, flow: nowhere}\n", "a")
    c = Caller(Session(a), 0)
    c.start()
    assert of(c.log, Hangup) == [Hangup(reason="no flow 'nowhere'")]


def test_runaway_loop_is_stopped():
    # The linter refuses this flow; built by hand, the machine still stops it.
    from orchestrator.ivr.compiler import parse_flow

    flow, problems = parse_flow(
        "start: a\nvariables: {n: 0}\nnodes:\n"
        "  a: {type: set, values: {n: 'n + 1'}, next: b}\n"
        "  b: {type: condition, if: 'n > 100000', then: end, else: a}\n"
        "  end: {type: hangup}\n",
        name="t",
        check_prompts=False,
    )
    assert flow is None and "loop with no retry limit" in problems[0].message
    from orchestrator.ivr.flow import Flow
    from orchestrator.ivr.nodes import ConditionNode, Edge, HangupNode, SetNode
    from orchestrator.ivr.expr import compile_expression

    nodes = {
        "a": SetNode(
            "a", 1, {"values": {"n": compile_expression("n + 1")}, "next": "b"}, (Edge("next", "b", True, 1),)
        ),
        "b": ConditionNode("b", 2, {"if": compile_expression("n > 100000"), "then": "end", "else": "a"}, ()),
        "end": HangupNode("end", 3, {"reason": "done"}, ()),
    }
    raw = Flow(
        name="raw", version="0", start="a", nodes=nodes, languages=("en",), defaults={"n": 0}, prompt_paths={}
    )
    c = Caller(Session(raw), 0)
    c.start()
    assert c.ended.outcome == "loop" and of(c.log, Hangup) == [Hangup(reason="loop")]
    assert len(of(c.log, NodeEntered)) == MAX_HOPS


def test_caller_hangup_anywhere():
    c = caller(MENU)
    out = c.hang_up()
    assert out == [FlowEnded(outcome="caller_hangup", flow="t", node="menu", variables={"language": "en"})]
    assert c.hang_up() == [] and c.s.ignored_events == 1


# ----------------------------------------------------------------------------- events and arguments


def test_events_before_the_call_starts():
    s = Session(flow_from(MENU))
    assert s.digit("1", now=0) == [] and s.ignored_events == 1
    out = s.hangup(now=0)
    assert out == [FlowEnded(outcome="caller_hangup", flow="t", node="", variables={})]


def test_second_call_started_is_ignored():
    c = caller(MENU)
    assert c.s.call_started({}, now=0) == [] and c.s.ignored_events == 1


@pytest.mark.parametrize(
    "build",
    [
        lambda: Digit(digit="x"),
        lambda: Digit(digit="12"),
        lambda: Digit(digit=1),
        lambda: QueueResult(outcome="lost"),
        lambda: LookupFailed(reason="boom"),
        lambda: RecordDone(path="a", duration=-1),
        lambda: RecordDone(path="a", duration=float("nan")),
        lambda: PlaybackDone(play_id="1"),
        lambda: Timeout(timer_id=True),
        lambda: CallStarted(variables=[1]),
    ],
)
def test_bad_events_are_refused_when_built(build):
    with pytest.raises(ValueError):
        build()


def test_bad_session_arguments():
    flow = flow_from(MENU)
    with pytest.raises(ValueError, match="flow: no flow named 'x'"):
        Session(FlowSet.of(flow), "x")
    with pytest.raises(ValueError, match="max_typeahead"):
        Session(flow, max_typeahead=-1)
    with pytest.raises(ValueError, match="event"):
        Session(flow).handle("digit 1", now=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now"):
        Session(flow).call_started({}, now="noon")  # type: ignore[arg-type]


def test_type_ahead_buffer_is_bounded():
    c = Caller(Session(flow_from(LOOKUP), max_typeahead=4), 0)
    c.start(caller_id="1")
    c.press("1234567")
    assert c.s.typeahead == "1234" and c.s.dropped_digits == 3
