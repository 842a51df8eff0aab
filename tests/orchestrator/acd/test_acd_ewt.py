"""The EWT estimator: the O(1) digamma form equals the plain Erlang-A queue-length sum."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.acd import expected_wait


def plain_sum(ahead, servers, handle_time, abandon_rate):
    return sum(1.0 / (servers / handle_time + k * abandon_rate) for k in range(ahead + 1))


@settings(max_examples=300, deadline=None)
@given(ahead=st.integers(0, 3000), servers=st.integers(1, 500), handle_time=st.floats(5, 2000),
       abandon_rate=st.one_of(st.just(0.0), st.floats(1e-5, 1.0)))
@example(ahead=8, servers=10, handle_time=5.0, abandon_rate=1.0)  # once off by 1.2e-9: series cut too early
def test_closed_form_matches_the_sum(ahead, servers, handle_time, abandon_rate):
    got = expected_wait(ahead, servers, handle_time, abandon_rate)
    assert math.isclose(got, plain_sum(ahead, servers, handle_time, abandon_rate), rel_tol=1e-9)


def test_known_values_and_edges():
    # no abandonment: (ahead + 1) * handle time / servers
    assert expected_wait(4, 2, 100.0, 0.0) == pytest.approx(250.0)
    # abandonment ahead shortens the wait, and more so the longer the line
    assert expected_wait(50, 2, 100.0, 0.01) < 0.5 * expected_wait(50, 2, 100.0, 0.0)
    assert expected_wait(0, 2, 100.0, 0.01) == pytest.approx(50.0)
    assert expected_wait(3, 0, 100.0, 0.0) is None
    with pytest.raises(ValueError, match="handle_time"):
        expected_wait(1, 1, 0.0, 0.0)


def test_digamma_against_scipy():
    import numpy as np
    from scipy.special import digamma

    from orchestrator.acd.policy import _digamma

    xs = np.concatenate([np.linspace(1e-4, 1, 50), np.linspace(1, 60, 600), [1e3, 1e6]])
    for x in xs:
        assert math.isclose(_digamma(float(x)), float(digamma(x)), rel_tol=1e-12, abs_tol=1e-12), x
