"""Compiled flows: immutable, versioned by the hash of their source.

A :class:`Flow` is what the loader makes of one ``ivr/NAME.yaml``: its nodes,
its languages, and every prompt already resolved to a file path for every
language, so playing a prompt is a dictionary lookup. A :class:`FlowSet` is
the set of flows a call may use (``goto`` jumps between them); the registry
swaps whole FlowSets, and a session keeps the one it started with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .nodes import Node

__all__ = ["Flow", "FlowSet"]


@dataclass(frozen=True, eq=False)
class Flow:
    """One compiled flow. ``version`` is the first 12 hex digits of the SHA-256 of its source."""

    name: str
    version: str
    start: str
    nodes: Mapping[str, Node]
    languages: tuple[str, ...]
    defaults: Mapping[str, Any]
    prompt_paths: Mapping[tuple[str, str], str]
    path: str | None = None
    description: str = ""
    entries: tuple[str, ...] = ()

    def prompts(self, names: tuple[str, ...], language: Any) -> tuple[str, ...]:
        """File paths of ``names`` in ``language`` (the flow's first language if it has no such one)."""
        if language not in self.languages:
            language = self.languages[0]
        table = self.prompt_paths
        return tuple(table[(language, n)] for n in names)

    def __repr__(self) -> str:
        return f"<Flow {self.name!r} version {self.version} ({len(self.nodes)} nodes)>"


@dataclass(frozen=True, eq=False)
class FlowSet(Mapping[str, Flow]):
    """Flows by name; ``version`` hashes every member's name and version."""

    flows: Mapping[str, Flow] = field(default_factory=dict)
    version: str = ""

    def __post_init__(self) -> None:
        frozen = MappingProxyType(dict(self.flows))
        object.__setattr__(self, "flows", frozen)
        digest = hashlib.sha256()
        for name in sorted(frozen):
            digest.update(f"{name}={frozen[name].version};".encode())
        object.__setattr__(self, "version", digest.hexdigest()[:12])

    @classmethod
    def of(cls, *flows: Flow) -> FlowSet:
        names = [f.name for f in flows]
        if len(set(names)) != len(names):
            raise ValueError("flows: two flows have the same name")
        return cls({f.name: f for f in flows})

    def __getitem__(self, name: str) -> Flow:
        return self.flows[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)

    def __repr__(self) -> str:
        return f"<FlowSet version {self.version}: {', '.join(sorted(self.flows))}>"
