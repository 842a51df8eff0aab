"""IVR flows on real calls: the runner with the B2BUA, the engine, scripted phones on loopback.

Every node type runs end to end: prompts are real WAVs (speech for the main menu, tones elsewhere
so the caller's audio tells them apart), digits are real RFC 4733 packets through the engine and
SIP INFO bodies, the CRM is a real HTTP server, the queue is the real ACD service. Each test
checks the ``call.ivr`` events, what the caller heard, and the call record folded by the store.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio
from callcentre_kit import (
    SURVEY_FLOW,
    make_prompt,
    phones,
    running_centre,
    send_audio,
    send_rfc4733,
    trio_test,
    write_flow,
)
from crm_server import CrmServer

from orchestrator.calls import ToIvr
from orchestrator.ivr import FlowRegistry
from tests.orchestrator.calls.b2bua_harness import send_rtp, wait_packets
from tests.rtppeer import band_energy, tone

pytestmark = pytest.mark.slow

MAIN = """\
description: every node type
start: welcome
languages: [en, es]
variables: {{priority: 0, vip: false, crm: "{crm}"}}
nodes:
  welcome: {{type: play, prompts: [welcome], next: language}}
  language:
    type: language
    prompts: [choose_language]
    choices: {{"1": en, "2": es}}
    timeout: 2
    max_retries: 0
    next: hours
  hours:
    type: business_hours
    timezone: UTC
    schedule: {{mon-sun: "00:00-23:59"}}
    holidays: ["12-25"]
    open: lookup
    closed: closed
    holiday: closed
  closed: {{type: goto, flow: closed}}
  lookup:
    type: lookup
    url: "{{crm}}/customer"
    params: {{number: caller_id}}
    timeout: 1
    result: {{customer_name: name, vip: vip, account: account}}
    next: check
    on_error: menu
  check: {{type: condition, if: "vip == true", then: vip, else: menu}}
  vip: {{type: set, values: {{priority: 10}}, next: menu}}
  menu:
    type: menu
    prompts: [main_menu]
    choices: {{"1": sales, "2": account_entry, "3": voicemail, "4": operator, "5": route, "9": bye}}
    invalid_prompts: [invalid]
    timeout: 1.5
    max_retries: 1
    variable: choice
    on_failure: bye
  account_entry:
    type: collect
    prompts: [enter_account]
    variable: account_number
    min_digits: 4
    max_digits: 6
    terminator: "#"
    inter_digit_timeout: 2
    pattern: "[0-9]{{4,6}}"
    max_retries: 1
    next: sales
    on_failure: bye
  sales: {{type: queue, queue: support, priority: priority, max_wait: 30, on_timeout: bye, on_unavailable: bye}}
  voicemail:
    type: record
    prompts: [leave_message]
    max_duration: 6
    silence_timeout: 1.5
    terminators: "#"
    variable: voicemail
    next: saved
    on_empty: bye
  saved: {{type: play, prompts: [saved], barge_in: false, next: bye}}
  operator: {{type: transfer, target: "9009"}}
  route:
    type: switch
    cases: [{{when: "language == 'es'", goto: bye}}]
    default: callback
  callback: {{type: callback, prompts: [callback_offer], queue: support, on_accept: cb_ok, on_decline: bye}}
  cb_ok: {{type: play, prompts: [cb_ok], barge_in: false, next: end}}
  bye: {{type: play, prompts: [goodbye], barge_in: false, next: end}}
  end: {{type: hangup, reason: done}}
"""

CLOSED = """\
start: say
languages: [en, es]
nodes:
  say: {type: play, prompts: [closed], barge_in: false, next: end}
  end: {type: hangup, reason: closed}
