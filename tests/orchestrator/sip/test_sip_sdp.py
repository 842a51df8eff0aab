"""SDP (RFC 4566) parsing/serialization and offer/answer (RFC 3264) for
PCMU, PCMA, Opus and telephone-event."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sip import (
    MediaPolicy,
    SdpParseError,
    SessionDescription,
    answer_direction,
    apply_answer,
    create_answer,
    create_offer,
    parse_datagram,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rfc4475"

# RFC 4566 section 5 example, verbatim (CRLF line ends).
RFC4566_EXAMPLE = (
    b"v=0\r\n"
    b"o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    b"s=SDP Seminar\r\n"
    b"i=A Seminar on the session description protocol\r\n"
    b"u=http://www.example.com/seminars/sdp.pdf\r\n"
    b"e=j.doe@example.com (Jane Doe)\r\n"
    b"c=IN IP4 224.2.17.12/127\r\n"
    b"t=2873397496 2873404696\r\n"
    b"a=recvonly\r\n"
    b"m=audio 49170 RTP/AVP 0\r\n"
    b"m=video 51372 RTP/AVP 99\r\n"
    b"a=rtpmap:99 h263-1998/90000\r\n"
)

# A typical softphone offer: opus first, G.711, two telephone-event rates.
PHONE_OFFER = (
    b"v=0\r\n"
    b"o=- 3912345678 3912345678 IN IP4 198.51.100.20\r\n"
    b"s=-\r\n"
    b"c=IN IP4 198.51.100.20\r\n"
    b"t=0 0\r\n"
    b"m=audio 40000 RTP/AVP 111 0 8 101 110\r\n"
    b"a=rtpmap:111 opus/48000/2\r\n"
    b"a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/48000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=rtpmap:110 telephone-event/8000\r\n"
    b"a=fmtp:110 0-15\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
    b"m=video 40002 RTP/AVP 96\r\n"
    b"a=rtpmap:96 VP8/90000\r\n"
)


def test_rfc4566_example_round_trips_byte_exact():
    sdp = SessionDescription.parse(RFC4566_EXAMPLE)
    assert sdp.origin.username == "jdoe" and sdp.origin.address == "10.47.16.5"
    assert sdp.session_name == "SDP Seminar" and sdp.emails == ["j.doe@example.com (Jane Doe)"]
    assert sdp.connection.host == "224.2.17.12" and sdp.direction == "recvonly"
    assert [(m.media, m.port, m.formats) for m in sdp.media] == [("audio", 49170, ["0"]), ("video", 51372, ["99"])]
    assert sdp.media[1].rtpmaps()[99].encoding == "h263-1998"
    assert sdp.serialize() == RFC4566_EXAMPLE


@pytest.mark.parametrize("name", ["wsinv", "esc01", "longreq", "unreason", "bcast", "sdp01", "inv2543"])
def test_rfc4475_bodies_round_trip(name):
    body = parse_datagram((FIXTURES / f"{name}.dat").read_bytes()).body
    assert SessionDescription.parse(body).serialize() == body


def test_every_line_type_is_kept():
    text = (b"v=0\r\no=a 1 2 IN IP6 2001:db8::1\r\ns=x\r\ni=info\r\nu=http://x\r\ne=a@b\r\np=+1 555\r\n"
            b"c=IN IP6 2001:db8::1\r\nb=AS:64\r\nt=1 2\r\nr=604800 3600 0 90000\r\nt=3 4\r\n"
            b"z=2882844526 -1h\r\nk=prompt\r\na=tool:x\r\nm=audio 1/2 RTP/AVP 0\r\ni=t\r\n"
            b"c=IN IP6 2001:db8::2\r\nb=AS:32\r\nk=prompt\r\na=ptime:30\r\n")
    sdp = SessionDescription.parse(text)
    assert sdp.timings[0].repeats == ["604800 3600 0 90000"] and len(sdp.timings) == 2
    assert sdp.media[0].num_ports == 2 and sdp.media[0].key == "prompt"
    assert sdp.serialize() == text


@pytest.mark.parametrize("bad", [
    b"o=a 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",  # no v=
    b"v=0\r\ns=-\r\nt=0 0\r\n",  # no o=
    b"v=0\r\no=a 1 2 IN IP4 1.2.3.4\r\ns=-\r\n",  # no t=
    b"v=0\r\no=a 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nx=unknown\r\n",  # unknown type letter
    b"v=0\r\no=a 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",  # port
    b"v=0\r\no=a 1 2 IN IP4 1.2.3.4\r\nt=0 0\r\ns=-\r\n",  # order
    b"v=0\r\no=a 1 2\r\ns=-\r\nt=0 0\r\n",  # short o=
    b"v=0\r\no=a 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm =video 1 RTP/AVP 31\r\n",  # dblreq's trailing junk
    b"\xff\xfe",
])
def test_invalid_descriptions_raise_sdp_parse_error(bad):
    with pytest.raises(SdpParseError):
        SessionDescription.parse(bad)


def answer(offer_bytes, **kw):
    kw.setdefault("policy", MediaPolicy())
    return create_answer(SessionDescription.parse(offer_bytes), address="192.0.2.10", port=30000,
                         session_id=1, session_version=1, **kw)


def test_answer_prefers_our_order_keeps_offer_payload_types_and_rejects_video():
    sdp, result = answer(PHONE_OFFER)
    audio, video = sdp.media
    assert audio.formats == ["111", "101"]  # opus, telephone-event at the opus rate
    assert audio.attributes_named("rtpmap") == ["111 opus/48000/2", "101 telephone-event/48000"]
    assert audio.attributes_named("fmtp") == ["111 minptime=10;useinbandfec=1", "101 0-16"]  # passthrough
    assert audio.direction == "sendrecv" and audio.attribute("ptime") == "20" and audio.port == 30000
    assert (video.port, video.formats) == (0, ["96"])  # rejected, count and order kept
    a = result.audio
    assert (a.codec.name, a.codec.payload_type, a.telephone_event.payload_type) == ("opus", 111, 101)
    assert (a.remote_address, a.remote_port, a.remote_ptime, a.remote_hold) == ("198.51.100.20", 40000, 20, False)
    assert [s.accepted for s in result.streams] == [True, False]
    assert SessionDescription.parse(sdp.serialize()) == sdp


def test_g711_only_policy_and_remote_preference():
    _, result = answer(PHONE_OFFER, policy=MediaPolicy(codecs=("PCMA", "PCMU")))
    assert (result.audio.codec.name, result.audio.codec.payload_type) == ("PCMA", 8)
    assert result.audio.telephone_event.payload_type == 110  # the 8 kHz one matches PCMA's clock
    assert result.audio.telephone_event.fmtp == "0-15"  # offered 0-15, we do 0-16: the intersection
    _, result = answer(PHONE_OFFER, policy=MediaPolicy(codecs=("PCMA", "PCMU"), prefer="remote"))
    assert result.audio.codec.name == "PCMU"


def test_no_common_codec_rejects_the_stream():
    offer = PHONE_OFFER.replace(b"111 0 8 101 110", b"18 101").replace(b"m=video 40002", b"m=video 0")
    sdp, result = answer(offer)
    assert [m.port for m in sdp.media] == [0, 0] and result.audio is None


@pytest.mark.parametrize("offered, wanted, expected", [
    ("sendrecv", "sendrecv", "sendrecv"), ("sendonly", "sendrecv", "recvonly"),
    ("recvonly", "sendrecv", "sendonly"), ("inactive", "sendrecv", "inactive"),
    ("sendrecv", "sendonly", "sendonly"), ("sendonly", "sendonly", "inactive"),
    ("sendrecv", "inactive", "inactive"), ("recvonly", "recvonly", "inactive"),
])
def test_answer_direction_table(offered, wanted, expected):
    assert answer_direction(offered, wanted) == expected


@pytest.mark.parametrize("change, hold", [
    (b"a=sendrecv", False), (b"a=sendonly", True), (b"a=inactive", True),
])
def test_hold_detection_by_direction(change, hold):
    sdp, result = answer(PHONE_OFFER.replace(b"a=sendrecv", change))
    assert result.audio.remote_hold is hold
    assert sdp.media[0].direction == answer_direction(change[2:].decode())


def test_hold_detection_by_rfc2543_zero_address():
    _, result = answer(PHONE_OFFER.replace(b"c=IN IP4 198.51.100.20", b"c=IN IP4 0.0.0.0"))
    assert result.audio.remote_hold and result.audio.remote_address == "0.0.0.0"


def test_offer_then_answer_from_the_offerer_side():
    offer = create_offer(address="192.0.2.10", port=30000, session_id=7, session_version=1)
    assert offer.media[0].formats == ["96", "0", "8", "101"]
    # The peer answers with PCMU only, and puts us on hold.
    answer_sdp, _ = create_answer(SessionDescription.parse(offer.serialize()), address="203.0.113.5", port=5004,
                                  policy=MediaPolicy(codecs=("PCMU",)), session_id=9, session_version=1,
                                  direction="sendonly")
    result = apply_answer(offer, answer_sdp)
    a = result.audio
    assert (a.codec.name, a.codec.payload_type, a.telephone_event.payload_type) == ("PCMU", 0, 101)
    assert (a.remote_address, a.remote_port, a.direction, a.remote_hold) == ("203.0.113.5", 5004, "recvonly", True)


def test_answer_with_wrong_m_line_count_is_rejected():
    offer = create_offer(address="192.0.2.10", port=30000, session_id=7, session_version=1)
    bogus = SessionDescription.parse(RFC4566_EXAMPLE)
    with pytest.raises(SdpParseError):
        apply_answer(offer, bogus)


def test_policy_validation():
    with pytest.raises(ValueError, match="codecs"):
        MediaPolicy(codecs=("G729",))
    with pytest.raises(ValueError, match="ptime"):
        MediaPolicy(ptime=5)
