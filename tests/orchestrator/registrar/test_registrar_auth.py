"""The Authenticator (INVITEs from users and trunks) and the trunk helpers:
allowlists, inbound digest, 407 challenges, uniform refusals, suspicious
sources, and answering a trunk's 401/407 on outbound requests."""

from __future__ import annotations

import pytest
from registrar_harness import REALM, SECRET, T0

from orchestrator.registrar import (
    Account,
    Authenticator,
    DigestAuth,
    DigestConfig,
    Directory,
    OutboundCredentials,
    Trunk,
    TrunkTable,
    authorize_retry,
    make_ha1s,
)
from orchestrator.sip import (
    Address,
    Request,
    authorization_for,
    make_response,
    parse_auth_header,
    parse_datagram,
)
from orchestrator.sip.digest import parse_challenges

PHONE = Address("192.0.2.10", 5062, "UDP")
CARRIER = Trunk("carrier", allow=("203.0.113.0/24", "2001:db8:100::/48"))
CARRIER_EDGE = Trunk("carrier-edge", allow=("203.0.113.128/25",))
ROAMING = Trunk("roaming", inbound=Account.from_password("pbx-b", REALM, "trunk-pw", kind="trunk"))


def invite(
    from_user: str = "9001",
    to: str = "sip:2000@hotline.example",
    *,
    call_id: str = "inv-1",
    cseq: int = 1,
    proxy_auth: str | None = None,
    method: str = "INVITE",
) -> Request:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-inv1;rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{from_user}@{REALM}>;tag=f1"),
        ("To", f"<{to}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        ("Contact", f"<sip:{from_user}@192.0.2.10:5062>"),
        ("Content-Type", "application/sdp"),
    ]
    if proxy_auth:
        headers.append(("Proxy-Authorization", proxy_auth))
    return Request(method, to, headers, b"v=0\r\n")


@pytest.fixture
def authenticator():
    trunks = TrunkTable([CARRIER, CARRIER_EDGE, ROAMING])
    directory = Directory(
        [
            Account.from_password("9001", REALM, "agent-pw"),
            Account.from_password("9002", REALM, "other-pw", aors=(f"sip:sales@{REALM}",)),
            *trunks.inbound_accounts(),
        ]
    )
    auth = DigestAuth(directory, DigestConfig(realm=REALM, secret=SECRET, failure_threshold=3))
    return Authenticator(auth, trunks)


def answered(authenticator, request, *, user="9001", password="agent-pw", now=T0, algorithm="SHA-256"):
    first = authenticator.check(request, PHONE, now)
    assert first.response.status_code == 407
    challenge = next(c for c in first.response.proxy_authenticate if c.get("algorithm") == algorithm)
    creds = authorization_for(
        challenge,
        method=request.method,
        uri=str(request.uri),
        username=user,
        password=password,
        cnonce="cn",
        body=request.body,
    )
    request.headers.add("Proxy-Authorization", str(creds))
    return request


def test_trunk_by_source_address_longest_prefix_and_ipv6(authenticator):
    for host, name in [
        ("203.0.113.7", "carrier"),
        ("203.0.113.200", "carrier-edge"),
        ("2001:db8:100::5", "carrier"),
        ("::ffff:203.0.113.9", "carrier"),
    ]:
        d = authenticator.check(invite("+15551234"), Address(host, 5060), T0)
        assert d.ok and d.identity.kind == "trunk" and d.identity.name == name and d.identity.by == "address"
    d = authenticator.check(invite("+15551234"), Address("198.51.100.1", 5060), T0)
    assert d.response.status_code == 407