"""

TONES = {"welcome": (500, 0.4), "choose_language": (600, 0.6), "invalid": (650, 0.3), "enter_account": (700, 0.4),
         "leave_message": (750, 0.3), "saved": (800, 0.3), "callback_offer": (850, 0.6), "cb_ok": (870, 0.3),
         "goodbye": (900, 0.3), "closed": (950, 0.3), "survey_question": (1100, 0.4), "survey_thanks": (1250, 0.3)}
MENU_TEXT = "For sales press one. For your account press two. For more, press three, four or five."


@pytest.fixture(scope="module")
def menu_speech(tmp_path_factory):
    return make_prompt(tmp_path_factory.mktemp("speech") / "main_menu.wav", MENU_TEXT)


@pytest.fixture
def crm():
    with CrmServer() as server:
        yield server


@pytest.fixture
def flows(tmp_path, crm, menu_speech):
    d = tmp_path / "flows"
    write_flow(d, "main", MAIN.format(crm=crm.url), TONES, languages=("en", "es"))
    write_flow(d, "closed", CLOSED, {}, languages=("en", "es"))
    write_flow(d, "survey", SURVEY_FLOW, {}, languages=("en",))
    (d / "prompts" / "en" / "main_menu.wav").write_bytes(menu_speech.read_bytes())
    from callcentre_kit import tone_wav

    tone_wav(d / "prompts" / "es" / "main_menu.wav", 1350, 2.0)  # the Spanish menu, told apart by pitch
    registry = FlowRegistry()
    result = registry.reload(d)
    assert result.ok, result.problems
    return registry


IVR = {"1000": ToIvr("main")}


def ivr_nodes(c, call: str) -> list[str]:
    return [e["node"] for e in c.bus.of("call.ivr", call=call) if e.get("event") == "node_entered"]


def digits(c, call: str) -> list[tuple[str, str]]:
    return [(e["node"], e["digits"]) for e in c.bus.of("call.ivr", call=call) if e.get("event") == "digits"]


async def start(c, caller, number: str = "1000"):
    known = {e["call"] for e in c.bus.of("call.ivr")}
    call = caller.invite(f"sip:{number}@127.0.0.1")
    assert (await call.tx).status_code == 200
    while True:
        new = [e["call"] for e in c.bus.of("call.ivr") if e["call"] not in known]
        if new:
            return call, new[0]
        await trio.sleep(0.01)


async def at_node(c, cid: str, node: str, count: int = 1) -> None:
    await c.bus.wait("call.ivr", count=count, call=cid, node=node, event="node_entered")


@trio_test
async def test_menu_collect_queue_agent_and_survey_with_rfc4733_and_info_digits(tmp_path, flows, crm):
    with trio.fail_after(40):
        async with running_centre(tmp_path, dids=IVR, registry=flows, surveys={"support": "survey"}) as c, \
                phones(c, "caller", "9001") as (caller, agent):
            c.agent_up("a1", "9001", agent)
            call, cid = await start(c, caller)
            await at_node(c, cid, "language")
            await trio.sleep(0.2)
            await send_rfc4733(caller, call, "1")                       # RFC 4733 through the engine
            await at_node(c, cid, "menu")
            await trio.sleep(0.3)
            assert (await call.info(b"Signal=2\r\nDuration=160\r\n")).status_code == 200  # SIP INFO
            await at_node(c, cid, "account_entry")
            await send_rfc4733(caller, call, "1234#")
            acall = await agent.next_call()
            await acall.answered.wait()
            offered = await c.bus.wait("call.offered")
            queued = await c.bus.wait("call.queued")
            await c.bridged()
            await send_rtp(agent.rtp, acall.media_target, 8, payload=b"\x51" * 160)
            assert any(p.payload == b"\x51" * 160 for p in await wait_packets(caller.rtp, 8))
            await acall.bye()
            await at_node(c, cid, "ask")
            await trio.sleep(0.2)
            await send_rfc4733(caller, call, "5")
            await call.ended.wait()
            rec = await c.record(cid)
            metrics = c.registry.metrics.snapshot()
            stats = c.centre.ivr.statistics()
    assert ivr_nodes(c, cid) == ["welcome", "language", "hours", "lookup", "check", "vip", "menu", "account_entry", "sales",
                                 "ask", "thanks", "end"]
    assert digits(c, cid) == [("language", "1"), ("menu", "2"), ("account_entry", "1234"), ("ask", "5")]
    assert crm.requests[0] == ("GET", "/customer?number=caller", None)
    assert (queued["queue"], queued["priority"]) == ("support", 10)        # the CRM said VIP
    pop = offered["data"]                                                   # the screen pop's data
    assert (pop["customer_name"], pop["account"], pop["account_number"], pop["choice"]) == (
        "Ada Lovelace", "AC-1815", "1234", "2")
    assert offered["caller"] == "caller"
    assert (rec.outcome, rec.queue, rec.agent, rec.survey) == ("answered", "support", "a1", 5.0)
    assert rec.ivr_data["menu"] == "2" and rec.ivr_data["account_entry"] == "1234"
    assert rec.ivr_data["customer_name"] == "Ada Lovelace" and rec.ivr_data["survey_score"] == 5
    assert rec.ivr is not None and rec.ivr > 0 and rec.wait is not None
    menu = metrics.get("main", "menu")
    assert menu.entries == 1 and dict(menu.exits) == {"2": 1}
    assert metrics.get("survey", "ask").exits["next"] == 1
    assert stats.digits_collected == 4 and stats.lookups == 1 and stats.surveys_scored == 1
    assert stats.outcomes == {"answered": 1, "hangup": 1}


@trio_test
async def test_barge_in_stops_the_menu_and_type_ahead_skips_the_next_prompt(tmp_path, flows, menu_speech):
    from tests.conftest import read_wav

    rate, speech = read_wav(menu_speech)
    with trio.fail_after(30):
        async with running_centre(tmp_path, dids=IVR, registry=flows) as c, phones(c, "caller") as (caller,):
            call, cid = await start(c, caller)
            await trio.sleep(0.1)
            await send_rfc4733(caller, call, "1")   # during the welcome: stops it, typed ahead for the language
            await at_node(c, cid, "menu")
            await trio.sleep(0.6)
            await send_rfc4733(caller, call, "9")   # barge-in on the spoken menu
            await call.ended.wait()
            heard = caller.rtp.audio()
            stats = c.centre.ivr.statistics()
    nodes = ivr_nodes(c, cid)
    assert nodes[nodes.index("menu"):] == ["menu", "bye", "end"]
    assert digits(c, cid) == [("language", "1"), ("menu", "9")]
    assert stats.barge_ins == 2            # the engine stopped the welcome and the menu on the digits
    assert stats.prompts_played == 3       # welcome, menu, goodbye: the language prompt was skipped
    assert band_energy(heard, 900) > 0.05  # goodbye
    # the caller heard well under the whole spoken menu
    assert len(heard) < len(speech) + 0.3 * rate


@trio_test
async def test_type_ahead_during_a_prompt_without_barge_in(tmp_path):
    d = tmp_path / "flows"
    write_flow(d, "ta", """\
