"""The audit log: redaction, queries, append-only in the database; retention purge; storage URLs."""

from __future__ import annotations

import math
import time
from pathlib import Path

import psycopg
import pytest
import trio

from orchestrator.store import EventLog, parse_url, redact
from orchestrator.store.audit import is_secret_key


def _raw(url: str):
    parsed = parse_url(url)
    if parsed.backend == "sqlite":
        import sqlite3

        return sqlite3.connect(str(parsed.path), isolation_level=None)
    return psycopg.connect(url, autocommit=True)


def test_redact_replaces_secret_values_at_any_depth():
    params = {"token": "abc", "agent": "9001", "auth": {"user": "u", "Password": "p"},
              "items": [{"api-key": "k", "name": "n"}, 3], "digits": "4111111111111111", "sip_password": "x",
              "keyboard": "fine", "pinned": True}
    assert redact(params) == {"token": "***", "agent": "9001", "auth": "***",
                              "items": [{"api-key": "***", "name": "n"}, 3], "digits": "***", "sip_password": "***",
                              "keyboard": "fine", "pinned": True}
    assert params["token"] == "abc"  # a copy, not in place
    assert is_secret_key("Refresh_Token") and not is_secret_key("tokens_left")


def test_audit_entries_are_written_durably_and_queried(open_log):
    log = open_log()
    ids = [
        log.audit_sync(principal="admin", role="admin", method="auth.login", params={"token": "secret-t"}, at=100.0),
        log.audit_sync(principal="crm-1", role="crm", method="call.hangup", params={"call": "c1"}, at=101.0),
        log.audit_sync(principal="crm-1", role="crm", method="call.transfer", params={"call": "c1", "to": "2001"},
                       result="error", error="-32009 conflict: call is ringing", at=102.0),
    ]

    async def from_trio():
        return await log.audit(principal="sup", method="supervisor.barge", params=None, at=103.0)
    ids.append(trio.run(from_trio))
    assert ids == sorted(ids) and len(set(ids)) == 4
    entries = log.audit_entries_sync()
    assert [(e.principal, e.method, e.result) for e in entries] == [
        ("admin", "auth.login", "ok"), ("crm-1", "call.hangup", "ok"), ("crm-1", "call.transfer", "error"),
        ("sup", "supervisor.barge", "ok")]
    assert entries[0].params == {"token": "***"} and entries[0].role == "admin" and entries[0].node == "n1"
    assert entries[2].error == "-32009 conflict: call is ringing" and entries[3].params == {}
    assert [e.method for e in log.audit_entries_sync(principal="crm-1")] == ["call.hangup", "call.transfer"]
    assert [e.at for e in log.audit_entries_sync(since=101.0, until=103.0)] == [101.0, 102.0]
    assert [e.id for e in log.audit_entries_sync(method="auth.login")] == [ids[0]]
    assert len(log.audit_entries_sync(limit=2)) == 2
    assert entries[1].to_json()["params"] == {"call": "c1"}
    assert log.statistics().audit_entries == 4
    # audit entries are not events
    assert log.read_sync() == []


def test_the_audit_log_refuses_update_and_delete_in_the_database(open_log, store_url):
    log = open_log()
    log.audit_sync(principal="admin", method="ivr.reload")
    conn = _raw(store_url)
    try:
        with pytest.raises(Exception, match="append-only"):
            conn.execute("UPDATE audit SET principal = 'someone-else'")
        with pytest.raises(Exception, match="append-only"):
            conn.execute("DELETE FROM audit")
    finally:
        conn.close()
    assert [e.principal for e in log.audit_entries_sync()] == ["admin"]


@pytest.mark.parametrize("kwargs, name", [
    ({"principal": "", "method": "m"}, "principal"),
    ({"principal": "p", "method": None}, "method"),
    ({"principal": "p", "method": "m", "result": ""}, "result"),
    ({"principal": "p", "method": "m", "role": 3}, "role"),
    ({"principal": "p", "method": "m", "at": math.inf}, "at"),
    ({"principal": "p", "method": "m", "params": {"x": object()}}, "params"),
    ({"principal": "p\x00", "method": "m"}, "principal"),
])
def test_bad_audit_entries_are_refused(open_log, kwargs, name):
    log = open_log()
    with pytest.raises(ValueError, match=name):
        log.audit_sync(**kwargs)
    assert log.audit_entries_sync() == []


