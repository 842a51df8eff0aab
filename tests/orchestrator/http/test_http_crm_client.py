"""Acceptance: a JSON-RPC client the team did not write (websocket-client + plain json) drives
originate, answer, transfer and hangup and receives the screen pop; and the example CRM
integration in examples/ runs against the listener."""

from __future__ import annotations

import importlib.util
import io
import json
import threading
import time
from pathlib import Path

import websocket

from tests.orchestrator.control.control_fakes import CallCentre, LiveServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


class Client:
    """Plain JSON over websocket-client: requests wait for their id; notifications are kept."""

    def __init__(self, port: int, *, bearer: str | None = None, login: str | None = None) -> None:
        headers = [f"Authorization: Bearer {bearer}"] if bearer else []
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/rpc", header=headers, timeout=10)
        self.rid = 0
        self.events: list[dict] = []
        if login:
            self.call("auth.login", {"token": login})

    def call(self, method, params=None):
        self.rid += 1
        self.ws.send(json.dumps({"jsonrpc": "2.0", "method": method, "params": params or {}, "id": self.rid}))
        while True:
            msg = json.loads(self.ws.recv())
            if "id" not in msg:
                self.events.append(msg)
            elif msg["id"] == self.rid:
                return msg

    def wait_for(self, method: str) -> dict:
        for i, e in enumerate(self.events):
            if e["method"] == method:
                return self.events.pop(i)["params"]
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg["params"]
            if "id" not in msg:
                self.events.append(msg)


def test_originate_answer_transfer_hangup_and_the_screen_pop(tmp_path):
    cc = CallCentre(tmp_path)
    with LiveServer(cc) as live:
        live.run(cc.login_all, "9001")
        crm = Client(live.port, login=cc.token["crm"])
        desk = Client(live.port, bearer=cc.token["agent"])      # agent 9001's desktop
        assert crm.call("events.subscribe", {"topics": ["call.*"]})["result"] == {"topics": ["call.*"]}
        assert desk.call("events.subscribe", {"topics": ["call.offered", "call.ended"]})["result"]

        made = crm.call("call.originate", {"from": "+441632960001", "to": "2000", "queue": "support",
                                           "data": {"customer": "C-1001", "name": "Ada Lovelace"}})["result"]
        call_id = made["call"]
        pop = desk.wait_for("call.offered")
        assert (pop["call"], pop["caller"], pop["queue"], pop["agent"]) == (call_id, "+441632960001", "support",
                                                                             "9001")
        assert pop["data"] == {"customer": "C-1001", "name": "Ada Lovelace"}

        assert desk.call("call.answer", {"call": call_id})["result"]["state"] == "connected"
        answered = crm.wait_for("call.answered")
        assert (answered["call"], answered["agent"]) == (call_id, "9001")
        # the desktop cannot touch a call that is not its own; the CRM can
        out = crm.call("call.transfer", {"call": call_id, "to": "2001", "mode": "blind"})
        assert out["result"] == {"call": call_id, "state": "transferred", "to": "2001", "mode": "blind"}
        moved = crm.wait_for("call.transferred")
        assert (moved["call"], moved["to"], moved["mode"]) == (call_id, "2001", "blind")
        assert desk.wait_for("call.ended")["call"] == call_id

        second = crm.call("call.originate", {"from": "+441632960003", "to": "2000", "queue": "support"})["result"]
        assert desk.wait_for("call.offered")["call"] == second["call"]
        desk.call("call.answer", [second["call"]])
        assert crm.call("call.hold", {"call": second["call"]})["result"]["state"] == "held"
        assert crm.call("call.hangup", {"call": second["call"], "reason": "customer done"})["result"]["state"] == \
            "ended"
        ended = crm.wait_for("call.ended")
        while ended["call"] != second["call"]:
            ended = crm.wait_for("call.ended")
        assert ended["agent"] == "9001" and ended["hold"] >= 0
        assert crm.call("call.hangup", {"call": second["call"]})["error"]["code"] == -32004
        crm.ws.close()
        desk.ws.close()


def load_example():
    spec = importlib.util.spec_from_file_location("crm_integration", EXAMPLES / "crm_integration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_crm_integration(tmp_path):
    example = load_example()
    customers = json.loads((EXAMPLES / "crm_customers.json").read_text())
    cc = CallCentre(tmp_path)
    with LiveServer(cc) as live:
        rpc = example.JsonRpc(f"ws://127.0.0.1:{live.port}/rpc", cc.token["crm"])
        out = io.StringIO()
        integration = example.CrmIntegration(rpc, customers, out=out)
        worker = threading.Thread(target=integration.run, kwargs={"max_transfers": 1})
        worker.start()
        deadline = time.monotonic() + 10
        while not cc.hub.subscriptions and time.monotonic() < deadline:
            time.sleep(0.01)
        # Babbage calls while no agent is free: the CRM recognises him and attaches his record
        call_id = live.run(lambda: cc.calls.originate("+441632960002", "2000", queue="support"))["call"]
        while "crm" not in cc.calls.calls[call_id]["data"] and time.monotonic() < deadline:
            time.sleep(0.01)
        live.run(cc.login_all, "9002")                         # an agent frees up: offer, screen pop
        while not integration.pops and time.monotonic() < deadline:
            time.sleep(0.01)
        live.run(cc.calls.answer, call_id)                     # the agent answers; the CRM routes it on
        worker.join(10)
        rpc.close()
    assert not worker.is_alive()
    assert integration.pops == [{"call": call_id, "agent": "9002", "queue": "support", "caller": "+441632960002",
                                 "customer": customers["+441632960002"], "ivr": None}]
    assert integration.transfers == [{"call": call_id, "state": "transferred", "to": "2001", "mode": "blind"}]
    assert cc.calls.calls[call_id]["state"] == "ended"
    assert out.getvalue().splitlines() == [
        "[crm] subscribed to call.*",
        f"[crm] {call_id}: caller +441632960002 is Charles Babbage (C-1002)",
        "[pop] agent 9002: Charles Babbage (C-1002, standard) on +441632960002 in support",
        f"[transfer] {call_id} -> 2001: account managed by sales",
    ]
    entries = [(e.principal, e.method, e.result) for e in cc.audit.entries]
    assert ("crm", "call.set_data", "ok") in entries and ("crm", "call.transfer", "ok") in entries
