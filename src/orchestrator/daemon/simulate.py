"""Simulated agents and callers for ``hotline demo``: real SIP user agents on loopback.

Each simulated party is a SIP user agent on its own UDP socket (our own
SipEndpoint, so every message is real SIP on the wire: REGISTER with digest
authentication, INVITE/100/180/200/ACK, CANCEL/487, BYE, RFC 4733 digits in
RTP) with its media in a mediacore :class:`~mediacore.engine.Engine` of its
own (a separate engine from the daemon's, so the daemon relays, records and
mixes real RTP coming from another engine; no Python runs per packet on
either side).

* :class:`SimAgent` registers ``USER@domain`` with its password, re-registers
  before the binding expires, and answers what the ACD offers it: it rings a
  moment, answers with PCMU + telephone-event, talks (its half of a spoken
  conversation, :func:`conversation_audio`) for a random handle time, and
  hangs up. Wrap-up is the ACD's business: it offers the agent nothing until
  the queue's wrap-up time has passed.
* :class:`SimCaller` dials a number (``1000`` the IVR, ``2000``/``2001`` the
  queues), is silent while the IVR talks and answers each prompt with RFC 4733
  digits after a human pause (language, the main menu's choice, an account
  number and ``#`` for billing, "keep holding" to a callback offer), and
  hangs up when the agent does, or when its patience runs out while it waits
  in a queue (an abandoned call).

What a caller would *hear* (a prompt starting, hold music, an agent's voice)
it learns from the daemon's own events through a :class:`CallWatch` on the
event tap, not from the audio: the wire is real, the ears are simulated.
Times are drawn from a seeded :class:`random.Random`, so a demo run is
repeatable in its choices (not in the machine's timing).
"""

from __future__ import annotations

import logging
import random
import secrets
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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

__all__ = ["CallWatch", "CallerPlan", "Heard", "SimAgent", "SimCaller", "SimStats", "SimSupervisor",
           "caller_plans", "conversation_audio", "poisson_gaps"]

log = logging.getLogger("hotline.demo")

POLICY = MediaPolicy(codecs=("PCMU",), telephone_event=True)
TELEPHONE_EVENT_PT = 101
IVR_GIVE_UP = 120.0  # a caller neither queued nor answered after this long in the IVR hangs up


@dataclass
class SimStats:
    """What the simulated parties did (the demo's own view; the report comes from the event log)."""

    registered: int = 0
    register_failures: int = 0
    calls_placed: int = 0
    calls_failed: int = 0          # the INVITE got a final error response (no call)
    agent_answers: int = 0
    caller_hangups: int = 0        # patience ran out in a queue before an agent answered
    ivr_giveups: int = 0           # neither queued nor answered after IVR_GIVE_UP seconds
    digits_sent: int = 0
    caller_errors: int = 0         # a simulated caller failed (logged): a bug in the simulation


# -- the callers' ears ------------------------------------------------------------------------------

@dataclass
class Heard:
    """What one caller has perceived of its call so far (filled by :class:`CallWatch`)."""

    caller_id: str
    on_change: Callable[[], None]
    call: str | None = None
    nodes: list[tuple[str, str, str]] = field(default_factory=list)  # (flow, node, node type) entered
    queued: bool = False
    agent: str | None = None
    ended: bool = False


class CallWatch:
    """A listener on the daemon's event tap that tells each simulated caller what it would hear.

    A caller registers its caller id with :meth:`expect` before it dials; the
    daemon's ``call.incoming`` ties that caller id to the daemon's call id, and
    from then on the call's IVR prompts (``call.ivr`` node_entered), queueing
    (hold music) and answer by an agent reach its :class:`Heard`.
    """

    def __init__(self) -> None:
        self._expected: dict[str, Heard] = {}
        self._calls: dict[str, Heard] = {}

    def expect(self, caller_id: str, on_change: Callable[[], None]) -> Heard:
        heard = self._expected[caller_id] = Heard(caller_id, on_change)
        return heard

    def forget(self, heard: Heard) -> None:
        self._expected.pop(heard.caller_id, None)
        if heard.call is not None:
            self._calls.pop(heard.call, None)

    def __call__(self, event: dict) -> None:
        call = event.get("call")
        if not isinstance(call, str):
            return
        kind = event.get("type")
        if kind == "call.incoming":
            heard = self._expected.pop(user_of(event.get("caller")), None)
            if heard is None:
                return
            heard.call = call
            self._calls[call] = heard
        heard = self._calls.get(call)
        if heard is None:
            return
        if kind == "call.ivr" and event.get("event") == "node_entered":
            heard.nodes.append((str(event.get("flow")), str(event.get("node")), str(event.get("node_type"))))
        elif kind == "call.queued":
            heard.queued = True
        elif kind == "call.answered" and event.get("agent"):
            heard.agent = str(event["agent"])
        elif kind == "call.ended" and "cause" in event:  # the B2BUA's end of the call
            heard.ended = True
            self._calls.pop(call, None)
        else:
            return
        heard.on_change()


