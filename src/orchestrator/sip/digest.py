"""HTTP Digest authentication for SIP: RFC 3261 22.4 as updated by RFC 8760
(SHA-256 and SHA-512/256 for SIP, RFC 7616 algorithms), qop=auth (and
auth-int).

Server side (:class:`DigestServer`): challenges whose nonce embeds its issue
time and an HMAC over it, so a nonce can be checked without any state and
expires after ``nonce_lifetime`` seconds (time is passed in, ``now=``);
verification of ``Authorization`` / ``Proxy-Authorization`` credentials
against a stored HA1 - ``H(username:realm:password)`` - never a password.

Client side (:func:`authorization_for`): the credentials for an outbound
trunk, answering a challenge.

Stateless nonces cannot detect a replayed nonce-count; a registrar that needs
that keeps the highest ``nc`` per nonce itself (RFC 7616 3.3, 5.6).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass

from .errors import LocalProtocolError, SipParseError
from .fields import AuthHeader
from .message import Request

__all__ = ["ALGORITHMS", "compute_ha1", "digest_response", "DigestServer", "DigestResult",
           "authorization_for", "parse_challenges"]


def _sha512_256(data: bytes) -> str:
    return hashlib.new("sha512_256", data).hexdigest()


_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),  # noqa: S324 - the protocol mandates it (RFC 3261 22.4)
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}
try:
    _sha512_256(b"")
    _HASHES["SHA-512-256"] = _sha512_256
except ValueError:  # OpenSSL without SHA-512/256
    pass
ALGORITHMS = tuple(_HASHES) + tuple(f"{a}-sess" for a in _HASHES)


def _hash_for(algorithm: str) -> Callable[[bytes], str]:
    base = algorithm[:-5] if algorithm.upper().endswith("-SESS") else algorithm
    for name, fn in _HASHES.items():
        if name.upper() == base.upper():
            return fn
    raise LocalProtocolError(f"algorithm: {algorithm!r} is not one of {', '.join(ALGORITHMS)}")


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "SHA-256") -> str:
    """``H(username:realm:password)``: what a user database stores instead of the password."""
    return _hash_for(algorithm)(f"{username}:{realm}:{password}".encode())


def digest_response(*, ha1: str, algorithm: str, method: str, uri: str, nonce: str, qop: str | None,
                    nc: str | None, cnonce: str | None, body: bytes = b"") -> str:
    """The ``response`` value (RFC 7616 3.4.1, RFC 2617 3.2.2)."""
    h = _hash_for(algorithm)
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}" if qop != "auth-int" else f"{method}:{uri}:{h(body)}"
    ha2 = h(a2.encode())
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{ha2}".encode())


@dataclass(frozen=True)
class DigestResult:
    """Outcome of :meth:`DigestServer.verify`. ``stale`` means: challenge again with stale=true."""

    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""


class DigestServer:
    """Challenges and verifies digest credentials for one realm, statelessly.

    ``secret`` keys the nonce HMAC (keep it private; rotate to invalidate every
    nonce). ``algorithms`` are offered in order, one challenge each (RFC 8760
    section 2.4: the preferred first).
    """

    def __init__(self, *, realm: str, secret: bytes, nonce_lifetime: float = 300.0,
                 algorithms: tuple[str, ...] = ("SHA-256", "MD5"), qop: str = "auth") -> None:
        if not realm or '"' in realm:
            raise ValueError("realm: must be non-empty and contain no '\"'")
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise ValueError("secret: must be at least 16 bytes")
        if nonce_lifetime <= 0:
            raise ValueError("nonce_lifetime: must be positive")
        for a in algorithms:
            try:
                _hash_for(a)
            except LocalProtocolError as exc:
                raise ValueError(str(exc)) from None
        if qop not in ("auth", "auth-int", "auth,auth-int"):
            raise ValueError("qop: must be 'auth', 'auth-int' or 'auth,auth-int'")
        self.realm = realm
        self._secret = secret
        self.nonce_lifetime = nonce_lifetime
        self.algorithms = algorithms
        self.qop = qop
        self._counter = 0

    # -- nonces ---------------------------------------------------------------------------
    def make_nonce(self, now: float) -> str:
        """``base64(issue-time-ms, counter, HMAC-SHA256(secret, both))``."""
        self._counter = (self._counter + 1) & 0xFFFFFFFF
        payload = struct.pack(">QI", int(now * 1000), self._counter)
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")

    def check_nonce(self, nonce: str, now: float) -> str:
        """'valid', 'stale' (ours but expired) or 'invalid'."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return "invalid"
        if len(raw) != 28:
            return "invalid"
        payload, mac = raw[:12], raw[12:]
        if not hmac.compare_digest(mac, hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]):
            return "invalid"
        issued = struct.unpack(">QI", payload)[0] / 1000
        if issued > now + 1 or now - issued > self.nonce_lifetime:
            return "stale"
        return "valid"

    # -- challenges -----------------------------------------------------------------------
    def challenges(self, now: float, *, stale: bool = False) -> list[AuthHeader]:
        """One challenge per algorithm, for ``WWW-Authenticate`` (401) or ``Proxy-Authenticate`` (407)."""
        nonce = self.make_nonce(now)
        out = []
        for algorithm in self.algorithms:
            params = [("realm", self.realm, True), ("nonce", nonce, True), ("algorithm", algorithm, False),
                      ("qop", self.qop, True)]
            if stale:
                params.append(("stale", "true", False))
            out.append(AuthHeader("Digest", tuple(params)))
        return out

    # -- verification ---------------------------------------------------------------------
    def verify(self, request: Request, ha1_for: Callable[[str, str, str], str | None], now: float, *,
               header: str = "Authorization") -> DigestResult:
        """Check the credentials in ``request`` (RFC 3261 22.4, RFC 8760 2.5).

        ``ha1_for(username, realm, algorithm)`` returns the stored HA1 for that
        algorithm, or None for an unknown user. Credentials for other realms or
        schemes are ignored; none usable -> ``ok=False`` (send a challenge).
        """
        try:
            credentials = request.authorization if header == "Authorization" else request.proxy_authorization
        except SipParseError as exc:
            return DigestResult(False, reason=f"malformed {header}: {exc.reason}")
        for cred in credentials:
            if cred.scheme.lower() != "digest" or cred.get("realm") != self.realm:
                continue
            return self._verify_one(request, cred, ha1_for, now)
        return DigestResult(False, reason="no credentials for this realm")

    def _verify_one(self, request: Request, cred: AuthHeader, ha1_for: Callable[[str, str, str], str | None],
                    now: float) -> DigestResult:
        username, nonce, uri, response = (cred.get(k) for k in ("username", "nonce", "uri", "response"))
        algorithm = cred.get("algorithm") or "MD5"
        if not (username and nonce and uri and response):
            return DigestResult(False, reason="credentials lack username, nonce, uri or response")
        if not any(a.upper() == algorithm.upper() for a in self.algorithms):
            return DigestResult(False, username, reason=f"algorithm {algorithm} was not offered")
        qop, nc, cnonce = cred.get("qop"), cred.get("nc"), cred.get("cnonce")
        if qop not in [q for q in self.qop.split(",")]:
            return DigestResult(False, username, reason="qop missing or not offered")
        if not nc or not cnonce or len(nc) != 8:
            return DigestResult(False, username, reason="qop needs nc (8 hex digits) and cnonce")
        if str(request.uri) != uri and not request.uri.equivalent(_try_uri(uri)):  # type: ignore[union-attr]
            return DigestResult(False, username, reason="digest uri does not match the Request-URI")
        state = self.check_nonce(nonce, now)
        if state == "invalid":
            return DigestResult(False, username, reason="nonce was not issued by us")
        ha1 = ha1_for(username, self.realm, algorithm)
        if ha1 is None:
            return DigestResult(False, username, reason="unknown user")
        expected = digest_response(ha1=ha1, algorithm=algorithm, method=request.method, uri=uri, nonce=nonce,
                                   qop=qop, nc=nc, cnonce=cnonce, body=request.body)
        if not hmac.compare_digest(expected, response.lower()):
            return DigestResult(False, username, reason="wrong response")
        if state == "stale":  # right password, old nonce: RFC 7616 3.3 stale=true
            return DigestResult(False, username, stale=True, reason="nonce expired")
        return DigestResult(True, username)


