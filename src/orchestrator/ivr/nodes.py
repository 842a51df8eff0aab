"""Node types: what each accepts in YAML (``FIELDS``) and how it behaves.

Each node class declares its YAML keys as :class:`Field` records; the same
table drives the loader's checks, the linter's messages and the JSON Schema
for editors (:mod:`orchestrator.ivr.schema`), so they cannot drift apart.

Behaviour: a node is immutable once compiled. Per-call state lives in the
:class:`~orchestrator.ivr.session.Session`, which calls ``enter`` when the call
arrives at the node and ``on_<event>`` for each event; a method returns False
when the node was not waiting for that event (the session counts it as
ignored). Nodes act through the session's small internal API (``go``,
``play``, ``start_timer``, ``finish``...).

Input nodes (menu, collect, language, callback, survey) share one digit
collector: prompt (with barge-in), first-digit timeout, inter-digit timeout,
terminator, min/max length, and a retry counter shared by invalid input and
no input, with the re-prompt played before the prompt. Digits already in the
type-ahead buffer when an input node starts are used at once and its prompt
is skipped; any invalid entry flushes the buffer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .expr import Expression, Template, lookup
from .hours import BusinessHours

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Field", "Edge", "Node", "NODE_TYPES", "COMMON_FIELDS", "TERMINAL_TYPES"]

# Session phases (the node's sub-state for the current call).
IDLE, PROMPTING, WAITING, COLLECTING, RECORDING, LOOKING_UP, QUEUED, PLAYING = range(8)


@dataclass(frozen=True)
class Field:
    """One YAML key of a node type.

    ``kind`` names the parser (see the compiler); target kinds are ``target``
    (one node name), ``choices`` and ``cases``. ``passive`` marks a target a
    call can take without the caller pressing a valid key (a timeout, the end
    of a prompt, a failed lookup): the linter follows passive edges to find
    loops that a silent caller would go round forever.
    """

    kind: str
    doc: str
    required: bool = False
    default: Any = None
    passive: bool = True
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Edge:
    """A way out of a node: ``label`` (the branch name used in metrics), the target node."""

    label: str
    target: str
    passive: bool
    line: int


COMMON_FIELDS: dict[str, Field] = {
    "type": Field("str", "The node type.", required=True),
    "description": Field("str", "Free text for people reading the flow."),
    "max_visits": Field(
        "int",
        "Enter this node at most this many times per call; then go to on_max_visits. "
        "Bounds loops through several nodes.",
        minimum=1,
        maximum=100,
    ),
    "on_max_visits": Field("target", "Where to go instead once max_visits is reached."),
}


def _prompt_fields(required: bool = True) -> dict[str, Field]:
    return {
        "prompts": Field(
            "prompts",
            "Prompt names played in order (files <prompts>/<language>/<name>.wav).",
            required=required,
        ),
        "barge_in": Field("bool", "A digit pressed during the prompt stops it.", default=True),
    }


def _input_fields(timeout: float = 5.0, retries: int = 2) -> dict[str, Field]:
    return {
        "invalid_prompts": Field(
            "prompts", "Played before the prompt again after invalid input.", default=()
        ),
        "timeout_prompts": Field("prompts", "Played before the prompt again after no input.", default=()),
        "timeout": Field(
            "number",
            "Seconds to wait for the first digit after the prompt.",
            default=timeout,
            minimum=0.5,
            maximum=120,
        ),
        "max_retries": Field(
            "int",
            "How many times the prompt is repeated after invalid input or no input before giving up.",
            default=retries,
            minimum=0,
            maximum=10,
        ),
    }


class Node:
    """A compiled node; subclasses define TYPE, FIELDS and behaviour."""

    TYPE = ""
    DOC = ""
    FIELDS: dict[str, Field] = {}
    TERMINAL = False

    def __init__(self, name: str, line: int, values: Mapping[str, Any], edges: tuple[Edge, ...]) -> None:
        self.name = name
        self.line = line
        self.edges = edges
        self.max_visits = values.get("max_visits")
        self.on_max_visits = values.get("on_max_visits")
        self.prompt_names: tuple[str, ...] = tuple(
            dict.fromkeys(
                p
                for key, f in {**COMMON_FIELDS, **self.FIELDS}.items()
                if f.kind == "prompts"
                for p in (values.get(key) or ())
            )
        )
        self.setup(values)

    def setup(self, values: Mapping[str, Any]) -> None:
        """Copy the parsed values this node type uses onto attributes."""

    # -- behaviour; a method returns False when the event was not expected here.
    def enter(self, s: Session) -> None:
        raise NotImplementedError

    def on_digit(self, s: Session, digit: str) -> bool:
        s.buffer_digit(digit)
        return True

    def on_playback_done(self, s: Session) -> bool:
        return False

    def on_timeout(self, s: Session) -> bool:
        return False

    def on_lookup_result(self, s: Session, data: Mapping[str, Any]) -> bool:
        return False

    def on_lookup_failed(self, s: Session, reason: str) -> bool:
        return False

    def on_record_done(self, s: Session, path: str, duration: float) -> bool:
        return False

    def on_queue_result(self, s: Session, outcome: str) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} line {self.line}>"


# --------------------------------------------------------------------------- simple nodes


class PlayNode(Node):
    TYPE = "play"
    DOC = (
        "Play prompts, then go to next. With barge-in a digit stops the prompt and is kept for the "
        "next input, and the prompt is skipped if digits are already typed ahead."
    )
    FIELDS = {**_prompt_fields(), "next": Field("target", "Where to go after the prompts.", required=True)}

    def setup(self, values: Mapping[str, Any]) -> None:
        self.prompts = values["prompts"]
        self.barge_in = values["barge_in"]
        self.next = values["next"]

    def enter(self, s: Session) -> None:
        if self.barge_in and s.typeahead:
            s.go("next", self.next)  # the caller is already typing ahead: skip the prompt
            return
        s.phase = PLAYING
        s.play(self.prompts, self.barge_in)

    def on_digit(self, s: Session, digit: str) -> bool:
        s.buffer_digit(digit)
        if self.barge_in and s.phase == PLAYING:
            s.stop_play()
            s.go("next", self.next)
        return True

    def on_playback_done(self, s: Session) -> bool:
        s.go("next", self.next)
        return True


class SetNode(Node):
    TYPE = "set"
    DOC = "Set variables from expressions, then go to next."
    FIELDS = {
        "values": Field(
            "exprmap", "Variable name -> expression (a string literal needs quotes: \"'es'\").", required=True
        ),
        "next": Field("target", "Where to go next.", required=True),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.values: tuple[tuple[str, Expression], ...] = tuple(values["values"].items())
        self.next = values["next"]

    def enter(self, s: Session) -> None:
        for name, expr in self.values:
            s.set_var(name, expr.evaluate(s.vars))
        s.go("next", self.next)


class ConditionNode(Node):
    TYPE = "condition"
    DOC = "Go to then if the expression is true, else to else."
    FIELDS = {
        "if": Field("expr", "The condition.", required=True),
        "then": Field("target", "Where to go when it is true.", required=True),
        "else": Field("target", "Where to go when it is false.", required=True),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.condition: Expression = values["if"]
        self.then = values["then"]
        self.otherwise = values["else"]

    def enter(self, s: Session) -> None:
        if self.condition.evaluate(s.vars):
            s.go("then", self.then)
        else:
            s.go("else", self.otherwise)


class SwitchNode(Node):
    TYPE = "switch"
    DOC = "Go to the first case whose expression is true, else to default."
    FIELDS = {
        "cases": Field("cases", "A list of {when: expression, goto: node}.", required=True),
        "default": Field("target", "Where to go when no case matches.", required=True),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.cases: tuple[tuple[Expression, str], ...] = values["cases"]
        self.default = values["default"]

    def enter(self, s: Session) -> None:
        for i, (when, target) in enumerate(self.cases):
            if when.evaluate(s.vars):
                s.go(f"cases[{i}]", target)
                return
        s.go("default", self.default)


class BusinessHoursNode(Node):
    TYPE = "business_hours"
    DOC = "Branch on a weekly schedule in a time zone and a holiday calendar."
    FIELDS = {
        "timezone": Field("timezone", "IANA time zone of the schedule, e.g. Europe/London.", required=True),
        "schedule": Field(
            "schedule",
            "Day or day range (mon-fri, sat, sun) -> 'HH:MM-HH:MM[, ...]' or 'closed'.",
            required=True,
        ),
        "holidays": Field(
            "holidays", "Dates closed all day: YYYY-MM-DD, MM-DD (every year), or {date: ..., name: ...}."
        ),
        "open": Field("target", "Where to go when open.", required=True),
        "closed": Field("target", "Where to go when closed (the default branch).", required=True),
        "holiday": Field("target", "Where to go on a holiday (default: closed)."),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.hours = BusinessHours(values["timezone"], values["schedule"], values.get("holidays") or {})
        self.open = values["open"]
        self.closed = values["closed"]
        self.holiday = values.get("holiday")

    def enter(self, s: Session) -> None:
        name = self.hours.holiday_name(s.now)
        if name is not None:
            s.set_var("holiday", name)
            if self.holiday is not None:
                s.go("holiday", self.holiday)
            else:
                s.go("closed", self.closed)
        elif self.hours.is_open(s.now):
            s.go("open", self.open)
        else:
            s.go("closed", self.closed)


class LookupNode(Node):
    TYPE = "lookup"
    DOC = "Ask a CRM (HTTP URL or JSON-RPC method) and map the answer into variables."
    FIELDS = {
        "url": Field("template", "HTTP URL to request (give url or method)."),
        "method": Field(
            "str", "JSON-RPC method at the CRM endpoint from the configuration (give url or method)."
        ),
        "params": Field("exprmap", "Parameter name -> expression.", default={}),
        "timeout": Field(
            "number", "Seconds before the lookup counts as timed out.", default=3.0, minimum=0.1, maximum=60
        ),
        "result": Field("resultmap", "Variable name -> dotted path in the answer.", default={}),
        "next": Field("target", "Where to go after a successful lookup.", required=True),
        "on_error": Field("target", "Where to go when the lookup fails.", required=True),
        "on_timeout": Field("target", "Where to go when it times out (default: on_error)."),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        url: Template | None = values.get("url")
        self.kind = "http" if url is not None else "jsonrpc"
        self.url = url
        self.method = values.get("method") or ""
        self.params: tuple[tuple[str, Expression], ...] = tuple(values["params"].items())
        self.timeout = float(values["timeout"])
        self.result: tuple[tuple[str, str], ...] = tuple(values["result"].items())
        self.next = values["next"]
        self.on_error = values["on_error"]
        self.on_timeout = values.get("on_timeout")

    def enter(self, s: Session) -> None:
        from .effects import Lookup

        s.phase = LOOKING_UP
        s.request_seq += 1
        s.request_id = s.request_seq
        target = self.url.render(s.vars) if self.url is not None else self.method
        params = {name: expr.evaluate(s.vars) for name, expr in self.params}
        s.emit(
            Lookup(
                kind=self.kind, target=target, params=params, timeout=self.timeout, request_id=s.request_id
            )
        )

    def on_lookup_result(self, s: Session, data: Mapping[str, Any]) -> bool:
        s.request_id = None
        for var, path in self.result:
            value = lookup(data, path)
            if value is not None:
                s.set_var(var, value)
        s.go("next", self.next)
        return True

    def on_lookup_failed(self, s: Session, reason: str) -> bool:
        s.request_id = None
        if reason == "timeout" and self.on_timeout is not None:
            s.go("on_timeout", self.on_timeout)
        else:
            s.go("on_error", self.on_error)
        return True


class RecordNode(Node):
    TYPE = "record"
    DOC = "Record a message (voicemail); the path and duration go into variables."
    FIELDS = {
        **_prompt_fields(required=False),
        "beep": Field("bool", "Play a beep before recording.", default=True),
        "max_duration": Field(
            "number", "Longest message in seconds.", default=120.0, minimum=1, maximum=3600
        ),
        "min_duration": Field(
            "number", "A shorter message counts as empty.", default=0.0, minimum=0, maximum=60
        ),
        "silence_timeout": Field(
            "number", "Stop after this many seconds of silence.", default=5.0, minimum=0.5, maximum=60
        ),
        "terminators": Field("digits", "Digits that end the recording.", default="#"),
        "variable": Field(
            "varname", "Variable that receives the file path (and <variable>_duration).", default="recording"
        ),
        "next": Field("target", "Where to go after recording.", required=True),
        "on_empty": Field("target", "Where to go when nothing (or too little) was recorded (default: next)."),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.prompts = values.get("prompts") or ()
        self.barge_in = values["barge_in"]
        self.beep = values["beep"]
        self.max_duration = float(values["max_duration"])
        self.min_duration = float(values["min_duration"])
        self.silence_timeout = float(values["silence_timeout"])
        self.terminators = values["terminators"]
        self.variable = values["variable"]
        self.next = values["next"]
        self.on_empty = values.get("on_empty")

    def enter(self, s: Session) -> None:
        if self.prompts:
            s.phase = PROMPTING
            s.play(self.prompts, self.barge_in)
        else:
            self._record(s)

    def _record(self, s: Session) -> None:
        from .effects import Record

        s.phase = RECORDING
        s.emit(
            Record(
                name=f"{s.flow.name}.{self.name}",
                max_duration=self.max_duration,
                silence_timeout=self.silence_timeout,
                terminators=self.terminators,
                beep=self.beep,
            )
        )

    def on_digit(self, s: Session, digit: str) -> bool:
        if s.phase == PROMPTING and self.barge_in:
            s.stop_play()  # the digit only skips the greeting; it is not kept
            self._record(s)
            return True
        return False  # while recording the engine handles terminators itself

    def on_playback_done(self, s: Session) -> bool:
        self._record(s)
        return True

    def on_record_done(self, s: Session, path: str, duration: float) -> bool:
        if s.phase != RECORDING:
            return False
        s.phase = IDLE
        if not path or duration < self.min_duration or duration == 0:
            s.go("on_empty" if self.on_empty is not None else "next", self.on_empty or self.next)
            return True
        s.set_var(self.variable, path)
        s.set_var(f"{self.variable}_duration", duration)
        s.go("next", self.next)
        return True


class QueueNode(Node):
    TYPE = "queue"
    DOC = "Hand the call to an ACD queue with skills and priority; the IVR ends when an agent answers."
    FIELDS = {
        "queue": Field("template", "Queue name ({variable} allowed).", required=True),
        "skills": Field(
            "skills",
            "Skills the agent needs: a list of templates, or one expression giving a list.",
            default=(),
        ),
        "priority": Field("expr", "Priority expression (higher is served first).", default=0),
        "max_wait": Field(
            "number", "Seconds in queue before the ACD answers timeout.", minimum=1, maximum=86400
        ),
        "on_timeout": Field("target", "Where to go after max_wait."),
        "on_unavailable": Field(
            "target",
            "Where to go when the queue cannot take the call (closed, full, no agents); default: hang up.",
        ),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.queue: Template = values["queue"]
        self.skills = values["skills"]
        self.priority: Expression = values["priority"]
        self.max_wait = values.get("max_wait")
        self.on_timeout = values.get("on_timeout")
        self.on_unavailable = values.get("on_unavailable")

    def _skills(self, s: Session) -> tuple[str, ...]:
        if isinstance(self.skills, Expression):
            value = self.skills.evaluate(s.vars)
            items = value if isinstance(value, (list, tuple)) else [] if value is None else [value]
            return tuple(str(v) for v in items if v is not None and v != "")
        return tuple(x for x in (t.render(s.vars) for t in self.skills) if x)

    def enter(self, s: Session) -> None:
        from .effects import Enqueue

        queue = self.queue.render(s.vars)
        skills = self._skills(s)
        priority = self.priority.evaluate(s.vars)
        if isinstance(priority, bool) or not isinstance(priority, (int, float)):
            priority = 0
        s.set_var("queue", queue)
        s.set_var("queue_skills", skills)
        s.set_var("queue_priority", int(priority))
        s.typeahead = ""  # digits pressed while holding are not answers to a later menu
        s.phase = QUEUED
        s.emit(
            Enqueue(
                queue=queue,
                skills=skills,
                priority=int(priority),
                max_wait=float(self.max_wait) if self.max_wait is not None else None,
                data=s.snapshot_vars(),
            )
        )

    def on_digit(self, s: Session, digit: str) -> bool:
        return False

    def on_queue_result(self, s: Session, outcome: str) -> bool:
        from .effects import Hangup

        if s.phase != QUEUED:
            return False
        s.phase = IDLE
        if outcome == "answered":
            s.finish("answered", None)
        elif outcome == "timeout" and self.on_timeout is not None:
            s.go("on_timeout", self.on_timeout)
        elif outcome == "unavailable" and self.on_unavailable is not None:
            s.go("on_unavailable", self.on_unavailable)
        else:
            s.finish("hangup", Hangup(reason=f"queue {outcome}"))
        return True


class TransferNode(Node):
    TYPE = "transfer"
    DOC = "Blind-transfer the call to an extension or SIP URI; the IVR ends."
    TERMINAL = True
    FIELDS = {"target": Field("template", "Extension or SIP URI ({variable} allowed).", required=True)}

    def setup(self, values: Mapping[str, Any]) -> None:
        self.target: Template = values["target"]

    def enter(self, s: Session) -> None:
        from .effects import Transfer

        s.finish("transfer", Transfer(target=self.target.render(s.vars)))


class HangupNode(Node):
    TYPE = "hangup"
    DOC = "End the call."
    TERMINAL = True
    FIELDS = {"reason": Field("str", "Reason stored with the call record.", default="normal")}

    def setup(self, values: Mapping[str, Any]) -> None:
        self.reason = values["reason"]

    def enter(self, s: Session) -> None:
        from .effects import Hangup

        s.finish("hangup", Hangup(reason=self.reason))


class GotoNode(Node):
    TYPE = "goto"
    DOC = "Continue in another flow (ivr/<flow>.yaml), at its start or at a given node."
    FIELDS = {
        "flow": Field("flowname", "The other flow's name (its file name without .yaml).", required=True),
        "node": Field("str", "Node of that flow to enter (default: its start)."),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.flow = values["flow"]
        self.node = values.get("node")

    def enter(self, s: Session) -> None:
        s.go_flow(self.flow, self.node)


# --------------------------------------------------------------------------- input nodes


class InputNode(Node):
    """Prompt, collect digits, decide; retries on invalid input and on no input."""

    min_digits = 1
    max_digits = 1
    terminator = ""
    inter_digit_timeout = 3.0

    def setup_input(self, values: Mapping[str, Any]) -> None:
        self.prompts = values.get("prompts") or ()
        self.barge_in = values["barge_in"]
        self.invalid_prompts = values["invalid_prompts"]
        self.timeout_prompts = values["timeout_prompts"]
        self.timeout = float(values["timeout"])
        self.max_retries = values["max_retries"]

    # subclasses: decide() returns True when it moved the call on, False for invalid input;
    # fail() runs when the retries are used up.
    def decide(self, s: Session, digits: str) -> bool:
        raise NotImplementedError

    def fail(self, s: Session) -> None:
        raise NotImplementedError

    def enter(self, s: Session) -> None:
        s.attempts = 0
        self._prompt(s, self.prompts)

    def _prompt(self, s: Session, prompts: tuple[str, ...]) -> None:
        s.digits = ""
        if s.typeahead:
            s.phase = COLLECTING
            self._drain(s)
        elif prompts:
            s.phase = PROMPTING
            s.play(prompts, self.barge_in)
        else:
            self._wait(s)

    def _wait(self, s: Session) -> None:
        s.phase = WAITING
        s.start_timer(self.timeout)

    def _drain(self, s: Session) -> None:
        """Feed type-ahead digits; start the inter-digit timer if the entry is not complete."""
        node_entry = s.entry_seq
        while s.typeahead and s.entry_seq == node_entry and s.phase == COLLECTING:
            digit, s.typeahead = s.typeahead[0], s.typeahead[1:]
            if self._add(s, digit):
                return
        if s.entry_seq == node_entry and s.phase == COLLECTING:
            s.start_timer(self.inter_digit_timeout)

    def _add(self, s: Session, digit: str) -> bool:
        """Add one digit; True when the entry is complete (and decided)."""
        if self.terminator and digit in self.terminator:
            self._complete(s)
            return True
        s.digits += digit
        if len(s.digits) >= self.max_digits:
            self._complete(s)
            return True
        return False

    def _complete(self, s: Session) -> None:
        s.cancel_timer()
        digits = s.digits
        s.digits = ""
        s.phase = IDLE
        if not self.decide(s, digits):
            self._retry(s, "invalid")

    def _retry(self, s: Session, reason: str) -> None:
        s.typeahead = ""
        s.count_retry(reason)
        s.attempts += 1
        if s.attempts > self.max_retries:
            self.fail(s)
            return
        again = self.invalid_prompts if reason == "invalid" else self.timeout_prompts
        self._prompt(s, tuple(again) + tuple(self.prompts))

    def on_digit(self, s: Session, digit: str) -> bool:
        phase = s.phase
        if phase == PROMPTING:
            if not self.barge_in:
                s.buffer_digit(digit)
                return True
            s.stop_play()
            s.phase = COLLECTING
        elif phase in (WAITING, COLLECTING):
            s.cancel_timer()
            s.phase = COLLECTING
        else:
            s.buffer_digit(digit)
            return True
        if not self._add(s, digit):
            s.start_timer(self.inter_digit_timeout)
        return True

    def on_playback_done(self, s: Session) -> bool:
        if s.phase != PROMPTING:
            return False
        if s.typeahead:
            s.phase = COLLECTING
            self._drain(s)
        else:
            self._wait(s)
        return True

    def on_timeout(self, s: Session) -> bool:
        if s.phase == WAITING:
            self._retry(s, "timeout")
        elif s.phase == COLLECTING:
            self._complete(s)  # the inter-digit timeout ends the entry
        else:
            return False
        return True


class MenuNode(InputNode):
    TYPE = "menu"
    DOC = "Play a prompt and branch on one digit, with invalid/timeout re-prompts and a retry limit."
    FIELDS = {
        **_prompt_fields(),
        "choices": Field("choices", "Digit -> node (quote '*' and '#').", required=True, passive=False),
        **_input_fields(),
        "variable": Field("varname", "Variable that receives the chosen digit."),
        "on_failure": Field("target", "Where to go when the retries are used up.", required=True),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.setup_input(values)
        self.choices: Mapping[str, str] = values["choices"]
        self.variable = values.get("variable")
        self.on_failure = values["on_failure"]

    def decide(self, s: Session, digits: str) -> bool:
        target = self.choices.get(digits)
        if target is None:
            return False
        s.report_digits(digits)
        if self.variable:
            s.set_var(self.variable, digits)
        s.go(digits, target)
        return True

    def fail(self, s: Session) -> None:
        s.go("on_failure", self.on_failure)


class CollectNode(InputNode):
    TYPE = "collect"
    DOC = "Collect a number: min/max digits, terminator, inter-digit timeout, pattern."
    FIELDS = {
        **_prompt_fields(),
        "variable": Field("varname", "Variable that receives the digits (a string).", required=True),
        "min_digits": Field("int", "Fewest digits accepted.", default=1, minimum=0, maximum=64),
        "max_digits": Field(
            "int", "Entry ends by itself at this many digits.", default=16, minimum=1, maximum=64
        ),
        "terminator": Field("digits", "Digit(s) that end the entry early ('' for none).", default="#"),
        "inter_digit_timeout": Field(
            "number", "Seconds between digits before the entry ends.", default=3.0, minimum=0.5, maximum=60
        ),
        "pattern": Field("pattern", "Regular expression the whole entry must match."),
        **_input_fields(),
        "next": Field("target", "Where to go with a valid entry.", required=True, passive=False),
        "on_failure": Field("target", "Where to go when the retries are used up.", required=True),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.setup_input(values)
        self.variable = values["variable"]
        self.min_digits = values["min_digits"]
        self.max_digits = values["max_digits"]
        self.terminator = values["terminator"]
        self.inter_digit_timeout = float(values["inter_digit_timeout"])
        self.pattern: re.Pattern[str] | None = values.get("pattern")
        self.next = values["next"]
        self.on_failure = values["on_failure"]

    def decide(self, s: Session, digits: str) -> bool:
        if len(digits) < self.min_digits or (self.pattern is not None and not self.pattern.fullmatch(digits)):
            return False
        s.report_digits(digits)
        s.set_var(self.variable, digits)
        s.go("next", self.next)
        return True

    def fail(self, s: Session) -> None:
        s.go("on_failure", self.on_failure)


class LanguageNode(InputNode):
    TYPE = "language"
    DOC = "Let the caller choose a language by digit; sets the 'language' variable that picks prompt files."
    FIELDS = {
        **_prompt_fields(),
        "choices": Field(
            "language_choices", "Digit -> language code (one of the flow's languages).", required=True
        ),
        **_input_fields(timeout=4.0, retries=1),
        "next": Field(
            "target", "Where to go once a language is chosen (or kept after no choice).", required=True
        ),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.setup_input(values)
        self.choices: Mapping[str, str] = values["choices"]
        self.next = values["next"]

    def decide(self, s: Session, digits: str) -> bool:
        language = self.choices.get(digits)
        if language is None:
            return False
        s.report_digits(digits)
        s.set_var("language", language)
        s.go("next", self.next)
        return True

    def fail(self, s: Session) -> None:
        s.go("next", self.next)  # keep the current language


class CallbackNode(InputNode):
    TYPE = "callback"
    DOC = "Offer a callback instead of waiting: accept registers it (RequestCallback), decline goes on."
    FIELDS = {
        **_prompt_fields(),
        "number": Field("expr", "Number to call back.", default="caller_id"),
        "queue": Field("template", "Queue the callback belongs to.", default="{queue}"),
        "accept": Field("digit", "Digit that accepts.", default="1"),
        "decline": Field("digit", "Digit that declines.", default="2"),
        **_input_fields(),
        "on_accept": Field(
            "target", "Where to go once the callback is registered.", required=True, passive=False
        ),
        "on_decline": Field(
            "target", "Where to go on decline, after the retries, or without a number.", required=True
        ),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.setup_input(values)
        self.number: Expression = values["number"]
        self.queue: Template = values["queue"]
        self.accept = values["accept"]
        self.decline = values["decline"]
        self.on_accept = values["on_accept"]
        self.on_decline = values["on_decline"]

    def _number(self, s: Session) -> str:
        value = self.number.evaluate(s.vars)
        return "" if value is None or isinstance(value, bool) else str(value)

    def enter(self, s: Session) -> None:
        if not self._number(s):
            s.go("on_decline", self.on_decline)  # nobody to call back
            return
        super().enter(s)

    def decide(self, s: Session, digits: str) -> bool:
        from .effects import RequestCallback

        if digits == self.accept:
            s.report_digits(digits)
            number = self._number(s)
            s.set_var("callback_number", number)
            s.emit(RequestCallback(number=number, queue=self.queue.render(s.vars), data=s.snapshot_vars()))
            s.go("on_accept", self.on_accept)
            return True
        if digits == self.decline:
            s.report_digits(digits)
            s.go("on_decline", self.on_decline)
            return True
        return False

    def fail(self, s: Session) -> None:
        s.go("on_decline", self.on_decline)


class SurveyNode(InputNode):
    TYPE = "survey"
    DOC = "Ask for a score (1 to 5 by default) and store it as a variable of the call record."
    FIELDS = {
        **_prompt_fields(),
        "variable": Field("varname", "Variable that receives the score (an int).", default="survey_score"),
        "min": Field("int", "Lowest score.", default=1, minimum=0, maximum=9),
        "max": Field("int", "Highest score.", default=5, minimum=0, maximum=9),
        **_input_fields(),
        "next": Field("target", "Where to go with a score.", required=True, passive=False),
        "on_failure": Field("target", "Where to go without a score.", required=True),
    }

    def setup(self, values: Mapping[str, Any]) -> None:
        self.setup_input(values)
        self.variable = values["variable"]
        self.low = values["min"]
        self.high = values["max"]
        self.next = values["next"]
        self.on_failure = values["on_failure"]

    def decide(self, s: Session, digits: str) -> bool:
        if not digits.isdigit() or not self.low <= int(digits) <= self.high:
            return False
        s.report_digits(digits)
        s.set_var(self.variable, int(digits))
        s.go("next", self.next)
        return True

    def fail(self, s: Session) -> None:
        s.go("on_failure", self.on_failure)


NODE_TYPES: dict[str, type[Node]] = {
    cls.TYPE: cls
    for cls in (
        PlayNode,
        MenuNode,
        CollectNode,
        RecordNode,
        ConditionNode,
        SwitchNode,
        SetNode,
        BusinessHoursNode,
        LanguageNode,
        LookupNode,
        QueueNode,
        TransferNode,
        CallbackNode,
        SurveyNode,
        HangupNode,
        GotoNode,
    )
}
TERMINAL_TYPES = frozenset(t for t, cls in NODE_TYPES.items() if cls.TERMINAL)
