"""The flow machine: one :class:`Session` per call, events in, effects out.

Pure by construction: no clock (``now`` comes with every event, as an aware
datetime or POSIX seconds), no I/O, no threads, no trio. A driver does::

    session = registry.start("main")
    effects = session.call_started({"caller_id": "+4420..."}, now=now)
    ...carry out the effects, then feed back what happened:
    effects = session.digit("2", now=now)
    effects = session.playback_done(play_id, now=now)

and stops when a :class:`~orchestrator.ivr.effects.FlowEnded` comes out
(``session.finished``). A session keeps the :class:`FlowSet` it was started
with, so a hot reload never changes a call in progress.

Type-ahead: digits that arrive when no input node is listening (during a
prompt without barge-in, a lookup, a play node) wait in a buffer of
``max_typeahead`` digits for the next input node; barge-in digits stop the
prompt and go to the same buffer. An event that answers nothing the session
is waiting for is ignored and counted (``ignored_events``). A flow that
passes the linter cannot loop without waiting, but a session still stops
after ``MAX_HOPS`` node changes in one event (outcome ``loop``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from .effects import (
    CancelTimer,
    DigitsCollected,
    Effect,
    FlowEnded,
    Hangup,
    NodeEntered,
    Play,
    SetVariable,
    StartTimer,
    StopPlayback,
)
from .events import (
    CallerHangup,
    CallStarted,
    Digit,
    Event,
    LookupFailed,
    LookupResult,
    PlaybackDone,
    QueueResult,
    RecordDone,
    Timeout,
)
from .flow import Flow, FlowSet
from .metrics import FlowMetrics, NullMetrics
from .nodes import IDLE, Node

__all__ = ["Session", "MAX_HOPS"]

MAX_HOPS = 200


def _epoch(now: datetime | float | int) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now: a datetime must be timezone-aware")
        return now.timestamp()
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise ValueError(f"now: expected an aware datetime or POSIX seconds, not {type(now).__name__}")
    return float(now)


class Session:
    """One call's walk through a flow."""

    def __init__(
        self,
        flows: FlowSet | Flow,
        flow: str | None = None,
        *,
        metrics: FlowMetrics | None = None,
        max_typeahead: int = 32,
    ) -> None:
        if isinstance(flows, Flow):
            flows = FlowSet.of(flows)
            flow = flow or next(iter(flows))
        if not isinstance(flows, FlowSet):
            raise ValueError("flows: expected a FlowSet or a Flow")
        if flow not in flows:
            raise ValueError(f"flow: no flow named {flow!r} (have {', '.join(sorted(flows)) or 'none'})")
        if isinstance(max_typeahead, bool) or not isinstance(max_typeahead, int) or max_typeahead < 0:
            raise ValueError("max_typeahead: expected an int >= 0")
        self.flows = flows
        self.flow: Flow = flows[flow]
        self.node: Node | None = None
        self.metrics = metrics if metrics is not None else NullMetrics()
        self.max_typeahead = max_typeahead
        self.vars: dict[str, Any] = {}
        self.now = 0.0
        self.started = False
        self.finished = False
        self.outcome: str | None = None
        self.ignored_events = 0
        self.dropped_digits = 0
        # Per-node state, reset on every node entry.
        self.phase = IDLE
        self.digits = ""
        self.attempts = 0
        self.entry_seq = 0
        # Outstanding effects the session waits for.
        self.typeahead = ""
        self.play_id: int | None = None
        self.timer_id: int | None = None
        self.request_id: int | None = None
        self.play_seq = self.timer_seq = self.request_seq = 0
        self.visits: dict[tuple[str, str], int] = {}
        self._pending: tuple[str, str | None, str | None] | None = None
        self._out: list[Effect] = []

    # ------------------------------------------------------------------ public API
    @property
    def variables(self) -> Mapping[str, Any]:
        """A read-only view of the session's variables."""
        return MappingProxyType(self.vars)

    @property
    def node_name(self) -> str | None:
        return self.node.name if self.node is not None else None

    @property
    def version(self) -> str:
        """The version of the flow set this call runs on."""
        return self.flows.version

    def handle(self, event: Event, *, now: datetime | float) -> list[Effect]:
        """Feed one event; returns the effects to carry out, in order."""
        if not isinstance(event, Event):
            raise ValueError(f"event: expected an ivr Event, not {type(event).__name__}")
        self.now = _epoch(now)
        out = self._out = []
        if self.finished:
            self.ignored_events += 1
            return out
        node = self.node
        kind = type(event)
        if not self.started:
            if kind is CallStarted:
                self._start(event.variables)  # type: ignore[attr-defined]
            elif kind is CallerHangup:
                self.started = True
                self._end("caller_hangup")
            else:
                self.ignored_events += 1
            self._run()
            return out
        assert node is not None
        if kind is Digit:
            handled = node.on_digit(self, event.digit)  # type: ignore[attr-defined]
        elif kind is PlaybackDone:
            pid = event.play_id  # type: ignore[attr-defined]
            handled = self.play_id is not None and (pid is None or pid == self.play_id)
            if handled:
                self.play_id = None
                handled = node.on_playback_done(self)
        elif kind is Timeout:
            tid = event.timer_id  # type: ignore[attr-defined]
            handled = self.timer_id is not None and (tid is None or tid == self.timer_id)
            if handled:
                self.timer_id = None
                handled = node.on_timeout(self)
        elif kind is LookupResult or kind is LookupFailed:
            rid = event.request_id  # type: ignore[attr-defined]
            handled = self.request_id is not None and (rid is None or rid == self.request_id)
            if handled:
                if kind is LookupResult:
                    handled = node.on_lookup_result(self, event.data)  # type: ignore[attr-defined]
                else:
                    handled = node.on_lookup_failed(self, event.reason)  # type: ignore[attr-defined]
        elif kind is RecordDone:
            handled = node.on_record_done(self, event.path, event.duration)  # type: ignore[attr-defined]
        elif kind is QueueResult:
            handled = node.on_queue_result(self, event.outcome)  # type: ignore[attr-defined]
        elif kind is CallerHangup:
            self.metrics.hung_up(self.flow.name, node.name)
            self._end("caller_hangup")
            handled = True
        else:  # CallStarted again
            handled = False
        if not handled:
            self.ignored_events += 1
        self._run()
        return out

    # Convenience wrappers: one per event type.
    def call_started(
        self, variables: Mapping[str, Any] | None = None, *, now: datetime | float
    ) -> list[Effect]:
        return self.handle(CallStarted(variables=variables or {}), now=now)

    def digit(self, digit: str, *, now: datetime | float) -> list[Effect]:
        return self.handle(Digit(digit=digit), now=now)

    def playback_done(self, play_id: int | None = None, *, now: datetime | float) -> list[Effect]:
        return self.handle(PlaybackDone(play_id=play_id), now=now)

    def timeout(self, timer_id: int | None = None, *, now: datetime | float) -> list[Effect]:
        return self.handle(Timeout(timer_id=timer_id), now=now)

    def lookup_result(
        self, data: Mapping[str, Any], request_id: int | None = None, *, now: datetime | float
    ) -> list[Effect]:
        return self.handle(LookupResult(data=data, request_id=request_id), now=now)

    def lookup_failed(
        self, reason: str = "error", request_id: int | None = None, *, now: datetime | float
    ) -> list[Effect]:
        return self.handle(LookupFailed(reason=reason, request_id=request_id), now=now)

    def record_done(self, path: str, duration: float, *, now: datetime | float) -> list[Effect]:
        return self.handle(RecordDone(path=path, duration=duration), now=now)

    def queue_result(self, outcome: str, *, now: datetime | float) -> list[Effect]:
        return self.handle(QueueResult(outcome=outcome), now=now)

    def hangup(self, *, now: datetime | float) -> list[Effect]:
        return self.handle(CallerHangup(), now=now)

    def __repr__(self) -> str:
        state = "finished " + str(self.outcome) if self.finished else f"at {self.node_name!r}"
        return f"<Session {self.flow.name} {state} version {self.version}>"

    # ------------------------------------------------------------------ API for nodes
    def emit(self, effect: Effect) -> None:
        self._out.append(effect)

    def go(self, label: str, target: str) -> None:
        """Leave the current node by branch ``label`` for node ``target`` of this flow."""
        self._pending = (label, None, target)

    def go_flow(self, flow: str, node: str | None) -> None:
        """Leave the current node for another flow (its start, or ``node``)."""
        self._pending = ("goto", flow, node)

    def finish(self, outcome: str, effect: Effect | None) -> None:
        """End the session through the current node (``hangup``, ``transfer``, ``answered``...)."""
        if effect is not None:
            self._out.append(effect)
        if self.node is not None:
            self.metrics.exited(self.flow.name, self.node.name, outcome)
        self._end(outcome)

    def play(self, names: tuple[str, ...], barge_in: bool) -> None:
        self.play_seq += 1
        self.play_id = self.play_seq
        self._out.append(
            Play(
                prompts=self.flow.prompts(names, self.vars.get("language")),
                barge_in=barge_in,
                play_id=self.play_seq,
            )
        )

    def stop_play(self) -> None:
        if self.play_id is not None:
            self._out.append(StopPlayback(play_id=self.play_id))
            self.play_id = None

    def start_timer(self, seconds: float) -> None:
        if self.timer_id is not None:
            self._out.append(CancelTimer(timer_id=self.timer_id))
        self.timer_seq += 1
        self.timer_id = self.timer_seq
        self._out.append(StartTimer(timer_id=self.timer_seq, seconds=seconds, at=self.now + seconds))

    def cancel_timer(self) -> None:
        if self.timer_id is not None:
            self._out.append(CancelTimer(timer_id=self.timer_id))
            self.timer_id = None

    def buffer_digit(self, digit: str) -> None:
        if len(self.typeahead) < self.max_typeahead:
            self.typeahead += digit
        else:
            self.dropped_digits += 1

    def set_var(self, name: str, value: Any) -> None:
        self.vars[name] = value
        self._out.append(SetVariable(name=name, value=value))

    def snapshot_vars(self) -> Mapping[str, Any]:
        return MappingProxyType(dict(self.vars))

    def report_digits(self, digits: str) -> None:
        node = self.node
        assert node is not None
        self._out.append(DigitsCollected(flow=self.flow.name, node=node.name, digits=digits))

    def count_retry(self, reason: str) -> None:
        node = self.node
        assert node is not None
        self.metrics.retried(self.flow.name, node.name, reason)

    # ------------------------------------------------------------------ internals
    def _start(self, variables: Mapping[str, Any]) -> None:
        self.started = True
        self.vars = dict(self.flow.defaults)
        self.vars.update(variables)
        self.vars.setdefault("language", self.flow.languages[0])
        self._pending = ("", None, self.flow.start)

    def _run(self) -> None:
        hops = 0
        while self._pending is not None and not self.finished:
            label, flow_name, target = self._pending
            self._pending = None
            hops += 1
            if hops > MAX_HOPS:
                self.finish("loop", Hangup(reason="loop"))
                return
            self._leave(label)
            if flow_name is not None:
                flow = self.flows.get(flow_name)
                if flow is None or (target is not None and target not in flow.nodes):
                    self.finish("hangup", Hangup(reason=f"no flow {flow_name!r}"))
                    return
                self.flow = flow
                for key, value in flow.defaults.items():  # the new flow's defaults fill what is unset
                    self.vars.setdefault(key, value)
                target = target or flow.start
            self._enter(target)  # type: ignore[arg-type]

    def _leave(self, label: str) -> None:
        node = self.node
        if node is None:
            return
        self.metrics.exited(self.flow.name, node.name, label)
        self.cancel_timer()
        self.stop_play()
        self.request_id = None

    def _enter(self, name: str) -> None:
        flow = self.flow
        node = flow.nodes[name]
        self.node = node
        self.entry_seq += 1
        self.phase = IDLE
        self.digits = ""
        self.attempts = 0
        self.metrics.entered(flow.name, name)
        self._out.append(NodeEntered(flow=flow.name, node=name, node_type=node.TYPE))
        if node.max_visits is not None:
            key = (flow.name, name)
            visits = self.visits[key] = self.visits.get(key, 0) + 1
            if visits > node.max_visits:
                self.go("on_max_visits", node.on_max_visits)  # type: ignore[arg-type]
                return
        node.enter(self)

    def _end(self, outcome: str) -> None:
        self.finished = True
        self.outcome = outcome
        self._pending = None
        self.timer_id = self.play_id = self.request_id = None
        self._out.append(
            FlowEnded(
                outcome=outcome,
                flow=self.flow.name,
                node=self.node.name if self.node is not None else "",
                variables=MappingProxyType(dict(self.vars)),
            )
        )
