"""Call control beyond a plain call: origination, queue/IVR handlers, overload
and abuse protection, authentication, trunks, failure timers."""

from __future__ import annotations

import socket
import subprocess
import threading

import pytest
import trio
from b2bua_harness import phones, running_hotline, send_rtp, trio_test, wait_packets

from orchestrator.calls import (
    CallManagerConfig,
    Contact,
    DialPlan,
    StaticAuthenticator,
    ToIvr,
    ToQueue,
    ToTrunk,
    Trunk,
)
from orchestrator.sip import DigestServer, TimerConfig, authorization_for, compute_ha1, parse_uri
from orchestrator.sip.digest import parse_challenges
from orchestrator.transport import EndpointConfig, RateLimit
from tests.rtppeer import band_energy


def register(hl, user, phone):
    hl.locator.add(Contact(aor=f"sip:{user}@hotline", uri=parse_uri(phone.uri)))


@pytest.fixture(scope="module")
def prompt(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompt") / "prompt.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "4", "sine", "900",
                    "vol", "0.5"], check=True, capture_output=True)
    return str(path)


# ---------------------------------------------------------------------------- origination
@trio_test
async def test_originate_calls_one_party_then_the_other_and_bridges():
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "agent", "customer") as (agent, customer):
            register(hl, "9001", agent)
            call = await hl.manager.originate("9001", customer.uri, data={"crm": "ticket-42"})
            await call.wait_connected()
            acall, ccall = agent.calls[0], customer.calls[0]
            assert acall.invite.from_.uri.user == "customer"  # the agent sees whom they are calling
            assert ccall.invite.from_.uri.user == "9001"
            await send_rtp(agent.rtp, acall.media_target, 8, payload=b"\x33" * 160)
            got = await wait_packets(customer.rtp, 8)
            assert any(p.payload == b"\x33" * 160 for p in got)
            await ccall.bye()
            await acall.ended.wait()
            ended = await hl.wait_event("call.ended")
    assert ended.record.direction == "outbound" and ended.record.data["crm"] == "ticket-42"
    assert ended.record.ended_by == "callee" and ended.record.answered_at is not None
    assert [e.name for e in hl.events] == ["call.answered", "call.ended"]


@trio_test
async def test_originate_to_a_busy_second_party_hangs_up_the_first():
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "agent") as (agent,), \
                phones(hl, "customer", answer=486) as (customer,):
            register(hl, "9001", agent)
            call = await hl.manager.originate("9001", customer.uri)
            await call.wait_ended()
            await agent.calls[0].ended.wait()
    assert call.cause == "busy" and call.sip_code == 486


def test_originate_rejects_bad_targets():
    async def main():
        async with running_hotline() as hl:
            with pytest.raises(ValueError, match="from_"):
                await hl.manager.originate("", "9001")
            with pytest.raises(ValueError, match="to: cannot originate"):
                await hl.manager.originate("9001", ToQueue("support"))
    trio.run(main)


# ---------------------------------------------------------------------------- handlers
class FakeQueue:
    """What the ACD does with a call, in miniature: answer, play, read a digit, connect."""

    def __init__(self, prompt):
        self.prompt = prompt
        self.digits = []
        self.result = None

    async def handle(self, call, target):
        assert target == ToQueue("support")
        assert await call.answer()
        playback = call.play(file=self.prompt, stop_on_dtmf=True)
        digit = await call.receive_digit()
        self.digits.append((digit.digit, digit.source))
        playback.stop()
        self.reason = await playback.wait()
        self.result = await call.connect("9001")


@trio_test
async def test_queue_handler_answers_plays_reads_digits_and_connects_to_an_agent(prompt):
    queue = FakeQueue(prompt)
    plan = DialPlan(dids={"2000": ToQueue("support")})
    with trio.fail_after(15):
        async with running_hotline(router=plan, handlers={"queue": queue}) as hl, \
                phones(hl, "caller", "agent") as (caller, agent):
            register(hl, "9001", agent)
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            await trio.sleep(0.4)
            heard = caller.rtp.audio()
            assert band_energy(heard, 900) > 0.8  # the queue prompt
            assert (await call.info(b"Signal=1\r\nDuration=100\r\n")).status_code == 200
            acall = await agent.next_call()
            await acall.answered.wait()
            while queue.result is None:
                await trio.sleep(0.01)
            assert queue.result.answered and queue.digits == [("1", "info")]
            assert queue.reason in ("stopped", "dtmf")
            await send_rtp(agent.rtp, acall.media_target, 8, payload=b"\x44" * 160)
            got = await wait_packets(caller.rtp, 8)
            assert any(p.payload == b"\x44" * 160 for p in got)
            await call.bye()
            await acall.ended.wait()
            ended = await hl.wait_event("call.ended")
    assert ended.record.route == "queue:support"
    assert [e.name for e in hl.events].count("call.answered") == 1


class FailingIvr:
    async def handle(self, call, target):
        raise RuntimeError("flow crashed")


