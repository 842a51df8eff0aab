"""Workforce planning: agents for a service level (Erlang C), trunks for blocking (Erlang B).

``hotline plan --calls-per-hour N --aht S --sl 0.8 --sl-seconds 20 [--blocking 0.01]``
is :func:`main`; the functions are the library API.

Model (A. K. Erlang; ITU-T E.500 series use the same formulas):

* offered traffic A = calls per hour x AHT / 3600 erlangs;
* Erlang B with n servers, by the recurrence B(0) = 1,
  B(n) = A B(n-1) / (n + A B(n-1)): stable for thousands of servers, no
  factorials and no overflow;
* Erlang C from it: C(N) = N B(N) / (N - A (1 - B(N))) for N > A;
* with exponential handle times, P(wait > t) = C exp(-(N - A) t / AHT), so
  service level SL(t) = 1 - P(wait > t), ASA = C AHT / (N - A), occupancy A/N;
* trunks: a trunk is held while the caller waits and talks (not during
  wrap-up), so trunk traffic = calls per hour x (AHT - wrap-up + ASA) / 3600,
  and trunks = the smallest n with Erlang B(trunk traffic, n) <= blocking.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "Plan",
    "agents_for_service_level",
    "average_speed_of_answer",
    "erlang_b",
    "erlang_c",
    "main",
    "plan",
    "service_level",
    "trunks_for_blocking",
]


def _check_traffic(traffic: float) -> None:
    if isinstance(traffic, bool) or not isinstance(traffic, (int, float)) or not math.isfinite(traffic) \
            or traffic < 0:
        raise ValueError(f"traffic: must be a finite number of erlangs >= 0, got {traffic!r}")


def _check_servers(servers: int, name: str = "servers") -> None:
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 0:
        raise ValueError(f"{name}: must be an int >= 0, got {servers!r}")


def erlang_b(traffic: float, servers: int) -> float:
    """Blocking probability of ``servers`` lines offered ``traffic`` erlangs (Erlang B)."""
    _check_traffic(traffic)
    _check_servers(servers)
    b = 1.0
    for n in range(1, servers + 1):
        b = traffic * b / (n + traffic * b)
    return b


def erlang_c(traffic: float, agents: int) -> float:
    """Probability that a call waits, with ``agents`` agents and ``traffic`` erlangs (Erlang C).

    1.0 when ``agents <= traffic`` (the queue grows without bound).
    """
    _check_traffic(traffic)
    _check_servers(agents, "agents")
    if agents <= traffic:
        return 1.0
    b = erlang_b(traffic, agents)
    return agents * b / (agents - traffic * (1.0 - b))


def service_level(traffic: float, agents: int, aht: float, seconds: float) -> float:
    """Fraction of calls answered within ``seconds`` (Erlang C, exponential handle times)."""
    _check_positive(aht, "aht")
    _check_nonneg(seconds, "seconds")
    if agents <= traffic:
        return 0.0
    c = erlang_c(traffic, agents)
    return max(0.0, 1.0 - c * math.exp(-(agents - traffic) * seconds / aht))


def average_speed_of_answer(traffic: float, agents: int, aht: float) -> float:
    """Mean wait of all calls (s) under Erlang C; ``inf`` when ``agents <= traffic``."""
    _check_positive(aht, "aht")
    if agents <= traffic:
        return math.inf
    return erlang_c(traffic, agents) * aht / (agents - traffic)


def _check_positive(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")


def _check_nonneg(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: must be a finite number >= 0, got {value!r}")


def _check_fraction(value, name: str, *, open_low: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not (0 < value < 1 if open_low else 0 <= value < 1):
        raise ValueError(f"{name}: must be a fraction strictly between 0 and 1, got {value!r}")


def agents_for_service_level(traffic: float, aht: float, sl_target: float, sl_seconds: float, *,
                             max_occupancy: float | None = None) -> int:
    """Smallest number of agents meeting the service level (and the occupancy cap, if any)."""
    _check_traffic(traffic)
    _check_positive(aht, "aht")
    _check_fraction(sl_target, "sl_target")
    _check_nonneg(sl_seconds, "sl_seconds")
    if max_occupancy is not None:
        _check_positive(max_occupancy, "max_occupancy")
        if max_occupancy > 1:
            raise ValueError(f"max_occupancy: must be <= 1, got {max_occupancy!r}")
    if traffic == 0:
        return 0
    n = max(1, math.floor(traffic) + 1)
    if max_occupancy is not None:
        n = max(n, math.ceil(traffic / max_occupancy - 1e-9))
    # Walk up with the Erlang B recurrence carried along: O(N) in all.
    b = erlang_b(traffic, n)
    while True:
        c = n * b / (n - traffic * (1.0 - b))
        sl = 1.0 - c * math.exp(-(n - traffic) * sl_seconds / aht)
        if sl >= sl_target:
            return n
        n += 1
        b = traffic * b / (n + traffic * b)


def trunks_for_blocking(traffic: float, blocking: float) -> int:
    """Smallest number of trunks whose Erlang B blocking is at most ``blocking``."""
    _check_traffic(traffic)
    _check_fraction(blocking, "blocking")
    n = 0
    b = 1.0
    while b > blocking:
        n += 1
        b = traffic * b / (n + traffic * b)
    return n


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The answer of :func:`plan`: staffing, trunks, and what they are predicted to give."""

    calls_per_hour: float
    aht: float
    traffic: float
    agents: int
    service_level: float
    sl_seconds: float
    asa: float
    prob_wait: float
    occupancy: float
    trunk_traffic: float
    trunks: int
    blocking: float


