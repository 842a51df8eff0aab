"""Parameter schemas for the method table: validation with messages that name the parameter.

A method declares its parameters in order, e.g.::

    Schema(Param("agent", Str()), Param("state", Choice("available", "break", "offline")),
           Param("reason", Str(max_len=64), required=False))

:meth:`Schema.bind` takes the request's ``params`` - an object (by name), an
array (by position, in the declared order) or absent - and returns a plain
dict of validated values, or raises :class:`~orchestrator.control.errors.InvalidParams`
whose message says which parameter and why::

    agent: required
    state: must be one of available, break, offline
    limit: must be an integer >= 1
    colour: unknown parameter (expected agent, state, reason)

A ``null`` for an optional parameter means "not given" (its default).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InvalidParams

__all__ = [
    "Bool",
    "Choice",
    "Digits",
    "Int",
    "IntChoice",
    "JsonObject",
    "Kind",
    "Number",
    "Param",
    "Schema",
    "Str",
    "StrList",
    "Time",
]


class Kind:
    """A parameter type: ``check(name, value)`` returns the converted value or raises InvalidParams."""

    description = "a value"

    def check(self, name: str, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        return self.description


@dataclass(frozen=True)
class Str(Kind):
    """A string of ``min_len``..``max_len`` characters, optionally matching ``pattern`` (described by ``hint``)."""

    min_len: int = 1
    max_len: int = 256
    pattern: str | None = None
    hint: str = ""

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidParams(f"{name}: must be a string")
        if len(value) < self.min_len:
            raise InvalidParams(f"{name}: must not be empty" if self.min_len == 1
                                else f"{name}: must be at least {self.min_len} characters")
        if len(value) > self.max_len:
            raise InvalidParams(f"{name}: must be at most {self.max_len} characters")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise InvalidParams(f"{name}: must be {self.hint or 'of the form ' + self.pattern}")
        return value

    def describe(self) -> str:
        return "a string"


class Choice(Kind):
    """One of a fixed set of strings."""

    def __init__(self, *choices: str) -> None:
        if not choices:
            raise ValueError("choices: at least one")
        self.choices = tuple(choices)

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise InvalidParams(f"{name}: must be one of {', '.join(self.choices)}")
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)


@dataclass(frozen=True)
class Int(Kind):
    """An integer (JSON number without a fractional part; not a boolean) in [min, max]."""

    min: int | None = None
    max: int | None = None

    def _range(self) -> str:
        if self.min is not None and self.max is not None:
            return f"an integer from {self.min} to {self.max}"
        if self.min is not None:
            return f"an integer >= {self.min}"
        if self.max is not None:
            return f"an integer <= {self.max}"
        return "an integer"

    def check(self, name: str, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or (
                self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise InvalidParams(f"{name}: must be {self._range()}")
        return value

    def describe(self) -> str:
        return self._range()


@dataclass(frozen=True)
class Number(Kind):
    """A finite number in [min, max]."""

    min: float | None = None
    max: float | None = None

    def check(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidParams(f"{name}: must be a number")
        if self.min is not None and value < self.min:
            raise InvalidParams(f"{name}: must be a number >= {self.min:g}")
        if self.max is not None and value > self.max:
            raise InvalidParams(f"{name}: must be a number <= {self.max:g}")
        return float(value)

    def describe(self) -> str:
        return "a number"


class IntChoice(Kind):
    """One of a fixed set of integers (report intervals: 900, 1800, 3600)."""

    def __init__(self, *choices: int) -> None:
        if not choices:
            raise ValueError("choices: at least one")
        self.choices = tuple(choices)

    def check(self, name: str, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value not in self.choices:
            raise InvalidParams(f"{name}: must be one of {', '.join(map(str, self.choices))}")
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.choices))


class Bool(Kind):
    description = "true or false"

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise InvalidParams(f"{name}: must be true or false")
        return value


@dataclass(frozen=True)
class JsonObject(Kind):
    """A JSON object of at most ``max_bytes`` once encoded, with at most ``max_depth`` levels."""

    max_bytes: int = 16384
    max_depth: int = 8

    def check(self, name: str, value: Any) -> dict:
        if not isinstance(value, dict):
            raise InvalidParams(f"{name}: must be an object")
        if _depth(value) > self.max_depth:
            raise InvalidParams(f"{name}: must nest at most {self.max_depth} levels")
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > self.max_bytes:
            raise InvalidParams(f"{name}: must be at most {self.max_bytes} bytes of JSON, got {size}")
        return value

    def describe(self) -> str:
        return "an object"


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level - 1


@dataclass(frozen=True)
class StrList(Kind):
    """A non-empty array of at most ``max_items`` strings, each checked by ``item``."""

    item: Str = field(default_factory=Str)
    max_items: int = 32

    def check(self, name: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise InvalidParams(f"{name}: must be an array of strings")
        if not value:
            raise InvalidParams(f"{name}: must not be empty")
        if len(value) > self.max_items:
            raise InvalidParams(f"{name}: must have at most {self.max_items} items")
        return [self.item.check(f"{name}[{i}]", v) for i, v in enumerate(value)]

    def describe(self) -> str:
        return "an array of strings"


class Digits(Str):
    """DTMF digits: 0-9, *, #, A-D (RFC 4733 events 0-15), 1 to 64 of them."""

    def __init__(self) -> None:
        super().__init__(min_len=1, max_len=64, pattern=r"[0-9*#A-Da-d]+", hint="DTMF digits (0-9, *, #, A-D)")


