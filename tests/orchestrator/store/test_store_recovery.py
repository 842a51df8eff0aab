"""Crash safety: SIGKILL a node mid-call, reopen, and every acknowledged event and every started call is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from orchestrator import metrics
from orchestrator.acd import events as ev
from orchestrator.store import EventLog
from orchestrator.store.events import acd_events

WRITER = Path(__file__).with_name("crash_writer.py")


def _kill_mid_flight(url: str, node: str, calls: int, acks_before_kill: int) -> list[tuple[int, str, str]]:
    """Run crash_writer.py until it has acknowledged enough appends, SIGKILL it, return every acknowledgement."""
    proc = subprocess.Popen([sys.executable, str(WRITER), url, node, str(calls)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    acks: list[tuple[int, str, str]] = []
    try:
        header = proc.stdout.readline()
        assert header.startswith("open "), (header, proc.stderr.read() if proc.poll() is not None else "")
        while len(acks) < acks_before_kill:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"writer died on its own: {proc.wait()} {proc.stderr.read()}")
            seq, call, kind = line.split()
            acks.append((int(seq), call, kind))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        rest, _ = proc.communicate(timeout=60)
    # lines already written before the kill were acknowledged too
    for line in rest.splitlines():
        parts = line.split()
        if len(parts) == 3:
            acks.append((int(parts[0]), parts[1], parts[2]))
    assert proc.returncode == -signal.SIGKILL
    return acks


def test_sigkill_during_live_calls_loses_no_acknowledged_event_and_every_call_gets_a_record(store_url):
    acks = _kill_mid_flight(store_url, "crashy", calls=24, acks_before_kill=600)
    with EventLog(store_url, node="crashy") as log:
        recovery = log.last_recovery
        by_seq = {e.seq: e for e in log.read_sync()}
        # 1. every acknowledged append is in the log, unchanged
        for seq, call, kind in acks:
            assert seq in by_seq, f"acknowledged event {seq} ({kind} {call}) lost"
            assert (by_seq[seq].call, by_seq[seq].type, by_seq[seq].node) == (call, kind, "crashy")
        # 2. sequence numbers have no gaps
        assert sorted(by_seq) == list(range(1, len(by_seq) + 1))
        # 3. every call that started has a closed record
        records = {r.call: r for r in log.call_records_sync(limit=None)}
        started = {e.call for e in by_seq.values() if e.type == "call.incoming"}
        assert started >= {call for _, call, kind in acks if kind == "call.incoming"}
        assert set(records) == started
        assert not [r.call for r in records.values() if r.open]
        # 4. the calls that were live at the kill were ended by recovery, with the documented outcome
        assert recovery.calls, "the kill should have caught calls in progress"
        assert set(recovery.calls) == {c for c, r in records.items() if r.end_reason == "node_restart"}
        for call in recovery.calls:
            r = records[call]
            assert r.synthetic
            if r.answered_at is not None:
                assert r.outcome == "answered" and r.talk is not None
            elif r.queued_at is not None:
                assert r.outcome == "abandoned"
            else:
                assert r.outcome == "failed"
            assert r.ended_at >= r.last_at - 1e-9 or r.ended_at == r.last_at
        for r in records.values():
            if r.end_reason != "node_restart":
                assert r.outcome == "answered" and r.talk == 5.0
        # 5. agents left on a call are logged off as of the crash
        assert all(s.state == "offline" for s in log.agent_states_sync() if s.agent in recovery.agents)
        assert {s.state for s in log.agent_states_sync()} <= {"offline", "available"}
        # 6. the records still equal a fold of the log, and the ACD metrics see the recovered abandons
        raw = log.raw_call_records_sync()
        log.rebuild_call_records()
        assert log.raw_call_records_sync() == raw
        q = metrics.queue_metrics(acd_events(log.read_sync()))["support"]
        abandoned = sum(1 for r in records.values() if r.outcome == "abandoned")
        assert q.abandoned == abandoned and q.queued == len([r for r in records.values() if r.queued_at])
    # 7. a second restart finds nothing to recover
    with EventLog(store_url, node="crashy") as again:
        assert again.last_recovery.calls == () and again.last_recovery.agents == ()


def _queued(at: float, call: str) -> dict:
    return ev.CallQueued(at=at, call=call, queue="q", priority=0, caller=None, position=1, ewt=None).to_dict()


def _events_of(log, call):
    return [e.type for e in log.read_sync(call=call)]


def test_recovery_outcomes_and_it_leaves_other_nodes_alone(store_url):
    with EventLog(store_url, node="n1") as n1, EventLog(store_url, node="n2") as n2:
        n1.append_many_sync([
            {"type": "call.incoming", "at": 10.0, "call": "ivr-only", "caller": "+1"},
            {"type": "call.ivr", "at": 11.0, "call": "ivr-only", "node": "menu"},
            _queued(20.0, "waiting"),
            _queued(30.0, "talking"),
            {"type": "call.answered", "at": 40.0, "call": "talking", "queue": "q", "agent": "a", "offer": 1,
             "wait": 10.0},
            {"type": "call.held", "at": 50.0, "call": "talking"},
            _queued(35.0, "cb"),
            {"type": "call.callback_requested", "at": 45.0, "call": "cb", "queue": "q", "number": "+1", "wait": 10.0},
            _queued(36.0, "done"),
            {"type": "call.abandoned", "at": 37.0, "call": "done", "queue": "q", "wait": 1.0},
            {"type": "agent.state", "at": 40.0, "agent": "a", "state": "on_call", "previous": "ringing"},
            {"type": "agent.state", "at": 41.0, "agent": "b", "state": "offline", "previous": "available"},
            {"type": "queue.stats", "at": 60.0, "queue": "q"},  # the node's last sign of life
        ])
        n2.append_many_sync([
            _queued(55.0, "other-node"),
            {"type": "agent.state", "at": 55.0, "agent": "z", "state": "available", "previous": "offline"},
        ])
    with EventLog(store_url, node="n1") as log:  # n1 restarts; n2 keeps running
        rec = log.last_recovery
        assert (rec.died_at, sorted(rec.calls), rec.agents) == (60.0, ["cb", "ivr-only", "talking", "waiting"],
                                                                ("a",))
        r = {c.call: c for c in log.call_records_sync(limit=None)}
        assert (r["ivr-only"].outcome, r["ivr-only"].ended_at, r["ivr-only"].ivr) == ("failed", 60.0, 49.0)
        assert (r["waiting"].outcome, r["waiting"].wait, r["waiting"].ended_at) == ("abandoned", 40.0, 60.0)
        assert (r["talking"].outcome, r["talking"].talk, r["talking"].hold) == ("answered", 10.0, 10.0)
        assert (r["cb"].outcome, r["cb"].open) == ("callback", False)
        assert r["done"].end_reason is None and r["done"].synthetic is False
        assert all(r[c].end_reason == "node_restart" and r[c].synthetic for c in rec.calls)
        assert r["other-node"].open is True
        assert _events_of(log, "waiting") == ["call.queued", "call.abandoned"]
        states = {s.agent: (s.state, s.node) for s in log.agent_states_sync()}
        assert states == {"a": ("offline", "n1"), "b": ("offline", "n1"), "z": ("available", "n2")}
        # the ACD reading of the synthesized events: the waiting call is an abandon after 40 s
        q = metrics.queue_metrics(acd_events(log.read_sync()))["q"]
        assert (q.queued, q.abandoned, q.answered) == (5, 2, 1)


def test_recovery_can_be_skipped_and_run_later(store_url):
    with EventLog(store_url, node="n1") as log:
        log.append_sync({"type": "call.incoming", "at": 1.0, "call": "c"})
    with EventLog(store_url, node="n1", recover=False) as log:
        assert log.last_recovery is None
        assert log.call_record_sync("c").open
        report = log.recover()
        assert report.calls == ("c",) and not log.call_record_sync("c").open
        assert log.statistics().recovered_calls == 1


def test_the_writer_script_recovers_its_own_previous_run(store_url):
    """The crash writer opens the log itself: its second run reports the calls the first run left open."""
    _kill_mid_flight(store_url, "again", calls=1, acks_before_kill=2)
    proc = subprocess.Popen([sys.executable, str(WRITER), store_url, "again", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        header = proc.stdout.readline()
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    word, count = header.split()
    assert word == "open" and int(count) >= 1  # at least the first call, left waiting in the queue
