"""The two B2BUA hooks the call centre needs from :class:`orchestrator.calls.Call`.

* ``connect(..., accept=...)``: the ACD decides, at the moment an agent's
  device answers, whether that answer still wins the call (a ring-all race,
  an offer that already timed out); a refused branch is ACKed and BYEd and
  never bridged.
* ``keep_caller``: when the agent hangs up, only the agent leg goes; the
  caller stays for the post-call survey (``wait_callee_gone``).

Real engine, real SIP on loopback, scripted phones (the B2BUA's own harness).
"""

from __future__ import annotations

import subprocess

import pytest
import trio

from orchestrator.calls import Contact, DialPlan, ToQueue
from orchestrator.sip import parse_uri
from tests.orchestrator.calls.b2bua_harness import phones, running_hotline, send_rtp, trio_test, wait_packets
from tests.rtppeer import band_energy


def register(hl, user, phone):
    hl.locator.add(Contact(aor=f"sip:{user}@hotline", uri=parse_uri(phone.uri)))


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("hooks") / "tone700.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "1", "sine", "700",
                    "vol", "0.5"], check=True, capture_output=True)
    return str(path)


class RingAll:
    """Ring two agents at once; the first answer the 'policy' sees wins, the other is refused."""

    def __init__(self) -> None:
        self.decisions: list[tuple[str, bool]] = []
        self.results: dict[str, object] = {}
        self.winner: str | None = None

    def accept_for(self, agent: str):
        def accept(peer: str) -> bool:
            ok = self.winner is None
            if ok:
                self.winner = agent
            self.decisions.append((agent, ok))
            return ok
        return accept

    async def handle(self, call, target):
        assert await call.answer()

        async def ring(agent):
            self.results[agent] = await call.connect(agent, ring_timeout=5, accept=self.accept_for(agent))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ring, "9001")
            nursery.start_soon(ring, "9002")
        await call.wait_ended()


@trio_test
async def test_two_agents_answer_at_once_and_only_the_accepted_one_is_bridged():
    handler = RingAll()
    plan = DialPlan(dids={"2000": ToQueue("q")})
    with trio.fail_after(20):
        async with running_hotline(router=plan, handlers={"queue": handler}) as hl, \
                phones(hl, "caller", "a1", "a2") as (caller, a1, a2):
            register(hl, "9001", a1)
            register(hl, "9002", a2)
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            c1, c2 = await a1.next_call(), await a2.next_call()
            await c1.answered.wait()
            await c2.answered.wait()
            while len(handler.results) < 2:
                await trio.sleep(0.01)
            winner, loser = ("9001", "9002") if handler.winner == "9001" else ("9002", "9001")
            wcall, lcall = (c1, c2) if winner == "9001" else (c2, c1)
            wphone = a1 if winner == "9001" else a2
            await lcall.ended.wait()  # the refused agent got ACK then BYE
            assert any(r.method == "BYE" for r in lcall.requests)
            assert not wcall.ended.is_set()
            # the winner is bridged to the caller: its audio reaches the caller
            await send_rtp(wphone.rtp, wcall.media_target, 8, payload=b"\x55" * 160)
            got = await wait_packets(caller.rtp, 8)
            assert any(p.payload == b"\x55" * 160 for p in got)
            await call.bye()
            await wcall.ended.wait()
    assert handler.results[winner].answered and handler.results[winner].cause == "answered"
    assert not handler.results[loser].answered and handler.results[loser].cause == "refused"
    assert sorted(handler.decisions) == sorted([(winner, True), (loser, False)])


class Refuser:
    def __init__(self) -> None:
        self.result = None

    async def handle(self, call, target):
        assert await call.answer()
        self.result = await call.connect("9001", ring_timeout=5, accept=lambda peer: False)
        await call.wait_ended()