@trio_test
async def test_a_failing_handler_ends_the_call_with_500():
    plan = DialPlan(dids={"1000": ToIvr("main")})
    with trio.fail_after(10):
        async with running_hotline(router=plan, handlers={"ivr": FailingIvr()}) as hl, \
                phones(hl, "caller") as (caller,):
            call = caller.invite("sip:1000@127.0.0.1")
            assert (await call.tx).status_code == 500
            ended = await hl.wait_event("call.ended")
    assert ended.record.cause == "handler_error"


@trio_test
async def test_queue_without_a_handler_is_480():
    plan = DialPlan(dids={"2000": ToQueue("support")})
    with trio.fail_after(10):
        async with running_hotline(router=plan) as hl, phones(hl, "caller") as (caller,):
            assert (await caller.invite("sip:2000@127.0.0.1").tx).status_code == 480


# ---------------------------------------------------------------------------- overload
@trio_test
async def test_over_max_calls_is_503_with_retry_after_and_then_calls_work_again():
    config = CallManagerConfig(max_calls=1, retry_after=7)
    with trio.fail_after(10):
        async with running_hotline(config=config) as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            first = alice.invite("sip:2000@127.0.0.1")
            assert (await first.tx).status_code == 200
            second = alice.invite("sip:2000@127.0.0.1")
            refused = await second.tx
            assert refused.status_code == 503 and refused.headers.get("Retry-After") == "7"
            await first.bye()
            await hl.wait_event("call.ended")
            third = alice.invite("sip:2000@127.0.0.1")
            assert (await third.tx).status_code == 200
            await third.bye()
    assert hl.manager.statistics().rejected_overload == 1


@trio_test
async def test_over_calls_per_second_is_503():
    config = CallManagerConfig(max_cps=0.5, cps_burst=2)
    with trio.fail_after(10):
        async with running_hotline(config=config) as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            codes = []
            for _ in range(3):
                codes.append((await alice.invite("sip:2000@127.0.0.1").tx).status_code)
    assert codes == [200, 200, 503]


@trio_test
async def test_a_saturated_event_loop_turns_new_calls_away_with_503_then_recovers():
    import time

    config = CallManagerConfig(max_loop_lag=0.25, max_queue_delay=None, retry_after=3)
    with trio.fail_after(15):
        async with running_hotline(config=config, load_guards=True) as hl, \
                phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            time.sleep(1.0)  # the whole process stalls, as it does when the CPU is saturated
            await trio.sleep(0.06)  # the lag monitor notices
            refused = await alice.invite("sip:2000@127.0.0.1").tx
            assert refused.status_code == 503 and refused.headers.get("Retry-After") == "3"
            await trio.sleep(0.5)  # the lag decays once the loop keeps time again
            accepted = alice.invite("sip:2000@127.0.0.1")
            assert (await accepted.tx).status_code == 200
            await accepted.bye()
    assert hl.manager.statistics().rejected_loop_lag == 1


@trio_test
async def test_an_invite_that_waited_too_long_in_the_socket_is_turned_away_with_503():
    import time

    config = CallManagerConfig(max_loop_lag=None, max_queue_delay=0.2, retry_after=4)
    endpoint_config = EndpointConfig(rate_limit=None, shed_queue_delay=None)  # the B2BUA's own guard
    with trio.fail_after(15):
        async with running_hotline(config=config, load_guards=True, endpoint_config=endpoint_config) as hl, \
                phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            late = alice.invite("sip:2000@127.0.0.1")  # sent now...
            time.sleep(0.5)  # ...read half a second later: the backlog of an overloaded server
            refused = await late.tx
            assert refused.status_code == 503 and refused.headers.get("Retry-After") == "4"
            await trio.sleep(0.3)  # the backlog is gone: the next request waits no time
            accepted = alice.invite("sip:2000@127.0.0.1")
            assert (await accepted.tx).status_code == 200
            await accepted.bye()
    udp = hl.endpoint.statistics().transports[0]
    assert udp.max_queue_delay >= 0.45 and udp.queue_delay < 0.2


