"""The SIP endpoint over real UDP on 127.0.0.1: rport, OPTIONS, validation,
malformed input (RFC 4475 messages as the RFC ships them), client transactions
with provisional and final responses, timeouts and transport errors."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from transport_harness import UdpClient, options, rfc4475, trio_test

from orchestrator.sip import Address, Request, TimerConfig, make_response
from orchestrator.transport import (
    EndpointConfig,
    RateLimit,
    SipEndpoint,
    StreamTransport,
    TransportUnavailable,
    UdpTransport,
)

FAST = TimerConfig(t1=0.05, t2=0.2)


async def start(nursery, *, handler=None, config=None, tcp=False) -> SipEndpoint:
    transports = [UdpTransport("127.0.0.1", 0)] + ([StreamTransport("127.0.0.1", 0)] if tcp else [])
    endpoint = SipEndpoint(transports, config=config or EndpointConfig(rate_limit=None, timers=FAST,
                                                                       shed_queue_delay=None))
    if handler is not None:
        endpoint.handler = handler
    await nursery.start(endpoint.run)
    return endpoint


@trio_test
async def test_options_is_answered_200_with_allow_accept_to_the_source_port_rport():
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, UdpClient() as client:
            ep = await start(nursery)
            # The Via claims port 5999 with rport: the answer must come back to where it came from.
            await client.send(options(client.port, via_port=5999), ep.local_address())
            response = await client.receive()
            nursery.cancel_scope.cancel()
    assert response.status_code == 200
    via = response.top_via
    assert via.port == 5999 and via.param("rport") == str(client.port) and via.received == "127.0.0.1"
    assert "INVITE" in response.headers.get("Allow") and response.headers.get("Accept") == "application/sdp"
    assert "replaces" in response.headers.get("Supported")
    assert response.to.tag  # a UAS adds a To tag to a final response outside a dialog
    assert ep.statistics().options_answered == 1


@trio_test
async def test_requests_reach_the_handler_and_retransmissions_are_absorbed():
    seen = []

    def handler(incoming):
        seen.append(incoming.request.method)
        incoming.respond(486, to_tag="abc")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, UdpClient() as client:
            ep = await start(nursery, handler=handler)
            msg = options(client.port, method="INFO", call_id="i1")
            for _ in range(3):
                await client.send(msg, ep.local_address())
                response = await client.receive()
                assert response.status_code == 486
            nursery.cancel_scope.cancel()
    assert seen == ["INFO"]  # the transaction layer answered the two retransmissions itself
    assert ep.statistics().layer.retransmissions_absorbed == 2


@pytest.mark.parametrize("name,code", [("clerr", 400), ("scalar02", 400), ("insuf", 400), ("unkscm", 416),
                                       ("badvers", 505), ("bext01", 420), ("invut", 415)])
@trio_test
async def test_rfc4475_messages_get_the_rfc_answer_and_never_reach_the_handler(name, code):
    reached = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, UdpClient() as client:
            ep = await start(nursery, handler=reached.append)
            await client.send(rfc4475(name, client.port), ep.local_address())
            response = await client.receive()
            nursery.cancel_scope.cancel()
    assert response.status_code == code
    assert reached == []


@trio_test
async def test_garbage_and_malformed_responses_are_dropped_and_counted():
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, UdpClient() as client:
            ep = await start(nursery)
            target = ep.local_address()
            for junk in (b"\x00\x01\x02garbage", b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", b"\r\n\r\n",
                         b"SIP/2.0 200 OK\r\n" + options(client.port).split(b"\r\n", 1)[1]):
                await client.send(junk, target)
            await client.send(options(client.port), target)  # still alive and answering
            assert (await client.receive()).status_code == 200
            nursery.cancel_scope.cancel()
    stats = ep.statistics()
    assert stats.malformed_dropped == 3 and stats.keepalives_received == 1
    assert stats.handler_errors == 0


@trio_test
async def test_validation_rejects_unsupported_require_and_unmatched_cancel():
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, UdpClient() as client:
            ep = await start(nursery, handler=lambda incoming: pytest.fail("must not reach the handler"))
            await client.send(options(client.port, method="INVITE", extra="Require: 100rel\r\n"),
                              ep.local_address())
            r1 = await client.receive()
            await client.send(options(client.port, method="CANCEL", branch="z9hG4bKnothing"),
                              ep.local_address())
            r2 = await client.receive()
            nursery.cancel_scope.cancel()
    assert r1.status_code == 420 and r1.headers.get("Unsupported") == "100rel"
    assert r2.status_code == 481


@trio_test
async def test_a_failing_handler_answers_500_and_the_endpoint_keeps_going():
    def handler(incoming):
        raise RuntimeError("bug")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, UdpClient() as client:
            ep = await start(nursery, handler=handler)
            await client.send(options(client.port, method="INFO"), ep.local_address())
            assert (await client.receive()).status_code == 500
            await client.send(options(client.port, branch="z9hG4bKagain"), ep.local_address())
            assert (await client.receive()).status_code == 200
            nursery.cancel_scope.cancel()
    assert ep.statistics().handler_errors == 1


def build(method: str, uri: str) -> Request:
    return Request(method, uri, [("From", "<sip:a@127.0.0.1>;tag=x"), ("To", f"<{uri}>"),
                                 ("Call-ID", f"{method}-1"), ("CSeq", f"1 {method}"),
                                 ("Contact", "<sip:a@127.0.0.1>")])


@trio_test
async def test_client_transaction_yields_provisional_then_final_responses():
    async def ring_then_answer(incoming, nursery):
        incoming.respond(180, to_tag="t")
        await trio.sleep(0.05)
        incoming.respond(200, to_tag="t")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            uas = await start(nursery, handler=lambda i: nursery.start_soon(ring_then_answer, i, nursery))
            uac = await start(nursery)
            tx = uac.request(build("INVITE", "sip:b@127.0.0.1"), uas.local_address())
            codes = [r.status_code async for r in tx]
            final = await tx
            nursery.cancel_scope.cancel()
    assert codes == [100, 180, 200] and final.status_code == 200
    via = tx.request.top_via
    assert via.branch.startswith("z9hG4bK") and via.param("rport") == ""  # our Via asks for rport


def test_a_silent_destination_gives_a_synthetic_408_after_timer_b():
    async def main():
        async with trio.open_nursery() as nursery:
            uac = await start(nursery, config=EndpointConfig(rate_limit=None))  # T1 = 0.5 s
            silent = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
            await silent.bind(("127.0.0.1", 0))
            start_time = trio.current_time()
            nowhere = Address("127.0.0.1", silent.getsockname()[1])
            tx = uac.request(build("OPTIONS", "sip:b@127.0.0.1"), nowhere)
            final = await tx
            elapsed = trio.current_time() - start_time
            stats = uac.statistics()
            silent.close()
            nursery.cancel_scope.cancel()
            return final, elapsed, stats

    final, elapsed, stats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert final.status_code == 408
    assert elapsed == pytest.approx(32.0)  # Timer F = 64*T1 on the (simulated) clock
    assert stats.layer.retransmissions_sent == 10  # E: 0.5 1 2 4 4 4 4 4 4 4


@trio_test
async def test_an_unreachable_tcp_destination_gives_a_synthetic_503_and_unknown_transports_raise():
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            uac = await start(nursery, tcp=True)
            closed = trio.socket.socket()
            await closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
            closed.close()  # nothing listens there: connection refused
            final = await uac.request(build("OPTIONS", "sip:b@127.0.0.1"), Address("127.0.0.1", port, "TCP"))
            with pytest.raises(TransportUnavailable):
                uac.request(build("OPTIONS", "sip:b@127.0.0.1"), Address("127.0.0.1", 5, "TLS"))
            nursery.cancel_scope.cancel()
    assert final.status_code == 503


@trio_test
async def test_destination_rules_for_sip_and_sips_uris():
    from orchestrator.sip import parse_uri

    async with trio.open_nursery() as nursery:
        ep = await start(nursery, tcp=True)
        assert ep.destination_nowait(parse_uri("sip:a@10.1.2.3")) == Address("10.1.2.3", 5060, "UDP")
        assert ep.destination_nowait(parse_uri("sip:a@10.1.2.3:5070;transport=tcp")) == \
            Address("10.1.2.3", 5070, "TCP")
        assert ep.destination_nowait(parse_uri("sip:a@example.com")) is None  # needs a lookup
        with pytest.raises(TransportUnavailable):  # sips: needs TLS, which this endpoint lacks
            ep.destination_nowait(parse_uri("sips:a@10.1.2.3"))
        assert (await ep.resolve(parse_uri("sip:a@localhost:5099"))).port == 5099
        nursery.cancel_scope.cancel()


@trio_test
async def test_per_source_rate_limit_drops_a_flood_but_not_responses():
    config = EndpointConfig(timers=FAST, rate_limit=RateLimit(rate=1, burst=5))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, UdpClient() as client:
            ep = await start(nursery, config=config)
            for i in range(50):
                await client.send(options(client.port, branch=f"z9hG4bKflood{i}", call_id=f"f{i}"),
                                  ep.local_address())
            answered = 0
            with trio.move_on_after(0.3):
                while True:
                    await client.receive()
                    answered += 1
            response = make_response(Request("OPTIONS", "sip:x@127.0.0.1", [
                ("Via", "SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKnone"), ("From", "<sip:a@b>;tag=1"),
                ("To", "<sip:a@b>"), ("Call-ID", "r"), ("CSeq", "1 OPTIONS")]), 200)
            for _ in range(20):
                await client.send(response.serialize(), ep.local_address())
            await trio.sleep(0.05)
            stats = ep.statistics()
            nursery.cancel_scope.cancel()
    assert answered == 5
    assert stats.rate_limited == 45
    assert stats.malformed_dropped == 20  # the responses were not limited, only dropped as unmatched


@trio_test
async def test_overload_sheds_new_invites_with_a_stateless_503_and_drops_its_ack():
    import time

    reached = []
    config = EndpointConfig(rate_limit=None, timers=FAST, shed_queue_delay=0.4, shed_retry_after=9)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, UdpClient() as client:
            ep = await start(nursery, config=config, handler=lambda i: reached.append(i.method))
            client.send_now(options(client.port, method="INVITE", branch="z9hG4bKlate", call_id="late"),
                            ep.local_address())
            time.sleep(0.6)  # the process is too busy to read its socket for 0.6 s
            shed = await client.receive()
            ack = options(client.port, method="ACK", branch="z9hG4bKlate", call_id="late").replace(
                b"To: <sip:probe@127.0.0.1>", f"To: {shed.headers.get('To')}".encode())
            await client.send(ack, ep.local_address())
            await trio.sleep(0.3)  # the queue is empty again: INVITEs go through
            await client.send(options(client.port, method="INVITE", branch="z9hG4bKnow", call_id="now"),
                              ep.local_address())
            await trio.sleep(0.1)
            stats = ep.statistics()
            nursery.cancel_scope.cancel()
    assert shed.status_code == 503 and shed.headers.get("Retry-After") == "9"
    assert shed.call_id == "late" and shed.top_via.branch == "z9hG4bKlate"
    assert shed.to.tag.startswith("shed503")
    assert stats.shed_invites == 1 and stats.shed_acks == 1
    assert reached == ["INVITE"]  # only the INVITE read in time reached the handler
