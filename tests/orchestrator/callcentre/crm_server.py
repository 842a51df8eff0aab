"""A small CRM for the lookup tests: Python's own HTTP server on 127.0.0.1 in a thread.

GET /customer?number=N     -> {"name": ..., "vip": ..., "account": ...} (404 for an unknown number)
POST /customer             -> the same, the number in a JSON body
POST /rpc                  -> JSON-RPC 2.0: crm.lookup_caller {number} -> the same object; an error otherwise
GET /slow                  -> answers after 3 s
GET /broken                -> 500
GET /text                  -> 200 with a body that is not JSON
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

CUSTOMERS = {
    "caller": {"name": "Ada Lovelace", "vip": True, "account": "AC-1815", "tier": "gold"},
    "5550100": {"name": "Charles Babbage", "vip": False, "account": "AC-1791", "tier": "basic"},
}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, None))
        url = urlsplit(self.path)
        if url.path == "/customer":
            number = parse_qs(url.query).get("number", [""])[0]
            found = CUSTOMERS.get(number)
            self._send(200 if found else 404, json.dumps(found or {"error": "unknown"}).encode())
        elif url.path == "/slow":
            time.sleep(3)
            self._send(200, b"{}")
        elif url.path == "/broken":
            self._send(500, b"{}")
        elif url.path == "/text":
            self._send(200, b"hello", "text/plain")
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
        self.server.requests.append(("POST", self.path, body))
        if self.path == "/customer":
            found = CUSTOMERS.get(str(body.get("number")))
            self._send(200 if found else 404, json.dumps(found or {}).encode())
        elif self.path == "/rpc":
            if body.get("method") == "crm.lookup_caller":
                found = CUSTOMERS.get(str(body["params"].get("number")))
                answer = {"jsonrpc": "2.0", "id": body["id"], "result": found} if found else \
                    {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32004, "message": "unknown caller"}}
            else:
                answer = {"jsonrpc": "2.0", "id": body.get("id"), "error": {"code": -32601, "message": "no method"}}
            self._send(200, json.dumps(answer).encode())
        else:
            self._send(404, b"{}")


class CrmServer:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def requests(self) -> list:
        return self.httpd.requests

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