start: intro
nodes:
  intro: {type: play, prompts: [intro], barge_in: false, next: menu}
  menu:
    type: menu
    prompts: [menu_prompt]
    choices: {"1": one, "2": two}
    on_failure: one
  one: {type: hangup, reason: one}
  two: {type: hangup, reason: two}
""", {"intro": (500, 1.0), "menu_prompt": (1400, 1.0)})
    registry = FlowRegistry()
    assert registry.reload(d).ok
    with trio.fail_after(20):
        async with running_centre(tmp_path, dids={"1000": ToIvr("ta")}, registry=registry) as c, \
                phones(c, "caller") as (caller,):
            call, cid = await start(c, caller)
            await trio.sleep(0.2)
            await send_rfc4733(caller, call, "2")
            await call.ended.wait()
            heard = caller.rtp.audio()
            stats = c.centre.ivr.statistics()
    assert ivr_nodes(c, cid) == ["intro", "menu", "two"] and digits(c, cid) == [("menu", "2")]
    assert stats.prompts_played == 1 and stats.barge_ins == 0
    assert band_energy(heard, 500) > 0.5 and band_energy(heard, 1400) < 0.01  # intro whole, menu prompt skipped


@trio_test
async def test_lookup_timeout_and_error_take_their_branches(tmp_path):
    with CrmServer() as crm:
        d = tmp_path / "flows"
        write_flow(d, "lk", f"""\
start: slow
nodes:
  slow:
    type: lookup
    url: "{crm.url}/slow"
    timeout: 0.5
    next: end
    on_error: broken
    on_timeout: broken
  broken:
    type: lookup
    url: "{crm.url}/broken"
    timeout: 2
    next: end
    on_error: failed
  failed: {{type: hangup, reason: crm down}}
  end: {{type: hangup, reason: ok}}
