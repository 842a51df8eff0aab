"""Graph checks of a flow: reachability and loops.

* Unreachable: a node no path from ``start`` (or a declared entry) leads to.
* Loop with no exit: a strongly connected set of nodes with no edge leaving
  it and no node that can end the call by itself (a queue can be answered):
  once inside, the caller can only hang up.
* Loop with no retry limit: a cycle made only of *passive* edges (taken
  without the caller pressing a valid key: end of a prompt, a timeout, a
  retry limit, a failed lookup), none of whose nodes has ``max_visits``.
  A silent caller would go round it forever, for instance a menu whose
  ``on_failure`` plays "sorry" and comes back to the menu.
"""

from __future__ import annotations

from collections.abc import Mapping

from .nodes import Node

__all__ = ["graph_problems", "strongly_connected"]


def strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns the components (any order)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph.get(w, ()))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                components.append(component)
    return components


def _is_cycle(component: list[str], graph: Mapping[str, list[str]]) -> bool:
    return len(component) > 1 or component[0] in graph.get(component[0], ())


def graph_problems(
    nodes: Mapping[str, Node], start: str, entries: tuple[str, ...] = ()
) -> list[tuple[int, str]]:
    """(line, message) for each graph problem; ``nodes`` must have only known targets.

    ``entries`` are extra roots (nodes other flows enter by ``goto``).
    """
    problems: list[tuple[int, str]] = []
    seen = {start, *entries}
    todo = list(seen)
    while todo:
        for edge in nodes[todo.pop()].edges:
            if edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    for name, node in nodes.items():
        if name not in seen:
            problems.append((node.line, f"node '{name}' is unreachable from start '{start}'"))

    def ordered(names: list[str]) -> list[str]:
        return sorted(names, key=lambda n: nodes[n].line)

    full = {name: [e.target for e in node.edges] for name, node in nodes.items()}
    trapped: set[str] = set()
    for component in strongly_connected(full):
        if not _is_cycle(component, full):
            continue
        members = set(component)
        leaves = any(t not in members for n in component for t in full[n])
        ends = any(nodes[n].TYPE == "queue" for n in component)
        if not leaves and not ends:
            trapped |= members
            names = ordered(component)
            problems.append(
                (nodes[names[0]].line, f"loop with no exit: {', '.join(names)} lead only to each other")
            )

    passive = {
        name: [e.target for e in node.edges if e.passive and nodes[e.target].max_visits is None]
        for name, node in nodes.items()
        if node.max_visits is None
    }
    for component in strongly_connected(passive):
        if not _is_cycle(component, passive) or set(component) <= trapped:
            continue
        names = ordered(component)
        problems.append(
            (
                nodes[names[0]].line,
                f"loop with no retry limit: a caller who presses nothing goes round "
                f"{', '.join(names)} forever (set max_visits on one of them)",
            )
        )
    return problems
