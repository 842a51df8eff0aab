"""Digest authentication of requests for one realm: RFC 3261 22 with RFC 8760
algorithms, on top of :class:`orchestrator.sip.DigestServer`.

What this adds to the SIP core's stateless verifier:

* HA1 lookup in a :class:`~orchestrator.registrar.credentials.Directory`;
* replay protection - the highest nonce-counts accepted per nonce
  (:class:`~orchestrator.registrar.guards.NonceCounts`, RFC 7616 3.3, 5.6);
* per-source failure counting and a "suspicious source" signal
  (:class:`~orchestrator.registrar.guards.FailureTracker`);
* uniform answers: an unknown username is verified against a decoy HA1, so it
  costs the same work and fails exactly like a wrong password, and every
  verdict that ends in a refusal is the same ``forbidden`` (403) whatever the
  reason. Reasons exist only for counters and logs.

A :class:`Verdict` says what to do: ``ok``; ``challenge`` (401/407 with fresh
challenges); ``stale`` (the same, with ``stale=true``: right password, old
nonce, RFC 7616 3.3); ``forbidden`` (403); ``bad`` (400, malformed credentials
or a digest ``uri`` that is not the Request-URI, RFC 7616 3.4.6).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.sip import DigestServer, Request, SipParseError

from .credentials import Account, Directory, canonical_algorithm
from .guards import FailureStatistics, FailureTracker, NonceCounts, NonceCountStatistics, nonce_issued_at

__all__ = ["DigestAuth", "DigestConfig", "DigestStatistics", "Verdict"]

Outcome = Literal["ok", "challenge", "stale", "forbidden", "bad"]


@dataclass(frozen=True, kw_only=True)
class DigestConfig:
    """Digest settings for one realm.

    ``algorithms`` are offered in this order, one challenge header each
    (RFC 8760 2.4: the preferred first). ``nonce_lifetime``: seconds a nonce
    stays valid; after that, a right answer gets ``stale=true``.
    ``max_nonces`` bounds the replay table, ``failure_threshold`` failures
    within ``failure_window`` seconds make a source suspicious.

    ``user_agent_algorithms``: (User-Agent prefix, algorithms) pairs for
    clients that cannot cope with the full set. RFC 8760 2.4 says a UAC skips
    a challenge whose algorithm it does not know, but baresip 1.0.0 (libre
    1.1.0, Debian 12) stops at the first one with "Function not implemented"
    and never registers when SHA-256 is offered at all; it gets MD5 alone.
    The challenge then depends only on the User-Agent, never on the user.
    Entries naming no algorithm of ``algorithms`` are ignored.
    """

    realm: str
    secret: bytes
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    nonce_lifetime: float = 300.0
    qop: str = "auth"
    max_nonces: int = 100_000
    nc_window: int = 32
    failure_threshold: int = 10
    failure_window: float = 60.0
    max_sources: int = 65536
    user_agent_algorithms: tuple[tuple[str, tuple[str, ...]], ...] = (("baresip v1.0.", ("MD5",)),)

    def __post_init__(self) -> None:
        if isinstance(self.algorithms, str) or not self.algorithms:
            raise ValueError("algorithms: must be a non-empty tuple of algorithm names")
        object.__setattr__(self, "algorithms", tuple(self.algorithms))
        for algorithm in self.algorithms:
            canonical_algorithm(algorithm)  # raises ValueError naming the algorithm
        pairs = []
        for item in self.user_agent_algorithms:
            if not (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[0], str)
                and item[0]
                and not isinstance(item[1], str)
            ):
                raise ValueError("user_agent_algorithms: must be (User-Agent prefix, algorithms) pairs")
            offered = tuple(a for a in self.algorithms if a.upper() in {x.upper() for x in item[1]})
            if offered:  # an entry naming nothing we offer is moot (e.g. MD5 switched off)
                pairs.append((item[0], offered))
        object.__setattr__(self, "user_agent_algorithms", tuple(pairs))

    def algorithms_for(self, user_agent: str | None) -> tuple[str, ...]:
        """The algorithms to offer a client with this User-Agent."""
        if user_agent:
            for prefix, algorithms in self.user_agent_algorithms:
                if user_agent.startswith(prefix):
                    return algorithms
        return self.algorithms


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one request's credentials (``reason`` is never sent)."""

    outcome: Outcome
    account: Account | None = None
    algorithm: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class DigestStatistics:
    challenges: int
    accepted: int
    stale: int
    forbidden: int
    bad: int
    replays: int
    unknown_users: int
    accepted_by_algorithm: dict[str, int] = field(default_factory=dict)
    forbidden_by_reason: dict[str, int] = field(default_factory=dict)
    nonces: NonceCountStatistics | None = None
    sources: FailureStatistics | None = None