def user_of(uri: Any) -> str:
    """``"Name" <sip:07009000001@host>`` -> ``07009000001``."""
    if not isinstance(uri, str):
        return ""
    return uri.split("sip:", 1)[-1].split("@", 1)[0].strip("<>\" ")


# -- what the parties say ---------------------------------------------------------------------------

AGENT_LINES = ("Hotline, good morning, how can I help you?", "Let me look that up for you.",
               "Right, that is sorted now. Anything else?")
CALLER_LINES = ("Hello, I have a question about my account.", "Thank you, I will wait.",
                "No, that is all. Thanks, goodbye.")


def _speak(text: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(raw), text], check=True,
                       capture_output=True, timeout=30)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out)],
                       check=True, capture_output=True, timeout=30)


def _read_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def conversation_audio(directory: Path) -> tuple[Path, Path] | None:
    """An agent's and a caller's halves of a short spoken conversation, as two 8 kHz WAVs.

    The lines alternate: where one speaks the other's file is silent, so a
    recording of the call holds turns, not overtalk. Synthesized once with
    espeak-ng and sox into ``directory`` (kept for the next run); None when
    those tools are missing.
    """
    agent, caller = directory / "agent.wav", directory / "caller.wav"
    if agent.is_file() and caller.is_file():
        return agent, caller
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    try:
        pcm = []
        for n, (a, c) in enumerate(zip(AGENT_LINES, CALLER_LINES)):
            for who, text in (("a", a), ("c", c)):
                part = directory / f".{who}{n}.wav"
                _speak(text, part)
                pcm.append((who, _read_pcm(part)))
                part.unlink()
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("demo: no conversation audio (%s); the parties play a prompt instead", exc)
        return None
    gap = bytes(2 * 8000 * 6 // 10)  # 0.6 s between turns
    halves = {"a": bytearray(), "c": bytearray()}
    for who, speech in pcm:
        for side, out in halves.items():
            out += (speech if side == who else bytes(len(speech))) + gap
    for path, key in ((agent, "a"), (caller, "c")):
        tmp = path.with_suffix(".tmp")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes(halves[key]))
        tmp.replace(path)
    return agent, caller


# -- user agents ------------------------------------------------------------------------------------

