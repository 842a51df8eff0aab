"""The B2BUA's parts on their own: the dial plan, INFO DTMF parsing, events,
the SDP/engine glue, the in-memory services, and the registrar adapters
(with the real registrar: a phone registers with digest auth, then is called)."""

from __future__ import annotations

import pytest
import trio
from b2bua_harness import engine_port_range, phones, running_hotline, trio_test
from hypothesis import given
from hypothesis import strategies as st

from mediacore.engine import Engine
from orchestrator.calls import (
    CallEvent,
    CallManagerConfig,
    ChannelSink,
    Contact,
    DialPlan,
    Identity,
    InMemoryLocator,
    MediaSession,
    NoAcceptableMedia,
    Prefix,
    RegistrarAuthenticator,
    RegistrarLocator,
    Reject,
    RouteRequest,
    ToExtension,
    ToIvr,
    ToQueue,
    ToTrunk,
    ToUri,
    Trunk,
    describe,
    parse_info_dtmf,
)
from orchestrator.sip import Address, MediaPolicy, SessionDescription, create_offer, parse_uri


# ---------------------------------------------------------------------------- dial plan
def request(user, *, trunk=None, to_user=None):
    return RouteRequest(user=user, to_user=to_user, from_user="caller", request_uri=f"sip:{user}@h",
                        source=Address("192.0.2.1", 5060), identity=Identity("anonymous"), trunk=trunk)


PLAN = DialPlan(dids={"1000": ToIvr("main"), "2000": ToQueue("support"), "+15551000": ToQueue("sales")},
                trunk_defaults={"carrier-b": ToIvr("after-hours")}, extensions=r"9[0-9]{3}",
                prefixes=[Prefix("9", trunk="pstn", strip=1, min_length=7), Prefix("+", trunk="pstn")],
                default=Reject(404))


@pytest.mark.parametrize("user,trunk,expected", [
    ("1000", None, ToIvr("main")),
    ("+15551000", "carrier-b", ToQueue("sales")),  # an exact DID beats the trunk default
    ("5550000", "carrier-b", ToIvr("after-hours")),
    ("9001", None, ToExtension("9001")),
    ("95551234", None, ToTrunk("pstn", "5551234")),  # 9 + number: out through pstn, 9 stripped
    ("+442071234567", None, ToTrunk("pstn", "+442071234567")),
    ("955", None, Reject(404)),  # too short for the prefix rule
    ("nobody", None, Reject(404)),
    (None, None, Reject(404)),
])
def test_dial_plan_order(user, trunk, expected):
    assert PLAN.route(request(user, trunk=trunk)) == expected


def test_dial_plan_uses_the_to_user_when_the_request_uri_has_none():
    assert PLAN.route(request(None, to_user="2000")) == ToQueue("support")
    assert DialPlan(use_to_user=False).route(request(None, to_user="2000")) == Reject(404)


def test_route_targets_validate_and_describe():
    assert describe(ToExtension("9001")) == "extension:9001"
    assert describe(ToTrunk("pstn", "123")) == "trunk:pstn:123"
    assert describe(Reject(486)) == "reject:486"
    with pytest.raises(ValueError, match="uri"):
        ToUri("tel:+1555")
    with pytest.raises(ValueError, match="status"):
        Reject(200)
    with pytest.raises(ValueError, match="extensions"):
        DialPlan(extensions="[")
    with pytest.raises(ValueError, match="username/password"):
        Trunk(name="t", uri="sip:10.0.0.1", username="u")
    trunk = Trunk(name="t", uri="sips:gw.example.com:5061;transport=tls")
    assert str(trunk.request_uri("+1555")) == "sips:+1555@gw.example.com:5061;transport=tls"


# ---------------------------------------------------------------------------- INFO DTMF
@given(st.sampled_from("0123456789*#ABCD"), st.integers(40, 5000), st.sampled_from(["\r\n", "\n"]))
def test_dtmf_relay_bodies_round_trip(digit, duration, eol):
    body = f"Signal={digit}{eol}Duration={duration}{eol}".encode()
    info = parse_info_dtmf("application/dtmf-relay", body)
    assert (info.digit, info.duration_ms) == (digit, duration)