def test_user_invite_is_challenged_with_407_then_accepted(authenticator):
    first = authenticator.check(invite(), PHONE, T0)
    r = first.response
    assert not first.ok and r.status_code == 407 and r.headers.get("WWW-Authenticate") is None
    assert [c.get("algorithm") for c in r.proxy_authenticate] == ["SHA-256", "MD5"]
    assert r.to.tag and parse_datagram(r.serialize()) == r
    d = authenticator.check(answered(authenticator, invite()), PHONE, T0 + 1)
    assert d.ok and (d.identity.kind, d.identity.name, d.identity.by) == ("user", "9001", "digest")
    assert d.identity.account.username == "9001" and d.identity.trunk is None


def test_trunk_with_digest_instead_of_addresses(authenticator):
    d = authenticator.check(
        answered(authenticator, invite("+15550001"), user="pbx-b", password="trunk-pw"), PHONE, T0 + 1
    )
    assert d.ok and (d.identity.kind, d.identity.name, d.identity.by) == ("trunk", "roaming", "digest")


def test_from_must_be_the_authenticated_user_or_one_of_its_aors(authenticator):
    d = authenticator.check(answered(authenticator, invite("9002"), user="9001"), PHONE, T0 + 1)
    assert d.response.status_code == 403 and d.reason == "From is not the authenticated user"
    d = authenticator.check(
        answered(authenticator, invite("sales"), user="9002", password="other-pw"), PHONE, T0 + 1
    )
    assert d.ok and d.identity.name == "9002"
    lax = Authenticator(authenticator.auth, authenticator.trunks, check_from=False)
    assert lax.check(answered(lax, invite("9002"), user="9001"), PHONE, T0 + 1).ok


def test_refusals_are_uniform_and_feed_the_suspicious_signal(authenticator):
    wrong = authenticator.check(answered(authenticator, invite(), password="guess"), PHONE, T0 + 1).response
    ghost = authenticator.check(answered(authenticator, invite("7777"), user="7777"), PHONE, T0 + 1).response
    assert wrong.status_code == ghost.status_code == 403
    assert [n for n, _ in wrong.headers] == [n for n, _ in ghost.headers]
    assert (
        authenticator.check(
            answered(authenticator, invite(), password="again"), PHONE, T0 + 1
        ).response.status_code
        == 403
    )
    assert authenticator.is_suspicious(PHONE.host, T0 + 2)
    assert authenticator.suspicious_sources(T0 + 2) == [(PHONE.host, 3)]


def test_ack_and_cancel_are_never_challenged(authenticator):
    for method in ("ACK", "CANCEL"):
        d = authenticator.check(invite(method=method), PHONE, T0)
        assert d.ok and d.identity is None


def test_www_authenticate_flavour(authenticator):
    uas = Authenticator(authenticator.auth, authenticator.trunks, challenge_status=401)
    r = uas.check(invite(), PHONE, T0).response
    assert r.status_code == 401 and len(r.www_authenticate) == 2
    request = invite()
    request.headers.add(
        "Authorization",
        str(
            authorization_for(
                r.www_authenticate[0],
                method="INVITE",
                uri=str(request.uri),
                username="9001",
                password="agent-pw",
                cnonce="c",
            )
        ),
    )
    assert uas.check(request, PHONE, T0 + 1).ok
    with pytest.raises(ValueError, match="challenge_status"):
        Authenticator(authenticator.auth, challenge_status=403)  # type: ignore[arg-type]


def test_trunk_configuration_errors():
    with pytest.raises(ValueError, match="not a network"):
        Trunk("t", allow=("203.0.113.1/24",))  # host bits set: a typo worth refusing
    with pytest.raises(ValueError, match="string"):
        Trunk("t", allow="203.0.113.0/24")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind 'trunk'"):
        Trunk("t", inbound=Account.from_password("u", REALM, "p"))
    with pytest.raises(ValueError, match="twice"):
        TrunkTable([Trunk("t"), Trunk("t")])
    with pytest.raises(ValueError, match="listed by trunks"):
        TrunkTable([Trunk("a", allow=("10.0.0.0/8",)), Trunk("b", allow=("10.0.0.0/8",))])
    assert TrunkTable().match_source("not-an-ip") is None


