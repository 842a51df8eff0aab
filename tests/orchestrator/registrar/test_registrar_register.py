"""REGISTER processing (RFC 3261 10.3) with digest authentication (RFC 8760)
on a simulated clock: every step's response, and the REGISTER requests that
baresip and linphone really sent (fixtures/), replayed in order."""

from __future__ import annotations

import email.utils

import pytest
from registrar_harness import (
    FIXTURE_REALM,
    FIXTURE_SECRET,
    PHONE,
    REALM,
    T0,
    Phone,
    contact_expires,
    fixture,
    make_registrar,
    register,
)

from orchestrator.registrar import Account, LocationService, MemoryBindingStore, RegistrarConfig
from orchestrator.registrar.guards import nonce_issued_at
from orchestrator.sip import (
    Address,
    Request,
    authorization_for,
    parse_auth_header,
    parse_datagram,
    validate_request,
)
from orchestrator.sip.digest import parse_challenges

AOR = f"sip:9001@{REALM}"


def challenge_of(response, algorithm="SHA-256"):
    return next(c for c in response.www_authenticate if c.get("algorithm") == algorithm)


def signed(request, challenge, *, user="9001", password="agent-pw", nc=1, cnonce="c0ffee", uri=None):
    creds = authorization_for(
        challenge,
        method="REGISTER",
        uri=uri or str(request.uri),
        username=user,
        password=password,
        cnonce=cnonce,
        nc=nc,
    )
    request.headers.add("Authorization", str(creds))
    return request


@pytest.fixture
def reg():
    return make_registrar()


def first_challenge(reg, now=T0):
    return reg.handle_register(register(cseq=1), PHONE, now).response


# -- step 3: authentication ------------------------------------------------------------------------
def test_unauthenticated_register_gets_two_challenges_sha256_first(reg):
    r = first_challenge(reg)
    assert r.status_code == 401
    challenges = r.www_authenticate
    assert [c.get("algorithm") for c in challenges] == ["SHA-256", "MD5"]  # RFC 8760 2.4
    assert {c.get("realm") for c in challenges} == {REALM}
    assert challenges[0].get("nonce") == challenges[1].get("nonce")
    assert {c.get("qop") for c in challenges} == {"auth"}
    assert all(c.get("stale") is None for c in challenges)
    assert r.to.tag and r.headers.get("Contact") is None
    assert reg.location.lookup(AOR, T0) == []


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_right_password_registers_with_either_algorithm(reg, algorithm):
    ch = challenge_of(first_challenge(reg), algorithm)
    out = reg.handle_register(signed(register(cseq=2, expires=600), ch), PHONE, T0 + 1)
    r = out.response
    assert r.status_code == 200, r.serialize()
    assert contact_expires(r) == {"sip:9001@192.0.2.10:5062": 600}
    assert r.headers.get("Expires") == "600"
    assert email.utils.parsedate_to_datetime(r.headers.get("Date")).timestamp() == int(T0 + 1)
    assert out.aor == AOR and out.account.username == "9001"
    assert [e.type for e in out.events] == ["registration.added", "device.registered"]
    b = reg.location.lookup(AOR, T0 + 2)[0]
    assert (b.source, b.username, b.expires_at) == (PHONE, "9001", T0 + 601)
    assert reg.auth.statistics(T0).accepted_by_algorithm == {algorithm: 1}


def test_wrong_password_and_unknown_user_get_the_same_bare_403(reg):
    ch = challenge_of(first_challenge(reg))
    wrong = reg.handle_register(signed(register(cseq=2), ch, password="guess"), PHONE, T0 + 1).response
    ghost = reg.handle_register(
        signed(register("7777", cseq=2), ch, user="7777", password="agent-pw"), PHONE, T0 + 1
    ).response
    assert wrong.status_code == ghost.status_code == 403
    strip = ("To", "From", "Via")  # the parts that echo the request

    def shape(response):
        return [(n, v) for n, v in response.headers if n not in strip]

    assert shape(wrong) == shape(ghost)
    assert wrong.reason == ghost.reason and wrong.headers.get("Warning") is None
    stats = reg.auth.statistics(T0 + 1)
    assert stats.forbidden == 2 and stats.unknown_users == 1
    assert stats.forbidden_by_reason == {"wrong credentials": 2}


