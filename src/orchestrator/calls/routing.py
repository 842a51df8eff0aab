"""Routing: where an incoming call goes.

A :class:`Router` maps a :class:`RouteRequest` (the dialled user from the
Request-URI, the To user, the caller, the source trunk) to one target:

* :class:`ToExtension` - a user's registered devices (looked up through the
  :class:`~orchestrator.calls.interfaces.Locator`, forked in parallel);
* :class:`ToQueue` / :class:`ToIvr` - handed to the registered
  :class:`~orchestrator.calls.interfaces.CallHandler` for "queue" / "ivr";
* :class:`ToTrunk` - out through a configured :class:`Trunk`;
* :class:`ToUri` - straight to a SIP URI (a device's contact, a test peer);
* :class:`Reject` - a final response.

:class:`DialPlan` is the configurable default: exact DIDs first, then the
source trunk's default route, then extensions (a regular expression on the
user part), then prefix rules that send a number out through a trunk
(``Prefix("9", trunk="pstn", strip=1)``), then the default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from orchestrator.sip import Address, SipUri, parse_uri
from orchestrator.sip.errors import SipParseError

from .interfaces import Identity

__all__ = [
    "ToExtension", "ToQueue", "ToIvr", "ToTrunk", "ToUri", "Reject", "RouteTarget", "RouteRequest",
    "Router", "DialPlan", "Prefix", "Trunk", "describe",
]


@dataclass(frozen=True)
class ToExtension:
    user: str


@dataclass(frozen=True)
class ToQueue:
    queue: str


@dataclass(frozen=True)
class ToIvr:
    flow: str


@dataclass(frozen=True)
class ToTrunk:
    trunk: str
    number: str


@dataclass(frozen=True)
class ToUri:
    uri: str

    def __post_init__(self) -> None:
        try:
            parsed = parse_uri(self.uri)
        except SipParseError as exc:
            raise ValueError(f"uri: {exc.reason}") from None
        if not isinstance(parsed, SipUri):
            raise ValueError("uri: must be a sip: or sips: URI")


@dataclass(frozen=True)
class Reject:
    status: int = 404
    reason: str | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 699:
            raise ValueError(f"status: must be a final error status 400..699, not {self.status!r}")


RouteTarget = ToExtension | ToQueue | ToIvr | ToTrunk | ToUri | Reject


def describe(target: RouteTarget) -> str:
    """The short form used in call records: ``extension:9001``, ``queue:support``..."""
    if isinstance(target, ToExtension):
        return f"extension:{target.user}"
    if isinstance(target, ToQueue):
        return f"queue:{target.queue}"
    if isinstance(target, ToIvr):
        return f"ivr:{target.flow}"
    if isinstance(target, ToTrunk):
        return f"trunk:{target.trunk}:{target.number}"
    if isinstance(target, ToUri):
        return f"uri:{target.uri}"
    return f"reject:{target.status}"


@dataclass(frozen=True, kw_only=True)
class Trunk:
    """A carrier or PBX trunk.

    Outbound: requests go to ``uri`` (``sip:host:port;transport=...``); the
    dialled number becomes the Request-URI user; ``username``/``password``
    answer a 401/407 challenge. Inbound: requests from ``sources`` (IP
    addresses) are this trunk's (the in-memory authenticator uses them as an
    allowlist). ``caller_id`` replaces the From user on outbound calls.
    """

    name: str
    uri: str
    sources: frozenset[str] = frozenset()
    username: str | None = None
    password: str | None = None
    caller_id: str | None = None
    max_calls: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: a trunk needs a name")
        try:
            parsed = parse_uri(self.uri)
        except SipParseError as exc:
            raise ValueError(f"uri: {exc.reason}") from None
        if not isinstance(parsed, SipUri):
            raise ValueError("uri: a trunk URI must be sip: or sips:")
        if isinstance(self.sources, str):
            raise ValueError("sources: must be a set of addresses, not a string")
        object.__setattr__(self, "sources", frozenset(self.sources))
        if (self.username is None) != (self.password is None):
            raise ValueError("username/password: give both or neither")

    @property
    def sip_uri(self) -> SipUri:
        uri = parse_uri(self.uri)
        assert isinstance(uri, SipUri)
        return uri

    def request_uri(self, number: str) -> SipUri:
        base = self.sip_uri
        return SipUri(base.host, user=number, port=base.port, params=base.params, scheme=base.scheme)


@dataclass(frozen=True, kw_only=True)
class RouteRequest:
    """What routing may look at."""

    user: str | None  # Request-URI user part (the DID or extension dialled)
    to_user: str | None
    from_user: str | None
    request_uri: str
    source: Address
    identity: Identity
    trunk: str | None = None  # name of the trunk the call came from, if any


@runtime_checkable
class Router(Protocol):
    def route(self, request: RouteRequest) -> RouteTarget:
        ...


@dataclass(frozen=True)
class Prefix:
    """Numbers starting with ``prefix`` go out through ``trunk``, minus ``strip`` digits."""

    prefix: str
    trunk: str
    strip: int = 0
    min_length: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.strip <= len(self.prefix):
            raise ValueError("strip: must be 0..len(prefix)")


@dataclass(frozen=True, kw_only=True)
class DialPlan:
    """A dial plan (see the module docstring for the order rules apply in)."""

    dids: Mapping[str, RouteTarget] = field(default_factory=dict)
    trunk_defaults: Mapping[str, RouteTarget] = field(default_factory=dict)
    extensions: str | None = r"[0-9]{3,6}"
    prefixes: Sequence[Prefix] = ()
    default: RouteTarget = Reject(404)
    use_to_user: bool = True

    def __post_init__(self) -> None:
        if self.extensions is not None:
            try:
                re.compile(self.extensions)
            except re.error as exc:
                raise ValueError(f"extensions: not a regular expression: {exc}") from None
        object.__setattr__(self, "dids", dict(self.dids))
        object.__setattr__(self, "trunk_defaults", dict(self.trunk_defaults))
        object.__setattr__(self, "prefixes", tuple(self.prefixes))

    def route(self, request: RouteRequest) -> RouteTarget:
        user = request.user or (request.to_user if self.use_to_user else None)
        if user is not None and user in self.dids:
            return self.dids[user]
        if request.trunk is not None and request.trunk in self.trunk_defaults:
            return self.trunk_defaults[request.trunk]
        if user is not None:
            if self.extensions is not None and re.fullmatch(self.extensions, user):
                return ToExtension(user)
            for rule in self.prefixes:
                if user.startswith(rule.prefix) and len(user) - rule.strip >= rule.min_length:
                    return ToTrunk(rule.trunk, user[rule.strip:])
        return self.default