def test_purge_keeps_call_records_and_whole_calls(open_log):
    log = open_log()
    log.append_many_sync([
        {"type": "call.queued", "at": 10.0, "call": "old", "queue": "q"},
        {"type": "call.abandoned", "at": 20.0, "call": "old", "queue": "q", "wait": 10.0},
        {"type": "queue.stats", "at": 25.0, "queue": "q"},
        {"type": "call.queued", "at": 90.0, "call": "spans", "queue": "q"},
        {"type": "call.answered", "at": 95.0, "call": "spans", "queue": "q", "agent": "a", "wait": 5.0},
        {"type": "call.ended", "at": 150.0, "call": "spans", "queue": "q", "agent": "a", "talk": 55, "hold": 0},
        {"type": "call.queued", "at": 50.0, "call": "open-old", "queue": "q"},
        {"type": "queue.stats", "at": 200.0, "queue": "q"},
    ])
    before = {r.call: r for r in log.call_records_sync()}
    deleted = log.purge_sync(before=100.0)
    # "old" (closed, last event before 100) and the early queue.stats go; "spans" ended after the cutoff
    # and "open-old" is still open, so all their events stay
    assert deleted == 3
    assert [(e.type, e.call) for e in log.read_sync()] == [
        ("call.queued", "spans"), ("call.answered", "spans"), ("call.ended", "spans"),
        ("call.queued", "open-old"), ("queue.stats", None)]
    assert {r.call: r for r in log.call_records_sync()} == before
    # scans and subscriptions walk over the purged sequence numbers
    assert list(log.iter_events()) == log.read_sync()
    assert [e.seq for e in log.follow(after=0, idle_timeout=0.05)] == [4, 5, 6, 7, 8]
    assert [e.seq for e in log.follow(after=0, idle_timeout=0.05, types="queue.*")] == [8]
    # a rebuild keeps the record whose events were purged
    log.rebuild_call_records()
    assert {r.call: r for r in log.call_records_sync()} == before
    assert log.head() == 8  # sequence numbers are never reused
    assert log.append_sync({"type": "queue.stats", "queue": "q"}) == 9
    with pytest.raises(ValueError, match="since"):
        log.purge_sync(before=math.nan)


def test_purge_from_trio(open_log):
    log = open_log()
    log.append_many_sync([{"type": "queue.stats", "at": float(t), "queue": "q"} for t in range(10)])
    assert trio.run(lambda: log.purge(before=5.0)) == 5
    assert [e.at for e in log.read_sync()] == [5.0, 6.0, 7.0, 8.0, 9.0]
    now = time.time()
    log.append_many_sync([{"type": "queue.stats", "at": now - days * 86400 - 60, "queue": "q"} for days in (1, 3)])
    assert log.purge_sync(older_than_days=2) == 6  # the 1970 ones and the one from 3 days ago
    assert len(log.read_sync()) == 1
    with pytest.raises(ValueError, match="exactly one"):
        log.purge_sync()
    with pytest.raises(ValueError, match="older_than_days"):
        log.purge_sync(older_than_days=-1)


@pytest.mark.parametrize("url, backend, path, sync", [
    ("sqlite:///var/hotline.db", "sqlite", Path("var/hotline.db"), "full"),
    ("sqlite:////srv/h/hotline.db?synchronous=normal", "sqlite", Path("/srv/h/hotline.db"), "normal"),
    ("SQLITE:///x.db?synchronous=FULL", "sqlite", Path("x.db"), "full"),
    ("postgresql://u:p@db.example/hotline", "postgresql", None, "full"),
    ("postgres://db/hotline?sslmode=require", "postgresql", None, "full"),
])
def test_storage_urls(url, backend, path, sync):
    parsed = parse_url(url)
    assert (parsed.backend, parsed.path, parsed.synchronous) == (backend, path, sync)


def test_storage_url_redacts_the_password():
    assert parse_url("postgresql://hotline:s3cret@db/h").redacted() == "postgresql://hotline:***@db/h"
    assert parse_url("postgresql://db/h").redacted() == "postgresql://db/h"


@pytest.mark.parametrize("url, message", [
    ("", "url"), ("var/hotline.db", "no scheme"), ("mysql://x/y", "unknown storage scheme"),
    ("sqlite://relative.db", "sqlite:///"), ("sqlite:///:memory:", "in-memory"), ("sqlite:///dir/", "no database"),
    ("sqlite:///x.db?synchronous=off", "synchronous"), ("sqlite:///x.db?journal=wal", "unknown SQLite parameter"),
])
def test_bad_storage_urls(url, message):
    with pytest.raises(ValueError, match=message):
        parse_url(url)


def test_a_sqlite_url_creates_its_directory_and_uses_wal(tmp_path):
    path = tmp_path / "state" / "hotline.db"
    with EventLog(f"sqlite:///{path}", node="n") as log:
        log.append_sync({"type": "queue.stats", "queue": "q"})
    import sqlite3

    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
