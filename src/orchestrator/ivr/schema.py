"""The JSON Schema (draft 2020-12) of flow files, generated from the node tables.

Editors use it for completion and squiggles (``ivr/schema.json``; each demo
flow names it in a ``yaml-language-server`` comment). It is generated from
the same :class:`~orchestrator.ivr.nodes.Field` tables the loader checks
against, and a test keeps the committed file equal to :func:`build_schema`.
The loader stays the authority (it also checks targets, prompt files,
expressions, patterns and loops, which a schema cannot); the schema only has
to agree with it on shapes. Regenerate with::

    python -m orchestrator.ivr.schema > ivr/schema.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .compiler import TOP_LEVEL_KEYS
from .nodes import COMMON_FIELDS, NODE_TYPES, Field

__all__ = ["build_schema", "schema_text"]

_DIGIT = "^[0-9*#A-D]$"
_VAR = "^[A-Za-z_][A-Za-z0-9_]*$"
_NAME = "^[A-Za-z_][A-Za-z0-9_-]*$"
_LANG = "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
_PROMPT = "^[A-Za-z0-9_][A-Za-z0-9_-]*(/[A-Za-z0-9_][A-Za-z0-9_-]*)*$"
_DAYS = (
    "^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?(,\\s*(mon|tue|wed|thu|fri|sat|sun)"
    "(-(mon|tue|wed|thu|fri|sat|sun))?)*$"
)
_RANGE = "^\\s*\\d{1,2}:\\d{2}\\s*-\\s*\\d{1,2}:\\d{2}\\s*$"
_DATE = "^(\\d{4}-)?\\d{2}-\\d{2}$"

_EXPR: dict[str, Any] = {"type": ["string", "number", "boolean", "null"]}


def _kind(f: Field) -> dict[str, Any]:
    k = f.kind
    if k in ("str", "target"):
        return {"type": "string", "minLength": 1}
    if k == "bool":
        return {"type": "boolean"}
    if k in ("int", "number"):
        out: dict[str, Any] = {"type": "integer" if k == "int" else "number"}
        if f.minimum is not None:
            out["minimum"] = f.minimum
        if f.maximum is not None:
            out["maximum"] = f.maximum
        return out
    if k == "prompts":
        one = {"type": "string", "pattern": _PROMPT}
        return {"oneOf": [one, {"type": "array", "items": one, "minItems": 1 if f.required else 0}]}
    if k == "digit":
        return {
            "oneOf": [{"type": "string", "pattern": _DIGIT}, {"type": "integer", "minimum": 0, "maximum": 9}]
        }
    if k == "digits":
        return {"type": "string", "pattern": "^[0-9*#A-D]*$"}
    if k == "varname":
        return {"type": "string", "pattern": _VAR}
    if k == "flowname":
        return {"type": "string", "pattern": _NAME}
    if k == "expr":
        return dict(_EXPR)
    if k == "template":
        return {"type": ["string", "integer"]}
    if k == "pattern":
        return {"type": "string", "format": "regex", "minLength": 1}
    if k == "choices":
        return {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _DIGIT},
            "additionalProperties": {"type": "string", "minLength": 1},
        }
    if k == "language_choices":
        return {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _DIGIT},
            "additionalProperties": {"type": "string", "pattern": _LANG},
        }
    if k == "exprmap":
        return {"type": "object", "propertyNames": {"pattern": _VAR}, "additionalProperties": _EXPR}
    if k == "resultmap":
        return {
            "type": "object",
            "propertyNames": {"pattern": _VAR},
            "additionalProperties": {
                "type": "string",
                "pattern": "^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$",
            },
        }
    if k == "cases":
        return {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["when", "goto"],
                "additionalProperties": False,
                "properties": {"when": _EXPR, "goto": {"type": "string", "minLength": 1}},
            },
        }
    if k == "timezone":
        return {"type": "string", "minLength": 1, "examples": ["Europe/London", "America/New_York"]}
    if k == "schedule":
        hours = {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string", "pattern": _RANGE}}]
        }
        return {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _DAYS},
            "additionalProperties": hours,
        }
    if k == "holidays":
        day = {"type": "string", "pattern": _DATE}
        return {
            "type": "array",
            "items": {
                "oneOf": [
                    day,
                    {
                        "type": "object",
                        "required": ["date"],
                        "additionalProperties": False,
                        "properties": {"date": day, "name": {"type": "string"}},
                    },
                    {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 1,
                        "propertyNames": {"pattern": _DATE},
                        "additionalProperties": {"type": ["string", "null"]},
                    },
                ]
            },
        }
    if k == "skills":
        return {
            "oneOf": [
                {"type": "string", "description": "an expression giving a list"},
                {"type": "array", "items": {"type": ["string", "integer"]}},
            ]
        }
    raise AssertionError(f"no schema for field kind {k!r}")


def _node_schema(node_type: str) -> dict[str, Any]:
    cls = NODE_TYPES[node_type]
    fields = {**COMMON_FIELDS, **cls.FIELDS}
    props: dict[str, Any] = {}
    for key, f in fields.items():
        prop = {"const": node_type} if key == "type" else _kind(f)
        prop = {"description": f.doc, **prop}
        if f.default is not None and not isinstance(f.default, (dict, tuple)):
            prop["default"] = f.default
        props[key] = prop
    return {
        "type": "object",
        "description": cls.DOC,
        "properties": props,
        "required": [k for k, f in fields.items() if f.required],
        "additionalProperties": False,
    }


def build_schema() -> dict[str, Any]:
    """The JSON Schema of an IVR flow file."""
    types = sorted(NODE_TYPES)
    node = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": types}},
        "allOf": [
            {
                "if": {"properties": {"type": {"const": t}}, "required": ["type"]},
                "then": {"$ref": f"#/$defs/{t}"},
            }
            for t in types
        ],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Hotline IVR flow",
        "description": "A call flow: ivr/NAME.yaml. Check it with `hotline ivr lint FILE`.",
        "type": "object",
        "required": ["start", "nodes"],
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string", "description": TOP_LEVEL_KEYS["description"]},
            "start": {"type": "string", "minLength": 1, "description": TOP_LEVEL_KEYS["start"]},
            "entries": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": TOP_LEVEL_KEYS["entries"],
            },
            "languages": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "string", "pattern": _LANG},
                "description": TOP_LEVEL_KEYS["languages"],
            },
            "prompts": {"type": "string", "minLength": 1, "description": TOP_LEVEL_KEYS["prompts"]},
            "variables": {
                "type": "object",
                "propertyNames": {"pattern": _VAR},
                "additionalProperties": {"type": ["string", "number", "boolean", "null", "array"]},
                "description": TOP_LEVEL_KEYS["variables"],
            },
            "nodes": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": _NAME},
                "additionalProperties": {"$ref": "#/$defs/node"},
                "description": TOP_LEVEL_KEYS["nodes"],
            },
        },
        "$defs": {"node": node, **{t: _node_schema(t) for t in types}},
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())