def test_unknown_user_without_credentials_is_challenged_like_anyone(reg):
    known = reg.handle_register(register("9001", cseq=1), PHONE, T0).response
    ghost = reg.handle_register(register("7777", cseq=1), PHONE, T0).response
    assert known.status_code == ghost.status_code == 401
    assert [c.get("algorithm") for c in known.www_authenticate] == [
        c.get("algorithm") for c in ghost.www_authenticate
    ]


def test_expired_nonce_with_right_password_is_401_stale_true():
    reg = make_registrar(nonce_lifetime=30)
    ch = challenge_of(first_challenge(reg))
    assert reg.handle_register(signed(register(cseq=2), ch), PHONE, T0 + 29).response.status_code == 200
    late = reg.handle_register(signed(register(cseq=3), ch, nc=2), PHONE, T0 + 31).response
    assert late.status_code == 401
    assert [c.get("stale") for c in late.www_authenticate] == ["true", "true"]
    fresh = challenge_of(late)
    assert fresh.get("nonce") != ch.get("nonce")
    ok = reg.handle_register(signed(register(cseq=4), fresh), PHONE, T0 + 32).response
    assert ok.status_code == 200
    # the wrong password on an expired nonce is a 403, not a stale hint
    wrong = reg.handle_register(signed(register(cseq=5), ch, password="x", nc=3), PHONE, T0 + 40).response
    assert wrong.status_code == 403


def test_a_replayed_nonce_count_is_refused_and_counted(reg):
    ch = challenge_of(first_challenge(reg))
    request = signed(register(cseq=2), ch, nc=1)
    assert reg.handle_register(request, PHONE, T0 + 1).response.status_code == 200
    # an eavesdropper sends the same bytes again (a new transaction: new branch)
    replay = parse_datagram(request.serialize().replace(b"branch=z9hG4bK-t", b"branch=z9hG4bK-replay"))
    r = reg.handle_register(replay, PHONE, T0 + 2).response
    assert r.status_code == 401 and r.www_authenticate[0].get("stale") is None
    # a later count on the same nonce is fine, even arriving after a higher one (reordering)
    assert reg.handle_register(signed(register(cseq=4), ch, nc=3), PHONE, T0 + 3).response.status_code == 200
    assert reg.handle_register(signed(register(cseq=5), ch, nc=2), PHONE, T0 + 3).response.status_code == 200
    assert reg.handle_register(signed(register(cseq=6), ch, nc=2), PHONE, T0 + 3).response.status_code == 401
    stats = reg.auth.statistics(T0 + 3)
    assert stats.replays == 2 and stats.sources.failures == 2


def test_credentials_for_another_realm_answering_our_nonce_are_forbidden(reg):
    ch = challenge_of(first_challenge(reg))
    forged = parse_auth_header(
        str(ch).replace(f'realm="{REALM}"', 'realm="elsewhere.example"'), "WWW-Authenticate"
    )
    r = reg.handle_register(signed(register(cseq=2), forged), PHONE, T0 + 1).response
    assert r.status_code == 403
    assert reg.auth.statistics(T0).forbidden_by_reason == {"wrong realm": 1}
    # credentials cached for another server's realm and nonce just get our challenge
    other = parse_auth_header(
        'Digest realm="elsewhere.example", nonce="abc", qop="auth", algorithm=MD5', "WWW-Authenticate"
    )
    r = reg.handle_register(signed(register(cseq=3), other), PHONE, T0 + 1).response
    assert r.status_code == 401


def test_a_nonce_from_before_a_restart_gets_a_fresh_challenge():
    before = make_registrar(secret=b"secret-before-the-restart-32byte")
    after = make_registrar(secret=b"secret-after-the-restart-32bytes")
    ch = challenge_of(first_challenge(before))
    r = after.handle_register(signed(register(cseq=2), ch), PHONE, T0 + 1).response
    assert r.status_code == 401 and r.www_authenticate[0].get("stale") is None


def test_algorithm_choice_offered_set_and_unoffered_answers():
    reg = make_registrar(algorithms=("SHA-256",))
    r = first_challenge(reg)
    assert [c.get("algorithm") for c in r.www_authenticate] == ["SHA-256"]
    md5 = parse_auth_header(str(r.www_authenticate[0]).replace("SHA-256", "MD5"), "WWW-Authenticate")
    assert reg.handle_register(signed(register(cseq=2), md5), PHONE, T0 + 1).response.status_code == 403
    # SHA-512/256 when offered (RFC 8760 2.3)
    reg = make_registrar(algorithms=("SHA-512-256", "SHA-256"), users={})
    reg.auth.directory.add(Account.from_password("9001", REALM, "agent-pw", algorithms=("SHA-512-256",)))
    r = first_challenge(reg)
    best = parse_challenges(r.www_authenticate)[0]
    assert best.get("algorithm") == "SHA-512-256"
    assert reg.handle_register(signed(register(cseq=2), best), PHONE, T0 + 1).response.status_code == 200
    sha = challenge_of(
        first_challenge(reg, T0 + 2)
    )  # that account has no SHA-256 HA1: refused like a wrong one
    assert reg.handle_register(signed(register(cseq=4), sha), PHONE, T0 + 3).response.status_code == 403


