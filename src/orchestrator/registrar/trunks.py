"""SIP trunks: who they are when they call in, and how we answer their
challenges when we call out.

Inbound (RFC 3261 22; what carriers and PBXes do): a request from a trunk is
recognised by its source address - an allowlist of networks (CIDR) per trunk,
the most specific match wins - or, for a trunk without fixed addresses, by
digest credentials the trunk presents (an :class:`Account` of kind
``"trunk"``, checked like a user's).

Outbound (RFC 3261 22.2, 8.1.3.5): a trunk that challenges our request with a
401 or 407 gets the same request again with credentials, a new CSeq and
without our Via (the endpoint adds a fresh one: the retry is a new
transaction); :func:`authorize_retry` builds it - a pure function the B2BUA
calls with the challenge response in hand. Credentials for the carrier's
realm are best configured as HA1s; a password given with its realm is hashed
when loaded; a password without a realm (the carrier's realm is learnt from
its first challenge) has to stay in memory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sip import (
    AuthHeader,
    Request,
    Response,
    SipParseError,
    authorization_for,
    parse_auth_header,
)
from orchestrator.sip.digest import parse_challenges

from .credentials import CONFIG_KEYS, Account, accounts_from_config, canonical_algorithm, make_ha1s

__all__ = ["OutboundCredentials", "Trunk", "TrunkTable", "authorize_retry", "best_challenge"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class OutboundCredentials:
    """What we answer a trunk's challenge with.

    ``ha1`` maps ``(realm, algorithm)`` to the HA1; ``password`` (kept only
    when the realm was not known at load time) answers any realm.
    """

    username: str
    ha1: Mapping[tuple[str, str], str] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.username, str) or not self.username:
            raise ValueError("username: must be a non-empty string")
        clean = {}
        for key, value in dict(self.ha1).items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise ValueError("ha1: keys must be (realm, algorithm) pairs")
            clean[(key[0], canonical_algorithm(key[1]))] = str(value).lower()
        object.__setattr__(self, "ha1", clean)
        if not clean and not self.password:
            raise ValueError("outbound credentials: need HA1 values or a password")

    @classmethod
    def from_password(
        cls,
        username: str,
        password: str,
        *,
        realm: str | None = None,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
    ) -> OutboundCredentials:
        """With ``realm``: hash now and keep only HA1s. Without: keep the password."""
        if realm is None:
            return cls(username, {}, password)
        ha1s = make_ha1s(username, realm, password, algorithms)
        return cls(username, {(realm, alg): value for alg, value in ha1s.items()})

    def ha1_for(self, realm: str, algorithm: str) -> str | None:
        try:
            return self.ha1.get((realm, canonical_algorithm(algorithm)))
        except ValueError:
            return None

    def can_answer(self, challenge: AuthHeader) -> bool:
        realm = challenge.get("realm")
        if realm is None:
            return False
        if self.password is not None:
            return True
        return self.ha1_for(realm, challenge.get("algorithm") or "MD5") is not None


@dataclass(frozen=True)
class Trunk:
    """A trunk: ``allow`` networks (CIDR strings) for inbound requests by address,
    ``inbound`` digest account for a trunk that authenticates instead, and
    ``outbound`` credentials for the challenges our requests get."""

    name: str
    allow: tuple[str, ...] = ()
    inbound: Account | None = None
    outbound: OutboundCredentials | None = None
    networks: tuple[Network, ...] = field(default=(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name: must be a non-empty string")
        if isinstance(self.allow, str):
            raise ValueError(f"allow: trunk {self.name!r}: must be a list of CIDR strings, not a string")
        nets = []
        for cidr in self.allow:
            try:
                nets.append(ipaddress.ip_network(cidr, strict=True))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"allow: trunk {self.name!r}: {cidr!r} is not a network ({exc})") from None
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "networks", tuple(nets))
        if self.inbound is not None and self.inbound.kind != "trunk":
            raise ValueError(f"inbound: trunk {self.name!r}: the account must be of kind 'trunk'")


class TrunkTable:
    """Trunks by name, by inbound username, and by source address (longest prefix first)."""

    def __init__(self, trunks: Iterable[Trunk] = ()) -> None:
        self._by_name: dict[str, Trunk] = {}
        self._by_user: dict[str, Trunk] = {}
        self._networks: list[tuple[Network, Trunk]] = []
        for trunk in trunks:
            self.add(trunk)

    def add(self, trunk: Trunk) -> None:
        if trunk.name in self._by_name:
            raise ValueError(f"name: trunk {trunk.name!r} is configured twice")
        if trunk.inbound is not None and trunk.inbound.username in self._by_user:
            raise ValueError(f"inbound: username {trunk.inbound.username!r} is used by two trunks")
        for net in trunk.networks:
            for other_net, other in self._networks:
                if other_net == net:
                    raise ValueError(f"allow: {net} is listed by trunks {other.name!r} and {trunk.name!r}")
        self._by_name[trunk.name] = trunk
        if trunk.inbound is not None:
            self._by_user[trunk.inbound.username] = trunk
        self._networks.extend((net, trunk) for net in trunk.networks)
        self._networks.sort(key=lambda item: -item[0].prefixlen)

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_name.values())

    def get(self, name: str) -> Trunk | None:
        return self._by_name.get(name)

    def by_username(self, username: str) -> Trunk | None:
        return self._by_user.get(username)

    def match_source(self, host: str) -> Trunk | None:
        """The trunk whose allowlist holds ``host`` (most specific network), or None."""
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for net, trunk in self._networks:
            if address.version == net.version and address in net:
                return trunk
        return None

    def inbound_accounts(self) -> list[Account]:
        """The trunks' digest accounts, to add to the :class:`Directory`."""
        return [t.inbound for t in self._by_name.values() if t.inbound is not None]


