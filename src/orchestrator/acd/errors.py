"""Errors raised by the routing policy for API misuse (never for network races).

A late or duplicate report from the network (an answer after another agent
won, a hang-up for a call already gone) is not an error: the policy answers
it with a decision (``RefuseAnswer``) or ignores and counts it. These errors
are for calls that cannot be right whatever the timing, and map onto the
JSON-RPC codes of CONTRACT.md: -32004 not found, -32009 conflict.
"""

from __future__ import annotations

__all__ = ["AcdError", "ConflictError", "NotFoundError"]


class AcdError(Exception):
    """Base class of the routing policy's errors."""


class NotFoundError(AcdError, LookupError):
    """No such agent, queue or device (JSON-RPC -32004)."""


class ConflictError(AcdError, ValueError):
    """The request does not fit the current state (JSON-RPC -32009)."""
