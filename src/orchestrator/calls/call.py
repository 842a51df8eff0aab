"""A call: the legs of one conversation, bridged in the media engine.

A :class:`Call` has a first party ``a`` (the caller of an inbound call, or the
first party an origination rang) and, once connected, a second party ``b``.
Each is a :class:`~orchestrator.calls.leg.SipLeg` whose media is an engine
leg: the two are bridged in the engine (relayed when their codecs match,
transcoded otherwise), never connected directly.

What a call does (the SIP rules are in the legs):

* **dialling** (:meth:`connect`, inbound routing, transfers, origination):
  every destination is called in parallel; 180 is relayed to an unanswered
  caller, 183 with SDP is bridged early (early media); the first 2xx wins and
  the other branches are CANCELled; a 2xx that comes after the winner is
  ACKed and BYEd (RFC 3261 13.2.2.4);
* **hold**: a party that sends ``sendonly``/``inactive`` (RFC 3264 8.4) holds
  the call: the bridge is taken down and the other party hears music on hold
  played by the engine; ``sendrecv`` again resumes the bridge. :meth:`hold`
  does the same from our side (no SIP needed: media is anchored here);
* **transfer**: REFER (RFC 3515) from a party: 202, NOTIFYs with sipfrag
  progress, a new leg to the Refer-To target, then the referrer is released
  (blind transfer); a Refer-To carrying Replaces (RFC 3891) joins the
  transferee to the party at the other end of the named dialog (attended);
* **DTMF**: RFC 4733 digits reported by the engine and SIP INFO digits
  (``application/dtmf-relay``, ``application/dtmf``) arrive as the same
  :class:`Digit` on :meth:`receive_digit`; INFO digits are also sent on to
  the other party as RFC 4733 events.

Call handlers (the ACD, the IVR) use :meth:`answer`, :meth:`play`,
:meth:`receive_digit`, :meth:`record`, :meth:`connect`, :meth:`hold`,
:meth:`hangup` and :attr:`data`.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from orchestrator.sip import NameAddr, Response, SipParseError, SipUri
from orchestrator.transport import IncomingRequest, TransportUnavailable

from .dtmf import parse_info_dtmf
from .events import CallEvent, CallRecord, LegRecord
from .leg import Destination, LegState, SipLeg, parse_refer_to

if TYPE_CHECKING:
    from .manager import CallManager
    from .routing import RouteTarget

__all__ = ["Call", "Digit", "Playback", "ConnectResult", "cause_for_status"]

log = logging.getLogger("hotline.calls")
_call_numbers = itertools.count(1)


def cause_for_status(status: int | None) -> str:
    """The record's cause for a failed INVITE's final status."""
    if status is None:
        return "failed"
    if status in (486, 600):
        return "busy"
    if status in (408, 480):
        return "no_answer"
    if status == 487:
        return "cancelled"
    if status in (403, 603, 607):
        return "rejected"
    if status in (404, 484, 604):
        return "not_found"
    return "failed"


@dataclass(frozen=True)
class Digit:
    """A DTMF digit from a party. ``source``: rfc4733, inband or info."""

    digit: str
    source: str
    leg: int
    duration_ms: int | None = None


@dataclass(frozen=True)
class ConnectResult:
    answered: bool
    status: int | None
    cause: str
    peer: str | None = None


class Playback:
    """A prompt, tone or music playing to one party; :meth:`wait` for its end."""

    def __init__(self, call: Call, player: int) -> None:
        self.call = call
        self.id = player
        self.reason: str | None = None
        self._done = trio.Event()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def _finish(self, reason: str | None) -> None:
        if not self._done.is_set():
            self.reason = reason
            self._done.set()

    async def wait(self) -> str | None:
        """The end reason: completed, stopped, dtmf (barge-in) or leg_gone."""
        await self._done.wait()
        return self.reason

    def stop(self) -> None:
        if not self._done.is_set():
            try:
                self.call.engine.stop_playback(self.id)
            except (KeyError, RuntimeError):
                self._finish("stopped")


@dataclass
class _DialOutcome:
    forks: int
    winner: SipLeg | None = None
    statuses: list[int] = field(default_factory=list)
    abandoned: bool = False
    decided: trio.Event = field(default_factory=trio.Event)
    accept: Callable[[str], bool] | None = None
    refused: bool = False

    def fail(self, status: int) -> None:
        self.statuses.append(status)
        if len(self.statuses) >= self.forks and self.winner is None:
            self.decided.set()

    @property
    def status(self) -> int:
        """The response to relay when nobody answered (RFC 3261 16.7 step 6, simplified):
        a 6xx wins, then busy, then the lowest 4xx, then anything else."""
        codes = self.statuses
        for pick in ([c for c in codes if c >= 600], [c for c in codes if c == 486],
                     sorted(c for c in codes if 400 <= c < 500 and c != 487), sorted(codes)):
            if pick:
                return pick[0]
        return 480


class Call:
    """One conversation (see the module docstring)."""

    def __init__(self, manager: CallManager, *, direction: str, caller: str, callee: str,
                 caller_display: str | None = None) -> None:
        self.manager = manager
        self.engine = manager.engine
        self.number = next(_call_numbers)
        self.id = f"{manager.node_id}-{self.number}"
        self.affinity = hash(self.id) & 0xFFFFFFFF
        self.direction = direction
        self.caller = caller
        self.callee = callee
        self.caller_display = caller_display
        self.route = ""
        self.data: dict[str, Any] = {}
        self.identity: Any = None
        self.a: SipLeg | None = None
        self.b: SipLeg | None = None
        self.legs: list[SipLeg] = []
        self.room: int | None = None
        self.state = "setup"  # setup, ringing, answered, connected, ended
        self.started_at = time.time()
        self._t0 = trio.current_time()
        self._answered_t: float | None = None
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.cause = ""
        self.sip_code: int | None = None
        self.ended_by: str | None = None
        self.transferred = False
        self._holders: set[int] = set()
        self._local_hold = False
        self._hold_since: float | None = None
        self.hold_seconds = 0.0
        self._moh: dict[int, Playback] = {}
        self._ringback: Playback | None = None
        self._playbacks: dict[int, Playback] = {}
        self._scopes: set[trio.CancelScope] = set()
        self._transfer_referrer: SipLeg | None = None
        self._monitor: SipLeg | None = None  # a supervisor's device on this call
        self._monitor_mode = "listen"
        self._early_leg: SipLeg | None = None
        self._digit_send, self._digit_receive = trio.open_memory_channel[Digit](256)
        self._answered_event = trio.Event()
        self._connected_event = trio.Event()
        self._ended_event = trio.Event()
        self._callee_gone = trio.Event()
        self.announced = False
        # When True, the callee hanging up releases only the callee and the caller stays
        # (a post-call survey after the agent leaves); see wait_callee_gone().
        self.keep_caller = False

    def __repr__(self) -> str:
        return f"<Call {self.id} {self.state} {self.caller} -> {self.callee}>"

    # ------------------------------------------------------------------ state
    @property
    def ended(self) -> bool:
        return self.state == "ended"

    @property
    def connected(self) -> bool:
        return self.room is not None

    @property
    def held(self) -> bool:
        return bool(self._holders) or self._local_hold

    async def wait_answered(self) -> None:
        await self._answered_event.wait()

    async def wait_connected(self) -> None:
        await self._connected_event.wait()

    async def wait_ended(self) -> None:
        await self._ended_event.wait()

    async def wait_callee_gone(self) -> None:
        """Wait until the connected party has left (with :attr:`keep_caller`) or the call ended."""
        if self.b is None or self.ended:
            await trio.lowlevel.checkpoint()
            return
        await self._callee_gone.wait()

    def _other(self, leg: SipLeg) -> SipLeg | None:
        if leg is self.a:
            return self.b
        if leg is self.b:
            return self.a
        return None

    def _emit(self, name: str, **details: Any) -> None:
        if not self.announced:
            return
        self.manager._emit(CallEvent(name=name, call_id=self.id, at=time.time(), caller=self.caller,
                                     callee=self.callee, details=details))

    def _scope(self) -> trio.CancelScope:
        scope = trio.CancelScope()
        self._scopes.add(scope)
        if self.ended:
            scope.cancel()
        return scope

    # ------------------------------------------------------------------ legs
    def _new_leg(self, role: str) -> SipLeg:
        media = self.manager._media_session(self.affinity)
        leg = SipLeg(self.manager, self, role, media)
        self.legs.append(leg)
        return leg

    def _adopt(self, leg: SipLeg) -> None:
        """Take a leg over from another call (attended transfer)."""
        old = leg.call
        if leg in old.legs:
            old.legs.remove(leg)
        if leg is old.a or leg is old.b:
            old._unbridge()
            old._stop_moh(leg)
        if old.a is leg:
            old.a = None
        if old.b is leg:
            old.b = None
        leg.call = self
        self.legs.append(leg)
        self.manager._leg_moved(leg)

    # ------------------------------------------------------------------ media
    def _bridge(self, x: SipLeg, y: SipLeg) -> None:
        self._unbridge()
        for leg in (x, y):
            self._stop_moh(leg)
        if x.media.id is None or y.media.id is None:
            return
        self.room = self.engine.bridge(x.media.id, y.media.id)
        self.manager.stats_bridges += 1
        self._apply_monitor()

    def _unbridge(self) -> None:
        if self.room is not None:
            try:
                self.engine.destroy_room(self.room)
            except (KeyError, RuntimeError):
                pass
            self.room = None

    def _play_to(self, leg: SipLeg, **what: Any) -> Playback | None:
        if leg.media.id is None or self.ended:
            return None
        try:
            player = self.engine.play(leg.media.id, **what)
        except (KeyError, ValueError, RuntimeError) as exc:
            log.info("call %s: cannot play %s: %s", self.id, what, exc)
            return None
        playback = Playback(self, player)
        self._playbacks[player] = playback
        self.manager._players[player] = playback
        return playback

    def _start_moh(self, leg: SipLeg) -> None:
        if leg.id in self._moh and not self._moh[leg.id].finished:
            return
        moh = self.manager.config.music_on_hold
        playback = self._play_to(leg, file=moh, loops=0) if moh else None
        if playback is not None:
            self._moh[leg.id] = playback

    def _stop_moh(self, leg: SipLeg) -> None:
        playback = self._moh.pop(leg.id, None)
        if playback is not None:
            playback.stop()

    def _refresh_media(self) -> None:
        """Bridge a and b, or take the bridge down and play hold music to the held party."""
        if self.ended or self.a is None:
            return
        a, b = self.a, self.b
        if b is None:
            if self._local_hold:
                self._start_moh(a)
            else:
                self._stop_moh(a)
            return
        if self.held:
            self._unbridge()
            for party in (a, b):
                holding = party.id in self._holders or (self._local_hold and party is b)
                if holding:
                    self._stop_moh(party)
                else:
                    self._start_moh(party)
        else:
            self._bridge(a, b)

    def _set_hold(self, holder: str, held: bool) -> None:
        now = trio.current_time()
        if held and self._hold_since is None:
            self._hold_since = now
        elif not self.held and self._hold_since is not None:
            self.hold_seconds += now - self._hold_since
            self._hold_since = None
        self._emit("call.held" if held else "call.resumed", by=holder)

    def _on_remote_hold(self, leg: SipLeg, held: bool) -> None:
        if held:
            self._holders.add(leg.id)
        else:
            self._holders.discard(leg.id)
        self.manager.stats_holds += int(held)
        self._refresh_media()
        self._set_hold("caller" if leg is self.a else "callee", held)

    # ------------------------------------------------------------------ the handler API
    async def answer(self, *, early: bool = False) -> bool:
        """Answer the caller (200 OK), or with ``early`` open early media (183).
        Returns False if the caller is gone or was answered already."""
        a = self.a
        if a is None or a.role != "uas" or self.ended:
            return False
        if early:
            a.ring(early_media=True)
            return a.early_media
        if not a.accept():
            return False
        self._mark_answered()
        return True

    def _mark_answered(self, by: str | None = None) -> None:
        if self._answered_t is None:
            self._answered_t = trio.current_time()
            self.answered_at = time.time()
            if self.state in ("setup", "ringing"):
                self.state = "answered"
            self._answered_event.set()
            self._emit("call.answered", **({"by": by} if by else {}))

    def play(self, *, file: str | os.PathLike[str] | None = None, tone: str | None = None,
             silence: float | None = None, digits: str | None = None, loops: int = 1,
             stop_on_dtmf: bool = False, region: str = "us", duration: float = 0.0,
             to: str = "caller") -> Playback:
        """Play to the caller (``to="caller"``) or the connected party (``to="callee"``).

        Raises ValueError for bad arguments (see :meth:`mediacore.engine.Engine.play`)
        and RuntimeError when the party has no media (gone, or not yet set up).
        """
        if to not in ("caller", "callee"):
            raise ValueError("to: must be 'caller' or 'callee'")
        leg = self.a if to == "caller" else self.b
        if leg is None or leg.media.id is None or self.ended:
            raise RuntimeError(f"play: the {to} has no media")
        player = self.engine.play(leg.media.id, file=file, tone=tone, silence=silence, digits=digits,
                                  loops=loops, stop_on_dtmf=stop_on_dtmf, region=region, duration=duration)
        playback = Playback(self, player)
        self._playbacks[player] = playback
        self.manager._players[player] = playback
        return playback

    async def receive_digit(self) -> Digit:
        """The next DTMF digit from either party (RFC 4733, in-band or SIP INFO).
        Raises trio.EndOfChannel once the call has ended."""
        return await self._digit_receive.receive()

    def receive_digit_nowait(self) -> Digit:
        return self._digit_receive.receive_nowait()

    def record(self, path: str | os.PathLike[str], **options: Any) -> int:
        """Record the conversation (the bridge when connected, else the caller);
        options as :meth:`mediacore.engine.Engine.record`. Returns the recorder id."""
        target = self.room if self.room is not None else (self.a.media.id if self.a else None)
        if target is None or self.ended:
            raise RuntimeError("record: the call has no media")
        return self.engine.record(target, path, **options)

    def stop_recording(self, recorder: int) -> None:
        """Stop a recording :meth:`record` started (a ``recording_finished`` engine event follows)."""
        self.engine.stop_recording(recorder)

    def send_dtmf(self, digits: str, *, to: str = "callee", duration_ms: int = 100) -> None:
        leg = self.b if to == "callee" else self.a
        if leg is None or leg.media.id is None:
            raise RuntimeError(f"send_dtmf: no {to}")
        self.engine.send_dtmf(leg.media.id, digits, duration_ms=duration_ms)

    def hold(self) -> None:
        """Put the caller on hold from our side: music for the caller, silence for the other party."""
        if self.ended or self._local_hold:
            return
        self._local_hold = True
        self._refresh_media()
        self._set_hold("system", True)

    def unhold(self) -> None:
        if self.ended or not self._local_hold:
            return
        self._local_hold = False
        self._refresh_media()
        self._set_hold("system", False)

    async def connect(self, target: RouteTarget | str, *, ring_timeout: float | None = None,
                      caller_id: str | None = None,
                      accept: Callable[[str], bool] | None = None) -> ConnectResult:
        """Ring ``target`` (an extension user, a SIP URI or a route target) and, when
        it answers, answer the caller if needed and bridge the two.

        Returns how it went; the call stays up either way (a handler may try
        another agent). Cancel the surrounding scope to stop ringing.

        ``accept(peer)``, if given, is asked synchronously the moment a branch
        answers (2xx), before anything is bridged: False hangs that branch up
        (ACK then BYE) and the connect fails with cause ``refused`` - how the
        ACD turns away an agent who answers an offer it no longer holds (the
        loser of a ring-all race). Several connects may ring at once; only one
        can win the call.
        """
        if self.ended or self.a is None:
            return ConnectResult(False, None, "ended")
        if self.b is not None and not self.b.ended:
            raise RuntimeError("connect: the call is already connected")
        destinations = await self.manager._destinations(target, self)
        if not destinations:
            return ConnectResult(False, 480, "not_found")
        outcome = await self._dial(destinations, ring_timeout=ring_timeout, relay=self.a.role == "uas",
                                   from_user=caller_id, accept=accept)
        winner = outcome.winner
        if winner is None:
            status = outcome.status
            if outcome.refused:
                return ConnectResult(False, status, "refused")
            return ConnectResult(False, status, cause_for_status(status))
        if self.ended or (self.b is not None and not self.b.ended):
            # Another connect won the call meanwhile (or it ended): this branch is not wanted.
            winner.hangup()
            self._release_leg_media(winner)
            return ConnectResult(False, 487, "refused")
        self._connect_winner(winner)
        return ConnectResult(True, 200, "answered", winner.peer)

    def _connect_winner(self, winner: SipLeg) -> None:
        a = self.a
        assert a is not None
        self.b = winner
        self._callee_gone = trio.Event()
        if a.role == "uas" and a.state is not LegState.CONFIRMED:
            if not a.accept():
                self._end("caller_cancel", 487, "caller")
                return
        self._bridge(a, winner)
        self.state = "connected"
        self._connected_event.set()
        self._mark_answered(by=winner.peer)

    # ------------------------------------------------------------------ supervisor monitoring
    @property
    def monitored(self) -> str | None:
        """The supervisor mode on this call (listen, whisper, barge), or None."""
        sup = self._monitor
        return self._monitor_mode if sup is not None and not sup.ended else None

    async def monitor(self, target: RouteTarget | str, mode: str, *,
                      ring_timeout: float | None = None) -> ConnectResult:
        """Put a supervisor's device on this connected call: ``listen`` (hears both parties),
        ``whisper`` (the agent hears the supervisor too) or ``barge`` (both do).

        The first call rings ``target`` (an extension user or a SIP URI) and, when it answers,
        joins it to the bridge as mixer edges; the caller and the agent hear nothing of it
        (no re-INVITE, no media change on their legs). On a live session it only switches the
        mode: the supervisor's call stays up. The session ends when the supervisor hangs up or
        the call ends.
        """
        if mode not in ("listen", "whisper", "barge"):
            raise ValueError(f"mode must be listen, whisper or barge, got {mode!r}")
        if self.ended or self.a is None or self.b is None or self.room is None:
            return ConnectResult(False, None, "not_connected")
        sup = self._monitor
        if sup is not None and not sup.ended:
            self._monitor_mode = mode
            self._apply_monitor()
            self._emit("call.monitored", mode=mode, supervisor=sup.peer)
            return ConnectResult(True, 200, "switched", sup.peer)
        destinations = await self.manager._destinations(target, self)
        if not destinations:
            return ConnectResult(False, 480, "not_found")
        outcome = await self._dial(destinations, ring_timeout=ring_timeout, relay=False)
        winner = outcome.winner
        if winner is None:
            return ConnectResult(False, outcome.status, cause_for_status(outcome.status))
        if self.ended or self.room is None or self.b is None or (self._monitor is not None
                                                                  and not self._monitor.ended):
            winner.hangup()
            self._release_leg_media(winner)
            return ConnectResult(False, 487, "not_connected")
        self._monitor, self._monitor_mode = winner, mode
        self._apply_monitor()
        self._emit("call.monitored", mode=mode, supervisor=winner.peer)
        return ConnectResult(True, 200, "answered", winner.peer)

    def stop_monitor(self) -> bool:
        """Hang up the supervisor's device; False when there was no session."""
        sup = self._monitor
        if sup is None or sup.ended:
            return False
        sup.hangup()
        self._end_monitor(sup)
        return True

    def _apply_monitor(self) -> None:
        sup = self._monitor
        if sup is None or sup.ended or self.room is None or self.a is None or self.b is None:
            return
        ids = (sup.media.id, self.a.media.id, self.b.media.id)
        if None in ids:
            return
        try:
            self.engine.supervise(self.room, ids[0], ids[1], ids[2], self._monitor_mode)
        except (KeyError, RuntimeError) as exc:
            log.warning("call %s: supervisor media: %s", self.id, exc)

    def _end_monitor(self, sup: SipLeg) -> None:
        if sup is not self._monitor:
            return
        self._monitor = None
        if self.room is not None and sup.media.id is not None:
            try:
                self.engine.leave(self.room, sup.media.id)
            except (KeyError, RuntimeError):
                pass
        self._release_leg_media(sup)
        self._emit("call.monitor_ended", supervisor=sup.peer)

    async def hangup(self, cause: str = "normal_clearing", *, status: int = 480) -> None:
        """End the call (BYE, CANCEL, or ``status`` to an unanswered caller)."""
        if self.a is not None and self.a.role == "uas" and self.a.state in (LegState.INIT, LegState.EARLY):
            self.a.reject(status)
            self.sip_code = status
        self._end(cause, self.sip_code, "system")
        await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------------ dialling
    async def _dial(self, destinations: Sequence[Destination], *, ring_timeout: float | None = None,
                    relay: bool = True, from_user: str | None = None,
                    from_display: str | None = None,
                    accept: Callable[[str], bool] | None = None) -> _DialOutcome:
        manager = self.manager
        outcome = _DialOutcome(len(destinations), accept=accept)
        forks: list[SipLeg] = []
        prefer = self.a.media.codec if self.a is not None else None
        for destination in destinations:
            leg = self._new_leg("uac")
            try:
                body = leg.media.offer(prefer=prefer)
            except (RuntimeError, ValueError) as exc:  # e.g. no free RTP port
                log.warning("call %s: no media for a new leg: %s", self.id, exc)
                self.legs.remove(leg)
                leg.media.destroy()
                outcome.fail(503)
                continue
            address = destination.address
            assert address is not None
            trunk_id = destination.trunk.caller_id if destination.trunk is not None else None
            user = from_user or trunk_id or _user_of(self.caller) or "anonymous"
            display = from_display if from_display is not None else self.caller_display
            leg.build_invite(destination, from_user=user, from_display=display, to=NameAddr(destination.uri),
                             body=body, transport=address.transport)
            forks.append(leg)
            manager._spawn(self._run_fork, leg, destination, outcome, relay)
        if not forks:
            return outcome
        timeout = ring_timeout if ring_timeout is not None else manager.config.ring_timeout
        try:
            with trio.move_on_after(timeout):
                await outcome.decided.wait()
        finally:
            if outcome.winner is None:
                outcome.abandoned = True
                outcome.decided.set()
                if not outcome.statuses:
                    outcome.statuses.append(480)
                for leg in forks:
                    leg.cancel()
                if self._early_leg in forks:
                    self._early_leg = None
                    self._unbridge()
        return outcome

    async def _run_fork(self, leg: SipLeg, destination: Destination, outcome: _DialOutcome,
                        relay: bool) -> None:
        assert destination.address is not None
        try:
            tx = leg.send_invite(destination.address)
        except TransportUnavailable:
            leg.final_code = 503
            leg._terminated()
            outcome.fail(503)
            return
        while True:
            final: Response | None = None
            async for response in tx:
                if response.status_code >= 200:
                    final = response
                    break
                if response.status_code == 100:
                    continue
                leg.on_provisional(response)
                if relay and not outcome.abandoned and outcome.winner is None:
                    self._relay_progress(leg, response)
            assert final is not None
            code = final.status_code
            if 200 <= code < 300:
                self._fork_answered(leg, final, outcome)
                return
            if code in (401, 407):
                retry = leg.retry_with_credentials(final)
                if retry is not None:
                    tx = retry
                    continue
            leg.on_failure(final)
            if self._early_leg is leg:
                self._early_leg = None
                self._unbridge()
            self._release_leg_media(leg)
            outcome.fail(code)
            return

    def _fork_answered(self, leg: SipLeg, response: Response, outcome: _DialOutcome) -> None:
        if not leg.on_2xx(response):
            leg._terminated()
            self._release_leg_media(leg)
            outcome.fail(502)
            return
        usable = True
        if response.body:
            try:
                leg.media.accept_answer(response.body)
            except SipParseError as exc:
                log.info("call %s: unusable SDP answer from %s: %s", self.id, leg.peer, exc.reason)
                usable = False
        elif not leg.early_answer_applied:
            usable = False  # an offer without an answer: nothing to send media to
        if not usable or outcome.winner is not None or outcome.abandoned or self.ended:
            leg.hangup()
            self._release_leg_media(leg)
            if not usable:
                outcome.fail(488)
            return
        if outcome.accept is not None:
            try:
                accepted = bool(outcome.accept(leg.peer))
            except Exception:
                log.exception("call %s: the accept callback failed; refusing %s", self.id, leg.peer)
                accepted = False
            if not accepted:
                leg.hangup()
                self._release_leg_media(leg)
                outcome.refused = True
                outcome.fail(487)
                return
        outcome.winner = leg
        outcome.decided.set()
        for other in self.legs:
            ringing = other.role == "uac" and other.state in (LegState.CALLING, LegState.EARLY)
            if ringing and other is not leg and other is not self.a and other is not self.b:
                other.cancel()

    def _relay_progress(self, leg: SipLeg, response: Response) -> None:
        a = self.a
        if a is None or a.role != "uas" or a.state not in (LegState.INIT, LegState.EARLY):
            return
        if self.state == "setup":
            self.state = "ringing"
        if response.body and self.manager.config.early_media and self._early_leg is None:
            try:
                leg.media.accept_answer(response.body)
            except SipParseError:
                a.ring()
                return
            leg.early_answer_applied = True
            self._early_leg = leg
            self._bridge(a, leg)
            a.ring(early_media=True)
        else:
            a.ring()

    def _release_leg_media(self, leg: SipLeg) -> None:
        if leg is not self.a and leg is not self.b:
            self.manager._forget_leg(leg)
            leg.media.destroy()

    # ------------------------------------------------------------------ SIP events from legs
    def _leg_gone(self, leg: SipLeg, cause: str, status: int | None) -> None:
        """A party hung up (BYE), or its leg failed after being answered."""
        if self.ended:
            return
        if leg is self._transfer_referrer:
            return  # the referrer may leave while its transfer goes on
        if leg is self._monitor:
            self._end_monitor(leg)  # the supervisor hung up; the call goes on
            return
        if leg is self.b and self.keep_caller and self.a is not None and not self.a.ended:
            self._release_callee(leg)
            return
        if leg is self.a or leg is self.b:
            self._end(cause, status, "caller" if leg is self.a else "callee")

    def _release_callee(self, leg: SipLeg) -> None:
        """The connected party left; the caller stays, unbridged (:attr:`keep_caller`)."""
        self._unbridge()
        self._stop_moh(leg)
        self._holders.discard(leg.id)
        leg.hangup()
        self.manager._forget_leg(leg)
        leg.media.destroy()
        self.b = None
        self.state = "answered"
        self._local_hold = False
        if self._hold_since is not None and not self.held:
            self.hold_seconds += trio.current_time() - self._hold_since
            self._hold_since = None
        self._refresh_media()
        self._callee_gone.set()

    def _caller_cancelled(self, leg: SipLeg) -> None:
        if leg is self.a and leg.state in (LegState.INIT, LegState.EARLY):
            leg.reject(487)
            self._end("caller_cancel", 487, "caller")

    def _on_engine_event(self, leg: SipLeg, event: Any) -> None:
        kind = event.type
        if kind == "dtmf" and event.digit:
            self.manager.stats_digits += 1
            self._deliver_digit(Digit(event.digit, event.source or "rfc4733", leg.id, event.duration_ms))
        elif kind == "media_timeout" and self.manager.config.hangup_on_media_timeout:
            if leg in (self.a, self.b) and leg.state is LegState.CONFIRMED and not self.held:
                if leg is self.b and self.keep_caller:
                    self._release_callee(leg)
                else:
                    self._end("media_timeout", None, "system")

    def _deliver_digit(self, digit: Digit) -> None:
        try:
            self._digit_send.send_nowait(digit)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def _on_info(self, leg: SipLeg, incoming: IncomingRequest) -> None:
        request = incoming.request
        if not request.body:
            incoming.respond(200)
            return
        ctype = request.content_type
        info = parse_info_dtmf(ctype.mime, request.body) if ctype is not None else None
        if info is None:
            incoming.respond(400 if ctype is not None and ctype.mime.startswith("application/dtmf") else 415,
                             headers=[("Accept", "application/dtmf-relay, application/dtmf")])
            return
        incoming.respond(200)
        self.manager.stats_info_digits += 1
        self._deliver_digit(Digit(info.digit, "info", leg.id, info.duration_ms))
        other = self._other(leg)
        if self.room is not None and other is not None and other.media.id is not None:
            duration = min(max(info.duration_ms or 100, 40), 5000)
            try:
                self.engine.send_dtmf(other.media.id, info.digit, duration_ms=duration)
            except (KeyError, ValueError, RuntimeError):
                pass

    # ------------------------------------------------------------------ transfer
    def _on_refer(self, leg: SipLeg, incoming: IncomingRequest) -> None:
        request = incoming.request
        values = request.headers.get_all("Refer-To")
        if len(values) != 1:
            incoming.respond(400, headers=[("Warning", '399 hotline "exactly one Refer-To needed"')])
            return
        try:
            target, replaces = parse_refer_to(values[0])
        except SipParseError as exc:
            incoming.respond(400, headers=[("Warning", f'399 hotline "{exc.reason}"')])
            return
        transferee = self._other(leg)
        if transferee is None or transferee.ended or leg.state is not LegState.CONFIRMED:
            incoming.respond(603, headers=[("Warning", '399 hotline "no connected party to transfer"')])
            return
        if self._transfer_referrer is not None:
            incoming.respond(491)
            return
        notify = (request.headers.get("Refer-Sub") or "true").strip().lower() != "false"
        headers = [("Contact", str(leg.endpoint.contact(leg.transport)))]
        if not notify:
            headers.append(("Refer-Sub", "false"))
        incoming.respond(202, to_tag=None, headers=headers)
        self._transfer_referrer = leg
        self.manager.stats_transfers_requested += 1
        self.manager._spawn(self._run_transfer, leg, transferee, target, replaces, notify)

    def _notify(self, referrer: SipLeg, status: int, reason: str, *, final: bool, enabled: bool) -> None:
        if not enabled or referrer.state is not LegState.CONFIRMED:
            return
        state = "terminated;reason=noresource" if final else "active;expires=60"
        referrer.send_in_dialog("NOTIFY", headers=[("Event", "refer"), ("Subscription-State", state)],
                                body=f"SIP/2.0 {status} {reason}\r\n".encode(),
                                content_type="message/sipfrag;version=2.0")

    async def _run_transfer(self, referrer: SipLeg, transferee: SipLeg, target: SipUri,
                            replaces: str | None, notify: bool) -> None:
        with self._scope() as scope:
            try:
                self._notify(referrer, 100, "Trying", final=False, enabled=notify)
                if replaces is not None:
                    ok = self._attended_transfer(referrer, transferee, replaces)
                    if not ok:
                        self._notify(referrer, 481, "Call/Transaction Does Not Exist", final=True,
                                     enabled=notify)
                    return
                await self._blind_transfer(referrer, transferee, target, notify)
            finally:
                self._scopes.discard(scope)
                if self._transfer_referrer is referrer:
                    self._transfer_referrer = None
                if referrer.ended and not self.ended and referrer in (self.a, self.b):
                    self._end("normal_clearing", None, "caller" if referrer is self.a else "callee")

    async def _blind_transfer(self, referrer: SipLeg, transferee: SipLeg, target: SipUri,
                              notify: bool) -> None:
        self._unbridge()
        self._ringback = self._play_to(transferee, tone="ringback", region=self.manager.config.tone_region)
        destinations = await self.manager._destinations(target, self)
        outcome = await self._dial(destinations, relay=False, from_user=_user_of(
            self.caller if transferee is self.a else self.callee)) if destinations else None
        if self._ringback is not None:
            self._ringback.stop()
            self._ringback = None
        winner = outcome.winner if outcome is not None else None
        if winner is None or self.ended:
            status = outcome.status if outcome is not None else 404
            self._notify(referrer, status, _reason(status), final=True, enabled=notify)
            if not referrer.ended:
                self._refresh_media()  # back to the referrer
            else:
                self._end("transfer_failed", status, "system")
            return
        if referrer is self.a:
            self.a = winner
        else:
            self.b = winner
        self._refresh_media()
        self._notify(referrer, 200, "OK", final=True, enabled=notify)
        self._release_referrer(referrer)
        self.transferred = True
        self.manager.stats_transfers += 1
        self._emit("call.transferred", mode="blind", to=str(target), transferee=transferee.peer)

    def _release_referrer(self, referrer: SipLeg) -> None:
        referrer.hangup()
        self.manager._forget_leg(referrer)
        referrer.media.destroy()

    def _attended_transfer(self, referrer: SipLeg, transferee: SipLeg, replaces: str) -> bool:
        """REFER with Replaces: join the transferee to the far party of the replaced dialog."""
        replaced = self.manager._find_replaces(replaces)
        if replaced is None or replaced.call is self or replaced.ended:
            return False
        other_call = replaced.call
        party = other_call._other(replaced)
        if party is None or party.ended:
            return False
        self._adopt(party)
        if referrer is self.a:
            self.a = party
        else:
            self.b = party
        self._refresh_media()
        self._notify(referrer, 200, "OK", final=True, enabled=True)
        self._release_referrer(referrer)
        other_call.transferred = True
        other_call._end("transferred", None, "system")
        self.transferred = True
        self.manager.stats_transfers += 1
        self._emit("call.transferred", mode="attended", to=party.peer, transferee=transferee.peer)
        return True

    def _replace_leg(self, replaced: SipLeg, new: SipLeg) -> None:
        """An INVITE with Replaces (RFC 3891) arrived for ``replaced``: ``new`` takes its place."""
        self._adopt(new)
        if replaced is self.a:
            self.a = new
        elif replaced is self.b:
            self.b = new
        if not new.accept():
            self._end("failed", None, "system")
            return
        self._refresh_media()
        replaced.hangup()
        self.manager._forget_leg(replaced)
        replaced.media.destroy()
        self.transferred = True
        self.manager.stats_transfers += 1
        self._emit("call.transferred", mode="replaces", to=new.peer, replaced=replaced.peer)

    # ------------------------------------------------------------------ the end
    def _end(self, cause: str, status: int | None, ended_by: str | None) -> None:
        if self.ended:
            return
        self.state = "ended"
        self.cause = cause
        if status is not None:
            self.sip_code = status
        elif self.sip_code is None and self.a is not None:
            self.sip_code = self.a.final_code
        self.ended_by = ended_by
        self.ended_at = time.time()
        now = trio.current_time()
        if self._hold_since is not None:
            self.hold_seconds += now - self._hold_since
            self._hold_since = None
        for scope in list(self._scopes):
            scope.cancel()
        for leg in self.legs:
            leg.hangup()
        for playback in list(self._playbacks.values()):
            playback.stop()
            self.manager._players.pop(playback.id, None)
        self._unbridge()
        for leg in self.legs:
            self.manager._forget_leg(leg)
            leg.media.destroy()
        self._playbacks.clear()  # Playback -> Call references: no cycle left behind
        self._moh.clear()
        self._ringback = None
        self._digit_send.close()
        self._callee_gone.set()
        self.manager._forget_call(self)
        if self.announced:
            record = self.record_now(now)
            self.manager._emit(CallEvent(name="call.ended", call_id=self.id, at=self.ended_at,
                                         caller=self.caller, callee=self.callee,
                                         details={"cause": cause, "sip_code": self.sip_code}, record=record))
        self._ended_event.set()

    def record_now(self, now: float | None = None) -> CallRecord:
        now = trio.current_time() if now is None else now
        answered_t = self._answered_t
        ring = (answered_t if answered_t is not None else now) - self._t0
        talk = now - answered_t if answered_t is not None else 0.0
        return CallRecord(
            call_id=self.id, direction=self.direction, caller=self.caller, callee=self.callee,
            route=self.route, started_at=self.started_at, answered_at=self.answered_at,
            ended_at=self.ended_at or time.time(), ring_seconds=max(0.0, ring), talk_seconds=max(0.0, talk),
            hold_seconds=self.hold_seconds, cause=self.cause, sip_code=self.sip_code, ended_by=self.ended_by,
            transferred=self.transferred,
            legs=tuple(LegRecord(leg_id=leg.id, role=leg.role, sip_call_id=leg.sip_call_id, peer=leg.peer,
                                 codec=leg.media.codec.name if leg.media.codec else None,
                                 answered=leg.answered_at is not None, sip_code=leg.final_code)
                       for leg in self.legs),
            data=self.data)


def _user_of(uri_text: str) -> str | None:
    """The user part of a SIP URI string (``sip:alice@host`` -> ``alice``)."""
    if ":" not in uri_text:
        return uri_text or None
    rest = uri_text.split(":", 1)[1]
    return rest.split("@", 1)[0] if "@" in rest else None


def _reason(status: int) -> str:
    from orchestrator.sip import REASON_PHRASES

    return REASON_PHRASES.get(status, "Error")
