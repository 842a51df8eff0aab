"""Principals, roles and bearer tokens (stored hashed, compared in constant time).

A token is 32 random bytes from :mod:`secrets` (256 bits, URL-safe base64).
Only its SHA-256 digest is kept in memory and in configuration: a token is
high-entropy, so a fast hash is enough (unlike a password, it cannot be
guessed from a dictionary), and a leaked config or memory dump gives no
usable token. Lookup is by digest; the stored digest is then compared with
:func:`hmac.compare_digest`.

Roles (CONTRACT.md, plus one read-only role):

========== ====================================================================
admin      everything, including ``ivr.reload`` and ``audit.query``
supervisor agents, queues, calls, recordings, monitoring (listen/whisper/barge),
           reports; not configuration nor the audit log
agent      its own agent and its own calls only (``Principal.agent``)
crm        call control, events, and reads of agents and queues
viewer     read-only queue and agent state and their events (the wallboard)
========== ====================================================================

The admin token: at first start the daemon calls :func:`load_or_create_token`
on the token file (``./var/admin.token`` in the demo): it is created with
mode 0600 and a new token, or read back on later starts. Tokens for the other
principals come from config as digests (:func:`principals_from_config`):
``hotline ctl --hash-token`` prints the digest of a token to paste there.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ROLES",
    "Principal",
    "TokenStore",
    "hash_token",
    "load_or_create_token",
    "new_token",
    "principals_from_config",
]

ROLES = ("admin", "supervisor", "agent", "crm", "viewer")
MAX_TOKEN_LENGTH = 512
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9_.@:+-]{1,64}")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a ``name`` (in the audit log), a ``role``, and for role agent its ``agent`` id."""

    name: str
    role: str
    agent: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"name: must be 1-64 letters, digits or _.@:+-, got {self.name!r}")
        if self.role not in ROLES:
            raise ValueError(f"role: must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.role == "agent" and not (isinstance(self.agent, str) and self.agent):
            raise ValueError("agent: a principal with role agent needs its agent id")
        if self.role != "agent" and self.agent is not None:
            raise ValueError(f"agent: only role agent has an agent id (role is {self.role})")

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.name, "role": self.role, "agent": self.agent}


def new_token() -> str:
    """A new random bearer token (256 bits), never starting with ``-`` (``--token -x`` reads as an option)."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def hash_token(token: str) -> str:
    """The SHA-256 hex digest kept instead of the token."""
    if not isinstance(token, str) or not token:
        raise ValueError("token: must be a non-empty string")
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Digest -> principal. Tokens themselves are never stored."""

    def __init__(self) -> None:
        self._by_digest: dict[bytes, tuple[bytes, Principal]] = {}

    def add(self, principal: Principal, *, token: str | None = None, sha256: str | None = None) -> str | None:
        """Register ``principal`` with a token or its digest; with neither, make a token and return it."""
        if not isinstance(principal, Principal):
            raise ValueError("principal: expected a Principal")
        if token is not None and sha256 is not None:
            raise ValueError("token: give a token or its sha256, not both")
        made = None
        if sha256 is None:
            made = token if token is not None else new_token()
            sha256 = hash_token(made)
        if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
            raise ValueError("sha256: must be 64 lower-case hex digits")
        digest = bytes.fromhex(sha256)
        if digest in self._by_digest:
            raise ValueError(f"token: already registered (for {self._by_digest[digest][1].name!r})")
        self._by_digest[digest] = (digest, principal)
        return made if token is None else None

    def remove(self, name: str) -> int:
        """Revoke every token of principal ``name``; returns how many."""
        gone = [d for d, (_, p) in self._by_digest.items() if p.name == name]
        for d in gone:
            del self._by_digest[d]
        return len(gone)

    def authenticate(self, token: Any) -> Principal | None:
        """The principal of ``token``, or None (also for a non-string or absurdly long token)."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        entry = self._by_digest.get(digest)
        if entry is None or not hmac.compare_digest(entry[0], digest):
            return None
        return entry[1]

    def principals(self) -> list[Principal]:
        return [p for _, p in self._by_digest.values()]

    def __len__(self) -> int:
        return len(self._by_digest)


def load_or_create_token(path: str | os.PathLike) -> tuple[str, bool]:
    """The token in ``path``, or a new one written there with mode 0600. Returns (token, created).

    The file is created exclusively (two daemons starting at once cannot
    write different tokens) and holds the token and a newline. A file that
    group or others can read is refused: it is a credential.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = p.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"{p}: the token file must not be readable by group or others "
                             f"(mode {stat.S_IMODE(mode):o}; chmod 600 it)") from None
        token = p.read_text(encoding="utf-8").strip()
        if len(token) < 16 or len(token) > MAX_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise ValueError(f"{p}: does not hold a token (16 to {MAX_TOKEN_LENGTH} non-blank characters)") from None
        return token, False
    token = new_token()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True


def principals_from_config(entries: Iterable[Mapping[str, Any]], *, where: str = "auth.token") -> list[
        tuple[Principal, str]]:
    """``[[auth.token]]`` tables -> (principal, sha256) pairs; errors name the table and key.

    Each table: ``name``, ``role``, ``agent`` (role agent only) and ``sha256``
    (the token's digest, from ``hotline ctl --hash-token``).
    """
    out = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{at}: must be a table")
        unknown = sorted(set(entry) - {"name", "role", "agent", "sha256"})
        if unknown:
            raise ValueError(f"{at}.{unknown[0]}: unknown key (expected name, role, agent, sha256)")
        for key in ("name", "role", "sha256"):
            if key not in entry:
                raise ValueError(f"{at}.{key}: required")
        sha = entry["sha256"]
        if not isinstance(sha, str) or not _HEX64.fullmatch(sha.lower()):
            raise ValueError(f"{at}.sha256: must be the 64 hex digits of the token's SHA-256")
        try:
            principal = Principal(entry["name"], entry["role"], entry.get("agent"))
        except ValueError as exc:
            raise ValueError(f"{at}.{exc}") from None
        out.append((principal, sha.lower()))
    return out
