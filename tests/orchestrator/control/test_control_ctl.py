"""``hotline ctl`` against a running control socket and WebSocket listener."""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from orchestrator.control import hash_token
from orchestrator.control.ctl import main
from tests.orchestrator.control.control_fakes import CallCentre, LiveServer


@pytest.fixture
def live(tmp_path):
    d = Path(tempfile.mkdtemp(prefix="hl-"))
    cc = CallCentre(tmp_path)
    cc.login_all("9001", "9002")
    server = LiveServer(cc, socket_path=d / "h.sock").start()
    server.sock = str(d / "h.sock")
    yield server
    server.stop()
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def ctl(*argv, env_token=None):
    out, err = io.StringIO(), io.StringIO()
    old = os.environ.pop("HOTLINE_TOKEN", None)
    if env_token:
        os.environ["HOTLINE_TOKEN"] = env_token
    try:
        rc = main(list(argv), stdout=out, stderr=err)
    finally:
        os.environ.pop("HOTLINE_TOKEN", None)
        if old is not None:
            os.environ["HOTLINE_TOKEN"] = old
    return rc, out.getvalue(), err.getvalue()


def test_one_call_over_the_socket_prints_the_result(live):
    cc = live.centre
    rc, out, err = ctl("--socket", live.sock, "--token", cc.token["admin"], "agent.get", '{"agent": "9002"}')
    assert (rc, err) == (0, "")
    assert json.loads(out) == live.run(lambda: cc.server.methods and cc.binding.get_agent("9002")) | {
        "since": cc.clock()}


def test_positional_params_and_no_params(live):
    cc = live.centre
    rc, out, _ = ctl("--socket", live.sock, "--token", cc.token["supervisor"], "agent.set_state",
                     '["9001", "break", "training"]')
    assert rc == 0 and json.loads(out)["reason"] == "training"
    rc, out, _ = ctl("--socket", live.sock, "--token", cc.token["viewer"], "queue.list")
    assert rc == 0 and [q["queue"] for q in json.loads(out)] == ["support", "sales"]


def test_errors_exit_1_with_the_message(live):
    cc = live.centre
    rc, out, err = ctl("--socket", live.sock, "--token", cc.token["admin"], "queue.get", '{"queue": "nope"}')
    assert (rc, out) == (1, "") and err == "hotline ctl: error -32004: queue: no queue 'nope'\n"
    rc, _, err = ctl("--socket", live.sock, "--token", cc.token["viewer"], "ivr.reload")
    assert rc == 1 and err == "hotline ctl: error -32003: forbidden: role viewer may not call ivr.reload\n"
    rc, _, err = ctl("--socket", live.sock, "--token", "not-a-token-0000000000000", "system.ping")
    assert rc == 1 and err == "hotline ctl: error -32001: token: not a valid token\n"
    rc, _, err = ctl("--socket", live.sock + ".missing", "--token", "t", "system.ping")
    assert rc == 1 and err.startswith("hotline ctl: error: cannot connect to the control socket")


def test_error_data_is_printed(live):
    cc = live.centre
    (cc.flow_dir / "broken.yaml").write_text("start: nowhere\nnodes: {}\n")
    rc, _, err = ctl("--socket", live.sock, "--token", cc.token["admin"], "ivr.reload")
    assert rc == 1
    head, data = err.split("\n", 1)
    assert head.startswith("hotline ctl: error -32009: ivr: ") and "nothing was changed" in head
    assert any("broken.yaml" in p for p in json.loads(data)["problems"])


def test_over_the_websocket_with_a_bearer_token(live):
    cc = live.centre
    url = f"ws://127.0.0.1:{live.port}/rpc"
    rc, out, _ = ctl("--url", url, "--token", cc.token["crm"], "auth.whoami")
    assert rc == 0 and json.loads(out) == {"principal": "crm", "role": "crm", "agent": None}
    rc, out, _ = ctl("--url", live.url, "--token", cc.token["crm"], "queue.stats", '{"queue": "sales"}')
    assert rc == 0 and json.loads(out)["queue"] == "sales"
    rc, _, err = ctl("--url", url, "--token", "wrong-token-000000000000000", "system.ping")
    assert rc == 1 and err == "hotline ctl: error: the WebSocket upgrade was refused: HTTP 401 (bad token)\n"


def test_token_from_the_environment_or_a_file(live, tmp_path):
    cc = live.centre
    rc, out, _ = ctl("--socket", live.sock, "auth.whoami", env_token=cc.token["viewer"])
    assert rc == 0 and json.loads(out)["role"] == "viewer"
    f = tmp_path / "admin.token"
    f.write_text(cc.token["admin"] + "\n")
    rc, out, _ = ctl("--socket", live.sock, "--token-file", str(f), "auth.whoami")
    assert rc == 0 and json.loads(out)["role"] == "admin"
    rc, _, err = ctl("--socket", live.sock, "--token-file", str(tmp_path / "none"), "auth.whoami")
    assert rc == 1 and "cannot read the token file" in err


@pytest.mark.parametrize("argv, message", [
    ((), "a METHOD (or --watch TOPIC...) is required"),
    (("system.ping", "{oops"), "JSON: Expecting property name"),
    (("system.ping", "3"), "params must be an object or an array"),
    (("--watch", "call.*", "--", "system.ping"), "not both"),
])
def test_usage_errors_exit_2(argv, message):
    rc, _, err = ctl(*argv)
    assert rc == 2 and message in err


def test_hash_token():
    rc, out, _ = ctl("--hash-token", "abc")
    assert (rc, out) == (0, hash_token("abc") + "\n")


class Lines(io.TextIOBase):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.buf = ""
        self.changed = threading.Condition()

    def write(self, s: str) -> int:
        with self.changed:
            self.buf += s
            while "\n" in self.buf:
                line, self.buf = self.buf.split("\n", 1)
                self.lines.append(line)
            self.changed.notify_all()
        return len(s)

    def wait(self, n: int, timeout: float = 10) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.lines) >= n, timeout)
            return list(self.lines)


def test_watch_streams_events_one_json_object_a_line(tmp_path):
    d = Path(tempfile.mkdtemp(prefix="hl-"))
    cc = CallCentre(tmp_path)
    live = LiveServer(cc, socket_path=d / "h.sock").start()
    out, err = Lines(), io.StringIO()
    result = {}
    t = threading.Thread(target=lambda: result.update(rc=main(
        ["--socket", str(d / "h.sock"), "--token", cc.token["supervisor"], "--watch", "agent.*", "call.queued"],
        stdout=out, stderr=err)))
    t.start()
    deadline = time.monotonic() + 10
    while not cc.hub.subscriptions and time.monotonic() < deadline:
        time.sleep(0.01)
    live.run(cc.login_all, "9003")
    live.run(lambda: cc.hub.publish({"type": "queue.stats", "queue": "support"}))   # not watched
    live.run(lambda: cc.calls.originate("+4411", "2001", queue="sales"))
    lines = out.wait(4)
    live.stop()
    t.join(10)
    events = [json.loads(line) for line in lines]
    assert [(e["type"], e.get("state")) for e in events] == [
        ("agent.state", "unregistered"), ("agent.state", "available"), ("call.queued", None),
        ("agent.state", "ringing")]
    assert events[2]["queue"] == "sales" and events[2]["caller"] == "+4411"
    assert result["rc"] == 1 and "closed the connection" in err.getvalue()
    for p in d.iterdir():
        p.unlink()
    d.rmdir()
