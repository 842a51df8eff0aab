"""JSON-RPC over the WebSocket at /rpc, driven by websocket-client (a client the team did not write)."""

from __future__ import annotations

import json

import pytest
import websocket

from orchestrator.control import EventHub
from orchestrator.http.server import HttpLimits
from tests.orchestrator.control.control_fakes import CallCentre, LiveServer


@pytest.fixture
def live(tmp_path):
    cc = CallCentre(tmp_path)
    server = LiveServer(cc, limits=HttpLimits(max_ws_message=4096)).start()
    yield server
    server.stop()


def connect(live, token=None):
    headers = [f"Authorization: Bearer {token}"] if token else []
    return websocket.create_connection(f"ws://127.0.0.1:{live.port}/rpc", header=headers, timeout=10)


def rpc(ws, method, params=None, rid=1):
    req = {"jsonrpc": "2.0", "method": method, "id": rid}
    if params is not None:
        req["params"] = params
    ws.send(json.dumps(req))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("id") == rid:
            return msg


def test_bearer_token_on_the_upgrade_logs_in(live):
    ws = connect(live, live.centre.token["supervisor"])
    assert rpc(ws, "auth.whoami")["result"] == {"principal": "sue", "role": "supervisor", "agent": None}
    ws.close()


def test_browsers_log_in_with_a_message(live):
    ws = connect(live)
    assert rpc(ws, "queue.list")["error"]["code"] == -32001
    assert rpc(ws, "auth.login", {"token": live.centre.token["viewer"]})["result"]["role"] == "viewer"
    assert [q["queue"] for q in rpc(ws, "queue.list")["result"]] == ["support", "sales"]
    ws.close()


def test_a_wrong_bearer_token_is_refused_at_the_upgrade(live):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        connect(live, "wrong-token-000000000000000000")
    assert info.value.status_code == 401


def test_batches_and_event_notifications(live):
    cc = live.centre
    ws = connect(live, cc.token["admin"])
    ws.send(json.dumps([{"jsonrpc": "2.0", "method": "events.subscribe", "params": {"topics": ["agent.*"]}, "id": 1},
                        {"jsonrpc": "2.0", "method": "system.ping"},
                        {"jsonrpc": "2.0", "method": "agent.get", "params": ["nobody"], "id": 2}]))
    answers = json.loads(ws.recv())
    assert [a["id"] for a in answers] == [1, 2] and answers[1]["error"]["code"] == -32004
    live.run(cc.login_all, "9004")
    notes = [json.loads(ws.recv()) for _ in range(2)]
    assert [(n["method"], n["params"]["agent"], n["params"]["state"]) for n in notes] == [
        ("agent.state", "9004", "unregistered"), ("agent.state", "9004", "available")]
    ws.close()


def test_fragmented_messages_and_ping(live):
    ws = connect(live, live.centre.token["admin"])
    text = json.dumps({"jsonrpc": "2.0", "method": "auth.whoami", "id": 9})
    ws.send_frame(websocket.ABNF.create_frame(text[:10], websocket.ABNF.OPCODE_TEXT, fin=0))
    ws.send_frame(websocket.ABNF.create_frame(text[10:20], websocket.ABNF.OPCODE_CONT, fin=0))
    ws.send_frame(websocket.ABNF.create_frame(text[20:], websocket.ABNF.OPCODE_CONT, fin=1))
    assert json.loads(ws.recv())["result"]["principal"] == "root"
    ws.ping("are you there")
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"are you there"
    ws.close()


def close_code(ws) -> int:
    while True:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big")


def test_binary_and_oversized_messages_close_the_connection(live):
    ws = connect(live, live.centre.token["admin"])
    ws.send_binary(b'{"jsonrpc": "2.0"}')
    assert close_code(ws) == 1003
    ws = connect(live, live.centre.token["admin"])
    ws.send(json.dumps({"jsonrpc": "2.0", "method": "system.ping", "params": ["x" * 5000], "id": 1}))
    assert close_code(ws) == 1009


def test_a_websocket_subscriber_that_stops_reading_is_dropped(tmp_path):
    cc = CallCentre(tmp_path, hub=EventHub(capacity=8))
    with LiveServer(cc) as live:
        stuck = connect(live, cc.token["crm"])
        assert rpc(stuck, "events.subscribe", {"topics": ["*"]})["result"]
        blob = "y" * 16384

        def burst():
            for i in range(300):
                cc.hub.publish({"type": "call.blob", "n": i, "blob": blob})
            return cc.hub.statistics()

        stats = live.run(burst)       # returns at once: nobody waits for the stuck reader
        assert stats.slow_consumers_closed == 1 and stats.subscribers == 0
        received = 0
        try:
            while True:
                msg = stuck.recv()
                if not msg:
                    break
                received += 1
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            pass
        assert received < 300
