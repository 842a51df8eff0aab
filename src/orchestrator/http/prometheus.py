"""A small metrics registry and the Prometheus text exposition format, version 0.0.4.

The format (prometheus.io/docs/instrumenting/exposition_formats, "Text-based
format"): for each metric family a ``# HELP name text`` line (backslash and
line feed escaped as ``\\\\`` and ``\\n``), a ``# TYPE name counter|gauge|histogram``
line, then its samples ``name{label="value",...} value``, label values
escaped for backslash, double quote and line feed. Values are Go-style floats
(``+Inf``, ``-Inf``, ``NaN``). A histogram has cumulative ``name_bucket``
samples with an ``le`` label ending at ``le="+Inf"``, then ``name_sum`` and
``name_count``. The HTTP response's Content-Type is
``text/plain; version=0.0.4; charset=utf-8``.

Names follow the Prometheus conventions: ``hotline_`` prefix, base units
(seconds), counters end in ``_total``. Families are either instruments
(:class:`Counter`, :class:`Gauge`, :class:`Histogram`: updated as things
happen) or collectors: functions called at each scrape that yield
``(name, type, help, [(labels, value), ...])`` - for values that live in a
service already (queue lengths, agents by state), read when scraped rather
than copied on every change.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "Registry", "format_value"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = ("counter", "gauge", "histogram", "untyped")
log = logging.getLogger("hotline.metrics")
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Collector = Callable[[], Iterable[tuple[str, str, str, Sequence[tuple[Mapping[str, str], float]]]]]


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: integers without a fraction, +Inf/-Inf/NaN."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{_escape_label(extra[1])}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _check_name(name: str, kind: str) -> None:
    if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"name: {name!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    if kind == "counter" and not name.endswith("_total"):
        raise ValueError(f"name: a counter's name ends in _total, got {name!r}")


def _check_labelnames(labelnames: Sequence[str], reserved: tuple[str, ...] = ()) -> tuple[str, ...]:
    out = tuple(labelnames)
    for n in out:
        if not isinstance(n, str) or not _LABEL_NAME.fullmatch(n) or n.startswith("__") or n in reserved:
            raise ValueError(f"labelnames: {n!r} is not a usable label name")
    if len(set(out)) != len(out):
        raise ValueError("labelnames: a label name appears twice")
    return out


class _Family:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        _check_name(name, self.kind)
        self.name = name
        self.help = help
        self.labelnames = _check_labelnames(labelnames, ("le",) if self.kind == "histogram" else ())
        self._lock = threading.Lock()

    def _key(self, labels: Mapping[str, Any]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"labels: {self.name} takes exactly {', '.join(self.labelnames) or 'no labels'}, "
                             f"got {', '.join(sorted(labels)) or 'none'}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def _header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Family):
    """A monotonically increasing count; ``inc(amount, **labels)``."""

    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, amount: float = 1, **labels: Any) -> None:
        if not amount >= 0:
            raise ValueError(f"amount: a counter only goes up, got {amount!r}")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, **labels: Any) -> float:
        return self._values.get(self._key(labels), 0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self._header() + [f"{self.name}{_labels(self.labelnames, k)} {format_value(v)}" for k, v in items]


class Gauge(_Family):
    """A value that goes up and down; ``set``, ``inc``, ``dec``."""

    kind = "gauge"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[tuple[str, ...], float] = {}

    def set(self, value: float, **labels: Any) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def inc(self, amount: float = 1, **labels: Any) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def dec(self, amount: float = 1, **labels: Any) -> None:
        self.inc(-amount, **labels)

    def value(self, **labels: Any) -> float:
        return self._values.get(self._key(labels), 0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self._header() + [f"{self.name}{_labels(self.labelnames, k)} {format_value(v)}" for k, v in items]


class Histogram(_Family):
    """Observations counted in cumulative buckets (upper bounds ``buckets``, then +Inf), with sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help, labelnames)
        bounds = [float(b) for b in buckets]
        if not bounds or any(not math.isfinite(b) for b in bounds) or sorted(set(bounds)) != bounds:
            raise ValueError("buckets: must be finite, strictly increasing upper bounds")
        self.buckets = tuple(bounds)
        self._values: dict[tuple[str, ...], list] = {}  # key -> [per-bucket counts..., +Inf count, sum]

    def observe(self, value: float, **labels: Any) -> None:
        key = self._key(labels)
        i = bisect_left(self.buckets, value)  # first bound >= value: "le" is inclusive
        with self._lock:
            row = self._values.get(key)
            if row is None:
                row = self._values[key] = [0] * (len(self.buckets) + 1) + [0.0]
            row[i] += 1
            row[-1] += value

    def counts(self, **labels: Any) -> tuple[list[int], float]:
        """(cumulative counts per bucket incl. +Inf, sum)."""
        row = self._values.get(self._key(labels))
        if row is None:
            return [0] * (len(self.buckets) + 1), 0.0
        cum, total = [], 0
        for c in row[:-1]:
            total += c
            cum.append(total)
        return cum, row[-1]

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._values.items())
        lines = self._header()
        bounds = [format_value(b) for b in self.buckets] + ["+Inf"]
        for key, row in items:
            total = 0
            for bound, c in zip(bounds, row[:-1], strict=True):
                total += c
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, ('le', bound))} {total}")
            lab = _labels(self.labelnames, key)
            lines.append(f"{self.name}_sum{lab} {format_value(row[-1])}")
            lines.append(f"{self.name}_count{lab} {total}")
        return lines


class Registry:
    """Metric families by name, and collectors read at each scrape."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._collectors: list[Collector] = []

    def _add(self, family: _Family) -> Any:
        if family.name in self._families:
            raise ValueError(f"name: {family.name} is already registered")
        self._families[family.name] = family
        return family

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help, labelnames))

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help, labelnames))

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help, labelnames, buckets))

    def add_collector(self, collector: Collector) -> None:
        """``collector()`` yields (name, type, help, [(labels, value), ...]) at each scrape."""
        self._collectors.append(collector)

    def get(self, name: str) -> _Family | None:
        return self._families.get(name)

    def render(self) -> str:
        """The whole exposition, families in name order; a failing collector is skipped, not fatal."""
        blocks: dict[str, list[str]] = {name: fam.render() for name, fam in self._families.items()}
        for collector in self._collectors:
            try:
                produced = list(collector())
            except Exception:  # a scrape must not fail because one service is down
                log.warning("metrics: a collector failed; its families are left out of this scrape", exc_info=True)
                continue
            for name, kind, help_text, samples in produced:
                if name in blocks:
                    raise ValueError(f"name: {name} is produced twice")
                if kind not in _TYPES or kind == "histogram":
                    raise ValueError(f"type: collectors give counter, gauge or untyped, got {kind!r}")
                _check_name(name, kind)
                lines = [f"# HELP {name} {_escape_help(help_text)}", f"# TYPE {name} {kind}"]
                for labels, value in samples:
                    names = _check_labelnames(list(labels))
                    lines.append(f"{name}{_labels(names, [str(labels[n]) for n in names])} {format_value(value)}")
                blocks[name] = lines
        out: list[str] = []
        for name in sorted(blocks):
            out.extend(blocks[name])
        return "\n".join(out) + "\n" if out else ""
