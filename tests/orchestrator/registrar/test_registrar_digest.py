"""HA1-only accounts, the replay table, per-source failure counting and the
uniform verdicts of DigestAuth; the operator's HA1 tool."""

from __future__ import annotations

import hashlib
import io
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from registrar_harness import PHONE, REALM, SECRET, T0, register

from orchestrator.registrar import (
    Account,
    DigestAuth,
    DigestConfig,
    Directory,
    FailureTracker,
    NonceCounts,
    accounts_from_config,
    make_ha1s,
)
from orchestrator.registrar import cli as registrar_cli
from orchestrator.registrar.guards import nonce_issued_at
from orchestrator.sip import DigestServer, authorization_for, digest_response

# RFC 7616 section 3.9.1: one request answered with MD5 and with SHA-256.
RFC7616 = {
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "qop": "auth",
    "nc": "00000001",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}


@pytest.mark.parametrize(
    "algorithm, expected",
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_stored_ha1s_reproduce_the_rfc7616_vectors(algorithm, expected):
    account = Account.from_password("Mufasa", "http-auth@example.org", "Circle of Life")
    assert digest_response(ha1=account.ha1_for(algorithm), algorithm=algorithm, **RFC7616) == expected
    # -sess algorithms start from the same stored HA1
    assert account.ha1_for(algorithm + "-sess") == account.ha1_for(algorithm)


def test_make_ha1s_is_h_of_user_realm_password():
    ha1s = make_ha1s("9001", REALM, "pw", ("SHA-256", "MD5", "SHA-512-256"))
    text = f"9001:{REALM}:pw".encode()
    assert ha1s == {
        "SHA-256": hashlib.sha256(text).hexdigest(),
        "MD5": hashlib.md5(text).hexdigest(),
        "SHA-512-256": hashlib.new("sha512_256", text).hexdigest(),
    }


def test_a_password_is_hashed_at_load_and_not_kept():
    secret = "correct horse battery staple"
    entries = [
        {"username": "9001", "password": secret},
        {"username": "9002", "ha1_md5": make_ha1s("9002", REALM, "x", ["MD5"])["MD5"]},
    ]
    accounts = accounts_from_config(entries, REALM)
    assert set(accounts[0].ha1) == {"SHA-256", "MD5"} and set(accounts[1].ha1) == {"MD5"}
    for account in accounts:
        assert secret not in repr(account) and secret.encode() not in pickle.dumps(account)
    assert accounts[0].ha1["MD5"] not in repr(accounts[0])  # not even hashes in logs


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"password": "x"}, r"account\[0\]\.username"),
        ({"username": "9001"}, "needs a password or"),
        ({"username": "9001", "password": "x", "ha1_md5": "0" * 32}, "either password or HA1"),
        ({"username": "9001", "ha1_md5": "abc"}, "32 hex digits"),
        ({"username": "9001", "ha1_sha256": "Z" * 64}, "64 hex digits"),
        ({"username": "9001", "password": ""}, "password"),
        ({"username": "9001", "password": "x", "pasword": "typo"}, "unknown keys pasword"),
        ({"username": "a:b", "password": "x"}, "username"),
        ({"username": "9001", "password": "x", "aors": "sip:x@y"}, "aors"),
    ],
)
def test_config_errors_name_the_entry_and_key(entry, message):
    with pytest.raises(ValueError, match=message):
        accounts_from_config([entry], REALM)


def test_directory_refuses_duplicate_usernames():
    a = Account.from_password("9001", REALM, "pw")
    with pytest.raises(ValueError, match="twice"):
        Directory([a, a])
    d = Directory([a])
    d.replace(Account.from_password("9001", REALM, "new"))
    assert d.get("9001").ha1 != a.ha1 and len(d) == 1 and d.remove("9001") and "9001" not in d


