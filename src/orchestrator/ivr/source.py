"""YAML that remembers where everything was: the flow loader's first stage.

PyYAML's composer gives the node tree with a ``start_mark`` on every node;
this module turns that tree into ordinary dicts, lists and scalars whose
containers also record the line of each key and item, so that a problem
found anywhere later is reported as ``file:line`` at the real line. It also
reports what ``yaml.safe_load`` hides: a key given twice in one mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["LocatedMap", "LocatedList", "YamlProblem", "load_located"]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlProblem:
    line: int
    message: str


class LocatedMap(dict):
    """A dict from YAML; ``line`` is where it starts, ``key_line(k)``/``value_line(k)``."""

    __slots__ = ("line", "_lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self._lines: dict[Any, tuple[int, int]] = {}

    def key_line(self, key: Any) -> int:
        return self._lines.get(key, (self.line, self.line))[0]

    def value_line(self, key: Any) -> int:
        return self._lines.get(key, (self.line, self.line))[1]


class LocatedList(list):
    """A list from YAML; ``line`` is where it starts, ``item_line(i)``."""

    __slots__ = ("line", "_lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self._lines: list[int] = []

    def item_line(self, index: int) -> int:
        return self._lines[index] if 0 <= index < len(self._lines) else self.line


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Builder:
    def __init__(self) -> None:
        self.problems: list[YamlProblem] = []
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)  # YAML merge keys (<<)
            out = LocatedMap(_line(node))
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(YamlProblem(_line(key_node), "a mapping key must be a plain value"))
                    continue
                key = self.constructor.construct_object(key_node)
                try:
                    hash(key)
                except TypeError:
                    self.problems.append(YamlProblem(_line(key_node), "a mapping key must be a plain value"))
                    continue
                if key in out:
                    self.problems.append(
                        YamlProblem(
                            _line(key_node), f"duplicate key '{key}' (first at line {out.key_line(key)})"
                        )
                    )
                    continue
                out[key] = self.build(value_node)
                out._lines[key] = (_line(key_node), _line(value_node))
            return out
        if isinstance(node, yaml.SequenceNode):
            seq = LocatedList(_line(node))
            for item in node.value:
                seq.append(self.build(item))
                seq._lines.append(_line(item))
            return seq
        return self.constructor.construct_object(node)


def load_located(text: str) -> tuple[Any, list[YamlProblem]]:
    """Parse one YAML document; returns (value, problems).

    A syntax error is one problem at its line and the value is None.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(p for p in (e.context, e.problem) if p)
        return None, [YamlProblem(line, f"YAML syntax error: {what}")]
    except yaml.YAMLError as e:
        return None, [YamlProblem(1, f"YAML syntax error: {e}")]
    if node is None:
        return None, []
    builder = _Builder()
    try:
        value = builder.build(node)
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        return None, [YamlProblem(mark.line + 1 if mark else 1, f"YAML error: {e.problem}")]
    return value, builder.problems