def test_baresip_1_0_gets_md5_alone_everyone_else_both():
    reg = make_registrar()
    ua = ("User-Agent", "baresip v1.0.0 (x86_64/linux)")
    r = reg.handle_register(register(cseq=1, extra=[ua]), PHONE, T0).response
    assert [c.get("algorithm") for c in r.www_authenticate] == ["MD5"]
    r = reg.handle_register(register(cseq=1, extra=[("User-Agent", "baresip v3.1.0")]), PHONE, T0).response
    assert [c.get("algorithm") for c in r.www_authenticate] == ["SHA-256", "MD5"]


def test_malformed_or_mismatched_credentials_are_400(reg):
    ch = challenge_of(first_challenge(reg))
    elsewhere = signed(register(cseq=2), ch, uri="sip:other.example")  # RFC 7616 3.4.6
    assert reg.handle_register(elsewhere, PHONE, T0 + 1).response.status_code == 400
    broken = register(cseq=3, extra=[("Authorization", 'Digest realm="hotline.example", nonce=')])
    assert reg.handle_register(broken, PHONE, T0 + 1).response.status_code == 400
    lacking = register(cseq=4, extra=[("Authorization", f'Digest realm="{REALM}", username="9001"')])
    assert reg.handle_register(lacking, PHONE, T0 + 1).response.status_code == 400


# -- steps 1, 2, 4, 5: where and who -------------------------------------------------------------
def test_request_uri_of_a_domain_we_do_not_serve_is_404(reg):
    r = reg.handle_register(register(cseq=1, request_uri="sip:elsewhere.example"), PHONE, T0).response
    assert r.status_code == 404 and r.headers.get("WWW-Authenticate") is None


def test_unsupported_require_is_420(reg):
    r = reg.handle_register(register(cseq=1, extra=[("Require", "path, gruu")]), PHONE, T0).response
    assert r.status_code == 420 and r.headers.get("Unsupported") == "gruu"
    r = reg.handle_register(register(cseq=1, extra=[("Require", "path")]), PHONE, T0).response
    assert r.status_code == 401  # path is ours (RFC 3327)
    no_path = make_registrar(supported=frozenset())
    r = no_path.handle_register(register(cseq=1, extra=[("Require", "path")]), PHONE, T0).response
    assert r.status_code == 420 and r.headers.get("Unsupported") == "path"


def test_path_is_stored_and_echoed_to_a_ua_that_supports_it(reg):
    """RFC 3327 5.3: a REGISTER that came through an edge proxy (Kamailio) carries Path."""
    path = [("Path", "<sip:edge1.example;lr>"), ("Path", "<sip:edge2.example;lr>, <sip:edge3.example;lr>")]
    phone = Phone(reg)
    r = phone.send(T0, extra=[*path, ("Supported", "path, outbound")])
    assert r.status_code == 200
    assert r.headers.values("Path") == [
        "<sip:edge1.example;lr>",
        "<sip:edge2.example;lr>",
        "<sip:edge3.example;lr>",
    ]
    (b,) = reg.location.lookup(AOR, T0)
    assert b.path == ("<sip:edge1.example;lr>", "<sip:edge2.example;lr>", "<sip:edge3.example;lr>")
    r = phone.send(T0 + 1, extra=path[:1])  # no Supported: path - stored, not echoed
    assert r.status_code == 200 and r.headers.get("Path") is None
    assert reg.location.lookup(AOR, T0 + 1)[0].path == ("<sip:edge1.example;lr>",)
    assert phone.send(T0 + 2, extra=[("Path", "<sip:broken")]).status_code == 400


def test_a_user_may_not_register_someone_elses_aor(reg):
    ch = challenge_of(first_challenge(reg))
    # 9002 authenticates correctly, but the To names 9001
    request = register("9001", cseq=2)
    r = reg.handle_register(signed(request, ch, user="9002", password="other-pw"), PHONE, T0 + 1).response
    assert r.status_code == 403 and reg.location.lookup(AOR, T0 + 1) == []
    assert reg.auth.statistics(T0 + 1).forbidden_by_reason == {"AOR not allowed for this user": 1}


