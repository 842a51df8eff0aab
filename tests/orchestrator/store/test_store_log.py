"""EventLog basics on both backends: append, read, filters, validation, group commit, schema, closing."""

from __future__ import annotations

import math
import threading

import psycopg
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.acd import event_from_dict
from orchestrator.acd import events as ev
from orchestrator.store import EventLog, SchemaError, StoreClosedError, StoredEvent
from orchestrator.store.url import parse_url


def _raw(url: str):
    """A plain DB-API connection to the test database (bypassing the store)."""
    parsed = parse_url(url)
    if parsed.backend == "sqlite":
        import sqlite3

        return sqlite3.connect(str(parsed.path), isolation_level=None)
    return psycopg.connect(url, autocommit=True)


def _acd_day() -> list[ev.Event]:
    return [
        ev.AgentState(at=100.0, agent="a1", state="available", previous="offline", device="d1"),
        ev.CallQueued(at=101.5, call="c1", queue="support", priority=2, caller="+15550001", position=1, ewt=12.5,
                      skills=(("fr", 3), ("billing", 1))),
        ev.CallOffered(at=101.5, call="c1", queue="support", agent="a1", device="d1", offer=1, caller="+15550001",
                       data={"account": "A-17", "lang": "fr"}),
        ev.CallAnswered(at=104.25, call="c1", queue="support", agent="a1", offer=1, wait=2.75),
        ev.CallHeld(at=110.0, call="c1", queue="support", agent="a1"),
        ev.CallResumed(at=130.0, call="c1", queue="support", agent="a1"),
        ev.CallEnded(at=200.0, call="c1", queue="support", agent="a1", talk=75.75, hold=20.0),
        ev.CallWrapupEnded(at=230.0, call="c1", queue="support", agent="a1", wrapup=30.0),
        ev.CallQueued(at=150.0, call="c2", queue="sales", priority=0, caller=None, position=1, ewt=None),
        ev.CallAbandoned(at=163.0, call="c2", queue="sales", wait=13.0),
    ]


def test_append_gives_gapless_sequence_numbers_and_acd_events_read_back_equal(open_log):
    log = open_log()
    day = _acd_day()
    seqs = [log.append_sync(e) for e in day[:3]] + log.append_many_sync(day[3:])
    assert seqs == list(range(1, len(day) + 1))
    assert log.head() == len(day)
    stored = log.read_sync()
    assert [s.seq for s in stored] == seqs
    assert [event_from_dict(s.to_dict()) for s in stored] == day
    first = stored[1]
    assert (first.node, first.type, first.call, first.queue, first.agent) == ("n1", "call.queued", "c1", "support", None)
    assert stored[0].agent == "a1" and stored[0].call is None


def test_read_filters_ranges_and_patterns(open_log):
    log = open_log()
    log.append_many_sync(_acd_day())
    log.append_many_sync([
        {"type": "call.offer_ended", "at": 300.0, "call": "c9", "queue": "support", "agent": "a2"},
        {"type": "call.offerxended", "at": 301.0, "call": "c9"},
        {"type": "queue.stats", "at": 302.0, "queue": "support", "waiting": 3},
    ])
    types = lambda events: [e.type for e in events]
    assert types(log.read_sync(types="agent.*")) == ["agent.state"]
    assert types(log.read_sync(types=["*.stats", "call.abandoned"])) == ["call.abandoned", "queue.stats"]
    # "_" in a pattern is a literal underscore, not SQL's any-character
    assert types(log.read_sync(types="call.offer_*")) == ["call.offer_ended"]
    assert types(log.read_sync(types="call.offer_ended")) == ["call.offer_ended"]
    assert len(log.read_sync(types="call.*")) == 11
    assert [e.seq for e in log.read_sync(call="c2")] == [9, 10]
    assert [e.seq for e in log.read_sync(queue="support", types="call.queued")] == [2]
    assert [e.seq for e in log.read_sync(agent="a2")] == [11]
    assert log.read_sync(node="elsewhere") == []
    # sequence range: after < seq <= upto
    assert [e.seq for e in log.read_sync(after=3, upto=5)] == [4, 5]
    # time range is half-open: since <= at < until
    assert [e.at for e in log.read_sync(since=150.0, until=200.0)] == [150.0, 163.0]
    assert [e.at for e in log.read_sync(since=200.0, until=200.0)] == []
    assert [e.seq for e in log.read_sync(limit=2)] == [1, 2]
    # paging reads see the same thing
    assert list(log.iter_events(types="call.*", since=101.5)) == log.read_sync(types="call.*", since=101.5)


