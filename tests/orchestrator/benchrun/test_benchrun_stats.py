"""Summaries, ratios and the least-squares line of the bench runner, against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.benchrun.stats import flatten, linear_fit, ratio, summarize


def test_summarize_min_median_max():
    assert summarize([3, 1, 2]) == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
    assert summarize([4, 1, 3, 2]) == {"min": 1.0, "median": 2.5, "max": 4.0, "n": 4}


def test_summarize_leaves_out_missing_values():
    assert summarize([None, 5, float("nan"), 7]) == {"min": 5.0, "median": 6.0, "max": 7.0, "n": 2}


@pytest.mark.parametrize("values", [[], [None], [float("nan")], ["12"], [True]])
def test_summarize_needs_a_number(values):
    with pytest.raises(ValueError, match="at least one number"):
        summarize(values)


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=50))
def test_summarize_agrees_with_numpy(xs):
    s = summarize(xs)
    assert s["min"] == min(xs) and s["max"] == max(xs) and s["n"] == len(xs)
    assert s["median"] == pytest.approx(float(np.median(xs)), rel=1e-12, abs=1e-6)


def test_ratio_direction():
    # a time: ours 2 us, baseline 10 us -> 5x better
    assert ratio(2e-6, 10e-6, higher_is_better=False) == pytest.approx(5.0)
    # a rate: ours 150k pkt/s per core, baseline 100k -> 1.5x better
    assert ratio(150_000, 100_000, higher_is_better=True) == pytest.approx(1.5)
    assert ratio(50_000, 100_000, higher_is_better=True) == pytest.approx(0.5)


@pytest.mark.parametrize("ours, base", [(0, 1), (1, 0), (-1, 2), (float("nan"), 1)])
def test_ratio_refuses_non_positive(ours, base):
    with pytest.raises(ValueError, match="positive"):
        ratio(ours, base, higher_is_better=True)


def test_linear_fit_exact_line():
    fit = linear_fit([100, 500, 1000, 2000], [0.05 + 0.0007 * x for x in (100, 500, 1000, 2000)])
    assert fit["slope"] == pytest.approx(0.0007)
    assert fit["intercept"] == pytest.approx(0.05)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["n"] == 4


def test_linear_fit_constant_y_is_a_perfect_flat_line():
    assert linear_fit([1, 2, 3], [7, 7, 7]) == {"slope": 0.0, "intercept": 7.0, "r2": 1.0, "n": 3}


def test_linear_fit_curve_has_r2_below_one():
    xs = [100, 500, 1000, 2000]
    fit = linear_fit(xs, [x * x for x in xs])
    assert 0.8 < fit["r2"] < 0.99


@pytest.mark.parametrize("xs, ys", [([1], [1]), ([2, 2, 2], [1, 2, 3]), ([1, 2], [1])])
def test_linear_fit_bad_input(xs, ys):
    with pytest.raises(ValueError):
        linear_fit(xs, ys)


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 5000), st.floats(-100, 100, allow_nan=False)), min_size=3, max_size=30)
       .filter(lambda pts: len({x for x, _ in pts}) >= 2))
def test_linear_fit_agrees_with_numpy_polyfit(points):
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    fit = linear_fit(xs, ys)
    slope, intercept = np.polyfit(xs, ys, 1)
    assert fit["slope"] == pytest.approx(slope, rel=1e-6, abs=1e-9)
    assert fit["intercept"] == pytest.approx(intercept, rel=1e-6, abs=1e-6)
    if np.var(ys) > 1e-9:
        r = np.corrcoef(xs, ys)[0, 1]
        assert fit["r2"] == pytest.approx(r * r, abs=1e-6)
    assert fit["r2"] <= 1.0 + 1e-12 and not math.isnan(fit["r2"])


def test_flatten():
    assert flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a": 1, "b.c": 2, "b.d.e": 3}
