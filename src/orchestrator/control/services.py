"""What each JSON-RPC method needs from the services it operates, as small Protocols.

The method table (:mod:`orchestrator.control.methods`) is written against
these Protocols only; the daemon binds the real services. Any method here may
be a plain function or a coroutine function (the dispatcher awaits what is
awaitable). Results are JSON-ready values: dicts, lists, numbers, strings,
or frozen dataclasses (converted field by field). Errors: the ACD's
``NotFoundError``/``ConflictError``, :class:`~orchestrator.control.errors.RpcError`
subclasses, or ``ValueError`` naming the bad argument (-32602).

Bindings to the services that exist already:

* :class:`AcdBinding` - agents and queues over the pure ACD policy
  (:class:`orchestrator.acd.Acd`), with ``queue.stats`` from
  :func:`orchestrator.metrics.queue_stats`;
* :class:`FlowRegistryIvr` - ``ivr.list/validate/reload`` over
  :class:`orchestrator.ivr.FlowRegistry` and the IVR compiler's lint;
* :class:`EventLogReports` - ``report.queues/agents/intervals`` from ACD
  events in memory with :mod:`orchestrator.metrics` (the contract's one definition);
* :class:`StoreReports` - the same and ``cdr.query`` over the store's event
  log (:mod:`orchestrator.report`, which reads only the events a window needs);
* :class:`StoreAudit` - the audit sink and ``audit.query`` over the store's
  append-only audit table (an entry is durable before the call is answered).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from .protocol import to_json

__all__ = [
    "AcdBinding",
    "AgentService",
    "CallService",
    "CdrService",
    "EventLogReports",
    "FlowRegistryIvr",
    "IvrService",
    "QueueService",
    "RecordingService",
    "ReportService",
    "Services",
    "StoreAudit",
    "StoreReports",
    "SupervisorService",
    "SystemService",
]

T = TypeVar("T")
MaybeAwaitable = T | Awaitable[T]
Json = Any


@runtime_checkable
class AgentService(Protocol):
    """``agent.*``: agents as dicts with at least agent, state, reason, device, call, queue."""

    def list_agents(self) -> MaybeAwaitable[list[Json]]: ...
    def get_agent(self, agent: str) -> MaybeAwaitable[Json]: ...
    def login(self, agent: str, device: str, *, state: str = "available",
              reason: str | None = None) -> MaybeAwaitable[Json]: ...
    def logout(self, agent: str) -> MaybeAwaitable[Json]: ...
    def set_state(self, agent: str, state: str, *, reason: str | None = None) -> MaybeAwaitable[Json]: ...


@runtime_checkable
class QueueService(Protocol):
    """``queue.*``: live queue state, and the contract metrics for ``queue.stats``."""

    def list_queues(self) -> MaybeAwaitable[list[Json]]: ...
    def get_queue(self, queue: str) -> MaybeAwaitable[Json]: ...
    def queue_stats(self, queue: str, *, start: float | None = None,
                    end: float | None = None) -> MaybeAwaitable[Json]: ...


@runtime_checkable
class CallService(Protocol):
    """``call.*`` (the B2BUA's CallManager). A call dict has at least call, state, agent, caller."""

    def list_calls(self) -> MaybeAwaitable[list[Json]]: ...
    def get_call(self, call: str) -> MaybeAwaitable[Json]: ...
    def originate(self, from_: str, to: str, *, caller_id: str | None = None, queue: str | None = None,
                  data: Mapping[str, Any] | None = None) -> MaybeAwaitable[Json]: ...
    def answer(self, call: str) -> MaybeAwaitable[Json]: ...
    def hangup(self, call: str, *, reason: str | None = None) -> MaybeAwaitable[Json]: ...
    def hold(self, call: str) -> MaybeAwaitable[Json]: ...
    def unhold(self, call: str) -> MaybeAwaitable[Json]: ...
    def transfer(self, call: str, to: str, *, mode: str = "blind") -> MaybeAwaitable[Json]: ...
    def send_dtmf(self, call: str, digits: str) -> MaybeAwaitable[Json]: ...
    def set_data(self, call: str, data: Mapping[str, Any], *, merge: bool = True) -> MaybeAwaitable[Json]: ...


@runtime_checkable
class RecordingService(Protocol):
    """``recording.*``: one recording at a time per call; a recording dict has recording, call, state.
    ``by`` names the principal, so pauses (PCI DSS) and stops say who did them."""

    def start(self, call: str, *, by: str = "api") -> MaybeAwaitable[Json]: ...
    def stop(self, call: str, *, by: str = "api") -> MaybeAwaitable[Json]: ...
    def pause(self, call: str, *, by: str = "api") -> MaybeAwaitable[Json]: ...
    def resume(self, call: str, *, by: str = "api") -> MaybeAwaitable[Json]: ...
    def get(self, recording: str) -> MaybeAwaitable[Json]: ...
    def list(self, *, call: str | None = None, start: float | None = None, end: float | None = None,
             limit: int = 100) -> MaybeAwaitable[list[Json]]: ...


@runtime_checkable
class SupervisorService(Protocol):
    """``supervisor.listen/whisper/barge``: a monitor session; a new mode on a live session keeps it."""

    def monitor(self, call: str, device: str, mode: str, *, supervisor: str) -> MaybeAwaitable[Json]: ...


@runtime_checkable
class IvrService(Protocol):
    def list_flows(self) -> MaybeAwaitable[list[Json]]: ...
    def validate(self, source: str, *, name: str) -> MaybeAwaitable[list[Json]]: ...
    def reload(self) -> MaybeAwaitable[Json]: ...


@runtime_checkable
class CdrService(Protocol):
    def query(self, *, start: float | None = None, end: float | None = None, queue: str | None = None,
              agent: str | None = None, limit: int = 100) -> MaybeAwaitable[list[Json]]: ...


@runtime_checkable
class ReportService(Protocol):
    def queues(self, *, start: float | None = None, end: float | None = None) -> MaybeAwaitable[list[Json]]: ...
    def agents(self, *, start: float | None = None, end: float | None = None) -> MaybeAwaitable[list[Json]]: ...
    def intervals(self, *, start: float | None = None, end: float | None = None,
                  interval: int = 900) -> MaybeAwaitable[list[Json]]: ...


@runtime_checkable
class SystemService(Protocol):
    """``system.stats``: each service's ``statistics()`` gathered by the daemon."""

    def statistics(self) -> MaybeAwaitable[Json]: ...


@dataclass
class Services:
    """The services the control plane operates; ``None``: not running (its methods say so)."""

    agents: AgentService | None = None
    queues: QueueService | None = None
    calls: CallService | None = None
    recordings: RecordingService | None = None
    supervisor: SupervisorService | None = None
    ivr: IvrService | None = None
    cdr: CdrService | None = None
    reports: ReportService | None = None
    system: SystemService | None = None


# ---------------------------------------------------------------------------------------------- bindings


class AcdBinding:
    """:class:`AgentService` and :class:`QueueService` over the pure routing policy.

    ``clock()`` gives the policy's ``now``; every list of outputs an input
    returns (events and effects, in order) goes to ``on_outputs`` - the
    daemon's ACD service executes the effects and logs the events; a test
    publishes the events. ``events()`` returns the ACD events ``queue.stats``
    computes its metrics over (e.g. today's, from the event log).
    """

    def __init__(self, acd: Any, *, clock: Callable[[], float], on_outputs: Callable[[list], None] | None = None,
                 events: Callable[[], Iterable[Any]] | None = None) -> None:
        self.acd = acd
        self.clock = clock
        self.on_outputs = on_outputs
        self.events = events if events is not None else (lambda: ())

    def _emit(self, outputs: list) -> None:
        if self.on_outputs is not None and outputs:
            self.on_outputs(outputs)

    @staticmethod
    def _agent_dict(snap: Any) -> dict[str, Any]:
        return to_json(snap)

    def list_agents(self) -> list[dict[str, Any]]:
        return [self._agent_dict(self.acd.agent_snapshot(a)) for a in self.acd.agents()]

    def get_agent(self, agent: str) -> dict[str, Any]:
        return self._agent_dict(self.acd.agent_snapshot(agent))

    def login(self, agent: str, device: str, *, state: str = "available", reason: str | None = None) -> dict:
        self._emit(self.acd.agent_login(agent, device, self.clock(), state=state, reason=reason))
        return self.get_agent(agent)

    def logout(self, agent: str) -> dict[str, Any]:
        self._emit(self.acd.agent_logout(agent, self.clock()))
        return self.get_agent(agent)

    def set_state(self, agent: str, state: str, *, reason: str | None = None) -> dict[str, Any]:
        self._emit(self.acd.set_state(agent, state, self.clock(), reason=reason))
        return self.get_agent(agent)

    def list_queues(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [to_json(self.acd.queue_snapshot(q, now)) for q in self.acd.queues()]

    def get_queue(self, queue: str) -> dict[str, Any]:
        return to_json(self.acd.queue_snapshot(queue, self.clock()))

    def queue_stats(self, queue: str, *, start: float | None = None, end: float | None = None) -> dict[str, Any]:
        from orchestrator.metrics import queue_stats

        snap = self.acd.queue_snapshot(queue, self.clock())
        return queue_stats(snap, self.events(), start=start, end=end).to_dict()


class FlowRegistryIvr:
    """:class:`IvrService` over a :class:`~orchestrator.ivr.FlowRegistry` loading ``flow_dir``."""

    def __init__(self, registry: Any, flow_dir: str | Path) -> None:
        self.registry = registry
        self.flow_dir = Path(flow_dir)

    def list_flows(self) -> list[dict[str, Any]]:
        flows = self.registry.flows
        return [{"name": f.name, "version": f.version, "description": f.description, "nodes": len(f.nodes),
                 "languages": list(f.languages), "path": f.path} for f in (flows[n] for n in sorted(flows))]

    def validate(self, source: str, *, name: str) -> list[dict[str, Any]]:
        """Lint a flow's YAML text as if it were ``flow_dir/NAME.yaml`` (prompts looked up there)."""
        from orchestrator.ivr import parse_flow

        _, problems = parse_flow(source, name=name, path=f"{name}.yaml", base_dir=self.flow_dir)
        return [{"line": p.line, "message": p.message} for p in problems]

    def reload(self) -> dict[str, Any]:
        from .errors import Conflict

        result = self.registry.reload(self.flow_dir)
        if not result.ok:
            raise Conflict(f"ivr: {len(result.problems)} problem(s) in the flows; nothing was changed",
                           data={"problems": [str(p) for p in result.problems]})
        return {"version": result.version, "added": list(result.added), "changed": list(result.changed),
                "removed": list(result.removed)}


class EventLogReports:
    """:class:`ReportService` from ACD events (``events()``: records or their dicts) with orchestrator.metrics."""

    def __init__(self, events: Callable[[], Iterable[Any]], *, sl_threshold: float | Mapping[str, float] = 20.0,
                 short_abandon: float | Mapping[str, float] = 5.0) -> None:
        self.events = events
        self.sl_threshold = sl_threshold
        self.short_abandon = short_abandon

    def queues(self, *, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        from orchestrator.metrics import queue_metrics

        out = queue_metrics(self.events(), sl_threshold=self.sl_threshold, short_abandon=self.short_abandon,
                            start=start, end=end)
        return [to_json(m) for m in out.values()]

    def agents(self, *, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        from orchestrator.metrics import agent_metrics

        return [to_json(m) for m in agent_metrics(self.events(), start=start, end=end).values()]

    def intervals(self, *, start: float | None = None, end: float | None = None,
                  interval: int = 900) -> list[dict[str, Any]]:
        from orchestrator.metrics import interval_metrics

        rows = interval_metrics(self.events(), interval=interval, start=start, end=end,
                                sl_threshold=self.sl_threshold, short_abandon=self.short_abandon)
        return [to_json(r) for r in rows]


class StoreReports:
    """:class:`ReportService` and :class:`CdrService` over the store's :class:`~orchestrator.store.EventLog`.

    ``from``/``to`` not given: the whole log, as the in-memory reports (the
    CLI's ``today``/``now`` defaults are the CLI's). Per-queue service-level
    thresholds are not passed through yet: ``sl_threshold``/``short_abandon``
    apply to every queue.
    """

    def __init__(self, log: Any, *, sl_threshold: float = 20.0, short_abandon: float = 5.0) -> None:
        self.log = log
        self.sl_threshold = sl_threshold
        self.short_abandon = short_abandon

    async def queues(self, *, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        from orchestrator.report import report_queues

        return await report_queues(self.log, start=start, end=end, sl_threshold=self.sl_threshold,
                                   short_abandon=self.short_abandon)

    async def agents(self, *, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        from orchestrator.report import report_agents

        return await report_agents(self.log, start=start, end=end)

    async def intervals(self, *, start: float | None = None, end: float | None = None,
                        interval: int = 900) -> list[dict[str, Any]]:
        from orchestrator.report import report_intervals

        return await report_intervals(self.log, start=start, end=end, interval=interval // 60,
                                      sl_threshold=self.sl_threshold, short_abandon=self.short_abandon)

    async def query(self, *, start: float | None = None, end: float | None = None, queue: str | None = None,
                    agent: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        from orchestrator.report import cdr_query

        return await cdr_query(self.log, start=start, end=end, queue=queue, agent=agent, limit=limit)


class StoreAudit:
    """The audit sink over the store: ``append`` returns once the entry is durable.

    ``query`` returns the newest entries first, like :class:`MemoryAuditLog`;
    the store reads a window oldest first, so without ``from`` it reads the
    whole table to find the newest - give a window on a big log.
    """

    def __init__(self, log: Any) -> None:
        self.log = log

    async def append(self, entry: Any) -> None:
        await self.log.audit(principal=entry.principal, method=entry.method, params=dict(entry.params),
                             result=entry.result, error=entry.error, role=entry.role, at=entry.at)

    async def query(self, *, principal: str | None = None, method: str | None = None, start: float | None = None,
                    end: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.log.audit_entries(since=start, until=end, principal=principal, method=method, limit=None)
        return [r.to_json() for r in reversed(rows[-limit:])]
