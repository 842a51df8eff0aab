"""The ACD service with real calls: queue calls through the B2BUA on loopback, scripted phones as
callers and agents, a real media engine, the real routing policy, an SQLite event log.

Each test checks what the phones got (SIP and RTP), the events the bus published, and the call
record the store folded from the log.
"""

from __future__ import annotations

import pytest
import trio
from callcentre_kit import default_acd, phones, running_centre, tone_wav, trio_test

from orchestrator.acd import AgentConfig, EscalationStep, QueueConfig
from orchestrator.calls import ToQueue
from tests.orchestrator.calls.b2bua_harness import send_rtp, wait_packets
from tests.rtppeer import band_energy

QUEUE = {"2000": ToQueue("support")}


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    d = tmp_path_factory.mktemp("acd-audio")
    return {"moh": str(tone_wav(d / "moh.wav", 440, 3.0)), "comfort": tone_wav(d / "queue-comfort.wav", 1200, 0.6),
            "dir": d}


async def answered_pair(c, caller, agent_phone):
    call = caller.invite("sip:2000@127.0.0.1")
    assert (await call.tx).status_code == 200
    acall = await agent_phone.next_call()
    await acall.answered.wait()
    await c.bridged()
    return call, acall


@trio_test
async def test_a_queue_call_is_offered_answered_bridged_and_recorded(tmp_path):
    with trio.fail_after(20):
        async with running_centre(tmp_path, dids=QUEUE) as c, phones(c, "caller", "9001") as (caller, agent):
            c.agent_up("a1", "9001", agent)
            call, acall = await answered_pair(c, caller, agent)
            # the agent's phone sees the caller's number
            assert acall.invite.from_.uri.user == "caller"
            offered = await c.bus.wait("call.offered")
            answered = await c.bus.wait("call.answered")
            await send_rtp(agent.rtp, acall.media_target, 8, payload=b"\x21" * 160)
            assert any(p.payload == b"\x21" * 160 for p in await wait_packets(caller.rtp, 8))
            await send_rtp(caller.rtp, call.media_target, 8, payload=b"\x22" * 160)
            assert any(p.payload == b"\x22" * 160 for p in await wait_packets(agent.rtp, 8))
            assert c.acd.get_agent("a1")["state"] == "on_call"
            await call.bye()
            await acall.ended.wait()
            cid = offered["call"]
            rec = await c.record(cid)
            await c.bus.wait("call.wrapup_ended")
            types = [e.type for e in c.logged(cid)]
    assert (offered["agent"], offered["device"], offered["caller"], offered["queue"]) == ("a1", "9001", "caller",
                                                                                        "support")
    assert answered["agent"] == "a1" and answered["wait"] >= 0
    assert (rec.outcome, rec.queue, rec.agent, rec.offers, rec.caller) == ("answered", "support", "a1", 1,
                                                                           "sip:caller@127.0.0.1")
    assert rec.talk is not None and rec.talk > 0 and rec.end_cause == "normal_clearing"
    assert types[:1] == ["call.incoming"]
    for t in ("call.queued", "call.offered", "call.answered", "call.ended", "call.wrapup_ended"):
        assert t in types
    assert c.acd.statistics().offers_answered == 1



def prompts_in(d, **tones):
    """Queue prompts as tones: each name's own frequency, so the caller's audio tells them apart."""
    from orchestrator.callcentre import QueuePrompts

    for name, (freq, seconds) in tones.items():
        tone_wav(d / f"{name}.wav", freq, seconds)
    return QueuePrompts(directory=d, music={"default": str(tone_wav(d / "moh.wav", 440, 2.0, volume=0.3))},
                        callback_listen=3.0)


