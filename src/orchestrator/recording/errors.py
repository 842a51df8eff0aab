"""Errors of the recording service, mapped to JSON-RPC codes by their ``rpc_code``.

The control layer's :func:`orchestrator.control.errors.error_from_exception`
turns an exception with ``rpc_code`` -32004 into "not found" and -32009 into
"conflict"; bad arguments are plain ``ValueError`` (-32602).
"""

from __future__ import annotations

__all__ = ["RecordingConflict", "RecordingError", "RecordingNotFound"]


class RecordingError(Exception):
    """Base of the recording service's errors."""


class RecordingNotFound(RecordingError, LookupError):
    """No such call or recording (-32004)."""

    rpc_code = -32004


class RecordingConflict(RecordingError):
    """The request does not fit the state: already recording, not paused, policy never... (-32009)."""

    rpc_code = -32009