class _Ua:
    """What agents and callers share: the endpoint, the media engine, one dialog at a time.

    ``speech``: what this party plays while it talks (None: a tone).
    """

    def __init__(self, user: str, *, engine: Any, hotline: Address, domain: str, stats: SimStats,
                 speech: Path | None) -> None:
        self.user, self.engine, self.hotline, self.domain = user, engine, hotline, domain
        self.stats, self.speech = stats, speech
        self.endpoint = SipEndpoint([UdpTransport("127.0.0.1", 0)], config=EndpointConfig(
            rate_limit=None, user_agent=f"hotline-demo-{user}", shed_queue_delay=None))
        self.endpoint.handler = self._on_request
        self.dialog: Dialog | None = None
        self.invite: Request | None = None
        self.incoming: IncomingRequest | None = None  # the INVITE we are answering (UAS)
        self.local_tag: str | None = None
        self.leg: Any = None
        self.player: int | None = None
        self.ended = trio.Event()
        self._changed = trio.Event()
        self._version = 1

    @property
    def contact(self) -> Any:
        return self.endpoint.contact("UDP", user=self.user)

    # -- waiting on what happens -------------------------------------------------------------
    def poke(self) -> None:
        """Something changed (a request came in, the watch heard something): wake :meth:`until`."""
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    # -- media -------------------------------------------------------------------------------
    def _new_leg(self) -> Any:
        self.leg = self.engine.create_leg(codec="PCMU", payload_type=0, telephone_event=TELEPHONE_EVENT_PT,
                                         media_timeout=0)
        return self.leg

    def _start_media(self, remote: SessionDescription, *, talking: bool = True) -> None:
        m = remote.media[0]
        conn = remote.connection_for(m)
        if self.leg is None or conn is None or m.port == 0:
            return
        self.engine.update_leg(self.leg.id, remote=(conn.host, m.port))
        self.talk(talking)

    def talk(self, talking: bool = True) -> None:
        """Play this party's speech (looped), or silence: RTP flows either way."""
        if self.leg is None:
            return
        if self.player is not None:
            try:
                self.engine.stop_playback(self.player)
            except (KeyError, ValueError):
                pass
        if not talking:
            self.player = self.engine.play(self.leg.id, silence=3600.0)
        elif self.speech is not None:
            self.player = self.engine.play(self.leg.id, file=str(self.speech), loops=0)
        else:
            self.player = self.engine.play(self.leg.id, tone="dial", duration=3600.0)

    def _drop_media(self) -> None:
        if self.leg is not None:
            try:
                self.engine.destroy_leg(self.leg.id)
            except KeyError:
                pass
            self.leg = None
            self.player = None

    # -- dialog --------------------------------------------------------------------------------
    def _bump(self) -> int:
        self._version += 1
        return self._version

    async def bye(self) -> None:
        if self.dialog is None or self.ended.is_set():
            return
        request, _ = self.dialog.create_request("BYE", via=self.endpoint.via("UDP"), contact=self.contact)
        self._end()
        with trio.move_on_after(5):
            await self.endpoint.send_request(request, self.hotline)

    def _end(self) -> None:
        self.ended.set()
        self._drop_media()
        self.poke()

    def _on_request(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        method = request.method
        if method == "INVITE" and not request.to.tag:
            self._on_new_invite(incoming)
            return
        if method == "CANCEL":  # the endpoint answered the CANCEL itself; the INVITE gets its 487
            pending = self.incoming
            if pending is not None and pending.request.call_id == request.call_id and not pending.final_sent:
                pending.respond(487, to_tag=self.local_tag)
                self._end()
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
            self._end()
        elif method == "INVITE":  # a re-INVITE (hold, transfer): answer with our port
            if not request.body or self.leg is None:
                incoming.respond(488)
                return
            offer = SessionDescription.parse(request.body)
            answer, _ = create_answer(offer, address="127.0.0.1", port=self.leg.rtp_port, policy=POLICY,
                                      session_id=8, session_version=self._bump())
            incoming.respond(200, headers=[("Contact", str(self.contact))], body=answer.serialize(),
                             content_type="application/sdp")
            m = offer.media[0]
            conn = offer.connection_for(m)
            if conn is not None and m.port:
                self.engine.update_leg(self.leg.id, remote=(conn.host, m.port))
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
            self.invite, self.incoming, self.ended = request, incoming, trio.Event()
            self.local_tag = tag = self.endpoint.new_tag()
            contact = [("Contact", str(self.contact))]
            incoming.respond(180, to_tag=tag, headers=contact)
            with trio.move_on_after(self.rng.uniform(*self.ring)):
                await self.ended.wait()  # a CANCEL (the caller left, or the ACD gave up on us) ends it here
            if self.ended.is_set():
                return
            offer = SessionDescription.parse(request.body)
            leg = self._new_leg()
            answer, _ = create_answer(offer, address="127.0.0.1", port=leg.rtp_port, policy=POLICY,
                                      session_id=8, session_version=self._bump())
            response = incoming.respond(200, to_tag=tag, headers=contact, body=answer.serialize(),
                                        content_type="application/sdp")
            if response is None:  # cancelled meanwhile
                return
            self.dialog = Dialog.from_uas(request, response)
            self.answered += 1
            self.stats.agent_answers += 1
            self._start_media(offer)
            talk = self.rng.expovariate(1.0 / self.mean_talk) if self.mean_talk > 0 else 3.0
            with trio.move_on_after(min(max(talk, 3.0), 6 * self.mean_talk + 3.0)):
                await self.ended.wait()
            await self.bye()
        finally:
            self._drop_media()
            self.dialog = self.incoming = None
            self.busy = False


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
        if request.method in ("ACK", "CANCEL"):
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
    """One caller: the number dialled, its caller id, its patience in a queue (seconds), and for
    the IVR its keys: ``language`` (None: let the prompt time out to the default), ``menu`` (the
    main menu's choice), ``account`` (for billing); ``reaction``: seconds before it presses."""

    number: str
    caller_id: str
    patience: float
    language: str | None = None
    menu: str | None = None
    account: str | None = None
    reaction: float = 2.0

    def keys_for(self, node: str, node_type: str) -> str | None:
        """What this caller presses when the IVR enters ``node`` (None: nothing, listen on)."""
        if node_type == "language":
            return self.language
        if node_type == "menu" and node == "main_menu":
            return self.menu
        if node_type == "collect" and self.account:
            return self.account + "#"
        if node_type == "callback":
            return "2"  # "press 2 to keep holding"
        return None

    @property
    def path(self) -> str:
        if self.menu is None:
            return self.number
        return f"{self.number} {self.language or '-'} {self.menu}"


class SimCaller(_Ua):
    """Placed through :meth:`call` (see the module docstring)."""

    def __init__(self, plan: CallerPlan, *, watch: CallWatch, **kw: Any) -> None:
        super().__init__(plan.caller_id, **kw)
        self.plan = plan
        self.watch = watch
        self.outcome = "unknown"

    async def call(self) -> str:
        """Place the call and live it; returns how it ended for this caller."""
        heard = self.watch.expect(self.plan.caller_id, self.poke)
        try:
            self.outcome = await self._call(heard)
        finally:
            self.watch.forget(heard)
            self._drop_media()
        return self.outcome

    async def _call(self, heard: Heard) -> str:
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
            return f"failed {final[0].status_code}" if final else "no answer"
        response = final[0]
        self.dialog = Dialog.from_uac(invite, response)
        self._ack(invite)
        self._start_media(SessionDescription.parse(response.body), talking=False)  # listens to the IVR

        def connected() -> bool:
            return heard.agent is not None or self.ended.is_set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._walk_ivr, heard)
            with trio.move_on_after(IVR_GIVE_UP):
                await self.until(lambda: heard.queued or connected())
            if not (heard.queued or connected()):
                self.stats.ivr_giveups += 1
                nursery.cancel_scope.cancel()
                await self.bye()
                return "gave up in the IVR"
            # in a queue: hold music until an agent answers, or patience runs out
            with trio.move_on_after(plan.patience):
                await self.until(connected)
            nursery.cancel_scope.cancel()
        if not connected():
            self.stats.caller_hangups += 1
            await self.bye()
            return "hung up waiting"
        if heard.agent is not None and not self.ended.is_set():
            self.talk()
        with trio.move_on_after(3600):
            await self.ended.wait()  # the agent (or Hotline) hangs up
        return "talked" if heard.agent is not None else "ended by Hotline"

    def _ack(self, invite: Request) -> None:
        assert self.dialog is not None
        ack, _ = self.dialog.create_ack(invite, via=self.endpoint.via("UDP"))
        self.endpoint.send_stateless(ack, self.hotline)

    async def _walk_ivr(self, heard: Heard) -> None:
        """Answer each prompt the IVR plays with this caller's keys, after a human pause."""
        handled = 0
        while True:
            await self.until(lambda seen=handled: len(heard.nodes) > seen or heard.agent is not None
                             or self.ended.is_set())
            if heard.agent is not None or self.ended.is_set():
                return
            handled = len(heard.nodes)
            _flow, node, node_type = heard.nodes[-1]
            keys = self.plan.keys_for(node, node_type)
            if not keys:
                continue
            await trio.sleep(self.plan.reaction)
            if len(heard.nodes) != handled or self.leg is None or self.ended.is_set():
                continue  # the IVR moved on meanwhile (a timeout): react to where it is now
            self.engine.send_dtmf(self.leg.id, keys, duration_ms=120, pause_ms=160)
            self.stats.digits_sent += len(keys)


