"""RFC 4475 (SIP torture test messages): every message of the RFC's Appendix A
archive, byte-exact, and what the RFC says an element must do with it.

The fixtures in fixtures/rfc4475/ were decoded from the base64 tarball in
RFC 4475 Appendix A.1 (``-- BEGIN MESSAGE ARCHIVE --``) without any change.
Two quirks of the archive as shipped, kept on purpose:

* baddn.dat has no empty line after its last header (a known defect of the
  archive), so it is also a truncated message; it gets a 400 either way.
* test.dat is in the archive but not described anywhere in the RFC; our
  expectation for it (400: a header line without a colon) is our own.

Outcomes:
``ok``      parses, and ``validate_request`` (UAS policy) lets it through;
``parse``   the parser rejects it; a request gets the stateless response
            ``stateless_error_response`` builds (the code given), or none;
``reject``  parses, and ``validate_request`` answers with the code given;
``drop``    a response that must be discarded silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.sip import (
    RequestPolicy,
    Response,
    SipFramingError,
    SipParseError,
    SipUri,
    StreamReceiver,
    parse_datagram,
    parse_multipart,
    parse_uri,
    stateless_error_response,
    validate_request,
    validate_response,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rfc4475"
PROXY = RequestPolicy(role="proxy")


@dataclass(frozen=True)
class Case:
    section: str
    outcome: str  # ok | parse | reject | drop
    code: int | None = None
    proxy_code: int | None | str = "same"  # the outcome for a proxy when it differs


TABLE = {
    # 3.1.1 Valid messages: all must parse.
    "wsinv": Case("3.1.1.1", "ok"),
    "intmeth": Case("3.1.1.2", "reject", 501),  # endpoints: 501 listing Allow
    "esc01": Case("3.1.1.3", "ok"),
    "escnull": Case("3.1.1.4", "ok"),
    "esc02": Case("3.1.1.5", "reject", 501),  # RE%47IST%45R is not REGISTER
    "lwsdisp": Case("3.1.1.6", "ok"),
    "longreq": Case("3.1.1.7", "ok"),
    "dblreq": Case("3.1.1.8", "ok"),  # the INVITE after the REGISTER is ignored
    "semiuri": Case("3.1.1.9", "ok"),
    "transports": Case("3.1.1.10", "ok"),
    "mpart01": Case("3.1.1.11", "reject", 405),  # parses; MESSAGE is not allowed by our UAS policy
    "unreason": Case("3.1.1.12", "ok"),
    "noreason": Case("3.1.1.13", "ok"),
    # 3.1.2 Invalid messages.
    "badinv01": Case("3.1.2.1", "reject", 400),
    "clerr": Case("3.1.2.2", "parse", 400),
    "ncl": Case("3.1.2.3", "parse", 400),
    "scalar02": Case("3.1.2.4", "reject", 400),  # because of the CSeq
    "scalarlg": Case("3.1.2.5", "drop"),
    "quotbal": Case("3.1.2.6", "reject", 400),
    "ltgtruri": Case("3.1.2.7", "parse", 400),
    "lwsruri": Case("3.1.2.8", "parse", 400),
    "lwsstart": Case("3.1.2.9", "parse", 400),  # "acceptable to reject"
    "trws": Case("3.1.2.10", "parse", 400),  # "acceptable to reject"
    "escruri": Case("3.1.2.11", "reject", 400),
    "baddate": Case("3.1.2.12", "ok"),  # Date is not used, so not rejected; msg.date raises
    "regbadct": Case("3.1.2.13", "reject", 400),
    "badaspec": Case("3.1.2.14", "reject", 400),
    "baddn": Case("3.1.2.15", "parse", 400),  # archive copy lacks the final CRLF (see above)
    "badvers": Case("3.1.2.16", "reject", 505),
    "mismatch01": Case("3.1.2.17", "reject", 400),
    "mismatch02": Case("3.1.2.18", "reject", 501),
    "bigcode": Case("3.1.2.19", "drop"),
    # 3.2 Transaction layer: accepted, matched with the RFC 2543 rules (test_transaction.py).
    "badbranch": Case("3.2.1", "ok"),
    # 3.3 Application layer.
    "insuf": Case("3.3.1", "reject", 400),
    "unkscm": Case("3.3.2", "reject", 416),
    "novelsc": Case("3.3.3", "reject", 416),
    "unksm2": Case("3.3.4", "reject", 400, proxy_code=None),  # a registrar rejects; a proxy forwards
    "bext01": Case("3.3.5", "reject", 420),
    "invut": Case("3.3.6", "reject", 415, proxy_code=None),
    "regaut01": Case("3.3.7", "ok"),  # unknown scheme: ignored here, the registrar challenges
    "multi01": Case("3.3.8", "reject", 400),
    "mcl01": Case("3.3.9", "parse", 400),
    "bcast": Case("3.3.10", "drop"),
    "zeromf": Case("3.3.11", "ok", proxy_code=483),
    "cparam01": Case("3.3.12", "ok"),
    "cparam02": Case("3.3.13", "ok"),
    "regescrt": Case("3.3.14", "ok"),
    "sdp01": Case("3.3.15", "reject", 406, proxy_code=None),
    "inv2543": Case("3.4.1", "ok"),
    # Not in the RFC text (see the module docstring).
    "test": Case("archive only", "parse", None),
}


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.dat").read_bytes()


def test_table_covers_every_fixture():
    assert sorted(p.stem for p in FIXTURES.glob("*.dat")) == sorted(TABLE)
    assert len(TABLE) == 50


def _outcome(data: bytes, policy: RequestPolicy) -> tuple[str, int | None]:
    try:
        msg = parse_datagram(data)
    except SipParseError as exc:
        response = stateless_error_response(data, exc)
        if data.startswith(b"SIP/"):
            assert response is None and exc.status_hint is None
            return "drop", None
        return "parse", None if response is None else response.status_code
    if isinstance(msg, Response):
        return ("drop", None) if validate_response(msg) else ("ok", None)
    rejection = validate_request(msg, policy)
    return ("ok", None) if rejection is None else ("reject", rejection.status_code)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_rfc4475_outcome_as_uas(name):
    case = TABLE[name]
    assert _outcome(load(name), RequestPolicy()) == (case.outcome, case.code), case.section


@pytest.mark.parametrize("name", sorted(n for n, c in TABLE.items() if c.proxy_code != "same"))
def test_rfc4475_outcome_as_proxy(name):
    case = TABLE[name]
    outcome, code = _outcome(load(name), PROXY)
    if case.proxy_code is None:
        assert outcome == "ok"
    else:
        assert (outcome, code) == ("reject", case.proxy_code)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_never_raises_anything_but_parse_errors_on_any_prefix(name):
    """Malformed input never kills the process: every truncation of every message."""
    data = load(name)
    for cut in range(0, len(data) + 1, 7):
        try:
            msg = parse_datagram(data[:cut])
        except SipParseError:
            continue
        for view in ("via", "from_", "to", "call_id", "cseq", "max_forwards", "contact", "route",
                     "content_type", "expires", "require", "accept", "authorization", "date"):
            try:
                getattr(msg, view)
            except SipParseError:
                pass


# --- the specific interpretations the RFC asks for -----------------------------------------
def test_3_1_1_1_wsinv_interpretation():
    msg = parse_datagram(load("wsinv"))
    assert msg.method == "INVITE"
    assert msg.uri == SipUri(host="chair-dnrc.example.com", user="vivekg", params=(("unknownparam", None),))
    assert msg.to.tag == "1918181833n" and msg.to.display_name is None
    assert msg.from_.display_name == 'J Rosenberg \\"' and msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert (msg.cseq.seq, msg.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.headers.values("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]  # unknown: never split
    (contact,) = msg.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    (route,) = msg.route
    assert route.uri.lr and route.uri.param("unknownwith") == "value"
    assert msg.content_length == 150 and len(msg.body) == 150
    assert msg.body.startswith(b"v=0\r\n") and msg.body.endswith(b"a=rtpmap:31 LPC\r\n")


def test_3_1_1_2_intmeth_interpretation():
    msg = parse_datagram(load("intmeth"))
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_3_1_1_3_escapes_are_equivalent_to_the_characters():
    msg = parse_datagram(load("esc01"))
    assert msg.uri.user == "sips:user@example.com" and msg.uri.host == "example.net"
    assert msg.to.uri.equivalent(parse_uri("sip:user@example.com"))
    assert msg.from_.uri.user == "I have spaces"
    (contact,) = msg.contact
    assert contact.uri.user == "caller"
    assert contact.uri.params == (("lr", None), ("name", "value%41"))  # never unescaped twice
    assert contact.uri.param("name") != "valueA"


def test_3_1_1_4_escaped_nulls_keep_the_full_user():
    msg = parse_datagram(load("escnull"))
    assert msg.to.uri.user == "null-\x00-null" and len(msg.to.uri.user) == 11
    users = [c.uri.user for c in msg.contact]
    assert users == ["\x00", "\x00\x00"]
    assert not msg.contact[0].uri.equivalent(msg.contact[1].uri)


def test_3_1_1_5_percent_is_not_an_escape_outside_escaped():
    msg = parse_datagram(load("esc02"))
    assert msg.method == "RE%47IST%45R" and msg.method != "REGISTER"
    assert msg.to.display_name == "%Z%45"
    assert len(msg.contact) == 2  # C%6Fntact is another header
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_3_1_1_6_display_name_without_lws():
    assert parse_datagram(load("lwsdisp")).from_.display_name == "caller"


def test_3_1_1_7_long_values():
    msg = parse_datagram(load("longreq"))
    assert len(msg.via) == 34
    assert msg.via[-1].branch == "very" + "long" * 50 + "branchvalue"
    assert msg.from_.tag == "12" + "982" * 50 + "424"
    assert msg.to.display_name == "I have a user name of " + "extreme" * 10 + " proportion"
    assert msg.call_id == "longreq.one" + "really" * 20 + "longcallid"


def test_3_1_1_8_trailing_octets_in_a_datagram_are_ignored():
    msg = parse_datagram(load("dblreq"))
    assert msg.method == "REGISTER" and msg.body == b""
    assert b"INVITE" not in msg.serialize()


def test_3_1_1_9_semicolon_in_user_part():
    assert parse_datagram(load("semiuri")).uri.user == "user;par=u@example.net"


def test_3_1_1_10_transports():
    msg = parse_datagram(load("transports"))
    assert [v.transport for v in msg.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_3_1_1_11_multipart_with_binary_part():
    msg = parse_datagram(load("mpart01"))
    assert len(msg.body) == 553
    parts = parse_multipart(msg.body, msg.content_type)
    assert [p.content_type.mime for p in parts] == ["text/plain", "application/octet-stream"]
    assert parts[0].body == b"Hello"
    assert parts[1].body[:4] == bytes.fromhex("30820152") and parts[1].body.endswith(bytes.fromhex("99D005"))
    assert len(parts[1].body) == 342 and b"\x00" in parts[1].body


def test_3_1_1_12_and_13_reason_phrases():
    assert parse_datagram(load("unreason")).reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    resp = parse_datagram(load("noreason"))
    assert (resp.status_code, resp.reason) == (100, "")


def test_3_1_2_2_content_length_larger_than_message_on_a_stream_waits():
    receiver = StreamReceiver()
    receiver.receive_data(load("clerr"))
    assert receiver.messages() == []  # nothing to do but wait for more (RFC 4475 3.1.2.2)
    receiver.receive_data(b"")  # the peer gives up and closes
    with pytest.raises(SipFramingError):
        receiver.next_event()


@pytest.mark.parametrize("name", ["ncl", "mcl01"])
def test_bad_content_length_on_a_stream_is_fatal(name):
    receiver = StreamReceiver()
    receiver.receive_data(load(name))
    with pytest.raises(SipFramingError):
        receiver.next_event()
    with pytest.raises(SipFramingError):  # and stays fatal
        receiver.next_event()


def test_3_1_2_12_bad_date_is_accepted_but_its_view_rejects():
    msg = parse_datagram(load("baddate"))
    with pytest.raises(SipParseError, match="GMT"):
        msg.date
    assert parse_datagram(load("mpart01")).date.isoformat() == "2005-10-15T04:44:56+00:00"


def test_3_1_2_15_baddn_with_its_crlf_restored_is_still_rejected():
    msg = parse_datagram(load("baddn") + b"\r\n")
    rejection = validate_request(msg)
    assert rejection.status_code == 400 and "From" in rejection.detail


def test_3_3_5_bext01_lists_the_unsupported_extensions_by_role():
    msg = parse_datagram(load("bext01"))
    as_uas = validate_request(msg).response(msg, to_tag="t1")
    as_proxy = validate_request(msg, PROXY).response(msg)
    assert as_uas.headers.get("Unsupported") == "nothingSupportsThis, nothingSupportsThisEither"
    assert as_proxy.headers.get("Unsupported") == "noProxiesSupportThis, norDoAnyProxiesSupportThis"
    assert as_uas.to.tag == "t1" and as_uas.status_code == 420


def test_3_3_6_invut_415_lists_what_is_accepted():
    msg = parse_datagram(load("invut"))
    response = validate_request(msg).response(msg)
    assert response.status_code == 415 and response.headers.get("Accept") == "application/sdp"


def test_3_3_7_unknown_authorization_scheme_parses():
    (auth,) = parse_datagram(load("regaut01")).authorization
    assert auth.scheme == "NoOneKnowsThisScheme" and auth.get("opaque-data") == "here"


def test_3_3_12_to_14_contact_params_versus_uri_params():
    (c1,) = parse_datagram(load("cparam01")).contact
    assert c1.param("unknownparam") == "" and c1.uri.params == ()
    (c2,) = parse_datagram(load("cparam02")).contact
    assert c2.params == () and c2.uri.param("unknownparam") == ""
    (c3,) = parse_datagram(load("regescrt")).contact
    assert c3.uri.headers == (("Route", "<sip:sip.example.com>"),)


def test_3_4_1_rfc2543_invite_body_is_the_rest_of_the_datagram():
    msg = parse_datagram(load("inv2543"))
    assert msg.content_length is None and msg.body.startswith(b"v=0") and len(msg.body) == 105
    assert msg.top_via.branch is None and msg.from_.tag is None and msg.max_forwards is None


def test_stateless_400_copies_the_fields_a_response_needs():
    data = load("lwsruri")
    with pytest.raises(SipParseError) as info:
        parse_datagram(data)
    response = stateless_error_response(data, info.value)
    assert response.status_code == 400
    assert response.headers.get("Call-ID") == "lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423"
    assert response.top_via.branch == "z9hG4bKkdjuw2395"
    assert response.cseq.seq == 2130706432
    assert response.headers.get("Warning").startswith('399 hotline "malformed Request-Line')
