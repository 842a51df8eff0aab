#!/usr/bin/env python3
"""Example CRM integration for Hotline: screen pop and a rule-based transfer.

It uses only the ``websocket-client`` package (``pip install websocket-client``)
and the standard library - nothing from Hotline - to show the JSON-RPC 2.0
API as any CRM would see it:

1. connect to the WebSocket at ``/rpc`` and log in (``auth.login`` with a
   token of role ``crm``);
2. subscribe to the call events (``events.subscribe {"topics": ["call.*"]}``);
3. on ``call.queued``: look the caller up in the CRM and attach the customer
   record to the call (``call.set_data``), so the agent's screen pop and the
   call record carry it;
4. on ``call.offered`` (the screen pop): open the customer's record for the
   agent the call is ringing - here, print it;
5. on ``call.answered``: if the customer's account is handled by another
   team (``route`` in the record), transfer the call there
   (``call.transfer``, blind).

Run it against the demo (``make demo`` prints the URL and writes the admin
token; a CRM should get its own ``crm`` token from ``[[auth.token]]``)::

    python examples/crm_integration.py --url ws://127.0.0.1:8080/rpc \\
        --token "$(cat var/admin.token)" --crm examples/crm_customers.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import Any, TextIO

import websocket  # websocket-client


class RpcError(Exception):
    def __init__(self, error: dict) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")


class JsonRpc:
    """JSON-RPC 2.0 over one WebSocket: calls wait for their answer; events are kept in order."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.call("auth.login", {"token": token})

    def call(self, method: str, params: dict | None = None) -> Any:
        rid = next(self.ids)
        self.ws.send(json.dumps({"jsonrpc": "2.0", "method": method, "params": params or {}, "id": rid}))
        while True:
            msg = json.loads(self.ws.recv())
            if "id" not in msg:          # a notification (an event) that arrived first
                self.events.append(msg)
            elif msg["id"] == rid:
                if "error" in msg:
                    raise RpcError(msg["error"])
                return msg["result"]

    def next_event(self) -> dict:
        if self.events:
            return self.events.pop(0)
        while True:
            msg = json.loads(self.ws.recv())
            if "id" not in msg:
                return msg

    def close(self) -> None:
        self.ws.close()


class CrmIntegration:
    def __init__(self, rpc: JsonRpc, customers: dict[str, dict], out: TextIO = sys.stdout) -> None:
        self.rpc = rpc
        self.customers = customers
        self.out = out
        self.pops: list[dict] = []
        self.transfers: list[dict] = []

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def on_queued(self, e: dict) -> None:
        record = self.customers.get(e.get("caller") or "")
        if record is not None:
            self.rpc.call("call.set_data", {"call": e["call"], "data": {"crm": record}})
            self.say(f"[crm] {e['call']}: caller {e['caller']} is {record['name']} ({record['customer']})")

    def on_offered(self, e: dict) -> None:
        record = (e.get("data") or {}).get("crm")
        pop = {"call": e["call"], "agent": e["agent"], "queue": e["queue"], "caller": e.get("caller"),
               "customer": record, "ivr": e.get("ivr")}
        self.pops.append(pop)
        who = f"{record['name']} ({record['customer']}, {record['tier']})" if record else "unknown caller"
        self.say(f"[pop] agent {e['agent']}: {who} on {e.get('caller')} in {e['queue']}")

    def on_answered(self, e: dict) -> None:
        call = self.rpc.call("call.get", {"call": e["call"]})
        record = (call.get("data") or {}).get("crm") or self.customers.get(call.get("caller") or "")
        if record and record.get("route"):
            result = self.rpc.call("call.transfer", {"call": e["call"], "to": record["route"], "mode": "blind"})
            self.transfers.append(result)
            self.say(f"[transfer] {e['call']} -> {record['route']}: {record.get('route_reason', '')}")

    def run(self, *, max_transfers: int | None = None, max_pops: int | None = None) -> None:
        self.rpc.call("events.subscribe", {"topics": ["call.*"]})
        self.say("[crm] subscribed to call.*")
        handlers = {"call.queued": self.on_queued, "call.offered": self.on_offered,
                    "call.answered": self.on_answered}
        while True:
            event = self.rpc.next_event()
            handler = handlers.get(event["method"])
            if handler is not None:
                try:
                    handler(event["params"])
                except RpcError as exc:  # the call may have ended meanwhile: note it and go on
                    self.say(f"[crm] {event['method']} {event['params'].get('call')}: {exc}")
            if max_transfers is not None and len(self.transfers) >= max_transfers:
                return
            if max_pops is not None and len(self.pops) >= max_pops:
                return


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="ws://127.0.0.1:8080/rpc")
    p.add_argument("--token", required=True)
    p.add_argument("--crm", required=True, help="JSON file: phone number -> customer record")
    p.add_argument("--max-transfers", type=int, help="exit after this many transfers")
    p.add_argument("--max-pops", type=int, help="exit after this many screen pops")
    args = p.parse_args(argv)
    with open(args.crm, encoding="utf-8") as f:
        customers = json.load(f)
    rpc = JsonRpc(args.url, args.token)
    try:
        CrmIntegration(rpc, customers).run(max_transfers=args.max_transfers, max_pops=args.max_pops)
    except KeyboardInterrupt:
        pass
    finally:
        rpc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