@pytest.mark.parametrize("bad, message", [
    ({"at": 1.0}, "'type'"),
    ({"type": "Call.Queued"}, "'type'"),
    ({"type": "call"}, "'type'"),
    ({"type": "call.x", "at": math.nan}, "'at'"),
    ({"type": "call.x", "at": "now"}, "'at'"),
    ({"type": "call.x", "at": True}, "'at'"),
    ({"type": "call.x", "call": 17}, "'call'"),
    ({"type": "call.x", "queue": ""}, "'queue'"),
    ({"type": "call.x", "call": "a\x00b"}, "'call'"),
    ({"type": "call.x", "v": math.inf}, "not JSON"),
    ({"type": "call.x", "v": object()}, "not JSON"),
    ({"type": "call.x", "v": {1: "a"}}, "keys must be strings"),
    ({"type": "call.x", "v": "\ud800"}, "not JSON"),
    ("call.x", "expected a mapping"),
])
def test_bad_events_are_refused_at_the_call_and_nothing_is_appended(open_log, bad, message):
    log = open_log()
    with pytest.raises(ValueError, match=message):
        log.append_sync(bad)
    with pytest.raises(ValueError, match=message):
        log.append_many_sync([{"type": "call.ok"}, bad])
    with pytest.raises(ValueError, match=message):
        log.append_nowait(bad)
    assert log.flush_sync() == 0
    assert log.read_sync() == []


def test_bad_read_arguments(open_log):
    log = open_log()
    with pytest.raises(ValueError, match="types"):
        log.read_sync(types="call.%")
    with pytest.raises(ValueError, match="after"):
        log.read_sync(after=-1)
    with pytest.raises(ValueError, match="since"):
        log.read_sync(since=math.nan)
    with pytest.raises(ValueError, match="call"):
        log.read_sync(call=5)
    with pytest.raises(ValueError, match="events"):
        log.append_many_sync({"type": "call.x"})


def test_nowait_appends_keep_order_with_durable_ones_and_flush_waits_for_them(open_log):
    log = open_log()
    expected = []
    for i in range(200):
        event = {"type": "agent.state" if i % 3 else "call.offered", "at": float(i), "i": i}
        expected.append(i)
        if i % 5 == 0:
            log.append_sync(event)
        else:
            log.append_nowait(event)
    assert log.flush_sync() == 200
    assert [e.data["i"] for e in log.read_sync()] == expected
    assert [e.seq for e in log.read_sync()] == list(range(1, 201))


def test_concurrent_trio_appends_are_grouped_into_few_commits(open_log):
    log = open_log()
    got: list[int] = []

    async def main():
        async def caller(i):
            got.append(await log.append({"type": "call.incoming", "call": f"c{i}", "caller": f"+1{i}"}))
        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(caller, i)

    trio.run(main)
    assert sorted(got) == list(range(1, 301))
    stats = log.statistics()
    assert stats.appended == 300
    assert stats.largest_commit > 1 and stats.commits < 300
    assert len(log.call_records_sync(limit=None)) == 300


def test_without_group_commit_each_append_is_its_own_transaction(open_log):
    log = open_log(group_commit=False)

    async def main():
        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(log.append, {"type": "queue.stats", "queue": "q", "n": i})

    trio.run(main)
    stats = log.statistics()
    assert (stats.appended, stats.commits, stats.largest_commit) == (40, 40, 1)


def test_appends_from_many_threads_get_unique_gapless_numbers(open_log):
    log = open_log()
    out: list[list[int]] = [[] for _ in range(8)]

    def worker(k):
        for i in range(50):
            out[k].append(log.append_sync({"type": "queue.stats", "queue": f"q{k}", "i": i}))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    allseqs = sorted(s for chunk in out for s in chunk)
    assert allseqs == list(range(1, 401))
    for k, chunk in enumerate(out):  # each thread's own appends keep their order
        assert chunk == sorted(chunk)
        assert [e.data["i"] for e in log.read_sync(queue=f"q{k}")] == list(range(50))


