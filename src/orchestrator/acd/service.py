"""The ACD as a live service on Trio: real calls in, the pure policy's decisions carried out.

:class:`AcdService` feeds :class:`~orchestrator.acd.Acd` (DESIGN rule 4: the
policy decides, this module only does) with what happens to calls, agents
and devices, and executes the effects it returns:

* **calls in**: :meth:`AcdService.queue_call` takes a live, answered
  :class:`~orchestrator.calls.Call` (from the IVR's queue node or a dial-plan
  queue route) and returns a :class:`QueueOutcome` when an agent answered,
  the call left (timeout, full, empty, escalation) or the caller chose a
  callback. Waiting callers hear music on hold, position and estimated-wait
  announcements and comfort prompts between the music, and may be offered a
  callback ("press 1"): they hang up and keep their place;
* **offers**: each ``Offer`` rings the agent's device with
  :meth:`Call.connect`; the answer is put to the policy the moment the 2xx
  arrives (``connect(accept=...)``), so in a ring-all race exactly one agent
  gets the call and the others are hung up; a ring timeout is the policy's
  own timer (RONA), the SIP ring timeout is a little longer; busy and
  declined answers are reported as such;
* **callbacks**: ``DialCallback`` / callback offers originate the call
  through :meth:`CallManager.originate` - agent first (the agent answers,
  then the customer is dialled) or caller first, per queue;
* **agents and devices**: :meth:`login`, :meth:`logout`, :meth:`set_state`
  (what the JSON-RPC layer calls), device registration from the registrar,
  device busy/idle from the B2BUA's call events (an agent on a personal call
  is not offered a queue call);
* **time**: one timer task sleeps until :meth:`Acd.next_deadline` and calls
  :meth:`Acd.tick` - ring timeouts, wrap-up ends, announcements, escalation.

Every event record the policy returns is handed, in order, to ``record``
(the event log and the JSON-RPC event bus: see :mod:`orchestrator.callcentre`).
The policy's ``now`` is Unix time that never goes backwards: the wall clock
read once when the service first needs it, advanced by the Trio clock.

Structured concurrency: ``await nursery.start(service.run)``; offers and
callback calls are tasks of that nursery; the media of a waiting caller runs
in the task that called :meth:`queue_call` and stops with it (a caller who
hangs up cancels it). Nothing here blocks the event loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from . import effects as fx
from . import events as ev
from .errors import ConflictError, NotFoundError
from .policy import Acd, AcdStatistics

__all__ = [
    "AcdService",
    "AcdServiceStatistics",
    "QueueOutcome",
    "QueuePrompts",
    "ServiceClock",
]

log = logging.getLogger("hotline.acd")

#: QueueOutcome.result values
QUEUE_RESULTS = ("answered", "timeout", "unavailable", "callback", "gone")

_ENDING = (ev.CallAbandoned, ev.CallExited, ev.CallRejected, ev.CallEnded)
_CALLER_GONE_CAUSES = ("busy", "rejected", "no_answer", "not_found", "failed", "cancelled")


class ServiceClock:
    """Unix seconds that never go backwards: the wall clock read once, then the Trio clock.

    Used as the policy's ``now`` so event records carry real times (the event
    log and reports read them as Unix time) while timers follow the Trio
    clock (the autojump clock in tests). Outside Trio it falls back to the
    wall clock, still never going backwards.
    """

    def __init__(self) -> None:
        self._wall0: float | None = None
        self._trio0 = 0.0
        self._last = -math.inf

    def _base(self) -> bool:
        try:
            t = trio.current_time()
        except RuntimeError:
            return False
        if self._wall0 is None:
            self._wall0 = time.time()
            self._trio0 = t
        return True

    def __call__(self) -> float:
        if self._base():
            now = self._wall0 + (trio.current_time() - self._trio0)  # type: ignore[operator]
        else:
            now = time.time()
        now = max(now, self._last)
        self._last = now
        return now

    def to_trio(self, at: float) -> float:
        """The Trio clock reading at which this clock shows ``at``."""
        if not self._base():
            raise RuntimeError("to_trio: needs a running Trio loop")
        return self._trio0 + (at - self._wall0)  # type: ignore[operator]


@dataclass(frozen=True, kw_only=True)
class QueuePrompts:
    """The audio a waiting caller hears (mono WAV files).

    ``directory/<name>.wav`` holds the spoken pieces; a missing file is
    skipped (and counted in ``prompts_missing``), never an error. ``music``
    maps a queue's ``music`` name to a WAV looped while the caller waits
    (a name that is not there: no music, silence).

    The position announcement is ``position`` + ``number_<n>``; the wait
    announcement is ``wait`` + ``number_<minutes>`` + ``minutes`` (or
    ``wait_short`` under a minute, nothing when the wait is unknown).
    """

    directory: Path | None = None
    music: Mapping[str, str] = field(default_factory=dict)
    position: str = "queue_position"
    wait: str = "queue_wait"
    wait_short: str = "queue_wait_short"
    minutes: str = "queue_minutes"
    number_prefix: str = "number_"
    callback_option: str = "queue_callback_option"
    callback_confirmed: str = "queue_callback_confirmed"
    callback_key: str = "1"
    callback_listen: float = 8.0
    voicemail: str = "queue_voicemail"
    beep: str | None = None

    def __post_init__(self) -> None:
        if self.directory is not None:
            object.__setattr__(self, "directory", Path(self.directory))
        object.__setattr__(self, "music", dict(self.music))
        if len(self.callback_key) != 1 or self.callback_key not in "0123456789*#":
            raise ValueError(f"callback_key: must be one DTMF digit, got {self.callback_key!r}")
        if not self.callback_listen > 0:
            raise ValueError(f"callback_listen: must be > 0 s, got {self.callback_listen!r}")

    def file(self, name: str) -> str | None:
        """The WAV of prompt ``name``, or None when there is none."""
        if self.directory is None or not name:
            return None
        path = self.directory / f"{name}.wav"
        return str(path) if path.is_file() else None

    def announcement(self, position: int | None, ewt: float | None) -> tuple[list[str], int]:
        """(files, pieces missing) for a position/wait announcement."""
        names: list[str] = []
        if position is not None:
            names += [self.position, f"{self.number_prefix}{position}"]
        if ewt is not None:
            minutes = math.ceil(ewt / 60.0)
            if ewt < 60:
                names.append(self.wait_short)
            else:
                names += [self.wait, f"{self.number_prefix}{minutes}", self.minutes]
        files = [self.file(n) for n in names]
        return [f for f in files if f is not None], sum(1 for f in files if f is None)


@dataclass(frozen=True, kw_only=True)
class QueueOutcome:
    """How a call's stay in the ACD ended.

    ``result``: ``answered`` (bridged to ``agent``), ``timeout`` (left after a
    wait limit: the queue's own, an escalation, or the IVR's ``max_wait``),
    ``unavailable`` (refused at the door: full, empty, no such queue),
    ``callback`` (the caller chose a callback and was hung up; the call keeps
    its place), ``gone`` (the caller hung up). ``destination`` is the queue's
    destination for a call that left (``voicemail:box``, ``hangup``,
    ``extension:100``; ``ivr`` for the flow's own timeout).
    """

    result: str
    queue: str
    agent: str | None = None
    destination: str | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class AcdServiceStatistics:
    """Counters of the live service, with the policy's own."""

    policy: AcdStatistics
    calls_waiting: int
    calls_connected: int
    offers_ringing: int
    calls_queued: int
    offers_started: int
    offers_answered: int
    answers_refused: int
    offers_failed: int
    callbacks_requested: int
    callbacks_dialed: int
    callbacks_connected: int
    prompts_played: int
    prompts_missing: int
    events_recorded: int
    record_errors: int
    effect_errors: int


class _Waiting:
    """A live caller in the ACD (from queue_call until it returns)."""

    __slots__ = ("agent", "bridged", "call", "callback_armed", "caller_number", "done", "media", "outcome",
                 "playing", "queue")

    def __init__(self, call: Any, queue: str, caller_number: str | None) -> None:
        self.call = call
        self.queue = queue
        self.caller_number = caller_number
        self.done = trio.Event()
        self.bridged = trio.Event()  # set when the answering agent's connect has returned
        self.outcome: QueueOutcome | None = None
        self.agent: str | None = None
        send, receive = trio.open_memory_channel[tuple](64)
        self.media = (send, receive)
        self.playing: Any = None
        self.callback_armed = False

    def finish(self, outcome: QueueOutcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
            if self.playing is not None:
                self.playing.stop()
            self.done.set()

    def request(self, item: tuple) -> None:
        try:
            self.media[0].send_nowait(item)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass


class _Callback:
    """A callback: the original call id the policy knows, and the call that dials it."""

    __slots__ = ("call", "mode", "number", "offer", "queue")

    def __init__(self, number: str, queue: str) -> None:
        self.number = number
        self.queue = queue
        self.call: Any = None  # the originated Call while dialling / connected
        self.mode = ""
        self.offer: int | None = None


def _user_of(uri: str) -> str | None:
    if not uri:
        return None
    if ":" not in uri:
        return uri
    rest = uri.split(":", 1)[1]
    return rest.split("@", 1)[0].split(";", 1)[0] if "@" in rest else None


class AcdService:
    """The Trio side of :class:`~orchestrator.acd.Acd` (see the module docstring).

    ``acd``: the policy (its queues and agents configured). ``manager``: the
    B2BUA's :class:`~orchestrator.calls.CallManager`, needed to dial
    callbacks (may be set later with :meth:`bind`). ``record``: called with
    every event record, in order (never blocks). ``prompts``: what waiting
    callers hear. ``ring_grace``: seconds the SIP ring outlasts the policy's
    ring timeout, so the policy's timer decides RONA. ``events``: where
    ``queue.stats`` reads the ACD events of a period (default: the events
    this service recorded, newest ``history`` kept).
    """

    def __init__(self, acd: Acd, *, manager: Any = None, record: Callable[[Any], None] | None = None,
                 prompts: QueuePrompts | None = None, ring_grace: float = 2.0,
                 events: Callable[..., Iterable[Any]] | None = None, history: int = 100_000,
                 clock: ServiceClock | None = None) -> None:
        if not isinstance(acd, Acd):
            raise ValueError(f"acd: expected an Acd, got {type(acd).__name__}")
        if record is not None and not callable(record):
            raise ValueError("record: must be callable with one event record")
        if prompts is not None and not isinstance(prompts, QueuePrompts):
            raise ValueError("prompts: must be a QueuePrompts")
        if not isinstance(ring_grace, (int, float)) or isinstance(ring_grace, bool) or not ring_grace >= 0:
            raise ValueError(f"ring_grace: must be a number of seconds >= 0, got {ring_grace!r}")
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise ValueError(f"history: must be an int >= 0, got {history!r}")
        self.acd = acd
        self.manager = manager
        self.record = record
        self.prompts = prompts or QueuePrompts()
        self.ring_grace = float(ring_grace)
        self.clock = clock or ServiceClock()
        self._events_source = events
        self._history: deque = deque(maxlen=history)
        self._nursery: trio.Nursery | None = None
        self._wakeup = trio.Event()
        self._waiting: dict[str, _Waiting] = {}
        self._in_acd: set[str] = set()
        self._connected: dict[str, str] = {}
        self._offers: dict[int, trio.CancelScope] = {}
        self._offer_calls: dict[int, str] = {}
        self._callbacks: dict[str, _Callback] = {}
        self._dialing: dict[str, str] = {}  # originated call id -> ACD call id
        self._agent_devices: dict[str, str] = {}  # device -> agent logged in on it
        self._busy: dict[str, set[str]] = {}  # device -> ids of its non-queue calls
        self._known_devices: set[str] = set()  # devices registered or logged in on: busy/idle matters
        self._failures: dict[str, deque] = {}
        self._deferred: deque = deque()
        self._applying = False
        self._n = dict.fromkeys(("queued", "offers", "answered", "refused", "failed", "cb_requested",
                                 "cb_dialed", "cb_connected", "played", "missing", "recorded", "record_errors",
                                 "effect_errors"), 0)

    # ------------------------------------------------------------------ running
    def bind(self, manager: Any) -> None:
        """Set the B2BUA (CallManager) used to dial callbacks."""
        self.manager = manager

    def now(self) -> float:
        """The policy's ``now`` (Unix seconds, never backwards)."""
        return self.clock()

    async def run(self, *, task_status: trio.TaskStatus[AcdService] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the policy's timers (and host offers and callbacks) until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started(self)
                await self._timers()
            finally:
                self._nursery = None

    async def _timers(self) -> None:
        while True:
            deadline = self.acd.next_deadline()
            wake = self._wakeup
            if deadline is None:
                await wake.wait()
            else:
                with trio.move_on_at(self.clock.to_trio(deadline)):
                    await wake.wait()
            if wake is self._wakeup:
                self._wakeup = trio.Event()
            deadline = self.acd.next_deadline()
            now = self.now()
            if deadline is not None and deadline <= now:
                self._apply(self.acd.tick(now))

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> bool:
        if self._nursery is None:
            log.warning("acd: the service is not running; %s dropped", getattr(fn, "__name__", fn))
            return False
        self._nursery.start_soon(fn, *args)
        return True

    # ------------------------------------------------------------------ outputs
    def _input(self, fn: Callable[..., list], *args: Any, **kwargs: Any) -> list:
        """Feed one input to the policy and carry out what it returns."""
        outputs = fn(*args, self.now(), **kwargs)
        self._apply(outputs)
        return outputs

    def _defer(self, fn: Callable[..., list], *args: Any, **kwargs: Any) -> None:
        """An input to feed once the outputs being applied are done (keeps their order)."""
        self._deferred.append((fn, args, kwargs))

    def _apply(self, outputs: list) -> None:
        queue = deque(outputs)
        if self._applying:  # an input fed while outputs are being carried out: after them, in order
            self._deferred.append(("outputs", (list(queue),), {}))
            return
        self._applying = True
        try:
            while True:
                while queue:
                    item = queue.popleft()
                    try:
                        if isinstance(item, ev.Event):
                            self._event(item)
                        else:
                            self._effect(item)
                    except Exception:
                        self._n["effect_errors"] += 1
                        log.exception("acd: failed to carry out %r", item)
                if not self._deferred:
                    break
                fn, args, kwargs = self._deferred.popleft()
                if fn == "outputs":
                    queue.extend(args[0])
                    continue
                try:
                    queue.extend(fn(*args, self.now(), **kwargs))
                except (NotFoundError, ConflictError, ValueError) as exc:
                    log.info("acd: deferred input %s refused: %s", getattr(fn, "__name__", fn), exc)
        finally:
            self._applying = False
        self._wakeup.set()

    def _event(self, event: ev.Event) -> None:
        call = getattr(event, "call", None)
        if isinstance(event, ev.CallQueued):
            self._in_acd.add(call)
        elif isinstance(event, _ENDING) or (isinstance(event, ev.CallbackFailed) and event.final):
            self._in_acd.discard(call)
            self._connected.pop(call, None)
            self._callbacks.pop(call, None)
        elif isinstance(event, ev.CallOfferEnded):
            self._offer_calls.pop(event.offer, None)
        elif isinstance(event, ev.CallAnswered):
            self._connected[call] = event.agent
        self._history.append(event)
        self._n["recorded"] += 1
        if self.record is not None:
            try:
                self.record(event)
            except Exception:
                self._n["record_errors"] += 1
                log.exception("acd: recording %s failed", event.type)

    def _effect(self, effect: fx.Effect) -> None:
        kind = type(effect)
        if kind is fx.Offer:
            self._start_offer(effect)
        elif kind is fx.CancelOffer:
            scope = self._offers.pop(effect.offer, None)
            self._offer_calls.pop(effect.offer, None)
            if scope is not None:
                scope.cancel()
            cb = self._callbacks.get(effect.call)
            if cb is not None and cb.mode == "caller-first" and cb.offer == effect.offer and cb.call is not None:
                self._spawn(cb.call.hangup, "cancelled")  # the originated call was ringing this agent
        elif kind is fx.Bridge:
            waiting = self._waiting.get(effect.call)
            if waiting is not None:
                waiting.agent = effect.agent
                waiting.finish(QueueOutcome(result="answered", queue=effect.queue, agent=effect.agent))
            self._connected[effect.call] = effect.agent
        elif kind is fx.RefuseAnswer:
            pass  # answered through connect(accept=...): the refusal is its return value
        elif kind is fx.StartHoldMusic:
            self._media(effect.call, ("music", effect.music))
        elif kind is fx.Announce:
            self._media(effect.call, ("announce", effect.position, effect.ewt))
        elif kind is fx.PlayComfort:
            self._media(effect.call, ("comfort", effect.prompt))
        elif kind is fx.OfferCallbackOption:
            self._media(effect.call, ("callback", effect.position, effect.ewt))
        elif kind is fx.DialCallback:
            self._dial_callback(effect)
        elif kind is fx.Route:
            waiting = self._waiting.get(effect.call)
            if waiting is not None:
                result = "unavailable" if effect.reason in ("full", "empty") else "timeout"
                waiting.finish(QueueOutcome(result=result, queue=effect.queue, destination=effect.destination,
                                            reason=effect.reason))

    def _media(self, call: str, item: tuple) -> None:
        waiting = self._waiting.get(call)
        if waiting is not None:
            waiting.request(item)

    # ------------------------------------------------------------------ calls in queues
    async def queue_call(self, call: Any, queue: str, *, priority: int = 0,
                         skills: Mapping[str, int] | Iterable[str] | None = None, data: Mapping | None = None,
                         max_wait: float | None = None, digits: trio.MemoryReceiveChannel | None = None,
                         caller: str | None = None) -> QueueOutcome:
        """Put the answered ``call`` in ``queue`` and wait until it leaves; see :class:`QueueOutcome`.

        ``skills``: the call's own requirement, ``{skill: minimum}`` or skill
        names (minimum 1). ``data``: IVR/CRM data for the screen pop.
        ``max_wait``: the caller's own limit (an IVR queue node): then the
        call is withdrawn and the result is ``timeout`` with destination
        ``ivr``. ``digits``: where the caller's DTMF digits arrive (an IVR
        runner forwards them); None reads them from the call itself.
        ``caller``: the number to show and call back (default: the user
        part of the caller's URI). Cancelling the caller's task (hang-up)
        tells the policy the caller abandoned.
        """
        if call.id in self._waiting or call.id in self._in_acd:
            raise ConflictError(f"call: {call.id!r} is already in the ACD")
        if max_wait is not None and (isinstance(max_wait, bool) or not isinstance(max_wait, (int, float))
                                     or not max_wait > 0):
            raise ValueError(f"max_wait: must be a number of seconds > 0 or None, got {max_wait!r}")
        if skills is not None and not isinstance(skills, Mapping):
            skills = {str(s): 1 for s in skills}
        number = caller or _user_of(getattr(call, "caller", "")) or None
        waiting = _Waiting(call, queue, number)
        self._waiting[call.id] = waiting
        self._n["queued"] += 1
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._hold_media, waiting)
                nursery.start_soon(self._read_digits, waiting, digits)
                try:
                    self._input(self.acd.call_arrived, call.id, queue, priority=priority, caller=number,
                                skills=skills or None, data=dict(data) if data else None)
                except NotFoundError:
                    waiting.finish(QueueOutcome(result="unavailable", queue=queue, reason="no-such-queue"))
                with trio.move_on_after(max_wait if max_wait is not None else math.inf):
                    await waiting.done.wait()
                if waiting.outcome is None:  # the flow's own wait limit
                    try:
                        self._input(self.acd.call_withdrawn, call.id, reason="ivr-timeout")
                    except ConflictError:
                        await waiting.done.wait()  # answered at this very moment: keep the agent
                    else:
                        waiting.finish(QueueOutcome(result="timeout", queue=queue, destination="ivr",
                                                    reason="ivr-timeout"))
                if waiting.outcome is not None and waiting.outcome.result == "answered":
                    with trio.move_on_after(10):  # the answer was accepted; the bridge follows at once
                        await waiting.bridged.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._waiting.pop(call.id, None)
            waiting.media[0].close()
            if waiting.playing is not None:
                waiting.playing.stop()
            if waiting.outcome is None:  # cancelled: the caller hung up
                waiting.finish(QueueOutcome(result="gone", queue=queue))
                self.call_gone(call.id)
        assert waiting.outcome is not None
        return waiting.outcome

    async def _read_digits(self, waiting: _Waiting, digits: trio.MemoryReceiveChannel | None) -> None:
        """Digits while waiting: only the callback key matters, and only while it is offered."""
        while True:
            try:
                digit = await digits.receive() if digits is not None else await waiting.call.receive_digit()
            except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                return
            value = getattr(digit, "digit", digit)
            if waiting.callback_armed and value == self.prompts.callback_key:
                waiting.callback_armed = False
                self._request_callback(waiting)

    def _request_callback(self, waiting: _Waiting) -> None:
        call = waiting.call
        number = waiting.caller_number
        if not number or call.id not in self._in_acd:
            return
        try:
            self._input(self.acd.callback_requested, call.id, number)
        except (ConflictError, NotFoundError) as exc:
            log.info("acd: callback for %s refused: %s", call.id, exc)
            return
        self._callbacks[call.id] = _Callback(number, waiting.queue)
        self._n["cb_requested"] += 1
        waiting.request(("confirm-callback",))

    async def _hold_media(self, waiting: _Waiting) -> None:
        """Music on hold, with announcements and comfort prompts played between the music."""
        music: str | None = None
        receive = waiting.media[1]
        while True:
            if music is not None and waiting.playing is None and waiting.outcome is None:
                waiting.playing = self._play(waiting.call, music, loops=0)
            try:
                item = await receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
            kind = item[0]
            if kind == "music":
                music = self.prompts.music.get(item[1])
                if music is None and item[1]:
                    self._n["missing"] += 1
                continue
            if kind == "announce":
                files, missing = self.prompts.announcement(item[1], item[2])
            elif kind == "comfort":
                found = self.prompts.file(item[1])
                files, missing = ([found], 0) if found else ([], 1)
            elif kind == "callback":
                found = self.prompts.file(self.prompts.callback_option)
                files, missing = ([found], 0) if found else ([], 1)
            else:  # confirm-callback
                found = self.prompts.file(self.prompts.callback_confirmed)
                files, missing = ([found], 0) if found else ([], 1)
            self._n["missing"] += missing
            if waiting.playing is not None:
                waiting.playing.stop()
                waiting.playing = None
            if kind == "callback":
                waiting.callback_armed = True
            for path in files:
                if waiting.outcome is not None:
                    break
                playback = self._play(waiting.call, path, stop_on_dtmf=kind == "callback")
                if playback is None:
                    continue
                waiting.playing = playback
                try:
                    await playback.wait()
                finally:
                    playback.stop()
                    waiting.playing = None
            if kind == "callback" and waiting.callback_armed:
                with trio.move_on_after(self.prompts.callback_listen):
                    while waiting.callback_armed and waiting.outcome is None:
                        await trio.sleep(0.05)
                waiting.callback_armed = False
            elif kind == "confirm-callback":
                waiting.finish(QueueOutcome(result="callback", queue=waiting.queue, reason="callback"))
                return

    def _play(self, call: Any, path: str, *, loops: int = 1, stop_on_dtmf: bool = False) -> Any:
        try:
            playback = call.play(file=path, loops=loops, stop_on_dtmf=stop_on_dtmf)
        except (RuntimeError, ValueError, KeyError) as exc:
            log.info("acd: cannot play %s to %s: %s", path, getattr(call, "id", "?"), exc)
            return None
        self._n["played"] += 1
        return playback

    def request_callback(self, call: str, queue: str, number: str, *, data: Mapping | None = None,
                         priority: int = 0, skills: Mapping[str, int] | None = None) -> bool:
        """The IVR's callback node: the caller will hang up and be called back at ``number`` for
        ``queue``, keeping the place it gets now. Returns False when it could not be registered:
        no such queue, refused at the door (full, empty), or an agent was free at this very
        moment (the policy offers a live caller rather than promising a callback).
        """
        if not isinstance(number, str) or not number:
            raise ValueError(f"number: must be a non-empty string, got {number!r}")
        if call in self._callbacks:
            return True
        if call not in self._in_acd:
            now = self.now()
            try:
                outputs = self.acd.call_arrived(call, queue, now, priority=priority, caller=number,
                                                skills=skills or None, data=dict(data) if data else None)
            except (NotFoundError, ConflictError) as exc:
                log.info("acd: callback for %s not registered: %s", call, exc)
                return False
            offers = {o.offer for o in outputs if isinstance(o, fx.Offer) and o.call == call}
            if offers:  # an agent is free right now: take the call back out, nobody is rung
                outputs = outputs + self.acd.call_withdrawn(call, now, reason="callback-agent-free")
                outputs = [o for o in outputs if not (isinstance(o, (fx.Offer, fx.CancelOffer))
                                                      and o.offer in offers)]
                self._apply(outputs)
                return False
            self._apply(outputs)
            if call not in self._in_acd:  # rejected (full, empty)
                return False
        try:
            self._input(self.acd.callback_requested, call, number)
        except (NotFoundError, ConflictError) as exc:
            log.info("acd: callback for %s not registered: %s", call, exc)
            return False
        self._callbacks[call] = _Callback(number, queue)
        self._n["cb_requested"] += 1
        return True

    def call_gone(self, call: str) -> None:
        """The call (B2BUA id) ended or left an agent: tell the policy, if it holds the call.

        A waiting or ringing caller abandons; a connected call ends (the
        agent goes to wrap-up). A caller who chose a callback left on
        purpose: nothing changes. Idempotent.
        """
        acd_call = self._dialing.get(call, call)
        if acd_call in self._callbacks and acd_call == call:
            return  # the original call of a callback: it keeps its place
        if acd_call in self._in_acd:
            self._input(self.acd.call_ended, acd_call)

    def call_held(self, call: str) -> bool:
        """The B2BUA put a connected queue call on hold; False if it is not the ACD's."""
        acd_call = self._dialing.get(call, call)
        if acd_call not in self._connected:
            return False
        self._input(self.acd.call_held, acd_call)
        return True

    def call_resumed(self, call: str) -> bool:
        acd_call = self._dialing.get(call, call)
        if acd_call not in self._connected:
            return False
        self._input(self.acd.call_resumed, acd_call)
        return True

    def is_queue_call(self, call: str) -> bool:
        """Whether the B2BUA call ``call`` is one the ACD handles (queued, connected or a callback)."""
        return call in self._in_acd or call in self._waiting or call in self._dialing

    # ------------------------------------------------------------------ offers
    def _start_offer(self, offer: fx.Offer) -> None:
        self._n["offers"] += 1
        self._offer_calls[offer.offer] = offer.call
        if offer.callback is not None:  # agent first: ring the agent, then dial the customer
            cb = self._callbacks.setdefault(offer.call, _Callback(offer.callback, offer.queue))
            cb.mode = "agent-first"
            cb.offer = offer.offer
            scope = trio.CancelScope()
            self._offers[offer.offer] = scope
            if not self._spawn(self._run_callback_agent_first, offer, scope, cb):
                self._defer(self.acd.offer_rejected, offer.offer)
            return
        cb = self._callbacks.get(offer.call)
        if cb is not None and cb.call is not None:  # caller first: the originated call now dials the agent
            cb.offer = offer.offer
            scope = trio.CancelScope()
            self._offers[offer.offer] = scope
            return
        waiting = self._waiting.get(offer.call)
        if waiting is None or waiting.call.ended:
            self._defer(self.acd.call_ended, offer.call)
            return
        scope = trio.CancelScope()
        self._offers[offer.offer] = scope
        if not self._spawn(self._ring, offer, scope, waiting):
            self._defer(self.acd.offer_rejected, offer.offer)

    def _on_answer(self, offer: int, peer: str) -> bool:
        """``connect(accept=...)``: put the answer to the policy at once; False if it refuses."""
        outputs = self.acd.offer_answered(offer, self.now())
        refused = any(isinstance(o, fx.RefuseAnswer) for o in outputs)
        self._offers.pop(offer, None)
        if refused:
            self._n["refused"] += 1
        else:
            self._n["answered"] += 1
        self._apply(outputs)
        return not refused

    async def _ring(self, offer: fx.Offer, scope: trio.CancelScope, waiting: _Waiting) -> None:
        result = None
        with scope:
            try:
                result = await waiting.call.connect(offer.device,
                                                    ring_timeout=offer.ring_timeout + self.ring_grace,
                                                    accept=partial(self._on_answer, offer.offer))
            except RuntimeError as exc:  # connected meanwhile (cannot happen with accept, kept safe)
                log.info("acd: offer %d not rung: %s", offer.offer, exc)
        self._offers.pop(offer.offer, None)
        if waiting.agent == offer.agent and waiting.outcome is not None and waiting.outcome.result == "answered":
            waiting.bridged.set()
        if scope.cancelled_caught or result is None or result.answered or result.cause == "refused":
            return
        if offer.offer not in self._offer_calls:
            return  # the policy already ended this offer
        self._offer_failed(offer, result.cause)

    def _offer_failed(self, offer: fx.Offer, cause: str) -> None:
        """The device did not answer an offer the policy still holds: tell it why."""
        self._n["failed"] += 1
        if cause in ("no_answer", "cancelled"):
            self._input(self.acd.offer_timeout, offer.offer)
            return
        if cause == "not_found":
            # No device to ring (not registered, not reachable): it cannot take calls now.
            self._input(self.acd.device_unregistered, offer.device)
            if offer.offer in self._offer_calls:
                self._input(self.acd.offer_rejected, offer.offer, busy=True)
            return
        self._input(self.acd.offer_rejected, offer.offer, busy=cause != "rejected")
        # An agent whose device refuses everything at once would be offered call after call:
        # after three refusals within ten seconds it goes on break (like RONA).
        now = self.now()
        times = self._failures.setdefault(offer.agent, deque(maxlen=3))
        times.append(now)
        if len(times) == 3 and now - times[0] < 10.0:
            times.clear()
            try:
                self._input(self.acd.set_state, offer.agent, "break", reason="offer-refused")
            except (ConflictError, NotFoundError):
                pass

    # ------------------------------------------------------------------ callbacks
    def _dial_callback(self, effect: fx.DialCallback) -> None:
        cb = self._callbacks.setdefault(effect.call, _Callback(effect.number, effect.queue))
        self._n["cb_dialed"] += 1
        if effect.agent_connected:
            return  # agent first: the originated call already dials the customer
        cb.mode = "caller-first"
        if not self._spawn(self._run_callback_caller_first, effect, cb):
            self._defer(self.acd.callback_failed, effect.call)

    def _callback_data(self, call: str, queue: str) -> dict:
        return {"callback_for": call, "queue": queue}

    async def _run_callback_agent_first(self, offer: fx.Offer, scope: trio.CancelScope, cb: _Callback) -> None:
        """Ring the agent (the offer); once it answers, dial the customer; report each step."""
        if self.manager is None:
            log.warning("acd: no CallManager bound: cannot dial callback %s", offer.call)
            self._offers.pop(offer.offer, None)
            self._input(self.acd.offer_rejected, offer.offer)
            return
        try:
            call = await self.manager.originate(offer.device, offer.callback, caller_id=None,
                                                data=self._callback_data(offer.call, offer.queue),
                                                ring_timeout=offer.ring_timeout + self.ring_grace,
                                                accept=partial(self._on_answer, offer.offer))
        except (RuntimeError, ValueError) as exc:  # over capacity, a bad number
            log.warning("acd: callback %s could not be originated: %s", offer.call, exc)
            self._offers.pop(offer.offer, None)
            self._input(self.acd.offer_rejected, offer.offer, busy=True)
            return
        cb.call = call
        self._dialing[call.id] = offer.call
        try:
            with scope:
                await self._wait_any(call.wait_connected, call.wait_ended)
            if scope.cancelled_caught and not call.connected:
                await call.hangup("cancelled")
                return
            if call.connected:
                self._n["cb_connected"] += 1
                self._input(self.acd.callback_answered, offer.call)
                await call.wait_ended()
                self.call_gone(call.id)
                return
            # ended before both parties were connected
            if offer.offer in self._offer_calls:  # the agent never answered
                self._offers.pop(offer.offer, None)
                self._offer_failed(offer, call.cause or "no_answer")
            elif offer.call in self._in_acd:  # the agent answered, the customer did not
                self._input(self.acd.callback_failed, offer.call)
        finally:
            self._dialing.pop(call.id, None)
            cb.call = None

    async def _run_callback_caller_first(self, effect: fx.DialCallback, cb: _Callback) -> None:
        """Dial the customer; once they answer the policy offers the reserved agent, whom the
        originated call then rings."""
        if self.manager is None:
            log.warning("acd: no CallManager bound: cannot dial callback %s", effect.call)
            self._input(self.acd.callback_failed, effect.call)
            return

        def customer_answered(peer: str) -> bool:
            self._input(self.acd.callback_answered, effect.call)
            return cb.offer is not None

        try:
            call = await self.manager.originate(effect.number, effect.device,
                                                data=self._callback_data(effect.call, effect.queue),
                                                accept=customer_answered)
        except (RuntimeError, ValueError) as exc:  # over capacity, a bad number
            log.warning("acd: callback %s could not be originated: %s", effect.call, exc)
            self._input(self.acd.callback_failed, effect.call)
            return
        cb.call = call
        self._dialing[call.id] = effect.call
        try:
            await self._wait_any(call.wait_connected, call.wait_ended)
            offer = cb.offer
            if call.connected and offer is not None and offer in self._offer_calls:
                self._offers.pop(offer, None)
                outputs = self.acd.offer_answered(offer, self.now())
                self._apply(outputs)
                if any(isinstance(o, fx.RefuseAnswer) for o in outputs):
                    await call.hangup("refused")
                    return
                self._n["cb_connected"] += 1
                await call.wait_ended()
                self.call_gone(call.id)
                return
            if offer is None:  # the customer never answered
                if effect.call in self._in_acd:
                    self._input(self.acd.callback_failed, effect.call)
                return
            # the customer answered, the agent did not: the customer was hung up with the call
            if offer in self._offer_calls:
                self._offers.pop(offer, None)
                self._input(self.acd.offer_timeout, offer)
            self.call_gone(effect.call)
        finally:
            self._dialing.pop(call.id, None)
            cb.call = None

    @staticmethod
    async def _wait_any(*waits: Callable[[], Any]) -> None:
        async with trio.open_nursery() as nursery:
            async def one(fn):
                await fn()
                nursery.cancel_scope.cancel()
            for fn in waits:
                nursery.start_soon(one, fn)

    # ------------------------------------------------------------------ agents and devices
    def login(self, agent: str, device: str, *, state: str = "available", reason: str | None = None) -> dict:
        """Log ``agent`` in on ``device`` (``agent.login``); returns the agent as ``agent.get`` shows it."""
        self._input(self.acd.agent_login, agent, device, state=state, reason=reason)
        self._agent_devices[device] = agent
        self._known_devices.add(device)
        if self._busy.get(device):
            self._input(self.acd.device_busy, device)
        return self.get_agent(agent)

    def logout(self, agent: str) -> dict:
        """Log ``agent`` out (``agent.logout``); ConflictError while on a call."""
        self._input(self.acd.agent_logout, agent)
        for device, who in list(self._agent_devices.items()):
            if who == agent:
                del self._agent_devices[device]
        return self.get_agent(agent)

    def set_state(self, agent: str, state: str, *, reason: str | None = None) -> dict:
        """``agent.set_state``: available, break (with ``reason``) or offline."""
        self._input(self.acd.set_state, agent, state, reason=reason)
        if state == "offline":
            for device, who in list(self._agent_devices.items()):
                if who == agent:
                    del self._agent_devices[device]
        return self.get_agent(agent)

    def wrapup_done(self, agent: str) -> dict:
        """The agent ends its wrap-up early."""
        self._input(self.acd.wrapup_done, agent)
        return self.get_agent(agent)

    def list_agents(self) -> list[dict]:
        return [self.get_agent(a) for a in self.acd.agents()]

    def get_agent(self, agent: str) -> dict:
        snap = self.acd.agent_snapshot(agent)
        return {"agent": snap.agent, "state": snap.state, "reason": snap.reason, "device": snap.device,
                "call": snap.call, "queue": snap.queue, "routable": snap.routable, "skills": dict(snap.skills),
                "queues": dict(snap.queues)}

    def device_registered(self, device: str) -> None:
        """The registrar: ``device`` became reachable."""
        self._known_devices.add(device)
        self._input(self.acd.device_registered, device)
        if self._busy.get(device):
            self._input(self.acd.device_busy, device)

    def device_unregistered(self, device: str) -> None:
        """The registrar: ``device``'s last binding went away."""
        self._input(self.acd.device_unregistered, device)

    def device_call_started(self, device: str, call: str) -> None:
        """``device`` is on a call that is not a queue call (its agent is not offered calls)."""
        calls = self._busy.setdefault(device, set())
        first = not calls
        calls.add(call)
        if first and device in self._known_devices:
            self._input(self.acd.device_busy, device)

    def device_call_ended(self, device: str, call: str) -> None:
        calls = self._busy.get(device)
        if not calls or call not in calls:
            return
        calls.discard(call)
        if not calls:
            del self._busy[device]
            if device in self._known_devices:
                self._input(self.acd.device_idle, device)

    # ------------------------------------------------------------------ queues
    def list_queues(self) -> list[dict]:
        return [self.get_queue(q) for q in self.acd.queues()]

    def get_queue(self, queue: str) -> dict:
        snap = self.acd.queue_snapshot(queue, self.now())
        return {"queue": snap.queue, "waiting": snap.waiting, "longest_wait": snap.longest_wait,
                "agents_by_state": dict(snap.agents_by_state), "ewt": snap.ewt,
                "handle_time_estimate": snap.handle_time_estimate,
                "abandon_rate_estimate": snap.abandon_rate_estimate}

    def ewt(self, queue: str) -> float | None:
        """Estimated wait (s) of a caller joining ``queue`` now; None: no agent can serve it."""
        return self.acd.queue_snapshot(queue, self.now()).ewt

    def call_position(self, call: str) -> dict:
        """A waiting call's position (1 = next) and EWT."""
        snap = self.acd.call_snapshot(call)
        return {"call": snap.call, "queue": snap.queue, "state": snap.state, "position": snap.position,
                "ewt": snap.ewt, "wait": snap.wait, "agent": snap.agent}

    async def queue_stats(self, queue: str, *, start: float | None = None, end: float | None = None) -> dict:
        """``queue.stats``: the live snapshot joined with the contract metrics of the period."""
        from orchestrator.metrics import queue_stats

        snap = self.acd.queue_snapshot(queue, self.now())
        if self._events_source is not None:
            events = self._events_source(start=start, end=end)
            if hasattr(events, "__await__"):
                events = await events
        else:
            events = list(self._history)
        return queue_stats(snap, events, start=start, end=end).to_dict()

    # ------------------------------------------------------------------ statistics
    def statistics(self) -> AcdServiceStatistics:
        n = self._n
        return AcdServiceStatistics(
            policy=self.acd.statistics(), calls_waiting=len(self._waiting), calls_connected=len(self._connected),
            offers_ringing=len(self._offers), calls_queued=n["queued"], offers_started=n["offers"],
            offers_answered=n["answered"], answers_refused=n["refused"], offers_failed=n["failed"],
            callbacks_requested=n["cb_requested"], callbacks_dialed=n["cb_dialed"],
            callbacks_connected=n["cb_connected"], prompts_played=n["played"], prompts_missing=n["missing"],
            events_recorded=n["recorded"], record_errors=n["record_errors"], effect_errors=n["effect_errors"])
