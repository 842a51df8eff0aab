"""Tokens stored hashed, the admin token file, principals from config."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from orchestrator.control import (
    Principal,
    TokenStore,
    hash_token,
    load_or_create_token,
    new_token,
    principals_from_config,
)


def test_tokens_are_random_and_only_their_digest_is_kept():
    store = TokenStore()
    admin = Principal("root", "admin")
    tokens = {store.add(Principal(f"p{i}", "crm")) for i in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 43 for t in tokens)      # 32 random bytes, base64url
    assert not any(t.startswith("-") for t in tokens)                   # usable as `--token T`
    token = store.add(admin)
    assert store.authenticate(token) == admin
    # nothing in the store's state holds the token itself
    held = repr(vars(store)) + "".join(d.hex() for d in store._by_digest)
    assert token not in held
    assert hashlib.sha256(token.encode()).hexdigest() in held
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()


def test_tokens_never_start_with_a_dash(monkeypatch):
    import secrets

    made = iter(["-looks-like-an-option", "-again", "fine-token"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(made))
    assert new_token() == "fine-token"


@pytest.mark.parametrize("bad", [None, "", 42, b"bytes", "x" * 513, "\udcff", "almost"])
def test_wrong_tokens_authenticate_nobody(bad):
    store = TokenStore()
    store.add(Principal("root", "admin"), token="almost-the-token")
    assert store.authenticate(bad) is None


def test_digest_registration_and_revocation():
    store = TokenStore()
    agent = Principal("alice", "agent", agent="9001")
    assert store.add(agent, sha256=hash_token("s3cret-token-of-alice")) is None
    assert store.authenticate("s3cret-token-of-alice") == agent
    with pytest.raises(ValueError, match="already registered"):
        store.add(Principal("bob", "crm"), token="s3cret-token-of-alice")
    with pytest.raises(ValueError, match="sha256"):
        store.add(agent, sha256="XYZ")
    with pytest.raises(ValueError, match="not both"):
        store.add(agent, token="a", sha256=hash_token("a"))
    assert store.remove("alice") == 1
    assert store.authenticate("s3cret-token-of-alice") is None and len(store) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "", "role": "admin"}, "name:"),
    ({"name": "a b", "role": "admin"}, "name:"),
    ({"name": "x", "role": "root"}, "role: must be one of admin, supervisor, agent, crm, viewer"),
    ({"name": "x", "role": "agent"}, "agent: a principal with role agent needs its agent id"),
    ({"name": "x", "role": "crm", "agent": "9001"}, "agent: only role agent"),
])
def test_principal_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Principal(**kwargs)


def test_admin_token_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "admin.token"
    token, created = load_or_create_token(path)
    assert created and path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_token(path)
    assert (again, created_again) == (token, False)


def test_admin_token_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "admin.token"
    load_or_create_token(path)
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="must not be readable by group or others"):
        load_or_create_token(path)
    os.chmod(path, 0o600)
    path.write_text("short\n")
    with pytest.raises(ValueError, match="does not hold a token"):
        load_or_create_token(path)


def test_principals_from_config_names_the_table_and_key():
    digest = hash_token("a-token-for-the-crm-0123456789")
    pairs = principals_from_config([{"name": "crm", "role": "crm", "sha256": digest.upper()},
                                    {"name": "alice", "role": "agent", "agent": "9001", "sha256": digest}])
    assert pairs == [(Principal("crm", "crm"), digest), (Principal("alice", "agent", "9001"), digest)]
    for entry, message in [
        ({"name": "x", "role": "crm"}, r"auth.token\[0\].sha256: required"),
        ({"name": "x", "role": "crm", "sha256": "00"}, r"auth.token\[0\].sha256: must be the 64 hex digits"),
        ({"name": "x", "role": "boss", "sha256": digest}, r"auth.token\[0\].role: must be one of"),
        ({"name": "x", "role": "crm", "sha256": digest, "token": "t"}, r"auth.token\[0\].token: unknown key"),
        ("crm", r"auth.token\[0\]: must be a table"),
    ]:
        with pytest.raises(ValueError, match=message):
            principals_from_config([entry])