# -- outbound: answering a trunk's challenge ---------------------------------------------------------
CARRIER_REALM = "sip.carrier.example"


def outbound_invite() -> Request:
    r = invite("hotline", to="sip:+15551234@sip.carrier.example", call_id="out-1", cseq=10)
    r.headers.add("Route", "<sip:sip.carrier.example;lr>")
    return r


def carrier_challenge(
    request: Request, status: int = 407, *, stale: bool = False, algorithms=("SHA-256", "MD5")
):
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    headers = [
        (
            name,
            f'Digest realm="{CARRIER_REALM}", nonce="n-{i}", algorithm={a}, qop="auth", opaque="op"'
            + (", stale=true" if stale else ""),
        )
        for i, a in enumerate(algorithms)
    ]
    return make_response(request, status, to_tag="carrier-tag", headers=headers)


@pytest.mark.parametrize("status, header", [(401, "Authorization"), (407, "Proxy-Authorization")])
def test_retry_answers_the_best_challenge_with_a_new_cseq_and_no_via(status, header):
    creds = OutboundCredentials.from_password("hotline-trunk", "carrier-pw", realm=CARRIER_REALM)
    original = outbound_invite()
    retry = authorize_retry(original, carrier_challenge(original, status), creds, cnonce="rand", nc=1)
    assert retry.cseq.seq == 11 and retry.cseq.method == "INVITE"
    assert retry.headers.get("Via") is None  # the endpoint adds a fresh Via (new branch)
    assert (retry.call_id, retry.from_.tag, str(retry.uri), retry.body) == (
        original.call_id,
        original.from_.tag,
        str(original.uri),
        original.body,
    )
    assert retry.headers.get_all("Route") == ["<sip:sip.carrier.example;lr>"]
    (cred,) = [parse_auth_header(v, header) for v in retry.headers.get_all(header)]
    assert (cred.get("algorithm"), cred.get("nonce"), cred.get("opaque"), cred.get("username")) == (
        "SHA-256",
        "n-0",
        "op",
        "hotline-trunk",
    )
    assert original.cseq.seq == 10 and original.headers.get("Via")  # the original is untouched


def test_retry_is_verified_by_a_real_digest_server():
    """Our answer to a challenge from our own Authenticator (standing in for the carrier) is accepted."""
    carrier = Authenticator(
        DigestAuth(
            Directory([Account.from_password("hotline-trunk", CARRIER_REALM, "pw")]),
            DigestConfig(realm=CARRIER_REALM, secret=SECRET),
        ),
        check_from=False,
    )
    creds = OutboundCredentials.from_password("hotline-trunk", "pw")  # realm unknown: password kept
    original = outbound_invite()
    challenge = carrier.check(original, PHONE, T0).response
    retry = authorize_retry(original, challenge, creds, cnonce="c1")
    retry.headers.add("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-retry")
    assert carrier.check(retry, PHONE, T0 + 1).ok


def test_retry_gives_up_instead_of_looping():
    creds = OutboundCredentials.from_password("hotline-trunk", "wrong", realm=CARRIER_REALM)
    original = outbound_invite()
    retry = authorize_retry(original, carrier_challenge(original), creds, cnonce="a")
    assert authorize_retry(retry, carrier_challenge(retry), creds, cnonce="b") is None  # refused credentials
    again = authorize_retry(retry, carrier_challenge(retry, stale=True), creds, cnonce="b")
    assert again is not None and again.cseq.seq == 12  # stale=true: the password was right, retry once more
    assert len(again.headers.get_all("Proxy-Authorization")) == 1  # replaced, not piled up


