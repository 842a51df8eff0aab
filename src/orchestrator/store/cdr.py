"""Call records (CDRs): a projection of the event log, one record per call.

:func:`apply` folds one event into its call's record (a plain JSON-ready
dict). The store runs it inside the appending transaction, so
``call_records`` is always exactly the fold of the log up to its last
committed event, and :meth:`EventLog.rebuild_call_records` can throw the
table away and fold the whole log again to the same rows (tested). The fold
is pure and total: a missing or ill-typed field is treated as absent, never
an error, so no event can stop the log from being appended.

Events it understands (any other ``call.*`` event only updates ``last_at``),
from the ACD (:mod:`orchestrator.acd.events`), the B2BUA, the IVR, the
recorder and the control layer:

========================== ==========================================================
call.incoming              arrival: ``caller`` (or ``from``), ``callee`` (or ``did``, ``to``), ``trunk``
call.ivr                   IVR: ``node`` + ``digits`` and/or ``data`` (a mapping) collected
call.queued                entered ``queue`` (first time sets queued_at); leaves the IVR
call.offered               an agent is rung (``offers`` counts them)
call.answered              connected to ``agent``; ``wait`` (ACD wait), ``callback``
call.abandoned             caller gave up waiting (``wait``): outcome abandoned, ends the call
call.callback_requested    the caller chose a callback: outcome callback until one is answered
call.callback_failed       ``final``: the callback gave up; ends the call
call.held / call.resumed   hold time is summed from these
call.transferred           ``to``: outcome transferred
call.overflowed            ``to_queue`` joins the queue list
call.exited / .rejected    ``destination``: voicemail -> voicemail (ends), hangup -> failed (ends),
                           queue/extension -> transferred
call.ended                 the end: ``talk``/``hold`` (ACD), ``cause`` (SIP), ``reason``, ``outcome``
call.wrapup_ended          ``wrapup`` seconds of after-call work
call.set_data              ``data`` (a mapping) merged into the CRM data
call.survey                ``score``
recording.*                ``recording`` (or ``id``) added to the recording ids;
                           ``recording.analyzed``: its analytics under
                           ``recording_analytics[id]``; ``recording.purged``:
                           the id added to ``purged_recordings``
========================== ==========================================================

Outcomes: ``answered``, ``abandoned``, ``failed`` (ended without reaching an
agent or a destination), ``transferred``, ``callback``, ``voicemail``;
``None`` while nothing decided it. A call is *open* until an ending event;
events after the end still update it (wrap-up, a late SIP cause, a
recording). Durations are seconds: ``ivr`` (in the IVR), ``wait`` (in the
ACD, from first entry), ``talk`` (connected, hold excluded), ``hold``,
``wrapup``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from .events import StoredEvent

__all__ = ["OUTCOMES", "CallDetailRecord", "apply", "new_record", "record_from_dict", "synthesize_end"]

OUTCOMES = ("answered", "abandoned", "failed", "transferred", "callback", "voicemail")

# keys of the stored dict that are bookkeeping for the fold, not part of the record users see
_INTERNAL = ("in_ivr", "ivr_started_at", "held_since", "hold_acc", "first_seq")


@dataclass(frozen=True, kw_only=True)
class CallDetailRecord:
    """One call, as the log tells it (see the module docstring for the vocabulary)."""

    call: str
    node: str
    caller: str | None
    callee: str | None
    trunk: str | None
    arrived_at: float
    queued_at: float | None
    answered_at: float | None
    ended_at: float | None
    open: bool
    outcome: str | None
    end_cause: str | int | None
    end_reason: str | None
    queue: str | None
    queues: tuple[str, ...]
    agent: str | None
    agents: tuple[str, ...]
    offers: int
    callback: bool
    transferred_to: str | None
    ivr: float | None
    wait: float | None
    talk: float | None
    hold: float | None
    wrapup: float | None
    recordings: tuple[str, ...]
    # Post-call analytics per recording id (talk per party, overtalk, silence, turns).
    recording_analytics: Mapping[str, Mapping[str, Any]]
    purged_recordings: tuple[str, ...]
    data: Mapping[str, Any]
    ivr_data: Mapping[str, Any]
    survey: float | None
    synthetic: bool
    last_at: float
    last_seq: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the ``cdr.query`` result rows)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, Mapping):
                v = dict(v)
            out[f.name] = v
        return out


def record_from_dict(rec: Mapping[str, Any]) -> CallDetailRecord:
    """The stored dict -> :class:`CallDetailRecord`."""
    return CallDetailRecord(
        call=rec["call"], node=rec["node"], caller=rec["caller"], callee=rec["callee"], trunk=rec["trunk"],
        arrived_at=rec["arrived_at"], queued_at=rec["queued_at"], answered_at=rec["answered_at"],
        ended_at=rec["ended_at"], open=rec["is_open"], outcome=rec["outcome"], end_cause=rec["end_cause"],
        end_reason=rec["end_reason"], queue=rec["queue"], queues=tuple(rec["queues"]), agent=rec["agent"],
        agents=tuple(rec["agents"]), offers=rec["offers"], callback=rec["callback"],
        transferred_to=rec["transferred_to"], ivr=rec["ivr"], wait=rec["wait"], talk=rec["talk"],
        hold=rec["hold"], wrapup=rec["wrapup"], recordings=tuple(rec["recordings"]),
        recording_analytics=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in
                                              rec.get("recording_analytics", {}).items()}),
        purged_recordings=tuple(rec.get("purged_recordings", ())),
        data=MappingProxyType(dict(rec["data"])), ivr_data=MappingProxyType(dict(rec["ivr_data"])),
        survey=rec["survey"], synthetic=rec["synthetic"], last_at=rec["last_at"], last_seq=rec["last_seq"])


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def new_record(call: str, node: str, at: float, seq: int) -> dict[str, Any]:
    """An empty record for a call first seen in an event at ``at``."""
    return {
        "call": call, "node": node, "first_seq": seq, "last_seq": seq, "arrived_at": at, "last_at": at,
        "caller": None, "callee": None, "trunk": None,
        "in_ivr": False, "ivr_started_at": None, "ivr": None,
        "queued_at": None, "queue": None, "queues": [], "offers": 0,
        "answered_at": None, "agent": None, "agents": [],
        "held_since": None, "hold_acc": 0.0,
        "ended_at": None, "is_open": True, "outcome": None, "end_cause": None, "end_reason": None,
        "transferred_to": None, "callback": False,
        "wait": None, "talk": None, "hold": None, "wrapup": None,
        "recordings": [], "recording_analytics": {}, "purged_recordings": [],
        "data": {}, "ivr_data": {}, "survey": None, "synthetic": False,
    }


def _leave_ivr(rec: dict, at: float) -> None:
    if rec["in_ivr"]:
        rec["ivr"] = (rec["ivr"] or 0.0) + max(0.0, at - rec["ivr_started_at"])
        rec["in_ivr"] = False


def _end_hold(rec: dict, at: float) -> None:
    if rec["held_since"] is not None:
        rec["hold_acc"] += max(0.0, at - rec["held_since"])
        rec["held_since"] = None


def _add(seq: list, value: str | None) -> None:
    if value is not None and value not in seq:
        seq.append(value)


def _end(rec: dict, at: float) -> None:
    _leave_ivr(rec, at)
    _end_hold(rec, at)
    rec["ended_at"] = at if rec["ended_at"] is None else max(rec["ended_at"], at)
    rec["is_open"] = False
    if rec["hold"] is None:
        rec["hold"] = rec["hold_acc"] if rec["answered_at"] is not None else None


def _destination_outcome(destination: str | None) -> tuple[str, bool]:
    """(outcome, ends the call) for an ACD destination like "voicemail:q", "hangup:486", "queue:sales"."""
    kind = (destination or "").partition(":")[0]
    if kind == "voicemail":
        return "voicemail", True
    if kind in ("queue", "extension"):
        return "transferred", False
    return "failed", True


# What a recording.analyzed event contributes to the record (orchestrator.recording.analytics).
_ANALYTICS = ("talk_left", "talk_right", "overtalk", "silence", "longest_silence", "turns", "excluded", "duration")


def apply(rec: dict | None, e: StoredEvent) -> dict | None:
    """Fold event ``e`` into ``rec`` (its call's record, or None if it has none yet).

    Returns the (mutated or new) record, or None when ``e`` concerns no call.
    """
    call = e.call
    if call is None:
        return rec
    if rec is None:
        rec = new_record(call, e.node, e.at, e.seq)
    d = e.data
    at = e.at
    kind = e.type
    rec["last_seq"] = e.seq
    rec["last_at"] = max(rec["last_at"], at)
    rec["arrived_at"] = min(rec["arrived_at"], at)
    if rec["caller"] is None:
        rec["caller"] = _str(d.get("caller")) or (_str(d.get("from")) if kind == "call.incoming" else None)
    if kind.startswith("recording."):
        rid = _str(d.get("recording")) or _str(d.get("id"))
        _add(rec["recordings"], rid)
        if kind == "recording.analyzed" and rid is not None:
            rec.setdefault("recording_analytics", {})[rid] = {
                k: d[k] for k in _ANALYTICS if k in d and (d[k] is None or isinstance(d[k], (int, float, str)))}
        elif kind == "recording.purged" and rid is not None:
            _add(rec.setdefault("purged_recordings", []), rid)
        return rec
    if not kind.startswith("call."):
        return rec
    queue = _str(d.get("queue"))
    if kind == "call.incoming":
        rec["callee"] = _str(d.get("callee")) or _str(d.get("did")) or _str(d.get("to")) or rec["callee"]
        rec["trunk"] = _str(d.get("trunk")) or rec["trunk"]
    elif kind == "call.ivr":
        # IVR time counts until the call first leaves for a queue or an agent (not a post-call survey)
        if not rec["in_ivr"] and rec["queued_at"] is None and rec["answered_at"] is None and rec["is_open"]:
            rec["ivr_started_at"] = at
            rec["in_ivr"] = True
        node, digits = _str(d.get("node")), _str(d.get("digits"))
        if node is not None and digits is not None:
            rec["ivr_data"][node] = digits
        collected = d.get("data")
        if isinstance(collected, Mapping):
            rec["ivr_data"].update(collected)
    elif kind == "call.queued":
        _leave_ivr(rec, at)
        if rec["queued_at"] is None:
            rec["queued_at"] = at
        _add(rec["queues"], queue)
        rec["queue"] = queue or rec["queue"]
    elif kind == "call.offered":
        rec["offers"] += 1
    elif kind == "call.answered":
        _leave_ivr(rec, at)
        if rec["answered_at"] is None:
            rec["answered_at"] = at
        agent = _str(d.get("agent"))
        _add(rec["agents"], agent)
        rec["agent"] = agent or rec["agent"]
        rec["queue"] = queue or rec["queue"]
        wait = _num(d.get("wait"))
        if wait is None and rec["queued_at"] is not None:
            wait = max(0.0, at - rec["queued_at"])
        rec["wait"] = wait
        if d.get("callback") is True:
            rec["callback"] = True
        if rec["outcome"] != "transferred":
            rec["outcome"] = "answered"
    elif kind == "call.abandoned":
        wait = _num(d.get("wait"))
        rec["wait"] = wait if wait is not None else (max(0.0, at - rec["queued_at"]) if rec["queued_at"] else None)
        rec["outcome"] = "abandoned"
        rec["end_reason"] = _str(d.get("reason")) or rec["end_reason"]
        rec["synthetic"] = rec["synthetic"] or d.get("synthetic") is True
        _end(rec, at)
    elif kind == "call.callback_requested":
        rec["callback"] = True
        rec["wait"] = _num(d.get("wait"))
        if rec["answered_at"] is None:
            rec["outcome"] = "callback"
    elif kind == "call.callback_failed":
        if d.get("final") is True:
            rec["end_reason"] = rec["end_reason"] or "callback_failed"
            _end(rec, at)
    elif kind == "call.held":
        if rec["held_since"] is None:
            rec["held_since"] = at
    elif kind == "call.resumed":
        _end_hold(rec, at)
    elif kind == "call.transferred":
        rec["transferred_to"] = _str(d.get("to")) or rec["transferred_to"]
        rec["outcome"] = "transferred"
    elif kind == "call.overflowed":
        _add(rec["queues"], _str(d.get("to_queue")))
    elif kind in ("call.exited", "call.rejected"):
        destination = _str(d.get("destination"))
        outcome, ends = _destination_outcome(destination)
        if kind == "call.exited":
            rec["wait"] = _num(d.get("wait"))
        else:
            _add(rec["queues"], queue)
            rec["queue"] = rec["queue"] or queue
        if rec["answered_at"] is None and rec["outcome"] != "callback":
            rec["outcome"] = outcome
            if outcome == "transferred":
                rec["transferred_to"] = destination
        if ends:
            rec["end_reason"] = rec["end_reason"] or _str(d.get("reason"))
            _end(rec, at)
    elif kind == "call.ended":
        talk, hold = _num(d.get("talk")), _num(d.get("hold"))
        _end_hold(rec, at)
        if hold is not None:
            rec["hold"] = hold
        outcome = d.get("outcome")
        if outcome in OUTCOMES:
            rec["outcome"] = outcome
        elif rec["outcome"] is None:
            rec["outcome"] = "answered" if rec["answered_at"] is not None else (
                "abandoned" if rec["queued_at"] is not None else "failed")
        cause = d.get("cause")
        if (isinstance(cause, int) and not isinstance(cause, bool)) or _str(cause):
            rec["end_cause"] = cause
        rec["end_reason"] = _str(d.get("reason")) or rec["end_reason"]
        rec["synthetic"] = rec["synthetic"] or d.get("synthetic") is True
        _end(rec, at)
        if talk is not None:
            rec["talk"] = talk
        elif rec["answered_at"] is not None and rec["talk"] is None:
            rec["talk"] = max(0.0, rec["ended_at"] - rec["answered_at"] - (rec["hold"] or 0.0))
    elif kind == "call.wrapup_ended":
        rec["wrapup"] = _num(d.get("wrapup"))
    elif kind == "call.set_data":
        extra = d.get("data")
        if isinstance(extra, Mapping):
            rec["data"].update(extra)
    elif kind == "call.survey":
        rec["survey"] = _num(d.get("score"))
    return rec


def synthesize_end(rec: Mapping[str, Any], died_at: float) -> dict[str, Any]:
    """The event crash recovery appends for an open call: it gives the call its end.

    ``at`` is ``died_at`` (the last sign of life of the node that had the
    call), never before the call's own last event. The event is shaped so the
    ACD metrics read it too: a queued, unanswered call gets ``call.abandoned``
    (with the ACD's ``queue``/``wait``), an answered one ``call.ended`` (with
    ``queue``/``agent``/``talk``/``hold``), anything else ``call.ended`` with
    outcome "failed". All carry ``reason: "node_restart"`` and ``synthetic: true``.
    """
    at = max(died_at, rec["last_at"])
    base = {"at": at, "call": rec["call"], "reason": "node_restart", "synthetic": True}
    if rec["answered_at"] is not None:
        hold = rec["hold_acc"] + (max(0.0, at - rec["held_since"]) if rec["held_since"] is not None else 0.0)
        talk = max(0.0, at - rec["answered_at"] - hold)
        return {"type": "call.ended", **base, "queue": rec["queue"], "agent": rec["agent"], "talk": talk,
                "hold": hold, "outcome": rec["outcome"] or "answered"}
    if rec["outcome"] == "callback":
        return {"type": "call.ended", **base, "outcome": "callback"}
    if rec["queued_at"] is not None:
        return {"type": "call.abandoned", **base, "queue": rec["queue"], "wait": max(0.0, at - rec["queued_at"]),
                "ringing": False}
    return {"type": "call.ended", **base, "outcome": "failed"}