""", {})
        registry = FlowRegistry()
        assert registry.reload(d).ok
        with trio.fail_after(20):
            async with running_centre(tmp_path, dids={"1000": ToIvr("lk")}, registry=registry) as c, \
                    phones(c, "caller") as (caller,):
                call, cid = await start(c, caller)
                await call.ended.wait()
                stats = c.centre.ivr.statistics()
                metrics = c.registry.metrics.snapshot()
    assert ivr_nodes(c, cid) == ["slow", "broken", "failed"]
    assert (stats.lookups, stats.lookups_failed, stats.lookups_timed_out) == (2, 2, 1)
    assert dict(metrics.get("lk", "slow").exits) == {"on_timeout": 1}
    assert dict(metrics.get("lk", "broken").exits) == {"on_error": 1}


@trio_test
async def test_the_record_node_keeps_a_voicemail_until_silence(tmp_path, flows):
    from tests.conftest import read_wav

    with trio.fail_after(30):
        async with running_centre(tmp_path, dids=IVR, registry=flows) as c, phones(c, "caller") as (caller,):
            call, cid = await start(c, caller)
            await at_node(c, cid, "menu")
            await send_rfc4733(caller, call, "3")
            await at_node(c, cid, "voicemail")
            await trio.sleep(0.7)  # prompt and beep
            await send_audio(caller, call, tone(700, 1.0))
            await send_audio(caller, call, tone(700, 1.8, amplitude=0))  # silence: ends the message
            ready = await c.bus.wait("recording.ready")
            await call.ended.wait()
            rec = await c.record(cid)
    _rate, pcm = read_wav(ready["recording"])
    assert ready["stopped_by"] == "silence" and 1.5 < ready["duration"] < 4.5
    assert band_energy(pcm, 700) > 0.5
    assert ivr_nodes(c, cid)[-4:] == ["voicemail", "saved", "bye", "end"]
    assert rec.ivr_data["voicemail"] == ready["recording"] and ready["recording"] in rec.recordings


@trio_test
async def test_transfer_node_connects_the_caller_to_the_extension(tmp_path, flows):
    with trio.fail_after(30):
        async with running_centre(tmp_path, dids=IVR, registry=flows) as c, \
                phones(c, "caller", "9009") as (caller, operator):
            c.register("9009", operator, notify=False)
            call, cid = await start(c, caller)
            await at_node(c, cid, "menu")
            await send_rfc4733(caller, call, "4")
            ocall = await operator.next_call()
            await ocall.answered.wait()
            await c.bus.wait("call.transferred")
            await send_rtp(operator.rtp, ocall.media_target, 8, payload=b"\x61" * 160)
            assert any(p.payload == b"\x61" * 160 for p in await wait_packets(caller.rtp, 8))
            await call.bye()
            await ocall.ended.wait()
            rec = await c.record(cid)
    assert ivr_nodes(c, cid)[-1] == "operator"
    assert (rec.outcome, rec.transferred_to) == ("transferred", "9009")


@trio_test
async def test_invalid_then_no_input_use_up_the_retries(tmp_path, flows):
    with trio.fail_after(30):
        async with running_centre(tmp_path, dids=IVR, registry=flows) as c, phones(c, "caller") as (caller,):
            call, cid = await start(c, caller)
            await at_node(c, cid, "menu")
            await send_rfc4733(caller, call, "7")  # not a choice
            await call.ended.wait()               # then silence: the timeout, and no retry is left
            metrics = c.registry.metrics.snapshot()
            heard = caller.rtp.audio()
    menu = metrics.get("main", "menu")
    assert dict(menu.retries) == {"invalid": 1, "timeout": 1} and dict(menu.exits) == {"on_failure": 1}
    assert digits(c, cid) == []
    assert band_energy(heard, 650) > 0.01  # the invalid-choice prompt


@trio_test
async def test_the_callback_node_registers_a_callback_that_rings_back(tmp_path, flows):
    with trio.fail_after(40):
        async with running_centre(tmp_path, dids=IVR, registry=flows) as c, \
                phones(c, "caller", "9001") as (caller, agent):
            c.register("caller", caller, notify=False)
            call, cid = await start(c, caller)
            await at_node(c, cid, "menu")
            await send_rfc4733(caller, call, "5")
            await at_node(c, cid, "callback")
            await send_rfc4733(caller, call, "1")
            requested = await c.bus.wait("call.callback_requested")
            await call.ended.wait()
            c.agent_up("a1", "9001", agent)
            acall = await agent.next_call()
            back = await caller.next_call()
            await back.answered.wait()
            answered = await c.bus.wait("call.answered", callback=True)
            await back.bye()
            await acall.ended.wait()
            rec = await c.record(cid)
    assert ivr_nodes(c, cid)[-4:] == ["route", "callback", "cb_ok", "end"]
    assert (requested["call"], requested["number"], requested["queue"]) == (cid, "caller", "support")
    assert answered["agent"] == "a1"
    assert (rec.outcome, rec.callback, rec.agent) == ("answered", True, "a1")


@trio_test
async def test_the_chosen_language_picks_the_prompts(tmp_path, flows):
    with trio.fail_after(30):
        async with running_centre(tmp_path, dids=IVR, registry=flows) as c, phones(c, "caller") as (caller,):
            call, cid = await start(c, caller)
            await at_node(c, cid, "language")
            await send_rfc4733(caller, call, "2")
            await at_node(c, cid, "menu")
            await trio.sleep(1.0)
            heard = caller.rtp.audio()
            await call.bye()
    assert band_energy(heard[-8000:], 1350) > 0.5  # the Spanish menu


@trio_test
async def test_business_hours_on_a_holiday_go_to_another_flow(tmp_path, flows):
    christmas = datetime(2026, 12, 25, 12, 0, tzinfo=UTC).timestamp()

    def on_christmas(centre):
        centre.ivr.clock = lambda: christmas

    with trio.fail_after(20):
        async with running_centre(tmp_path, dids=IVR, registry=flows, adjust=on_christmas) as c, \
                phones(c, "caller") as (caller,):
            call, cid = await start(c, caller)
            await at_node(c, cid, "language")
            await send_rfc4733(caller, call, "1")
            await call.ended.wait()
            heard = caller.rtp.audio()
    assert ivr_nodes(c, cid) == ["welcome", "language", "hours", "closed", "say", "end"]
    assert band_energy(heard, 950) > 0.05


@trio_test
async def test_a_reload_applies_to_new_calls_while_a_live_call_keeps_its_version(tmp_path):
    d = tmp_path / "flows"
    v1 = """\
