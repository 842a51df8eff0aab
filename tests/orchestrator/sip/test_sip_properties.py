"""Property tests (hypothesis): parse(serialize(m)) == m for generated
messages and URIs, and parsing any bytes raises only our own parse error."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.sip import (
    Address,
    NameAddr,
    Request,
    Response,
    SessionDescription,
    SipParseError,
    SipUri,
    StreamReceiver,
    TransactionLayer,
    Via,
    parse_datagram,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
    validate_request,
    validate_response,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rfc4475"
SEEDS = [p.read_bytes() for p in sorted(FIXTURES.glob("*.dat"))]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Building structured examples costs more than checking them: fewer, so the file stays a few seconds.
STRUCTURED = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)
# Any text but CR/LF and unpaired surrogates, as header values and URI components may carry.
free_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)
labels = st.from_regex(r"[a-z][a-z0-9\-]{0,8}[a-z0-9]", fullmatch=True)
hosts = st.one_of(
    st.lists(labels, min_size=1, max_size=3).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.just("[2001:db8::1]"),
)


@st.composite
def sip_uris(draw):
    user = draw(st.one_of(st.none(), free_text.filter(bool)))
    return SipUri(
        host=draw(hosts).strip("[]"),
        user=user,
        password=draw(st.one_of(st.none(), free_text)) if user else None,
        port=draw(st.one_of(st.none(), st.integers(0, 65535))),
        params=tuple(draw(st.lists(st.tuples(free_text.filter(bool), st.one_of(st.none(), free_text.filter(bool))),
                                   max_size=3))),
        headers=tuple(draw(st.lists(st.tuples(free_text.filter(bool), free_text), max_size=2))),
        scheme=draw(st.sampled_from(["sip", "sips"])),
    )


KNOWN_NAMES = ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Route", "Record-Route", "Max-Forwards",
               "Content-Type", "Subject", "Authorization", "X-Custom"]
header_names = st.one_of(st.sampled_from(KNOWN_NAMES), tokens).filter(
    lambda n: n.lower() not in ("content-length", "l"))
header_values = free_text.map(lambda v: v.strip(" \t"))


@st.composite
def messages(draw):
    fields = draw(st.lists(st.tuples(header_names, header_values), max_size=8))
    body = draw(st.binary(max_size=64))
    fields.append(("Content-Length", str(len(body))))
    if draw(st.booleans()):
        method = draw(st.one_of(st.sampled_from(["INVITE", "ACK", "BYE", "OPTIONS", "REGISTER"]), tokens))
        return Request(method, draw(sip_uris()), fields, body)
    reason = draw(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20))
    return Response(draw(st.integers(100, 699)), reason, fields, body)


@STRUCTURED
@given(messages())
def test_parse_of_serialize_is_identity(message):
    data = message.serialize()
    assert parse_message(data) == message
    assert parse_datagram(data) == message
    receiver = StreamReceiver()
    receiver.receive_data(data)
    assert receiver.messages() == [message]


@STRUCTURED
@given(sip_uris())
def test_uri_round_trip_and_self_equivalence(uri):
    back = parse_uri(str(uri))
    assert back == uri and back.equivalent(uri)


token_params = st.lists(st.tuples(tokens, st.one_of(st.none(), tokens)), max_size=3).map(tuple)


@STRUCTURED
@given(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]), hosts, st.one_of(st.none(), st.integers(0, 65535)),
       token_params)
def test_via_round_trip(transport, host, port, params):
    via = Via(transport, host, port, params)
    assert parse_via(str(via)) == via


@STRUCTURED
@given(sip_uris(), st.one_of(st.none(), free_text.filter(lambda t: t.strip() == t and t)), token_params)
def test_name_addr_round_trip(uri, display_name, params):
    """Display names with quotes, backslashes, control characters and UTF-8 survive quoting."""
    name_addr = NameAddr(uri, display_name, params)
    assert parse_name_addr(str(name_addr)) == name_addr


def _exercise(data: bytes) -> None:
    try:
        msg = parse_datagram(data)
    except SipParseError:
        return
    for view in ("via", "from_", "to", "call_id", "cseq", "max_forwards", "contact", "route", "record_route",
                 "content_type", "expires", "require", "proxy_require", "accept", "authorization", "date"):
        try:
            getattr(msg, view)
        except SipParseError:
            pass
    if isinstance(msg, Request):
        validate_request(msg)
    else:
        validate_response(msg)
    try:
        SessionDescription.parse(msg.body)
    except SipParseError:
        pass


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_raise_only_parse_errors(data):
    _exercise(data)
    try:
        parse_message(data)
    except SipParseError:
        pass


@SETTINGS
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255),
                                                   st.sampled_from(["flip", "insert", "delete"])), max_size=6))
def test_mutated_torture_messages_raise_only_parse_errors(seed, edits):
    data = bytearray(seed)
    for pos, byte, kind in edits:
        pos %= len(data) + 1
        if kind == "insert":
            data[pos:pos] = bytes([byte])
        elif kind == "delete":
            del data[pos:pos + 1]
        elif pos < len(data):
            data[pos] = byte
    _exercise(bytes(data))
    layer = TransactionLayer()
    layer.receive_datagram(bytes(data), Address("192.0.2.1", 5060), 0.0)  # never raises


@SETTINGS
@given(st.binary(max_size=400), st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_stream_receiver_raises_only_parse_errors(data, cuts):
    receiver = StreamReceiver()
    pos = 0
    try:
        for cut in cuts:
            receiver.receive_data(data[pos:pos + cut])
            pos += cut
            receiver.messages()
        receiver.receive_data(b"")
        receiver.messages()
    except SipParseError:
        pass


@SETTINGS
@given(st.text(max_size=80))
def test_uri_and_sdp_parsers_raise_only_parse_errors(text):
    for parse in (parse_uri, SessionDescription.parse):
        try:
            parse(text)
        except SipParseError:
            pass