@trio_test
async def test_ring_no_answer_puts_the_agent_on_break_and_the_next_agent_gets_the_call(tmp_path):
    acd = default_acd([QueueConfig(name="support", ring_timeout=1.0, strategy="sequential")],
                      [AgentConfig(id="a1", queues={"support": 0}), AgentConfig(id="a2", queues={"support": 1})])
    with trio.fail_after(20):
        async with running_centre(tmp_path, acd=acd, dids=QUEUE) as c, phones(c, "caller", "9002") as (caller, a2), \
                phones(c, "9001", answer=180) as (a1,):
            c.agent_up("a1", "9001", a1)
            c.agent_up("a2", "9002", a2)
            call, acall = await answered_pair(c, caller, a2)
            ended = await c.bus.wait("call.offer_ended")
            rona = c.bus.of("agent.state", agent="a1", state="break")
            await a1.calls[0].ended.wait()  # the unanswered ring was CANCELled
            await call.bye()
            await acall.ended.wait()
    assert (ended["agent"], ended["reason"]) == ("a1", "timeout") and 1.0 <= ended["ring"] < 2.0
    assert rona and rona[-1]["reason"] == "rona"
    assert [o["agent"] for o in c.bus.of("call.offered")] == ["a1", "a2"]
    assert [r.method for r in a1.calls[0].requests] == ["CANCEL"]


@trio_test
async def test_ring_all_two_agents_answer_and_exactly_one_gets_the_caller(tmp_path):
    acd = default_acd([QueueConfig(name="support", ring_timeout=5.0, strategy="ring-all")])
    with trio.fail_after(20):
        async with running_centre(tmp_path, acd=acd, dids=QUEUE) as c, \
                phones(c, "caller", "9001", "9002") as (caller, a1, a2):
            c.agent_up("a1", "9001", a1)
            c.agent_up("a2", "9002", a2)
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            answered = await c.bus.wait("call.answered")
            await c.bridged()
            winner, loser = (a1, a2) if answered["agent"] == "a1" else (a2, a1)
            await loser.calls[0].ended.wait()
            wcall = winner.calls[0]
            await send_rtp(winner.rtp, wcall.media_target, 8, payload=b"\x31" * 160)
            assert any(p.payload == b"\x31" * 160 for p in await wait_packets(caller.rtp, 8))
            assert not wcall.ended.is_set()
            await call.bye()
            await wcall.ended.wait()
            lost = await c.bus.wait("call.offer_ended")
    offered = c.bus.of("call.offered")
    assert len(offered) == 2 and all(o["ring_all"] for o in offered)
    assert lost["reason"] == "answered-elsewhere" and lost["agent"] != answered["agent"]
    assert len(c.bus.of("call.answered")) == 1
    lcall = loser.calls[0]
    # the loser either was CANCELled before answering, or its answer was refused (ACK + BYE)
    assert [r.method for r in lcall.requests] in (["CANCEL"], ["ACK", "BYE"])


@pytest.mark.slow
@trio_test
async def test_music_announcements_and_comfort_prompts_while_waiting(tmp_path):
    d = tmp_path / "prompts"
    prompts = prompts_in(d, queue_position=(1500, 0.4), number_1=(1700, 0.4), **{"queue-comfort": (1900, 0.4)})
    acd = default_acd([QueueConfig(name="support", announce_every=1.0, comfort_every=1.5)])
    with trio.fail_after(20):
        async with running_centre(tmp_path, acd=acd, dids=QUEUE, prompts=prompts) as c, \
                phones(c, "caller") as (caller,):
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            await trio.sleep(3.2)
            heard = caller.rtp.audio()
            stats = c.acd.statistics()
            await call.bye()
            rec = await c.record((await c.bus.wait("call.queued"))["call"])
    energy = {f: band_energy(heard, f) for f in (440, 1500, 1700, 1900)}
    assert band_energy(heard[:6000], 440) > 0.5  # music on hold first, until the first announcement
    assert min(energy[1500], energy[1700], energy[1900]) > 0.02, energy  # position 1, comfort
    assert stats.prompts_played >= 4 and stats.prompts_missing == 0  # no wait pieces: the wait is unknown
    assert rec.outcome == "abandoned" and rec.queue == "support"


@trio_test
async def test_overflow_moves_the_caller_to_another_queue_where_an_agent_answers(tmp_path):
    acd = default_acd([QueueConfig(name="support", escalation=(EscalationStep.overflow(0.5, "sales"),)),
                       QueueConfig(name="sales")],
                      [AgentConfig(id="a3", queues={"sales": 0})])
    with trio.fail_after(20):
        async with running_centre(tmp_path, acd=acd, dids=QUEUE) as c, \
                phones(c, "caller", "9003") as (caller, agent):
            c.agent_up("a3", "9003", agent)
            call, _acall = await answered_pair(c, caller, agent)
            cid = (await c.bus.wait("call.answered"))["call"]
            await call.bye()
            rec = await c.record(cid)
    moved = c.bus.of("call.overflowed")[0]
    assert (moved["queue"], moved["to_queue"]) == ("support", "sales")
    assert (rec.outcome, rec.queues, rec.queue, rec.agent) == ("answered", ("support", "sales"), "sales", "a3")
    assert rec.wait >= 0.5


