"""The event envelope: one row shape for every event the system appends (DESIGN rule 5).

Every producer (the ACD, the B2BUA, the IVR, the recorder, the control
layer) appends the same envelope, not a table per type:

======== =========================================================================
seq      global sequence number, gapless, assigned at commit (1, 2, 3...)
node     the Hotline node that appended it (stable across restarts: crash
         recovery closes only its own calls)
at       when it happened, Unix time in seconds (float)
type     dotted name, the JSON-RPC notification name: ``call.queued``, ``agent.state``
call     call id, if the event concerns a call (``data["call"]``)
agent    agent id, if it concerns an agent (``data["agent"]``)
queue    queue name, if it concerns a queue (``data["queue"]``)
data     the whole payload as JSON (including ``call``/``agent``/``queue``)
======== =========================================================================

``call``, ``agent`` and ``queue`` are copies of payload fields, kept as
indexed columns for the queries reports and ``cdr.query`` make.

An event is appended as any object with ``to_dict()`` (the ACD records of
:mod:`orchestrator.acd.events`) or a mapping, both in the form
``{"type": ..., "at": ..., field: value...}``; ``at`` defaults to the time of
the append. :meth:`StoredEvent.to_dict` gives that form back, so
``event_from_dict(stored.to_dict())`` rebuilds an ACD record exactly.

Type patterns (``types=["call.*", "agent.state"]``) use ``*`` as "any run of
characters" and nothing else is special; they are matched the same way in
SQL (``LIKE``) and in Python.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["TYPE_RE", "EventFilter", "StoredEvent", "acd_events", "encode_event", "to_acd_event", "type_matcher"]

TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_PATTERN_RE = re.compile(r"^[a-z0-9_.*]+$")
_MAX_ID = 200


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One appended event as the log returns it (see the module docstring for the fields)."""

    seq: int
    node: str
    at: float
    type: str
    call: str | None
    agent: str | None
    queue: str | None
    data: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``{"type": ..., "at": ..., **data}``: the form the event was appended in."""
        out: dict[str, Any] = {"type": self.type, "at": self.at}
        out.update(self.data)
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form with the envelope (for JSON-RPC notifications and ``hotline ctl --watch``)."""
        return {"seq": self.seq, "node": self.node, **self.to_dict()}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _check_keys(value: Any, depth: int = 0) -> None:
    """json.dumps turns int keys into strings silently; refuse them so a payload reads back equal."""
    if depth > 32:
        raise ValueError("nested deeper than 32 levels")
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"keys must be strings, got {k!r}")
            if isinstance(v, (Mapping, list, tuple)):
                _check_keys(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            if isinstance(v, (Mapping, list, tuple)):
                _check_keys(v, depth + 1)


def _id(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_ID or "\x00" in value:
        raise ValueError(f"event: {name!r} must be a non-empty string of at most {_MAX_ID} characters "
                         f"(no NUL), got {value!r}")
    return value


def encode_event(event: Any, now: float | None = None) -> tuple[float, str, str | None, str | None, str | None, str]:
    """Validate an event and give its row: (at, type, call, agent, queue, data as JSON text).

    Raises ValueError naming what is wrong: no or bad ``type``, ``at`` not a
    finite number, ``call``/``agent``/``queue`` not strings, a payload that
    is not JSON (NaN, infinities, non-string keys, objects).
    """
    if hasattr(event, "to_dict") and not isinstance(event, Mapping):
        event = event.to_dict()
    if not isinstance(event, Mapping):
        raise ValueError(f"event: expected a mapping or an object with to_dict(), not {type(event).__name__}")
    kind = event.get("type")
    if not isinstance(kind, str) or not TYPE_RE.match(kind):
        raise ValueError(f"event: 'type' must be a dotted lower-case name like 'call.queued', got {kind!r}")
    at = event.get("at")
    if at is None:
        at = time.time() if now is None else now
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise ValueError(f"event: 'at' must be a finite number of seconds, got {at!r}")
    data = {k: v for k, v in event.items() if k not in ("type", "at")}
    try:
        _check_keys(data)
        text = _dumps(data)
        text.encode("utf-8")  # lone surrogates cannot be stored by either backend
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event: {kind} payload is not JSON: {exc}") from None
    return (float(at), kind, _id(data.get("call"), "call"), _id(data.get("agent"), "agent"),
            _id(data.get("queue"), "queue"), text)


_decode = json.JSONDecoder().raw_decode


def decode_row(seq: int, node: str, at: float, kind: str, call: str | None, agent: str | None,
               queue: str | None, data: str | Mapping) -> StoredEvent:
    """A row as both backends return it -> :class:`StoredEvent`."""
    # raw_decode skips json.loads' two whitespace regex matches: our texts have no surrounding blanks
    payload = _decode(data)[0] if isinstance(data, str) else dict(data)
    return StoredEvent(int(seq), node, float(at), kind, call, agent, queue, MappingProxyType(payload))


def _check_patterns(types: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if types is None:
        return None
    if isinstance(types, str):
        types = (types,)
    out = tuple(types)
    for p in out:
        if not isinstance(p, str) or not p or not _PATTERN_RE.match(p):
            raise ValueError(f"types: {p!r} is not a type pattern (lower-case letters, digits, '_', '.', '*')")
    return out


def type_matcher(patterns: Sequence[str] | None):
    """A predicate on type names for ``patterns`` (None: everything)."""
    if patterns is None:
        return lambda kind: True
    exact = {p for p in patterns if "*" not in p}
    regexes = [re.compile("^" + ".*".join(re.escape(part) for part in p.split("*")) + "$")
               for p in patterns if "*" in p]
    if not regexes:
        return exact.__contains__
    return lambda kind: kind in exact or any(r.match(kind) for r in regexes)


def like_pattern(pattern: str) -> str:
    """A type pattern as a SQL ``LIKE ... ESCAPE '\\'`` pattern."""
    return pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")


@dataclass(frozen=True, kw_only=True)
class EventFilter:
    """Which events a read or a subscription wants; every given field must match.

    ``types``: type patterns (any may match); ``call``, ``agent``, ``queue``,
    ``node``: exact values of those envelope fields.
    """

    types: tuple[str, ...] | None = None
    call: str | None = None
    agent: str | None = None
    queue: str | None = None
    node: str | None = None

    @classmethod
    def make(cls, *, types: Iterable[str] | str | None = None, call: str | None = None, agent: str | None = None,
             queue: str | None = None, node: str | None = None) -> EventFilter:
        """Validated constructor (ValueError says which argument is wrong)."""
        for name, value in (("call", call), ("agent", agent), ("queue", queue), ("node", node)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name}: must be a string or None, got {value!r}")
        return cls(types=_check_patterns(types), call=call, agent=agent, queue=queue, node=node)

    def predicate(self):
        """The same filter as a Python predicate on :class:`StoredEvent` (for the in-memory tail)."""
        match_type = type_matcher(self.types)
        call, agent, queue, node = self.call, self.agent, self.queue, self.node

        def accept(e: StoredEvent) -> bool:
            return (match_type(e.type) and (call is None or e.call == call) and (agent is None or e.agent == agent)
                    and (queue is None or e.queue == queue) and (node is None or e.node == node))
        return accept

    def indexed(self) -> bool:
        """Does the filter name a call, agent or queue (an index finds those rows faster than a scan)?"""
        return self.call is not None or self.agent is not None or self.queue is not None

    def row_predicate(self, since: float | None = None, until: float | None = None):
        """The filter (and ``since <= at < until``) on raw rows (seq, node, at, type, call, agent, queue, data)."""
        match_type = type_matcher(self.types)
        call, agent, queue, node = self.call, self.agent, self.queue, self.node
        lo = -math.inf if since is None else since
        hi = math.inf if until is None else until

        def accept(r: tuple) -> bool:
            return (lo <= r[2] < hi and match_type(r[3]) and (call is None or r[4] == call)
                    and (agent is None or r[5] == agent) and (queue is None or r[6] == queue)
                    and (node is None or r[1] == node))
        return accept

    def sql(self) -> tuple[list[str], list[Any]]:
        """WHERE clauses (``?`` placeholders) and their parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.types is not None:
            exact = [p for p in self.types if "*" not in p]
            likes = [p for p in self.types if "*" in p]
            parts = []
            if exact:
                parts.append("type IN (" + ",".join("?" * len(exact)) + ")")
                params.extend(exact)
            for p in likes:
                parts.append("type LIKE ? ESCAPE '\\'")
                params.append(like_pattern(p))
            clauses.append("(" + " OR ".join(parts) + ")")
        for column, value in (("call_id", self.call), ("agent", self.agent), ("queue", self.queue),
                              ("node", self.node)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return clauses, params


_ACD_SPECS: dict[str, tuple[type, frozenset[str]]] | None = None


def _acd_specs() -> dict[str, tuple[type, frozenset[str]]]:
    global _ACD_SPECS
    if _ACD_SPECS is None:
        from dataclasses import fields as _fields

        from orchestrator.acd.events import EVENT_TYPES

        _ACD_SPECS = {kind: (cls, frozenset(f.name for f in _fields(cls) if f.name != "at"))
                      for kind, cls in EVENT_TYPES.items()}
    return _ACD_SPECS


def to_acd_event(e: StoredEvent):
    """The :mod:`orchestrator.acd.events` record a stored event stands for, or None.

    A tolerant reader: fields the ACD record does not have (``reason`` and
    ``synthetic`` on events crash recovery appends, extra fields a B2BUA adds
    to a ``call.ended``) are dropped, and an event of an ACD type that lacks
    a field the record needs (a B2BUA ``call.ended`` with only a SIP cause) is
    not an ACD event (None). So :mod:`orchestrator.metrics` can be fed the
    whole log. Otherwise it is ``event_from_dict(e.to_dict())`` (lists become
    tuples, as there), without its per-call field lookups.
    """
    spec = _acd_specs().get(e.type)
    if spec is None:
        return None
    cls, names = spec
    kwargs = {}
    for k, v in e.data.items():
        if k in names:
            if isinstance(v, list):
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            kwargs[k] = v
    try:
        return cls(at=e.at, **kwargs)
    except TypeError:
        return None


def acd_events(events) -> list:
    """:func:`to_acd_event` over ``events``, keeping only the ACD records (in the given order)."""
    out = []
    for e in events:
        acd = to_acd_event(e)
        if acd is not None:
            out.append(acd)
    return out
