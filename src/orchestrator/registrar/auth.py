"""Who sent this request? The Authenticator the B2BUA asks before it accepts
an INVITE (or any other out-of-dialog request).

In order:

1. ACK and CANCEL pass: they cannot be resubmitted with credentials, so they
   are never challenged (RFC 3261 22.1); they belong to a transaction that
   was checked already.
2. A source address in a trunk's allowlist is that trunk (no challenge: the
   way carriers interconnect).
3. Digest credentials (in ``Proxy-Authorization`` by default: PBXes answer an
   INVITE with 407 Proxy-Authenticate, as RFC 3261 22.3 describes for a
   proxy; ``challenge_status=401`` uses WWW-Authenticate/Authorization) of a
   user or of a trunk's inbound account. A user must also be the one the
   request claims to be (the From user is its username or one of its AORs),
   else 403.

Answers are uniform: no credentials -> 407 (or 401) with fresh challenges,
whoever the From names; wrong password, unknown user, a From that is not the
user -> the same bare 403. Every refusal is counted per source address
(:meth:`Authenticator.is_suspicious`, :meth:`Authenticator.suspicious_sources`)
so the endpoint's rate limiting can act on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.sip import Address, Request, Response, SipParseError, SipUri, make_response

from .credentials import Account
from .digestauth import DigestAuth
from .location import aor_key
from .trunks import Trunk, TrunkTable

__all__ = ["AuthDecision", "Authenticator", "Identity"]


@dataclass(frozen=True)
class Identity:
    """Who a request comes from: a user (``name`` = username) or a trunk
    (``name`` = trunk name), and how we know (``by``: ``"digest"`` or ``"address"``)."""

    kind: Literal["user", "trunk"]
    name: str
    by: Literal["digest", "address"]
    account: Account | None = None
    trunk: Trunk | None = None


@dataclass(frozen=True)
class AuthDecision:
    """``ok`` (go on, ``identity`` says who; None for ACK/CANCEL) or ``response`` to send instead."""

    identity: Identity | None
    response: Response | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.response is None


class Authenticator:
    """Authenticates requests from users and trunks (see the module docs)."""

    def __init__(
        self,
        auth: DigestAuth,
        trunks: TrunkTable | None = None,
        *,
        challenge_status: Literal[401, 407] = 407,
        check_from: bool = True,
    ) -> None:
        if not isinstance(auth, DigestAuth):
            raise ValueError("auth: must be a DigestAuth")
        if trunks is not None and not isinstance(trunks, TrunkTable):
            raise ValueError("trunks: must be a TrunkTable or None")
        if challenge_status not in (401, 407):
            raise ValueError("challenge_status: must be 401 or 407")
        self.auth = auth
        self.trunks = trunks if trunks is not None else TrunkTable()
        self.challenge_status = challenge_status
        self.check_from = check_from
        self._header: Literal["Authorization", "Proxy-Authorization"] = (
            "Proxy-Authorization" if challenge_status == 407 else "Authorization"
        )

    def check(self, request: Request, source: Address, now: float) -> AuthDecision:
        """Authenticate ``request`` received from ``source`` at ``now``."""
        if request.method in ("ACK", "CANCEL"):
            return AuthDecision(None, reason="ACK and CANCEL are never challenged")
        trunk = self.trunks.match_source(source.host)
        if trunk is not None:
            return AuthDecision(Identity("trunk", trunk.name, "address", trunk=trunk))
        verdict = self.auth.verify(request, source.host, now, header=self._header)
        if verdict.outcome in ("challenge", "stale"):
            headers = self.auth.challenge_headers(
                now,
                stale=verdict.outcome == "stale",
                proxy=self.challenge_status == 407,
                user_agent=request.headers.get("User-Agent"),
            )
            return AuthDecision(None, self._response(request, self.challenge_status, headers), verdict.reason)
        if verdict.outcome == "bad":
            return AuthDecision(None, self._response(request, 400, []), verdict.reason)
        if not verdict.ok:
            return AuthDecision(None, self._response(request, 403, []), verdict.reason)
        account = verdict.account
        assert account is not None
        if account.kind == "trunk":
            found = self.trunks.by_username(account.username)
            return AuthDecision(
                Identity(
                    "trunk", found.name if found else account.username, "digest", account=account, trunk=found
                )
            )
        if self.check_from and not self._is_own_identity(request, account):
            self.auth.note_failure(source.host, now, "From is not the authenticated user")
            return AuthDecision(None, self._response(request, 403, []), "From is not the authenticated user")
        return AuthDecision(Identity("user", account.username, "digest", account=account))

    def is_suspicious(self, host: str, now: float) -> bool:
        """Whether ``host`` failed authentication often enough to be rate limited."""
        return self.auth.is_suspicious(host, now)

    def suspicious_sources(self, now: float) -> list[tuple[str, int]]:
        return self.auth.failures.suspicious_sources(now)

    def _is_own_identity(self, request: Request, account: Account) -> bool:
        try:
            uri = request.from_.uri
        except SipParseError:
            return False
        if not isinstance(uri, SipUri) or uri.user is None:
            return False
        if uri.user == account.username:
            return True
        try:
            key = aor_key(uri)
        except ValueError:
            return False
        allowed = set()
        for a in account.aors:
            try:
                allowed.add(aor_key(a))
            except (ValueError, SipParseError):
                continue
        return key in allowed

    def _response(self, request: Request, status: int, headers: list[tuple[str, str]]) -> Response:
        try:
            tag = None if request.to.tag else self._tag(request)
        except SipParseError:
            tag = self._tag(request)
        return make_response(request, status, to_tag=tag, headers=headers)

    def _tag(self, request: Request) -> str:
        return self.auth.response_tag(request, "authenticator")