def best_challenge(challenges: list[AuthHeader], credentials: OutboundCredentials) -> AuthHeader | None:
    """The strongest Digest challenge we can answer (RFC 8760 2.4: SHA-512/256, SHA-256, then MD5)."""
    for challenge in parse_challenges(challenges):
        if credentials.can_answer(challenge):
            return challenge
    return None


def authorize_retry(
    request: Request, response: Response, credentials: OutboundCredentials, *, cnonce: str, nc: int = 1
) -> Request | None:
    """The request to send again after ``response`` (401 or 407) challenged it, or None.

    None means: give up and pass the 401/407 on - no challenge we can answer,
    or the request already carried our credentials for that realm and the
    challenge is not ``stale=true`` (the trunk refused them; retrying would
    loop). The retry keeps the Call-ID, tags, Request-URI, body and every
    other header, takes CSeq + 1 (RFC 3261 22.2, 8.1.3.5), has no Via (the
    endpoint adds a new one with a new branch) and replaces any credentials of
    that realm with an answer to the new challenge. ``cnonce`` must come from
    a secure random source; ``nc`` counts uses of the same nonce.
    """
    if response.status_code == 401:
        header = "Authorization"
    elif response.status_code == 407:
        header = "Proxy-Authorization"
    else:
        raise ValueError(f"response: must be a 401 or 407, not {response.status_code}")
    try:
        challenges = response.www_authenticate if response.status_code == 401 else response.proxy_authenticate
        previous = [parse_auth_header(v, header) for v in request.headers.get_all(header)]
    except SipParseError:
        return None
    challenge = best_challenge(challenges, credentials)
    if challenge is None:
        return None
    realm = challenge.get("realm") or ""
    answered = [p for p in previous if p.scheme.lower() == "digest" and p.get("realm") == realm]
    if answered and (challenge.get("stale") or "").lower() != "true":
        return None
    algorithm = challenge.get("algorithm") or "MD5"
    ha1 = credentials.ha1_for(realm, algorithm)
    creds = authorization_for(
        challenge,
        method=request.method,
        uri=str(request.uri),
        username=credentials.username,
        cnonce=cnonce,
        nc=nc,
        ha1=ha1,
        password=None if ha1 is not None else credentials.password,
        body=request.body,
    )
    retry = request.copy()
    retry.headers.remove("Via")
    kept = [
        v
        for v, p in zip(request.headers.get_all(header), previous)
        if not (p.scheme.lower() == "digest" and p.get("realm") == realm)
    ]
    retry.headers.remove(header)
    for value in kept:
        retry.headers.add(header, value)
    retry.headers.add(header, str(creds))
    cseq = request.cseq
    retry.headers.set("CSeq", f"{cseq.seq + 1} {cseq.method}")
    return retry


