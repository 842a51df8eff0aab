"""``hotline bench``: one runner over every benchmark the project has.

Suites (``hotline bench --list``) are either pytest-benchmark files under
``bench/`` (their own min/median/max over rounds, and the ratio against the
baseline measured in the same run) or scenarios that drive real processes
(Hotline's engine against rtpengine, the engine's capacity per kind of call,
perf profiles), repeated and summarized as min/median/max. A run writes one
JSON file under ``bench/results/`` with the machine, the versions, the
commands and the load average around each suite, draws PNG plots, and fills
the tables of ``docs/PERFORMANCE.md``.

Modules: :mod:`.stats` (summaries, ratios, line fits), :mod:`.machine`
(machine, versions, load), :mod:`.progress` (bars on a terminal, lines
otherwise), :mod:`.suites` (what can be run), :mod:`.results` (the JSON
schema), :mod:`.plots`, :mod:`.report`, :mod:`.cli` (``main(argv)``).
"""

from __future__ import annotations

from orchestrator.benchrun.stats import linear_fit, ratio, summarize

__all__ = ["linear_fit", "ratio", "summarize"]
