"""orchestrator.acd: the call centre's routing policy (queues, agents, skills, offers).

The policy is pure (DESIGN rule 4): :class:`Acd` takes inputs with ``now``
and returns, in order, :mod:`~orchestrator.acd.events` records (the event log)
and :mod:`~orchestrator.acd.effects` records (what the Trio service does:
ring, cancel, bridge, announce, dial a callback, route out). It imports no
trio, socket, time, asyncio or threading.

Modules:

* :mod:`~orchestrator.acd.config` - :class:`QueueConfig`, :class:`AgentConfig`,
  strategies, join/leave-empty rules, escalation steps, destinations;
* :mod:`~orchestrator.acd.policy` - :class:`Acd`, snapshots, statistics and
  :func:`expected_wait` (the EWT estimator);
* :mod:`~orchestrator.acd.events` / :mod:`~orchestrator.acd.effects` - outputs;
* :mod:`~orchestrator.acd.errors` - :class:`NotFoundError`, :class:`ConflictError`.
"""

from . import effects, events, naive
from .config import (
    MAX_PROFICIENCY,
    MIN_PROFICIENCY,
    AgentConfig,
    CallbackMode,
    Destination,
    EscalationStep,
    JoinRule,
    QueueConfig,
    Strategy,
)
from .effects import (
    Announce,
    Bridge,
    CancelOffer,
    DialCallback,
    Effect,
    Offer,
    OfferCallbackOption,
    PlayComfort,
    RefuseAnswer,
    Route,
    StartHoldMusic,
)
from .errors import AcdError, ConflictError, NotFoundError
from .events import EVENT_TYPES, Event, event_from_dict
from .policy import (
    AGENT_STATES,
    Acd,
    AcdStatistics,
    AgentSnapshot,
    CallSnapshot,
    QueueSnapshot,
    expected_wait,
)

__all__ = [
    "AGENT_STATES",
    "EVENT_TYPES",
    "MAX_PROFICIENCY",
    "MIN_PROFICIENCY",
    "Acd",
    "AcdError",
    "AcdStatistics",
    "AgentConfig",
    "AgentSnapshot",
    "Announce",
    "Bridge",
    "CallSnapshot",
    "CallbackMode",
    "CancelOffer",
    "ConflictError",
    "Destination",
    "DialCallback",
    "Effect",
    "EscalationStep",
    "Event",
    "JoinRule",
    "NotFoundError",
    "Offer",
    "OfferCallbackOption",
    "PlayComfort",
    "QueueConfig",
    "QueueSnapshot",
    "RefuseAnswer",
    "Route",
    "StartHoldMusic",
    "Strategy",
    "effects",
    "event_from_dict",
    "events",
    "expected_wait",
    "naive",
]
