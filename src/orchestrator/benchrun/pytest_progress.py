"""A pytest plugin for the bench runner: one JSON line per collected session and per test.

Loaded with ``-p orchestrator.benchrun.pytest_progress`` in the pytest
process that runs a suite; it appends to the file named by
``HOTLINE_BENCH_PROGRESS`` and does nothing when that is unset.
"""

from __future__ import annotations

import json
import os

PROGRESS_ENV = "HOTLINE_BENCH_PROGRESS"


def _emit(**fields: object) -> None:
    path = os.environ.get(PROGRESS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(fields) + "\n")


def pytest_collection_finish(session) -> None:
    _emit(event="collected", count=len(session.items))


def pytest_runtest_logreport(report) -> None:
    # One line per test: its call phase, or the phase that ended it early (a setup skip or error).
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _emit(event="test", nodeid=report.nodeid, outcome=report.outcome,
              seconds=round(getattr(report, "duration", 0.0), 3))
