"""The B2BUA end to end on loopback: scripted SIP phones (our own endpoint, real
UDP/TCP sockets), a real media engine, real RTP.

Every wait is bounded by trio.fail_after; no test asserts how long anything took.
"""

from __future__ import annotations

import subprocess

import pytest
import trio
from b2bua_harness import (
    Phone,
    phones,
    running_hotline,
    send_rtp,
    trio_test,
    wait_packets,
)

from mediacore import g711
from orchestrator.calls import CallManagerConfig, Contact
from orchestrator.sip import SessionDescription, parse_uri
from tests.rtppeer import band_energy, tone


def register(hl, user: str, phone: Phone) -> None:
    hl.locator.add(Contact(aor=f"sip:{user}@hotline", uri=parse_uri(phone.uri)))


def sdp_of(body: bytes) -> SessionDescription:
    return SessionDescription.parse(body)


# ---------------------------------------------------------------------------- basic calls
@trio_test
async def test_call_is_bridged_through_engine_with_media_both_ways_and_caller_hangs_up():
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            final = await call.tx
            assert final.status_code == 200
            codes = [r.status_code for r in call.responses]
            assert codes[0] == 100 and 180 in codes and codes[-1] == 200
            bcall = bob.calls[0]
            # Media is anchored: each phone is told to send to an engine port, never to the other phone.
            assert call.media_target != bob.rtp.address and bcall.media_target != alice.rtp.address
            assert call.media_target[1] != bcall.media_target[1]
            await send_rtp(alice.rtp, call.media_target, 20, payload=bytes(range(160)))
            got = await wait_packets(bob.rtp, 20)
            assert [p.payload for p in got[:20]] == [bytes(range(160))] * 20  # relayed untouched (same codec)
            await send_rtp(bob.rtp, bcall.media_target, 20)
            await wait_packets(alice.rtp, 20)
            assert (await call.bye()).status_code == 200
            await bcall.ended.wait()
            ended = await hl.wait_event("call.ended")
    assert hl.names() == ["call.incoming", "call.answered", "call.ended"]
    record = ended.record
    assert record.cause == "normal_clearing" and record.ended_by == "caller" and record.sip_code == 200
    assert record.caller == "sip:alice@127.0.0.1" and record.callee == "2000"
    assert record.route == "extension:2000"
    assert [(leg.role, leg.codec, leg.answered) for leg in record.legs] == [("uas", "PCMU", True),
                                                                           ("uac", "PCMU", True)]
    assert record.talk_seconds > 0 and record.answered_at >= record.started_at
    assert hl.manager.statistics().active_calls == 0
    assert hl.engine.statistics().legs == 0  # every engine leg released


@trio_test
async def test_callee_hangs_up_and_caller_gets_bye():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            assert (await bob.calls[0].bye()).status_code == 200
            await call.ended.wait()
            ended = await hl.wait_event("call.ended")
    assert ended.record.ended_by == "callee"
    assert [r.method for r in call.requests] == ["BYE"]


