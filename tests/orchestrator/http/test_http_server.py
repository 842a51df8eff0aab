"""The HTTP listener with raw bytes on real sockets: routes, static files, limits, /metrics, /healthz,
JSON-RPC over POST."""

from __future__ import annotations

import json
import os

import h11
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.control.telemetry import CallCentreMetrics
from orchestrator.http.prometheus import Registry
from orchestrator.http.server import WALLBOARD_DIR, HealthChecks, HttpLimits, HttpServer, StaticFiles
from tests.orchestrator.control.control_fakes import CallCentre


async def request(port, raw: bytes, *, read_all=True):
    """Send raw bytes; return the parsed responses (status, headers dict, body) until the server closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(raw)
    conn = h11.Connection(h11.CLIENT)
    # h11 reads responses once it has "sent" a request; HEAD tells it there is no body to read
    shadow = "HEAD" if raw.startswith(b"HEAD ") else "GET"
    conn.send(h11.Request(method=shadow, target="/", headers=[("host", "x")]))
    conn.send(h11.EndOfMessage())
    out, cur, body = [], None, b""
    with trio.fail_after(10):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.SEND_BODY:
                    break
                continue
            if isinstance(event, h11.Response):
                cur = (event.status_code, {k.decode(): v.decode() for k, v in event.headers})
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                out.append((*cur, body))
                body = b""
                if not read_all or conn.their_state is h11.MUST_CLOSE:
                    break
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    break
                conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
                conn.send(h11.EndOfMessage())
            elif isinstance(event, h11.ConnectionClosed):
                break
    await stream.aclose()
    return out


def get(path: str, *, method="GET", headers=(), close=True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def serve(http: HttpServer, test):
    async def main():
        async with trio.open_nursery() as nursery:
            port = await nursery.start(http.serve, "127.0.0.1", 0)
            await test(port)
            nursery.cancel_scope.cancel()
    trio.run(main)


def test_wallboard_files_with_types_etags_and_security_headers():
    http = HttpServer()

    async def test(port):
        (status, headers, body), = await request(port, get("/"))
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
        assert body == (WALLBOARD_DIR / "index.html").read_bytes()
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        (status, headers, body), = await request(port, get("/wallboard.js"))
        assert status == 200 and headers["content-type"] == "text/javascript; charset=utf-8"
        assert body == (WALLBOARD_DIR / "wallboard.js").read_bytes()
        etag = headers["etag"]
        (status, _, body), = await request(port, get("/wallboard.js", headers=[f"If-None-Match: {etag}"]))
        assert (status, body) == (304, b"")
        (status, headers, body), = await request(port, get("/wallboard.css", method="HEAD"))
        assert status == 200 and body == b"" and int(headers["content-length"]) == \
            len((WALLBOARD_DIR / "wallboard.css").read_bytes())

    serve(http, test)


TRAVERSALS = ["/../pyproject.toml", "/..%2f..%2fpyproject.toml", "/%2e%2e/%2e%2e/setup.py", "//etc/passwd",
              "/wallboard.js/../index.html", "/./index.html", "/index.html%00.js", "/.hidden", "/INDEX.HTML",
              "/%2Fetc%2Fpasswd", "/\\..\\setup.py", "/static/../index.html"]


def test_no_directory_traversal():
    http = HttpServer()

    async def test(port):
        for path in TRAVERSALS:
            responses = await request(port, get(path))
            assert [r[0] for r in responses] in ([404], [400]), path
        (status, _, body), = await request(port, get("/wallboard.js?x=/../../etc/passwd"))
        assert status == 200 and body == (WALLBOARD_DIR / "wallboard.js").read_bytes()  # the query is not the path

    serve(http, test)


def test_static_files_skip_symlinks_subdirectories_and_unknown_types(tmp_path):
    (tmp_path / "index.html").write_text("<p>hi</p>")
    (tmp_path / "notes.md").write_text("secret")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.js").write_text("1")
    os.symlink("/etc/hostname", tmp_path / "link.txt")
    static = StaticFiles(tmp_path)
    assert sorted(static.files) == ["/", "/index.html"]


def test_methods_unknown_paths_and_rpc_without_upgrade():
    http = HttpServer()

    async def test(port):
        assert (await request(port, get("/nope")))[0][0] == 404
        (status, headers, _), = await request(port, get("/", method="DELETE"))
        assert status == 405 and headers["allow"] == "GET, HEAD"
        (status, headers, _), = await request(port, get("/rpc"))
        assert status == 426 and headers["upgrade"] == "websocket"
        (status, _, _), = await request(port, get("/rpc", method="PUT"))
        assert status == 405

    serve(http, test)


def test_keep_alive_serves_several_requests_on_one_connection():
    http = HttpServer()

    async def test(port):
        raw = get("/wallboard.css", close=False) + get("/healthz", close=False) + get("/nope")
        assert [r[0] for r in await request(port, raw)] == [200, 200, 404]

    serve(http, test)


def test_limits_header_size_body_size_and_bad_requests():
    http = HttpServer(limits=HttpLimits(max_header_bytes=2048, max_body=1000))

    async def test(port):
        (status, _, _), = await request(port, get("/", headers=["X-Big: " + "a" * 4000]))
        assert status == 431
        (status, _, _), = await request(port, b"GARBAGE\r\n\r\n")
        assert status == 400
        (status, _, _), = await request(port, get("/rpc", method="POST", headers=["Content-Length: 5000"]))
        assert status == 413
        chunked = get("/rpc", method="POST", headers=["Transfer-Encoding: chunked"]) + \
            b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
        (status, _, _), = await request(port, chunked)
        assert status == 413
        (status, _, _), = await request(port, get("/", headers=["Content-Length: 3"]) + b"abc")
        assert status == 400

    serve(http, test)


def test_slow_clients_get_408_and_idle_connections_are_closed():
    http = HttpServer(limits=HttpLimits(request_timeout=0.3))

    async def test(port):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")       # and then nothing (slowloris)
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 408 ")
        idle = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(10):
            assert await idle.receive_some(10) == b""                          # closed, nothing said

    serve(http, test)


def test_connection_limit():
    http = HttpServer(limits=HttpLimits(max_connections=2, request_timeout=5))

    async def test(port):
        held = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
        await trio.sleep(0.1)
        (status, headers, _), = await request(port, get("/"))
        assert status == 503 and headers["retry-after"] == "5"
        for s in held:
            await s.aclose()

    serve(http, test)


def test_healthz():
    health = HealthChecks()
    state = {"acd": True}
    health.add("acd", lambda: state["acd"])
    health.add("store", lambda: 1 / 0, required=False)
    http = HttpServer(health=health)

    async def test(port):
        (status, headers, body), = await request(port, get("/healthz"))
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(body) == {"status": "ok", "checks": {
            "acd": {"ok": True, "required": True},
            "store": {"ok": False, "required": False, "error": "ZeroDivisionError: division by zero"}}}
        state["acd"] = False
        (status, _, body), = await request(port, get("/healthz"))
        assert status == 503 and json.loads(body)["status"] == "unavailable"

    serve(http, test)
    with pytest.raises(ValueError, match="exists"):
        health.add("acd", lambda: True)


def test_metrics_after_a_call_load_agree_with_the_acd(tmp_path):
    registry = Registry()
    cc = CallCentre(tmp_path, metrics=registry)
    CallCentreMetrics(registry, cc.hub, queues=cc.binding.list_queues, agents=cc.binding.list_agents)
    http = HttpServer(rpc=cc.server, registry=registry)
    cc.login_all("9001", "9002", "9003")
    calls = [cc.calls.originate(f"+44{i}", "2000", queue="support" if i % 3 else "sales")["call"] for i in range(8)]
    for c in calls[:2]:
        cc.calls.answer(c)
    cc.clock.advance(42)
    cc.calls.hangup(calls[-1])                       # a waiting caller gives up

    async def test(port):
        body = json.dumps({"jsonrpc": "2.0", "method": "queue.list", "id": 1}).encode()
        post = get("/rpc", method="POST", headers=[f"Authorization: Bearer {cc.token['viewer']}",
                                                   f"Content-Length: {len(body)}"]) + body
        (status, _, _), = await request(port, post)
        assert status == 200
        (status, headers, text), = await request(port, get("/metrics"))
        assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        return text.decode()

    texts = []
    serve(http, lambda port: _collect(texts, test(port)))
    samples = {}
    for fam in text_string_to_metric_families(texts[0]):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    queued = {q: sum(1 for e in cc.events if e.type == "call.queued" and e.queue == q) for q in ("support", "sales")}
    assert samples[("hotline_calls_total", (("queue", "support"),))] == queued["support"] == 5
    assert samples[("hotline_calls_total", (("queue", "sales"),))] == queued["sales"] == 3
    assert samples[("hotline_calls_answered_total", (("queue", "support"),))] + \
        samples.get(("hotline_calls_answered_total", (("queue", "sales"),)), 0) == 2
    for q in ("support", "sales"):
        snap = cc.acd.queue_snapshot(q, cc.clock())
        assert samples[("hotline_queue_waiting", (("queue", q),))] == snap.waiting
        assert samples[("hotline_queue_longest_wait_seconds", (("queue", q),))] == snap.longest_wait
        for state, n in snap.agents_by_state.items():
            assert samples[("hotline_queue_agents", (("queue", q), ("state", state)))] == n
    states = [cc.acd.agent_snapshot(a).state for a in cc.acd.agents()]
    for state in set(states):
        assert samples[("hotline_agents", (("state", state),))] == states.count(state)
    assert samples[("hotline_rpc_requests_total", (("code", "0"), ("method", "queue.list")))] == 1
    assert samples[("hotline_rpc_request_duration_seconds_count", (("method", "queue.list"),))] == 1
    assert samples[("hotline_http_requests_total", (("route", "/rpc"), ("status", "200")))] == 1


async def _collect(out, coro):
    out.append(await coro)


def test_json_rpc_over_post(tmp_path):
    cc = CallCentre(tmp_path)
    http = HttpServer(rpc=cc.server)

    def post(body: bytes, token: str | None):
        headers = [f"Content-Length: {len(body)}", "Content-Type: application/json"]
        if token:
            headers.append(f"Authorization: Bearer {token}")
        return get("/rpc", method="POST", headers=headers) + body

    async def test(port):
        one = json.dumps({"jsonrpc": "2.0", "method": "auth.whoami", "id": 1}).encode()
        (status, headers, body), = await request(port, post(one, cc.token["crm"]))
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(body)["result"]["principal"] == "crm"
        (status, headers, _), = await request(port, post(one, None))
        assert status == 401 and headers["www-authenticate"].startswith("Bearer")
        (status, _, _), = await request(port, post(one, "wrong-token-0000000000000000"))
        assert status == 401
        note = json.dumps([{"jsonrpc": "2.0", "method": "system.ping"}]).encode()
        (status, _, body), = await request(port, post(note, cc.token["crm"]))
        assert (status, body) == (204, b"")
        (status, _, body), = await request(port, post(b"[", cc.token["crm"]))
        assert status == 200 and json.loads(body)["error"]["code"] == -32700

    serve(http, test)
    assert not cc.server.sessions                   # each POST's session is closed


def test_a_bug_in_one_connection_does_not_take_the_listener_down(caplog):
    http = HttpServer()
    route = http._route

    async def buggy(conn, stream, req, deadline):
        if req.target == b"/boom":
            raise RuntimeError("a bug")
        return await route(conn, stream, req, deadline)

    http._route = buggy

    async def test(port):
        assert await request(port, get("/boom")) == []            # that connection just closes
        assert (await request(port, get("/healthz")))[0][0] == 200

    serve(http, test)
    assert "a bug" in caplog.text