def test_ha1_tool_reads_the_password_from_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert (
        registrar_cli.main(["ha1", "--realm", REALM, "9001", "--algorithm", "MD5", "--algorithm", "SHA-256"])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    ha1s = make_ha1s("9001", REALM, "s3cret", ["MD5", "SHA-256"])
    assert out == ['username = "9001"', f'ha1_md5 = "{ha1s["MD5"]}"', f'ha1_sha256 = "{ha1s["SHA-256"]}"']
    # what it prints loads back as a configuration entry
    import tomllib

    assert accounts_from_config([tomllib.loads("\n".join(out))], REALM)[0].ha1 == ha1s
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert registrar_cli.main(["ha1", "--realm", REALM, "9001"]) == 1


# -- the replay table ------------------------------------------------------------------------------
def test_nonce_issue_time_is_read_back_from_the_sip_core_nonce():
    server = DigestServer(realm=REALM, secret=SECRET)
    for t in (0.0, T0, T0 + 0.125):
        assert nonce_issued_at(server.make_nonce(t)) == t
    assert nonce_issued_at("short") is None and nonce_issued_at("!!!") is None


def test_nonce_counts_window_replays_and_lifetime():
    table = NonceCounts(lifetime=60, window=4)
    assert table.check("n1", 1, T0, T0) == "ok"
    assert table.check("n1", 1, T0, T0) == "replay"
    assert table.check("n1", 5, T0, T0) == "ok"
    assert table.check("n1", 3, T0, T0) == "ok"  # late but inside the window
    assert table.check("n1", 3, T0, T0) == "replay"
    assert table.check("n1", 1, T0, T0) == "replay"  # 5 - 1 = 4: outside the window
    assert table.check("n1", 0, T0, T0) == "replay"
    assert table.check("n2", 1, T0 + 30, T0 + 30) == "ok"
    table.check("n3", 1, T0 + 62, T0 + 62)  # purges n1 (past its lifetime)
    assert len(table) == 2
    assert table.statistics().replays == 4


def test_forgetting_under_pressure_never_reopens_a_replay():
    table = NonceCounts(lifetime=300, max_nonces=3)
    for i in range(3):
        assert table.check(f"n{i}", 1, T0 + i, T0 + i) == "ok"
    assert table.check("n3", 1, T0 + 3, T0 + 3) == "ok"  # n0 is dropped
    assert table.check("n0", 1, T0, T0 + 4) == "forgotten"  # could be a replay: treat the nonce as stale
    assert table.check("n0", 2, T0, T0 + 4) == "forgotten"
    assert table.check("n1", 2, T0 + 1, T0 + 4) == "ok"  # still remembered
    # a nonce issued before the dropped one but never used is refused too (it gets a new nonce)
    assert table.check("old-unused", 1, T0 - 1, T0 + 4) == "forgotten"
    assert table.statistics().evicted == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 40), max_size=60), st.integers(1, 64))
def test_nonce_counts_against_a_model(counts, window):
    """Model: accept a count iff unseen and within `window` of the highest accepted so far."""
    table = NonceCounts(lifetime=60, window=window)
    seen: set[int] = set()
    highest = 0
    for nc in counts:
        expected = nc not in seen and nc > highest - window
        assert (table.check("n", nc, T0, T0) == "ok") == expected
        if expected:
            seen.add(nc)
            highest = max(highest, nc)


def test_failure_tracker_threshold_window_and_bound():
    tracker = FailureTracker(threshold=5, window=50, max_sources=2)
    flags = [tracker.failure("198.51.100.7", T0 + i) for i in range(5)]
    assert flags == [False, False, False, False, True]  # the 5th within 50 s, reported once
    assert tracker.failure("198.51.100.7", T0 + 5) is False  # already flagged
    assert tracker.is_suspicious("198.51.100.7", T0 + 5)
    assert tracker.suspicious_sources(T0 + 5) == [("198.51.100.7", 6)]
    assert tracker.is_suspicious("198.51.100.7", T0 + 51)  # the latest five began at T0 + 1
    assert not tracker.is_suspicious("198.51.100.7", T0 + 51.5)
    # a slow trickle (five failures never within 50 s) never flags
    assert not any(tracker.failure("192.0.2.99", T0 + i * 13) for i in range(40))
    tracker.failure("203.0.113.1", T0)
    assert tracker.statistics(T0).sources == 2  # LRU bound
    assert tracker.failures("198.51.100.7") == 0  # the least recently seen source was forgotten
    assert tracker.statistics(T0).flagged_total == 1


