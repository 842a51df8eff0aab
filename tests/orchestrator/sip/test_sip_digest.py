"""Digest authentication (RFC 3261 22.4, RFC 7616, RFC 8760): RFC vectors,
stateless nonces with expiry, server verification against a stored HA1, and
the client side used by outbound trunks."""

from __future__ import annotations

import pytest

from orchestrator.sip import (
    DigestServer,
    Request,
    authorization_for,
    compute_ha1,
    digest_response,
    parse_auth_header,
)
from orchestrator.sip.digest import parse_challenges

# RFC 7616 section 3.9.1 (the same request answered with MD5 and with SHA-256).
RFC7616 = dict(method="GET", uri="/dir/index.html", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
               qop="auth", nc="00000001", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")


@pytest.mark.parametrize("algorithm, expected", [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_section_3_9_1_vectors(algorithm, expected):
    ha1 = compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", algorithm)
    assert digest_response(ha1=ha1, algorithm=algorithm, **RFC7616) == expected


def test_rfc2617_section_3_5_vector():
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5")
    assert digest_response(ha1=ha1, algorithm="MD5", method="GET", uri="/dir/index.html",
                           nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth", nc="00000001",
                           cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"


USERS = {("alice", "MD5"): compute_ha1("alice", "hotline.example", "s3cret", "MD5"),
         ("alice", "SHA-256"): compute_ha1("alice", "hotline.example", "s3cret", "SHA-256")}


def lookup(username, realm, algorithm):
    assert realm == "hotline.example"
    return USERS.get((username, algorithm.upper() if algorithm.upper() == "MD5" else algorithm))


def register(auth_value: str | None = None, uri: str = "sip:hotline.example") -> Request:
    headers = [("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc"), ("From", "<sip:alice@hotline.example>;tag=1"),
               ("To", "<sip:alice@hotline.example>"), ("Call-ID", "reg-1"), ("CSeq", "1 REGISTER")]
    if auth_value:
        headers.append(("Authorization", auth_value))
    return Request("REGISTER", uri, headers)


@pytest.fixture
def server():
    return DigestServer(realm="hotline.example", secret=b"0123456789abcdef-test-secret")


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_challenge_answer_verify_round_trip(server, algorithm):
    challenges = server.challenges(now=1000.0)
    assert [c.get("algorithm") for c in challenges] == ["SHA-256", "MD5"]  # RFC 8760: preferred first
    challenge = next(c for c in challenges if c.get("algorithm") == algorithm)
    # Over the wire: the header text parses back to the same challenge.
    assert parse_auth_header(str(challenge), "WWW-Authenticate") == challenge
    creds = authorization_for(challenge, method="REGISTER", uri="sip:hotline.example", username="alice",
                              password="s3cret", cnonce="c0ffee")
    result = server.verify(register(str(creds)), lookup, now=1010.0)
    assert result.ok and result.username == "alice"


def test_wrong_password_unknown_user_and_foreign_nonce_fail(server):
    challenge = server.challenges(now=0.0)[0]
    bad = authorization_for(challenge, method="REGISTER", uri="sip:hotline.example", username="alice",
                            password="guess", cnonce="x")
    assert server.verify(register(str(bad)), lookup, now=1.0).reason == "wrong response"
    bob = authorization_for(challenge, method="REGISTER", uri="sip:hotline.example", username="bob",
                            password="s3cret", cnonce="x")
    assert server.verify(register(str(bob)), lookup, now=1.0).reason == "unknown user"
    other = DigestServer(realm="hotline.example", secret=b"another-secret-of-16+")
    forged = authorization_for(other.challenges(now=0.0)[0], method="REGISTER", uri="sip:hotline.example",
                               username="alice", password="s3cret", cnonce="x")
    assert server.verify(register(str(forged)), lookup, now=1.0).reason == "nonce was not issued by us"


def test_expired_nonce_with_right_password_is_stale(server):
    challenge = server.challenges(now=0.0)[0]
    creds = authorization_for(challenge, method="REGISTER", uri="sip:hotline.example", username="alice",
                              password="s3cret", cnonce="x")
    assert server.verify(register(str(creds)), lookup, now=299.0).ok
    late = server.verify(register(str(creds)), lookup, now=301.0)
    assert (late.ok, late.stale) == (False, True)
    assert server.challenges(now=301.0, stale=True)[0].get("stale") == "true"


def test_nonce_tampering_is_detected(server):
    nonce = server.make_nonce(5.0)
    assert server.check_nonce(nonce, 6.0) == "valid"
    flipped = ("A" if nonce[3] != "A" else "B").join([nonce[:3], nonce[4:]])
    assert server.check_nonce(flipped, 6.0) == "invalid"
    assert server.check_nonce("not base64 at all!", 6.0) == "invalid"
    assert server.make_nonce(5.0) != nonce  # a counter keeps nonces unique at the same instant


def test_uri_must_match_and_missing_credentials_ask_for_a_challenge(server):
    challenge = server.challenges(now=0.0)[0]
    creds = authorization_for(challenge, method="REGISTER", uri="sip:elsewhere.example", username="alice",
                              password="s3cret", cnonce="x")
    assert "uri" in server.verify(register(str(creds)), lookup, now=1.0).reason
    assert not server.verify(register(), lookup, now=1.0).ok
    assert not server.verify(register("NoOneKnowsThisScheme opaque-data=here"), lookup, now=1.0).ok


def test_client_uses_stored_ha1_and_picks_the_best_algorithm():
    offered = [parse_auth_header('Digest realm="trunk", nonce="n1", algorithm=MD5, qop="auth"'),
               parse_auth_header('Digest realm="trunk", nonce="n1", algorithm=SHA-256, qop="auth", opaque="o"')]
    best = parse_challenges(offered)[0]
    assert best.get("algorithm") == "SHA-256"
    ha1 = compute_ha1("gw", "trunk", "pw", "SHA-256")
    a = authorization_for(best, method="INVITE", uri="sip:+15551234@trunk", username="gw", ha1=ha1, cnonce="cn",
                          nc=2)
    b = authorization_for(best, method="INVITE", uri="sip:+15551234@trunk", username="gw", password="pw",
                          cnonce="cn", nc=2)
    assert a == b and a.get("nc") == "00000002" and a.get("opaque") == "o" and a.get("qop") == "auth"
    assert a.get("response") == digest_response(ha1=ha1, algorithm="SHA-256", method="INVITE",
                                                uri="sip:+15551234@trunk", nonce="n1", qop="auth",
                                                nc="00000002", cnonce="cn")


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="secret"):
        DigestServer(realm="r", secret=b"short")
    with pytest.raises(ValueError, match="algorithm"):
        DigestServer(realm="r", secret=b"x" * 16, algorithms=("SHA-1",))