@trio_test
async def test_calls_complete_during_a_flood_of_junk_from_one_source():
    """A flood of garbage, OPTIONS and INVITEs from one address is rate limited
    (dropped before parsing, counted) while a legitimate caller's calls all complete."""
    endpoint_config = EndpointConfig(rate_limit=RateLimit(rate=50, burst=50),
                                     timers=TimerConfig(t1=0.1, t2=0.4))
    with trio.fail_after(30):
        async with running_hotline(endpoint_config=endpoint_config) as hl, \
                phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            target = (hl.address.host, hl.address.port)
            stop = threading.Event()
            sent = [0]

            def flood():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.2", 0))
                port = s.getsockname()[1]
                n = 0
                while not stop.is_set() or n < 3000:  # flood for as long as the calls take, 3000 at least
                    n += 1
                    junk = [b"\x00\xffgarbage" * 20,
                            (f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:{port};"
                             f"branch=z9hG4bKf{n}\r\nFrom: <sip:s@x>;tag={n}\r\nTo: <sip:x@y>\r\n"
                             f"Call-ID: f{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(),
                            (f"INVITE sip:{n}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:{port};"
                             f"branch=z9hG4bKi{n}\r\nFrom: <sip:s@x>;tag={n}\r\nTo: <sip:x@y>\r\n"
                             f"Call-ID: i{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:s@127.0.0.2>\r\n"
                             f"Content-Length: 0\r\n\r\n").encode()][n % 3]
                    s.sendto(junk, target)
                    sent[0] += 1
                    if n % 200 == 0:
                        stop.wait(0.01)
                s.close()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, flood)
                codes = []
                for _ in range(10):
                    call = alice.invite("sip:2000@127.0.0.1")
                    codes.append((await call.tx).status_code)
                    if codes[-1] == 200:
                        await call.bye()
                stop.set()
            stats = hl.endpoint.statistics()
    assert codes == [200] * 10
    assert sent[0] >= 3000 and stats.rate_limited > sent[0] // 2
    assert stats.limiter.sources == 2  # the flooder and alice, each with its own bucket


# ---------------------------------------------------------------------------- authentication
@trio_test
async def test_unauthenticated_invites_get_the_same_answer_for_known_and_unknown_users():
    auth = StaticAuthenticator(realm="hotline", secret=b"0123456789abcdef0123", users={"alice": "s3cret"})
    with trio.fail_after(10):
        async with running_hotline(authenticator=auth) as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            known = await alice.invite("sip:2000@127.0.0.1").tx
            unknown = await alice.invite("sip:7777@127.0.0.1").tx
            shape = [(r.status_code, r.reason, sorted(n for n, _ in r.headers)) for r in (known, unknown)]
            assert shape[0] == shape[1] and known.status_code == 407
            assert bob.calls == []
            challenge = parse_challenges(known.proxy_authenticate)[0]
            credentials = authorization_for(challenge, method="INVITE", uri="sip:2000@127.0.0.1",
                                            username="alice", password="s3cret", cnonce="abcdef12")
            ok = alice.invite("sip:2000@127.0.0.1", headers=[("Proxy-Authorization", str(credentials))])
            assert (await ok.tx).status_code == 200
            await ok.bye()
    names = [e.name for e in hl.events]
    assert names.count("call.incoming") == 1  # challenged INVITEs never became calls


# ---------------------------------------------------------------------------- trunks
@trio_test
async def test_outbound_trunk_call_answers_a_407_with_the_trunk_credentials():
    digest = DigestServer(realm="carrier", secret=b"carrier-secret-0123456789")
    ha1 = compute_ha1("hotline", "carrier", "trunkpw", "SHA-256")
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "alice") as (alice,), \
                phones(hl, "carrier", answer=None) as (carrier,):
            trunk = Trunk(name="pstn", uri=f"sip:{carrier.address.host}:{carrier.address.port}",
                          username="hotline", password="trunkpw", caller_id="+15550100")
            hl.manager._trunks[trunk.name] = trunk
            hl.manager.router = DialPlan(dids={"5551234": ToTrunk("pstn", "+15551234")})
            call = alice.invite("sip:5551234@127.0.0.1")
            first = await carrier.next_call()
            first.incoming.respond(407, to_tag=first.local_tag, headers=[
                ("Proxy-Authenticate", str(c)) for c in digest.challenges(trio.current_time())])
            second = await carrier.next_call()
            verdict = digest.verify(second.invite, lambda u, r, a: ha1 if a.upper() == "SHA-256" else None,
                                    trio.current_time(), header="Proxy-Authorization")
            assert verdict.ok and verdict.username == "hotline"
            assert second.invite.uri.user == "+15551234" and second.invite.from_.uri.user == "+15550100"
            assert second.invite.cseq.seq == first.invite.cseq.seq + 1
            carrier.respond_invite(second, 200)
            assert (await call.tx).status_code == 200
            await call.bye()
            await second.ended.wait()


# ---------------------------------------------------------------------------- failure timers
@trio_test
async def test_no_ack_for_our_200_ends_the_call_with_bye():
    endpoint_config = EndpointConfig(rate_limit=None, timers=TimerConfig(t1=0.02, t2=0.08))
    with trio.fail_after(15):
        async with running_hotline(endpoint_config=endpoint_config) as hl, \
                phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            alice.send_ack = False
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            await bob.calls[0].ended.wait()  # Timer L fired: bob is hung up
            ended = await hl.wait_event("call.ended")
    assert ended.record.cause == "no_ack"
    assert hl.manager.statistics().no_ack_timeouts == 1


@trio_test
async def test_media_timeout_ends_a_silent_call():
    config = CallManagerConfig(media_timeout=0.5)
    with trio.fail_after(15):
        async with running_hotline(config=config) as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            await call.ended.wait()  # nobody sent RTP: the engine reported it and we hung up
            ended = await hl.wait_event("call.ended")
    assert ended.record.cause == "media_timeout" and ended.record.ended_by == "system"
