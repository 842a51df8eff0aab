"""The CRM client of the IVR's lookup node: HTTP/1.1 on Trio with h11, JSON in and out.

Why h11 and not httpx: h11 is already a dependency (the HTTP listener's
WebSocket upgrade uses it), it is sans-IO (DESIGN rule 3: this module is the
thin Trio driver around it), and a lookup needs one request per connection,
nothing more. ``httpx`` would add httpx, httpcore and anyio for the same.

Two kinds of request, matching :class:`orchestrator.ivr.Lookup`:

* ``http``: ``GET url?param=value...`` (or ``POST url`` with the params as a
  JSON object when ``http_method="POST"``); the answer must be a JSON object;
* ``jsonrpc``: ``POST endpoint`` with ``{"jsonrpc": "2.0", "method": ...,
  "params": {...}, "id": n}`` (JSON-RPC 2.0); the ``result`` must be an object.

Errors (refused connection, a non-2xx status, a body that is not a JSON
object, a JSON-RPC error) raise :class:`LookupError_` with the reason. There
is no timeout parameter (STYLE: callers bound the wait with
``trio.move_on_after``; the IVR runner uses the node's ``timeout``).
"""

from __future__ import annotations

import itertools
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11
import trio

__all__ = ["CrmClient", "CrmConfig", "CrmLookupError"]

_MAX_BODY = 1 << 20


class CrmLookupError(Exception):
    """A lookup that did not give a JSON object (the reason is the message)."""


@dataclass(frozen=True, kw_only=True)
class CrmConfig:
    """Where lookups go. ``jsonrpc_url``: the endpoint of ``method:`` lookups (None: they fail).
    ``http_method``: GET (params in the query string) or POST (params as a JSON body) for
    ``url:`` lookups. ``headers``: sent with every request (e.g. an API key)."""

    jsonrpc_url: str | None = None
    http_method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    user_agent: str = "Hotline-IVR"

    def __post_init__(self) -> None:
        if self.http_method not in ("GET", "POST"):
            raise ValueError(f"http_method: must be GET or POST, got {self.http_method!r}")
        if self.jsonrpc_url is not None:
            _target(self.jsonrpc_url)
        object.__setattr__(self, "headers", dict(self.headers))


def _target(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url: must be an http:// or https:// URL, got {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class CrmClient:
    """Sends lookups (see the module docstring). ``statistics()`` counts them."""

    def __init__(self, config: CrmConfig | None = None) -> None:
        if config is not None and not isinstance(config, CrmConfig):
            raise ValueError("config: must be a CrmConfig")
        self.config = config or CrmConfig()
        self._ids = itertools.count(1)
        self.requests = 0
        self.failures = 0

    async def lookup(self, kind: str, target: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One lookup; returns the JSON object (``result`` for JSON-RPC)."""
        self.requests += 1
        try:
            if kind == "jsonrpc":
                url = self.config.jsonrpc_url
                if url is None:
                    raise CrmLookupError("no CRM JSON-RPC endpoint configured")
                rid = next(self._ids)
                body = {"jsonrpc": "2.0", "method": target, "params": _jsonable(params), "id": rid}
                answer = await self.request("POST", url, body)
                if "error" in answer:
                    raise CrmLookupError(f"JSON-RPC error: {answer['error']!r}")
                result = answer.get("result")
                if not isinstance(result, dict):
                    raise CrmLookupError("JSON-RPC result is not an object")
                return result
            if kind != "http":
                raise CrmLookupError(f"unknown lookup kind {kind!r}")
            if self.config.http_method == "GET":
                query = urlencode({k: "" if v is None else v for k, v in _jsonable(params).items()})
                url = target + (("&" if "?" in target else "?") + query if query else "")
                return await self.request("GET", url, None)
            return await self.request("POST", target, _jsonable(params))
        except BaseException:
            self.failures += 1
            raise

    async def request(self, method: str, url: str, body: Any) -> dict[str, Any]:
        """One HTTP/1.1 exchange on a new connection; the answer must be a JSON object."""
        try:
            scheme, host, port, path = _target(url)
        except ValueError as exc:
            raise CrmLookupError(str(exc)) from None
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = [("Host", host if port in (80, 443) else f"{host}:{port}"),
                   ("User-Agent", self.config.user_agent), ("Accept", "application/json"),
                   ("Connection", "close")]
        headers += list(self.config.headers.items())
        if body is not None:
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        try:
            if scheme == "https":
                stream: trio.abc.Stream = await trio.open_ssl_over_tcp_stream(host, port,
                                                                              ssl_context=ssl.create_default_context())
            else:
                stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise CrmLookupError(f"cannot connect to {host}:{port}: {exc}") from None
        conn = h11.Connection(our_role=h11.CLIENT)
        try:
            async with stream:
                data = conn.send(h11.Request(method=method, target=path, headers=headers))
                if payload:
                    data += conn.send(h11.Data(data=payload))
                data += conn.send(h11.EndOfMessage())
                await stream.send_all(data)
                status, chunks = await self._read(conn, stream)
        except (OSError, trio.BrokenResourceError, h11.ProtocolError) as exc:
            raise CrmLookupError(f"HTTP exchange with {host}:{port} failed: {exc}") from None
        if not 200 <= status < 300:
            raise CrmLookupError(f"HTTP status {status}")
        try:
            answer = json.loads(b"".join(chunks))
        except ValueError:
            raise CrmLookupError("the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise CrmLookupError("the answer is not a JSON object")
        return answer

    @staticmethod
    async def _read(conn: h11.Connection, stream: trio.abc.Stream) -> tuple[int, list[bytes]]:
        status = 0
        chunks: list[bytes] = []
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > _MAX_BODY:
                    raise CrmLookupError("the answer is larger than 1 MiB")
                chunks.append(bytes(event.data))
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return status, chunks

    def statistics(self) -> dict[str, int]:
        return {"requests": self.requests, "failures": self.failures}
