"""Per-node counters: where callers go, retry, and give up.

For each (flow, node): entries; exits by branch label (``next``, a menu
digit, ``on_failure``, ``open``... and for the end of the IVR ``hangup``,
``transfer``, ``answered``); retries by reason (``invalid``, ``timeout``);
and caller hang-ups while in the node, the number an operator looks at to
see where callers give up. Plain counters updated by sessions, read as a
frozen :class:`MetricsSnapshot`. Counters are keyed by node name, not by flow
version, so they add up across hot reloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["FlowMetrics", "NodeMetrics", "MetricsSnapshot"]


@dataclass(frozen=True)
class NodeMetrics:
    flow: str
    node: str
    entries: int
    exits: Mapping[str, int]
    retries: Mapping[str, int]
    hangups: int

    @property
    def exits_total(self) -> int:
        return sum(self.exits.values())


@dataclass(frozen=True)
class MetricsSnapshot:
    nodes: tuple[NodeMetrics, ...]

    def get(self, flow: str, node: str) -> NodeMetrics | None:
        for m in self.nodes:
            if m.flow == flow and m.node == node:
                return m
        return None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{flow: {node: {entries, exits, retries, hangups}}}``."""
        out: dict[str, Any] = {}
        for m in self.nodes:
            out.setdefault(m.flow, {})[m.node] = {
                "entries": m.entries,
                "exits": dict(m.exits),
                "retries": dict(m.retries),
                "hangups": m.hangups,
            }
        return out


class _Counters:
    __slots__ = ("entries", "exits", "retries", "hangups")

    def __init__(self) -> None:
        self.entries = 0
        self.exits: dict[str, int] = {}
        self.retries: dict[str, int] = {}
        self.hangups = 0


class FlowMetrics:
    """Mutable counters shared by the sessions of a registry (one thread, no locks)."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[str, str], _Counters] = {}

    def _get(self, flow: str, node: str) -> _Counters:
        key = (flow, node)
        c = self._nodes.get(key)
        if c is None:
            c = self._nodes[key] = _Counters()
        return c

    def entered(self, flow: str, node: str) -> None:
        self._get(flow, node).entries += 1

    def exited(self, flow: str, node: str, branch: str) -> None:
        exits = self._get(flow, node).exits
        exits[branch] = exits.get(branch, 0) + 1

    def retried(self, flow: str, node: str, reason: str) -> None:
        retries = self._get(flow, node).retries
        retries[reason] = retries.get(reason, 0) + 1

    def hung_up(self, flow: str, node: str) -> None:
        self._get(flow, node).hangups += 1

    def snapshot(self) -> MetricsSnapshot:
        return MetricsSnapshot(
            tuple(
                NodeMetrics(
                    flow,
                    node,
                    c.entries,
                    MappingProxyType(dict(c.exits)),
                    MappingProxyType(dict(c.retries)),
                    c.hangups,
                )
                for (flow, node), c in sorted(self._nodes.items())
            )
        )


class NullMetrics(FlowMetrics):
    """Counts nothing (a session used on its own)."""

    def entered(self, flow: str, node: str) -> None:
        pass

    def exited(self, flow: str, node: str, branch: str) -> None:
        pass

    def retried(self, flow: str, node: str, reason: str) -> None:
        pass

    def hung_up(self, flow: str, node: str) -> None:
        pass
