"""Simulated agents and callers for ``hotline demo``: real SIP user agents on loopback.

Each simulated party is a SIP user agent on its own UDP socket (our own
SipEndpoint, so every message is real SIP on the wire: REGISTER with digest
authentication, INVITE/100/180/200/ACK, BYE, RFC 4733 digits in RTP) with its
media in a mediacore :class:`~mediacore.engine.Engine` of its own (a separate
engine from the daemon's, so the daemon relays, records and mixes real RTP
coming from another engine; no Python runs per packet on either side).

* :class:`SimAgent` registers ``USER@domain`` with its password, re-registers
  before the binding expires, and answers what the ACD offers it: it rings a
  moment, answers with PCMU + telephone-event, talks (a looping spoken
  prompt) for a random handle time, and hangs up.
* :class:`SimCaller` dials a number (``1000`` the IVR, ``2000``/``2001`` the
  queues), plays speech while connected, walks the IVR with RFC 4733 digits
  (language ``1``, then the menu choice, repeated if the menu asks again),
  and hangs up when the agent does or when its patience runs out before an
  agent answered (an abandoned call).

Times are drawn from a seeded :class:`random.Random`, so a demo run is
repeatable in its choices (not in the machine's timing).
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from orchestrator.sip import (
    Address,
    Dialog,
    Headers,
    MediaPolicy,
    Request,
    Response,
    SessionDescription,
    create_answer,
    create_offer,
)
from orchestrator.sip.digest import authorization_for, parse_challenges
from orchestrator.transport import EndpointConfig, IncomingRequest, SipEndpoint, UdpTransport

__all__ = ["CallerPlan", "SimAgent", "SimCaller", "SimStats", "SimSupervisor"]

log = logging.getLogger("hotline.demo")

POLICY = MediaPolicy(codecs=("PCMU",), telephone_event=True)
TELEPHONE_EVENT_PT = 101


@dataclass
class SimStats:
    """What the simulated parties did (the demo's own view; the report comes from the event log)."""

    registered: int = 0
    register_failures: int = 0
    calls_placed: int = 0
    calls_failed: int = 0          # the INVITE got a final error response (no call)
    agent_answers: int = 0
    caller_hangups: int = 0        # patience ran out before an agent answered
    digits_sent: int = 0


class _Ua:
    """What agents and callers share: the endpoint, the media engine, one dialog at a time."""

    def __init__(self, user: str, *, engine: Any, hotline: Address, domain: str, stats: SimStats,
                 speech: Path | None) -> None:
        self.user, self.engine, self.hotline, self.domain = user, engine, hotline, domain
        self.stats, self.speech = stats, speech
        self.endpoint = SipEndpoint([UdpTransport("127.0.0.1", 0)], config=EndpointConfig(
            rate_limit=None, user_agent=f"hotline-demo-{user}", shed_queue_delay=None))
        self.endpoint.handler = self._on_request
        self.dialog: Dialog | None = None
        self.invite: Request | None = None
        self.leg: Any = None
        self.ended = trio.Event()
        self._version = 1

    @property
    def contact(self) -> Any:
        return self.endpoint.contact("UDP", user=self.user)

    # -- media -------------------------------------------------------------------------------
    def _new_leg(self) -> Any:
        self.leg = self.engine.create_leg(codec="PCMU", payload_type=0, telephone_event=TELEPHONE_EVENT_PT,
                                         media_timeout=0)
        return self.leg

    def _start_media(self, remote: SessionDescription) -> None:
        m = remote.media[0]
        conn = remote.connection_for(m)
        if self.leg is None or conn is None or m.port == 0:
            return
        self.engine.update_leg(self.leg.id, remote=(conn.host, m.port))
        if self.speech is not None:
            self.engine.play(self.leg.id, file=str(self.speech), loops=0)
        else:
            self.engine.play(self.leg.id, tone="dial", duration=3600.0)

    def _drop_media(self) -> None:
        if self.leg is not None:
            try:
                self.engine.destroy_leg(self.leg.id)
            except KeyError:
                pass
            self.leg = None

    # -- dialog --------------------------------------------------------------------------------
    def _next_hop(self) -> Address:
        return self.hotline

    def _bump(self) -> int:
        self._version += 1
        return self._version

    async def bye(self) -> None:
        if self.dialog is None or self.ended.is_set():
            return
        request, _ = self.dialog.create_request("BYE", via=self.endpoint.via("UDP"), contact=self.contact)
        self.ended.set()
        self._drop_media()
        with trio.move_on_after(5):
            await self.endpoint.send_request(request, self._next_hop())

    def _on_request(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        method = request.method
        if method == "INVITE" and not request.to.tag:
            self._on_new_invite(incoming)
            return
        ours = self.dialog is not None and request.call_id == self.dialog.id.call_id
        if method == "ACK":
            return
        if not ours:
            if incoming.transaction is not None:
                incoming.respond(481)
            return
        assert self.dialog is not None
        self.dialog.receive_request(request)
        if method == "BYE":
            incoming.respond(200)
            self.ended.set()
            self._drop_media()
        elif method == "INVITE":  # a re-INVITE (hold, transfer): answer with our port
            if not request.body or self.leg is None:
                incoming.respond(488)
                return
            offer = SessionDescription.parse(request.body)
            answer, _ = create_answer(offer, address="127.0.0.1", port=self.leg.rtp_port, policy=POLICY,
                                      session_id=8, session_version=self._bump())
            incoming.respond(200, headers=[("Contact", str(self.contact))], body=answer.serialize(),
                             content_type="application/sdp")
            self._start_media(offer)
        else:
            incoming.respond(200)

    def _on_new_invite(self, incoming: IncomingRequest) -> None:
        incoming.respond(486)  # overridden by agents

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.endpoint.run)
            task_status.started()
            await trio.sleep_forever()


class SimAgent(_Ua):
    """An agent's softphone: registers, answers, talks, hangs up (see the module docstring)."""

    def __init__(self, user: str, password: str, *, rng: random.Random, mean_talk: float,
                 ring: tuple[float, float] = (1.0, 3.0), **kw: Any) -> None:
        super().__init__(user, **kw)
        self.password, self.rng, self.mean_talk, self.ring = password, rng, mean_talk, ring
        self.busy = False
        self.answered = 0
        self._nursery: trio.Nursery | None = None

    async def register(self, expires: int = 300) -> int:
        """REGISTER (answering the 401 with digest); returns the granted expiry (0: refused)."""
        ep = self.endpoint
        uri = f"sip:{self.domain}"
        call_id = ep.new_call_id()
        tag = ep.new_tag()
        credentials = None
        for cseq in (1, 2):
            h = Headers()
            h.add("From", f"<sip:{self.user}@{self.domain}>;tag={tag}")
            h.add("To", f"<sip:{self.user}@{self.domain}>")
            h.add("Call-ID", call_id)
            h.add("CSeq", f"{cseq} REGISTER")
            h.add("Contact", f"{self.contact};expires={expires}")
            if credentials is not None:
                h.add("Authorization", str(credentials))
            response: Response = await ep.send_request(Request("REGISTER", uri, h, b""), self.hotline)
            if response.status_code == 401 and credentials is None:
                usable = parse_challenges(response.www_authenticate)
                if not usable:
                    break
                challenge = usable[0]
                credentials = authorization_for(challenge, method="REGISTER", uri=uri, username=self.user,
                                                cnonce=secrets.token_hex(8), password=self.password)
                continue
            if 200 <= response.status_code < 300:
                self.stats.registered += 1
                return expires
            break
        self.stats.register_failures += 1
        log.warning("demo agent %s: REGISTER refused", self.user)
        return 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.endpoint.run)
            granted = await self.register()
            task_status.started()
            while True:
                await trio.sleep(max(10.0, granted * 0.8) if granted else 5.0)
                granted = await self.register()

    def _on_new_invite(self, incoming: IncomingRequest) -> None:
        if self.busy or self._nursery is None or not incoming.request.body:
            incoming.respond(486)
            return
        self.busy = True
        self._nursery.start_soon(self._take_call, incoming)

    async def _take_call(self, incoming: IncomingRequest) -> None:
        try:
            request = incoming.request
            self.invite, self.ended = request, trio.Event()
            tag = self.endpoint.new_tag()
            contact = [("Contact", str(self.contact))]
            incoming.respond(180, to_tag=tag, headers=contact)
            with trio.move_on_after(self.rng.uniform(*self.ring)):
                await self.ended.wait()  # a CANCEL (the ACD gave up on us) ends it here
            if self.ended.is_set():
                return
            offer = SessionDescription.parse(request.body)
            leg = self._new_leg()
            answer, _ = create_answer(offer, address="127.0.0.1", port=leg.rtp_port, policy=POLICY,
                                      session_id=8, session_version=self._bump())
            response = incoming.respond(200, to_tag=tag, headers=contact, body=answer.serialize(),
                                        content_type="application/sdp")
            if response is None:  # cancelled meanwhile
                self._drop_media()
                return
            self.dialog = Dialog.from_uas(request, response)
            self.answered += 1
            self.stats.agent_answers += 1
            self._start_media(offer)
            talk = self.rng.expovariate(1.0 / self.mean_talk)
            with trio.move_on_after(min(max(talk, 3.0), 6 * self.mean_talk)):
                await self.ended.wait()
            await self.bye()
        finally:
            self._drop_media()
            self.dialog = None
            self.busy = False

    def _on_request(self, incoming: IncomingRequest) -> None:
        if incoming.request.method == "CANCEL":
            self.ended.set()
            return
        super()._on_request(incoming)


