"""Transactions (RFC 3261 section 17, RFC 6026) on a simulated wire and clock.

Times are exact: with T1 = 0.5 s, T2 = 4 s, T4 = 5 s and a zero-delay wire the
retransmission schedules are the ones the RFC's timer rules give.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sip_harness import SipPair

from orchestrator.sip import (
    Address,
    LocalProtocolError,
    MessageDiscarded,
    Request,
    RequestReceived,
    Response,
    ResponseReceived,
    SetTimer,
    State,
    TimerConfig,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    make_cancel,
    make_response,
    parse_datagram,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rfc4475"
SRC = Address("192.0.2.9", 5060)


def is_request(method):
    return lambda m: isinstance(m, Request) and m.method == method


def is_status(code):
    return lambda m: isinstance(m, Response) and m.status_code == code


def answer_with(code):
    """A UAS TU that answers every new INVITE/OPTIONS with ``code`` at once."""
    def hook(pair, event):
        if isinstance(event, RequestReceived) and event.transaction and event.request.method != "ACK":
            pair.uas_respond(event.transaction, event.request, code)
    return hook


# --- client timers -------------------------------------------------------------------------
def test_timer_a_doubles_without_cap_until_timer_b():
    pair = SipPair()
    pair.drop = lambda sender, msg: sender is pair.uac
    key = pair.uac_send(pair.request("INVITE"))
    pair.run()
    assert pair.uac.sent_at(is_request("INVITE")) == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [(t, e.timer) for t, e in pair.uac.events_of(TransactionTimeout)] == [(32.0, "B")]
    assert pair.uac.events_of(TransactionTerminated) == [(32.0, TransactionTerminated(key))]
    assert pair.uac.layer.statistics().client_transactions == 0


def test_timer_e_doubles_up_to_t2_then_f_times_out():
    pair = SipPair()
    pair.drop = lambda sender, msg: sender is pair.uac
    pair.uac_send(pair.request("OPTIONS"))
    pair.run()
    assert pair.uac.sent_at(is_request("OPTIONS")) == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, e.timer) for t, e in pair.uac.events_of(TransactionTimeout)] == [(32.0, "F")]


def test_timer_e_uses_t2_in_proceeding_and_the_uas_repeats_its_provisional():
    pair = SipPair()
    pair.uas.on_event = answer_with(100)
    pair.uac_send(pair.request("OPTIONS"))
    pair.run()
    assert pair.uac.sent_at(is_request("OPTIONS")) == [0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert pair.uas.sent_at(is_status(100)) == [0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert len(pair.uas.events_of(RequestReceived)) == 1  # retransmissions absorbed
    assert len(pair.uac.events_of(ResponseReceived)) == 9  # every provisional goes to the TU (17.1.2.2)
    assert [e.timer for _, e in pair.uac.events_of(TransactionTimeout)] == ["F"]


def test_custom_timer_values():
    pair = SipPair(config=TimerConfig(t1=0.1, t2=0.3, t4=1.0))
    pair.drop = lambda sender, msg: sender is pair.uac
    pair.uac_send(pair.request("OPTIONS"))
    pair.run()
    sent = pair.uac.sent_at(is_request("OPTIONS"))
    assert sent[:5] == pytest.approx([0, 0.1, 0.3, 0.6, 0.9])
    assert pair.uac.events_of(TransactionTimeout)[0][0] == pytest.approx(6.4)


# --- server timers -------------------------------------------------------------------------
def test_timer_g_retransmits_the_final_response_until_h_when_the_ack_is_lost():
    pair = SipPair()
    pair.uas.on_event = answer_with(486)
    pair.drop = lambda sender, msg: isinstance(msg, Request) and msg.method == "ACK"
    invite_key = pair.uac_send(pair.request("INVITE"))
    pair.run()
    finals = pair.uas.sent_at(is_status(486))
    assert finals == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert pair.uas.sent_at(is_status(100)) == [0]
    assert [(t, e.timer) for t, e in pair.uas.events_of(TransactionTimeout)] == [(32.0, "H")]
    # The client transaction ACKs each copy itself and tells its TU only once.
    assert pair.uac.sent_at(is_request("ACK")) == finals
    assert [e.response.status_code for _, e in pair.uac.events_of(ResponseReceived)] == [100, 486]
    assert pair.uac.events_of(TransactionTerminated) == [(32.0, TransactionTerminated(invite_key))]


def test_ack_moves_the_invite_server_to_confirmed_then_timer_i():
    pair = SipPair()
    pair.uas.on_event = answer_with(603)
    pair.uac_send(pair.request("INVITE"))
    pair.run(until=1.0)
    (server_key,) = [e.transaction for _, e in pair.uas.events_of(RequestReceived)]
    assert pair.uas.layer.state_of(server_key) is State.CONFIRMED
    pair.run()
    assert pair.uas.sent_at(is_status(603)) == [0]  # no G retransmission after the ACK
    assert [t for t, _ in pair.uas.events_of(TransactionTerminated)] == [5.0]  # Timer I = T4
    assert not [e for _, e in pair.uas.events if isinstance(e, RequestReceived) and e.request.method == "ACK"]


def test_non_invite_server_keeps_the_final_response_for_timer_j():
    pair = SipPair()
    pair.uas.on_event = answer_with(200)
    pair.duplicate = lambda sender, msg: sender is pair.uac  # every request arrives twice
    pair.uac_send(pair.request("OPTIONS"))
    pair.run()
    assert pair.uas.sent_at(is_status(200)) == [0, 0]  # the copy is answered from the transaction
    assert len(pair.uas.events_of(RequestReceived)) == 1
    assert [t for t, _ in pair.uas.events_of(TransactionTerminated)] == [32.0]  # J = 64*T1
    assert [t for t, _ in pair.uac.events_of(TransactionTerminated)] == [5.0]  # K = T4
    assert [e.response.status_code for _, e in pair.uac.events_of(ResponseReceived)] == [200]


# --- reliable transports -------------------------------------------------------------------
def test_reliable_transport_sets_no_retransmission_timers_and_zero_waits():
    pair = SipPair(transport="TCP")
    pair.uas.on_event = answer_with(486)
    pair.uac_send(pair.request("INVITE"))
    pair.uac_send(pair.request("OPTIONS", cseq=2))
    pair.run()
    assert sorted(set(pair.uac.timers_set)) == ["B", "F"]
    assert sorted(set(pair.uas.timers_set)) == ["H"]
    assert pair.uas.sent_at(is_status(486)) == [0, 0]  # INVITE and OPTIONS, never retransmitted
    # Completed/Confirmed end at once on TCP (D, I, J, K are zero).
    assert {t for t, _ in pair.uac.events_of(TransactionTerminated)} == {0.0}
    assert {t for t, _ in pair.uas.events_of(TransactionTerminated)} == {0.0}
    assert pair.uac.layer.statistics().client_transactions == 0


def test_reliable_transport_still_has_timer_b():
    layer = TransactionLayer()
    req = SipPair(transport="TCP").request("INVITE")
    _, out = layer.send_request(req, Address("192.0.2.2", 5060, "TCP"), now=10.0)
    assert [(o.name, o.at) for o in out if isinstance(o, SetTimer)] == [("B", 42.0)]
    _, out = layer.send_request(SipPair(seed=2).request("INVITE"), Address("192.0.2.2", 5060), 10.0)
    assert [(o.name, o.at) for o in out if isinstance(o, SetTimer)] == [("A", 10.5), ("B", 42.0)]


# --- a whole call, with duplication --------------------------------------------------------
def test_invite_200_ack_bye_with_every_message_duplicated():
    pair = SipPair(delay=0.01)
    pair.duplicate = lambda sender, msg: True
    state = {}

    def uas_tu(pair, event):
        if isinstance(event, RequestReceived) and event.transaction:
            req = event.request
            if req.method == "INVITE":
                state["invite"] = event.transaction
                pair.uas_respond(event.transaction, req, 180)
                state["ok"] = pair.uas_respond(event.transaction, req, 200)
            elif req.method == "BYE":
                pair.uas_respond(event.transaction, req, 200)

    def uac_tu(pair, event):
        if isinstance(event, ResponseReceived) and event.response.status_code == 200 \
                and event.response.cseq.method == "INVITE":
            ack = Request("ACK", "sip:bob@192.0.2.2", [
                ("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKack{len(pair.uac.sent)}"),
                ("From", event.response.headers.get("From")), ("To", event.response.headers.get("To")),
                ("Call-ID", event.response.call_id), ("CSeq", f"{event.response.cseq.seq} ACK"),
                ("Max-Forwards", "70")])
            pair.process(pair.uac, pair.uac.layer.send_stateless(ack, pair.uas.address))

    pair.uas.on_event, pair.uac.on_event = uas_tu, uac_tu
    invite = pair.request("INVITE", call_id="call-1")
    invite_key = pair.uac_send(invite)
    pair.run(until=1.0)
    bye = pair.request("BYE", cseq=2, call_id="call-1", to='<sip:bob@192.0.2.2>;tag=uas-tag')
    pair.uac_send(bye)
    pair.run()

    uas_methods = [e.request.method for _, e in pair.uas.events_of(RequestReceived)]
    assert uas_methods.count("INVITE") == 1 and uas_methods.count("BYE") == 1
    assert uas_methods.count("ACK") == 4  # 2 ACKs (one per 200 copy), each duplicated: the core absorbs them
    uac_codes = [(e.response.cseq.method, e.response.status_code) for _, e in pair.uac.events_of(ResponseReceived)]
    assert uac_codes.count(("INVITE", 200)) == 2  # RFC 6026: every 2xx reaches the TU in Accepted
    assert uac_codes.count(("BYE", 200)) == 1  # the duplicate is absorbed in Completed
    # RFC 6026 Accepted state: both INVITE transactions live until Timer L / M (64*T1).
    assert pair.uac.layer.state_of(invite_key) is None
    ends = {e.transaction: t for t, e in pair.uac.events_of(TransactionTerminated)}
    assert ends[invite_key] == pytest.approx(0.02 + 32.0)
    assert pair.uas.events_of(TransactionTerminated)[0][0] == pytest.approx(0.01 + 32.0)
    stats = pair.uas.layer.statistics()
    assert stats.server_transactions == 0 and stats.retransmissions_absorbed >= 2


def test_2xx_after_timer_m_reaches_the_core_as_stray():
    pair = SipPair()
    pair.uas.on_event = answer_with(200)
    invite = pair.request("INVITE")
    pair.uac_send(invite)
    pair.run()
    ok = pair.uas.sent[-1][1]
    assert ok.status_code == 200
    pair.now = 40.0
    pair.process(pair.uas, pair.uas.layer.send_stateless(ok, pair.uac.address))
    pair.run()
    last = pair.uac.events[-1][1]
    assert isinstance(last, ResponseReceived) and last.transaction is None and last.response.status_code == 200


def test_non_2xx_after_the_transaction_is_gone_is_discarded():
    layer = TransactionLayer()
    stray = make_response(SipPair().request("INVITE"), 486, to_tag="x")
    out = layer.receive_datagram(stray.serialize(), SRC, 0.0)
    assert [type(o) for o in out] == [MessageDiscarded]


# --- CANCEL and the ACK for non-2xx --------------------------------------------------------
def test_cancel_matches_the_invite_and_the_487_is_acked_with_the_invite_branch():
    pair = SipPair()
    seen = {}

    def uas_tu(pair, event):
        if not isinstance(event, RequestReceived) or not event.transaction:
            return
        if event.request.method == "INVITE":
            seen["invite"] = (event.transaction, event.request)
            pair.uas_respond(event.transaction, event.request, 180)
        elif event.request.method == "CANCEL":
            seen["cancels"] = event.cancels
            pair.uas_respond(event.transaction, event.request, 200)
            pair.uas_respond(*seen["invite"], 487)

    pair.uas.on_event = uas_tu
    invite = pair.request("INVITE")
    pair.uac_send(invite)
    pair.run(until=1.0)
    pair.uac_send(make_cancel(invite))
    pair.run()
    assert seen["cancels"] == seen["invite"][0]
    (ack,) = [m for _, m in pair.uac.sent if isinstance(m, Request) and m.method == "ACK"]
    assert ack.top_via.branch == invite.top_via.branch  # 17.1.1.3
    assert ack.cseq.seq == invite.cseq.seq and ack.cseq.method == "ACK"
    assert ack.to.tag == "uas-tag" and ack.uri == invite.uri
    assert ack.headers.get("From") == invite.headers.get("From")
    assert pair.uas.layer.state_of(seen["invite"][0]) is None


def test_cancel_without_a_matching_invite():
    layer = TransactionLayer()
    cancel = make_cancel(SipPair().request("INVITE"))
    (event,) = [o for o in layer.receive_datagram(cancel.serialize(), SRC, 0.0) if isinstance(o, RequestReceived)]
    assert event.cancels is None and event.transaction.method == "CANCEL"


# --- RFC 2543 matching (RFC 4475 3.2.1 and 3.4.1) -----------------------------------------
def test_badbranch_falls_back_to_rfc2543_matching_and_absorbs_retransmissions():
    layer = TransactionLayer()
    data = (FIXTURES / "badbranch.dat").read_bytes()
    (event,) = [o for o in layer.receive_datagram(data, SRC, 0.0) if isinstance(o, RequestReceived)]
    assert event.transaction.branch == "" and "badbranch" in event.transaction.sent_by
    assert layer.receive_datagram(data, SRC, 0.1) == []  # absorbed in Trying
    ok = make_response(event.request, 200, to_tag="t")
    out = layer.send_response(event.transaction, ok, 0.2)
    resent = layer.receive_datagram(data, SRC, 0.3)
    assert [o.message for o in resent] == [ok] and out[0].message is ok
    assert event.request.top_via.received == "192.0.2.9"  # 18.2.1: the source differs from sent-by
    assert resent[0].destination == Address("192.0.2.9", 5060)  # 18.2.2: to received, sent-by port


def test_rfc2543_invite_and_ack_matched_by_to_tag():
    layer = TransactionLayer()
    data = (FIXTURES / "inv2543.dat").read_bytes()
    src = Address("198.51.100.7", 5060)
    (event,) = [o for o in layer.receive_datagram(data, src, 0.0) if isinstance(o, RequestReceived)]
    assert event.request.top_via.received == "198.51.100.7"  # 18.2.1: sent-by is a host name
    busy = make_response(event.request, 486, to_tag="2543tag")
    layer.send_response(event.transaction, busy, 0.0)
    invite = parse_datagram(data)
    ack_headers = [(n, v) for n, v in invite.headers if n not in ("CSeq", "To", "Content-Type")]
    wrong = Request("ACK", invite.uri, ack_headers + [("To", busy.headers.get("To").replace("2543tag", "other")),
                                                      ("CSeq", "56 ACK")])
    out = layer.receive_datagram(wrong.serialize(), src, 0.1)
    assert isinstance(out[0], RequestReceived) and out[0].transaction is None  # not this transaction
    right = Request("ACK", invite.uri, ack_headers + [("To", busy.headers.get("To")), ("CSeq", "56 ACK")])
    layer.receive_datagram(right.serialize(), src, 0.2)
    assert layer.state_of(event.transaction) is State.CONFIRMED


# --- robustness ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.dat")))
def test_every_torture_message_leaves_the_layer_working(name):
    layer = TransactionLayer()
    out = layer.receive_datagram((FIXTURES / f"{name}.dat").read_bytes(), SRC, 0.0)
    for o in out:
        if hasattr(o, "message"):
            assert isinstance(o.message, Response) and o.message.status_code in (100, 400)
    pair = SipPair()
    pair.uas.layer = layer
    pair.uas.on_event = answer_with(200)
    pair.uac_send(pair.request("OPTIONS"))
    pair.run()
    assert [e.response.status_code for _, e in pair.uac.events_of(ResponseReceived)] == [200]


def test_malformed_request_gets_a_stateless_400_and_garbage_is_dropped():
    layer = TransactionLayer()
    out = layer.receive_datagram((FIXTURES / "lwsruri.dat").read_bytes(), SRC, 0.0)
    assert out[0].message.status_code == 400 and out[1].answered
    assert layer.receive_datagram(b"\x00\xffgarbage\r\n\r\n", SRC, 0.0)[0].answered is False
    assert layer.receive_datagram(b"\r\n\r\n", SRC, 0.0) == []  # a keep-alive
    stats = layer.statistics()
    assert (stats.malformed_answered, stats.discarded, stats.keepalives) == (1, 1, 1)


def test_misuse_raises_local_protocol_errors():
    pair = SipPair()
    pair.uas.on_event = answer_with(486)
    invite = pair.request("INVITE")
    pair.uac_send(invite)
    pair.run(until=0.1)
    key = pair.uas.events_of(RequestReceived)[0][1].transaction
    with pytest.raises(LocalProtocolError):
        pair.uas.layer.send_response(key, make_response(invite, 200, to_tag="x"), 0.1)
    with pytest.raises(LocalProtocolError):
        pair.uac.layer.send_request(invite, pair.uas.address, 0.1)  # same branch again
    no_cookie = pair.request("OPTIONS")
    no_cookie.headers.set("Via", "SIP/2.0/UDP 192.0.2.1;branch=abc")
    with pytest.raises(LocalProtocolError, match="z9hG4bK"):
        pair.uac.layer.send_request(no_cookie, pair.uas.address, 0.1)
    with pytest.raises(LocalProtocolError):
        pair.uac.layer.send_request(Request("ACK", "sip:a@b.c", []), pair.uas.address, 0.1)
    with pytest.raises(ValueError):
        TimerConfig(t1=1.0, t2=0.5)


def test_stale_timer_wakeups_are_ignored():
    layer = TransactionLayer()
    key, out = layer.send_request(SipPair().request("INVITE"), Address("192.0.2.2", 5060), 0.0)
    assert layer.timer_fired(key, "A", 0.2) == []  # early: not due yet
    assert layer.timer_fired(key, "D", 5.0) == []  # never armed
    sends = [o for o in layer.timer_fired(key, "A", 0.5) if hasattr(o, "message")]
    assert len(sends) == 1


def test_transport_error_ends_the_transaction():
    layer = TransactionLayer()
    key, _ = layer.send_request(SipPair().request("OPTIONS"), Address("192.0.2.2", 5060), 0.0)
    out = layer.transport_error(key, 0.1)
    assert [type(o).__name__ for o in out] == ["TransportFailure", "CancelTimer", "CancelTimer",
                                               "TransactionTerminated"]
    assert layer.state_of(key) is None


# --- 2xx retransmission by the UAS (RFC 3261 13.3.1.4) --------------------------------------
def ack_every_2xx(pair, event):
    if isinstance(event, ResponseReceived) and event.response.status_code == 200:
        r = event.response
        ack = Request("ACK", "sip:bob@192.0.2.2", [
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKack"), ("From", r.headers.get("From")),
            ("To", r.headers.get("To")), ("Call-ID", r.call_id), ("CSeq", f"{r.cseq.seq} ACK")])
        pair.process(pair.uac, pair.uac.layer.send_stateless(ack, pair.uas.address))


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_uas_repeats_its_2xx_until_timer_l_when_no_ack_comes(transport):
    pair = SipPair(transport=transport)
    pair.uas.on_event = answer_with(200)
    pair.uac_send(pair.request("INVITE"))
    pair.run()
    expected = [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert pair.uas.sent_at(is_status(200)) == expected  # on TCP too: 13.3.1.4 ignores the transport
    assert [(t, e.timer) for t, e in pair.uas.events_of(TransactionTimeout)] == [(32.0, "L")]
    assert [e.response.status_code for _, e in pair.uac.events_of(ResponseReceived)].count(200) == 11


def test_the_ack_stops_the_2xx_retransmissions_and_still_reaches_the_core():
    pair = SipPair(delay=0.3)  # the 200 leaves at 0.3; its ACK lands at 0.9, after one repeat at 0.8
    pair.uas.on_event = answer_with(200)
    pair.uac.on_event = ack_every_2xx
    pair.uac_send(pair.request("INVITE"))
    pair.run()
    assert pair.uas.sent_at(is_status(200)) == pytest.approx([0.3, 0.8])
    acks = [e for _, e in pair.uas.events_of(RequestReceived) if e.request.method == "ACK"]
    assert len(acks) == 2 and all(e.transaction is None for e in acks)
    assert pair.uas.events_of(TransactionTimeout) == []


def test_2xx_retransmission_can_be_left_to_the_tu():
    pair = SipPair(config=TimerConfig(retransmit_2xx=False))
    pair.uas.on_event = answer_with(200)
    pair.uac_send(pair.request("INVITE"))
    pair.run()
    assert pair.uas.sent_at(is_status(200)) == [0] and pair.uas.events_of(TransactionTimeout) == []
