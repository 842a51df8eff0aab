"""orchestrator.http: the HTTP listener (wallboard, JSON-RPC over WebSocket, /metrics, /healthz).

* :mod:`~orchestrator.http.server` - :class:`HttpServer` on Trio with h11 and
  wsproto, :class:`HealthChecks`, :class:`StaticFiles`, :class:`HttpLimits`;
* :mod:`~orchestrator.http.prometheus` - :class:`Registry` of counters,
  gauges and histograms, rendered in the Prometheus text format 0.0.4.

The server is imported lazily so that ``orchestrator.control`` can use the
metrics registry without importing trio's HTTP machinery.
"""

from __future__ import annotations

from typing import Any

from .prometheus import CONTENT_TYPE, Counter, Gauge, Histogram, Registry, format_value

__all__ = [
    "CONTENT_TYPE",
    "Counter",
    "Gauge",
    "HealthChecks",
    "Histogram",
    "HttpLimits",
    "HttpServer",
    "Registry",
    "StaticFiles",
    "format_value",
]


def __getattr__(name: str) -> Any:
    if name in ("HealthChecks", "HttpLimits", "HttpServer", "StaticFiles"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