@trio_test
async def test_different_codecs_are_transcoded():
    from orchestrator.sip import MediaPolicy

    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice") as (alice,), \
                phones(hl, "bob", policy=MediaPolicy(codecs=("PCMA",), telephone_event=False)) as (bob,):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            assert "PCMU" in call.final.body.decode() and "PCMA" in bob.calls[0].final.body.decode()
            pcm = tone(440, 1.0)
            for i in range(0, 8000, 160):
                alice.rtp.send(alice.rtp.packet(g711.ulaw_encode(pcm[i:i + 160])), call.media_target)
                await trio.sleep(0.02)
            got = await wait_packets(bob.rtp, 30)
            assert {p.payload_type for p in got} == {8}  # A-law out to bob
            audio = bob.rtp.audio(law="alaw")
            assert band_energy(audio[len(audio) // 3:], 440) > 0.8
            await call.bye()


@trio_test
async def test_busy_callee_is_relayed_and_recorded():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice") as (alice,), \
                phones(hl, "bob", answer=486) as (bob,):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            final = await call.tx
            ended = await hl.wait_event("call.ended")
    assert final.status_code == 486
    assert ended.record.cause == "busy" and ended.record.sip_code == 486
    assert ended.record.answered_at is None and ended.record.talk_seconds == 0


@trio_test
async def test_unregistered_extension_gets_480():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice") as (alice,):
            call = alice.invite("sip:4321@127.0.0.1")
            assert (await call.tx).status_code == 480


@trio_test
async def test_caller_cancel_cancels_the_ringing_callee():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice") as (alice,), \
                phones(hl, "bob", answer=None) as (bob,):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            bcall = await bob.next_call()
            bob.respond_invite(bcall, 180)
            async for response in call.tx:
                if response.status_code == 180:
                    break
            call.tx.cancel()
            final = await call.tx
            await bcall.ended.wait()  # bob got a CANCEL and answered 487
            ended = await hl.wait_event("call.ended")
    assert final.status_code == 487
    assert "CANCEL" in [r.method for r in bcall.requests]
    assert ended.record.cause == "caller_cancel" and ended.record.ended_by == "caller"


@trio_test
async def test_no_answer_times_out_with_480_and_cancels_the_callee():
    config = CallManagerConfig(ring_timeout=0.5)
    with trio.fail_after(10):
        async with running_hotline(config=config) as hl, phones(hl, "alice") as (alice,), \
                phones(hl, "bob", answer=None) as (bob,):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            bcall = await bob.next_call()
            bob.respond_invite(bcall, 180)
            final = await call.tx
            await bcall.ended.wait()
            ended = await hl.wait_event("call.ended")
    assert final.status_code == 480
    assert ended.record.cause == "no_answer"


@trio_test
async def test_parallel_fork_first_answer_wins_and_other_branch_is_cancelled():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice") as (alice,), \
                phones(hl, "desk", "mobile", answer=None) as (desk, mobile):
            register(hl, "2000", desk)
            register(hl, "2000", mobile)
            call = alice.invite("sip:2000@127.0.0.1")
            dcall, mcall = await desk.next_call(), await mobile.next_call()
            desk.respond_invite(dcall, 180)
            mobile.respond_invite(mcall, 180)
            mobile.respond_invite(mcall, 200)
            assert (await call.tx).status_code == 200
            await dcall.ended.wait()
            assert "CANCEL" in [r.method for r in dcall.requests]
            await send_rtp(alice.rtp, call.media_target, 10)
            await wait_packets(mobile.rtp, 10)
            assert desk.rtp.packets() == []
            await call.bye()
            await mcall.ended.wait()


@trio_test
async def test_early_media_183_is_bridged_before_the_answer():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice") as (alice,), \
                phones(hl, "bob", answer=None) as (bob,):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            bcall = await bob.next_call()
            bob.respond_invite(bcall, 183)
            async for response in call.tx:
                if response.status_code == 183:
                    break
            assert response.body and call.remote_sdp is not None  # our engine's answer, early
            await send_rtp(bob.rtp, bcall.media_target, 10)
            got = await wait_packets(alice.rtp, 10)  # bob's announcement reaches alice before any 200
            assert call.final is None and len(got) >= 10
            bob.respond_invite(bcall, 200)
            final = await call.tx
            assert final.status_code == 200 and sdp_of(final.body).media[0].port == call.media_target[1]
            await call.bye()


@trio_test
async def test_delayed_offer_invite_gets_our_offer_in_the_200_and_answer_in_ack():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1", body=b"")
            final = await call.tx
            assert final.status_code == 200 and b"m=audio" in final.body
            bcall = bob.calls[0]
            await bcall.acked.wait()
            # alice answered in the ACK (the harness does); media now flows both ways
            await trio.sleep(0.05)
            await send_rtp(bob.rtp, bcall.media_target, 10)
            await wait_packets(alice.rtp, 10)
            await send_rtp(alice.rtp, call.media_target, 10)
            await wait_packets(bob.rtp, 10)
            await call.bye()


@trio_test
async def test_tcp_caller_to_udp_callee():
    with trio.fail_after(10):
        async with running_hotline(tcp=True) as hl, phones(hl, "alice", transport="TCP") as (alice,), \
                phones(hl, "bob") as (bob,):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1;transport=tcp")
            assert (await call.tx).status_code == 200
            assert (await bob.calls[0].bye()).status_code == 200
            await call.ended.wait()  # the BYE reached alice over her TCP connection
    tcp = [s for s in hl.endpoint.statistics().transports if s.__class__.__name__ == "StreamStatistics"][0]
    assert tcp.accepted == 1 and tcp.connected == 0  # the BYE reused alice's connection


@trio_test
async def test_unknown_dialog_gets_481_and_out_of_order_cseq_gets_500():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            call.dialog.local_seq = 0  # resend an old CSeq number
            assert (await call.request("INFO")).status_code == 500
            call.dialog.local_seq = 10
            real = call.dialog.remote_uri
            call.dialog.remote_uri = real.with_tag("no-such-tag")
            assert (await call.request("BYE")).status_code == 481
            call.dialog.remote_uri = real
            assert (await call.bye()).status_code == 200


# ---------------------------------------------------------------------------- hold
@pytest.fixture(scope="module")
def moh_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("moh") / "moh.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "3", "sine", "600",
                    "vol", "0.5"], check=True, capture_output=True)
    return str(path)