def _try_uri(text: str) -> object:
    from .uri import parse_uri

    try:
        return parse_uri(text)
    except SipParseError:
        return None


def parse_challenges(headers: list[AuthHeader]) -> list[AuthHeader]:
    """The Digest challenges we can answer, best algorithm first (RFC 8760 2.4)."""
    rank = {a.upper(): i for i, a in enumerate(("SHA-512-256", "SHA-256", "MD5",
                                               "SHA-512-256-SESS", "SHA-256-SESS", "MD5-SESS"))}
    usable = [h for h in headers if h.scheme.lower() == "digest"
              and (h.get("algorithm") or "MD5").upper() in {a.upper() for a in ALGORITHMS}]
    return sorted(usable, key=lambda h: rank.get((h.get("algorithm") or "MD5").upper(), 99))


def authorization_for(challenge: AuthHeader, *, method: str, uri: str, username: str, cnonce: str,
                      nc: int = 1, password: str | None = None, ha1: str | None = None,
                      body: bytes = b"") -> AuthHeader:
    """Credentials answering ``challenge`` (client side: outbound trunks, registrations).

    Give either the ``password`` or a precomputed ``ha1``. ``cnonce`` must be
    unpredictable (the driver draws it from a system random source).
    """
    if challenge.scheme.lower() != "digest":
        raise LocalProtocolError("challenge: not a Digest challenge")
    realm, nonce = challenge.get("realm"), challenge.get("nonce")
    if realm is None or not nonce:
        raise LocalProtocolError("challenge: lacks realm or nonce")
    algorithm = challenge.get("algorithm") or "MD5"
    if (password is None) == (ha1 is None):
        raise LocalProtocolError("give exactly one of password and ha1")
    if ha1 is None:
        base = algorithm[:-5] if algorithm.upper().endswith("-SESS") else algorithm
        ha1 = compute_ha1(username, realm, password or "", base)
    offered = [q.strip() for q in (challenge.get("qop") or "").split(",") if q.strip()]
    qop = "auth" if "auth" in offered else "auth-int" if "auth-int" in offered else None
    nc_text = f"{nc:08x}"
    response = digest_response(ha1=ha1, algorithm=algorithm, method=method, uri=uri, nonce=nonce, qop=qop,
                               nc=nc_text if qop else None, cnonce=cnonce if qop else None, body=body)
    params: list[tuple[str, str, bool]] = [("username", username, True), ("realm", realm, True),
                                           ("nonce", nonce, True), ("uri", uri, True),
                                           ("response", response, True), ("algorithm", algorithm, False)]
    if qop:
        params += [("qop", qop, False), ("nc", nc_text, False), ("cnonce", cnonce, True)]
    opaque = challenge.get("opaque")
    if opaque is not None:
        params.append(("opaque", opaque, True))
    return AuthHeader("Digest", tuple(params))