class SimSupervisor(SimAgent):
    """A supervisor's phone: answers every call at once (each supervisor.listen/whisper/barge is
    one) and stays on it, silent, until Hotline hangs up; several at a time."""

    def __init__(self, user: str, password: str, **kw: Any) -> None:
        super().__init__(user, password, rng=random.Random(0), mean_talk=0.0, **kw)
        self.sessions: dict[str, tuple[Dialog, Any]] = {}  # Call-ID -> (dialog, leg)
        self.answered_total = 0

    def _on_new_invite(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        if not request.body:
            incoming.respond(488)
            return
        offer = SessionDescription.parse(request.body)
        leg = self.engine.create_leg(codec="PCMU", payload_type=0, telephone_event=TELEPHONE_EVENT_PT,
                                     media_timeout=0)
        answer, _ = create_answer(offer, address="127.0.0.1", port=leg.rtp_port, policy=POLICY,
                                  session_id=9, session_version=self._bump())
        response = incoming.respond(200, to_tag=self.endpoint.new_tag(), headers=[("Contact", str(self.contact))],
                                    body=answer.serialize(), content_type="application/sdp")
        if response is None:
            self.engine.destroy_leg(leg.id)
            return
        m = offer.media[0]
        conn = offer.connection_for(m)
        if conn is not None and m.port:
            self.engine.update_leg(leg.id, remote=(conn.host, m.port))
        self.sessions[request.call_id] = (Dialog.from_uas(request, response), leg)
        self.answered_total += 1

    def _on_request(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        if request.method == "INVITE" and not request.to.tag:
            self._on_new_invite(incoming)
            return
        session = self.sessions.get(request.call_id)
        if request.method == "ACK":
            return
        if session is None:
            if incoming.transaction is not None:
                incoming.respond(481)
            return
        if request.method == "INVITE":  # a re-INVITE: this simple phone keeps its media as it is
            incoming.respond(488)
            return
        incoming.respond(200)
        if request.method == "BYE":
            _, leg = self.sessions.pop(request.call_id)
            try:
                self.engine.destroy_leg(leg.id)
            except KeyError:
                pass


@dataclass(frozen=True)
class CallerPlan:
    """One caller: the number dialled, the menu choice (for the IVR), patience and caller id."""

    number: str
    caller_id: str
    menu_digit: str | None
    patience: float


class SimCaller(_Ua):
    """Placed through :meth:`call` (see the module docstring)."""

    def __init__(self, plan: CallerPlan, *, with_agent: Callable[[str], bool], **kw: Any) -> None:
        super().__init__(plan.caller_id, **kw)
        self.plan = plan
        self.with_agent = with_agent  # caller id -> has an agent answered this call yet?
        self.outcome = "unknown"

    async def call(self) -> str:
        """Place the call and live it; returns how it ended for this caller."""
        ep, plan = self.endpoint, self.plan
        leg = self._new_leg()
        offer = create_offer(address="127.0.0.1", port=leg.rtp_port, policy=POLICY, session_id=7,
                             session_version=1)
        tag = ep.new_tag()
        uri = f"sip:{plan.number}@{self.domain}"
        h = Headers()
        h.add("From", f'"Caller {plan.caller_id}" <sip:{plan.caller_id}@{self.domain}>;tag={tag}')
        h.add("To", f"<{uri}>")
        h.add("Call-ID", ep.new_call_id())
        h.add("CSeq", "1 INVITE")
        h.add("Contact", str(self.contact))
        h.add("Content-Type", "application/sdp")
        invite = Request("INVITE", uri, h, offer.serialize())
        self.invite = invite
        self.stats.calls_placed += 1
        final: list[Response] = []
        got_final = trio.Event()

        def on_response(response: Response) -> None:
            if response.status_code >= 200:
                if not final:
                    final.append(response)
                    got_final.set()
                elif 200 <= response.status_code < 300 and self.dialog is not None:
                    self._ack(invite)  # a retransmitted 2xx: ACK again

        ep.send_request(invite, self.hotline, on_response=on_response)
        with trio.move_on_after(60):
            await got_final.wait()
        if not final or not 200 <= final[0].status_code < 300:
            self.stats.calls_failed += 1
            self._drop_media()
            self.outcome = f"failed {final[0].status_code}" if final else "no answer"
            return self.outcome
        response = final[0]
        self.dialog = Dialog.from_uac(invite, response)
        self._ack(invite)
        self._start_media(SessionDescription.parse(response.body))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._walk_ivr)
            with trio.move_on_after(plan.patience) as patience:
                while not self.with_agent(plan.caller_id):
                    if self.ended.is_set():
                        break
                    await trio.sleep(0.2)
            if patience.cancelled_caught and not self.ended.is_set():
                self.stats.caller_hangups += 1
                self.outcome = "hung up waiting"
                nursery.cancel_scope.cancel()
                await self.bye()
                return self.outcome
            nursery.cancel_scope.cancel()
        with trio.move_on_after(3600):
            await self.ended.wait()  # the agent (or the IVR) hangs up
        self.outcome = "talked" if self.with_agent(plan.caller_id) else "ended by Hotline"
        self._drop_media()
        return self.outcome

    def _ack(self, invite: Request) -> None:
        assert self.dialog is not None
        ack, _ = self.dialog.create_ack(invite, via=self.endpoint.via("UDP"))
        self.endpoint.send_stateless(ack, self.hotline)

    async def _walk_ivr(self) -> None:
        """Language 1 while the welcome plays, then the menu choice; again if the menu repeats."""
        if self.plan.menu_digit is None:
            return
        schedule = [(2.5, "1"), (5.0, self.plan.menu_digit), (9.0, self.plan.menu_digit),
                    (9.0, self.plan.menu_digit)]
        for delay, digit in schedule:
            await trio.sleep(delay)
            if self.ended.is_set() or self.leg is None or self.with_agent(self.plan.caller_id):
                return
            self.engine.send_dtmf(self.leg.id, digit)
            self.stats.digits_sent += 1


def exponential(rng: random.Random, mean: float) -> float:
    """A draw from an exponential distribution with this mean (0 for a mean of 0)."""
    return rng.expovariate(1.0 / mean) if mean > 0 else 0.0


def poisson_gaps(rng: random.Random, per_minute: float):
    """Inter-arrival times (seconds) of a Poisson process of ``per_minute`` arrivals; none for 0."""
    if per_minute <= 0:
        return
    while True:
        yield rng.expovariate(per_minute / 60.0)


def caller_plans(rng: random.Random, *, mean_patience: float) -> Any:
    """Callers: 60 % through the IVR (to sales or support), 40 % straight to a queue number."""
    n = 0
    while True:
        n += 1
        caller_id = f"0700900{n:04d}"
        patience = max(8.0, exponential(rng, mean_patience))
        if rng.random() < 0.6:
            yield CallerPlan("1000", caller_id, rng.choice("12"), patience + 12.0)  # + the IVR's own time
        else:
            yield CallerPlan(rng.choice(("2000", "2001")), caller_id, None, patience)

