"""The results file: one JSON document per run, under bench/results/.

``bench-<YYYYmmdd-HHMMSS>[-quick].json`` keeps every run; ``bench-latest.json``
is a copy of the last one. The document (``SCHEMA`` is its JSON Schema):

    {"schema": "hotline-bench/1", "run_id", "started", "finished", "quick", "repeat",
     "command": "hotline bench ...", "machine": {...}, "versions": {...},
     "suites": [{"name", "title", "status": ok|failed|skipped|unavailable, "reason",
                 "seconds", "load_before": [1m, 5m, 15m], "load_after": [...],
                 "commands": [...],
                 "benchmarks": [{"group", "name", "role", "min_s", "median_s", "max_s",
                                 "rounds", "extra"}],           # pytest-benchmark suites
                 "ratios": [{"group", "metric", "ours", "baseline", "higher_is_better",
                             "ours_value": {min, median, max, n}, "baseline_value": {...},
                             "ratio"}],
                 "metrics": {...},                                # scenario figures
                 "artifacts": {name: json}, "plots": [paths]}]}

Every figure of a scenario is ``{"min", "median", "max", "n"}`` over its
repeated runs (stats.summarize).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

__all__ = ["SCHEMA", "SCHEMA_ID", "STATUSES", "load_runs", "new_run", "validate", "write_run"]

SCHEMA_ID = "hotline-bench/1"
STATUSES = ("ok", "failed", "skipped", "unavailable")

_SUMMARY = {
    "type": "object",
    "required": ["min", "median", "max", "n"],
    "properties": {k: {"type": "number"} for k in ("min", "median", "max")} | {"n": {"type": "integer"}},
}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema", "run_id", "started", "finished", "quick", "repeat", "command", "machine",
                 "versions", "suites"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "run_id": {"type": "string"},
        "started": {"type": "string"},
        "finished": {"type": "string"},
        "quick": {"type": "boolean"},
        "repeat": {"type": "integer", "minimum": 1},
        "command": {"type": "string"},
        "machine": {"type": "object", "required": ["cpu", "cpus", "kernel"]},
        "versions": {"type": "object", "required": ["commit", "python", "numpy", "libopus", "rtpengine",
                                                    "kamailio", "sipp", "kernel", "cpu"]},
        "suites": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "title", "status", "seconds", "load_before", "load_after", "commands",
                             "benchmarks", "ratios", "metrics", "artifacts", "plots"],
                "properties": {
                    "name": {"type": "string"},
                    "status": {"enum": list(STATUSES)},
                    "reason": {"type": ["string", "null"]},
                    "seconds": {"type": "number", "minimum": 0},
                    "load_before": {"type": "array", "items": {"type": "number"}},
                    "load_after": {"type": "array", "items": {"type": "number"}},
                    "commands": {"type": "array", "items": {"type": "string"}},
                    "benchmarks": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["group", "name", "role", "min_s", "median_s", "max_s", "rounds"],
                            "properties": {"role": {"enum": ["ours", "baseline"]},
                                           "min_s": {"type": "number"}, "median_s": {"type": "number"},
                                           "max_s": {"type": "number"}, "rounds": {"type": "integer"}},
                        },
                    },
                    "ratios": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["group", "metric", "ours", "baseline", "higher_is_better", "ratio",
                                         "ours_value", "baseline_value"],
                            "properties": {"ratio": {"type": "number"}, "higher_is_better": {"type": "boolean"},
                                           "ours_value": _SUMMARY, "baseline_value": _SUMMARY},
                        },
                    },
                    "metrics": {"type": "object"},
                    "artifacts": {"type": "object"},
                    "plots": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def new_run(*, command: str, quick: bool, repeat: int, machine: dict, versions: dict) -> dict:
    return {
        "schema": SCHEMA_ID,
        "run_id": time.strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else ""),
        "started": _now(),
        "finished": "",
        "quick": quick,
        "repeat": repeat,
        "command": command,
        "machine": machine,
        "versions": versions,
        "suites": [],
    }


def write_run(run: dict, results_dir: Path) -> Path:
    """Write the run as bench-<run_id>.json and bench-latest.json; returns the first path."""
    run["finished"] = run["finished"] or _now()
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(run, indent=2, default=str)
    path = results_dir / f"bench-{run['run_id']}.json"
    path.write_text(text)
    (results_dir / "bench-latest.json").write_text(text)
    return path


def load_runs(results_dir: Path) -> list[dict]:
    """Every run file of this schema under results_dir, oldest first (by run_id, which sorts by time)."""
    runs = []
    for path in sorted(results_dir.glob("bench-2*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("schema") == SCHEMA_ID:
            data.setdefault("_path", str(path))
            runs.append(data)
    return sorted(runs, key=lambda r: r["run_id"].replace("-quick", ""))


def validate(run: dict) -> list[str]:
    """Schema errors of a run document (empty: valid). Uses jsonschema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(run), key=lambda e: list(e.absolute_path))]
