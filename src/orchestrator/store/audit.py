"""The audit log: who did what over JSON-RPC, when, and with what result.

Every state-changing JSON-RPC call is written here (CONTRACT.md, "JSON-RPC
2.0 control"): the principal and its role, the method, the parameters with
secrets redacted, when, and the result ("ok" or "error" with the message).
Entries go through the event log's writer thread (durable when ``await
log.audit(...)`` returns, so the JSON-RPC layer writes the entry before it
answers) into the ``audit`` table, where database triggers refuse UPDATE and
DELETE on both backends.

Redaction replaces the value of any key that names a secret, at any depth:
passwords, tokens, keys, credentials, PINs, card data, and ``digits`` (DTMF
sent on a call may be a card number typed during a paused recording).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["REDACTED", "AuditEntry", "check_audit", "is_secret_key", "redact"]

REDACTED = "***"

_SECRET_NAMES = frozenset({
    "password", "passwd", "pass", "passphrase", "secret", "token", "key", "api_key", "apikey", "authorization",
    "auth", "credentials", "credential", "pin", "cvv", "cvc", "card", "card_number", "pan", "private_key",
    "digits", "cookie",
})
_SECRET_SUFFIXES = ("_password", "_passwd", "_secret", "_token", "_key", "_pin", "_credentials")


def is_secret_key(key: str) -> bool:
    """Does this parameter name hold a secret? (case and ``-``/``_`` insensitive)."""
    k = re.sub(r"[-\s]", "_", key.strip().lower())
    return k in _SECRET_NAMES or k.endswith(_SECRET_SUFFIXES)


def redact(params: Any) -> Any:
    """A copy of ``params`` with every secret-named value replaced by ``"***"``."""
    if isinstance(params, Mapping):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v)) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return [redact(v) for v in params]
    return params


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One audited call. ``id`` orders entries of one database; ``params`` are already redacted."""

    id: int
    at: float
    node: str
    principal: str
    role: str | None
    method: str
    params: Any
    result: str
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "node": self.node, "principal": self.principal, "role": self.role,
                "method": self.method, "params": self.params, "result": self.result, "error": self.error}


def check_audit(principal: Any, role: Any, method: Any, result: Any, error: Any, at: Any) -> None:
    """ValueError naming the bad argument of an audit entry."""
    for name, value in (("principal", principal), ("method", method), ("result", result)):
        if not isinstance(value, str) or not value or "\x00" in value:
            raise ValueError(f"{name}: must be a non-empty string (no NUL), got {value!r}")
    for name, value in (("role", role), ("error", error)):
        if value is not None and (not isinstance(value, str) or "\x00" in value):
            raise ValueError(f"{name}: must be a string (no NUL) or None, got {value!r}")
    if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at)):
        raise ValueError(f"at: must be a finite time in seconds or None, got {at!r}")
