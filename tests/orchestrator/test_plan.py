"""Erlang B/C planning: against the textbook closed forms (exact sums), published table
values, stability at hundreds to thousands of servers, and the `hotline plan` command."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import plan as P


def erlang_b_direct(a: Fraction, n: int) -> Fraction:
    """(A^n / n!) / sum_k A^k / k!, exactly."""
    terms = [a ** k / math.factorial(k) for k in range(n + 1)]
    return terms[-1] / sum(terms)


def erlang_c_direct(a: Fraction, n: int) -> Fraction:
    """(A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! * N/(N-A)), exactly (N > A)."""
    top = a ** n / math.factorial(n) * n / (n - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(n)) + top)


@settings(max_examples=150, deadline=None)
@given(a10=st.integers(1, 600), n=st.integers(0, 90))
def test_erlang_b_matches_the_exact_sum(a10, n):
    a = Fraction(a10, 10)
    assert math.isclose(P.erlang_b(float(a), n), float(erlang_b_direct(a, n)), rel_tol=1e-11)


@settings(max_examples=150, deadline=None)
@given(a10=st.integers(1, 600), extra=st.integers(1, 40))
def test_erlang_c_matches_the_exact_sum(a10, extra):
    a = Fraction(a10, 10)
    n = math.floor(a) + extra
    assert math.isclose(P.erlang_c(float(a), n), float(erlang_c_direct(a, n)), rel_tol=1e-11)


def test_published_erlang_b_table_values():
    # Erlang B table, 1 % grade of service: 10 trunks carry 4.461 E, 18 carry 10.437 E, 20 carry 12.031 E
    for trunks, traffic in ((10, 4.461), (18, 10.437), (20, 12.031)):
        assert P.erlang_b(traffic, trunks) == pytest.approx(0.01, rel=2e-3)
        assert P.trunks_for_blocking(traffic * 0.999, 0.01) == trunks
        assert P.trunks_for_blocking(traffic * 1.01, 0.01) == trunks + 1


def test_stable_for_thousands_of_servers():
    b = [P.erlang_b(5000.0, n) for n in (4900, 5000, 5100, 5200)]
    assert all(0 < x < 1 for x in b) and b == sorted(b, reverse=True)
    assert P.erlang_c(5000.0, 5100) < P.erlang_c(5000.0, 5050) < 1.0
    assert P.erlang_c(5000.0, 5000) == 1.0
    agents = P.agents_for_service_level(1000.0, 180, 0.9, 15)
    assert P.service_level(1000.0, agents, 180, 15) >= 0.9 > P.service_level(1000.0, agents - 1, 180, 15)


def test_service_level_asa_and_staffing_are_consistent():
    traffic = 10.0  # 200 calls/h at 180 s
    n = P.agents_for_service_level(traffic, 180, 0.8, 20)
    assert P.service_level(traffic, n, 180, 20) >= 0.8 > P.service_level(traffic, n - 1, 180, 20)
    c = P.erlang_c(traffic, n)
    assert P.service_level(traffic, n, 180, 0) == pytest.approx(1 - c)
    assert P.average_speed_of_answer(traffic, n, 180) == pytest.approx(c * 180 / (n - traffic))
    assert P.average_speed_of_answer(traffic, 10, 180) == math.inf
    assert P.agents_for_service_level(traffic, 180, 0.8, 20, max_occupancy=0.7) == 15
    assert P.agents_for_service_level(0.0, 180, 0.8, 20) == 0


def test_plan_puts_it_together():
    p = P.plan(360, 240, 0.8, 20, 0.01, wrapup=30)
    assert p.traffic == pytest.approx(24.0)
    assert p.agents == P.agents_for_service_level(24.0, 240, 0.8, 20)
    assert p.service_level >= 0.8 and p.occupancy == pytest.approx(24.0 / p.agents)
    assert p.trunk_traffic == pytest.approx(360 * (240 - 30 + p.asa) / 3600)
    assert p.trunks == P.trunks_for_blocking(p.trunk_traffic, 0.01) and p.blocking <= 0.01
    assert P.plan(0, 240).agents == 0


@pytest.mark.parametrize("kwargs, name", [
    ({"calls_per_hour": -1, "aht": 100}, "calls_per_hour"),
    ({"calls_per_hour": 10, "aht": 0}, "aht"),
    ({"calls_per_hour": 10, "aht": 100, "sl_target": 1.0}, "sl_target"),
    ({"calls_per_hour": 10, "aht": 100, "blocking": 0}, "blocking"),
    ({"calls_per_hour": 10, "aht": 100, "wrapup": 100}, "wrapup"),
    ({"calls_per_hour": 10, "aht": 100, "max_occupancy": 1.5}, "max_occupancy"),
])
def test_plan_names_the_bad_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        P.plan(**kwargs)


def test_main_prints_a_table_and_json(capsys):
    assert P.main(["--calls-per-hour", "360", "--aht", "240", "--sl", "0.8", "--sl-seconds", "20"]) == 0
    text = capsys.readouterr().out
    assert "agents needed" in text and "trunks needed" in text and "<- plan" in text
    expected = P.plan(360, 240, 0.8, 20, 0.01)
    assert f"agents needed     {expected.agents:10d}" in text
    assert P.main(["--calls-per-hour", "360", "--aht", "240", "--blocking", "0.02", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["agents"] == expected.agents
    assert data["trunks"] == P.plan(360, 240, 0.8, 20, 0.02).trunks


def test_main_refuses_bad_arguments(capsys):
    assert P.main(["--calls-per-hour", "360", "--aht", "240", "--sl", "80"]) == 2
    assert "sl_target" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        P.main(["--aht", "240"])
    assert exc.value.code == 2