def exponential(rng: random.Random, mean: float) -> float:
    """A draw from an exponential distribution with this mean (0 for a mean of 0)."""
    return rng.expovariate(1.0 / mean) if mean > 0 else 0.0


def poisson_gaps(rng: random.Random, per_minute: float) -> Iterator[float]:
    """Inter-arrival times (seconds) of a Poisson process of ``per_minute`` arrivals; none for 0."""
    if per_minute <= 0:
        return
    while True:
        yield rng.expovariate(per_minute / 60.0)


def caller_plans(rng: random.Random, *, mean_patience: float) -> Iterator[CallerPlan]:
    """Callers: two in three through the IVR (main menu 1 sales, 2 support, 3 billing with an
    account number; language 1 English, 2 Spanish, or none), the others straight to ``2000``
    (support) or ``2001`` (sales). Patience in a queue is exponential with ``mean_patience``."""
    n = 0
    while True:
        n += 1
        caller_id = f"0700900{n:04d}"
        patience = max(2.0, exponential(rng, mean_patience))
        reaction = rng.uniform(1.0, 3.0)
        if rng.random() < 2 / 3:
            language = rng.choices(("1", "2", None), weights=(70, 15, 15))[0]
            menu = rng.choices(("1", "2", "3"), weights=(40, 40, 20))[0]
            account = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 8))) if menu == "3" else None
            yield CallerPlan("1000", caller_id, patience, language=language, menu=menu, account=account,
                             reaction=reaction)
        else:
            yield CallerPlan(rng.choice(("2000", "2001")), caller_id, patience, reaction=reaction)