def test_async_api_from_trio(open_log):
    log = open_log()

    async def main():
        a = await log.append({"type": "call.incoming", "at": 5.0, "call": "x", "caller": "+1"})
        b = await log.append_many([{"type": "call.queued", "at": 6.0, "call": "x", "queue": "q"},
                                   {"type": "call.abandoned", "at": 9.0, "call": "x", "queue": "q", "wait": 3.0}])
        assert await log.append_many([]) == []
        log.append_nowait({"type": "agent.state", "at": 10.0, "agent": "a", "state": "break", "previous": "available"})
        assert await log.flush() == 4
        events = await log.read(call="x")
        records = await log.call_records()
        one = await log.call_record("x")
        states = await log.agent_states()
        return a, b, events, records, one, states

    a, b, events, records, one, states = trio.run(main)
    assert (a, b) == (1, [2, 3])
    assert [e.type for e in events] == ["call.incoming", "call.queued", "call.abandoned"]
    assert [r.call for r in records] == ["x"] and one == records[0]
    assert (one.outcome, one.wait, one.open) == ("abandoned", 3.0, False)
    assert [(s.agent, s.state, s.seq) for s in states] == [("a", "break", 4)]


def test_close_commits_queued_appends_and_refuses_more(open_log, store_url):
    log = open_log()
    for i in range(50):
        log.append_nowait({"type": "queue.stats", "queue": "q", "i": i})
    log.close()
    log.close()  # idempotent
    assert log.closed
    with pytest.raises(StoreClosedError):
        log.append_sync({"type": "queue.stats"})
    with pytest.raises(StoreClosedError):
        log.read_sync()
    with pytest.raises(StoreClosedError):
        trio.run(log.append, {"type": "queue.stats"})
    again = open_log()
    assert [e.data["i"] for e in again.read_sync()] == list(range(50))


def test_schema_is_created_once_and_a_newer_schema_is_refused(open_log, store_url):
    log = open_log()
    log.append_sync({"type": "queue.stats", "queue": "q"})
    assert log.statistics().schema_version == 1
    log.close()
    reopened = open_log()
    assert reopened.head() == 1 and reopened.statistics().schema_version == 1
    reopened.close()
    conn = _raw(store_url)
    try:
        conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (99, 'future', 0)")
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    finally:
        conn.close()
    assert [r[0] for r in rows] == [1, 99]
    with pytest.raises(SchemaError, match="newer"):
        EventLog(store_url, node="n1")


def test_events_cannot_be_updated_in_the_database(open_log, store_url):
    log = open_log()
    log.append_sync({"type": "call.incoming", "call": "c"})
    conn = _raw(store_url)
    try:
        with pytest.raises(Exception, match="append-only"):
            conn.execute("UPDATE events SET type = 'call.forged'")
    finally:
        conn.close()
    assert [e.type for e in log.read_sync()] == ["call.incoming"]


def test_many_events_page_through_iter_events(open_log):
    log = open_log()
    n = 12_345
    log.append_many_sync({"type": "queue.stats", "at": float(i), "i": i} for i in range(n))
    seen = [e.data["i"] for e in log.iter_events()]
    assert seen == list(range(n))
    assert [e.seq for e in log.iter_events(after=n - 3)] == [n - 2, n - 1, n]
    assert log.statistics().largest_commit == n


def test_statistics_describe_the_log_without_secrets(open_log, backend):
    log = open_log()
    log.append_sync({"type": "call.incoming", "call": "c"})
    stats = log.statistics()
    assert (stats.backend, stats.node, stats.head, stats.appended, stats.pending, stats.failed_appends) == \
        (backend, "n1", 1, 1, 0, 0)
    assert stats.group_commit is True