@pytest.mark.parametrize("ctype,body,digit", [
    ("application/dtmf", b"7", "7"),
    ("application/dtmf", b"10", "*"),  # RFC 4733 event codes, as some devices send them
    ("application/dtmf; charset=x", b"11\r\n", "#"),
    ("application/dtmf-relay", b"signal = 11\nduration=250", "#"),
    ("application/dtmf-relay", b"Signal=e\r\n", None),
    ("application/dtmf-relay", b"Duration=160\r\n", None),
    ("application/dtmf", b"\xff", None),
    ("text/plain", b"5", None),
])
def test_dtmf_bodies(ctype, body, digit):
    info = parse_info_dtmf(ctype, body)
    assert (info.digit if info else None) == digit


# ---------------------------------------------------------------------------- events
def test_events_have_contract_names_and_the_channel_sink_never_blocks():
    with pytest.raises(ValueError, match="name"):
        CallEvent(name="call.exploded", call_id="1", at=0, caller="a", callee="b")
    send, receive = trio.open_memory_channel(1)
    sink = ChannelSink(send)
    for _ in range(3):
        sink.emit(CallEvent(name="call.incoming", call_id="1", at=0, caller="a", callee="b"))
    assert (sink.sent, sink.dropped) == (1, 2)
    event = receive.receive_nowait()
    with pytest.raises(TypeError):
        event.details["x"] = 1  # read-only


def test_config_validates():
    with pytest.raises(ValueError, match="domain"):
        CallManagerConfig(domain="bad domain")
    with pytest.raises(ValueError, match="retry_after"):
        CallManagerConfig(retry_after=0)
    with pytest.raises(ValueError, match="trunks"):
        CallManagerConfig(trunks=(Trunk(name="a", uri="sip:h"), Trunk(name="a", uri="sip:h")))


# ---------------------------------------------------------------------------- media glue
@pytest.fixture
def engine():
    lo, hi = engine_port_range(40)
    with Engine(port_range=(lo, hi), threads=1, stats_interval=0) as eng:
        yield eng


def offer(direction="sendrecv", host="127.0.0.1", codecs=("PCMA", "PCMU"), port=40000):
    return create_offer(address=host, port=port, policy=MediaPolicy(codecs=codecs), session_id=1,
                        session_version=1, direction=direction).serialize()


def test_answer_anchors_media_on_an_engine_leg_and_tracks_hold(engine):
    media = MediaSession(engine, policy=MediaPolicy(codecs=("PCMU", "PCMA", "opus")))
    body = media.answer(offer(), prefer_remote=True)
    answer = SessionDescription.parse(body)
    assert answer.media[0].port == media.leg.rtp_port and answer.connection.address == media.leg.host
    assert media.codec.name == "PCMA"  # the offerer's preference
    assert media.remote == ("127.0.0.1", 40000) and media.direction == "sendrecv"
    version = answer.origin.session_version
    again = SessionDescription.parse(media.answer(offer(), prefer=media.codec))
    assert again.origin.session_version == version  # unchanged description, unchanged version
    held = SessionDescription.parse(media.answer(offer("sendonly"), prefer=media.codec))
    assert held.media[0].direction == "recvonly" and media.remote_hold
    assert int(held.origin.session_version) == int(version) + 1
    old_hold = SessionDescription.parse(media.answer(offer(host="0.0.0.0"), prefer=media.codec))
    assert media.remote == ("127.0.0.1", 40000)  # RFC 2543 hold keeps the old address
    assert media.direction == "recvonly" and old_hold.media[0].port == media.leg.rtp_port
    leg_id = media.id
    media.destroy()
    with pytest.raises(KeyError):
        engine.leg_stats(leg_id)


def test_offer_prefers_the_other_sides_codec_and_applies_the_answer(engine):
    media = MediaSession(engine, policy=MediaPolicy(codecs=("PCMU", "PCMA")))
    other = MediaSession(engine, policy=MediaPolicy(codecs=("PCMA",)))
    other.answer(offer(codecs=("PCMA",)))
    body = media.offer(prefer=other.codec)
    sdp = SessionDescription.parse(body)
    assert sdp.media[0].formats[0] == "8"  # PCMA first: the bridge can relay
    answer = create_offer(address="127.0.0.1", port=40100, policy=MediaPolicy(codecs=("PCMA",)),
                          session_id=2, session_version=1).serialize()
    result = media.accept_answer(answer)
    assert result.codec.name == "PCMA" and media.remote == ("127.0.0.1", 40100)
    with pytest.raises(NoAcceptableMedia):
        MediaSession(engine, policy=MediaPolicy(codecs=("PCMU",))).answer(offer(codecs=("PCMA",)))
    media.destroy()
    other.destroy()


