"""Following the log: history then live with nothing missed, filters, slow readers, several writers/nodes."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.lowlevel

from orchestrator.store import EventLog, StoreClosedError


def _stats(i: int, queue: str = "q") -> dict:
    return {"type": "queue.stats", "queue": queue, "i": i}


def test_read_history_then_follow_misses_and_repeats_nothing(open_log):
    """Events keep arriving while a consumer reads history up to N and then follows from N + 1."""
    log = open_log()
    log.append_many_sync(_stats(i) for i in range(300))
    total = 1200
    seen: list[int] = []

    async def main():
        async def producer():
            for i in range(300, total):
                if i % 4:
                    log.append_nowait(_stats(i))
                else:
                    await log.append(_stats(i))
                if i % 50 == 0:
                    await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer)
            await trio.lowlevel.checkpoint()
            n = log.head()
            history = await log.read(upto=n)
            seen.extend(e.seq for e in history)
            async with log.subscribe(after=n) as sub:
                async for e in sub:
                    seen.append(e.seq)
                    if e.seq == total:
                        break

    trio.run(main)
    assert seen == list(range(1, total + 1))


def test_subscription_filters_and_position(open_log):
    log = open_log()

    async def main():
        got = []
        async with log.subscribe(after=0, types=["call.*"], call="c2") as sub:
            log.append_many_sync([
                {"type": "call.incoming", "call": "c1"}, {"type": "call.incoming", "call": "c2"},
                {"type": "agent.state", "agent": "a", "state": "available", "previous": "offline"},
                {"type": "call.queued", "call": "c2", "queue": "q"}, {"type": "queue.stats", "queue": "q"},
            ])
            async for e in sub:
                got.append((e.seq, e.type))
                if len(got) == 2:
                    break
            assert sub.position == 5  # seq 5 was scanned past (filtered out): resuming after it is exact
        return got

    assert trio.run(main) == [(2, "call.incoming"), (4, "call.queued")]


def test_subscription_from_now_sees_only_new_events(open_log):
    log = open_log()
    log.append_many_sync(_stats(i) for i in range(10))

    async def main():
        sub = log.subscribe()
        log.append_sync(_stats(10))
        return (await sub.__anext__()).data["i"]

    assert trio.run(main) == 10


def test_a_slow_subscriber_falls_back_to_the_database_and_still_sees_everything(open_log):
    log = open_log(tail_size=8)
    n = 3000
    seen: list[int] = []

    async def main():
        async with trio.open_nursery() as nursery, log.subscribe(after=0) as sub:
            async def producer():
                for start in range(0, n, 100):
                    await log.append_many(_stats(i) for i in range(start, start + 100))
            nursery.start_soon(producer)
            async for e in sub:
                seen.append(e.data["i"])
                if len(seen) % 500 == 0:
                    await trio.sleep(0.01)  # fall behind the 8-event tail on purpose
                if len(seen) == n:
                    break

    trio.run(main)
    assert seen == list(range(n))


def test_follow_from_a_plain_thread(open_log):
    log = open_log()
    log.append_many_sync(_stats(i) for i in range(5))

    def later():
        for i in range(5, 10):
            log.append_sync(_stats(i))
        log.append_sync({"type": "test.done"})

    t = threading.Thread(target=later)
    t.start()
    got = []
    for e in log.follow(after=2, idle_timeout=60.0, types=["queue.*", "test.done"]):
        if e.type == "test.done":
            break
        got.append(e.data["i"])
    t.join()
    assert got == list(range(2, 10))
    # with nothing more coming, the idle timeout ends the iteration
    assert [e.seq for e in log.follow(after=log.head() - 1, idle_timeout=0.05)] == [log.head()]


def test_closing_the_log_ends_a_waiting_subscriber(open_log):
    log = open_log()

    async def main():
        async with trio.open_nursery() as nursery:
            async def closer():
                await trio.sleep(0.05)
                await log.aclose()
            nursery.start_soon(closer)
            with pytest.raises(StoreClosedError):
                async with log.subscribe() as sub:
                    async for _ in sub:
                        pass

    trio.run(main)


def test_two_writers_on_one_database_see_each_others_events_in_one_order(open_log, store_url, backend):
    """Two EventLogs ("nodes") on the same database append at once; each one's subscriber sees both.

    On PostgreSQL the other node's events arrive through LISTEN/NOTIFY; on
    SQLite (a second process writing the file) through the follower's poll.
    """
    a = open_log(node="node-a")
    b = open_log(node="node-b")
    per_node = 400
    total = 2 * per_node
    seen: dict[str, list] = {"a": [], "b": []}

    async def main():
        async def consume(name, log, sub):
            async for e in sub:
                seen[name].append((e.seq, e.node, e.data["i"]))
                if len(seen[name]) == total:
                    return

        async def produce(log):
            for i in range(per_node):
                if i % 3:
                    log.append_nowait(_stats(i))
                else:
                    await log.append(_stats(i))
            await log.flush()

        with trio.fail_after(120):
            async with a.subscribe(after=0) as sa, b.subscribe(after=0) as sb, trio.open_nursery() as nursery:
                nursery.start_soon(consume, "a", a, sa)
                nursery.start_soon(consume, "b", b, sb)
                nursery.start_soon(produce, a)
                nursery.start_soon(produce, b)

    trio.run(main)
    assert seen["a"] == seen["b"]
    assert [s for s, _, _ in seen["a"]] == list(range(1, total + 1))
    for node in ("node-a", "node-b"):
        assert [i for _, n, i in seen["a"] if n == node] == list(range(per_node))
    assert a.head() == b.head() == total


def test_another_nodes_events_wake_a_waiting_subscriber(open_log):
    """A subscriber waiting on node A is woken by an append committed by node B alone."""
    a = open_log(node="node-a")
    b = open_log(node="node-b")

    async def main():
        async with a.subscribe(types="call.*") as sub, trio.open_nursery() as nursery:
            async def later():
                await trio.sleep(0.05)
                await b.append({"type": "call.incoming", "call": "from-b", "caller": "+1"})
            nursery.start_soon(later)
            with trio.fail_after(30):
                e = await sub.__anext__()
        return e

    e = trio.run(main)
    assert (e.node, e.call, e.seq) == ("node-b", "from-b", 1)


def test_subscribe_checks_arguments(open_log):
    log = open_log()
    with pytest.raises(ValueError, match="types"):
        log.subscribe(types=["call.?"])
    with pytest.raises(ValueError, match="after"):
        log.subscribe(after=-5)


def test_a_closed_log_refuses_subscriptions(store_url):
    log = EventLog(store_url, node="x")
    log.close()
    with pytest.raises(StoreClosedError):
        log.subscribe()
