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

from . import effects, events
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
from . import naive
from .policy import AGENT_STATES, Acd, AcdStatistics, AgentSnapshot, CallSnapshot, QueueSnapshot, expected_wait

__all__ = [
    "Acd", "AcdStatistics", "AgentSnapshot", "CallSnapshot", "QueueSnapshot", "AGENT_STATES", "expected_wait",
    "AgentConfig", "QueueConfig", "Strategy", "JoinRule", "CallbackMode", "Destination", "EscalationStep",
    "MIN_PROFICIENCY", "MAX_PROFICIENCY",
    "AcdError", "NotFoundError", "ConflictError",
    "Event", "EVENT_TYPES", "event_from_dict", "events", "effects", "naive",
    "Effect", "Offer", "CancelOffer", "Bridge", "RefuseAnswer", "StartHoldMusic", "Announce", "PlayComfort",
    "OfferCallbackOption", "DialCallback", "Route",
]