_TRUNK_KEYS = frozenset({"name", "allow", "username", "password", *CONFIG_KEYS.values(), "outbound"})
_OUTBOUND_KEYS = frozenset({"username", "password", "realm", *CONFIG_KEYS.values()})


def trunks_from_config(
    entries: Iterable[Mapping[str, Any]],
    realm: str,
    *,
    algorithms: Iterable[str] = ("SHA-256", "MD5"),
    ignore_keys: Iterable[str] = (),
) -> list[Trunk]:
    """Trunks from ``[[trunk]]`` tables::

        [[trunk]]
        name = "carrier"
        allow = ["203.0.113.0/24"]       # inbound by source address
        username = "pbx-b"               # and/or inbound by digest, in our realm:
        ha1_sha256 = "..."               #   HA1s, or a password hashed here
        [trunk.outbound]                 # answering the carrier's challenges
        username = "hotline"
        realm = "sip.carrier.example"    # with a realm, a password is hashed here
        password = "..."                 # or ha1_md5 / ha1_sha256 (they need the realm)

    ``ignore_keys`` are the keys other subsystems read from the same table
    (routing: host, port, prefixes...); any other unknown key is an error
    naming the entry: ``trunk[1].outbound: ...``.
    """
    algorithms = tuple(algorithms)
    known = _TRUNK_KEYS | frozenset(ignore_keys)
    out = []
    for index, entry in enumerate(entries):
        label = f"trunk[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{label}: must be a table")
        unknown = set(entry) - known
        if unknown:
            raise ValueError(f"{label}: unknown keys {', '.join(sorted(unknown))}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{label}.name: must be a non-empty string")
        label = f"trunk[{index}] ({name})"
        allow = entry.get("allow", ())
        if isinstance(allow, str) or not all(isinstance(a, str) for a in allow):
            raise ValueError(f"{label}.allow: must be a list of CIDR strings")
        inbound = None
        if "username" in entry:
            fields = {k: entry[k] for k in ("username", "password", *CONFIG_KEYS.values()) if k in entry}
            (inbound,) = accounts_from_config(
                [fields], realm, algorithms=algorithms, kind="trunk", where=label
            )
        elif "password" in entry or any(k in entry for k in CONFIG_KEYS.values()):
            raise ValueError(f"{label}: inbound credentials need a username")
        outbound = None
        if "outbound" in entry:
            outbound = _outbound_from_config(entry["outbound"], f"{label}.outbound", algorithms)
        if not allow and inbound is None and outbound is None:
            raise ValueError(f"{label}: needs allow, inbound credentials or outbound credentials")
        try:
            out.append(Trunk(name, tuple(allow), inbound, outbound))
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    return out


def _outbound_from_config(table: Any, label: str, algorithms: tuple[str, ...]) -> OutboundCredentials:
    if not isinstance(table, Mapping):
        raise ValueError(f"{label}: must be a table")
    unknown = set(table) - _OUTBOUND_KEYS
    if unknown:
        raise ValueError(f"{label}: unknown keys {', '.join(sorted(unknown))}")
    username, password, realm = table.get("username"), table.get("password"), table.get("realm")
    if not isinstance(username, str) or not username:
        raise ValueError(f"{label}.username: must be a non-empty string")
    if realm is not None and (not isinstance(realm, str) or not realm):
        raise ValueError(f"{label}.realm: must be a non-empty string")
    ha1 = {alg: table[key] for alg, key in CONFIG_KEYS.items() if key in table}
    try:
        if password is not None:
            if ha1:
                raise ValueError("give either password or HA1 values, not both")
            if not isinstance(password, str) or not password:
                raise ValueError("password: must be a non-empty string")
            return OutboundCredentials.from_password(username, password, realm=realm, algorithms=algorithms)
        if not ha1:
            raise ValueError("needs a password or HA1 values")
        if realm is None:
            raise ValueError("HA1 values need the realm they were made for")
        return OutboundCredentials(username, {(realm, alg): value for alg, value in ha1.items()})
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
