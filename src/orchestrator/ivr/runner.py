"""The IVR runner: IVR flows driving real calls, on Trio.

:class:`IvrRunner` is the B2BUA's :class:`~orchestrator.calls.CallHandler`
for IVR targets (``ToIvr("main")``). For each call it answers, starts one
:class:`~orchestrator.ivr.Session` on the flow version current at that moment
(a hot reload never changes a call in progress: the session keeps its
FlowSet), and translates both ways:

=================  ======================================================================
call / engine       flow event
=================  ======================================================================
DTMF digit          ``Digit`` (RFC 4733, in-band and SIP INFO alike: ``Call.receive_digit``)
prompt finished     ``PlaybackDone``
timer               ``Timeout`` (Trio sleeps in cancel scopes)
CRM answer          ``LookupResult`` / ``LookupFailed`` (error or the node's timeout)
recording stopped   ``RecordDone`` (path, seconds)
ACD outcome         ``QueueResult`` (answered, timeout, unavailable)
caller hangs up     the session is cancelled with the call
=================  ======================================================================

Effects are carried out without blocking the loop that feeds events, so
digits keep flowing into the session's type-ahead buffer while a prompt
plays or a lookup waits:

* ``Play``: the prompts in order with ``stop_on_dtmf`` when the node allows
  barge-in: the engine stops the prompt on the digit's first packet, the
  digit itself follows and the session stops the playback
  (``StopPlayback``); a SIP INFO digit stops it through ``StopPlayback``;
* ``Record``: ``call.record`` (mono WAV under ``recordings``), stopped by a
  terminator digit, ``max_duration`` or ``silence_timeout`` of silence
  (measured on the file as the engine writes it); a ``recording.ready``
  event carries the path to the event log;
* ``Lookup``: :class:`~orchestrator.ivr.runner_http.CrmClient` (HTTP GET/POST
  or JSON-RPC) bounded by the node's timeout;
* ``Enqueue``: :meth:`AcdService.queue_call` with the skills, priority,
  the flow's ``max_wait`` and the variables as screen-pop data; digits go to
  the ACD while the call waits (the callback key);
* ``RequestCallback``: :meth:`AcdService.request_callback`;
* ``Transfer``: ``call.connect`` to the extension or URI; ``Hangup``.

``call.ivr`` events (node entered, digits collected, the flow's end with its
variables) go to ``record`` (the event log and the JSON-RPC bus); a survey
score becomes ``call.survey``. After an agent answered a queued call, a
configured post-call survey takes the caller back when the agent hangs up
(``Call.keep_caller``), on the flows the call started with.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import struct
import tempfile
import time
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trio

from .effects import (
    CancelTimer,
    DigitsCollected,
    Enqueue,
    FlowEnded,
    Hangup,
    Lookup,
    NodeEntered,
    Play,
    Record,
    RequestCallback,
    SetVariable,
    StartTimer,
    StopPlayback,
    Transfer,
)
from .events import Digit, Event, LookupFailed, LookupResult, PlaybackDone, QueueResult, RecordDone, Timeout
from .registry import FlowRegistry
from .runner_http import CrmClient, CrmLookupError
from .session import Session

__all__ = ["IvrRunner", "IvrRunnerStatistics", "write_beep"]

log = logging.getLogger("hotline.ivr")

_SURVEY_VARIABLE = "survey_score"


def write_beep(path: str | Path, *, freq: float = 1000.0, seconds: float = 0.25, rate: int = 8000) -> Path:
    """Write a short sine beep (mono 16-bit WAV): the tone before a voicemail recording."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    pcm = (8000 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)
    return path


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy (tuples -> lists, mappings -> dicts, other objects -> str)."""
    if depth > 16:
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _user_of(uri: str) -> str:
    if ":" not in uri:
        return uri
    rest = uri.split(":", 1)[1]
    return rest.split("@", 1)[0].split(";", 1)[0] if "@" in rest else ""


@dataclass(frozen=True, kw_only=True)
class IvrRunnerStatistics:
    """Counters of the runner (``digits_collected``: DigitsCollected reports, i.e. digit entries)."""

    sessions_started: int
    sessions_active: int
    outcomes: Mapping[str, int]
    digits_received: int
    digits_collected: int
    barge_ins: int
    prompts_played: int
    prompt_errors: int
    timers_fired: int
    lookups: int
    lookups_failed: int
    lookups_timed_out: int
    recordings: int
    enqueued: int
    transfers: int
    callbacks_requested: int
    surveys_started: int
    surveys_scored: int
    events_recorded: int
    record_errors: int
    ignored_events: int


class _Playing:
    __slots__ = ("playback", "stopped", "stopped_event")

    def __init__(self) -> None:
        self.playback: Any = None
        self.stopped = False
        self.stopped_event = trio.Event()

    def stop(self) -> None:
        self.stopped = True
        self.stopped_event.set()
        if self.playback is not None:
            self.playback.stop()


class _Recording:
    __slots__ = ("stop", "terminators")

    def __init__(self, terminators: str) -> None:
        self.terminators = terminators
        self.stop = trio.Event()


class _CallRun:
    """One session on one call: the event loop and the tasks carrying out its effects."""

    def __init__(self, runner: IvrRunner, call: Any, session: Session, nursery: trio.Nursery) -> None:
        self.runner = runner
        self.call = call
        self.session = session
        self.nursery = nursery
        self.send, self.receive = trio.open_memory_channel[Event](math.inf)
        self.plays: dict[int, _Playing] = {}
        self.timers: dict[int, trio.CancelScope] = {}
        self.lookup_scope: trio.CancelScope | None = None
        self.recording: _Recording | None = None
        self.queue_digits: trio.MemorySendChannel | None = None
        self.queue_outcome: Any = None
        self.transfer: str | None = None
        self.hangup: str | None = None
        self.ended: FlowEnded | None = None

    # -- feeding --------------------------------------------------------------------------------
    def post(self, event: Event) -> None:
        try:
            self.send.send_nowait(event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def feed(self, event: Event) -> None:
        self.execute(self.session.handle(event, now=self.runner.clock()))

    async def pump_digits(self) -> None:
        stats = self.runner._n
        call = self.call
        while True:
            try:
                digit = await call.receive_digit()
            except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                return
            stats["digits"] += 1
            if self.queue_digits is not None:
                with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                    self.queue_digits.send_nowait(digit)
                continue
            rec = self.recording
            if rec is not None and digit.digit in rec.terminators:
                rec.stop.set()
                continue
            self.post(Digit(digit=digit.digit))

    # -- effects --------------------------------------------------------------------------------
    def execute(self, effects: list) -> None:
        runner = self.runner
        for effect in effects:
            kind = type(effect)
            if kind is NodeEntered:
                runner._record({"type": "call.ivr", "call": self.call.id, "event": "node_entered",
                                "flow": effect.flow, "node": effect.node, "node_type": effect.node_type,
                                "version": self.session.version})
            elif kind is Play:
                playing = self.plays[effect.play_id] = _Playing()
                self.nursery.start_soon(self._play, effect, playing)
            elif kind is StopPlayback:
                playing = self.plays.pop(effect.play_id, None)
                if playing is not None:
                    playing.stop()
            elif kind is StartTimer:
                scope = self.timers[effect.timer_id] = trio.CancelScope()
                self.nursery.start_soon(self._timer, effect, scope)
            elif kind is CancelTimer:
                scope = self.timers.pop(effect.timer_id, None)
                if scope is not None:
                    scope.cancel()
            elif kind is DigitsCollected:
                runner._n["collected"] += 1
                runner._record({"type": "call.ivr", "call": self.call.id, "event": "digits", "flow": effect.flow,
                                "node": effect.node, "digits": effect.digits})
            elif kind is SetVariable:
                pass  # the flow's variables reach the record with FlowEnded
            elif kind is Lookup:
                self.nursery.start_soon(self._lookup, effect)
            elif kind is Record:
                self.nursery.start_soon(self._record_message, effect)
            elif kind is Enqueue:
                self.nursery.start_soon(self._enqueue, effect)
            elif kind is RequestCallback:
                runner._request_callback(self.call, effect)
            elif kind is Transfer:
                self.transfer = effect.target
            elif kind is Hangup:
                self.hangup = effect.reason
            elif kind is FlowEnded:
                self.ended = effect

    async def _play(self, effect: Play, playing: _Playing) -> None:
        runner = self.runner
        for path in effect.prompts:
            if playing.stopped:
                return
            try:
                playback = self.call.play(file=path, stop_on_dtmf=effect.barge_in)
            except (RuntimeError, ValueError, KeyError) as exc:
                runner._n["prompt_errors"] += 1
                log.info("ivr: call %s cannot play %s: %s", self.call.id, path, exc)
                continue
            runner._n["prompts"] += 1
            playing.playback = playback
            try:
                reason = await playback.wait()
            finally:
                playback.stop()
            if playing.stopped or reason == "leg_gone":
                return
            if reason == "dtmf":
                # The engine stopped the prompt on a digit's first packet: the digit follows and
                # the session stops the play; if no digit comes, the prompt counts as played.
                runner._n["barge_ins"] += 1
                with trio.move_on_after(runner.barge_in_grace):
                    await playing.stopped_event.wait()
                if playing.stopped:
                    return
                break
            if reason == "stopped":
                return
        if self.plays.get(effect.play_id) is playing:
            del self.plays[effect.play_id]
            self.post(PlaybackDone(play_id=effect.play_id))

    async def _timer(self, effect: StartTimer, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(effect.seconds)
            if self.timers.get(effect.timer_id) is scope:
                del self.timers[effect.timer_id]
                self.runner._n["timers"] += 1
                self.post(Timeout(timer_id=effect.timer_id))

    async def _lookup(self, effect: Lookup) -> None:
        runner = self.runner
        runner._n["lookups"] += 1
        result: dict | None = None
        reason = "timeout"
        with trio.move_on_after(effect.timeout):
            try:
                result = await runner.crm.lookup(effect.kind, effect.target, effect.params)
            except CrmLookupError as exc:
                reason = "error"
                log.info("ivr: call %s lookup %s failed: %s", self.call.id, effect.target, exc)
        if result is not None:
            self.post(LookupResult(data=result, request_id=effect.request_id))
            return
        runner._n["lookups_failed"] += 1
        if reason == "timeout":
            runner._n["lookups_timeout"] += 1
        self.post(LookupFailed(reason=reason, request_id=effect.request_id))

    async def _record_message(self, effect: Record) -> None:
        path, duration = await self.runner.record_message(
            self.call, name=effect.name, max_duration=effect.max_duration,
            silence_timeout=effect.silence_timeout, terminators=effect.terminators, beep=effect.beep, run=self)
        self.post(RecordDone(path=path, duration=duration))

    async def _enqueue(self, effect: Enqueue) -> None:
        runner = self.runner
        acd = runner.acd
        if acd is None:
            self.post(QueueResult(outcome="unavailable"))
            return
        runner._n["enqueued"] += 1
        if runner.survey_for(effect.queue) is not None:
            self.call.keep_caller = True
        send, receive = trio.open_memory_channel(64)
        self.queue_digits = send
        try:
            outcome = await acd.queue_call(self.call, effect.queue, priority=effect.priority,
                                           skills=list(effect.skills), data=_jsonable(effect.data),
                                           max_wait=effect.max_wait, digits=receive)
        except ValueError as exc:  # a queue name or skill the ACD refuses
            log.info("ivr: call %s cannot be queued in %r: %s", self.call.id, effect.queue, exc)
            outcome = None
        finally:
            self.queue_digits = None
            send.close()
        self.queue_outcome = outcome
        if outcome is None:
            self.post(QueueResult(outcome="unavailable"))
        elif outcome.result == "answered":
            self.post(QueueResult(outcome="answered"))
        elif outcome.result in ("timeout", "unavailable"):
            self.post(QueueResult(outcome=outcome.result))
        elif outcome.result == "callback":
            # The caller chose a callback while holding and was told so: the call is done.
            await self.call.hangup("callback")


class IvrRunner:
    """Runs IVR flows on calls (see the module docstring).

    ``registry``: the flows (hot reloadable). ``acd``: the
    :class:`~orchestrator.acd.service.AcdService` for queue, callback and
    voicemail nodes (None: queue nodes answer ``unavailable``). ``record``:
    called with each event (a dict), never blocks. ``crm``: the lookup
    client. ``recordings``: directory for voicemail. ``surveys``: queue name
    -> survey flow run after the agent hangs up (``"*"``: any queue).
    ``clock``: the flows' ``now`` (POSIX seconds: business hours).
    ``barge_in_grace``: how long a prompt stopped by the engine on a digit
    waits for that digit before counting as played.
    """

    def __init__(self, registry: FlowRegistry, *, acd: Any = None, record: Callable[[Any], None] | None = None,
                 crm: CrmClient | None = None, recordings: str | Path | None = None,
                 surveys: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time,
                 beep: str | Path | None = None, barge_in_grace: float = 1.0,
                 transfer_ring_timeout: float = 30.0, voicemail_prompt: str | None = None) -> None:
        if not isinstance(registry, FlowRegistry):
            raise ValueError(f"registry: expected a FlowRegistry, got {type(registry).__name__}")
        if record is not None and not callable(record):
            raise ValueError("record: must be callable with one event")
        if crm is not None and not isinstance(crm, CrmClient):
            raise ValueError("crm: must be a CrmClient")
        surveys = dict(surveys or {})
        for queue, flow in surveys.items():
            if not isinstance(queue, str) or not isinstance(flow, str) or not flow:
                raise ValueError(f"surveys[{queue!r}]: must map a queue name (or '*') to a flow name")
        if not barge_in_grace >= 0:
            raise ValueError(f"barge_in_grace: must be >= 0 s, got {barge_in_grace!r}")
        if not transfer_ring_timeout > 0:
            raise ValueError(f"transfer_ring_timeout: must be > 0 s, got {transfer_ring_timeout!r}")
        self.registry = registry
        self.acd = acd
        self.record = record
        self.crm = crm or CrmClient()
        self.surveys = surveys
        self.clock = clock
        self.barge_in_grace = float(barge_in_grace)
        self.transfer_ring_timeout = float(transfer_ring_timeout)
        self.voicemail_prompt = voicemail_prompt
        self._tmp: tempfile.TemporaryDirectory | None = None
        if recordings is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hotline-voicemail-")
            recordings = self._tmp.name
        self.recordings = Path(recordings)
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.beep = str(beep) if beep is not None else str(write_beep(self.recordings / ".beep.wav"))
        self._active = 0
        self._started = 0
        self._ignored = 0
        self._outcomes: dict[str, int] = {}
        self._names = itertools.count(1)
        self._n = dict.fromkeys(("digits", "collected", "barge_ins", "prompts", "prompt_errors", "timers",
                                 "lookups", "lookups_failed", "lookups_timeout", "recordings", "enqueued",
                                 "transfers", "callbacks", "surveys", "scored", "recorded", "record_errors"), 0)

    # ------------------------------------------------------------------ service
    async def run(self, *, task_status: trio.TaskStatus[IvrRunner] = trio.TASK_STATUS_IGNORED) -> None:
        """The runner as a service: nothing runs between calls; on exit its temporary files go."""
        try:
            task_status.started(self)
            await trio.sleep_forever()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()

    def survey_for(self, queue: str | None) -> str | None:
        """The survey flow of ``queue`` (or the ``*`` default), if any."""
        if queue is not None and queue in self.surveys:
            return self.surveys[queue]
        return self.surveys.get("*")

    def _record(self, event: dict) -> None:
        event.setdefault("at", self.clock())
        self._n["recorded"] += 1
        if self.record is None:
            return
        try:
            self.record(event)
        except Exception:
            self._n["record_errors"] += 1
            log.exception("ivr: recording %s failed", event.get("type"))

    # ------------------------------------------------------------------ the CallHandler
    async def handle(self, call: Any, target: Any) -> None:
        """Run the flow ``target.flow`` on ``call`` (the B2BUA's handler for IVR routes)."""
        flow = getattr(target, "flow", None)
        try:
            session = self.registry.start(flow)
        except ValueError:
            log.warning("ivr: call %s routed to unknown flow %r", call.id, flow)
            await call.hangup("no_such_flow", status=404)
            return
        if not await call.answer():
            return
        await self.run_session(call, session, self.variables(call))

    def variables(self, call: Any) -> dict[str, Any]:
        """The variables a call starts with: caller_id, caller_uri, caller_name, called, call_id."""
        caller = getattr(call, "caller", "") or ""
        return {"caller_id": _user_of(caller), "caller_uri": caller,
                "caller_name": getattr(call, "caller_display", None) or "",
                "called": getattr(call, "callee", "") or "", "call_id": call.id}

    async def run_session(self, call: Any, session: Session, variables: Mapping[str, Any]) -> FlowEnded | None:
        """Drive ``session`` on ``call`` to its end, then do what it ended with (transfer, hang-up,
        the agent's conversation and the survey). Returns the FlowEnded (None if the caller left)."""
        self._started += 1
        self._active += 1
        run: _CallRun | None = None
        try:
            async with trio.open_nursery() as nursery:
                run = _CallRun(self, call, session, nursery)
                nursery.start_soon(run.pump_digits)
                run.execute(session.call_started(dict(variables), now=self.clock()))
                while run.ended is None:
                    run.feed(await run.receive.receive())
                nursery.cancel_scope.cancel()
        finally:
            self._active -= 1
            if not session.finished:
                # The caller hung up (the call's end cancelled us): the flow hears it, so the
                # node's hang-up is counted, and its end is recorded like any other.
                for effect in session.hangup(now=self.clock()):
                    if isinstance(effect, FlowEnded):
                        self._flow_ended(call, effect)
            self._ignored += session.ignored_events
        assert run is not None and run.ended is not None
        ended = run.ended
        self._flow_ended(call, ended)
        await self._after(call, session, run, ended)
        return ended

    def _flow_ended(self, call: Any, ended: FlowEnded) -> None:
        self._outcomes[ended.outcome] = self._outcomes.get(ended.outcome, 0) + 1
        data = _jsonable(ended.variables)
        self._record({"type": "call.ivr", "call": call.id, "event": "flow_ended", "outcome": ended.outcome,
                      "flow": ended.flow, "node": ended.node, "data": data})
        if isinstance(getattr(call, "data", None), dict):
            call.data.setdefault("ivr", {}).update(data)
        score = ended.variables.get(_SURVEY_VARIABLE)
        if isinstance(score, int) and not isinstance(score, bool):
            self._n["scored"] += 1
            self._record({"type": "call.survey", "call": call.id, "score": score, "flow": ended.flow})

    async def _after(self, call: Any, session: Session, run: _CallRun, ended: FlowEnded) -> None:
        outcome = ended.outcome
        if outcome == "answered":
            queued = run.queue_outcome
            await self.after_agent(call, getattr(queued, "queue", None), flows=session.flows,
                                   variables=dict(session.variables))
            return
        if outcome == "transfer" and run.transfer is not None:
            await self.transfer(call, run.transfer)
            return
        if outcome == "hangup" and run.queue_outcome is not None and (run.hangup or "").startswith("queue "):
            # The flow has no branch for this queue outcome: the queue's own destination applies.
            destination = getattr(run.queue_outcome, "destination", None) or ""
            if destination.startswith(("voicemail:", "extension:")):
                await self.destination(call, destination)
                return
        if outcome != "caller_hangup" and not call.ended:
            await call.hangup(f"ivr_{outcome}")

    # ------------------------------------------------------------------ after the flow
    async def after_agent(self, call: Any, queue: str | None, *, flows: Any = None,
                          variables: Mapping[str, Any] | None = None) -> None:
        """The caller is talking to an agent: wait until the agent leaves, tell the ACD, and run
        the queue's survey when one is configured (the caller stays: ``keep_caller``)."""
        with trio.move_on_after(10):  # the ACD decided; the bridge follows at once
            while call.b is None and not call.ended:
                await trio.sleep(0.01)
        await call.wait_callee_gone()
        if self.acd is not None:
            self.acd.call_gone(call.id)
        survey = self.survey_for(queue)
        if survey is None or call.ended or not call.keep_caller:
            return
        flows = flows if flows is not None else self.registry.flows
        if survey not in flows:
            log.warning("ivr: survey flow %r is not loaded; call %s not surveyed", survey, call.id)
            return
        while True:  # digits typed during the conversation are not survey answers
            try:
                call.receive_digit_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                break
        self._n["surveys"] += 1
        session = Session(flows, survey, metrics=self.registry.metrics, max_typeahead=self.registry.max_typeahead)
        start = self.variables(call)
        if variables and "language" in variables:
            start["language"] = variables["language"]
        start["queue"] = queue or ""
        call.keep_caller = False
        await self.run_session(call, session, start)

    async def transfer(self, call: Any, target: str) -> bool:
        """Blind-transfer ``call`` to an extension or URI (the IVR is done); hang up if nobody answers."""
        self._n["transfers"] += 1
        result = await call.connect(target, ring_timeout=self.transfer_ring_timeout)
        if result.answered:
            self._record({"type": "call.transferred", "call": call.id, "to": target, "mode": "ivr",
                          "peer": result.peer})
            return True
        if not call.ended:
            await call.hangup(f"transfer_{result.cause}")
        return False

    async def destination(self, call: Any, destination: str) -> None:
        """Carry out a queue destination for a call that left a queue: ``voicemail:box``,
        ``extension:N``, ``hangup[:code]``."""
        kind, _, target = destination.partition(":")
        if kind == "voicemail":
            await self.voicemail(call, target or "default")
        elif kind == "extension" and target:
            await self.transfer(call, target)
        if not call.ended and (call.b is None):
            await call.hangup(f"queue_{kind or 'exit'}")

    async def voicemail(self, call: Any, mailbox: str, *, max_duration: float = 120.0,
                        silence_timeout: float = 5.0) -> tuple[str, float]:
        """Play the voicemail greeting (if configured), beep, record; the path goes to the log."""
        if self.voicemail_prompt:
            try:
                await call.play(file=self.voicemail_prompt).wait()
            except (RuntimeError, ValueError, KeyError):
                self._n["prompt_errors"] += 1
        return await self.record_message(call, name=f"voicemail.{mailbox}", max_duration=max_duration,
                                         silence_timeout=silence_timeout, terminators="#", beep=True)

    # ------------------------------------------------------------------ recording
    async def record_message(self, call: Any, *, name: str, max_duration: float, silence_timeout: float,
                             terminators: str, beep: bool, run: _CallRun | None = None) -> tuple[str, float]:
        """Record the caller into a new WAV; stop on a terminator digit, ``max_duration`` or
        ``silence_timeout`` of silence. Returns (path, seconds); ('', 0.0) when nothing was kept."""
        if beep:
            try:
                await call.play(file=self.beep).wait()
            except (RuntimeError, ValueError, KeyError):
                self._n["prompt_errors"] += 1
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        path = self.recordings / f"{call.id}-{safe}-{next(self._names)}.wav"
        try:
            recorder = call.record(path, format="wav", stereo=False)
        except (RuntimeError, ValueError, KeyError) as exc:
            log.info("ivr: call %s cannot record: %s", call.id, exc)
            return "", 0.0
        rec = _Recording(terminators)
        if run is not None:
            run.recording = rec
        stopped_by = "max_duration"
        try:
            async with trio.open_nursery() as nursery:
                async def on_silence() -> None:
                    nonlocal stopped_by
                    await _wait_silence(path, silence_timeout)
                    stopped_by = "silence"
                    nursery.cancel_scope.cancel()

                async def on_terminator() -> None:
                    nonlocal stopped_by
                    if run is None:  # not fed by a session's digit pump: read digits here
                        try:
                            while (await call.receive_digit()).digit not in terminators:
                                pass
                        except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                            stopped_by = "hangup"
                            nursery.cancel_scope.cancel()
                            return
                    else:
                        await rec.stop.wait()
                    stopped_by = "terminator"
                    nursery.cancel_scope.cancel()

                nursery.start_soon(on_silence)
                nursery.start_soon(on_terminator)
                await trio.sleep(max_duration)
                nursery.cancel_scope.cancel()
        finally:
            if run is not None:
                run.recording = None
            with contextlib.suppress(KeyError, RuntimeError, ValueError):
                call.engine.stop_recording(recorder)
        with trio.move_on_after(3.0):
            await _finished_seconds(path)
        duration = _wav_seconds(path)
        self._n["recordings"] += 1
        kept = str(path) if duration > 0 else ""
        self._record({"type": "recording.ready", "call": call.id, "recording": str(path), "kind": "voicemail",
                      "name": name, "duration": duration, "stopped_by": stopped_by})
        return kept, duration

    # ------------------------------------------------------------------ callbacks
    def _request_callback(self, call: Any, effect: RequestCallback) -> None:
        self._n["callbacks"] += 1
        if self.acd is None:
            log.warning("ivr: call %s asked for a callback but no ACD is attached", call.id)
            return
        ok = self.acd.request_callback(call.id, effect.queue, effect.number, data=_jsonable(effect.data))
        self._record({"type": "call.ivr", "call": call.id, "event": "callback", "queue": effect.queue,
                      "number": effect.number, "registered": bool(ok)})

    # ------------------------------------------------------------------ statistics
    def statistics(self) -> IvrRunnerStatistics:
        n = self._n
        return IvrRunnerStatistics(
            sessions_started=self._started, sessions_active=self._active, outcomes=dict(self._outcomes),
            digits_received=n["digits"], digits_collected=n["collected"], barge_ins=n["barge_ins"],
            prompts_played=n["prompts"], prompt_errors=n["prompt_errors"], timers_fired=n["timers"],
            lookups=n["lookups"], lookups_failed=n["lookups_failed"], lookups_timed_out=n["lookups_timeout"],
            recordings=n["recordings"], enqueued=n["enqueued"], transfers=n["transfers"],
            callbacks_requested=n["callbacks"], surveys_started=n["surveys"], surveys_scored=n["scored"],
            events_recorded=n["recorded"], record_errors=n["record_errors"], ignored_events=self._ignored)


# ---------------------------------------------------------------------- WAV helpers

def _wav_layout(head: bytes) -> tuple[int, int, int, int] | None:
    """(data offset, sample rate, channels, bits) of a RIFF/WAVE header, or None."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    rate = channels = bits = 0
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt " and pos + 24 <= len(head):
            _fmt, channels, rate = struct.unpack_from("<HHI", head, pos + 8)
            bits = struct.unpack_from("<H", head, pos + 22)[0]
        elif chunk == b"data":
            return (pos + 8, rate, channels, bits) if rate and channels and bits == 16 else None
        pos += 8 + size + (size & 1)
    return None


async def _wait_silence(path: Path, silence_timeout: float, *, threshold: float = 500.0,
                        poll: float = 0.2) -> None:
    """Return once the recording at ``path`` has ended in ``silence_timeout`` s of audio whose
    20 ms frames all stay under ``threshold`` RMS (about -36 dBFS)."""
    offset = 0
    layout = None
    silent = 0.0
    while True:
        await trio.sleep(poll)
        if layout is None:
            layout = _wav_layout(await trio.to_thread.run_sync(_read_at, path, 0, 512))
            if layout is None:
                continue
            offset = layout[0]
        data = await trio.to_thread.run_sync(_read_at, path, offset, -1)
        _, rate, channels, _ = layout
        frame = rate // 50 * channels * 2
        whole = len(data) // frame * frame
        if not whole:
            continue
        offset += whole
        pcm = np.frombuffer(data[:whole], dtype="<i2").astype(np.float64).reshape(-1, rate // 50 * channels)
        for rms in np.sqrt((pcm * pcm).mean(axis=1)):
            silent = silent + 0.02 if rms < threshold else 0.0
        if silent >= silence_timeout:
            return


async def _finished_seconds(path: Path) -> None:
    """Wait until the engine's writer has finalized the WAV header (sizes match the file)."""
    while True:
        head = await trio.to_thread.run_sync(_read_at, path, 0, 8)
        try:
            size = os.path.getsize(path)
        except OSError:
            size = -1
        if len(head) == 8 and head[:4] == b"RIFF" and struct.unpack_from("<I", head, 4)[0] == size - 8:
            return
        await trio.sleep(0.05)


def _read_at(path: Path, offset: int, count: int) -> bytes:
    """Bytes of ``path`` from ``offset`` (``count`` -1: to the end); b'' if it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(count)
    except OSError:
        return b""


def _wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (OSError, wave.Error, EOFError, ZeroDivisionError):
        return 0.0