def test_constructor_checks_arguments(store_url):
    with pytest.raises(ValueError, match="node"):
        EventLog(store_url, node="")
    with pytest.raises(ValueError, match="max_batch"):
        EventLog(store_url, max_batch=0)
    with pytest.raises(ValueError, match="url"):
        EventLog("mysql://x/y")


_ENVELOPE = ("type", "at", "call", "agent", "queue")  # envelope fields must be strings: tested above
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k not in _ENVELOPE), _json,
                               max_size=5),
       at=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
       call=st.none() | st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s))
def test_any_json_payload_round_trips_exactly(open_log, store_url, payload, at, call):
    log = _round_trip_logs.get(store_url)
    if log is None:
        log = _round_trip_logs[store_url] = open_log()
    event = {"type": "call.custom_thing", "at": at, **payload}
    if call is not None:
        event["call"] = call
    seq = log.append_sync(event)
    (back,) = log.read_sync(after=seq - 1, upto=seq)
    assert isinstance(back, StoredEvent)
    assert back.to_dict() == event
    assert back.call == call and back.at == at


_round_trip_logs: dict[str, EventLog] = {}


def test_time_windows_are_exact_when_times_are_out_of_order(open_log):
    """iter_events narrows a time window to a sequence range first; events dated out of order still count."""
    import random

    rng = random.Random(5)
    log = open_log()
    ats = [rng.uniform(0, 1000) for _ in range(6000)]
    log.append_many_sync({"type": rng.choice(["call.queued", "agent.state", "queue.stats"]), "at": at, "k": i}
                         for i, at in enumerate(ats))
    for since, until, types in [(100.0, 200.0, None), (0.0, 1000.0, ["call.*"]), (None, 3.5, "agent.state"),
                                (999.0, None, None), (500.0, 500.0, None)]:
        expected = [i for i, at in enumerate(ats) if (since is None or at >= since) and (until is None or at < until)]
        got = list(log.iter_events(since=since, until=until, types=types))
        want = [e for e in log.read_sync(since=since, until=until, types=types)]
        assert got == want
        if types is None:
            assert [e.data["k"] for e in got] == expected


def test_a_failed_commit_fails_its_appends_and_the_log_goes_on(open_log, store_url, backend):
    from orchestrator.store import StoreError

    log = open_log()
    log.append_sync({"type": "queue.stats", "queue": "q"})
    conn = _raw(store_url)
    try:
        if backend == "sqlite":
            conn.execute("CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.type = 'test.boom' "
                         "BEGIN SELECT RAISE(ABORT, 'boom'); END")
        else:
            conn.execute("CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                         "IF NEW.type = 'test.boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$")
            conn.execute("CREATE TRIGGER boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION boom()")
    finally:
        conn.close()
    with pytest.raises(StoreError, match="boom"):
        log.append_many_sync([{"type": "call.incoming", "call": "lost"}, {"type": "test.boom"}])
    log.append_nowait({"type": "test.boom"})
    assert log.flush_sync() == 1
    assert log.append_sync({"type": "call.incoming", "call": "kept"}) == 2  # no gap: the failed batch left none
    assert [e.call for e in log.read_sync()] == [None, "kept"]
    assert log.call_record_sync("lost") is None
    stats = log.statistics()
    assert (stats.failed_appends, stats.appended, stats.pending) == (3, 2, 0)


def test_the_postgresql_writer_reconnects_after_losing_its_connection(postgres_url):
    from orchestrator.store import StoreError

    store_url = postgres_url
    with EventLog(store_url, node="n1") as log:
        _reconnect_case(log, store_url, StoreError)


def _reconnect_case(log, store_url, StoreError):
    log.append_sync({"type": "queue.stats", "queue": "q"})
    with _raw(store_url) as conn:
        killed = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = 'hotline-writer' AND datname = current_database() "
                              "AND pid <> pg_backend_pid()").fetchall()
    assert killed
    try:  # the append that meets the dead connection fails (it cannot know whether it committed)...
        log.append_sync({"type": "queue.stats", "queue": "q"})
    except StoreError:
        pass
    # ...and the next one goes through a new connection
    seq = log.append_sync({"type": "queue.stats", "queue": "after"})
    assert [e.queue for e in log.read_sync(after=seq - 1)] == ["after"]
