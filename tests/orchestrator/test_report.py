"""Reports read from the store equal orchestrator.metrics on the same events; CLI, CSV, windows, times."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import time
from datetime import UTC, datetime

import psycopg
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import metrics, report
from orchestrator.acd import AgentConfig, EscalationStep, QueueConfig
from orchestrator.acd import events as ev
from orchestrator.sim import Arrivals, Simulation, constant, exponential, lognormal
from orchestrator.store import EventLog
from orchestrator.store.events import acd_events
from tests.pg import postgres_server, schema_url  # noqa: F401  (fixtures)

BASE = datetime(2024, 5, 1, 8, 0, tzinfo=UTC).timestamp()  # the simulated morning starts here
HOURS = 3


def _morning() -> list[ev.Event]:
    """Three hours of two queues on the real ACD: callbacks, overflow, voicemail, RONA, abandons."""
    queues = [QueueConfig(name="support", wrapup=15, ring_timeout=15, max_wait=400,
                          escalation=(EscalationStep.offer_callback(90), EscalationStep.overflow(120, "sales"))),
              QueueConfig(name="sales", wrapup=10, ring_timeout=15, max_wait=300,
                          escalation=(EscalationStep.voicemail(240, "sales"),))]
    agents = [AgentConfig(id=f"agent{i}", queues={"support": 0, "sales": 1} if i % 3 else {"sales": 0})
              for i in range(6)]
    profile = [(0, 60), (3600, 140), (7200, 80)]
    sim = Simulation(queues, agents, [Arrivals(queue="support", rate=profile), Arrivals(queue="sales", rate=50)],
                     talk=lognormal(180, 0.8), patience=exponential(160), answer_delay=constant(3.0),
                     no_answer=0.08, callback_accept=0.3, seed=11)
    events = sim.run(HOURS * 3600.0).events
    return [dataclasses.replace(e, at=e.at + BASE) for e in events]


MORNING = _morning()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(request, tmp_path_factory):
    """A store holding the simulated morning (and its URL); tests only read it."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('report')}/hotline.db"
    else:
        server = request.getfixturevalue("postgres_server")
        schema = f"report_{os.getpid()}"
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = schema_url(server.url, schema)
    with EventLog(url, node="n1", recover=False) as log:
        for i in range(0, len(MORNING), 500):
            log.append_many_sync(MORNING[i:i + 500])
    log = EventLog(url, read_only=True)
    yield log, url
    log.close()
    if schema is not None:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _agents_before(end):
    return {e.agent for e in MORNING if e.type == "agent.state" and (end is None or e.at < end)}


WINDOWS = [
    (None, None),
    (BASE, BASE + HOURS * 3600),
    (BASE + 1800.0, BASE + 5400.0),         # boundaries fall in the middle of calls
    (BASE + 3600.0, BASE + 3600.0),         # empty window
    (BASE + 4000.5, BASE + 4001.5),
]


@pytest.mark.parametrize("window", WINDOWS)
def test_reports_equal_metrics_on_all_the_events(filled, window):
    log, _ = filled
    start, end = window
    q = {m.queue: m for m in report.queue_report(log, start=start, end=end)}
    assert q == metrics.queue_metrics(MORNING, start=start, end=end)
    a = {m.agent: m for m in report.agent_report(log, start=start, end=end)}
    expected = metrics.agent_metrics(MORNING, start=start, end=end)
    assert set(a) >= _agents_before(end)
    assert a == {k: v for k, v in expected.items() if k in a}
    for minutes in (15, 60):
        assert report.interval_report(log, start=start, end=end, interval=minutes) == \
            metrics.interval_metrics(MORNING, interval=minutes * 60.0, start=start, end=end)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.floats(min_value=-600, max_value=HOURS * 3600 + 600), b=st.floats(min_value=0, max_value=5000))
def test_any_window_gives_the_metrics_numbers(filled, a, b):
    log, _ = filled
    start, end = BASE + a, BASE + a + b
    assert {m.queue: m for m in report.queue_report(log, start=start, end=end)} == \
        metrics.queue_metrics(MORNING, start=start, end=end)
    got = {m.agent: m for m in report.agent_report(log, start=start, end=end)}
    assert got == {k: v for k, v in metrics.agent_metrics(MORNING, start=start, end=end).items() if k in got}
    assert report.interval_report(log, start=start, end=end, interval=30) == \
        metrics.interval_metrics(MORNING, interval=1800.0, start=start, end=end)


def test_the_store_gives_metrics_the_same_events_back(filled):
    log, _ = filled
    assert acd_events(log.read_sync()) == MORNING
    sizes = report.queue_report(log, start=None, end=None)
    assert sum(m.queued for m in sizes) > 400 and all(m.answered for m in sizes)


