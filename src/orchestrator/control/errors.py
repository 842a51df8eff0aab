"""JSON-RPC 2.0 error objects and the contract's error codes.

The JSON-RPC 2.0 specification (section 5.1, "Error object") reserves
-32768..-32000; it defines -32700 parse error, -32600 invalid request,
-32601 method not found, -32602 invalid params and -32603 internal error,
and leaves -32000..-32099 to the server. CONTRACT.md ("JSON-RPC 2.0
control") takes four of those: -32001 not authenticated, -32003 forbidden,
-32004 not found, -32009 conflict (wrong state, e.g. hold on a ringing call).

A handler raises :class:`RpcError` (or a subclass); errors from the services
are mapped by :func:`error_from_exception`, so a service never has to know
about JSON-RPC. Anything else is an internal error whose details stay in the
daemon's log, not in the response.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CONFLICT",
    "FORBIDDEN",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "NOT_AUTHENTICATED",
    "NOT_FOUND",
    "PARSE_ERROR",
    "Conflict",
    "Forbidden",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "MethodNotFound",
    "NotAuthenticated",
    "NotFound",
    "ParseError",
    "RpcError",
    "error_from_exception",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_AUTHENTICATED = -32001
FORBIDDEN = -32003
NOT_FOUND = -32004
CONFLICT = -32009


class RpcError(Exception):
    """An error response: ``code``, a one-line ``message``, optional JSON ``data``."""

    code: int = INTERNAL_ERROR

    def __init__(self, message: str, *, data: Any = None, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        """The specification's error object (``data`` only when there is some)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.message!r})"


class ParseError(RpcError):
    """-32700: the text is not JSON."""

    code = PARSE_ERROR


class InvalidRequest(RpcError):
    """-32600: the JSON is not a valid Request object."""

    code = INVALID_REQUEST


class MethodNotFound(RpcError):
    """-32601: no such method (or a reserved ``rpc.`` name)."""

    code = METHOD_NOT_FOUND


class InvalidParams(RpcError):
    """-32602: the message names the parameter and says why (``agent: required``)."""

    code = INVALID_PARAMS


class InternalError(RpcError):
    """-32603: our fault; the details are in the daemon's log."""

    code = INTERNAL_ERROR


class NotAuthenticated(RpcError):
    """-32001: call ``auth.login`` first (or send a bearer token on the WebSocket upgrade)."""

    code = NOT_AUTHENTICATED


class Forbidden(RpcError):
    """-32003: this principal's role may not do this."""

    code = FORBIDDEN


class NotFound(RpcError):
    """-32004: no such agent, queue, call, recording..."""

    code = NOT_FOUND


class Conflict(RpcError):
    """-32009: the request does not fit the current state (hold on a ringing call)."""

    code = CONFLICT


def error_from_exception(exc: BaseException) -> RpcError | None:
    """The error response for an exception a service raised, or None if it is a bug.

    * :class:`RpcError` as it is;
    * the ACD's ``NotFoundError`` / ``ConflictError`` (and any exception with an
      ``rpc_code`` attribute of -32004, -32009 or -32602, for other services);
    * ``ValueError``: the services' API convention for a bad argument, with a
      message that names it, so -32602 with that message.
    """
    if isinstance(exc, RpcError):
        return exc
    code = getattr(exc, "rpc_code", None)
    if code in (NOT_FOUND, CONFLICT, INVALID_PARAMS):
        return RpcError(str(exc), code=code)
    from orchestrator.acd.errors import ConflictError, NotFoundError

    if isinstance(exc, NotFoundError):
        return NotFound(str(exc))
    if isinstance(exc, ConflictError):
        return Conflict(str(exc))
    if isinstance(exc, ValueError):
        return InvalidParams(str(exc))
    return None