start: greet
nodes:
  greet: {type: play, prompts: [greet], next: menu}
  menu: {type: menu, prompts: [menu_prompt], choices: {"1": old}, timeout: 3, on_failure: old}
  old: {type: hangup, reason: version one}
"""
    v2 = """\
start: greet
nodes:
  greet: {type: play, prompts: [greet], next: menu}
  menu: {type: menu, prompts: [menu_prompt], choices: {"1": new}, timeout: 3, on_failure: new}
  new: {type: hangup, reason: version two}
"""
    write_flow(d, "hot", v1, {"greet": (500, 0.3), "menu_prompt": (700, 0.3)})
    registry = FlowRegistry()
    first = registry.reload(d)
    with trio.fail_after(30):
        async with running_centre(tmp_path, dids={"1000": ToIvr("hot")}, registry=registry) as c, \
                phones(c, "alice", "bob") as (alice, bob):
            a, aid = await start(c, alice)
            await at_node(c, aid, "menu")
            (d / "hot.yaml").write_text(v2)
            second = registry.reload(d)
            b, bid = await start(c, bob)
            await c.bus.wait("call.ivr", call=bid, node="menu", event="node_entered")
            await send_rfc4733(alice, a, "1")
            await send_rfc4733(bob, b, "1")
            await a.ended.wait()
            await b.ended.wait()
    assert second.ok and second.changed == ("hot",) and first.version != second.version
    assert ivr_nodes(c, aid)[-1] == "old" and ivr_nodes(c, bid)[-1] == "new"
    versions = {e["call"]: e["version"] for e in c.bus.of("call.ivr") if e.get("event") == "node_entered"}
    assert (versions[aid], versions[bid]) == (first.version, second.version)