@trio_test
async def test_a_refused_answer_is_hung_up_and_the_caller_stays():
    handler = Refuser()
    plan = DialPlan(dids={"2000": ToQueue("q")})
    with trio.fail_after(15):
        async with running_hotline(router=plan, handlers={"queue": handler}) as hl, \
                phones(hl, "caller", "agent") as (caller, agent):
            register(hl, "9001", agent)
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            acall = await agent.next_call()
            await acall.ended.wait()
            while handler.result is None:
                await trio.sleep(0.01)
            assert not call.ended.is_set()
            assert hl.manager.calls()[0].b is None
            await call.bye()
    assert handler.result.answered is False and handler.result.cause == "refused"
    assert [r.method for r in acall.requests if r.method in ("ACK", "BYE")] == ["ACK", "BYE"]


class Survey:
    """Connect to the agent keeping the caller; when the agent leaves, play a tone to the caller."""

    def __init__(self, wav: str) -> None:
        self.wav = wav
        self.after: str | None = None

    async def handle(self, call, target):
        assert await call.answer()
        call.keep_caller = True
        result = await call.connect("9001", ring_timeout=5)
        assert result.answered
        await call.wait_callee_gone()
        assert call.b is None and not call.ended
        self.after = await call.play(file=self.wav).wait()


@trio_test
async def test_keep_caller_releases_only_the_agent_and_the_caller_hears_what_follows(tone_wav):
    handler = Survey(tone_wav)
    plan = DialPlan(dids={"2000": ToQueue("q")})
    with trio.fail_after(20):
        async with running_hotline(router=plan, handlers={"queue": handler}) as hl, \
                phones(hl, "caller", "agent") as (caller, agent):
            register(hl, "9001", agent)
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            acall = await agent.next_call()
            await acall.answered.wait()
            while hl.manager.calls()[0].b is None:
                await trio.sleep(0.01)
            await acall.bye()
            await call.ended.wait()  # the handler's prompt ends, it returns, the call is hung up
            ended = await hl.wait_event("call.ended")
    assert handler.after == "completed"
    assert band_energy(caller.rtp.audio()[-16000:], 700) > 0.5  # the caller heard the tone after the agent left
    assert ended.record.cause == "handler_done" and ended.record.ended_by == "system"


@trio_test
async def test_without_keep_caller_the_agent_hanging_up_ends_the_call():
    class Plain:
        async def handle(self, call, target):
            assert await call.answer()
            assert (await call.connect("9001", ring_timeout=5)).answered
            await call.wait_callee_gone()  # returns when the call ends too
            assert call.ended

    plan = DialPlan(dids={"2000": ToQueue("q")})
    with trio.fail_after(15):
        async with running_hotline(router=plan, handlers={"queue": Plain()}) as hl, \
                phones(hl, "caller", "agent") as (caller, agent):
            register(hl, "9001", agent)
            call = caller.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            acall = await agent.next_call()
            await acall.answered.wait()
            while hl.manager.calls()[0].b is None:  # our side has taken the 200 (a BYE before it is a 481)
                await trio.sleep(0.01)
            await acall.bye()
            await call.ended.wait()
            ended = await hl.wait_event("call.ended")
    assert ended.record.ended_by == "callee"


@trio_test
async def test_originate_asks_accept_when_the_first_party_answers():
    """A callback rings the agent first; the ACD may refuse that answer (the offer timed out)."""
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "agent", "customer") as (agent, customer):
            register(hl, "9001", agent)
            seen = []
            refused = await hl.manager.originate("9001", customer.uri,
                                                 accept=lambda peer: seen.append(peer) or False)
            await refused.wait_ended()
            acall = agent.calls[0]
            await acall.ended.wait()
            assert refused.cause == "refused" and customer.calls == []
            assert [r.method for r in acall.requests if r.method in ("ACK", "BYE")] == ["ACK", "BYE"]
            assert len(seen) == 1 and "agent" in seen[0]  # the peer: the agent phone's contact
            accepted = await hl.manager.originate("9001", customer.uri, accept=lambda peer: True)
            await accepted.wait_connected()
            await customer.calls[0].bye()
            await accepted.wait_ended()
    assert accepted.cause == "normal_clearing"
