"""Control plane: JSON-RPC requests per second (Unix socket, WebSocket) and event delivery
latency to 100 subscribers during a 200-call load.

The server runs in a child process (its own interpreter, so the client's work does not
share its GIL); the client is in this process. Both clocks are CLOCK_MONOTONIC
(time.perf_counter on Linux), so a latency stamped by one and read by the other is exact.

* Requests per second: each round pipelines 500 requests on one connection and reads the
  500 answers. Ours: the whole stack (auth'd session, method table, param schema,
  dispatch, audit-free read methods) answering ``system.ping`` and ``agent.get`` (the real
  ACD). Baseline, same transport code: the raw framing - a server whose ``handle`` only
  does json.loads and json.dumps, no auth, no validation, no dispatch.
* Event delivery: 100 subscribers (Unix socket connections, role crm, topic ``*``) while
  the server publishes the events of 200 concurrent calls (10 events a call: incoming,
  queued, offered, answered, ended, wrap-up ended and four agent.state; plus queue.stats
  each second for 2 queues). Calls last 20 s (a 180 s handle time compressed 9x), so 10
  calls a second start and end: about 100 events/s, 10,000 notifications/s. Each event
  carries its publish time; every subscriber records now - that for every event. p50,
  p99 and max over all deliveries are in extra_info and bench/results/control-events.json,
  for the hub and for a raw fan-out (the same lines written to the 100 sockets one after
  the other, no hub, no queues, no filtering) measured in the same run. The benchmark's
  own time is the fixed 6 s scenario, so compare the latencies, not that time.
* Burst: the same 100 subscribers receive all 2,000 events of 200 calls published at
  once; the time until the last subscriber has the last event, hub vs raw fan-out.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import socket
import tempfile
import time
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parent / "results"
PIPELINE = 500
SUBSCRIBERS = 100
CALLS = 200
CALL_SECONDS = 20.0
SCENARIO_SECONDS = 6.0
TOKEN = "bench-token-for-the-control-plane-0123456789"


# ---------------------------------------------------------------------------------------------- servers (child)

def _make_server(raw: bool):
    from orchestrator.acd import Acd, AgentConfig, QueueConfig
    from orchestrator.control import AcdBinding, EventHub, Principal, RpcServer, Services, TokenStore
    from orchestrator.control.protocol import dumps

    class RawFraming(RpcServer):
        """The baseline: framing only (parse, answer), no auth, no schema, no table, no audit."""

        async def handle(self, session, data):
            msg = json.loads(data)
            return dumps({"jsonrpc": "2.0", "result": {"pong": True}, "id": msg.get("id")})

    acd = Acd([QueueConfig(name="support")], [AgentConfig(id=f"{9000 + i}", queues={"support": 0})
                                             for i in range(50)])
    binding = AcdBinding(acd, clock=time.monotonic)
    tokens = TokenStore()
    tokens.add(Principal("bench", "admin"), token=TOKEN)
    cls = RawFraming if raw else RpcServer
    return cls(tokens=tokens, services=Services(agents=binding, queues=binding),
               hub=EventHub(capacity=4096))


def _rpc_server(kind: str, raw: bool, where: str, ready) -> None:
    import trio

    from orchestrator.control.unix import UnixControlServer
    from orchestrator.http.server import HttpServer

    server = _make_server(raw)

    async def main():
        async with trio.open_nursery() as nursery:
            if kind == "unix":
                await nursery.start(UnixControlServer(server, where).serve)
                ready.send(where)
            else:
                port = await nursery.start(HttpServer(rpc=server).serve, "127.0.0.1", 0)
                ready.send(port)

    trio.run(main)


def _start(target, *args):
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, child), daemon=True)
    proc.start()
    if not parent.poll(30):
        proc.kill()
        raise RuntimeError("the benchmark server did not start")
    proc._bench_pipe = parent
    return proc, parent.recv()


# ---------------------------------------------------------------------------------------------- requests/s

def _requests(method: str, params) -> list[bytes]:
    extra = {} if params is None else {"params": params}
    return [json.dumps({"jsonrpc": "2.0", "method": method, **extra, "id": i}).encode() for i in range(PIPELINE)]


class _UnixClient:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buf = b""
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "method": "auth.login", "params": [TOKEN], "id": -1})
                          .encode() + b"\n")
        self.read(1)

    def read(self, n: int) -> list[bytes]:
        lines: list[bytes] = []
        while len(lines) < n:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.buf += data
            *done, self.buf = self.buf.split(b"\n")
            lines += done
        return lines

    def round(self, reqs: list[bytes]) -> list[bytes]:
        self.sock.sendall(b"\n".join(reqs) + b"\n")
        return self.read(len(reqs))


class _WsClient:
    def __init__(self, port: int) -> None:
        import websocket

        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/rpc", header=[f"Authorization: Bearer {TOKEN}"])

    def round(self, reqs: list[bytes]) -> list[bytes]:
        for r in reqs:
            self.ws.send(r.decode())
        return [self.ws.recv().encode() for _ in reqs]


def _check(answers: list[bytes], expect_key: str) -> None:
    assert len(answers) == PIPELINE
    first, last = json.loads(answers[0]), json.loads(answers[-1])
    assert first["id"] == 0 and last["id"] == PIPELINE - 1
    assert expect_key in last["result"], last


CASES = [
    ("unix", "system.ping", None, True, "pong"),
    ("unix", "system.ping", None, False, "pong"),
    ("unix", "agent.get", {"agent": "9007"}, False, "state"),
    ("websocket", "system.ping", None, True, "pong"),
    ("websocket", "system.ping", None, False, "pong"),
    ("websocket", "agent.get", {"agent": "9007"}, False, "state"),
]


@pytest.mark.parametrize("kind, method, params, raw, key", CASES,
                         ids=[f"{k}-{'raw-framing' if r else m}" for k, m, _, r, _ in CASES])
def test_requests_per_second(benchmark, kind, method, params, raw, key):
    benchmark.group = f"control-rpc-{kind} ({PIPELINE} pipelined requests)"
    if raw:
        benchmark.extra_info["role"] = "baseline"
    d = tempfile.mkdtemp(prefix="hlb-")
    proc, where = _start(_rpc_server, kind, raw, os.path.join(d, "b.sock"))
    try:
        client = _UnixClient(where) if kind == "unix" else _WsClient(where)
        reqs = _requests(method, params)
        answers = benchmark.pedantic(client.round, args=(reqs,), rounds=15, iterations=1, warmup_rounds=2)
        _check(answers, key)
        benchmark.extra_info["requests_per_second"] = round(PIPELINE / benchmark.stats.stats.median)
        benchmark.extra_info["method"] = "raw framing" if raw else method
    finally:
        proc.kill()
        proc.join()


# ---------------------------------------------------------------------------------------------- events

def _call_events(rng: random.Random, start: float, n: int, call_seconds: float, rate: float) -> list:
    """(time offset, event) for n calls: the first CALLS already in progress, then `rate` new calls a second."""
    out = []
    for i in range(n):
        if i < CALLS:
            begin = start - rng.uniform(0, call_seconds)          # in progress when the run starts
        else:
            begin = start + (i - CALLS) / rate
        call, agent, queue = f"c{i}", f"{9000 + i % 250}", ("support", "sales")[i % 2]
        wait = rng.uniform(0, 4)
        talk = call_seconds - wait - 3
        steps = [
            (0.0, {"type": "call.incoming", "call": call, "caller": f"+4420{i:07d}", "to": "2000"}),
            (0.0, {"type": "call.queued", "call": call, "queue": queue, "priority": 0, "caller": f"+4420{i:07d}",
                   "position": 3, "ewt": 12.5, "skills": [], "overflow_from": None}),
            (wait, {"type": "call.offered", "call": call, "queue": queue, "agent": agent, "device": f"dev-{agent}",
                    "offer": i, "caller": f"+4420{i:07d}", "ring_all": False, "callback": False,
                    "data": {"customer": f"C-{i}", "language": "en"}}),
            (wait, {"type": "agent.state", "agent": agent, "state": "ringing", "previous": "available",
                    "reason": None, "device": f"dev-{agent}", "call": call, "queue": queue}),
            (wait + 2, {"type": "call.answered", "call": call, "queue": queue, "agent": agent, "offer": i,
                        "wait": wait + 2, "callback": False}),
            (wait + 2, {"type": "agent.state", "agent": agent, "state": "on_call", "previous": "ringing",
                        "reason": None, "device": f"dev-{agent}", "call": call, "queue": queue}),
            (wait + 2 + talk, {"type": "call.ended", "call": call, "queue": queue, "agent": agent, "talk": talk,
                               "hold": 0.0}),
            (wait + 2 + talk, {"type": "agent.state", "agent": agent, "state": "wrap_up", "previous": "on_call",
                               "reason": None, "device": f"dev-{agent}", "call": call, "queue": queue}),
            (wait + 3 + talk, {"type": "call.wrapup_ended", "call": call, "queue": queue, "agent": agent,
                               "wrapup": 1.0}),
            (wait + 3 + talk, {"type": "agent.state", "agent": agent, "state": "available",
                               "previous": "wrap_up", "reason": None, "device": f"dev-{agent}", "call": None,
                               "queue": None}),
        ]
        out += [(begin + dt, e) for dt, e in steps]
    return out


def _schedule(paced: bool) -> list:
    rng = random.Random(7)
    rate = CALLS / CALL_SECONDS
    if paced:
        events = _call_events(rng, 0.0, CALLS + int(rate * SCENARIO_SECONDS), CALL_SECONDS, rate)
        events += [(t + 0.5, {"type": "queue.stats", "queue": q, "waiting": 3, "longest_wait": 4.0,
                              "agents_by_state": {"available": 10, "on_call": 200}, "service_level": 0.93})
                   for t in range(int(SCENARIO_SECONDS)) for q in ("support", "sales")]
        events = [(t, e) for t, e in events if 0.0 <= t < SCENARIO_SECONDS]
    else:
        events = [(0.0, e) for _, e in _call_events(rng, 0.0, CALLS, CALL_SECONDS, rate)]
    events.sort(key=lambda te: te[0])
    return events


def _event_server(raw: bool, paced: bool, path: str, pipe) -> None:
    """Serves 100 subscribers; each "go" read from ``pipe`` publishes the schedule once, then bench.done."""
    import trio

    from orchestrator.control.unix import UnixControlServer

    schedule = _schedule(paced)
    server = _make_server(raw=False)
    hub = server.hub

    async def publish_all(send):
        # Each event is stamped with the time it is due, so a publisher that falls behind (a raw
        # fan-out blocked on a full socket, a busy loop) shows in the latency instead of hiding it.
        # Events due at the same moment (a call's offer and its agent.state) are published
        # together, as the daemon publishes the outputs of one ACD input, then the loop runs.
        t0 = time.perf_counter()
        groups: dict[float, list] = {}
        for offset, event in schedule:
            groups.setdefault(offset if paced else 0.0, []).append(event)
        for offset, events in groups.items():
            due = t0 + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await trio.sleep(delay)
            await send([{**e, "sent": due} for e in events])
        await send([{"type": "bench.done", "sent": time.perf_counter()}])

    async def rounds(send):
        while await trio.to_thread.run_sync(pipe.recv) == "go":
            await publish_all(send)

    async def hub_main():
        async with trio.open_nursery() as nursery:
            await nursery.start(UnixControlServer(server, path).serve)
            pipe.send(path)

            async def send(events):
                for event in events:
                    hub.publish(event)
                await trio.lowlevel.checkpoint()          # the connections' writers get their turn

            await rounds(send)
            nursery.cancel_scope.cancel()

    async def raw_main():
        from orchestrator.control.protocol import dumps, notification

        streams = []
        sock = trio.socket.socket(socket.AF_UNIX)
        await sock.bind(path)
        sock.listen(128)
        listener = trio.SocketListener(sock)
        pipe.send(path)
        while len(streams) < SUBSCRIBERS:
            stream = await listener.accept()
            buf = b""
            while buf.count(b"\n") < 2:                # auth.login, events.subscribe
                buf += await stream.receive_some(4096)
            await stream.send_all(b'{"jsonrpc":"2.0","result":{},"id":1}\n{"jsonrpc":"2.0","result":{},"id":2}\n')
            streams.append(stream)

        async def send(events):
            data = "".join(dumps(notification(e["type"], e)) + "\n" for e in events).encode()
            for s in streams:
                await s.send_all(data)

        await rounds(send)

    trio.run(raw_main if raw else hub_main)


class _Subscribers:
    """100 subscribers on a Trio loop in a thread; each round ends when all have bench.done."""

    def __init__(self, path: str) -> None:
        import threading

        self.path = path
        self.latencies: list[float] = []
        self.counts: list[int] = []
        self.connected = 0
        self.done = 0
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _note(self, **changes) -> None:
        with self.cond:
            for k, v in changes.items():
                setattr(self, k, getattr(self, k) + v)
            self.cond.notify_all()

    def _run(self) -> None:
        import trio

        async def subscriber():
            stream = await trio.open_unix_socket(self.path)
            await stream.send_all(b"\n".join(json.dumps(r).encode() for r in (
                {"jsonrpc": "2.0", "method": "auth.login", "params": [TOKEN], "id": 1},
                {"jsonrpc": "2.0", "method": "events.subscribe", "params": {"topics": ["*"]}, "id": 2})) + b"\n")
            buf, got, answered = b"", 0, 0
            while True:
                data = await stream.receive_some(1 << 16)
                if not data:
                    return
                buf += data
                *lines, buf = buf.split(b"\n")
                now = time.perf_counter()
                for line in lines:
                    msg = json.loads(line)
                    if "id" in msg:
                        answered += 1
                        if answered == 2:
                            self._note(connected=1)
                        continue
                    if msg["method"] == "bench.done":
                        with self.cond:
                            self.counts.append(got)
                        got = 0
                        self._note(done=1)
                    else:
                        self.latencies.append(now - msg["params"]["sent"])
                        got += 1

        async def main():
            async with trio.open_nursery() as nursery:
                for _ in range(SUBSCRIBERS):
                    nursery.start_soon(subscriber)

        try:
            trio.run(main)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting benchmark
            self.error = exc
            self._note()

    def wait(self, what: str, n: int, timeout: float = 120) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: getattr(self, what) >= n or self.error is not None, timeout)
        if self.error is not None:
            raise self.error
        assert ok, f"timed out waiting for {n} {what}"


class _EventBench:
    def __init__(self, raw: bool, paced: bool) -> None:
        d = tempfile.mkdtemp(prefix="hlb-")
        self.proc, path = _start(_event_server, raw, paced, os.path.join(d, "e.sock"))
        self.pipe = self.proc._bench_pipe
        self.subs = _Subscribers(path)
        self.subs.wait("connected", SUBSCRIBERS)
        self.rounds = 0

    def round(self) -> None:
        """Publish the schedule once; return when every subscriber has had all of it."""
        self.rounds += 1
        self.pipe.send("go")
        self.subs.wait("done", SUBSCRIBERS * self.rounds)

    def close(self) -> None:
        self.pipe.send("stop")
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


def _percentiles(xs: list[float]) -> dict:
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3
    return {"p50_ms": round(pick(0.5), 3), "p99_ms": round(pick(0.99), 3), "max_ms": round(xs[-1] * 1e3, 3),
            "deliveries": len(xs)}


def _paced(raw: bool) -> dict:
    bench = _EventBench(raw, paced=True)
    try:
        bench.round()
    finally:
        bench.close()
    n_events = len(_schedule(paced=True))
    assert bench.subs.counts == [n_events] * SUBSCRIBERS, "every subscriber gets every event"
    return _percentiles(bench.subs.latencies)


def test_event_latency_p99_100_subscribers_200_calls(benchmark):
    benchmark.group = "control-events (100 subscribers, 200-call load, paced 6 s)"
    results = {"raw-fanout": _paced(raw=True)}
    results["hub"] = hub = benchmark.pedantic(_paced, kwargs={"raw": False}, rounds=1, iterations=1)
    n_events = len(_schedule(paced=True))
    assert hub["deliveries"] == results["raw-fanout"]["deliveries"] == n_events * SUBSCRIBERS
    benchmark.extra_info.update(events=n_events, subscribers=SUBSCRIBERS, calls=CALLS,
                                events_per_second=round(n_events / SCENARIO_SECONDS),
                                hub=hub, raw_fanout=results["raw-fanout"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "control-events.json").write_text(json.dumps({
        "what": "event delivery latency, due time -> parsed by the subscriber, 100 Unix-socket subscribers, "
                "200 concurrent calls (20 s each), paced over 6 s",
        "events": n_events, "subscribers": SUBSCRIBERS, "results": results}, indent=2))


@pytest.mark.parametrize("raw", [True, False], ids=["raw-fanout", "hub"])
def test_event_burst_200_calls_to_100_subscribers(benchmark, raw):
    benchmark.group = "control-events-burst (2,000 events of 200 calls -> 100 subscribers)"
    if raw:
        benchmark.extra_info["role"] = "baseline"
    bench = _EventBench(raw, paced=False)
    try:
        benchmark.pedantic(bench.round, rounds=5, iterations=1)
    finally:
        bench.close()
    n_events = len(_schedule(paced=False))
    assert bench.subs.counts == [n_events] * (SUBSCRIBERS * 5)
    benchmark.extra_info.update(events=n_events, deliveries_per_second=round(
        n_events * SUBSCRIBERS / benchmark.stats.stats.median))