def plan(calls_per_hour: float, aht: float, sl_target: float = 0.8, sl_seconds: float = 20.0,
         blocking: float = 0.01, *, max_occupancy: float | None = None, wrapup: float = 0.0) -> Plan:
    """Agents for ``sl_target`` within ``sl_seconds`` (Erlang C) and trunks for ``blocking`` (Erlang B).

    ``aht`` is talk + hold + wrap-up in seconds; ``wrapup`` (the part of it
    spent after the caller hung up) is subtracted from a trunk's holding time.
    """
    _check_nonneg(calls_per_hour, "calls_per_hour")
    _check_positive(aht, "aht")
    _check_nonneg(wrapup, "wrapup")
    if wrapup >= aht:
        raise ValueError(f"wrapup: must be less than aht ({wrapup!r} >= {aht!r})")
    traffic = calls_per_hour * aht / 3600.0
    agents = agents_for_service_level(traffic, aht, sl_target, sl_seconds, max_occupancy=max_occupancy)
    if agents == 0:
        sl, asa, pw, occ = 1.0, 0.0, 0.0, 0.0
    else:
        pw = erlang_c(traffic, agents)
        sl = service_level(traffic, agents, aht, sl_seconds)
        asa = average_speed_of_answer(traffic, agents, aht)
        occ = traffic / agents
    trunk_traffic = calls_per_hour * (aht - wrapup + asa) / 3600.0
    trunks = trunks_for_blocking(trunk_traffic, blocking)
    return Plan(calls_per_hour=float(calls_per_hour), aht=float(aht), traffic=traffic, agents=agents,
                service_level=sl, sl_seconds=float(sl_seconds), asa=asa, prob_wait=pw, occupancy=occ,
                trunk_traffic=trunk_traffic, trunks=trunks, blocking=erlang_b(trunk_traffic, trunks))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline plan",
                                description="Agents needed for a service level (Erlang C) and trunks for a "
                                            "blocking target (Erlang B).")
    p.add_argument("--calls-per-hour", type=float, required=True, help="offered calls per hour")
    p.add_argument("--aht", type=float, required=True, help="average handle time, s (talk + hold + wrap-up)")
    p.add_argument("--sl", type=float, default=0.8, help="service level target, fraction (default 0.8)")
    p.add_argument("--sl-seconds", type=float, default=20.0, help="service level threshold T, s (default 20)")
    p.add_argument("--blocking", type=float, default=0.01, help="trunk blocking target (default 0.01)")
    p.add_argument("--max-occupancy", type=float, default=None, help="cap on agent occupancy, fraction")
    p.add_argument("--wrapup", type=float, default=0.0, help="wrap-up part of the AHT, s (frees the trunk)")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``hotline plan``: print the plan as a table (or ``--json``); exit 2 on bad arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result = plan(args.calls_per_hour, args.aht, args.sl, args.sl_seconds, args.blocking,
                      max_occupancy=args.max_occupancy, wrapup=args.wrapup)
    except ValueError as exc:
        print(f"hotline plan: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(result), sort_keys=True))
        return 0
    print(f"offered traffic   {result.traffic:10.2f} erlangs "
          f"({result.calls_per_hour:g} calls/h x {result.aht:g} s)")
    print(f"agents needed     {result.agents:10d}   (service level >= {args.sl:.0%} in {args.sl_seconds:g} s)")
    print(f"trunks needed     {result.trunks:10d}   (blocking {result.blocking:.4f} <= {args.blocking:g}, "
          f"trunk traffic {result.trunk_traffic:.2f} E)")
    print()
    print(f"{'agents':>6} {'P(wait)':>8} {'SL':>7} {'ASA s':>8} {'occupancy':>9}")
    lo = max(math.floor(result.traffic) + 1, result.agents - 3, 1)
    for n in range(lo, result.agents + 4):
        pw = erlang_c(result.traffic, n)
        sl = service_level(result.traffic, n, result.aht, result.sl_seconds)
        asa = average_speed_of_answer(result.traffic, n, result.aht)
        mark = "  <- plan" if n == result.agents else ""
        print(f"{n:6d} {pw:8.3f} {sl:7.1%} {asa:8.1f} {result.traffic / n:9.1%}{mark}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
