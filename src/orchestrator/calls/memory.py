"""Trivial in-memory implementations of the B2BUA's interfaces, for tests and
small set-ups until the registrar service (orchestrator.registrar) replaces
them.

* :class:`InMemoryLocator` - bindings added by hand (``add``/``remove``);
  expired ones are skipped.
* :class:`OpenAuthenticator` - lets everything in as "anonymous".
* :class:`StaticAuthenticator` - trunks by source address allowlist, users by
  digest (RFC 8760, through :class:`~orchestrator.sip.DigestServer` with HA1
  values, never plaintext passwords), everything else challenged with 407 -
  the same 407 for known and unknown users.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import trio

from orchestrator.sip import Address, DigestServer, Request, compute_ha1

from .interfaces import AuthChallenge, AuthOk, AuthReject, AuthResult, Contact, Identity
from .routing import Trunk

__all__ = ["InMemoryLocator", "OpenAuthenticator", "StaticAuthenticator"]


class InMemoryLocator:
    """A location table in a dict: ``aor -> [Contact]``."""

    def __init__(self, clock: Callable[[], float] = trio.current_time) -> None:
        self._bindings: dict[str, list[Contact]] = {}
        self._clock = clock

    def add(self, contact: Contact) -> None:
        if not isinstance(contact, Contact):
            raise ValueError("contact: must be a Contact")
        items = [c for c in self._bindings.get(contact.aor, []) if str(c.uri) != str(contact.uri)]
        items.append(contact)
        items.sort(key=lambda c: -c.q)
        self._bindings[contact.aor] = items

    def remove(self, aor: str, uri: str | None = None) -> None:
        if uri is None:
            self._bindings.pop(aor, None)
        else:
            self._bindings[aor] = [c for c in self._bindings.get(aor, []) if str(c.uri) != uri]

    async def lookup(self, aor: str) -> Sequence[Contact]:
        now = self._clock()
        return [c for c in self._bindings.get(aor, []) if c.expires_at is None or c.expires_at > now]


class OpenAuthenticator:
    """Accepts every request (a closed lab, or tests)."""

    async def check(self, request: Request, source: Address) -> AuthResult:
        return AuthOk(Identity("anonymous"))


class StaticAuthenticator:
    """Trunks by source address, users by digest, with a fixed user table.

    ``users`` maps a username to its password (hashed to HA1 at construction:
    only HA1 values are kept). ``open_sources`` are addresses let in as
    "anonymous" without credentials (e.g. a front proxy). Unknown users and
    wrong passwords get the same fresh 407 challenge as a request without
    credentials; nothing tells them apart.
    """

    def __init__(self, *, realm: str, secret: bytes, users: Mapping[str, str] | None = None,
                 trunks: Iterable[Trunk] = (), open_sources: Iterable[str] = (),
                 blocked_sources: Iterable[str] = (), algorithms: Sequence[str] = ("SHA-256", "MD5"),
                 clock: Callable[[], float] = trio.current_time) -> None:
        if not realm:
            raise ValueError("realm: must be non-empty")
        self.realm = realm
        self._digest = DigestServer(realm=realm, secret=secret, algorithms=tuple(algorithms))
        self._ha1: dict[tuple[str, str], str] = {}
        for name, password in (users or {}).items():
            for algorithm in algorithms:
                base = algorithm.upper().removesuffix("-SESS")
                self._ha1[(name, base)] = compute_ha1(name, realm, password, base)
        self._trunk_by_source: dict[str, str] = {}
        for trunk in trunks:
            for src in trunk.sources:
                self._trunk_by_source[src] = trunk.name
        self._open = frozenset(open_sources)
        self._blocked = frozenset(blocked_sources)
        self._clock = clock

    def _ha1_for(self, username: str, realm: str, algorithm: str) -> str | None:
        if realm != self.realm:
            return None
        return self._ha1.get((username, algorithm.upper().removesuffix("-SESS")))

    async def check(self, request: Request, source: Address) -> AuthResult:
        if source.host in self._blocked:
            return AuthReject()
        trunk = self._trunk_by_source.get(source.host)
        if trunk is not None:
            return AuthOk(Identity("trunk", trunk))
        if source.host in self._open:
            return AuthOk(Identity("anonymous"))
        now = self._clock()
        result = self._digest.verify(request, self._ha1_for, now, header="Proxy-Authorization")
        if result.ok and result.username:
            return AuthOk(Identity("user", result.username))
        challenges = self._digest.challenges(now, stale=result.stale)
        return AuthChallenge(407, tuple(("Proxy-Authenticate", str(c)) for c in challenges))