def test_retry_keeps_credentials_of_other_realms_and_uses_stored_ha1():
    ha1 = make_ha1s("hotline-trunk", CARRIER_REALM, "pw", ["MD5"])["MD5"]
    creds = OutboundCredentials("hotline-trunk", {(CARRIER_REALM, "MD5"): ha1})
    original = outbound_invite()
    original.headers.add(
        "Proxy-Authorization", 'Digest username="x", realm="upstream", nonce="u", uri="sip:x", response="00"'
    )
    retry = authorize_retry(original, carrier_challenge(original), creds, cnonce="a")
    values = retry.headers.get_all("Proxy-Authorization")
    assert len(values) == 2 and 'realm="upstream"' in values[0]
    assert parse_auth_header(values[1], "Proxy-Authorization").get("algorithm") == "MD5"  # no SHA-256 HA1
    assert not creds.can_answer(parse_challenges(carrier_challenge(original).proxy_authenticate)[0])


def test_retry_without_an_answerable_challenge_or_for_other_statuses():
    creds = OutboundCredentials("u", {("other-realm", "MD5"): "0" * 32})
    original = outbound_invite()
    assert authorize_retry(original, carrier_challenge(original), creds, cnonce="a") is None
    with pytest.raises(ValueError, match="401 or 407"):
        authorize_retry(original, make_response(original, 403), creds, cnonce="a")
    with pytest.raises(ValueError, match="HA1 values or a password"):
        OutboundCredentials("u")


def test_outbound_password_with_a_realm_is_not_kept():
    creds = OutboundCredentials.from_password("u", "carrier-pw", realm=CARRIER_REALM)
    assert creds.password is None and set(creds.ha1) == {(CARRIER_REALM, "SHA-256"), (CARRIER_REALM, "MD5")}
    assert "carrier-pw" not in repr(OutboundCredentials.from_password("u", "carrier-pw"))


# -- configuration ---------------------------------------------------------------------------------
def test_trunks_from_config_tables():
    import tomllib

    from orchestrator.registrar import trunks_from_config

    config = tomllib.loads(f"""
[[trunk]]
name = "carrier"
allow = ["203.0.113.0/24"]
host = "sip.carrier.example"
[trunk.outbound]
username = "hotline"
realm = "{CARRIER_REALM}"
password = "carrier-pw"

[[trunk]]
name = "branch-pbx"
username = "pbx-b"
ha1_md5 = "{make_ha1s("pbx-b", REALM, "trunk-pw", ["MD5"])["MD5"]}"
""")
    carrier, pbx = trunks_from_config(config["trunk"], REALM, ignore_keys={"host"})
    assert carrier.allow == ("203.0.113.0/24",) and carrier.inbound is None
    assert carrier.outbound.password is None and (CARRIER_REALM, "SHA-256") in carrier.outbound.ha1
    assert pbx.inbound.kind == "trunk" and set(pbx.inbound.ha1) == {"MD5"} and pbx.outbound is None
    table = TrunkTable([carrier, pbx])
    assert table.match_source("203.0.113.77") is carrier and table.by_username("pbx-b") is pbx


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "t", "allow": ["10.0.0.0/8"], "host": "x"}, r"trunk\[0\]: unknown keys host"),
        ({"allow": ["10.0.0.0/8"]}, r"trunk\[0\]\.name"),
        ({"name": "t"}, "needs allow, inbound credentials or outbound"),
        ({"name": "t", "password": "x"}, "need a username"),
        ({"name": "t", "allow": "10.0.0.0/8"}, r"\(t\)\.allow"),
        ({"name": "t", "allow": ["10.0.0.1/8"]}, "not a network"),
        ({"name": "t", "outbound": {"username": "u", "ha1_md5": "0" * 32}}, "need the realm"),
        ({"name": "t", "outbound": {"username": "u"}}, "needs a password or HA1"),
        ({"name": "t", "outbound": {"username": "u", "pass": "x"}}, r"outbound: unknown keys pass"),
    ],
)
def test_trunk_config_errors_name_the_entry(entry, message):
    from orchestrator.registrar import trunks_from_config

    with pytest.raises(ValueError, match=message):
        trunks_from_config([entry], REALM)
