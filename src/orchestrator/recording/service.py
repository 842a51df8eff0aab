"""The recording service (Trio): policy, start/pause/resume/stop, finishing, recovery, retention.

:class:`RecordingService` is what the daemon runs and what the JSON-RPC
``recording.*`` methods call (it implements
:class:`orchestrator.control.services.RecordingService`). It records the
caller's engine leg in stereo (left: what the caller says; right: what the
caller hears, i.e. the agent), because a leg's recorder survives what a
room's does not (hold takes the bridge down; a transfer builds a new one).

Wiring (the daemon)::

    service = RecordingService(config, engine=engine, calls=manager, log=event_log, publish=hub.publish)
    await nursery.start(service.run)
    await service.recover()                       # spool left by a crash
    # engine events: the service takes recording_finished/recording_error, the B2BUA the rest
    async for event in engine.events():
        if not service.handle_engine_event(event):
            manager.handle_engine_event(event)
    # call events: policy at answer, holds; digits for the DTMF codes
    service.handle_call_event(call_event)
    service.handle_digit(call_id, digit)

What happens to one recording:

* **decided** - :meth:`apply_policy` (the daemon calls it when a call is
  connected; :meth:`handle_call_event` does on ``call.answered``) runs
  :func:`~orchestrator.recording.policy.decide` and appends
  ``recording.decision`` with the reason;
* **started** - its metadata goes durably into the spool *before* the
  engine opens the file, so crash recovery always finds it;
  ``recording.started``;
* **paused / resumed** (PCI DSS) - the engine records silence while paused;
  who and when go into the metadata and ``recording.paused`` /
  ``recording.resumed``;
* **stopped** - by :meth:`stop`, a ``never`` policy, or the call's end (the
  engine stops a leg's recorder when the leg goes);
* **ready** - on the engine's ``recording_finished`` a worker thread repairs
  (a no-op here), analyses, encrypts, verifies and stores the file
  (:func:`~orchestrator.recording.archive.finalize`); then
  ``recording.ready`` (also published: the contract's event) and
  ``recording.analyzed`` are appended. Finishing never runs on the Trio
  thread, and at most ``max_parallel`` recordings finish at once.

Every event carries ``call`` and ``recording``, so the store's call record
lists the recording ids. Events are appended with ``await log.append``
(durable) in the order they happened for each recording.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import trio

from . import archive
from .analytics import CallAnalytics
from .config import RecordingConfig
from .crypto import KeyRing
from .errors import RecordingConflict, RecordingNotFound
from .policy import Decision, DtmfCodes, decide
from .retention import PurgeCandidate, select_for_purge
from .storage import RecordingInfo, RecordingStore

__all__ = ["PurgeReport", "RecordingService", "RecordingStatistics", "RecoveryReport", "call_context"]

log = logging.getLogger("hotline.recording")
_LIVE_STATES = ("recording", "paused", "stopping")


@dataclass(frozen=True, kw_only=True)
class RecordingStatistics:
    """Counters of a running :class:`RecordingService` (``statistics()``)."""

    active: int
    paused: int
    finishing: int
    decisions: int
    decided_record: int
    started: int
    ready: int
    failed: int
    recovered: int
    analyzed: int
    purged: int
    pauses: int
    bytes_stored: int
    engine_errors: int
    event_errors: int


@dataclass(frozen=True, kw_only=True)
class RecoveryReport:
    """What :meth:`RecordingService.recover` found in the spool."""

    recovered: tuple[str, ...]
    failed: tuple[str, ...]
    reannounced: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PurgeReport:
    """What a purge removed (or, with ``dry_run``, would remove), and what legal holds kept."""

    dry_run: bool
    purged: tuple[PurgeCandidate, ...]
    held: tuple[PurgeCandidate, ...]
    bytes_freed: int

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "purged": [c.to_dict() for c in self.purged],
                "held": [c.to_dict() for c in self.held], "bytes_freed": self.bytes_freed}


class _Live:
    """A recording this process started and has not finished."""

    def __init__(self, info: RecordingInfo, recorder: int | None) -> None:
        self.info = info
        self.recorder = recorder
        self.lock = trio.Lock()
        self.done = trio.Event()
        self.engine_error: str | None = None


def call_context(call: Any) -> tuple[str | None, str | None]:
    """(queue, trunk) of a B2BUA call: its route ``queue:NAME`` and a trunk identity."""
    queue = None
    route = getattr(call, "route", "") or ""
    if isinstance(route, str) and route.startswith("queue:"):
        queue = route[6:] or None
    if queue is None:
        data = getattr(call, "data", None)
        if isinstance(data, Mapping) and isinstance(data.get("queue"), str):
            queue = data["queue"]
    trunk = None
    identity = getattr(call, "identity", None)
    if identity is not None and getattr(identity, "kind", None) == "trunk":
        trunk = getattr(identity, "name", None) or None
    return queue, trunk


def _party(leg: Any) -> str | None:
    return getattr(leg, "peer", None) or None if leg is not None else None


class RecordingService:
    """Recording for one node (see the module docstring).

    ``engine``: the media engine (:class:`mediacore.engine.Engine`).
    ``calls``: looks calls up by id (``get(call_id)``: the B2BUA's
    :class:`~orchestrator.calls.CallManager`). ``log``: the event log (an
    object with ``async append(event)``, and optionally ``async audit(...)``).
    ``publish``: called with each ``recording.ready`` event (e.g. the control
    hub's ``publish``). ``keys``: the key ring (default: loaded from the
    config's ``key_file``; None with no key file: recordings are stored
    unencrypted). ``clock``: Unix time.
    """

    def __init__(self, config: RecordingConfig, *, engine: Any = None, calls: Any = None, log: Any = None,
                 publish: Callable[[dict], Any] | None = None, keys: KeyRing | None = None,
                 node: str | None = None, clock: Callable[[], float] = time.time, max_parallel: int = 1) -> None:
        if not isinstance(config, RecordingConfig):
            raise ValueError("config: must be a RecordingConfig")
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            raise ValueError(f"max_parallel: must be an int >= 1, got {max_parallel!r}")
        self.config = config
        self.engine = engine
        self.calls = calls
        self.log = log
        self.publish = publish
        if keys is None and config.key_file is not None:
            keys = KeyRing.load(config.key_file)
        self.keys = keys
        if keys is None:
            logging.getLogger("hotline.recording").warning(
                "recording: no key file: recordings in %s are stored unencrypted", config.dir)
        self.node = node
        self.clock = clock
        self.store = RecordingStore(config.dir)
        self._limiter = trio.CapacityLimiter(max_parallel)
        self._nursery: trio.Nursery | None = None
        self._live: dict[str, _Live] = {}           # recording id -> live
        self._by_call: dict[str, _Live] = {}        # call id -> its active recording
        self._by_recorder: dict[int, _Live] = {}    # engine recorder id -> live
        self._decisions: dict[str, Decision] = {}   # call id -> last decision
        self._recorded: set[str] = set()            # calls a recording was started on (until call.ended)
        self._dtmf: dict[str, DtmfCodes] = {}
        self._holds: dict[str, float] = {}          # call id -> hold start
        self._counts = {k: 0 for k in ("decisions", "decided_record", "started", "ready", "failed", "recovered",
                                        "analyzed", "purged", "pauses", "bytes_stored", "engine_errors",
                                        "event_errors")}
        self._finishing = 0

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: trio.TaskStatus[RecordingService] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the service (finishing jobs live in its nursery) until cancelled."""
        await trio.to_thread.run_sync(self.store.ensure)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._nursery is None:
            raise RuntimeError("the RecordingService is not running (start it with nursery.start(service.run))")
        self._nursery.start_soon(fn, *args)

    def statistics(self) -> RecordingStatistics:
        paused = sum(1 for live in self._live.values() if live.info.state == "paused")
        return RecordingStatistics(active=len(self._by_call), paused=paused, finishing=self._finishing,
                                   **self._counts)

    # ------------------------------------------------------------------ events out
    async def _append(self, event: dict, *, publish: bool = False) -> None:
        event.setdefault("at", self.clock())
        if self.node is not None:
            event.setdefault("node", self.node)
        if self.log is not None:
            try:
                await self.log.append(event)
            except Exception:
                self._counts["event_errors"] += 1
                log.exception("recording: could not append %s", event.get("type"))
        if publish and self.publish is not None:
            try:
                self.publish(dict(event))
            except Exception:
                self._counts["event_errors"] += 1
                log.exception("recording: could not publish %s", event.get("type"))

    def _event(self, kind: str, info: RecordingInfo, **fields: Any) -> dict:
        return {"type": kind, "call": info.call, "recording": info.recording, **fields}

    async def _persist(self, live: _Live) -> None:
        info = live.info
        await trio.to_thread.run_sync(self.store.write, info)

    # ------------------------------------------------------------------ lookups
    def _call(self, call_id: str) -> Any:
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(f"call: must be a call id, got {call_id!r}")
        call = self.calls.get(call_id) if self.calls is not None else None
        if call is None:
            raise RecordingNotFound(f"call: no call {call_id!r}")
        return call

    def _active(self, call_id: str) -> _Live:
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(f"call: must be a call id, got {call_id!r}")
        live = self._by_call.get(call_id)
        if live is None:
            if self.calls is not None and self.calls.get(call_id) is None:
                raise RecordingNotFound(f"call: no call {call_id!r}")
            raise RecordingConflict(f"call: {call_id} is not being recorded")
        return live

    # ------------------------------------------------------------------ policy
    async def apply_policy(self, call: Any, *, queue: str | None = None, trunk: str | None = None) -> Decision:
        """Decide for a call (an id or a Call) and act: start if it must be recorded, stop on ``never``.

        The queue and trunk default to the call's (:func:`call_context`).
        A decision is logged once per (queue, trunk) the call is seen with.
        """
        if isinstance(call, str):
            call = self._call(call)
        cq, ct = call_context(call)
        queue = queue if queue is not None else cq
        trunk = trunk if trunk is not None else ct
        previous = self._decisions.get(call.id)
        if previous is not None and (previous.queue, previous.trunk) == (queue, trunk):
            if previous.record and call.id not in self._recorded:
                # Decided "record" but the start failed (no media yet): try again, without a new decision.
                try:
                    await self._start(call, previous, by="policy")
                except (RecordingConflict, RecordingNotFound) as exc:
                    log.info("recording: policy start on %s failed again: %s", call.id, exc)
            return previous
        decision = decide(call.id, self.config, queue=queue, trunk=trunk)
        self._decisions[call.id] = decision
        self._counts["decisions"] += 1
        if decision.record:
            self._counts["decided_record"] += 1
        await self._append(decision.to_event(self.clock()))
        live = self._by_call.get(call.id)
        if decision.record and live is None:
            try:
                await self._start(call, decision, by="policy")
            except (RecordingConflict, RecordingNotFound) as exc:
                log.info("recording: policy start on %s failed: %s", call.id, exc)
        elif decision.mode == "never" and live is not None and live.info.state in ("recording", "paused"):
            await self.stop(call.id, by="policy")
        return decision

    def decision(self, call_id: str) -> Decision | None:
        return self._decisions.get(call_id)

    # ------------------------------------------------------------------ verbs
    async def start(self, call: str, *, by: str = "api") -> dict:
        """Start recording a call now (on demand). Conflict if it is already recorded or its policy is never."""
        c = self._call(call)
        if call in self._by_call:
            raise RecordingConflict(f"call: {call} is already being recorded "
                                    f"({self._by_call[call].info.recording})")
        decision = self._decisions.get(call)
        if decision is None:
            queue, trunk = call_context(c)
            decision = decide(call, self.config, queue=queue, trunk=trunk)
        if decision.mode == "never":
            raise RecordingConflict(f"call: {call} must not be recorded ({decision.reason})")
        live = await self._start(c, decision, by=by)
        return live.info.to_dict()

    async def _start(self, call: Any, decision: Decision, *, by: str) -> _Live:
        if self.engine is None:
            raise RecordingConflict("recording: no media engine")
        a = getattr(call, "a", None)
        target = getattr(getattr(a, "media", None), "id", None)
        if target is None or getattr(call, "ended", False):
            raise RecordingConflict(f"call: {call.id} has no media to record")
        pol = decision.policy
        now = self.clock()
        taken = set(self._live)
        rid = await trio.to_thread.run_sync(self.store.new_id, call.id, now, taken)
        if call.id in self._by_call:  # started by someone else meanwhile
            raise RecordingConflict(f"call: {call.id} is already being recorded")
        audio = self.store.spool_audio(rid, pol.format)
        b = getattr(call, "b", None)
        stereo = bool(pol.stereo)
        legs = ({"channel": "left", "party": "caller", "peer": _party(a)},
                {"channel": "right", "party": "callee", "peer": _party(b)}) if stereo else \
            ({"channel": "mix", "party": "caller", "peer": _party(a)},
             {"channel": "mix", "party": "callee", "peer": _party(b)})
        info = RecordingInfo(recording=rid, call=call.id, state="recording", format=pol.format, stereo=stereo,
                             sample_rate=int(pol.sample_rate or 0), file=self.store.relative(audio), started_at=now,
                             started_by=by, legs=legs, queue=decision.queue, trunk=decision.trunk,
                             decision={"mode": decision.mode, "source": decision.source, "reason": decision.reason},
                             node=self.node)
        live = _Live(info, None)
        self._live[rid] = live
        self._by_call[call.id] = live
        try:
            # Durable before the engine opens the file: crash recovery must find it.
            await trio.to_thread.run_sync(self.store.write, info)
            recorder, rate = self._engine_record(target, audio, pol)
            info = replace(info, sample_rate=rate)
            live.info = info
        except BaseException:
            self._live.pop(rid, None)
            self._by_call.pop(call.id, None)
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_remove_quietly, self.store.spool / f"{rid}.json")
            raise
        live.recorder = recorder
        self._by_recorder[recorder] = live
        self._recorded.add(call.id)
        self._counts["started"] += 1
        if call.id in self._holds:
            live.info = replace(live.info, holds=({"at": now, "until": None},))
        async with live.lock:
            await self._append(self._event("recording.started", live.info, by=by, format=pol.format, stereo=stereo,
                                           sample_rate=rate, file=live.info.file, legs=list(map(dict, legs)),
                                           policy=decision.policy.label, source=decision.source))
        return live

    def _engine_record(self, target: int, audio: Path, pol: Any) -> tuple[int, int]:
        """Start the engine's recorder; (recorder id, sample rate asked: 0 = the call's own)."""
        kwargs = {"format": pol.format, "stereo": bool(pol.stereo), "opus_bitrate": self.config.opus_bitrate}
        wanted = int(pol.sample_rate or 0)
        try:
            return self.engine.record(target, audio, sample_rate=wanted, **kwargs), wanted
        except KeyError as exc:
            raise RecordingConflict(f"the call's media is gone ({exc})") from None
        except ValueError as exc:
            if wanted == 0 or "Hz" not in str(exc):
                raise
        # The engine records at the call's own rate only: say so, and record anyway.
        log.warning("recording: the call's rate is not %d Hz; recording at the call's rate", wanted)
        return self.engine.record(target, audio, sample_rate=0, **kwargs), 0

    async def pause(self, call: str, *, by: str = "api", reason: str | None = None) -> dict:
        """Pause a call's recording (PCI DSS: nothing said while paused reaches the file)."""
        live = self._active(call)
        if live.info.state != "recording":
            raise RecordingConflict(f"recording: {live.info.recording} is {live.info.state}, not recording")
        self.engine.pause_recording(live.recorder)
        now = self.clock()
        entry = {"at": now, "by": by, "reason": reason, "resumed_at": None, "resumed_by": None}
        live.info = replace(live.info, state="paused", pauses=live.info.pauses + (entry,))
        self._counts["pauses"] += 1
        async with live.lock:
            await self._persist(live)
            await self._append(self._event("recording.paused", live.info, by=by, reason=reason, at=now))
        return live.info.to_dict()

    async def resume(self, call: str, *, by: str = "api") -> dict:
        """Resume a paused recording."""
        live = self._active(call)
        if live.info.state != "paused":
            raise RecordingConflict(f"recording: {live.info.recording} is {live.info.state}, not paused")
        self.engine.resume_recording(live.recorder)
        now = self.clock()
        pauses = list(live.info.pauses)
        last = dict(pauses[-1])
        last.update(resumed_at=now, resumed_by=by)
        pauses[-1] = last
        paused = round(live.info.paused_seconds + max(0.0, now - last["at"]), 3)
        live.info = replace(live.info, state="recording", pauses=tuple(pauses), paused_seconds=paused)
        async with live.lock:
            await self._persist(live)
            await self._append(self._event("recording.resumed", live.info, by=by, at=now,
                                           paused_seconds=round(now - last["at"], 3)))
        return live.info.to_dict()

    async def stop(self, call: str, *, by: str = "api") -> dict:
        """Stop a call's recording; it becomes ready (``recording.ready``) once stored."""
        live = self._active(call)
        if live.info.state not in ("recording", "paused"):
            raise RecordingConflict(f"recording: {live.info.recording} is already {live.info.state}")
        try:
            self.engine.stop_recording(live.recorder)
        except KeyError:
            pass  # the engine already stopped it (the leg went): its finished event is on the way
        now = self.clock()
        self._mark_stopping(live, now)
        async with live.lock:
            await self._persist(live)
            await self._append(self._event("recording.stopped", live.info, by=by, at=now))
        return live.info.to_dict()

    def _mark_stopping(self, live: _Live, at: float, why: str = "stop") -> None:
        if live.info.state == "stopping":
            return
        info = live.info
        if info.state == "paused":
            pauses = list(info.pauses)
            pauses[-1] = {**pauses[-1], "resumed_at": at, "resumed_by": why}
            info = replace(info, pauses=tuple(pauses),
                           paused_seconds=round(info.paused_seconds + max(0.0, at - pauses[-1]["at"]), 3))
        holds = tuple({**h, "until": at} if h.get("until") is None else h for h in info.holds)
        live.info = replace(info, state="stopping", ended_at=at, holds=holds)
        if self._by_call.get(info.call) is live:
            del self._by_call[info.call]

    # ------------------------------------------------------------------ engine and call events
    def handle_engine_event(self, event: Any) -> bool:
        """Take the engine's recorder events (True) and leave the rest to the B2BUA (False)."""
        kind = getattr(event, "type", None)
        if kind not in ("recording_finished", "recording_error"):
            return False
        # _start registers a recorder in the same step that creates it (no await between), so an
        # unknown recorder is someone else's (an IVR message, a test): leave it to them.
        live = self._by_recorder.get(event.object)
        if live is None:
            return False
        self._on_engine(live, kind, int(getattr(event, "value", 0)), getattr(event, "text", ""))
        return True

    def _on_engine(self, live: _Live, kind: str, value: int, text: str) -> None:
        if kind == "recording_error":
            self._counts["engine_errors"] += 1
            live.engine_error = text or "write error"
            log.error("recording %s: engine error: %s", live.info.recording, live.engine_error)
            return
        self._by_recorder.pop(live.recorder, None)
        self._mark_stopping(live, self.clock(), "end")  # stop() or the call's end (its leg went)
        self._spawn(self._finish, live)

    def handle_call_event(self, event: Any) -> None:
        """Follow the B2BUA's call events: policy at ``call.answered``, holds, forget at the end."""
        name = getattr(event, "name", None)
        call_id = getattr(event, "call_id", None)
        if call_id is None:
            return
        at = getattr(event, "at", None) or self.clock()
        if name == "call.answered":
            if self.calls is not None and self._nursery is not None:
                self._nursery.start_soon(self._apply_quietly, call_id)
        elif name == "call.held":
            self._holds.setdefault(call_id, at)
            live = self._by_call.get(call_id)
            if live is not None:
                live.info = replace(live.info, holds=live.info.holds + ({"at": at, "until": None},))
        elif name == "call.resumed":
            self._holds.pop(call_id, None)
            live = self._by_call.get(call_id)
            if live is not None and live.info.holds and live.info.holds[-1].get("until") is None:
                live.info = replace(live.info, holds=live.info.holds[:-1] + ({**live.info.holds[-1], "until": at},))
        elif name == "call.ended":
            self._holds.pop(call_id, None)
            self._decisions.pop(call_id, None)
            self._recorded.discard(call_id)
            self._dtmf.pop(call_id, None)

    async def _apply_quietly(self, call_id: str) -> None:
        try:
            await self.apply_policy(call_id)
        except Exception:
            log.exception("recording: policy for call %s failed", call_id)

    def handle_digit(self, call_id: str, digit: str, *, by: str | None = None) -> str | None:
        """Feed a DTMF digit keyed on a call; runs start/stop/pause/resume when a configured code completes.

        Returns the action started (its errors - e.g. pausing an unrecorded call - are logged).
        """
        codes = self.config.dtmf_codes
        if not codes:
            return None
        matcher = self._dtmf.get(call_id)
        if matcher is None:
            matcher = self._dtmf[call_id] = DtmfCodes(codes)
        action = matcher.feed(digit)
        if action is not None and self._nursery is not None:
            self._nursery.start_soon(self._dtmf_action, call_id, action, by or "dtmf")
        return action

    async def _dtmf_action(self, call_id: str, action: str, by: str) -> None:
        try:
            await getattr(self, action)(call_id, by=by)
        except (RecordingConflict, RecordingNotFound, ValueError) as exc:
            log.info("recording: DTMF %s on %s refused: %s", action, call_id, exc)

    # ------------------------------------------------------------------ finishing
    async def _finish(self, live: _Live, *, recovered: bool = False) -> None:
        self._finishing += 1
        try:
            async with live.lock:
                await self._persist(live)
                try:
                    info, result = await trio.to_thread.run_sync(
                        partial(archive.finalize, self.store, live.info, keys=self.keys,
                                analytics=self.config.analytics, vad_mode=self.config.vad_mode,
                                chunk_size=self.config.chunk_size, recovered=recovered, ended_at=live.info.ended_at),
                        limiter=self._limiter)
                except Exception as exc:
                    log.exception("recording %s: could not be finished", live.info.recording)
                    live.info = replace(live.info, state="failed", error=f"{type(exc).__name__}: {exc}")
                    self._counts["failed"] += 1
                    await trio.to_thread.run_sync(partial(self.store.write, live.info))
                    await self._append(self._event("recording.failed", live.info, error=live.info.error))
                    return
                live.info = info
                self._counts["ready"] += 1
                self._counts["bytes_stored"] += info.stored_size or 0
                if recovered:
                    self._counts["recovered"] += 1
                await self._announce(info, result)
                await trio.to_thread.run_sync(archive.cleanup_spool, self.store, info.recording)
        finally:
            self._finishing -= 1
            self._live.pop(live.info.recording, None)
            live.done.set()

    async def _announce(self, info: RecordingInfo, result: CallAnalytics | None) -> None:
        ready = self._event(
            "recording.ready", info, file=info.file, format=info.format, stereo=info.stereo,
            sample_rate=info.sample_rate, started_at=info.started_at, ended_at=info.ended_at,
            duration=info.duration, size=info.size, sha256=info.sha256, encrypted=info.encrypted,
            key_id=info.key_id, paused_seconds=info.paused_seconds, pauses=[dict(p) for p in info.pauses],
            legs=[dict(x) for x in info.legs], queue=info.queue, trunk=info.trunk, recovered=info.recovered)
        await self._append(ready, publish=True)
        if result is not None:
            self._counts["analyzed"] += 1
            await self._append(self._event("recording.analyzed", info, **result.to_dict()))

    async def wait_ready(self, recording: str) -> dict:
        """Wait until a recording this service is finishing is stored (or failed); its record."""
        live = self._live.get(recording)
        if live is not None:
            await live.done.wait()
        return await self.get(recording)

    # ------------------------------------------------------------------ recovery
    async def recover(self) -> RecoveryReport:
        """Finish every recording the spool holds from a previous run (repair, analyse, encrypt, link).

        The daemon calls it at start, after :meth:`run` has started and
        before calls are taken.
        """
        infos = await trio.to_thread.run_sync(self.store.in_progress)
        recovered, failed, again = [], [], []
        for info in infos:
            if info.recording in self._live:
                continue
            stored = await trio.to_thread.run_sync(_stored_record, self.store, info)
            if stored is not None and stored.state == "ready":
                # Stored before the crash, spool not yet cleaned: announce again (at least once).
                await self._announce(stored, None)
                await trio.to_thread.run_sync(archive.cleanup_spool, self.store, stored.recording)
                again.append(stored.recording)
                continue
            audio = self.store.absolute(info)
            exists = await trio.to_thread.run_sync(audio.exists)
            if not exists:
                bad = replace(info, state="failed", ended_at=info.ended_at or info.started_at,
                              error="no audio: the process died before the engine wrote any", recovered=True)
                await trio.to_thread.run_sync(self.store.write, bad)
                await trio.to_thread.run_sync(_remove_quietly, self.store.spool / f"{info.recording}.json")
                await self._append(self._event("recording.failed", bad, error=bad.error, recovered=True))
                self._counts["failed"] += 1
                failed.append(info.recording)
                continue
            ended = info.ended_at
            if ended is None:
                ended = (await trio.to_thread.run_sync(os.stat, audio)).st_mtime
            live = _Live(replace(info, state="stopping", ended_at=ended), None)
            self._live[info.recording] = live
            await self._finish(live, recovered=True)
            (recovered if live.info.state == "ready" else failed).append(info.recording)
        return RecoveryReport(recovered=tuple(recovered), failed=tuple(failed), reannounced=tuple(again))

    # ------------------------------------------------------------------ queries
    async def get(self, recording: str) -> dict:
        """One recording's metadata record (live or stored)."""
        live = self._live.get(recording)
        if live is not None:
            return live.info.to_dict()
        info = await trio.to_thread.run_sync(self.store.find, recording)
        if info is None:
            raise RecordingNotFound(f"recording: no recording {recording!r}")
        return info.to_dict()

    async def list(self, *, call: str | None = None, start: float | None = None, end: float | None = None,
                   limit: int = 100) -> list[dict]:
        """Recordings, newest first: live ones, then stored (``start <= started_at < end``)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit: must be an int >= 1, got {limit!r}")

        def want(info: RecordingInfo) -> bool:
            return ((call is None or info.call == call) and (start is None or info.started_at >= start)
                    and (end is None or info.started_at < end))

        live = sorted((x.info for x in self._live.values() if want(x.info)), key=lambda i: -i.started_at)
        seen = {i.recording for i in live}
        stored = await trio.to_thread.run_sync(
            partial(self.store.newest, call=call, start=start, end=end, limit=limit))
        out = [i.to_dict() for i in live] + [i.to_dict() for i in stored if i.recording not in seen]
        return out[:limit]

    # ------------------------------------------------------------------ legal hold and retention
    async def set_legal_hold(self, recording: str, hold: bool = True, *, by: str = "api",
                             reason: str | None = None) -> dict:
        """Set or clear a recording's legal hold (a held recording is never purged)."""
        if not isinstance(hold, bool):
            raise ValueError(f"hold: must be true or false, got {hold!r}")
        now = self.clock()
        live = self._live.get(recording)
        fields = {"legal_hold": hold, "legal_hold_by": by, "legal_hold_reason": reason, "legal_hold_at": now}
        if live is not None:
            async with live.lock:  # after any finishing in progress, so its result keeps the hold
                live.info = replace(live.info, **fields)
                await self._persist(live)
            info = live.info
        else:
            found = await trio.to_thread.run_sync(self.store.find, recording)
            if found is None:
                raise RecordingNotFound(f"recording: no recording {recording!r}")
            if found.state == "purged":
                raise RecordingConflict(f"recording: {recording} was purged")
            info = replace(found, **fields)
            await trio.to_thread.run_sync(self.store.write, info)
        await self._append(self._event("recording.legal_hold", info, hold=hold, by=by, reason=reason, at=now))
        await self._audit(by, "recording.legal_hold", {"recording": recording, "hold": hold, "reason": reason})
        return info.to_dict()

    async def _audit(self, principal: str, method: str, params: dict) -> None:
        audit = getattr(self.log, "audit", None)
        if audit is None:
            return
        try:
            await audit(principal=principal, method=method, params=params)
        except Exception:
            self._counts["event_errors"] += 1
            log.exception("recording: could not audit %s", method)

    async def purge(self, *, now: float | None = None, dry_run: bool = False, by: str = "retention") -> PurgeReport:
        """Delete stored recordings past their retention, except those under legal hold.

        Each one purged gets a ``recording.purged`` event and an audit entry.
        """
        now = self.clock() if now is None else now
        infos = await trio.to_thread.run_sync(lambda: [i for _, i in self.store.scan()])
        purge, held = select_for_purge(infos, self.config, now)
        by_id = {i.recording: i for i in infos}
        freed = 0
        for c in purge:
            info = by_id[c.recording]
            freed += info.stored_size or 0
            if dry_run:
                continue
            await trio.to_thread.run_sync(partial(archive.purge_file, self.store, info, at=now, by=by))
            self._counts["purged"] += 1
            await self._append(self._event("recording.purged", info, by=by, age_days=round(c.age_days, 3),
                                           retention_days=c.retention_days, at=now))
        if not dry_run and purge:
            await self._audit(by, "recording.purge", {"purged": [c.recording for c in purge],
                                                      "held": [c.recording for c in held]})
        return PurgeReport(dry_run=dry_run, purged=tuple(purge), held=tuple(held), bytes_freed=freed)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _stored_record(store: RecordingStore, info: RecordingInfo) -> RecordingInfo | None:
    p = store.root / info.day / f"{info.recording}.json"
    return store.read(p) if p.exists() else None
