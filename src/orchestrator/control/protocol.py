"""JSON-RPC 2.0 framing, sans-IO: text in, Request objects out; responses in, text out.

Follows the JSON-RPC 2.0 specification (jsonrpc.org/specification, 2010-03-26):

* 4 Request object: ``jsonrpc`` exactly ``"2.0"``, ``method`` a string
  (names starting ``rpc.`` are reserved: -32601), ``params`` an array
  (by position) or an object (by name) if present, ``id`` a string, a number
  or null if present.
* 4.1 A Request without an ``id`` member is a notification: it never gets a
  response, not even an error. ``"id": null`` is *not* a notification.
* 5 Response object: ``result`` xor ``error``; ``id`` echoes the request's,
  and is null when it could not be detected (parse error, invalid request).
* 6 Batch: an array of requests gets an array of responses (in any order;
  ours keeps the request order); an empty array is one -32600 error (not an
  array); a batch of only notifications gets nothing at all; each invalid
  element gets its own -32600; a parse error is one -32700 for the whole text.

Nothing here imports trio, socket or time (DESIGN rule 3). A transport hands
:func:`parse` one message (a line, a WebSocket text message), runs the
requests, and hands the per-request responses to :func:`assemble`, which
returns the text to send or ``None``. :class:`LineFramer` cuts a byte stream
into lines (the Unix socket: one JSON text per line) with a size bound.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest, ParseError, RpcError

__all__ = [
    "MAX_BATCH",
    "Invalid",
    "LineFramer",
    "Message",
    "MessageTooLarge",
    "Request",
    "assemble",
    "dumps",
    "error_response",
    "notification",
    "parse",
    "result_response",
    "to_json",
]

MAX_BATCH = 100
_ID_TYPES = (str, int, float)


@dataclass(frozen=True, slots=True)
class Request:
    """A valid Request object. ``notification``: no ``id`` member, so no response."""

    method: str
    params: list | dict | None
    id: str | int | float | None
    notification: bool


@dataclass(frozen=True, slots=True)
class Invalid:
    """An element that is not a valid Request: it gets ``error`` with ``id`` (null if unknown)."""

    id: str | int | float | None
    error: RpcError


@dataclass(frozen=True, slots=True)
class Message:
    """One parsed text: its items in order, and whether the responses form a batch array."""

    items: tuple[Request | Invalid, ...]
    batch: bool


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity, which are not JSON (RFC 8259 section 6).
    raise ValueError(f"{name} is not JSON")


# One decoder and one encoder for the module: json.loads/dumps with options build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _loads(text: str) -> Any:
    if text.startswith("\ufeff"):  # json.loads refuses a BOM; the bare decoder would read past it
        raise ValueError("Unexpected UTF-8 BOM")
    return _DECODER.decode(text)


def _valid_id(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, _ID_TYPES):
        return value is None
    return not (isinstance(value, float) and not math.isfinite(value))


def _request(obj: Any) -> Request | Invalid:
    if not isinstance(obj, dict):
        return Invalid(None, InvalidRequest("Invalid Request: a request must be a JSON object"))
    has_id = "id" in obj
    rid = obj.get("id")
    if has_id and not _valid_id(rid):
        return Invalid(None, InvalidRequest("Invalid Request: id must be a string, a number or null"))
    if obj.get("jsonrpc") != "2.0":
        return Invalid(rid, InvalidRequest('Invalid Request: jsonrpc must be exactly "2.0"'))
    method = obj.get("method")
    if not isinstance(method, str):
        return Invalid(rid, InvalidRequest("Invalid Request: method must be a string"))
    params = obj.get("params")
    if "params" in obj and not isinstance(params, (list, dict)):
        return Invalid(rid, InvalidRequest("Invalid Request: params must be an array or an object"))
    return Request(method=method, params=params, id=rid, notification=not has_id)


def parse(data: bytes | str, *, max_batch: int = MAX_BATCH) -> Message:
    """Parse one JSON-RPC message (a request or a batch).

    Never raises: whatever is wrong becomes an :class:`Invalid` item that
    carries the error response to send.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
        obj = _loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else ("nesting too deep" if isinstance(
            exc, RecursionError) else str(exc))
        return Message((Invalid(None, ParseError(f"Parse error: {why}")),), batch=False)
    if isinstance(obj, list):
        if not obj:
            return Message((Invalid(None, InvalidRequest("Invalid Request: empty batch")),), batch=False)
        if len(obj) > max_batch:
            return Message((Invalid(None, InvalidRequest(
                f"Invalid Request: a batch holds at most {max_batch} requests, got {len(obj)}")),), batch=False)
        return Message(tuple(_request(o) for o in obj), batch=True)
    return Message((_request(obj),), batch=False)


def to_json(value: Any) -> Any:
    """A JSON-ready copy: dataclasses and mappings to objects, tuples to arrays, NaN/inf to null."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [to_json(v) for v in items]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            return to_json(to_dict())
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def dumps(obj: Any) -> str:
    """Compact JSON text (UTF-8 characters kept, no NaN)."""
    return _ENCODER.encode(obj)


def result_response(rid: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": rid}


def error_response(rid: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_dict(), "id": rid}


def notification(method: str, params: Any) -> dict[str, Any]:
    """A server-to-client notification (events are sent as these)."""
    return {"jsonrpc": "2.0", "method": method, "params": params}


def assemble(message: Message, responses: list[dict[str, Any] | None]) -> str | None:
    """The text to send for ``message``, given one response (or None) per item, or None to send nothing."""
    if len(responses) != len(message.items):
        raise ValueError("responses: need one per item of the message")
    if message.batch:
        out = [r for r in responses if r is not None]
        return dumps(out) if out else None
    return dumps(responses[0]) if responses[0] is not None else None


class MessageTooLarge(Exception):
    """A line (or message) longer than the transport allows; the connection cannot resynchronise."""


class LineFramer:
    """Cuts a byte stream into lines: one JSON text per line (``\\n``, an optional ``\\r`` before it).

    ``feed(data)`` returns the complete lines (empty lines are skipped). A
    line longer than ``max_line`` bytes raises :class:`MessageTooLarge`; so
    does a partial line that has grown past it, so memory stays bounded.
    """

    def __init__(self, max_line: int = 1 << 20) -> None:
        if not isinstance(max_line, int) or isinstance(max_line, bool) or max_line < 1:
            raise ValueError(f"max_line: must be an int >= 1, got {max_line!r}")
        self.max_line = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines: list[bytes] = []
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end < 0:
                break
            line = bytes(self._buf[start:end])
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line:
                raise MessageTooLarge(f"a line of {len(line)} bytes (at most {self.max_line})")
            if line.strip():
                lines.append(line)
        del self._buf[:start]
        if len(self._buf) > self.max_line:
            raise MessageTooLarge(f"a line of more than {self.max_line} bytes")
        return lines

    @property
    def pending(self) -> int:
        """Bytes of an incomplete line held."""
        return len(self._buf)
