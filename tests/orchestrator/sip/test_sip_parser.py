"""Message model, header fields, URIs and framing (RFC 3261 sections 7, 18.3,
19, 20). Framing cases are fed whole, byte by byte and with trailing data, as
h11's tests do."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sip import (
    NEED_DATA,
    Headers,
    KeepAlive,
    LocalProtocolError,
    NameAddr,
    Request,
    Response,
    SipFramingError,
    SipParseError,
    SipUri,
    StreamReceiver,
    Via,
    canonical_name,
    make_response,
    parse_datagram,
    parse_message,
    parse_uri,
    split_list,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rfc4475"
VALID = ["wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "semiuri", "transports",
         "mpart01", "unreason", "noreason"]

OPTIONS = (b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n"
           b"To: <sip:bob@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: x1\r\n"
           b"CSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello")


# --- framing on a stream -------------------------------------------------------------------
def feed(receiver: StreamReceiver, data: bytes, *, step: int | None = None) -> list:
    events = []
    chunks = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        receiver.receive_data(chunk)
        events.extend(receiver.messages())
    return events


@pytest.mark.parametrize("step", [None, 1, 7])
def test_stream_whole_byte_by_byte_and_chunked(step):
    stream = b"\r\n\r\n" + OPTIONS + b"\r\n" + OPTIONS.replace(b"x1", b"x2") + OPTIONS[:30]
    receiver = StreamReceiver()
    events = feed(receiver, stream, step=step)
    assert events[0] == KeepAlive()
    msgs = [e for e in events if isinstance(e, Request)]
    assert [m.call_id for m in msgs] == ["x1", "x2"] and msgs[0].body == b"hello"
    assert receiver.trailing_data == (OPTIONS[:30], False)
    assert receiver.next_event() is NEED_DATA


@pytest.mark.parametrize("name", VALID)
def test_every_valid_torture_message_frames_identically_on_a_stream(name):
    data = (FIXTURES / f"{name}.dat").read_bytes()
    expected = parse_datagram(data)
    for step in (None, 1):
        receiver = StreamReceiver()
        (msg,) = feed(receiver, data, step=step)
        assert msg == expected
        assert receiver.trailing_data == (b"", False)


def test_stream_requires_content_length_and_closing_midway_is_an_error():
    receiver = StreamReceiver()
    receiver.receive_data(OPTIONS.replace(b"Content-Length: 5\r\n", b""))
    with pytest.raises(SipFramingError, match="mandatory"):
        receiver.next_event()
    receiver = StreamReceiver()
    receiver.receive_data(OPTIONS[:-2])
    assert receiver.next_event() is NEED_DATA
    receiver.receive_data(b"")
    with pytest.raises(SipFramingError, match="closed"):
        receiver.next_event()


def test_stream_size_limit():
    receiver = StreamReceiver(max_message_size=100)
    receiver.receive_data(OPTIONS)
    with pytest.raises(SipFramingError, match="max_message_size"):
        receiver.next_event()
    receiver = StreamReceiver(max_message_size=100)
    receiver.receive_data(b"OPTIONS " + b"x" * 200)
    with pytest.raises(SipFramingError):
        receiver.next_event()
    with pytest.raises(ValueError):
        StreamReceiver(max_message_size=1)


# --- framing in a datagram -----------------------------------------------------------------
def test_datagram_content_length_rules():
    assert parse_datagram(OPTIONS + b"trailing junk").body == b"hello"  # extra octets discarded
    no_length = OPTIONS.replace(b"Content-Length: 5\r\n", b"")
    assert parse_datagram(no_length + b" more").body == b"hello more"  # the rest of the datagram
    with pytest.raises(SipParseError) as info:
        parse_datagram(OPTIONS[:-1])
    assert info.value.status_hint == 400
    with pytest.raises(SipParseError):
        parse_message(OPTIONS + b"x")  # exact framing


def test_lf_only_line_ends_are_tolerated():
    msg = parse_datagram(OPTIONS.replace(b"\r\n", b"\n"))
    assert msg.call_id == "x1" and msg.body == b"hello"


@pytest.mark.parametrize("bad, hint", [
    (b"OPTIONS sip:a@b SIP/2.0\r\nNoColonHere\r\n\r\n", 400),
    (b"OPTIONS sip:a@b SIP/2.0\r\n folded-first: x\r\n\r\n", 400),
    (b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", 400),
    (b"OPTIONS  sip:a@b SIP/2.0\r\n\r\n", 400),
    (b"OPTIONS sip:a@b HTTP/1.1\r\n\r\n", 400),
    (b"SIP/2.0 99 Too Small\r\n\r\n", None),
    (b"SIP/2.0 700 Too Big\r\n\r\n", None),
    (b"SIP/2.0 OK\r\n\r\n", None),
])
def test_malformed_start_and_header_lines(bad, hint):
    with pytest.raises(SipParseError) as info:
        parse_datagram(bad)
    assert info.value.status_hint == hint


# --- headers -------------------------------------------------------------------------------
def test_compact_forms_and_canonical_names():
    assert [canonical_name(n) for n in ["i", "m", "e", "l", "c", "f", "s", "k", "t", "v", "o", "r", "b", "u", "x"]] \
        == ["Call-ID", "Contact", "Content-Encoding", "Content-Length", "Content-Type", "From", "Subject",
            "Supported", "To", "Via", "Event", "Refer-To", "Referred-By", "Allow-Events", "Session-Expires"]
    assert canonical_name("cseq") == "CSeq" and canonical_name("WWW-AUTHENTICATE") == "WWW-Authenticate"
    assert canonical_name("X-Custom-Thing") == "X-Custom-Thing"
    msg = parse_datagram(b"OPTIONS sip:a@b.c SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\ni: abc\r\n"
                         b"f: <sip:x@y.z>;tag=1\r\nt: sip:a@b.c\r\nCSEQ: 2 OPTIONS\r\nl: 0\r\n\r\n")
    assert [n for n, _ in msg.headers] == ["Via", "Call-ID", "From", "To", "CSeq", "Content-Length"]
    assert msg.serialize().startswith(b"OPTIONS sip:a@b.c SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n")


def test_list_headers_split_on_commas_outside_quotes_and_angles():
    assert split_list('"a, b" <sip:x@y;p=1,2>, <sip:z@w>') == ['"a, b" <sip:x@y;p=1,2>', "<sip:z@w>"]
    h = Headers([("Route", "<sip:a;lr>, <sip:b;lr>"), ("Route", "<sip:c;lr>"), ("Subject", "a, b")])
    assert h.values("Route") == ["<sip:a;lr>", "<sip:b;lr>", "<sip:c;lr>"]
    assert h.values("Subject") == ["a, b"]
    assert h.pop_first_value("Route") == "<sip:a;lr>"
    assert h.get_all("Route") == ["<sip:b;lr>", "<sip:c;lr>"]


def test_headers_edit_and_refuse_injection():
    h = Headers([("Via", "SIP/2.0/UDP a"), ("To", "<sip:x@y>"), ("Via", "SIP/2.0/UDP b")])
    h.set("via", "SIP/2.0/UDP c")
    assert h.items() == [("Via", "SIP/2.0/UDP c"), ("To", "<sip:x@y>")]
    h.prepend("Via", "SIP/2.0/UDP d")
    assert h.get_all("Via") == ["SIP/2.0/UDP d", "SIP/2.0/UDP c"]
    assert h.remove("VIA") == 2 and "To" in h and "Via" not in h
    with pytest.raises(LocalProtocolError):
        h.add("Subject", "x\r\nInjected: yes")
    with pytest.raises(LocalProtocolError):
        h.add("Bad Name", "x")


# --- typed views ---------------------------------------------------------------------------
def test_via_params_and_rendering():
    via = parse_datagram((FIXTURES / "mpart01.dat").read_bytes()).top_via
    assert (via.host, via.port, via.rport, via.branch) == ("127.0.0.1", 5070, True,
                                                           "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-")
    v = Via("TCP", "2001:db8::1", 5061, (("branch", "z9hG4bKa"), ("received", "192.0.2.1")))
    assert str(v) == "SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKa;received=192.0.2.1"
    with pytest.raises(ValueError):
        Via("UDP", "bad host!")


def test_name_addr_rendering_round_trip():
    na = NameAddr(parse_uri("sip:alice@atlanta.example.com"), 'Alice "A" \\', (("tag", "9fxced76sl"),))
    text = str(na)
    assert text == '"Alice \\"A\\" \\\\" <sip:alice@atlanta.example.com>;tag=9fxced76sl'
    back = parse_datagram(b"OPTIONS sip:a@b.c SIP/2.0\r\nFrom: " + text.encode() + b"\r\n\r\n").from_
    assert back == na


def test_make_response_copies_what_8_2_6_2_requires():
    req = parse_datagram((FIXTURES / "wsinv.dat").read_bytes())
    resp = make_response(req, 180, to_tag="abc")
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert resp.to.tag == "1918181833n"  # the To already had a tag: kept
    assert resp.headers.get("From") == req.headers.get("From") and resp.cseq == req.cseq
    assert resp.reason == "Ringing"
    trying = make_response(parse_datagram((FIXTURES / "lwsdisp.dat").read_bytes()), 100, to_tag="never")
    assert trying.to.tag is None


def test_constructors_validate_arguments():
    with pytest.raises(LocalProtocolError):
        Request("BAD METHOD", "sip:a@b.c")
    with pytest.raises(LocalProtocolError):
        Request("OPTIONS", "not a uri")
    with pytest.raises(LocalProtocolError):
        Response(99)
    with pytest.raises(LocalProtocolError):
        Response(200, "OK\r\nX: y")


# --- URIs (RFC 3261 19.1.4 examples) -------------------------------------------------------
@pytest.mark.parametrize("a, b", [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
])
def test_rfc3261_19_1_4_equivalent(a, b):
    assert parse_uri(a).equivalent(parse_uri(b)) and parse_uri(b).equivalent(parse_uri(a))


@pytest.mark.parametrize("a, b", [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
])
def test_rfc3261_19_1_4_not_equivalent(a, b):
    assert not parse_uri(a).equivalent(parse_uri(b))


def test_uri_keeps_its_text_until_modified():
    uri = parse_uri("sip:%61lice@atlanta.com;transport=TCP")
    assert str(uri) == "sip:%61lice@atlanta.com;transport=TCP"
    assert str(uri.with_params(lr=None)) == "sip:alice@atlanta.com;transport=TCP;lr"
    assert SipUri(host="2001:db8::5", user="a b").canonical() == "sip:a%20b@[2001:db8::5]"


@pytest.mark.parametrize("bad", ["sip:", "sip:a@", "sip:a@b@c", "sip:host:99999", "sip:host;=x", "sip:ho st",
                                 "sip:a%zz@b", "sip:[::1", "sip:host?noequals", "1sip:x", "tel:"])
def test_invalid_uris(bad):
    with pytest.raises(SipParseError):
        parse_uri(bad)


@pytest.mark.parametrize("name", VALID + ["dblreq", "inv2543", "badbranch", "regescrt", "cparam01"])
def test_parsed_torture_messages_reserialize_stably(name):
    """Forwarding a parsed message unchanged keeps every header value, in order."""
    original = parse_datagram((FIXTURES / f"{name}.dat").read_bytes())
    data = original.serialize()
    again = parse_message(data)
    assert again == original or name == "inv2543"  # inv2543 gains the Content-Length it lacked
    assert again.headers.items()[: len(original.headers)] == original.headers.items()
    assert again.serialize() == data
