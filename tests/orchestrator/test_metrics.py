"""CONTRACT metrics from the event log: exact values on a hand-built day, the dict form the
store keeps, per-queue thresholds, intervals, and a hypothesis check against a plain model.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import metrics
from orchestrator.acd import event_from_dict
from orchestrator.acd import events as ev


def _answered_call(call, queue, t_queued, t_answer, talk, hold, wrapup, agent="a", callback=False):
    t_end = t_answer + talk + hold
    return [
        ev.CallQueued(at=t_queued, call=call, queue=queue, priority=0, caller=None, position=1, ewt=None),
        ev.CallAnswered(at=t_answer, call=call, queue=queue, agent=agent, offer=1, wait=t_answer - t_queued,
                        callback=callback),
        ev.CallEnded(at=t_end, call=call, queue=queue, agent=agent, talk=talk, hold=hold),
        ev.CallWrapupEnded(at=t_end + wrapup, call=call, queue=queue, agent=agent, wrapup=wrapup),
    ]


def _queued(call, queue, t):
    return ev.CallQueued(at=t, call=call, queue=queue, priority=0, caller=None, position=1, ewt=None)


def day():
    e = []
    e += _answered_call("c1", "q", 0, 10, talk=100, hold=20, wrapup=30)
    e += _answered_call("c2", "q", 5, 35, talk=50, hold=0, wrapup=10, agent="b")
    e += [_queued("c3", "q", 10), ev.CallAbandoned(at=13, call="c3", queue="q", wait=3)]
    e += [_queued("c4", "q", 12), ev.CallAbandoned(at=42, call="c4", queue="q", wait=30)]
    e += [_queued("c5", "q", 14), ev.CallAbandoned(at=30, call="c5", queue="q", wait=16)]
    e += [_queued("c6", "q", 15),
          ev.CallbackRequested(at=20, call="c6", queue="q", number="+1", wait=5),
          ev.CallAnswered(at=100, call="c6", queue="q", agent="a", offer=9, wait=85, callback=True)]
    e += [_queued("c7", "q", 16),
          ev.CallOverflowed(at=76, call="c7", queue="q", to_queue="q2", wait=60, reason="overflow"),
          _queued("c7", "q2", 76),
          ev.CallAnswered(at=80, call="c7", queue="q2", agent="b", offer=7, wait=64)]
    e += [ev.CallRejected(at=17, call="c8", queue="q", reason="full", destination="hangup")]
    e += [_queued("c9", "q", 18),
          ev.CallExited(at=78, call="c9", queue="q", reason="timeout", destination="voicemail:q", wait=60)]
    return sorted(e, key=lambda x: x.at)


def test_queue_metrics_of_a_hand_built_day():
    m = metrics.queue_metrics(day())
    q = m["q"]
    assert (q.queued, q.answered, q.answered_within, q.abandoned, q.short_abandoned, q.abandoned_after) == \
        (8, 3, 1, 3, 1, 1)
    assert (q.callbacks_requested, q.callbacks_answered, q.overflowed, q.exited, q.rejected, q.handled) == \
        (1, 1, 1, 1, 1, 2)
    # SL: c1 within 20 s / (c1, c2 answered live + c4 abandoned after T); c3 short, c5 before T
    assert q.service_level == pytest.approx(1 / 3)
    assert q.asa == pytest.approx(20.0)                  # callbacks are not in the ASA
    assert q.aht == pytest.approx((150 + 60) / 2)        # talk + hold + wrap-up
    assert q.abandon_rate == pytest.approx(3 / 8)        # the callback is not an abandon
    assert (q.mean_talk, q.mean_hold, q.mean_wrapup) == (75.0, 10.0, 20.0)
    assert q.max_wait == 30
    q2 = m["q2"]
    assert (q2.queued, q2.answered, q2.service_level, q2.asa) == (1, 1, 0.0, 64.0)


def test_thresholds_per_queue_and_the_short_abandon_rule():
    m = metrics.queue_metrics(day(), sl_threshold={"q": 30, "*": 100}, short_abandon=0)
    # T = 30: c1 and c2 within; c3 (3 s) and c4 (30 s, not > 30) are not late abandons
    assert m["q"].service_level == pytest.approx(2 / 2)
    assert m["q2"].service_level == 1.0
    m = metrics.queue_metrics(day(), sl_threshold=2, short_abandon=0)
    # T = 2 with no short-abandon rule: every abandon is after T
    assert m["q"].service_level == pytest.approx(0 / (2 + 3))
    with pytest.raises(ValueError, match="sl_threshold"):
        metrics.queue_metrics(day(), sl_threshold={"q": 20})


def test_the_stored_dict_form_gives_the_same_numbers():
    stored = [e.to_dict() for e in day()]
    assert stored[0]["type"] == "call.queued"
    assert [event_from_dict(d) for d in stored] == day()
    assert metrics.queue_metrics(stored) == metrics.queue_metrics(day())


def test_window_counts_calls_by_the_time_they_queued():
    m = metrics.queue_metrics(day(), start=10, end=16)
    assert (m["q"].queued, m["q"].abandoned, m["q"].callbacks_requested) == (4, 3, 1)
    with pytest.raises(ValueError, match="end"):
        metrics.queue_metrics(day(), start=10, end=5)


def _agent_day():
    return day() + [
        ev.AgentState(at=0, agent="a", state="available", previous="offline"),
        ev.AgentState(at=10, agent="a", state="on_call", previous="available", call="c1", queue="q"),
        ev.AgentState(at=130, agent="a", state="wrap_up", previous="on_call", call="c1", queue="q"),
        ev.AgentState(at=160, agent="a", state="available", previous="wrap_up"),
        ev.AgentState(at=200, agent="a", state="break", previous="available", reason="lunch"),
        ev.CallOfferEnded(at=5, call="cx", queue="q", agent="a", offer=3, reason="timeout", ring=20),
    ]


def test_agent_metrics_occupancy_and_aht():
    events = sorted(_agent_day(), key=lambda x: x.at)
    a = metrics.agent_metrics(events, end=300)["a"]
    assert dict(a.state_time) == {"available": 50.0, "on_call": 120.0, "wrap_up": 30.0, "break": 100.0}
    assert a.occupancy == pytest.approx(150 / 200)
    assert (a.handled, a.talk, a.hold, a.wrapup, a.aht, a.ring_no_answer) == (1, 100.0, 20.0, 30.0, 150.0, 1)
    clipped = metrics.agent_metrics(events, start=100, end=180)["a"]
    assert dict(clipped.state_time) == {"on_call": 30.0, "wrap_up": 30.0, "available": 20.0}
    assert clipped.occupancy == pytest.approx(60 / 80)
    assert metrics.occupancy({"break": 10.0}) is None


def test_interval_metrics():
    events = sorted(_agent_day(), key=lambda x: x.at)
    rows = metrics.interval_metrics(events, interval=10, end=300)
    by = {(r.start, r.queue.queue): r for r in rows}
    assert set(by) == {(0.0, "q"), (10.0, "q"), (70.0, "q2")}
    assert by[(0.0, "q")].queue.queued == 2 and by[(0.0, "q")].queue.service_level == pytest.approx(1 / 2)
    assert by[(10.0, "q")].queue.queued == 6 and by[(10.0, "q")].queue.rejected == 1
    assert by[(0.0, "q")].occupancy == 0.0          # agent a was available all of [0, 10)
    assert by[(10.0, "q")].occupancy == 1.0         # and on a call all of [10, 20)
    with pytest.raises(ValueError, match="interval"):
        metrics.interval_metrics(events, interval=0)


def test_bad_event_dicts_are_refused():
    with pytest.raises(ValueError, match="type"):
        metrics.queue_metrics([{"call": "x"}])
    with pytest.raises(ValueError, match="unknown event type"):
        metrics.queue_metrics([{"type": "call.teleported", "at": 1}])
    with pytest.raises(ValueError, match="unknown field"):
        event_from_dict({"type": "call.abandoned", "at": 1, "call": "c", "queue": "q", "wait": 1, "mood": "x"})


# ---------------------------------------------------------------------------- against a plain model

outcome = st.tuples(st.sampled_from(["answered", "abandoned", "callback", "open"]),
                    st.floats(0, 200, allow_nan=False).map(lambda x: round(x, 1)))


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(outcome, max_size=40), threshold=st.sampled_from([0.0, 5.0, 20.0, 60.0]),
       short=st.sampled_from([0.0, 5.0, 10.0]))
def test_queue_metrics_match_a_plain_model(calls, threshold, short):
    events = []
    for i, (kind, wait) in enumerate(calls):
        cid = f"c{i}"
        events.append(_queued(cid, "q", float(i)))
        if kind == "answered":
            events.append(ev.CallAnswered(at=i + wait, call=cid, queue="q", agent="a", offer=i, wait=wait))
        elif kind == "abandoned":
            events.append(ev.CallAbandoned(at=i + wait, call=cid, queue="q", wait=wait))
        elif kind == "callback":
            events.append(ev.CallbackRequested(at=i + 1.0, call=cid, queue="q", number="+1", wait=1.0))
            events.append(ev.CallAnswered(at=i + wait, call=cid, queue="q", agent="a", offer=i, wait=wait,
                                          callback=True))
    events.sort(key=lambda e: e.at)
    got = metrics.queue_metrics(events, sl_threshold=threshold, short_abandon=short).get("q")
    if not calls:
        assert got is None
        return
    answered = [w for k, w in calls if k == "answered"]
    abandoned = [w for k, w in calls if k == "abandoned"]
    late = [w for w in abandoned if w >= short and w > threshold]
    den = len(answered) + len(late)
    model_sl = sum(w <= threshold for w in answered) / den if den else None
    assert got.service_level == model_sl
    assert got.service_level == metrics.service_level(answered, abandoned, threshold=threshold,
                                                      short_abandon=short)
    assert got.abandon_rate == len(abandoned) / len(calls)
    if answered:
        assert math.isclose(got.asa, sum(answered) / len(answered))
    else:
        assert got.asa is None
    assert got.answered == len(answered) + sum(k == "callback" for k, _ in calls)
    assert got.queued == len(calls)


def test_queue_stats_joins_the_live_snapshot_and_the_event_metrics():
    from orchestrator.acd import Acd, AgentConfig, QueueConfig
    from orchestrator.acd import effects as fx

    acd = Acd([QueueConfig(name="q", sl_threshold=10, short_abandon=2)], [AgentConfig(id="a", queues={"q": 0})])
    log = []
    log += acd.agent_login("a", "d", 0.0)
    log += acd.device_registered("d", 0.0)
    out = acd.call_arrived("c1", "q", 1.0)
    log += out
    offer = next(o for o in out if isinstance(o, fx.Offer))
    log += acd.offer_answered(offer.offer, 4.0)                   # within 10 s
    log += acd.call_arrived("c2", "q", 5.0)
    log += acd.call_abandoned("c2", 25.0)                         # after 10 s
    log += acd.call_arrived("c3", "q", 26.0)
    stats = metrics.queue_stats(acd.queue_snapshot("q", 30.0), log)
    assert (stats.waiting, stats.longest_wait, stats.agents_by_state["on_call"]) == (1, 4.0, 1)
    assert (stats.queued, stats.answered, stats.abandoned) == (3, 1, 1)
    assert stats.service_level == pytest.approx(1 / 2) and stats.asa == 3.0
    assert stats.abandon_rate == pytest.approx(1 / 3)
    # a new caller has c3 ahead: one agent, handle time 180 s (no call finished yet), and c3 may give up
    # at the rate seen so far: 1 abandon over 3 + 20 s of waiting, older waits decayed by 1 % per call
    assert stats.ewt == pytest.approx(180 + 1 / (1 / 180 + 1 / (3 * 0.99 + 20)))
    d = stats.to_dict()
    assert d["agents_by_state"]["on_call"] == 1 and d["queue"] == "q"
