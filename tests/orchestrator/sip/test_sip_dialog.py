"""Dialogs (RFC 3261 section 12): creation on both sides, route sets, loose and
strict routing, CSeq rules and target refresh."""

from __future__ import annotations

import pytest

from orchestrator.sip import (
    Dialog,
    DialogState,
    LocalProtocolError,
    Request,
    SipUri,
    Via,
    make_response,
    parse_datagram,
    parse_uri,
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Record-Route: <sip:p2.biloxi.example.com;lr>\r\n"
    b"Record-Route: <sip:p1.atlanta.example.com;lr>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
VIA = Via("UDP", "pc33.atlanta.example.com", params=(("branch", "z9hG4bKnew1"),))


def ok_for(invite: Request, *, contact: str = "<sip:bob@192.0.2.4>", record_route=None) -> bytes:
    response = make_response(invite, 200, to_tag="a6c85cf", headers=[("Contact", contact)])
    if record_route is not None:
        response.headers.remove("Record-Route")
        for rr in record_route:
            response.headers.add("Record-Route", rr)
    return response


def test_uac_dialog_reverses_the_record_route_and_targets_the_contact():
    invite = parse_datagram(INVITE)
    dialog = Dialog.from_uac(invite, ok_for(invite))
    assert dialog.state is DialogState.CONFIRMED
    assert (dialog.call_id, dialog.local_tag, dialog.remote_tag) == ("a84b4c76e66710", "1928301774", "a6c85cf")
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.atlanta.example.com;lr", "sip:p2.biloxi.example.com;lr"]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.4"
    assert dialog.local_seq == 314159 and dialog.remote_seq is None


def test_uas_dialog_keeps_the_record_route_order():
    invite = parse_datagram(INVITE)
    dialog = Dialog.from_uas(invite, ok_for(invite))
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2.biloxi.example.com;lr", "sip:p1.atlanta.example.com;lr"]
    assert (dialog.local_tag, dialog.remote_tag) == ("a6c85cf", "1928301774")
    assert str(dialog.remote_target) == "sip:alice@pc33.atlanta.example.com"
    assert dialog.remote_seq == 314159 and dialog.local_seq is None


def test_loose_routing_bye():
    invite = parse_datagram(INVITE)
    dialog = Dialog.from_uac(invite, ok_for(invite))
    bye, next_hop = dialog.create_request("BYE", via=VIA)
    assert str(bye.uri) == "sip:bob@192.0.2.4"
    assert bye.headers.get_all("Route") == ["<sip:p1.atlanta.example.com;lr>", "<sip:p2.biloxi.example.com;lr>"]
    assert str(next_hop) == "sip:p1.atlanta.example.com;lr"
    assert (bye.cseq.seq, bye.cseq.method) == (314160, "BYE")
    assert bye.to.tag == "a6c85cf" and bye.from_.tag == "1928301774" and bye.call_id == "a84b4c76e66710"
    assert parse_datagram(bye.serialize()) == bye


def test_strict_routing_puts_the_first_route_in_the_request_uri():
    invite = parse_datagram(INVITE)
    strict = ["<sip:p2.biloxi.example.com;lr>", "<sip:p1.atlanta.example.com;method=INVITE>"]
    dialog = Dialog.from_uac(invite, ok_for(invite, record_route=strict))
    bye, next_hop = dialog.create_request("BYE", via=VIA)
    assert bye.uri == parse_uri("sip:p1.atlanta.example.com")  # method= stripped (19.1.1)
    assert bye.headers.get_all("Route") == ["<sip:p2.biloxi.example.com;lr>", "<sip:bob@192.0.2.4>"]
    assert next_hop == bye.uri


def test_no_route_set_sends_to_the_remote_target():
    invite = parse_datagram(INVITE)
    invite.headers.remove("Record-Route")
    dialog = Dialog.from_uac(invite, ok_for(invite))
    request, next_hop = dialog.create_request("INFO", via=VIA, body=b"Signal=5\r\n",
                                              content_type="application/dtmf-relay")
    assert request.headers.get("Route") is None and next_hop == dialog.remote_target
    assert request.headers.get("Content-Type") == "application/dtmf-relay"


def test_ack_for_2xx_reuses_the_invite_cseq():
    invite = parse_datagram(INVITE)
    dialog = Dialog.from_uac(invite, ok_for(invite))
    ack, _ = dialog.create_ack(invite, via=VIA)
    assert (ack.method, ack.cseq.seq, ack.cseq.method) == ("ACK", 314159, "ACK")
    assert dialog.local_seq == 314159  # not consumed


def test_cseq_must_grow_and_reinvite_refreshes_the_target():
    invite = parse_datagram(INVITE)
    dialog = Dialog.from_uas(invite, ok_for(invite))
    reinvite = Request("INVITE", "sip:bob@192.0.2.4", [
        ("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKre"), ("From", invite.headers.get("From")),
        ("To", "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf"), ("Call-ID", "a84b4c76e66710"),
        ("CSeq", "314160 INVITE"), ("Contact", "<sip:alice@198.51.100.9:5070>")])
    assert dialog.matches(reinvite)
    assert dialog.receive_request(reinvite) is None
    assert str(dialog.remote_target) == "sip:alice@198.51.100.9:5070"
    assert dialog.receive_request(reinvite) == 500  # same CSeq again: out of order (12.2.2)
    bye = reinvite.copy()
    bye.method = "BYE"
    bye.headers.set("CSeq", "314161 BYE")
    assert dialog.receive_request(bye) is None and dialog.state is DialogState.TERMINATED
    with pytest.raises(LocalProtocolError):
        dialog.create_request("INFO", via=VIA)


def test_early_dialog_confirmed_by_2xx_and_killed_by_error():
    invite = parse_datagram(INVITE)
    ringing = make_response(invite, 180, to_tag="a6c85cf", headers=[("Contact", "<sip:bob@192.0.2.4>")])
    dialog = Dialog.from_uac(invite, ringing)
    assert dialog.state is DialogState.EARLY
    dialog.receive_response(invite, ok_for(invite, contact="<sip:bob@192.0.2.99>"))
    assert dialog.state is DialogState.CONFIRMED and dialog.remote_target == SipUri(host="192.0.2.99", user="bob")
    early = Dialog.from_uac(invite, ringing)
    early.receive_response(invite, make_response(invite, 486, to_tag="a6c85cf"))
    assert early.state is DialogState.TERMINATED


def test_dialog_needs_tags():
    invite = parse_datagram(INVITE)
    with pytest.raises(LocalProtocolError):
        Dialog.from_uas(invite, make_response(invite, 200))  # no To tag
    with pytest.raises(LocalProtocolError):
        Dialog.from_uac(invite, make_response(invite, 100))