def test_extra_aors_of_an_account_and_an_aor_outside_our_domains():
    reg = make_registrar(users={})
    reg.auth.directory.add(
        Account.from_password(
            "desk-7", REALM, "pw", aors=(f"sip:support@{REALM}", "sip:desk-7@foreign.example")
        )
    )
    ch = challenge_of(first_challenge(reg))
    r = reg.handle_register(
        signed(register("support", cseq=2), ch, user="desk-7", password="pw"), PHONE, T0 + 1
    ).response
    assert r.status_code == 200 and reg.location.is_registered(f"sip:support@{REALM}", T0 + 1)
    foreign = register("desk-7", cseq=3, domain="foreign.example", request_uri=f"sip:{REALM}")
    r = reg.handle_register(signed(foreign, ch, user="desk-7", password="pw", nc=2), PHONE, T0 + 1).response
    assert r.status_code == 404  # step 5: that AOR is not valid in a domain we serve


def test_to_must_be_a_sip_uri_with_a_user(reg):
    bad = register(cseq=1)
    bad.headers.set("To", "<tel:+15551234>")
    assert reg.handle_register(bad, PHONE, T0).response.status_code == 400
    bad.headers.set("To", f"<sip:{REALM}>")
    assert reg.handle_register(bad, PHONE, T0).response.status_code == 400


# -- steps 6 and 7: contacts and intervals ---------------------------------------------------------
@pytest.fixture
def phone(reg):
    return Phone(reg)


def test_interval_from_param_then_header_then_default_and_capped(reg, phone):
    r = phone.send(
        T0,
        contacts=[
            "<sip:9001@192.0.2.10:1>;expires=120",
            "<sip:9001@192.0.2.10:2>",
            "<sip:9001@192.0.2.10:3>;expires=99999",
        ],
        expires=300,
    )
    assert r.status_code == 200
    assert contact_expires(r) == {
        "sip:9001@192.0.2.10:1": 120,
        "sip:9001@192.0.2.10:2": 300,
        "sip:9001@192.0.2.10:3": 3600,
    }
    assert r.headers.get("Expires") == "120"
    r = phone.send(T0 + 10, contacts=["<sip:9001@192.0.2.10:4>"])
    assert contact_expires(r)["sip:9001@192.0.2.10:4"] == 3600  # default_expires
    assert contact_expires(r)["sip:9001@192.0.2.10:1"] == 110  # every binding, with what is left
    r = phone.send(T0 + 20, contacts=["<sip:9001@192.0.2.10:5>;expires=soon"])
    assert contact_expires(r)["sip:9001@192.0.2.10:5"] == 3600  # RFC 3261 20.10: malformed counts as 3600


def test_too_brief_interval_is_423_with_min_expires(reg, phone):
    r = phone.send(T0, expires=30)
    assert r.status_code == 423 and r.headers.get("Min-Expires") == "60"
    assert reg.location.lookup(AOR, T0) == []
    r = phone.send(T0, contacts=["<sip:9001@192.0.2.10:5062>;expires=59"], expires=3600)
    assert r.status_code == 423
    assert phone.send(T0, expires=60).status_code == 200
    # removal (0) is never too brief
    assert phone.send(T0 + 1, expires=0).status_code == 200
    # RFC 3261 10.3 step 7: only intervals under one hour may be refused as too brief
    big = make_registrar(min_expires=7200, max_expires=86400, default_expires=7200)
    r = Phone(big).send(T0, expires=3600)
    assert r.status_code == 200 and r.headers.get("Expires") == "3600"


def test_contact_star_needs_expires_zero_and_removes_all(reg, phone):
    phone.send(T0, contacts=["<sip:9001@192.0.2.10:1>", "<sip:9001@192.0.2.10:2>"], expires=600)
    assert phone.send(T0 + 1, contacts=["*"], expires=600).status_code == 400
    assert phone.send(T0 + 1, contacts=["*"]).status_code == 400  # no Expires at all
    assert len(reg.location.lookup(AOR, T0 + 1)) == 2
    assert phone.send(T0 + 1, contacts=["*", "<sip:9001@192.0.2.10:3>"], expires=0).status_code == 400
    r = phone.send(T0 + 2, contacts=["*"], expires=0)
    assert r.status_code == 200 and r.headers.get("Contact") is None and r.headers.get("Expires") is None
    assert reg.location.lookup(AOR, T0 + 2) == []


