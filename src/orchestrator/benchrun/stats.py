"""Small statistics for benchmark results: min/median/max, ratios, a least-squares line."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

__all__ = ["flatten", "linear_fit", "ratio", "summarize"]


def summarize(values: Iterable[float | int | None]) -> dict:
    """``{"min", "median", "max", "n"}`` of the values that are numbers (None and NaN are left out).

    Raises ValueError when no value is a number: a figure must come from at least one run.
    """
    xs = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
          and not math.isnan(float(v))]
    if not xs:
        raise ValueError("values must hold at least one number")
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs), "n": len(xs)}


def ratio(ours: float, baseline: float, *, higher_is_better: bool) -> float:
    """How many times better ours is than the baseline (> 1: ours is better).

    For a time or a cost (lower is better) that is baseline / ours; for a rate
    (higher is better) ours / baseline. Both values must be positive.
    """
    if not (ours > 0 and baseline > 0):
        raise ValueError(f"ratio needs positive values, got ours={ours!r} baseline={baseline!r}")
    return ours / baseline if higher_is_better else baseline / ours


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> dict:
    """Least-squares line y = slope * x + intercept, with R^2 (1.0: the points are on the line).

    Needs at least two distinct x values. R^2 is 1.0 when every y is the same
    and the line goes through them all.
    """
    if len(xs) != len(ys):
        raise ValueError("xs and ys must have the same length")
    if len(set(xs)) < 2:
        raise ValueError("a line needs at least two distinct x values")
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"slope": slope, "intercept": intercept, "r2": r2, "n": n}


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts as one level with dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
