"""orchestrator.store: the one event log, and everything derived from it (DESIGN rule 5).

Every call, leg, queue and agent change is one appended event; call records
(CDRs), agent states, reports, the wallboard and metrics are derived from
it, so the numbers agree everywhere. SQLite by default
(``sqlite:///var/hotline.db``), PostgreSQL when several nodes share state
(``postgresql://...``, with LISTEN/NOTIFY so each node sees the others'
events within milliseconds).

Modules:

* :mod:`~orchestrator.store.log` - :class:`EventLog`: append (durable or
  fire-and-forget, group commit on a writer thread), read, subscribe, call
  records, crash recovery, audit, retention, statistics;
* :mod:`~orchestrator.store.events` - the envelope (:class:`StoredEvent`),
  type patterns, :class:`EventFilter`;
* :mod:`~orchestrator.store.cdr` - the call record projection
  (:class:`CallDetailRecord`, the fold, the events recovery synthesizes);
* :mod:`~orchestrator.store.audit` - :class:`AuditEntry`, :func:`redact`;
* :mod:`~orchestrator.store.schema` - versioned migrations for both backends;
* :mod:`~orchestrator.store.sqlite`, :mod:`~orchestrator.store.postgres` -
  durability and ordering choices of each backend.
"""

from .audit import AuditEntry, redact
from .cdr import OUTCOMES, CallDetailRecord
from .errors import SchemaError, StoreClosedError, StoreError
from .events import EventFilter, StoredEvent
from .log import AgentStateRow, EventLog, LogStatistics, RecoveryReport, open_event_log
from .schema import SCHEMA_VERSION
from .tail import Subscription
from .url import StorageUrl, parse_url

__all__ = [
    "OUTCOMES",
    "SCHEMA_VERSION",
    "AgentStateRow",
    "AuditEntry",
    "CallDetailRecord",
    "EventFilter",
    "EventLog",
    "LogStatistics",
    "RecoveryReport",
    "SchemaError",
    "StorageUrl",
    "StoreClosedError",
    "StoreError",
    "StoredEvent",
    "Subscription",
    "open_event_log",
    "parse_url",
    "redact",
]
