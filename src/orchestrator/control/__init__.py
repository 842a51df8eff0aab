"""orchestrator.control: the JSON-RPC 2.0 control plane.

CRMs, the wallboard and ``hotline ctl`` operate the call centre through it
(CONTRACT.md, "JSON-RPC 2.0 control"). Layers, from the wire inwards:

* :mod:`~orchestrator.control.protocol` - sans-IO JSON-RPC 2.0 framing:
  :func:`parse` text into requests (batches, notifications, ids, every error
  case of the specification), :func:`assemble` the responses;
  :class:`LineFramer` for line-delimited streams;
* :mod:`~orchestrator.control.server` - :class:`RpcServer`: sessions,
  authentication, roles, parameter validation, audit, dispatch over
  :mod:`~orchestrator.control.methods` (the one declarative method table,
  with :mod:`~orchestrator.control.schema` parameter schemas);
* :mod:`~orchestrator.control.auth` - hashed bearer tokens and roles;
  :mod:`~orchestrator.control.audit` - the audit trail and its sink;
* :mod:`~orchestrator.control.events` - :class:`EventHub`: topic
  subscriptions, role filtering, bounded per-connection queues, the screen pop;
* :mod:`~orchestrator.control.services` - the Protocols the methods need
  from the services, and bindings to the ACD, the IVR registry and the
  metrics;
* transports on Trio: :mod:`~orchestrator.control.unix` (the control
  socket) and WebSocket ``/rpc`` in :mod:`orchestrator.http`; both run
  :func:`~orchestrator.control.connection.serve_session`;
* :mod:`~orchestrator.control.telemetry` - Prometheus families and the
  periodic ``queue.stats`` event; :mod:`~orchestrator.control.ctl` -
  ``hotline ctl``;
* :mod:`~orchestrator.control.plane` - :class:`ControlPlane`: all of the
  above assembled from the ``[control]``/``[auth]`` config for the daemon.
"""

from .audit import AuditEntry, AuditLog, AuditSink, MemoryAuditLog, redact
from .auth import (
    ROLES,
    Principal,
    TokenStore,
    hash_token,
    load_or_create_token,
    new_token,
    principals_from_config,
)
from .errors import (
    CONFLICT,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_AUTHENTICATED,
    NOT_FOUND,
    PARSE_ERROR,
    Conflict,
    Forbidden,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    NotAuthenticated,
    NotFound,
    ParseError,
    RpcError,
)
from .events import EventHub, HubStatistics, Subscription
from .methods import METHODS, Context, Method, method_table
from .protocol import Invalid, LineFramer, Message, MessageTooLarge, Request, assemble, parse
from .schema import Param, Schema
from .server import ControlStatistics, RpcServer, Session
from .services import (
    AcdBinding,
    AgentService,
    CallService,
    CdrService,
    EventLogReports,
    FlowRegistryIvr,
    IvrService,
    QueueService,
    RecordingService,
    ReportService,
    Services,
    StoreAudit,
    StoreReports,
    SupervisorService,
    SystemService,
)

__all__ = [
    "CONFLICT",
    "FORBIDDEN",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHODS",
    "METHOD_NOT_FOUND",
    "NOT_AUTHENTICATED",
    "NOT_FOUND",
    "PARSE_ERROR",
    "ROLES",
    "AcdBinding",
    "AgentService",
    "AuditEntry",
    "AuditLog",
    "AuditSink",
    "CallService",
    "CdrService",
    "Conflict",
    "Context",
    "ControlStatistics",
    "EventHub",
    "EventLogReports",
    "FlowRegistryIvr",
    "Forbidden",
    "HubStatistics",
    "InternalError",
    "Invalid",
    "InvalidParams",
    "InvalidRequest",
    "IvrService",
    "LineFramer",
    "MemoryAuditLog",
    "Message",
    "MessageTooLarge",
    "Method",
    "MethodNotFound",
    "NotAuthenticated",
    "NotFound",
    "Param",
    "ParseError",
    "Principal",
    "QueueService",
    "RecordingService",
    "ReportService",
    "Request",
    "RpcError",
    "RpcServer",
    "Schema",
    "Services",
    "Session",
    "StoreAudit",
    "StoreReports",
    "Subscription",
    "SupervisorService",
    "SystemService",
    "TokenStore",
    "assemble",
    "hash_token",
    "load_or_create_token",
    "method_table",
    "new_token",
    "parse",
    "principals_from_config",
    "redact",
]
