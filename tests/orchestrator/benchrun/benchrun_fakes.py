"""Fake suites for the bench runner's tests: nothing real is benchmarked by them."""

from __future__ import annotations

from orchestrator.benchrun.suites import Context, Suite, SuiteUnavailable


class FakeScenario(Suite):
    """Three 'runs' with fixed figures, as a scenario suite records them."""

    quick_default = True

    def __init__(self, name: str = "fake", values=(3.0, 1.0, 2.0)) -> None:
        self.name, self.title, self.values = name, f"fake suite {name}", list(values)

    def steps(self, ctx: Context) -> int:
        return len(self.values)

    def run(self, ctx: Context, task, out: dict) -> None:
        from orchestrator.benchrun.stats import ratio, summarize

        out["commands"].append(f"fake --values {' '.join(map(str, self.values))}")
        for v in self.values:
            task.advance(1, f"value {v}")
        ours = summarize(self.values)
        base = summarize([v * 2 for v in self.values])
        out["metrics"]["value"] = ours
        out["ratios"].append({"group": "fake", "metric": "value", "ours": "ours", "baseline": "double",
                              "higher_is_better": False, "ours_value": ours, "baseline_value": base,
                              "ratio": ratio(ours["median"], base["median"], higher_is_better=False)})


class Broken(Suite):
    name, title = "broken", "raises"

    def run(self, ctx: Context, task, out: dict) -> None:
        raise RuntimeError("the generator crashed")


class MissingPeer(Suite):
    name, title = "missing", "its peer is not installed"

    def unavailable(self, ctx: Context) -> str | None:
        return "not installed: frobnicator"


class LateUnavailable(Suite):
    name, title = "late", "finds out while running"

    def run(self, ctx: Context, task, out: dict) -> None:
        raise SuiteUnavailable("rtpload is not built")
