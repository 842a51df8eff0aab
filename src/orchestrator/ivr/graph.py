"""Draw a flow: Graphviz DOT text (pure), rendered to SVG by Graphviz's ``dot``.

Why Graphviz rather than our own SVG: flows have cycles (retries, "press 9
to repeat"), many labelled edges and branches that merge again; laying that
out legibly is what ``dot``'s layered layout (Gansner et al.) does, and a
home-made layout would be worse and longer. ``dot`` is the Debian package
``graphviz``. :func:`to_dot` needs nothing; only :func:`render_svg` runs
``dot``.

Shapes: the start node has an arrow from a dot; input nodes (menu, collect,
language, callback, survey) are hexagons; prompts are notes; decisions are
diamonds; hand-offs (queue, transfer, goto) are house shapes; hangup is an
octagon. Solid edges need a caller's key press, dashed edges are taken
without one (end of prompt, timeout, failure).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .flow import Flow

__all__ = ["to_dot", "render_svg", "GraphvizMissing"]

_SHAPES = {
    "play": ("note", "#eef5ff"),
    "record": ("note", "#fff4e0"),
    "menu": ("hexagon", "#e8f7e8"),
    "collect": ("hexagon", "#e8f7e8"),
    "language": ("hexagon", "#e8f7e8"),
    "callback": ("hexagon", "#e8f7e8"),
    "survey": ("hexagon", "#e8f7e8"),
    "condition": ("diamond", "#f6f0ff"),
    "switch": ("diamond", "#f6f0ff"),
    "business_hours": ("diamond", "#f6f0ff"),
    "set": ("box", "#f4f4f4"),
    "lookup": ("component", "#fffbe0"),
    "queue": ("house", "#ffe8e8"),
    "transfer": ("house", "#ffe8e8"),
    "goto": ("house", "#eeeeee"),
    "hangup": ("octagon", "#dddddd"),
}


class GraphvizMissing(RuntimeError):
    """Graphviz's ``dot`` is not installed (Debian package ``graphviz``)."""


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _summary(node: object) -> str:
    t = getattr(node, "TYPE", "")
    if t in ("play", "menu", "collect", "language", "callback", "survey", "record"):
        prompts = getattr(node, "prompts", ())
        return ", ".join(prompts[:3]) + (" ..." if len(prompts) > 3 else "")
    if t == "queue":
        return f"queue {node.queue.source}"  # type: ignore[attr-defined]
    if t == "transfer":
        return f"to {node.target.source}"  # type: ignore[attr-defined]
    if t == "goto":
        return f"flow {node.flow}" + (f" / {node.node}" if node.node else "")  # type: ignore[attr-defined]
    if t == "condition":
        return node.condition.source  # type: ignore[attr-defined]
    if t == "lookup":
        return node.url.source if node.url is not None else node.method  # type: ignore[attr-defined]
    return ""


def to_dot(flow: Flow) -> str:
    """The flow as a DOT digraph (deterministic: nodes and edges in file order)."""
    lines = [
        f"digraph {_q(flow.name)} {{",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica", fontsize=11, labelloc=t, '
        f"label={_q(flow.name + ' (version ' + flow.version + ')')}];",
        '  node [fontname="Helvetica", fontsize=10, style=filled];',
        '  edge [fontname="Helvetica", fontsize=9];',
        '  "__start__" [shape=point, width=0.15, label=""];',
        f'  "__start__" -> {_q(flow.start)};',
    ]
    for name, node in flow.nodes.items():
        shape, color = _SHAPES.get(node.TYPE, ("box", "#ffffff"))
        summary = _summary(node)
        label = f"{name}\n[{node.TYPE}]" + (f"\n{summary}" if summary else "")
        if node.max_visits:
            label += f"\nmax visits {node.max_visits}"
        lines.append(f"  {_q(name)} [shape={shape}, fillcolor={_q(color)}, label={_q(label)}];")
    for name, node in flow.nodes.items():
        for edge in node.edges:
            style = "dashed" if edge.passive else "solid"
            lines.append(f"  {_q(name)} -> {_q(edge.target)} [label={_q(edge.label)}, style={style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot_source: str, out: str | Path, *, dot: str = "dot") -> Path:
    """Run Graphviz's ``dot -Tsvg`` on ``dot_source`` and write ``out``."""
    import subprocess  # only here: the rest of the package never starts processes

    exe = shutil.which(dot)
    if exe is None:
        raise GraphvizMissing("Graphviz's 'dot' is not installed (Debian package: graphviz)")
    result = subprocess.run(
        [exe, "-Tsvg"], input=dot_source.encode(), capture_output=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    out = Path(out)
    out.write_bytes(result.stdout)
    return out
