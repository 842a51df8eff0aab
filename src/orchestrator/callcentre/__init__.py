"""orchestrator.callcentre: the ACD and the IVR as live services, wired to the B2BUA.

* :class:`CallCentre` - assembles the :class:`~orchestrator.acd.service.AcdService`,
  the :class:`~orchestrator.ivr.runner.IvrRunner` and the :class:`QueueHandler`
  and plugs them into the B2BUA (handlers, call events), the registrar
  (device events), the event log and the JSON-RPC event bus;
* :mod:`~orchestrator.callcentre.events` - the fan-out to the log and the
  bus, the B2BUA and registrar bridges;
* :mod:`~orchestrator.callcentre.prompts` - the queue's synthesized prompts.
"""

from orchestrator.acd.service import (
    AcdService,
    AcdServiceStatistics,
    QueueOutcome,
    QueuePrompts,
    ServiceClock,
)
from orchestrator.ivr.runner import IvrRunner, IvrRunnerStatistics
from orchestrator.ivr.runner_http import CrmClient, CrmConfig, CrmLookupError

from .centre import CallCentre, CallCentreStatistics
from .events import CallEventBridge, EventBus, EventFanout, FanoutStatistics, RegistrationBridge, device_of
from .prompts import QUEUE_PROMPT_TEXTS, build_queue_prompts
from .queue import QueueHandler, QueueHandlerStatistics

__all__ = [
    "QUEUE_PROMPT_TEXTS",
    "AcdService",
    "AcdServiceStatistics",
    "CallCentre",
    "CallCentreStatistics",
    "CallEventBridge",
    "CrmClient",
    "CrmConfig",
    "CrmLookupError",
    "EventBus",
    "EventFanout",
    "FanoutStatistics",
    "IvrRunner",
    "IvrRunnerStatistics",
    "QueueHandler",
    "QueueHandlerStatistics",
    "QueueOutcome",
    "QueuePrompts",
    "RegistrationBridge",
    "ServiceClock",
    "build_queue_prompts",
    "device_of",
]
