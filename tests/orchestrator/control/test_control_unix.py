"""The control socket end to end on Trio: framing, auth, batches, events, limits, slow consumers."""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest
import trio
import trio.testing

from orchestrator.control import EventHub
from orchestrator.control.unix import UnixControlServer
from tests.orchestrator.control.control_fakes import CallCentre


@pytest.fixture
def sock_dir():
    # A short directory: a Unix socket path must fit in 108 bytes.
    d = tempfile.mkdtemp(prefix="hl-")
    yield Path(d)
    for p in Path(d).iterdir():
        p.unlink()
    os.rmdir(d)


class LineClient:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def send(self, obj) -> None:
        text = obj if isinstance(obj, (str, bytes)) else json.dumps(obj)
        await self.stream.send_all((text.encode() if isinstance(text, str) else text) + b"\n")

    async def recv(self):
        while b"\n" not in self.buf:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    async def call(self, method, params=None, rid=1):
        req = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params is not None:
            req["params"] = params
        await self.send(req)
        while True:
            msg = await self.recv()
            if msg is None or msg.get("id") == rid:
                return msg


async def started(nursery, cc, path, **kw):
    server = UnixControlServer(cc.server, path, **kw)
    await nursery.start(server.serve)
    return server


def test_requests_batches_and_events_over_the_socket(tmp_path, sock_dir):
    cc = CallCentre(tmp_path)
    path = sock_dir / "hotline.sock"

    async def main():
        async with trio.open_nursery() as nursery:
            await started(nursery, cc, path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_ISSOCK(path.stat().st_mode)
            client = LineClient(await trio.open_unix_socket(str(path)))
            assert (await client.call("system.ping"))["error"]["code"] == -32001
            assert (await client.call("auth.login", {"token": cc.token["supervisor"]}))["result"]["role"] == \
                "supervisor"
            # a batch on one line; a notification in it gets nothing
            await client.send([{"jsonrpc": "2.0", "method": "queue.list", "id": "a"},
                               {"jsonrpc": "2.0", "method": "events.subscribe", "params": {"topics": ["agent.*"]}},
                               {"jsonrpc": "2.0", "method": "nope", "id": "b"}])
            answers = await client.recv()
            assert [a["id"] for a in answers] == ["a", "b"] and answers[1]["error"]["code"] == -32601
            assert [q["queue"] for q in answers[0]["result"]] == ["support", "sales"]
            # requests split across writes, and two on one write
            await client.stream.send_all(b'{"jsonrpc": "2.0", "method": "system.ve')
            await trio.sleep(0.01)
            await client.stream.send_all(b'rsion", "id": 5}\n{"jsonrpc": "2.0", "method": "auth.whoami", "id": 6}\n')
            assert (await client.recv())["id"] == 5 and (await client.recv())["result"]["principal"] == "sue"
            # events arrive as notifications
            cc.login_all("9001")
            notes = [await client.recv(), await client.recv()]
            assert [(n["method"], n["params"]["state"]) for n in notes] == [("agent.state", "unregistered"),
                                                                          ("agent.state", "available")]
            assert "id" not in notes[0]
            await client.stream.aclose()
            await trio.testing.wait_all_tasks_blocked()
            assert cc.hub.statistics().subscribers == 0 and not cc.server.sessions
            nursery.cancel_scope.cancel()
        assert not path.exists()          # removed on shutdown

    trio.run(main)


def test_parse_errors_keep_the_connection_but_an_oversized_line_closes_it(tmp_path, sock_dir):
    cc = CallCentre(tmp_path)
    path = sock_dir / "h.sock"

    async def main():
        async with trio.open_nursery() as nursery:
            await started(nursery, cc, path, max_line=1000)
            client = LineClient(await trio.open_unix_socket(str(path)))
            await client.send("{not json")
            assert (await client.recv())["error"]["code"] == -32700
            assert (await client.call("auth.login", [cc.token["admin"]]))["result"]["role"] == "admin"
            await client.send("x" * 2000)
            out = await client.recv()
            assert out["error"]["code"] == -32600 and "too large" in out["error"]["message"] and out["id"] is None
            assert await client.recv() is None        # closed by the server
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_peer_credentials_are_in_the_audit_log(tmp_path, sock_dir):
    cc = CallCentre(tmp_path)
    cc.login_all("9001")
    path = sock_dir / "h.sock"

    async def main():
        async with trio.open_nursery() as nursery:
            await started(nursery, cc, path)
            client = LineClient(await trio.open_unix_socket(str(path)))
            await client.call("auth.login", {"token": cc.token["admin"]})
            await client.call("agent.set_state", {"agent": "9001", "state": "break"})
            nursery.cancel_scope.cancel()

    trio.run(main)
    entry = cc.audit.entries[-1]
    assert entry.transport == "unix" and entry.peer == f"unix:uid={os.getuid()},pid={os.getpid()}"


def test_stale_socket_is_replaced_and_a_live_one_refused(tmp_path, sock_dir):
    cc = CallCentre(tmp_path)
    path = sock_dir / "h.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()                           # the file stays, nobody listens: a killed daemon's socket
    (sock_dir / "file").write_text("x")

    async def main():
        async with trio.open_nursery() as nursery:
            await started(nursery, cc, path)
            with pytest.raises(ValueError, match="another process is serving"):
                await UnixControlServer(cc.server, path).serve()
            with pytest.raises(ValueError, match="exists and is not a socket"):
                await UnixControlServer(cc.server, sock_dir / "file").serve()
            nursery.cancel_scope.cancel()

    trio.run(main)
    with pytest.raises(ValueError, match="108 bytes"):
        UnixControlServer(cc.server, "/tmp/" + "x" * 120)


def test_a_stuck_reader_is_disconnected_and_never_stalls_the_others(tmp_path, sock_dir):
    hub = EventHub(capacity=16)
    cc = CallCentre(tmp_path, hub=hub)
    path = sock_dir / "h.sock"
    payload = "x" * 8192

    async def main():
        async with trio.open_nursery() as nursery:
            await started(nursery, cc, path)
            stuck = LineClient(await trio.open_unix_socket(str(path)))
            good = LineClient(await trio.open_unix_socket(str(path)))
            for c in (stuck, good):
                await c.call("auth.login", {"token": cc.token["admin"]})
                await c.call("events.subscribe", {"topics": ["call.*"]})
            received = []

            async def read_good():
                while len(received) < 400:
                    received.append(await good.recv())

            nursery.start_soon(read_good)
            for i in range(400):               # ~3 MB: more than the socket buffers hold
                hub.publish({"type": "call.blob", "n": i, "blob": payload})
                await trio.lowlevel.checkpoint()            # publishing never waits for a subscriber
            with trio.fail_after(10):
                while len(received) < 400:
                    await trio.sleep(0.01)
            assert [m["params"]["n"] for m in received] == list(range(400))
            assert hub.statistics().slow_consumers_closed == 1
            # the stuck client finds its stream ends after what the kernel had buffered
            with trio.fail_after(10):
                got = 0
                while await stuck.recv() is not None:
                    got += 1
            assert 0 < got < 400
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_pipelined_requests_and_a_half_closed_client_get_every_answer_in_order(tmp_path, sock_dir):
    cc = CallCentre(tmp_path)
    path = sock_dir / "h.sock"

    async def main():
        async with trio.open_nursery() as nursery:
            await started(nursery, cc, path)
            client = LineClient(await trio.open_unix_socket(str(path)))
            lines = [json.dumps({"jsonrpc": "2.0", "method": "auth.login", "params": [cc.token["viewer"]], "id": 0})]
            lines += [json.dumps({"jsonrpc": "2.0", "method": "system.ping", "id": i}) for i in range(1, 1001)]
            await client.stream.send_all(("\n".join(lines) + "\n").encode())
            await client.stream.send_eof()         # nothing more to say, still listening
            ids = []
            while (msg := await client.recv()) is not None:
                ids.append(msg["id"])
            assert ids == list(range(1001))
            nursery.cancel_scope.cancel()

    trio.run(main)