# ---------------------------------------------------------------------------- in-memory locator
@trio_test
async def test_in_memory_locator_orders_by_q_and_skips_expired():
    now = [100.0]
    locator = InMemoryLocator(clock=lambda: now[0])
    locator.add(Contact(aor="sip:9001@h", uri=parse_uri("sip:a@10.0.0.1"), q=0.5))
    locator.add(Contact(aor="sip:9001@h", uri=parse_uri("sip:b@10.0.0.2"), q=0.9, expires_at=150.0))
    assert [str(c.uri) for c in await locator.lookup("sip:9001@h")] == ["sip:b@10.0.0.2", "sip:a@10.0.0.1"]
    now[0] = 200.0
    assert [str(c.uri) for c in await locator.lookup("sip:9001@h")] == ["sip:a@10.0.0.1"]
    assert await locator.lookup("sip:nobody@h") == []
    with pytest.raises(ValueError, match="q"):
        Contact(aor="x", uri=parse_uri("sip:a@h"), q=2)


# ---------------------------------------------------------------------------- the real registrar
@trio_test
async def test_a_phone_registered_with_digest_through_the_registrar_is_called():
    import time

    from orchestrator.registrar import (
        Account,
        Authenticator,
        DigestAuth,
        DigestConfig,
        Directory,
        LocationService,
        Registrar,
        RegistrarConfig,
        RegistrarService,
    )
    from orchestrator.sip import Request, authorization_for
    from orchestrator.sip.digest import parse_challenges

    directory = Directory([Account.from_password("9001", "hotline", "agent-pw"),
                           Account.from_password("alice", "hotline", "alice-pw")])
    auth = DigestAuth(directory, DigestConfig(realm="hotline", secret=b"0123456789abcdef0123456789abcdef"))
    registrar = Registrar(RegistrarConfig(domains=frozenset({"hotline", "127.0.0.1"})), auth,
                          LocationService())
    service = RegistrarService(registrar)
    with trio.fail_after(15):
        async with running_hotline(authenticator=RegistrarAuthenticator(Authenticator(auth))) as hl, \
                phones(hl, "agent", "alice") as (agent, alice):
            hl.manager.locator = RegistrarLocator(service)
            hl.endpoint.handler = service.handler(hl.manager.handle)

            def register_request(cseq, credentials=None):
                headers = [("From", "<sip:9001@hotline>;tag=r1"), ("To", "<sip:9001@hotline>"),
                           ("Call-ID", "reg-1"), ("CSeq", f"{cseq} REGISTER"),
                           ("Contact", f"<{agent.uri}>"), ("Expires", "300")]
                if credentials:
                    headers.append(("Authorization", credentials))
                return Request("REGISTER", "sip:hotline", headers)

            first = await agent.endpoint.request(register_request(1), hl.address)
            assert first.status_code == 401
            challenge = parse_challenges(first.www_authenticate)[0]
            creds = authorization_for(challenge, method="REGISTER", uri="sip:hotline", username="9001",
                                      password="agent-pw", cnonce="c0ffee01")
            second = await agent.endpoint.request(register_request(2, str(creds)), hl.address)
            assert second.status_code == 200
            assert service.is_registered("sip:9001@hotline")

            unauthenticated = await alice.invite("sip:9001@127.0.0.1").tx
            assert unauthenticated.status_code == 407
            challenge = parse_challenges(unauthenticated.proxy_authenticate)[0]
            creds = authorization_for(challenge, method="INVITE", uri="sip:9001@127.0.0.1", username="alice",
                                      password="alice-pw", cnonce="c0ffee02")
            call = alice.invite("sip:9001@127.0.0.1", headers=[("Proxy-Authorization", str(creds))])
            assert (await call.tx).status_code == 200
            assert agent.calls[0].invite.uri.user == "agent"  # reached at its registered contact
            await call.bye()
            ended = await hl.wait_event("call.ended")
    assert time.time() >= ended.record.started_at
    assert ended.record.route == "extension:9001"