@trio_test
async def test_agent_state_follows_registration_and_personal_calls(tmp_path):
    with trio.fail_after(25):
        async with running_centre(tmp_path, dids=QUEUE) as c, \
                phones(c, "caller", "9001", "9009") as (caller, agent, friend):
            c.acd.login("a1", "9001")
            assert c.acd.get_agent("a1")["state"] == "unregistered"
            c.register("9001", agent)
            assert c.acd.get_agent("a1")["state"] == "available"
            c.register("9009", friend, notify=False)
            # the agent's own phone calls a colleague: busy, not offered queue calls
            personal = agent.invite("sip:9009@127.0.0.1")
            assert (await personal.tx).status_code == 200
            assert c.acd.get_agent("a1")["state"] == "busy"
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            await c.bus.wait("call.queued")
            await trio.sleep(0.3)
            assert c.bus.of("call.offered") == []
            await personal.bye()
            queued = await agent.next_call()  # the personal INVITE was ours; this is the offer
            await queued.answered.wait()
            offered = await c.bus.wait("call.offered")
            await c.bus.wait("call.answered", agent="a1")
            c.unregister("9001")  # on a call: the agent stays on the call
            assert c.acd.get_agent("a1")["state"] == "on_call"
            await call.bye()
            await c.bus.wait("call.wrapup_ended")
            state = c.acd.get_agent("a1")["state"]
    assert offered["agent"] == "a1"
    assert state == "unregistered"
    seen = [e["state"] for e in c.bus.of("agent.state", agent="a1")]
    # busy until the personal call ends, then at once ringing with the waiting caller
    assert seen[:4] == ["unregistered", "available", "busy", "ringing"]


@trio_test
async def test_hold_by_the_agent_is_a_queue_hold_in_the_record(tmp_path):
    with trio.fail_after(20):
        async with running_centre(tmp_path, dids=QUEUE) as c, phones(c, "caller", "9001") as (caller, agent):
            c.agent_up("a1", "9001", agent)
            call, acall = await answered_pair(c, caller, agent)
            cid = (await c.bus.wait("call.answered"))["call"]
            assert (await acall.reinvite("sendonly")).status_code == 200
            held = await c.bus.wait("call.held")
            await trio.sleep(0.5)
            assert (await acall.reinvite("sendrecv")).status_code == 200
            await c.bus.wait("call.resumed")
            await call.bye()
            rec = await c.record(cid)
    assert (held["queue"], held["agent"]) == ("support", "a1")
    assert 0.4 < rec.hold < 2.0 and rec.outcome == "answered"


async def wait_gone(c, caller_call):
    await caller_call.ended.wait()


