"""Transfers through the B2BUA on loopback: blind REFER (RFC 3515), attended
REFER with Replaces, and INVITE with Replaces (RFC 3891)."""

from __future__ import annotations

from urllib.parse import quote

import trio
from b2bua_harness import phones, running_hotline, send_rtp, trio_test, wait_packets

from orchestrator.calls import Contact
from orchestrator.sip import parse_uri


def register(hl, user, phone):
    hl.locator.add(Contact(aor=f"sip:{user}@hotline", uri=parse_uri(phone.uri)))


async def connected(phone_call, peer_phone, peer_call):
    """Media flows both ways between two phones' calls (through the engine)."""
    peer_phone.rtp.clear()
    phone_call.phone.rtp.clear()
    await send_rtp(phone_call.phone.rtp, phone_call.media_target, 8, payload=b"\x21" * 160)
    got = await wait_packets(peer_phone.rtp, 8, payload_type=0)
    assert any(p.payload == b"\x21" * 160 for p in got)
    await send_rtp(peer_phone.rtp, peer_call.media_target, 8, payload=b"\x42" * 160)
    got = await wait_packets(phone_call.phone.rtp, 8, payload_type=0)
    assert any(p.payload == b"\x42" * 160 for p in got)


async def notifications(call, count):
    while len(call.notifies) < count:
        await call.notify_event.wait()
    return call.notifies


@trio_test
async def test_blind_transfer_with_refer():
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "alice", "bob", "carol") as (alice, bob, carol):
            register(hl, "2000", bob)
            register(hl, "3000", carol)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            bcall = bob.calls[0]
            r = await bcall.refer("<sip:3000@127.0.0.1>")
            assert r.status_code == 202
            ccall = await carol.next_call()
            await ccall.answered.wait()
            sipfrags = await notifications(bcall, 2)
            assert sipfrags[0].startswith("SIP/2.0 100") and sipfrags[-1].startswith("SIP/2.0 200")
            notify_states = [req.headers.get("Subscription-State") for req in bcall.requests
                             if req.method == "NOTIFY"]
            assert notify_states[0].startswith("active") and notify_states[-1].startswith("terminated")
            await bcall.ended.wait()  # the referrer is released with a BYE
            assert ccall.invite.from_.uri.user == "alice"  # the transferee's identity goes to the target
            await connected(call, carol, ccall)
            event = await hl.wait_event("call.transferred")
            assert event.details["mode"] == "blind" and event.details["to"] == "sip:3000@127.0.0.1"
            await call.bye()
            await ccall.ended.wait()
            ended = await hl.wait_event("call.ended")
    assert ended.record.transferred and ended.record.ended_by == "caller"
    assert len(hl.manager.calls()) == 0


@trio_test
async def test_blind_transfer_to_a_busy_target_returns_the_call_to_the_referrer():
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "alice", "bob") as (alice, bob), \
                phones(hl, "carol", answer=486) as (carol,):
            register(hl, "2000", bob)
            register(hl, "3000", carol)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            bcall = bob.calls[0]
            assert (await bcall.refer("<sip:3000@127.0.0.1>")).status_code == 202
            sipfrags = await notifications(bcall, 2)
            assert sipfrags[-1].startswith("SIP/2.0 486")
            await connected(call, bob, bcall)  # alice and bob are bridged again
            assert not bcall.ended.is_set()
            await call.bye()


@trio_test
async def test_attended_transfer_with_refer_replaces():
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "alice", "bob", "carol") as (alice, bob, carol):
            register(hl, "2000", bob)
            register(hl, "3000", carol)
            call1 = alice.invite("sip:2000@127.0.0.1")
            assert (await call1.tx).status_code == 200
            bob1 = bob.calls[0]
            call2 = bob.invite("sip:3000@127.0.0.1")  # bob consults carol
            assert (await call2.tx).status_code == 200
            carol2 = carol.calls[0]
            replaces = quote(call2.replaces_value(), safe="")
            r = await bob1.refer(f"<sip:3000@127.0.0.1?Replaces={replaces}>")
            assert r.status_code == 202
            await bob1.ended.wait()
            await call2.ended.wait()  # bob is released from both calls
            assert (await notifications(bob1, 2))[-1].startswith("SIP/2.0 200")
            await connected(call1, carol, carol2)  # alice now talks to carol
            event = await hl.wait_event("call.transferred")
            assert event.details["mode"] == "attended"
            assert len(carol.calls) == 1  # carol's existing dialog was reused, no new INVITE
            await carol2.bye()
            await call1.ended.wait()
    ended = [e for e in hl.events if e.name == "call.ended"]
    assert sorted(e.record.cause for e in ended) == ["normal_clearing", "transferred"]


@trio_test
async def test_invite_with_replaces_takes_over_a_leg():
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "alice", "bob", "dave") as (alice, bob, dave):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            bcall = bob.calls[0]
            takeover = dave.invite("sip:2000@127.0.0.1", headers=[("Replaces", bcall.replaces_value())])
            assert (await takeover.tx).status_code == 200
            await bcall.ended.wait()  # bob's leg was replaced and released
            await connected(call, dave, takeover)
            event = await hl.wait_event("call.transferred")
            assert event.details["mode"] == "replaces"
            wrong = dave.invite("sip:2000@127.0.0.1", headers=[("Replaces", "nope;to-tag=1;from-tag=2")])
            assert (await wrong.tx).status_code == 481
            await call.bye()
            await takeover.ended.wait()
    assert hl.manager.statistics().transfers == 1