@trio_test
async def test_hold_plays_music_to_the_other_party_and_unhold_restores_the_bridge(moh_file):
    config = CallManagerConfig(music_on_hold=moh_file, ring_timeout=10)
    with trio.fail_after(15):
        async with running_hotline(config=config) as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            bcall = bob.calls[0]
            held = await call.reinvite("sendonly")  # alice holds
            assert held.status_code == 200
            assert sdp_of(held.body).media[0].direction == "recvonly"
            await hl.wait_event("call.held")
            bob.rtp.clear()
            await trio.sleep(0.6)
            music = bob.rtp.audio()
            assert len(music) >= 8000 * 0.3
            assert band_energy(music, 600) > 0.8  # bob hears the hold music, not alice
            resumed = await call.reinvite("sendrecv")
            assert sdp_of(resumed.body).media[0].direction == "sendrecv"
            await hl.wait_event("call.resumed")
            bob.rtp.clear()
            await send_rtp(alice.rtp, call.media_target, 10, payload=b"\x11" * 160)
            got = await wait_packets(bob.rtp, 10, payload_type=0)
            assert any(p.payload == b"\x11" * 160 for p in got)  # alice is heard again
            await call.bye()
            ended = await hl.wait_event("call.ended")
    holds = [e.details["by"] for e in hl.events if e.name in ("call.held", "call.resumed")]
    assert holds == ["caller", "caller"]
    assert ended.record.hold_seconds > 0
    assert bcall.requests == [] or all(r.method != "INVITE" for r in bcall.requests)  # hold stays on our side


# ---------------------------------------------------------------------------- DTMF
@trio_test
async def test_info_dtmf_becomes_a_digit_and_an_rfc4733_event_to_the_other_party():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            hcall = hl.manager.calls()[0]
            r = await call.info(b"Signal=5\r\nDuration=160\r\n")
            assert r.status_code == 200
            r = await call.info(b"11", content_type="application/dtmf")
            assert r.status_code == 200
            digits = [await hcall.receive_digit(), await hcall.receive_digit()]
            assert [(d.digit, d.source) for d in digits] == [("5", "info"), ("#", "info")]
            while {p.payload[0] for p in bob.rtp.packets() if p.payload_type == 101} != {5, 11}:
                await trio.sleep(0.01)  # RFC 4733 event codes for 5 and #, in that order
            events = [p for p in bob.rtp.packets() if p.payload_type == 101]
            assert events[0].payload[0] == 5 and events[-1].payload[0] == 11
            bad = await call.info(b"Signal=X", content_type="application/dtmf-relay")
            assert bad.status_code == 400
            await call.bye()
    assert hl.manager.statistics().info_digits == 2
