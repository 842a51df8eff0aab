"""SIP over TCP and TLS on 127.0.0.1: framing by Content-Length across reads,
pipelining, CRLF keep-alive (RFC 5626 3.5.1), framing errors, idle timeout,
connection reuse (RFC 3261 18.2.2), and SIPS over TLS with a self-signed
certificate made by the openssl command line tool."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import trio
import trio.testing
from transport_harness import options, trio_test

from orchestrator.sip import Request, TimerConfig, parse_message, parse_uri
from orchestrator.transport import EndpointConfig, SipEndpoint, StreamTransport, TlsConfig, UdpTransport

FAST = TimerConfig(t1=0.05, t2=0.2)


async def start(nursery, transport, handler=None) -> SipEndpoint:
    endpoint = SipEndpoint([transport], config=EndpointConfig(rate_limit=None, timers=FAST))
    if handler is not None:
        endpoint.handler = handler
    await nursery.start(endpoint.run)
    return endpoint


async def read_messages(stream, count):
    """Read until ``count`` SIP messages (and CRLF pongs, returned as b"\\r\\n") arrived."""
    from orchestrator.sip import StreamReceiver
    from orchestrator.sip.framing import NEED_DATA

    framer = StreamReceiver()
    out, raw = [], b""
    while len(out) < count:
        data = await stream.receive_some(65536)
        assert data, "connection closed early"
        raw += data
        if raw == b"\r\n":  # a pong on its own
            out.append(b"\r\n")
            raw = b""
            continue
        framer.receive_data(data)
        while (event := framer.next_event()) is not NEED_DATA:
            out.append(event)
    return out


@trio_test
async def test_messages_split_across_reads_and_pipelined_are_framed_and_answered_in_order():
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            ep = await start(nursery, StreamTransport("127.0.0.1", 0))
            stream = await trio.open_tcp_stream("127.0.0.1", ep.local_address("TCP").port)
            one = options(1, transport="TCP", branch="z9hG4bKsplit", call_id="split")
            for i in range(0, len(one), 7):  # 7 octets at a time
                await stream.send_all(one[i:i + 7])
                await trio.sleep(0.001)
            (first,) = await read_messages(stream, 1)
            two = options(1, transport="TCP", branch="z9hG4bKp1", call_id="p1") + \
                options(1, transport="TCP", branch="z9hG4bKp2", call_id="p2")
            await stream.send_all(two)
            pipelined = await read_messages(stream, 2)
            await stream.aclose()
            nursery.cancel_scope.cancel()
    assert first.status_code == 200 and first.call_id == "split"
    assert [m.call_id for m in pipelined] == ["p1", "p2"]


@trio_test
async def test_crlf_ping_gets_a_crlf_pong():
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            transport = StreamTransport("127.0.0.1", 0)
            ep = await start(nursery, transport)
            stream = await trio.open_tcp_stream("127.0.0.1", ep.local_address("TCP").port)
            await stream.send_all(b"\r\n\r\n")
            assert await stream.receive_some(100) == b"\r\n"
            await stream.aclose()
            nursery.cancel_scope.cancel()
    assert transport.statistics().keepalives_answered == 1


@trio_test
async def test_a_framing_error_closes_the_connection_and_is_counted():
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            transport = StreamTransport("127.0.0.1", 0)
            ep = await start(nursery, transport)
            stream = await trio.open_tcp_stream("127.0.0.1", ep.local_address("TCP").port)
            no_length = options(1, transport="TCP").replace(b"Content-Length: 0\r\n", b"")
            await stream.send_all(no_length)  # Content-Length is mandatory on a stream (18.3)
            assert await stream.receive_some(100) == b""
            nursery.cancel_scope.cancel()
    stats = transport.statistics()
    assert stats.framing_errors == 1 and stats.connections_open == 0


def test_idle_connections_are_closed_after_idle_timeout():
    async def main():
        async with trio.open_nursery() as nursery:
            transport = StreamTransport("127.0.0.1", 0, idle_timeout=60)
            ep = await start(nursery, transport)
            stream = await trio.open_tcp_stream("127.0.0.1", ep.local_address("TCP").port)
            opened = trio.current_time()
            await stream.send_all(b"\r\n\r\n")
            assert await stream.receive_some(100) == b"\r\n"
            assert await stream.receive_some(100) == b""  # closed by the server when idle
            closed_after = trio.current_time() - opened
            nursery.cancel_scope.cancel()
            return closed_after, transport.statistics()

    closed_after, stats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert closed_after == pytest.approx(60, abs=0.5)
    assert stats.closed_idle == 1 and stats.connections_open == 0


def build(uri: str, n: int) -> Request:
    return Request("OPTIONS", uri, [("From", "<sip:a@127.0.0.1>;tag=x"), ("To", f"<{uri}>"),
                                    ("Call-ID", f"reuse-{n}"), ("CSeq", "1 OPTIONS")])


@trio_test
async def test_requests_to_one_address_reuse_one_connection_and_responses_come_back_on_it():
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server_transport = StreamTransport("127.0.0.1", 0)
            client_transport = StreamTransport("127.0.0.1", 0)
            server = await start(nursery, server_transport)
            client = await start(nursery, client_transport)
            target = server.local_address("TCP")
            finals = [await client.request(build(f"sip:x@127.0.0.1:{target.port};transport=tcp", n), target)
                      for n in range(3)]
            nursery.cancel_scope.cancel()
    assert [f.status_code for f in finals] == [200, 200, 200]
    assert client_transport.statistics().connected == 1
    assert server_transport.statistics().accepted == 1


# ---------------------------------------------------------------------------- TLS
@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command line tool not installed")
    d = tmp_path_factory.mktemp("tls")
    for name in ("server", "other"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(d / f"{name}.key"),
                        "-out", str(d / f"{name}.pem"), "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
    return d


@trio_test
async def test_sips_uri_goes_over_tls_with_a_verified_certificate(certificate):
    tls = TlsConfig(certificate=certificate / "server.pem", private_key=certificate / "server.key",
                    ca_file=certificate / "server.pem")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server_tls = StreamTransport("127.0.0.1", 0, tls=tls)
            server = await start(nursery, server_tls)
            client = SipEndpoint([UdpTransport("127.0.0.1", 0), StreamTransport("127.0.0.1", 0, tls=tls)],
                                 config=EndpointConfig(rate_limit=None, timers=FAST))
            await nursery.start(client.run)
            port = server.local_address("TLS").port
            uri = parse_uri(f"sips:probe@127.0.0.1:{port}")
            destination = client.destination_nowait(uri)
            assert destination.transport == "TLS"
            tx = client.request(build(str(uri), 1), destination)
            final = await tx
            nursery.cancel_scope.cancel()
    assert final.status_code == 200
    assert tx.request.top_via.transport == "TLS"
    assert str(client.contact("TLS")).startswith("<sips:")
    assert server_tls.statistics().accepted == 1 and server_tls.statistics().handshake_failures == 0


@trio_test
async def test_an_untrusted_certificate_fails_the_handshake_and_the_request_gets_503(certificate):
    server_tls = TlsConfig(certificate=certificate / "server.pem", private_key=certificate / "server.key")
    client_tls = TlsConfig(certificate=certificate / "other.pem", private_key=certificate / "other.key",
                           ca_file=certificate / "other.pem")  # trusts only "other", not the server
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server_transport = StreamTransport("127.0.0.1", 0, tls=server_tls)
            server = await start(nursery, server_transport)
            client_transport = StreamTransport("127.0.0.1", 0, tls=client_tls)
            client = await start(nursery, client_transport)
            port = server.local_address("TLS").port
            final = await client.request(build(f"sips:probe@127.0.0.1:{port}", 2),
                                          client.destination_nowait(parse_uri(f"sips:probe@127.0.0.1:{port}")))
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    assert final.status_code == 503
    assert client_transport.statistics().connect_failures == 1
    # With TLS 1.3 the server finishes its side of the handshake before the client rejects the
    # certificate, so the server sees a connection that closes before any SIP message.
    assert server_transport.statistics().messages_received == 0


def test_tls_config_validates(tmp_path):
    with pytest.raises(ValueError, match="ca_file"):
        TlsConfig(certificate=tmp_path / "c.pem", private_key=tmp_path / "k.pem",
                  require_client_certificate=True)
    config = TlsConfig(certificate=tmp_path / "missing.pem", private_key=tmp_path / "missing.key")
    with pytest.raises(ValueError, match="certificate"):
        StreamTransport(tls=config)


def test_parse_message_helper_is_consistent():
    raw = options(5060)
    assert parse_message(raw).call_id == "opt-1"