# -- DigestAuth verdicts ---------------------------------------------------------------------------
@pytest.fixture
def auth():
    return DigestAuth(
        Directory([Account.from_password("9001", REALM, "pw")]),
        DigestConfig(realm=REALM, secret=SECRET, failure_threshold=3),
    )


def answer(auth, *, user="9001", password="pw", nc=1, now=T0, algorithm="SHA-256"):
    challenge = next(c for c in auth.server.challenges(now) if c.get("algorithm") == algorithm)
    request = register(user)
    request.headers.add(
        "Authorization",
        str(
            authorization_for(
                challenge,
                method="REGISTER",
                uri=str(request.uri),
                username=user,
                password=password,
                cnonce="x",
                nc=nc,
            )
        ),
    )
    return request


def test_verdicts(auth):
    assert auth.verify(register(), PHONE.host, T0).outcome == "challenge"
    ok = auth.verify(answer(auth), PHONE.host, T0 + 1)
    assert ok.ok and ok.account.username == "9001" and ok.algorithm == "SHA-256"
    assert auth.verify(answer(auth, password="no"), PHONE.host, T0 + 1).outcome == "forbidden"
    assert auth.verify(answer(auth, user="nobody"), PHONE.host, T0 + 1).outcome == "forbidden"
    old = answer(auth, now=T0)
    assert auth.verify(old, PHONE.host, T0 + 301).outcome == "stale"


def test_unknown_users_cost_the_same_hash_work(auth, monkeypatch):
    """The decoy HA1 makes an unknown user run the same digest computation."""
    from orchestrator.sip import digest

    calls = []
    real = digest.digest_response

    def counting(**kw):
        calls.append(kw["algorithm"])
        return real(**kw)

    wrong, unknown = answer(auth, password="no"), answer(auth, user="nobody")
    monkeypatch.setattr(digest, "digest_response", counting)
    assert auth.verify(wrong, PHONE.host, T0 + 1).outcome == "forbidden"
    assert auth.verify(unknown, PHONE.host, T0 + 1).outcome == "forbidden"
    assert calls == ["SHA-256", "SHA-256"]


def test_failures_make_a_source_suspicious_and_call_the_hook(auth):
    seen = []
    auth.on_suspicious = lambda host, n: seen.append((host, n))
    for i in range(3):  # three guesses within a second (threshold 3 per 60 s)
        auth.verify(answer(auth, password=f"guess{i}"), "198.51.100.7", T0 + i * 0.1)
    assert seen == [("198.51.100.7", 3)]
    assert auth.is_suspicious("198.51.100.7", T0 + 3) and not auth.is_suspicious(PHONE.host, T0 + 3)
    # challenges (no credentials yet) are the normal flow, not failures
    for _ in range(10):
        auth.verify(register(), "192.0.2.50", T0)
    assert not auth.is_suspicious("192.0.2.50", T0)


def test_digest_config_validation():
    with pytest.raises(ValueError, match="algorithm"):
        DigestConfig(realm=REALM, secret=SECRET, algorithms=("SHA-1",))
    with pytest.raises(ValueError, match="algorithms"):
        DigestConfig(realm=REALM, secret=SECRET, algorithms="MD5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user_agent_algorithms"):
        DigestConfig(realm=REALM, secret=SECRET, user_agent_algorithms=(("x", "MD5"),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="secret"):
        DigestAuth(Directory(), DigestConfig(realm=REALM, secret=b"short"))
    cfg = DigestConfig(realm=REALM, secret=SECRET, algorithms=("SHA-256",))
    assert cfg.user_agent_algorithms == () and cfg.algorithms_for("baresip v1.0.0") == ("SHA-256",)


def test_shared_agent_tables_may_carry_other_subsystems_keys():
    entry = {"username": "9001", "password": "pw", "skills": {"en": 5}, "queues": ["support"]}
    with pytest.raises(ValueError, match="unknown keys queues, skills"):
        accounts_from_config([entry], REALM)
    (account,) = accounts_from_config([entry], REALM, ignore_keys=("skills", "queues"))
    assert account.username == "9001"