class Time(Kind):
    """A time: Unix seconds (a number) or ISO 8601 with a UTC offset (``2026-05-04T09:00:00Z``)."""

    description = "a time"

    def check(self, name: str, value: Any) -> float:
        if isinstance(value, bool):
            raise InvalidParams(f"{name}: must be Unix seconds or an ISO 8601 time with a UTC offset")
        if isinstance(value, (int, float)):
            if not math.isfinite(value) or value < 0:
                raise InvalidParams(f"{name}: must be Unix seconds >= 0")
            return float(value)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
            except ValueError:
                when = None
            if when is not None and when.tzinfo is not None:
                return when.timestamp()
        raise InvalidParams(f"{name}: must be Unix seconds or an ISO 8601 time with a UTC offset")


_MISSING = object()


@dataclass(frozen=True)
class Param:
    """One parameter: its JSON ``name``, its :class:`Kind`, whether required, its default."""

    name: str
    kind: Kind
    required: bool = True
    default: Any = None
    doc: str = ""


class Schema:
    """The ordered parameters of a method."""

    def __init__(self, *params: Param) -> None:
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError("params: two parameters have the same name")
        self.params = params
        self._by_name = {p.name: p for p in params}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def bind(self, raw: list | dict | None, *, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validate ``raw`` params; returns ``{name: value}`` with every declared name present.

        ``defaults`` supplies values for parameters the caller left out
        (the principal's own agent, for an agent calling ``agent.get``).
        """
        if raw is None:
            given: dict[str, Any] = {}
        elif isinstance(raw, list):
            if len(raw) > len(self.params):
                names = ", ".join(self.names)
                raise InvalidParams(f"params: at most {len(self.params)} positional parameters"
                                    + (f" ({names})" if names else ""))
            given = {p.name: v for p, v in zip(self.params, raw, strict=False)}
        elif isinstance(raw, dict):
            unknown = [k for k in raw if k not in self._by_name]
            if unknown:
                expected = ", ".join(self.names) or "no parameters"
                raise InvalidParams(f"{unknown[0]}: unknown parameter (expected {expected})")
            given = raw
        else:  # the framing already refuses this; kept for direct callers
            raise InvalidParams("params: must be an array or an object")
        out: dict[str, Any] = {}
        for p in self.params:
            value = given.get(p.name, _MISSING)
            if value is None and not p.required:
                value = _MISSING
            if value is _MISSING and defaults is not None and p.name in defaults:
                value = defaults[p.name]
            if value is _MISSING:
                if p.required:
                    raise InvalidParams(f"{p.name}: required")
                out[p.name] = p.default
                continue
            out[p.name] = p.kind.check(p.name, value)
        return out

    def describe(self) -> list[dict[str, Any]]:
        """The schema as data (``system.version`` lists it for client authors)."""
        return [{"name": p.name, "type": p.kind.describe(), "required": p.required,
                 **({"default": p.default} if p.default is not None else {}), **({"doc": p.doc} if p.doc else {})}
                for p in self.params]