def test_window_start_is_inclusive_and_end_exclusive(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"

    def queued(call, at):
        return ev.CallQueued(at=at, call=call, queue="q", priority=0, caller=None, position=1, ewt=None)

    with EventLog(url, node="n", recover=False) as log:
        log.append_many_sync([queued("at-start", 100.0), ev.CallAbandoned(at=110.0, call="at-start", queue="q",
                                                                           wait=10.0),
                              queued("at-end", 200.0), ev.CallAbandoned(at=201.0, call="at-end", queue="q", wait=1.0)])
        (m,) = report.queue_report(log, start=100.0, end=200.0)
        assert (m.queued, m.abandoned) == (1, 1)
        (m,) = report.queue_report(log, start=100.0, end=200.000001)
        assert m.queued == 2
        assert report.queue_report(log, start=100.000001, end=200.0) == []


def _run(argv, capsys):
    code = report.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_csv_parses_back_to_the_metrics(filled, capsys):
    _, url = filled
    start, end = BASE + 600.0, BASE + 2 * 3600.0
    code, out, err = _run(["queues", "--db", url, "--from", f"@{start}", "--to", datetime.fromtimestamp(
        end, UTC).isoformat(), "--csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = metrics.queue_metrics(MORNING, start=start, end=end)
    assert [r["queue"] for r in rows] == sorted(expected)
    for r in rows:
        m = expected[r["queue"]]
        assert int(r["queued"]) == m.queued and int(r["abandoned"]) == m.abandoned
        assert float(r["service_level"]) == m.service_level and float(r["asa"]) == m.asa
        assert float(r["aht"]) == m.aht and float(r["abandon_rate"]) == m.abandon_rate

    code, out, _ = _run(["agents", "--db", url, "--from", f"@{start}", "--to", f"@{end}", "--csv",
                         "--agent", "agent1"], capsys)
    assert code == 0
    (row,) = list(csv.DictReader(io.StringIO(out)))
    m = metrics.agent_metrics(MORNING, start=start, end=end)["agent1"]
    assert (int(row["handled"]), float(row["occupancy"]), float(row["on_call_s"])) == \
        (m.handled, m.occupancy, m.state_time["on_call"])

    code, out, _ = _run(["intervals", "--db", url, "--from", f"@{start}", "--to", f"@{end}", "--csv",
                         "--interval", "60", "--queue", "sales"], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = [r for r in metrics.interval_metrics(MORNING, interval=3600.0, start=start, end=end)
                if r.queue.queue == "sales"]
    assert [datetime.fromisoformat(r["start"]).timestamp() for r in rows] == [r.start for r in expected]
    assert [int(r["queued"]) for r in rows] == [r.queue.queued for r in expected]
    assert [float(r["occupancy"]) for r in rows] == [r.occupancy for r in expected]


def test_cli_table_is_aligned(filled, capsys):
    _, url = filled
    code, out, _ = _run(["queues", "--db", url, "--from", f"@{BASE}", "--to", f"@{BASE + 3 * 3600}"], capsys)
    assert code == 0
    title, header, rule, *rows = out.splitlines()
    assert title.startswith("queues from ") and "(end excluded)" in title
    assert header.split()[:3] == ["queue", "queued", "answered"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert [r.split()[0] for r in rows] == ["sales", "support"]
    # numbers are right-aligned under their header: every row ends each column where the rule does
    ends = [i for i in range(len(rule)) if rule[i] == "-" and (i + 1 == len(rule) or rule[i + 1] == " ")]
    for r in rows:
        assert all(r[i] != " " for i in ends[1:])
    m = metrics.queue_metrics(MORNING, start=BASE, end=BASE + 3 * 3600)["support"]
    assert f"{m.service_level * 100:.1f}%" in rows[1] and f"{m.asa:.1f}" in rows[1]


def test_cli_reads_the_storage_url_from_the_config(filled, tmp_path, capsys):
    _, url = filled
    config = tmp_path / "hotline.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n\n[sip]\nlisten = ["udp:127.0.0.1:5060"]\n')
    code, out, err = _run(["agents", "--config", str(config), "--from", f"@{BASE}", "--to", f"@{BASE + 600}"],
                          capsys)
    assert code == 0, err
    assert "agent0" in out


@pytest.mark.parametrize("argv, message", [
    (["queues", "--from", "tomorrow-ish"], "not ISO 8601"),
    (["queues", "--from", "-1h", "--to", "-2h"], "end: must not be before start"),
    (["queues", "--sl-seconds", "nan"], "--sl-seconds"),
    (["queues", "--db", "mysql://x"], "unknown storage scheme"),
])
def test_cli_bad_arguments_exit_2_with_the_reason(argv, message, capsys, tmp_path):
    code, _, err = _run(argv + (["--db", f"sqlite:///{tmp_path}/none.db"] if "--db" not in argv else []), capsys)
    assert code == 2 and message in err


def test_cli_missing_database_and_config(tmp_path, capsys):
    code, _, err = _run(["queues", "--db", f"sqlite:///{tmp_path}/absent.db"], capsys)
    assert code == 2 and "no such database" in err
    assert not (tmp_path / "absent.db").exists()  # a report never creates a database
    config = tmp_path / "c.toml"
    config.write_text("[sip]\n")
    code, _, err = _run(["queues", "--config", str(config)], capsys)
    assert code == 2 and "[storage] url is missing" in err
    code, _, err = _run(["queues", "--config", str(tmp_path / "nope.toml")], capsys)
    assert code == 2 and "cannot read" in err


def test_a_report_does_not_write_or_recover(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/live.db"
    with EventLog(url, node="daemon") as log:
        log.append_sync(ev.CallQueued(at=10.0, call="live", queue="q", priority=0, caller=None, position=1,
                                      ewt=None))
    code, out, _ = _run(["queues", "--db", url, "--from", "@0", "--to", "@100", "--csv"], capsys)
    assert code == 0 and "q,1,0" in out
    with EventLog(url, read_only=True) as ro:
        assert ro.head() == 1 and ro.call_record_sync("live").open
        with pytest.raises(Exception, match="read-only"):
            ro.append_sync({"type": "queue.stats"})


def test_rpc_api(filled):
    log, _ = filled
    start, end = BASE, BASE + 3600.0

    async def main():
        return (await report.report_queues(log, start=start, end=end, queue="support"),
                await report.report_agents(log, start=start, end=end, agent="agent2"),
                await report.report_intervals(log, start=start, end=end, interval=30),
                await report.cdr_query(log, start=start, end=start + 300, queue="sales", limit=5))

    queues, agents, intervals, cdrs = trio.run(main)
    m = metrics.queue_metrics(MORNING, start=start, end=end)["support"]
    assert queues == [dataclasses.asdict(m)]
    a = metrics.agent_metrics(MORNING, start=start, end=end)["agent2"]
    assert agents[0]["state_time"] == dict(a.state_time) and agents[0]["occupancy"] == a.occupancy
    assert len(intervals) == len(metrics.interval_metrics(MORNING, interval=1800.0, start=start, end=end))
    assert intervals[0]["start"] == start and intervals[0]["length"] == 1800.0
    assert 0 < len(cdrs) <= 5 and all("sales" in r["queues"] and start <= r["arrived_at"] < start + 300
                                      for r in cdrs)
    with pytest.raises(ValueError, match="limit"):
        trio.run(lambda: report.cdr_query(log, limit=0))
    with pytest.raises(ValueError, match="interval"):
        trio.run(lambda: report.report_intervals(log, interval=20))


NOW = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC).timestamp()


@pytest.fixture
def paris(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("text, expected", [
    ("now", NOW),
    ("-1h", NOW - 3600),
    ("-30m", NOW - 1800),
    ("- 2d", NOW - 2 * 86400),
    ("+90s", NOW + 90),
    ("-1w", NOW - 7 * 86400),
    ("@1714550400", 1714550400.0),
    ("2024-05-01T09:00:00+00:00", datetime(2024, 5, 1, 9, tzinfo=UTC).timestamp()),
    ("2024-05-01T09:00:00Z", datetime(2024, 5, 1, 9, tzinfo=UTC).timestamp()),
    ("2024-05-01T11:00", datetime(2024, 5, 1, 9, tzinfo=UTC).timestamp()),   # local: CEST = UTC+2
    ("2024-05-01", datetime(2024, 4, 30, 22, tzinfo=UTC).timestamp()),      # local midnight
    ("today", datetime(2024, 4, 30, 22, tzinfo=UTC).timestamp()),
    ("yesterday", datetime(2024, 4, 29, 22, tzinfo=UTC).timestamp()),
    (1714550400, 1714550400.0),
])
def test_parse_time(paris, text, expected):
    assert report.parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "soon", "-1y", "@x", "@inf", "2024-13-01", True, float("nan"), None])
def test_parse_time_refuses(text):
    with pytest.raises(ValueError, match="time"):
        report.parse_time(text, now=NOW)


def test_interval_and_name_arguments(filled):
    log, _ = filled
    with pytest.raises(ValueError, match="interval"):
        report.interval_report(log, start=None, end=None, interval=45)
    with pytest.raises(ValueError, match="queue"):
        report.queue_report(log, start=None, end=None, queue="")
    assert report.queue_report(log, start=None, end=None, queue="nope") == []


def test_report_is_wired_as_a_main(capsys):
    with pytest.raises(SystemExit) as exc:
        report.main(["--help"])
    assert exc.value.code == 0
    assert "queues,agents,intervals" in capsys.readouterr().out
    assert os.path.basename(report.__file__) == "report.py"
