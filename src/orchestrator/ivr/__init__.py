"""orchestrator.ivr: IVR flows as data, and the pure machine that runs them.

Flows are YAML files (``ivr/NAME.yaml``, JSON Schema in ``ivr/schema.json``)
compiled into immutable, versioned :class:`Flow` objects. A :class:`Session`
walks one call through a flow: events in (:class:`CallStarted`,
:class:`Digit`, :class:`PlaybackDone`, :class:`Timeout`,
:class:`LookupResult`/:class:`LookupFailed`, :class:`RecordDone`,
:class:`QueueResult`, :class:`CallerHangup`), effects out (:class:`Play`,
:class:`StartTimer`, :class:`Record`, :class:`Lookup`, :class:`Enqueue`,
:class:`Transfer`, :class:`RequestCallback`, :class:`Hangup`,
:class:`SetVariable`, ... and a final :class:`FlowEnded`). Time comes in as
``now``; nothing here imports trio, socket, time, asyncio or threading.

:class:`FlowRegistry` swaps flow sets atomically (hot reload: new calls get
the new version, calls in progress keep theirs) and keeps per-node metrics.
:func:`lint` and the ``hotline ivr`` command line live in
:mod:`orchestrator.ivr.cli`.
"""

from .compiler import FlowError, Problem, check_file, load_flow, load_flows, parse_flow
from .effects import (
    TERMINAL_OUTCOMES,
    CancelTimer,
    DigitsCollected,
    Effect,
    Enqueue,
    FlowEnded,
    Hangup,
    Lookup,
    NodeEntered,
    Play,
    Record,
    RequestCallback,
    SetVariable,
    StartTimer,
    StopPlayback,
    Transfer,
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
from .expr import Expression, ExpressionError, Template, compile_expression, compile_template
from .flow import Flow, FlowSet
from .hours import BusinessHours
from .metrics import FlowMetrics, MetricsSnapshot, NodeMetrics
from .nodes import NODE_TYPES
from .registry import FlowRegistry, RegistryStatistics, ReloadResult
from .session import MAX_HOPS, Session

__all__ = [
    "FlowError",
    "Problem",
    "check_file",
    "load_flow",
    "load_flows",
    "parse_flow",
    "TERMINAL_OUTCOMES",
    "CancelTimer",
    "DigitsCollected",
    "Effect",
    "Enqueue",
    "FlowEnded",
    "Hangup",
    "Lookup",
    "NodeEntered",
    "Play",
    "Record",
    "RequestCallback",
    "SetVariable",
    "StartTimer",
    "StopPlayback",
    "Transfer",
    "CallerHangup",
    "CallStarted",
    "Digit",
    "Event",
    "LookupFailed",
    "LookupResult",
    "PlaybackDone",
    "QueueResult",
    "RecordDone",
    "Timeout",
    "Expression",
    "ExpressionError",
    "Template",
    "compile_expression",
    "compile_template",
    "Flow",
    "FlowSet",
    "BusinessHours",
    "FlowMetrics",
    "MetricsSnapshot",
    "NodeMetrics",
    "NODE_TYPES",
    "FlowRegistry",
    "RegistryStatistics",
    "ReloadResult",
    "MAX_HOPS",
    "Session",
]