@pytest.mark.parametrize("mode", ["agent-first", "caller-first"])
@trio_test
async def test_callback_keeps_the_place_and_calls_the_caller_back(tmp_path, mode):
    d = tmp_path / "prompts"
    prompts = prompts_in(d, queue_callback_option=(1300, 0.3), queue_callback_confirmed=(1600, 0.3))
    acd = default_acd([QueueConfig(name="support", callback_mode=mode,
                                   escalation=(EscalationStep.offer_callback(0.3),))])
    with trio.fail_after(30):
        async with running_centre(tmp_path, acd=acd, dids=QUEUE, prompts=prompts) as c, \
                phones(c, "5551234", "9001") as (customer, agent):
            c.register("5551234", customer, notify=False)  # where the callback goes
            first = customer.invite("sip:2000@127.0.0.1")
            assert (await first.tx).status_code == 200
            await c.bus.wait("call.escalated")
            await trio.sleep(0.2)
            await send_rfc4733(customer, first, "1")
            requested = await c.bus.wait("call.callback_requested")
            await first.ended.wait()  # confirmed, then hung up: the caller keeps the place
            assert any(r.method == "BYE" for r in first.requests)
            c.agent_up("a1", "9001", agent)
            if mode == "agent-first":
                acall = await agent.next_call()
                assert acall.invite.from_.uri.user == "5551234"  # the agent sees whom they call back
                back = await customer.next_call()
            else:
                back = await customer.next_call()
                acall = await agent.next_call()
            await back.answered.wait()
            answered = await c.bus.wait("call.answered")
            while not any(call.room is not None for call in c.calls()):
                await trio.sleep(0.01)
            await send_rtp(agent.rtp, acall.media_target, 8, payload=b"\x41" * 160)
            assert any(p.payload == b"\x41" * 160 for p in await wait_packets(customer.rtp, 8))
            await back.bye()
            await acall.ended.wait()
            rec = await c.record(requested["call"])
            await c.bus.wait("call.ended", call=requested["call"])
    dialed = c.bus.of("call.callback_dialed")
    assert requested["number"] == "5551234" and dialed[0]["agent"] == "a1" and dialed[0]["attempt"] == 1
    assert answered["callback"] is True and answered["call"] == requested["call"]
    assert (rec.outcome, rec.callback, rec.agent) == ("answered", True, "a1")
    assert c.acd.statistics().callbacks_connected == 1


from callcentre_kit import SURVEY_FLOW, send_audio, send_rfc4733, write_flow

from tests.rtppeer import tone


@pytest.mark.slow
@trio_test
async def test_a_caller_who_waited_too_long_leaves_a_voicemail(tmp_path):
    d = tmp_path / "prompts"
    prompts = prompts_in(d, queue_voicemail=(900, 0.4))
    acd = default_acd([QueueConfig.from_dict({"name": "support", "max_wait": 0.5, "on_timeout": "voicemail:support"})])
    with trio.fail_after(20):
        async with running_centre(tmp_path, acd=acd, dids=QUEUE, prompts=prompts) as c, \
                phones(c, "caller") as (caller,):
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            exited = await c.bus.wait("call.exited")
            await trio.sleep(0.9)  # greeting and beep
            await send_audio(caller, call, tone(700, 1.0))
            await send_rfc4733(caller, call, "#")
            ready = await c.bus.wait("recording.ready")
            await call.ended.wait()
            rec = await c.record(exited["call"])
    from tests.conftest import read_wav

    rate, pcm = read_wav(ready["recording"])
    assert (exited["reason"], exited["destination"]) == ("timeout", "voicemail:support")
    assert ready["stopped_by"] == "terminator" and 0.8 < ready["duration"] < 3.0
    assert rate == 8000 and band_energy(pcm, 700) > 0.5  # the message is what the caller said
    assert rec.outcome == "voicemail" and str(ready["recording"]) in rec.recordings


@trio_test
async def test_the_caller_rates_the_call_after_the_agent_hangs_up(tmp_path):
    from orchestrator.ivr import FlowRegistry

    flows = tmp_path / "flows"
    write_flow(flows, "survey", SURVEY_FLOW, {"survey_question": (1100, 0.4), "survey_thanks": (1250, 0.3)})
    registry = FlowRegistry()
    assert registry.reload(flows).ok
    with trio.fail_after(20):
        async with running_centre(tmp_path, dids=QUEUE, registry=registry, surveys={"support": "survey"}) as c, \
                phones(c, "caller", "9001") as (caller, agent):
            c.agent_up("a1", "9001", agent)
            call, acall = await answered_pair(c, caller, agent)
            cid = (await c.bus.wait("call.answered"))["call"]
            await acall.bye()
            ended = await c.bus.wait("call.ended", agent="a1")  # the ACD's end: the agent's talk is over
            await c.bus.wait("call.ivr", node="ask")
            await trio.sleep(0.2)
            await send_rfc4733(caller, call, "4")
            survey = await c.bus.wait("call.survey")
            await call.ended.wait()  # thanks, then the IVR hangs up
            rec = await c.record(cid)
    assert survey["score"] == 4 and rec.survey == 4.0
    assert (rec.outcome, rec.agent, rec.ivr_data["ask"]) == ("answered", "a1", "4")
    assert ended["talk"] >= 0 and rec.talk is not None
