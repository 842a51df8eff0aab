"""Token buckets, the per-source limiter and the timer heap, each checked against
a plain-Python model (hypothesis) and on Trio's autojump clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.transport import RateLimit, SourceRateLimiter, TimerService, TokenBucket


# ---------------------------------------------------------------------------- token bucket
@given(rate=st.floats(0.5, 1000), burst=st.integers(1, 500),
       steps=st.lists(st.tuples(st.floats(0, 3), st.integers(1, 5)), max_size=60))
def test_token_bucket_matches_a_plain_model(rate, burst, steps):
    bucket = TokenBucket(rate, burst, 0.0)
    tokens, t = float(burst), 0.0
    for dt, n in steps:
        t += dt
        tokens = min(burst, tokens + dt * rate)
        expected = tokens >= n
        if expected:
            tokens -= n
        assert bucket.take(t, n) is expected
        assert bucket.tokens == pytest.approx(tokens, rel=1e-9, abs=1e-9)


def test_token_bucket_refills_at_its_rate_and_says_when():
    bucket = TokenBucket(10, 2, now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]
    assert bucket.retry_after(100.0) == pytest.approx(0.1)
    assert not bucket.take(100.05)
    assert bucket.take(100.101)  # (floating point: 0.1 s of refill is 0.999... tokens at exactly 100.1)
    assert bucket.take(105.0) and bucket.take(105.0) and not bucket.take(105.0)  # capped at burst


@pytest.mark.parametrize("rate,burst,match", [(0, 1, "rate"), (-1, 1, "rate"), (1, 0.5, "burst")])
def test_token_bucket_validates(rate, burst, match):
    with pytest.raises(ValueError, match=match):
        TokenBucket(rate, burst)


def test_source_limiter_keeps_one_bucket_per_source_and_forgets_the_oldest():
    limiter = SourceRateLimiter(RateLimit(rate=1, burst=2, max_sources=3), exempt=frozenset({"10.0.0.9"}))
    assert [limiter.allow("10.0.0.1", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("10.0.0.2", 0.0)  # another source is not affected
    assert all(limiter.allow("10.0.0.9", 0.0) for _ in range(100))  # exempt
    limiter.allow("10.0.0.3", 0.0)
    limiter.allow("10.0.0.4", 0.0)  # the table is full: 10.0.0.1 (least recent) is forgotten
    stats = limiter.statistics()
    assert stats.sources == 3 and stats.forgotten == 1 and stats.limited == 1
    assert limiter.allow("10.0.0.1", 0.0) and limiter.allow("10.0.0.1", 0.0)  # a fresh bucket


def test_rate_limit_validates():
    with pytest.raises(ValueError, match="max_sources"):
        RateLimit(max_sources=0)
    with pytest.raises(ValueError, match="limit"):
        SourceRateLimiter("100/s")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- timers
def run_timers(ops):
    """Apply (op, key, delay) operations at t=0 on the autojump clock; return (time, key) fired."""
    fired = []

    async def main():
        service = TimerService(lambda key, name, now: fired.append((round(now, 6), key, name)))
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            for op, key, delay in ops:
                if op == "set":
                    service.set(key, "T", trio.current_time() + delay)
                else:
                    service.cancel(key, "T")
            await trio.sleep(1000)
            assert service.statistics().pending == 0
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return fired


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "set", "cancel"]), st.integers(0, 5),
                          st.integers(0, 100).map(lambda ms: ms / 10)), max_size=25))
def test_timers_fire_like_a_dictionary_model(ops):
    model: dict[int, float] = {}
    for op, key, delay in ops:
        if op == "set":
            model[key] = delay  # re-arming replaces
        else:
            model.pop(key, None)
    fired = run_timers(ops)
    assert sorted((t, k) for t, k, _ in fired) == sorted((round(d, 6), k) for k, d in model.items())
    assert [t for t, _, _ in fired] == sorted(t for t, _, _ in fired)  # in time order


def test_an_earlier_timer_wakes_the_sleeping_service_and_heap_compacts():
    fired = []

    async def main():
        service = TimerService(lambda key, name, now: fired.append((name, now)))
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            service.set("k", "late", 30.0)
            await trio.sleep(1)  # the service now sleeps until 30
            service.set("k", "early", 2.0)
            for i in range(200):
                service.set(i, "x", 500.0)
                service.cancel(i, "x")
            assert service.statistics().heap_entries < 100  # cancelled entries were compacted away
            await trio.sleep(40)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert fired == [("early", 2.0), ("late", 30.0)]
