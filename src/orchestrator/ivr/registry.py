"""The flow registry: hot reload with calls in progress kept on their version.

The registry holds one :class:`~orchestrator.ivr.flow.FlowSet` at a time and
replaces it in a single assignment, all or nothing: a reload whose files do
not all lint clean changes nothing and returns the problems. New calls start
on the current set; a :class:`~orchestrator.ivr.session.Session` keeps a
reference to the set it started with, so a call in progress finishes on the
flows it began with. Per-node metrics are shared by all sessions it starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .compiler import FlowError, Problem, load_flows
from .flow import FlowSet
from .metrics import FlowMetrics
from .session import Session

__all__ = ["FlowRegistry", "ReloadResult", "RegistryStatistics"]


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``ok`` with the names added/changed/removed, or the ``problems``."""

    ok: bool
    version: str
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class RegistryStatistics:
    version: str
    flows: tuple[str, ...]
    sessions_started: int
    reloads: int
    reloads_refused: int


class FlowRegistry:
    """Current flows, the sessions' metrics, and atomic replacement."""

    def __init__(self, flows: FlowSet | None = None, *, max_typeahead: int = 32) -> None:
        if flows is not None and not isinstance(flows, FlowSet):
            raise ValueError("flows: expected a FlowSet")
        self._flows = flows if flows is not None else FlowSet({})
        self.metrics = FlowMetrics()
        self.max_typeahead = max_typeahead
        self._started = 0
        self._reloads = 0
        self._refused = 0

    @property
    def flows(self) -> FlowSet:
        return self._flows

    @property
    def version(self) -> str:
        return self._flows.version

    def start(self, flow: str) -> Session:
        """A new session on the current version of ``flow``; feed it ``call_started`` next."""
        if flow not in self._flows:
            raise ValueError(
                f"flow: no flow named {flow!r} (have {', '.join(sorted(self._flows)) or 'none'})"
            )
        self._started += 1
        return Session(self._flows, flow, metrics=self.metrics, max_typeahead=self.max_typeahead)

    def replace(self, flows: FlowSet) -> ReloadResult:
        """Swap in ``flows`` (already compiled); sessions in progress keep theirs."""
        if not isinstance(flows, FlowSet):
            raise ValueError("flows: expected a FlowSet")
        old = self._flows
        self._flows = flows
        self._reloads += 1
        return ReloadResult(
            ok=True,
            version=flows.version,
            added=tuple(sorted(set(flows) - set(old))),
            changed=tuple(sorted(n for n in flows if n in old and old[n].version != flows[n].version)),
            removed=tuple(sorted(set(old) - set(flows))),
        )

    def reload(self, source: str | Path | Iterable[str | Path]) -> ReloadResult:
        """Load a directory of flows (or files) and swap them in, or refuse with the problems."""
        try:
            flows = load_flows(source)
        except FlowError as e:
            self._refused += 1
            return ReloadResult(ok=False, version=self._flows.version, problems=tuple(e.problems))
        return self.replace(flows)

    def statistics(self) -> RegistryStatistics:
        return RegistryStatistics(
            self._flows.version, tuple(sorted(self._flows)), self._started, self._reloads, self._refused
        )
