"""SIP core throughput, each compared side by side in one run.

* parse + serialize of a typical INVITE with SDP (about 900 octets) against
  the stdlib ``email.parser`` on the same bytes: a generic RFC 822 header
  parser, a lower bound for "just split the headers" (it does no SIP
  validation, no URI parsing, no framing by Content-Length);
* parse + touching the typed views a B2BUA reads (Via, From, To, CSeq,
  Call-ID, Contact) - the realistic per-request cost;
* the transaction layer carrying a whole INVITE/200/ACK/BYE/200 exchange
  between two layers (parsing included), against the same five messages
  only parsed and serialized (the baseline: what the layer adds on top).
"""

from __future__ import annotations

import email.parser
import email.policy

import pytest

from orchestrator.sip import (
    Address,
    Request,
    RequestReceived,
    ResponseReceived,
    Send,
    TransactionLayer,
    make_response,
    parse_datagram,
)

INVITE = (
    b"INVITE sip:2000@hotline.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:2000@hotline.example.com>\r\n"
    b"From: \"Alice Caller\" <sip:+15551230001@trunk.example.net>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.net\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:+15551230001@198.51.100.20:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: ExamplePhone/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 310\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=- 3912345678 3912345678 IN IP4 198.51.100.20\r\n"
    b"s=-\r\n"
    b"c=IN IP4 198.51.100.20\r\n"
    b"t=0 0\r\n"
    b"m=audio 40000 RTP/AVP 111 0 8 101\r\n"
    b"a=rtpmap:111 opus/48000/2\r\n"
    b"a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)
assert len(INVITE.split(b"\r\n\r\n", 1)[1]) == 310


def test_parse_serialize_invite_ours(benchmark):
    benchmark.group = "sip-parse-serialize-invite"
    benchmark.extra_info["octets"] = len(INVITE)

    def run():
        return parse_datagram(INVITE).serialize()

    assert benchmark(run) == INVITE


def test_parse_serialize_invite_email_parser(benchmark):
    benchmark.group = "sip-parse-serialize-invite"
    benchmark.extra_info["role"] = "baseline"
    benchmark.extra_info["note"] = "stdlib email.parser: generic header split, no SIP semantics (lower bound)"
    parser = email.parser.BytesParser(policy=email.policy.compat32)
    start, rest = INVITE.split(b"\r\n", 1)

    def run():
        msg = parser.parsebytes(rest)
        return start + b"\r\n" + msg.as_bytes().replace(b"\n", b"\r\n")

    out = benchmark(run)
    assert out.count(b"\r\n") >= 25 and b"Call-ID: a84b4c76e66710@pc33.example.net" in out


def test_parse_with_typed_views_ours(benchmark):
    benchmark.group = "sip-parse-typed-views"

    def run():
        msg = parse_datagram(INVITE)
        return (msg.top_via.branch, msg.from_.tag, msg.to.uri, msg.cseq.seq, msg.call_id, msg.contact[0].uri)

    assert benchmark(run)[0] == "z9hG4bK776asdhds"


def test_parse_headers_email_parser(benchmark):
    benchmark.group = "sip-parse-typed-views"
    benchmark.extra_info["role"] = "baseline"
    benchmark.extra_info["note"] = "stdlib email.parser header parse, values left as strings"
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    rest = INVITE.split(b"\r\n", 1)[1]

    def run():
        msg = parser.parsebytes(rest)
        return msg["Via"], msg["From"], msg["To"], msg["CSeq"], msg["Call-ID"], msg["Contact"]

    assert benchmark(run)[4] == "a84b4c76e66710@pc33.example.net"


UAC, UAS = Address("198.51.100.20", 5060), Address("192.0.2.10", 5060)


def _call(layer_a: TransactionLayer, layer_b: TransactionLayer) -> int:
    """INVITE -> 100, 200 -> ACK; BYE -> 200; over bytes; returns messages delivered."""
    delivered = 0

    def wire(outputs, to_layer, source):
        nonlocal delivered
        events = []
        back_layer, back_source = (layer_a, UAS) if to_layer is layer_b else (layer_b, UAC)
        for o in outputs:
            if isinstance(o, Send):
                delivered += 1
                for e in to_layer.receive_datagram(o.message.serialize(), source, 0.0):
                    if isinstance(e, Send):  # the 100 Trying goes straight back
                        delivered += 1
                        events += back_layer.receive_datagram(e.message.serialize(), back_source, 0.0)
                    else:
                        events.append(e)
        return events

    invite = parse_datagram(INVITE)
    _, out = layer_a.send_request(invite, UAS, 0.0)
    events = wire(out, layer_b, UAC)
    (req,) = [e for e in events if isinstance(e, RequestReceived)]
    ok = make_response(req.request, 200, to_tag="b2bua", headers=[("Contact", "<sip:2000@192.0.2.10>")])
    events = wire(layer_b.send_response(req.transaction, ok, 0.0), layer_a, UAS)
    final = [e for e in events if isinstance(e, ResponseReceived) and e.response.status_code == 200][0]
    ack = Request("ACK", "sip:2000@192.0.2.10", [
        ("Via", "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bKack1"), ("Max-Forwards", "70"),
        ("From", final.response.headers.get("From")), ("To", final.response.headers.get("To")),
        ("Call-ID", final.response.call_id), ("CSeq", "314159 ACK"), ("Content-Length", "0")])
    wire(layer_a.send_stateless(ack, UAS), layer_b, UAC)
    bye = Request("BYE", "sip:2000@192.0.2.10", [
        ("Via", "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bKbye1"), ("Max-Forwards", "70"),
        ("From", final.response.headers.get("From")), ("To", final.response.headers.get("To")),
        ("Call-ID", final.response.call_id), ("CSeq", "314160 BYE"), ("Content-Length", "0")])
    _, out = layer_a.send_request(bye, UAS, 1.0)
    events = wire(out, layer_b, UAC)
    (req,) = [e for e in events if isinstance(e, RequestReceived)]
    wire(layer_b.send_response(req.transaction, make_response(req.request, 200), 1.0), layer_a, UAS)
    return delivered


def test_transaction_layer_full_call_ours(benchmark):
    benchmark.group = "sip-call-invite-200-ack-bye-200"
    benchmark.extra_info["messages"] = 6  # INVITE, 100, 200, ACK, BYE, 200

    def run():
        return _call(TransactionLayer(), TransactionLayer())

    assert benchmark(run) == 6


def test_parse_serialize_only_same_messages(benchmark):
    benchmark.group = "sip-call-invite-200-ack-bye-200"
    benchmark.extra_info["role"] = "baseline"
    benchmark.extra_info["note"] = "the same six messages parsed and serialized, without transactions"
    messages = []
    layer_a, layer_b = TransactionLayer(), TransactionLayer()
    original = layer_b.receive_datagram

    def spy(data, source, now):
        messages.append(bytes(data))
        return original(data, source, now)

    layer_b.receive_datagram = spy  # type: ignore[method-assign]
    original_a = layer_a.receive_datagram

    def spy_a(data, source, now):
        messages.append(bytes(data))
        return original_a(data, source, now)

    layer_a.receive_datagram = spy_a  # type: ignore[method-assign]
    _call(layer_a, layer_b)
    assert len(messages) == 6

    def run():
        return [parse_datagram(m).serialize() for m in messages]

    assert len(benchmark(run)) == 6


@pytest.mark.parametrize("count", [1000])
def test_messages_per_second_report(benchmark, count):
    """Parse+serialize of the INVITE in a batch, so extra_info can state messages per second."""
    benchmark.group = "sip-invite-batch-1000"

    def run():
        for _ in range(count):
            parse_datagram(INVITE).serialize()
        return count

    assert benchmark.pedantic(run, rounds=5, iterations=1) == count
    benchmark.extra_info["messages_per_second"] = round(count / benchmark.stats.stats.median)
