"""``hotline ivr lint FILE...`` and ``hotline ivr graph FILE -o OUT.svg``.

``lint`` prints one ``file:line: message`` per problem and exits 1 if there
is any (0 otherwise). A ``goto`` to another flow is checked against the
other files given and, failing that, against ``<flow>.yaml`` beside the
file. A directory argument means every ``*.yaml`` in it. ``graph`` draws a
flow that lints clean as SVG with Graphviz (or writes the DOT text when OUT
ends in ``.dot``). ``main(argv)`` returns the exit code; the ``hotline``
console script dispatches ``hotline ivr ...`` here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from .compiler import Problem, check_file, check_gotos
from .flow import Flow
from .graph import GraphvizMissing, render_svg, to_dot

__all__ = ["lint", "graph", "main"]


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        out.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return out


def lint(paths: Iterable[str | Path]) -> list[Problem]:
    """Every problem in the given flow files (directories: their ``*.yaml``), sorted by file and line."""
    files = _expand(paths)
    problems: list[Problem] = []
    flows: list[tuple[Path, Flow]] = []
    for path in files:
        flow, found = check_file(path)
        problems.extend(found)
        if flow is not None:
            flows.append((path, flow))
    given = {flow.name: flow for _, flow in flows}
    sibling_cache: dict[Path, Flow | None] = {}
    for path, flow in flows:
        known: dict[str, Flow | None] = dict(given)
        for node in flow.nodes.values():
            other = getattr(node, "flow", None) if node.TYPE == "goto" else None
            if other is None or other in known:
                continue
            sibling = path.parent / f"{other}.yaml"
            if sibling.is_file():
                if sibling not in sibling_cache:
                    sibling_cache[sibling] = check_file(sibling)[0]
                known[other] = sibling_cache[sibling]
        problems.extend(check_gotos({flow.name: flow}, known))
    order = {str(p): i for i, p in enumerate(files)}
    return sorted(set(problems), key=lambda p: (order.get(p.path, len(order)), p.path, p.line, p.message))


def graph(path: str | Path, out_svg: str | Path) -> list[Problem]:
    """Draw the flow in ``path`` to ``out_svg`` (DOT text if it ends in .dot).

    Returns the problems instead (and draws nothing) if the flow does not load.
    Raises :class:`~orchestrator.ivr.graph.GraphvizMissing` without Graphviz.
    """
    flow, problems = check_file(path)
    if flow is None:
        return problems
    source = to_dot(flow)
    out = Path(out_svg)
    if out.suffix == ".dot":
        out.write_text(source, encoding="utf-8")
    else:
        render_svg(source, out)
    return []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline ivr", description="Check and draw IVR flows (ivr/*.yaml).")
    sub = parser.add_subparsers(dest="command", required=True)
    p_lint = sub.add_parser("lint", help="validate flows; prints file:line: message, exits 1 on any problem")
    p_lint.add_argument("files", nargs="+", metavar="FILE", help="flow files or directories")
    p_graph = sub.add_parser("graph", help="draw a flow as SVG (Graphviz)")
    p_graph.add_argument("file", metavar="FILE")
    p_graph.add_argument(
        "-o", "--output", required=True, metavar="OUT.svg", help="SVG file (or .dot for DOT text)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "lint":
        problems = lint(args.files)
        for p in problems:
            print(p)
        if problems:
            return 1
        print(f"{len(_expand(args.files))} flow file(s): no problems")
        return 0
    try:
        problems = graph(args.file, args.output)
    except GraphvizMissing as e:
        print(f"hotline ivr graph: {e}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError) as e:
        print(f"hotline ivr graph: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