def test_query_without_contact_lists_the_bindings(reg, phone):
    phone.send(T0, expires=600)
    r = phone.send(T0 + 100, contacts=[])
    assert r.status_code == 200 and contact_expires(r) == {"sip:9001@192.0.2.10:5062": 500}
    assert r.headers.get("Expires") is None


def test_bad_qvalue_is_400_good_ones_order_the_200(reg, phone):
    assert phone.send(T0, contacts=["<sip:9001@192.0.2.10:1>;q=1.5"]).status_code == 400
    assert phone.send(T0, contacts=["<sip:9001@192.0.2.10:1>;q=0.1234"]).status_code == 400
    r = phone.send(T0, contacts=["<sip:9001@192.0.2.10:1>;q=0.1", "<sip:9001@192.0.2.10:2>;q=1.0"])
    assert [str(c.uri) for c in r.contact] == ["sip:9001@192.0.2.10:2", "sip:9001@192.0.2.10:1"]


def test_non_sip_contact_is_400(reg, phone):
    assert phone.send(T0, contacts=["<tel:+15551234>"]).status_code == 400


def test_out_of_order_cseq_is_500_and_changes_nothing(reg):
    phone = Phone(reg)
    assert phone.send(T0, expires=600).status_code == 200
    phone.cseq -= 3  # the phone's next REGISTER on the same Call-ID goes backwards
    r = phone.send(T0 + 1, expires=0)
    assert r.status_code == 500 and "CSeq" in r.headers.get("Warning")
    assert reg.location.is_registered(AOR, T0 + 1)


def test_contact_limit_is_503():
    reg = make_registrar(location=LocationService(max_contacts=2))
    phone = Phone(reg)
    assert phone.send(T0, contacts=["<sip:9001@192.0.2.10:1>", "<sip:9001@192.0.2.10:2>"]).status_code == 200
    r = phone.send(T0 + 1, contacts=["<sip:9001@192.0.2.10:3>"])
    assert (r.status_code, r.reason) == (503, "Too Many Registered Contacts")


def test_store_failure_is_500():
    class Broken(MemoryBindingStore):
        def save(self, aor, bindings):
            raise OSError("read-only file system")

    reg = make_registrar(location=LocationService(store=Broken()))
    r = Phone(reg).send(T0)
    assert r.status_code == 500 and reg.location.lookup(AOR, T0) == []


# -- step 8: the 200 -------------------------------------------------------------------------------
def test_200_has_no_record_route_and_keeps_the_to_tag_rules(reg):
    phone = Phone(reg)
    r = phone.send(T0, extra=[("Record-Route", "<sip:proxy.example;lr>")])
    assert r.status_code == 200 and r.headers.get("Record-Route") is None
    assert r.to.tag is not None
    tagged = register(cseq=50, call_id="call-9001", extra=[("Record-Route", "<sip:proxy.example;lr>")])
    tagged.headers.set("To", f"<sip:9001@{REALM}>;tag=already")
    r = reg.handle_register(tagged, PHONE, T0).response  # challenged, but the To tag is kept as is
    assert r.to.tag == "already"


def test_responses_are_well_formed_sip(reg):
    phone = Phone(reg)
    r = phone.send(T0)
    again = parse_datagram(r.serialize())
    assert again == r
    assert again.cseq.method == "REGISTER" and again.call_id == "call-9001"


def test_non_register_is_a_caller_error(reg):
    with pytest.raises(ValueError, match="REGISTER"):
        reg.handle_register(Request("OPTIONS", f"sip:{REALM}", [("CSeq", "1 OPTIONS")]), PHONE, T0)


def test_registrar_config_is_validated():
    with pytest.raises(ValueError, match="domains"):
        RegistrarConfig(domains="hotline.example")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_expires"):
        RegistrarConfig(domains={"x"}, min_expires=100, max_expires=50, default_expires=60)
    with pytest.raises(ValueError, match="default_expires"):
        RegistrarConfig(domains={"x"}, default_expires=10)
    with pytest.raises(ValueError, match="max_expires"):
        RegistrarConfig(domains={"x"}, max_expires=0)


# -- real requests, replayed ---------------------------------------------------------------------
def fixture_registrar(max_expires=3600):
    return make_registrar(
        users={"alice": "s3cret", "carol": "s3cret"},
        realm=FIXTURE_REALM,
        secret=FIXTURE_SECRET,
        domains=frozenset({"127.0.0.1", FIXTURE_REALM}),
        min_expires=2,
        max_expires=max_expires,
        default_expires=min(3600, max_expires),
    )