_HEX_LENGTH = {"MD5": 32, "SHA-256": 64, "SHA-512-256": 64}


class DigestAuth:
    """Verifies ``Authorization`` / ``Proxy-Authorization`` and makes challenges."""

    def __init__(self, directory: Directory, config: DigestConfig) -> None:
        if not isinstance(directory, Directory):
            raise ValueError("directory: must be a Directory")
        if not isinstance(config, DigestConfig):
            raise ValueError("config: must be a DigestConfig")
        self.directory = directory
        self.config = config
        self.server = DigestServer(
            realm=config.realm,
            secret=config.secret,
            nonce_lifetime=config.nonce_lifetime,
            algorithms=config.algorithms,
            qop=config.qop,
        )
        self.realm = config.realm
        self.nonces = NonceCounts(
            lifetime=config.nonce_lifetime, max_nonces=config.max_nonces, window=config.nc_window
        )
        self.failures = FailureTracker(
            threshold=config.failure_threshold, window=config.failure_window, max_sources=config.max_sources
        )
        self._decoy_key = hmac.new(config.secret, b"hotline decoy HA1", hashlib.sha256).digest()
        self._tag_key = hmac.new(config.secret, b"hotline to-tag", hashlib.sha256).digest()
        self._counts: Counter[str] = Counter()
        self._by_algorithm: Counter[str] = Counter()
        self._forbidden_reasons: Counter[str] = Counter()
        #: Called with (source host, failures so far) when a source becomes suspicious.
        self.on_suspicious: Callable[[str, int], None] | None = None

    def response_tag(self, request: Request, purpose: str) -> str:
        """A To tag for our response to ``request`` (RFC 3261 19.3): a keyed hash of the
        request's Call-ID, CSeq and From, so a retransmission gets the same tag and nobody
        without the secret can predict one."""
        headers = request.headers
        seed = "\x00".join(
            (purpose, headers.get("Call-ID") or "", headers.get("CSeq") or "", headers.get("From") or "")
        )
        return hmac.new(self._tag_key, seed.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[
            :16
        ]

    # -- challenges ---------------------------------------------------------------------------
    def challenge_headers(
        self, now: float, *, stale: bool = False, proxy: bool = False, user_agent: str | None = None
    ) -> list[tuple[str, str]]:
        """One ``WWW-Authenticate`` (or ``Proxy-Authenticate``) header per algorithm, preferred first
        (only those :meth:`DigestConfig.algorithms_for` gives ``user_agent``)."""
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        offered = self.config.algorithms_for(user_agent)
        return [
            (name, str(c)) for c in self.server.challenges(now, stale=stale) if c.get("algorithm") in offered
        ]

    # -- verification -------------------------------------------------------------------------
    def _decoy(self, username: str, algorithm: str) -> str:
        name = canonical_algorithm(algorithm)
        mac = hmac.new(self._decoy_key, f"{name}:{username}".encode(), hashlib.sha512).hexdigest()
        return mac[: _HEX_LENGTH[name]]

    def verify(
        self,
        request: Request,
        source_host: str,
        now: float,
        *,
        header: Literal["Authorization", "Proxy-Authorization"] = "Authorization",
    ) -> Verdict:
        """Check the credentials of ``request`` from ``source_host`` at ``now``."""
        found: list[Account] = []
        unknown: list[str] = []

        def ha1_for(username: str, realm: str, algorithm: str) -> str | None:
            account = self.directory.get(username)
            ha1 = account.ha1_for(algorithm) if account is not None else None
            if ha1 is None:  # same work and the same "wrong response" as a wrong password
                unknown.append(username)
                return self._decoy(username, algorithm)
            found.append(account)  # type: ignore[arg-type]
            return ha1

        result = self.server.verify(request, ha1_for, now, header=header)
        if unknown:
            self._counts["unknown_users"] += 1
        if result.ok:
            return self._accept(request, found[0], source_host, now, header)
        reason = result.reason
        if result.stale:
            return self._verdict("stale", "nonce expired")
        if reason.startswith(("malformed", "credentials lack", "qop needs", "digest uri")):
            return self._verdict("bad", reason)
        if reason == "no credentials for this realm":
            if self._answers_our_nonce_in_another_realm(request, header, now):
                return self._refuse("wrong realm", source_host, now)
            return self._verdict("challenge", reason)
        if reason == "nonce was not issued by us":
            return self._verdict("challenge", reason)  # e.g. issued before a restart with a new secret
        # wrong response (wrong password or unknown user), algorithm or qop not offered
        return self._refuse(
            "wrong credentials" if reason in ("wrong response", "unknown user") else reason, source_host, now
        )

    def _accept(
        self, request: Request, account: Account, source_host: str, now: float, header: str
    ) -> Verdict:
        creds = request.authorization if header == "Authorization" else request.proxy_authorization
        cred = next(c for c in creds if c.scheme.lower() == "digest" and c.get("realm") == self.realm)
        nonce, nc_text = cred.get("nonce") or "", cred.get("nc") or ""
        algorithm = cred.get("algorithm") or "MD5"
        issued = nonce_issued_at(nonce)
        try:
            nc = int(nc_text, 16)
        except ValueError:
            return self._verdict("bad", "nc is not hexadecimal")
        state = self.nonces.check(nonce, nc, issued if issued is not None else now, now)
        if state == "replay":
            self._counts["replays"] += 1
            self._note_failure(source_host, now)
            return self._verdict("challenge", "replayed nonce-count")
        if state == "forgotten":
            return self._verdict("stale", "nonce forgotten by the replay table")
        self._counts["accepted"] += 1
        self._by_algorithm[algorithm.upper()] += 1
        return Verdict("ok", account, algorithm)

    def _answers_our_nonce_in_another_realm(self, request: Request, header: str, now: float) -> bool:
        try:
            creds = request.authorization if header == "Authorization" else request.proxy_authorization
        except SipParseError:
            return False
        for cred in creds:
            if cred.scheme.lower() == "digest" and cred.get("realm") != self.realm:
                nonce = cred.get("nonce")
                if nonce and self.server.check_nonce(nonce, now) != "invalid":
                    return True
        return False

    def _verdict(self, outcome: Outcome, reason: str) -> Verdict:
        self._counts[{"challenge": "challenges", "stale": "stale", "bad": "bad"}[outcome]] += 1
        return Verdict(outcome, reason=reason)

    def _refuse(self, reason: str, source_host: str, now: float) -> Verdict:
        self._counts["forbidden"] += 1
        self._forbidden_reasons[reason] += 1
        self._note_failure(source_host, now)
        return Verdict("forbidden", reason=reason)

    def _note_failure(self, source_host: str, now: float) -> None:
        if self.failures.failure(source_host, now) and self.on_suspicious is not None:
            self.on_suspicious(source_host, self.failures.failures(source_host))

    def note_failure(self, source_host: str, now: float, reason: str) -> None:
        """Count a refusal decided after the credentials were right (e.g. a 403 for
        an AOR the user may not register), so it feeds the same signal."""
        self._counts["forbidden"] += 1
        self._forbidden_reasons[reason] += 1
        self._note_failure(source_host, now)

    def is_suspicious(self, source_host: str, now: float) -> bool:
        return self.failures.is_suspicious(source_host, now)

    def statistics(self, now: float) -> DigestStatistics:
        c = self._counts
        return DigestStatistics(
            challenges=c["challenges"],
            accepted=c["accepted"],
            stale=c["stale"],
            forbidden=c["forbidden"],
            bad=c["bad"],
            replays=c["replays"],
            unknown_users=c["unknown_users"],
            accepted_by_algorithm=dict(self._by_algorithm),
            forbidden_by_reason=dict(self._forbidden_reasons),
            nonces=self.nonces.statistics(),
            sources=self.failures.statistics(now),
        )
