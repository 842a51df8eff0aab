"""The call centre assembled: ACD service, IVR runner, queue handler and their wiring.

:class:`CallCentre` is what the daemon builds from its configuration and
plugs into the B2BUA and the registrar::

    centre = CallCentre(acd=Acd(queues, agents), registry=registry, log=event_log, bus=event_hub,
                        prompts=build_queue_prompts("var/prompts"), surveys={"*": "survey"})
    manager = CallManager(endpoint, engine, router=plan, locator=..., authenticator=...,
                          handlers=centre.handlers, events=centre.call_events)
    centre.bind(manager)
    registrar = RegistrarService(reg, sink=centre.registrations)
    async with trio.open_nursery() as nursery:
        await nursery.start(centre.run)
        ...

``centre.acd`` serves the JSON-RPC ``agent.*`` and ``queue.*`` methods (it
has the methods of :class:`~orchestrator.control.AgentService` and
:class:`~orchestrator.control.QueueService`); ``centre.ivr`` runs the flows;
``statistics()`` gathers every part's counters (``system.stats``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from orchestrator.acd import Acd, AgentConfig, QueueConfig
from orchestrator.acd.service import AcdService, AcdServiceStatistics, QueuePrompts
from orchestrator.ivr import FlowRegistry
from orchestrator.ivr.runner import IvrRunner, IvrRunnerStatistics
from orchestrator.ivr.runner_http import CrmClient, CrmConfig

from .events import CallEventBridge, EventFanout, FanoutStatistics, RegistrationBridge
from .queue import QueueHandler, QueueHandlerStatistics

__all__ = ["CallCentre", "CallCentreStatistics"]

_IVR_KEYS = {"flows", "prompts", "recordings", "surveys", "crm_url", "crm_method", "crm_headers", "music",
             "barge_in_grace"}


@dataclass(frozen=True, kw_only=True)
class CallCentreStatistics:
    acd: AcdServiceStatistics
    ivr: IvrRunnerStatistics
    queues: QueueHandlerStatistics
    events: FanoutStatistics
    call_events: int
    call_event_errors: int
    registrations: int
    registration_errors: int
    crm: Mapping[str, int]


class CallCentre:
    """The call centre's services (see the module docstring).

    ``acd``: the routing policy (queues and agents configured). ``registry``:
    the IVR flows. ``log``: the event log (None: nothing stored). ``bus``: the
    JSON-RPC event hub (None: nothing published). ``prompts``: the queue's
    audio. ``crm``: where lookups go. ``recordings``: voicemail directory.
    ``surveys``: queue -> post-call survey flow (``"*"``: every queue).
    """

    def __init__(self, *, acd: Acd, registry: FlowRegistry, log: Any = None, bus: Any = None,
                 prompts: QueuePrompts | None = None, crm: CrmClient | CrmConfig | None = None,
                 recordings: str | Path | None = None, surveys: Mapping[str, str] | None = None,
                 barge_in_grace: float = 1.0) -> None:
        self.events = EventFanout(log, bus)
        self.prompts = prompts or QueuePrompts()
        self.acd = AcdService(acd, record=self.events, prompts=self.prompts)
        if isinstance(crm, CrmConfig):
            crm = CrmClient(crm)
        self.ivr = IvrRunner(registry, acd=self.acd, record=self.events, crm=crm, recordings=recordings,
                             surveys=surveys, beep=self.prompts.beep, barge_in_grace=barge_in_grace,
                             voicemail_prompt=self.prompts.file(self.prompts.voicemail))
        self.queues = QueueHandler(self.acd, self.ivr)
        self.call_events = CallEventBridge(self.acd, self.events)
        self.registrations = RegistrationBridge(self.acd, self.events)
        self.registry = registry
        self.manager: Any = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, base_dir: str | Path = ".", log: Any = None,
                    bus: Any = None) -> CallCentre:
        """Build from the daemon's TOML: ``[[queue]]``, ``[[agent]]`` and ``[ivr]`` (``flows`` dir,
        ``prompts`` dir of the queue prompts, ``recordings``, ``surveys`` table, ``crm_url``,
        ``crm_method``, ``crm_headers``, ``music`` table name -> WAV, ``barge_in_grace``).
        Paths are relative to ``base_dir``. ValueError names the bad key."""
        base = Path(base_dir)
        queues = [QueueConfig.from_dict(q) for q in config.get("queue", [])]
        agents = [AgentConfig.from_dict(a) for a in config.get("agent", [])]
        ivr = dict(config.get("ivr", {}))
        unknown = sorted(set(ivr) - _IVR_KEYS)
        if unknown:
            raise ValueError(f"ivr.{unknown[0]}: unknown setting (one of {sorted(_IVR_KEYS)})")
        registry = FlowRegistry()
        if "flows" in ivr:
            result = registry.reload(base / ivr["flows"])
            if not result.ok:
                raise ValueError(f"ivr.flows: {len(result.problems)} problem(s): "
                                 + "; ".join(str(p) for p in result.problems[:5]))
        music = {name: str(base / path) for name, path in dict(ivr.get("music", {})).items()}
        prompts = QueuePrompts(directory=base / ivr["prompts"] if "prompts" in ivr else None, music=music)
        crm = CrmConfig(jsonrpc_url=ivr.get("crm_url"), http_method=ivr.get("crm_method", "GET"),
                        headers=ivr.get("crm_headers", {}))
        return cls(acd=Acd(queues, agents), registry=registry, log=log, bus=bus, prompts=prompts, crm=crm,
                   recordings=base / ivr["recordings"] if "recordings" in ivr else None,
                   surveys=ivr.get("surveys"), barge_in_grace=float(ivr.get("barge_in_grace", 1.0)))

    @property
    def handlers(self) -> dict[str, Any]:
        """The B2BUA's call handlers: ``{"queue": ..., "ivr": ...}``."""
        return {"queue": self.queues, "ivr": self.ivr}

    def bind(self, manager: Any) -> None:
        """Attach the B2BUA once it exists (callbacks dial through it; call routes come from it)."""
        self.manager = manager
        self.acd.bind(manager)
        self.call_events.manager = manager

    async def run(self, *, task_status: trio.TaskStatus[CallCentre] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the ACD service and the IVR runner until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.acd.run)
            await nursery.start(self.ivr.run)
            task_status.started(self)

    def statistics(self) -> CallCentreStatistics:
        return CallCentreStatistics(
            acd=self.acd.statistics(), ivr=self.ivr.statistics(), queues=self.queues.statistics(),
            events=self.events.statistics(), call_events=self.call_events.handled,
            call_event_errors=self.call_events.errors, registrations=self.registrations.handled,
            registration_errors=self.registrations.errors, crm=self.ivr.crm.statistics())