def replay(reg, names, source):
    out = []
    for name in names:
        request = fixture(name)
        assert validate_request(request) is None  # what the endpoint checks before us
        nonce = next((c.get("nonce") for c in request.authorization), None)
        now = nonce_issued_at(nonce) + 0.5 if nonce else 1_795_000_000.0
        out.append(reg.handle_register(request, source, now))
    return out


def test_baresip_md5_registration_refreshes_and_unregister_as_captured():
    reg = fixture_registrar()
    src = Address("127.0.0.1", 49516, "UDP")
    names = [f"baresip_0{i}.sip" for i in range(1, 9)]
    outcomes = replay(reg, names, src)
    assert [o.status_code for o in outcomes] == [401, 200, 401, 200, 401, 200, 401, 200]
    assert [e.type for e in outcomes[1].events] == ["registration.added", "device.registered"]
    b = outcomes[1].events[0].binding
    assert (b.aor, str(b.uri), b.user_agent) == (
        "sip:alice@127.0.0.1",
        "sip:alice-0x561c82f8ed40@127.0.0.1:49516",
        "baresip v1.0.0 (x86_64/linux)",
    )
    assert b.instance == "<urn:uuid:7afde771-7ada-1088-fbcf-199b57e766d1>"
    assert [e.type for e in outcomes[3].events] == ["registration.refreshed"]
    assert [e.type for e in outcomes[7].events] == ["registration.removed", "device.unregistered"]
    assert reg.auth.statistics(0).accepted_by_algorithm == {"MD5": 4}
    # baresip asked for MD5 alone after our MD5-only challenge for its User-Agent
    assert [c.get("algorithm") for c in outcomes[0].response.www_authenticate] == ["MD5"]


def test_linphone_sha256_registration_with_nonce_reuse_as_captured():
    reg = fixture_registrar(max_expires=4)
    src = Address("127.0.0.1", 51488, "UDP")
    outcomes = replay(reg, [f"linphone_0{i}.sip" for i in range(1, 6)], src)
    assert [o.status_code for o in outcomes] == [401, 200, 200, 200, 200]
    assert contact_expires(outcomes[1].response) == {"sip:carol@127.0.0.1:51488;transport=udp": 4}
    assert reg.auth.statistics(0).accepted_by_algorithm == {"SHA-256": 4}
    assert reg.auth.nonces.statistics().accepted == 4  # one nonce, nc 1..4
    assert [e.type for e in outcomes[-1].events] == ["registration.removed", "device.unregistered"]
    # replaying linphone's nc=2 request later is refused
    again = reg.handle_register(
        fixture("linphone_03.sip"),
        src,
        nonce_issued_at(fixture("linphone_03.sip").authorization[0].get("nonce")) + 1,
    )
    assert again.status_code == 401


def test_captured_credentials_fail_with_the_wrong_stored_password():
    reg = make_registrar(
        users={"alice": "not-it", "carol": "not-it"},
        realm=FIXTURE_REALM,
        secret=FIXTURE_SECRET,
        domains=frozenset({"127.0.0.1"}),
        min_expires=2,
    )
    outcomes = replay(reg, ["baresip_02.sip", "linphone_02.sip"], Address("127.0.0.1", 5000, "UDP"))
    assert [o.status_code for o in outcomes] == [403, 403]


def test_qop_auth_is_required(reg):
    """We offer qop="auth" only: an RFC 2069-style answer (no qop) or auth-int is refused."""
    ch = challenge_of(first_challenge(reg))
    no_qop = parse_auth_header(str(ch).replace(', qop="auth"', ""), "WWW-Authenticate")
    assert no_qop.get("qop") is None
    r = reg.handle_register(signed(register(cseq=2), no_qop), PHONE, T0 + 1).response
    assert r.status_code == 403
    auth_int = parse_auth_header(str(ch).replace('qop="auth"', 'qop="auth-int"'), "WWW-Authenticate")
    r = reg.handle_register(signed(register(cseq=3), auth_int), PHONE, T0 + 1).response
    assert r.status_code == 403
    assert reg.auth.statistics(T0).forbidden_by_reason == {"qop missing or not offered": 2}
    assert reg.handle_register(signed(register(cseq=4), ch), PHONE, T0 + 1).response.status_code == 200
