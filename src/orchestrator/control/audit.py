"""The audit trail of the control plane: who did what, when, and how it ended.

Every call of a state-changing method is appended to an :class:`AuditSink`,
whatever its outcome (a refused call - not authenticated, forbidden, bad
params - is recorded too: it is exactly what an auditor looks for), and so
is every ``auth.login``. Parameters are copied with secrets redacted
(:func:`redact`): tokens, passwords, PINs, card numbers, and whatever the
method table marks secret (the digits of ``call.send_dtmf``: a caller's card
number typed through an agent must not land in a log, PCI DSS 3.4).

The store engineer's audit table (``orchestrator.store``) has the same
columns as :class:`AuditEntry`; the daemon binds it as the sink.
:class:`MemoryAuditLog` is the in-memory sink used in tests and when no
store is configured; it also answers ``audit.query``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["REDACTED", "AuditEntry", "AuditLog", "AuditSink", "MemoryAuditLog", "redact"]

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"(^|[_-])(token|tokens|password|passwd|secret|pin|cvv|cvc|pan|card|card_number|api_key|apikey|"
    r"authorization|credentials?)($|[_-])", re.IGNORECASE)


def _is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact(params: Any, secret: Iterable[str] = (), _depth: int = 0) -> Any:
    """A copy of ``params`` with secret values replaced by ``"***"``.

    A key is secret if its name says so (token, password, pin, card...) at
    any depth, or if it is in ``secret`` (top level only: the method table's
    own list). Positional params are redacted by the same rules after the
    table has named them, so the caller passes the bound dict.
    """
    secret = frozenset(secret)
    if _depth > 16:
        return REDACTED
    if isinstance(params, Mapping):
        return {str(k): (REDACTED if (_depth == 0 and k in secret) or _is_secret(str(k))
                         else redact(v, (), _depth + 1)) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return [redact(v, (), _depth + 1) for v in params]
    return params


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One audited call. ``result`` is ``"ok"`` or ``"error"``; ``error`` is ``"CODE message"``."""

    at: float
    principal: str
    role: str | None
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    result: str = "ok"
    error: str | None = None
    transport: str | None = None
    peer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "principal": self.principal, "role": self.role, "method": self.method,
                "params": dict(self.params), "result": self.result, "error": self.error,
                "transport": self.transport, "peer": self.peer}


@runtime_checkable
class AuditSink(Protocol):
    """Where audit entries go. ``append`` may be a coroutine function (a store writing on a thread)."""

    def append(self, entry: AuditEntry) -> None | Awaitable[None]: ...


@runtime_checkable
class AuditLog(AuditSink, Protocol):
    """An audit sink that admins can query (``audit.query``)."""

    def query(self, *, principal: str | None = None, method: str | None = None, start: float | None = None,
              end: float | None = None, limit: int = 100) -> list[AuditEntry] | Awaitable[list[AuditEntry]]: ...


class MemoryAuditLog:
    """The last ``capacity`` entries in memory, newest last."""

    def __init__(self, capacity: int = 100_000) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity: must be an int >= 1, got {capacity!r}")
        self.entries: deque[AuditEntry] = deque(maxlen=capacity)

    def append(self, entry: AuditEntry) -> None:
        if not isinstance(entry, AuditEntry):
            raise ValueError("entry: expected an AuditEntry")
        self.entries.append(entry)

    def query(self, *, principal: str | None = None, method: str | None = None, start: float | None = None,
              end: float | None = None, limit: int = 100) -> list[AuditEntry]:
        """Matching entries, newest first, at most ``limit``."""
        out = []
        for e in reversed(self.entries):
            if ((principal is None or e.principal == principal) and (method is None or e.method == method)
                    and (start is None or e.at >= start) and (end is None or e.at < end)):
                out.append(e)
                if len(out) >= limit:
                    break
        return out

    def __len__(self) -> int:
        return len(self.entries)
