"""Event log: durable appends per second with and without group commit, and report queries over a day.

Durable appends. One round = 400 Trio tasks that each ``await log.append(...)``
one event at the same moment (calls arriving together); the round ends when
all 400 are committed. Contenders, per backend, side by side in one run:

* ``group``: the default (the writer thread commits every append waiting at
  the time in one transaction: one fsync for the group);
* ``one-per-commit`` (baseline): ``group_commit=False``, a transaction and an
  fsync per append;
* SQLite only, ``normal-group``: ``synchronous=NORMAL`` (no fsync at commit:
  survives a killed process, not a power cut), to show what FULL costs.

SQLite uses a file under the pytest temporary directory; PostgreSQL is the
private server from tests/pg.py (fsync on, synchronous_commit on), reached
over TCP on 127.0.0.1. ``extra_info["appends_per_s"]`` is 400 / median.

Report queries. A simulated day: one hour of the real ACD (orchestrator.sim,
about 2,100 calls into two queues, 120 agents, callbacks, overflow,
abandons) repeated 24 times, shifted by an hour each time with fresh call
ids: about 50,000 calls and 450,000 events, appended once per backend
(``extra_info["bulk_events_per_s"]`` on the first report benchmark). Each
report is measured against the naive way that gives the same numbers
(baseline): read every event of the log, hand them all to
orchestrator.metrics. Windows: the whole day, and one hour at noon. The
benchmark asserts that both give the same result.

Cross-node delivery (PostgreSQL): node A appends, node B's subscriber
receives it through LISTEN/NOTIFY; baseline: A's own subscriber. One round =
50 sequential append-and-receive trips; p50/p99 of a single trip are in
extra_info.

Run: .venv/bin/python -m pytest -q bench/test_bench_store.py -p no:cacheprovider
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import psycopg
import pytest
import trio

from orchestrator import metrics, report
from orchestrator.acd import AgentConfig, EscalationStep, QueueConfig
from orchestrator.sim import Arrivals, Simulation, constant, exponential, lognormal
from orchestrator.store import EventLog
from orchestrator.store.events import acd_events
from tests.pg import postgres_server, schema_url  # noqa: F401  (fixture)

APPENDS = 400
DAY0 = 1714521600.0  # 2024-05-01T00:00:00Z
TRIPS = 50


def _percentiles(samples: list[float]) -> dict:
    xs = sorted(samples)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3
    return {"p50_ms": round(pick(0.5), 3), "p99_ms": round(pick(0.99), 3), "max_ms": round(xs[-1] * 1e3, 3)}


_schemas = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def new_url(tmp_path_factory, request):
    """new_url(backend, query="") -> URL of an empty database."""
    made: list[tuple[str, str]] = []

    def make(backend: str, query: str = "") -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('bench-store')}/hotline.db{query}"
        server = request.getfixturevalue("postgres_server")
        schema = f"bench_{next(_schemas)}"
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        made.append((server.url, schema))
        return schema_url(server.url, schema)

    yield make
    for url, schema in made:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _append_round(log: EventLog) -> list[int]:
    seqs: list[int] = []

    async def main():
        async def one(i):
            seqs.append(await log.append({"type": "call.incoming", "call": f"b{log.head()}-{i}",
                                          "caller": "+15550100", "callee": "2000"}))
        async with trio.open_nursery() as nursery:
            for i in range(APPENDS):
                nursery.start_soon(one, i)

    trio.run(main)
    return seqs


APPEND_CASES = [
    ("sqlite", "group", True, ""),
    ("sqlite", "one-per-commit", False, ""),
    ("sqlite", "normal-group", True, "?synchronous=normal"),
    ("postgresql", "group", True, ""),
    ("postgresql", "one-per-commit", False, ""),
]


@pytest.mark.parametrize("backend, name, group, query", APPEND_CASES, ids=[f"{c[0]}-{c[1]}" for c in APPEND_CASES])
def test_durable_appends(benchmark, new_url, backend, name, group, query):
    benchmark.group = f"store-durable-append-{backend}"
    if name == "one-per-commit":
        benchmark.extra_info["role"] = "baseline"
    with EventLog(new_url(backend, query), node="bench", group_commit=group, recover=False) as log:
        before = log.head()
        seqs = benchmark.pedantic(_append_round, args=(log,), rounds=3, iterations=1, warmup_rounds=1)
        stats = log.statistics()
        assert len(set(seqs)) == APPENDS and log.head() == before + 4 * APPENDS
        assert stats.appended == 4 * APPENDS
        if not group:
            assert stats.commits == stats.appended
    benchmark.extra_info.update(appends_per_s=round(APPENDS / benchmark.stats.stats.median),
                                events_per_commit=round(stats.appended / stats.commits, 1),
                                synchronous="normal" if query else ("full" if backend == "sqlite" else "on"))


# -- report queries over a simulated day -------------------------------------------------------------------

def _one_hour():
    queues = [QueueConfig(name="support", wrapup=15, ring_timeout=15, max_wait=400,
                          escalation=(EscalationStep.offer_callback(90), EscalationStep.overflow(120, "sales"))),
              QueueConfig(name="sales", wrapup=10, ring_timeout=15, max_wait=300,
                          escalation=(EscalationStep.voicemail(240, "sales"),))]
    agents = [AgentConfig(id=f"agent{i:03d}", queues={"support": 0, "sales": 1} if i % 3 else {"sales": 0})
              for i in range(120)]
    sim = Simulation(queues, agents, [Arrivals(queue="support", rate=1300), Arrivals(queue="sales", rate=800)],
                     talk=lognormal(170, 0.8), patience=exponential(160), answer_delay=constant(3.0),
                     no_answer=0.05, callback_accept=0.3, seed=3)
    return sim.run(3600.0).events


def _day():
    hour = _one_hour()
    day = []
    for h in range(24):
        for e in hour:
            changes = {"at": DAY0 + h * 3600.0 + e.at}
            if getattr(e, "call", None) is not None:
                changes["call"] = f"h{h}-{e.call}"
            day.append(dataclasses.replace(e, **changes))
    return day


@pytest.fixture(scope="module")
def day():
    return _day()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def day_log(request, new_url, day):
    url = new_url(request.param)
    t0 = time.perf_counter()
    with EventLog(url, node="bench", recover=False) as writer:
        for i in range(0, len(day), 5000):
            writer.append_many_sync(day[i:i + 5000])
    bulk = len(day) / (time.perf_counter() - t0)
    log = EventLog(url, read_only=True)
    calls = len({e.call for e in day if e.type == "call.queued"})
    yield request.param, log, {"events": len(day), "calls": calls, "bulk_events_per_s": round(bulk)}
    log.close()


def _naive_queues(log, start, end):
    return metrics.queue_metrics(acd_events(log.iter_events()), start=start, end=end)


def _naive_intervals(log, start, end):
    return metrics.interval_metrics(acd_events(log.iter_events()), interval=900.0, start=start, end=end)


WINDOWS = {"day": (DAY0, DAY0 + 86400.0), "noon-hour": (DAY0 + 12 * 3600.0, DAY0 + 13 * 3600.0)}


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("how", ["store", "naive"])
def test_report_queues(benchmark, day_log, day, window, how):
    backend, log, info = day_log
    start, end = WINDOWS[window]
    benchmark.group = f"store-report-queues-{window}-{backend}"
    benchmark.extra_info.update(info)
    if how == "naive":
        benchmark.extra_info["role"] = "baseline"
        got = benchmark.pedantic(_naive_queues, args=(log, start, end), rounds=2, iterations=1)
    else:
        got = benchmark.pedantic(lambda: {m.queue: m for m in report.queue_report(log, start=start, end=end)},
                                 rounds=3, iterations=1)
    expected = metrics.queue_metrics(day, start=start, end=end)
    assert got == expected
    assert sum(m.queued for m in got.values()) > (40_000 if window == "day" else 1_500)


@pytest.mark.parametrize("how", ["store", "naive"])
def test_report_intervals_day(benchmark, day_log, how):
    backend, log, _ = day_log
    start, end = WINDOWS["day"]
    benchmark.group = f"store-report-intervals15-day-{backend}"
    if how == "naive":
        benchmark.extra_info["role"] = "baseline"
        got = benchmark.pedantic(_naive_intervals, args=(log, start, end), rounds=2, iterations=1)
    else:
        got = benchmark.pedantic(report.interval_report, args=(log,),
                                 kwargs={"start": start, "end": end, "interval": 15}, rounds=3, iterations=1)
    assert len(got) == 24 * 4 * 2
    assert Counter(r.queue.queue for r in got) == {"support": 96, "sales": 96}


def test_report_agents_day(benchmark, day_log):
    backend, log, _ = day_log
    start, end = WINDOWS["day"]
    benchmark.group = f"store-report-agents-day-{backend}"
    got = benchmark.pedantic(report.agent_report, args=(log,), kwargs={"start": start, "end": end}, rounds=3,
                             iterations=1)
    assert len(got) == 120 and sum(a.handled for a in got) > 40_000


def test_cdr_query_noon_hour(benchmark, day_log):
    backend, log, _ = day_log
    start, end = WINDOWS["noon-hour"]
    benchmark.group = f"store-cdr-query-{backend}"
    got = benchmark.pedantic(log.call_records_sync, kwargs={"since": start, "until": end, "queue": "sales",
                                                           "limit": None}, rounds=5, iterations=1)
    assert len(got) > 500 and all("sales" in r.queues and start <= r.arrived_at < end for r in got)


# -- cross-node delivery -----------------------------------------------------------------------------------

@pytest.mark.parametrize("receiver", ["other-node", "same-node"])
def test_pg_delivery_to_a_subscriber(benchmark, new_url, receiver):
    url = new_url("postgresql")
    benchmark.group = "store-pg-delivery"
    if receiver == "same-node":
        benchmark.extra_info["role"] = "baseline"
    latencies: list[float] = []
    with EventLog(url, node="a", recover=False) as a, EventLog(url, node="b", recover=False) as b:
        listener = b if receiver == "other-node" else a

        async def trips():
            async with listener.subscribe(types="bench.ping") as sub:
                for i in range(TRIPS):
                    t0 = time.perf_counter()
                    seq = await a.append({"type": "bench.ping", "i": i})
                    e = await sub.__anext__()
                    latencies.append(time.perf_counter() - t0)
                    assert e.seq == seq and e.node == "a"

        benchmark.pedantic(lambda: trio.run(trips), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(trips_per_round=TRIPS, **_percentiles(latencies))
