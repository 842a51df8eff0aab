"""``hotline ctl``: one JSON-RPC call, or a stream of events, from the command line.

::

    hotline ctl [--socket PATH | --url URL] [--token T | --token-file F] METHOD [JSON]
    hotline ctl [--socket PATH | --url URL] [--token T] --watch TOPIC...
    hotline ctl --hash-token [TOKEN]

* One call prints the JSON result and exits 0; a JSON-RPC error prints
  ``hotline ctl: error CODE: message`` (and its data) on stderr and exits 1;
  so does a connection failure. Usage errors exit 2.
* ``--watch`` subscribes to the topic patterns (``call.*``, ``agent.state``)
  and prints each event as one JSON object a line (``{"type": ..., ...}``)
  until interrupted or the daemon goes away (exit 1).
* The default transport is the control socket ``./var/hotline.sock``;
  ``--url ws://HOST:PORT/rpc`` (or ``http://HOST:PORT``) uses the WebSocket.
* The token comes from ``--token``, else ``$HOTLINE_TOKEN``, else the token
  file (``--token-file``, default ``./var/admin.token`` when it exists).
* ``--hash-token`` prints the SHA-256 digest to put in ``[[auth.token]]``.

The clients here are deliberately small and blocking (plain sockets, and
wsproto for the WebSocket): a command-line call needs no event loop.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

__all__ = ["CtlError", "RpcClient", "main"]

DEFAULT_SOCKET = "./var/hotline.sock"
DEFAULT_TOKEN_FILE = "./var/admin.token"


class CtlError(Exception):
    """A failure to report: ``code`` is the JSON-RPC error code (None: not a JSON-RPC error)."""

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class _LineTransport:
    def __init__(self, path: str, timeout: float | None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise CtlError(f"cannot connect to the control socket {path}: {exc.strerror or exc}") from None
        self.buf = bytearray()

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("utf-8") + b"\n")

    def recv(self) -> str:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                if line.strip():
                    return line.decode("utf-8")
                continue
            data = self.sock.recv(65536)
            if not data:
                raise CtlError("the daemon closed the connection")
            self.buf += data

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def close(self) -> None:
        self.sock.close()


class _WsTransport:
    def __init__(self, url: str, token: str | None, timeout: float | None) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto import events as ev

        self.ev = ev
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "http"):
            raise CtlError(f"--url: use ws://HOST:PORT/rpc or http://HOST:PORT (TLS is for a proxy), got {url!r}")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        path = parts.path if parts.path not in ("", "/") else "/rpc"
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise CtlError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        self.ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self.sock.sendall(self.ws.send(ev.Request(host=f"{host}:{port}", target=path, extra_headers=headers)))
        self.ready: list[str] = []
        self.parts: list[str] = []
        accepted = False
        while not accepted:
            for event in self._events():
                if isinstance(event, ev.AcceptConnection):
                    accepted = True
                elif isinstance(event, ev.RejectConnection):
                    raise CtlError(f"the WebSocket upgrade was refused: HTTP {event.status_code}"
                                   + (" (bad token)" if event.status_code == 401 else ""))

    def _events(self):
        data = self.sock.recv(65536)
        if not data:
            raise CtlError("the daemon closed the connection")
        self.ws.receive_data(data)
        out = []
        for event in self.ws.events():
            if isinstance(event, self.ev.TextMessage):
                self.parts.append(event.data)
                if event.message_finished:
                    self.ready.append("".join(self.parts))
                    self.parts.clear()
            elif isinstance(event, self.ev.Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, self.ev.CloseConnection):
                raise CtlError(f"the daemon closed the WebSocket ({event.code} {event.reason})".rstrip())
            else:
                out.append(event)
        return out

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(self.ev.Message(data=text)))

    def recv(self) -> str:
        while not self.ready:
            self._events()
        return self.ready.pop(0)

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def close(self) -> None:
        from wsproto.utilities import LocalProtocolError

        with contextlib.suppress(OSError, LocalProtocolError):  # closing politely is best effort
            self.sock.sendall(self.ws.send(self.ev.CloseConnection(code=1000)))
        self.sock.close()


class RpcClient:
    """A minimal blocking JSON-RPC client over the control socket or the WebSocket."""

    def __init__(self, *, socket_path: str | None = None, url: str | None = None, token: str | None = None,
                 timeout: float | None = 30.0) -> None:
        if url is not None:
            self.transport: Any = _WsTransport(url, token, timeout)
            self.logged_in = token is not None
        else:
            self.transport = _LineTransport(socket_path or DEFAULT_SOCKET, timeout)
            self.logged_in = False
        self.token = token
        self._ids = itertools.count(1)
        self.notifications: list[dict] = []

    def call(self, method: str, params: Any = None) -> Any:
        """One request; returns its result or raises CtlError with the error's code and message."""
        if not self.logged_in and self.token is not None and method != "auth.login":
            self.logged_in = True
            self.call("auth.login", {"token": self.token})
        rid = next(self._ids)
        request = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params is not None:
            request["params"] = params
        self.transport.send(json.dumps(request))
        while True:
            msg = json.loads(self.transport.recv())
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                self.notifications.append(msg)
                continue
            if not isinstance(msg, dict) or msg.get("id") != rid:
                if isinstance(msg, dict) and msg.get("id") is None and "error" in msg:
                    err = msg["error"]
                    raise CtlError(err.get("message", "error"), code=err.get("code"), data=err.get("data"))
                continue
            if "error" in msg:
                err = msg["error"]
                raise CtlError(err.get("message", "error"), code=err.get("code"), data=err.get("data"))
            return msg.get("result")

    def next_notification(self) -> dict:
        if self.notifications:
            return self.notifications.pop(0)
        while True:
            msg = json.loads(self.transport.recv())
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                return msg

    def settimeout(self, timeout: float | None) -> None:
        self.transport.settimeout(timeout)

    def close(self) -> None:
        self.transport.close()


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return args.token
    env = os.environ.get("HOTLINE_TOKEN")
    if env:
        return env
    path = Path(args.token_file or DEFAULT_TOKEN_FILE)
    if args.token_file or path.is_file():
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CtlError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline ctl", description="Call the daemon's JSON-RPC control API.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="PATH", help=f"control socket (default {DEFAULT_SOCKET})")
    where.add_argument("--url", metavar="URL", help="WebSocket URL, e.g. ws://127.0.0.1:8080/rpc")
    p.add_argument("--token", help="bearer token (default: $HOTLINE_TOKEN, then the token file)")
    p.add_argument("--token-file", metavar="FILE", help=f"file holding the token (default {DEFAULT_TOKEN_FILE})")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer (default 30)")
    p.add_argument("--watch", nargs="+", metavar="TOPIC", help="stream events matching these topic patterns")
    p.add_argument("--hash-token", nargs="?", const="-", metavar="TOKEN",
                   help="print the SHA-256 digest of TOKEN (or of stdin) for [[auth.token]] and exit")
    p.add_argument("method", nargs="?", help="the method, e.g. queue.stats")
    p.add_argument("params", nargs="?", help="its params as JSON (an object or an array)")
    return p


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.hash_token is not None:
        from .auth import hash_token

        token = sys.stdin.readline().strip() if args.hash_token == "-" else args.hash_token
        try:
            print(hash_token(token), file=out)
        except ValueError as exc:
            print(f"hotline ctl: {exc}", file=err)
            return 2
        return 0
    if args.watch and args.method:
        print("hotline ctl: give either METHOD [JSON] or --watch TOPIC..., not both", file=err)
        return 2
    if not args.watch and not args.method:
        parser.print_usage(err)
        print("hotline ctl: a METHOD (or --watch TOPIC...) is required", file=err)
        return 2
    params = None
    if args.params is not None:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            print(f"hotline ctl: JSON: {exc.msg} at column {exc.colno}", file=err)
            return 2
        if not isinstance(params, (dict, list)):
            print("hotline ctl: JSON: params must be an object or an array", file=err)
            return 2
    client = None
    try:
        client = RpcClient(socket_path=args.socket, url=args.url, token=_token(args), timeout=args.timeout)
        if args.watch:
            client.call("events.subscribe", {"topics": args.watch})
            client.settimeout(None)
            while True:
                msg = client.next_notification()
                params_ = msg.get("params") if isinstance(msg.get("params"), dict) else {"params": msg.get("params")}
                print(json.dumps({"type": msg["method"], **{k: v for k, v in params_.items() if k != "type"}},
                                 ensure_ascii=False, separators=(",", ":")), file=out, flush=True)
        result = client.call(args.method, params)
        print(json.dumps(result, indent=2, ensure_ascii=False), file=out)
        return 0
    except CtlError as exc:
        code = f" {exc.code}" if exc.code is not None else ""
        print(f"hotline ctl: error{code}: {exc}", file=err)
        if exc.data is not None:
            print(json.dumps(exc.data, indent=2, ensure_ascii=False), file=err)
        return 1
    except TimeoutError:
        print(f"hotline ctl: error: no answer within {args.timeout:g} s", file=err)
        return 1
    except BrokenPipeError:  # `hotline ctl --watch ... | head`
        return 0
    except OSError as exc:
        print(f"hotline ctl: error: {exc.strerror or exc}", file=err)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if client is not None:
            client.close()


if __name__ == "__main__":
    sys.exit(main())
