"""Helpers for the registrar tests: a registrar on a simulated clock, REGISTER
builders, a client that answers challenges like a softphone, and the
captured baresip / linphone REGISTER requests in ``fixtures/``.

The fixtures were received by our registrar from baresip 1.0.0 and
linphonec 5.1.65 on 127.0.0.1 (see fixtures/README.md): realm
``hotline.test``, nonce secret ``FIXTURE_SECRET``, password ``s3cret`` for
``alice`` (baresip) and ``carol`` (linphone).
"""

from __future__ import annotations

import itertools
from pathlib import Path

from orchestrator.registrar import (
    Account,
    DigestAuth,
    DigestConfig,
    Directory,
    LocationService,
    Registrar,
    RegistrarConfig,
)
from orchestrator.sip import Address, Request, Response, authorization_for, parse_datagram
from orchestrator.sip.digest import parse_challenges

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_SECRET = b"hotline-registrar-fixture-secret"
FIXTURE_REALM = "hotline.test"

REALM = "hotline.example"
SECRET = b"0123456789abcdef0123456789abcdef"
T0 = 1_700_000_000.0  # a POSIX time: the registrar's clock is wall-clock seconds
PHONE = Address("192.0.2.10", 5062, "UDP")


def fixture(name: str) -> Request:
    message = parse_datagram((FIXTURES / name).read_bytes())
    assert isinstance(message, Request)
    return message


def make_registrar(
    *,
    users: dict[str, str] | None = None,
    algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
    nonce_lifetime: float = 300.0,
    location: LocationService | None = None,
    domains: frozenset[str] = frozenset({REALM, "192.0.2.1"}),
    realm: str = REALM,
    secret: bytes = SECRET,
    **config,
) -> Registrar:
    users = {"9001": "agent-pw", "9002": "other-pw"} if users is None else users
    directory = Directory(Account.from_password(u, realm, p) for u, p in users.items())
    auth = DigestAuth(
        directory,
        DigestConfig(realm=realm, secret=secret, algorithms=algorithms, nonce_lifetime=nonce_lifetime),
    )
    return Registrar(RegistrarConfig(domains=domains, **config), auth, location)


_branches = itertools.count(1)


def register(
    user: str = "9001",
    *,
    contacts: list[str] | None = None,
    expires: int | None = None,
    call_id: str = "reg-call-1",
    cseq: int = 1,
    domain: str = REALM,
    request_uri: str | None = None,
    from_user: str | None = None,
    extra: list[tuple[str, str]] = (),
) -> Request:
    contacts = [f"<sip:{user}@192.0.2.10:5062>"] if contacts is None else contacts
    headers = [
        ("Via", f"SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-t{next(_branches)};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{from_user or user}@{domain}>;tag=from-{user}"),
        ("To", f"<sip:{user}@{domain}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
    ]
    headers += [("Contact", c) for c in contacts]
    if expires is not None:
        headers.append(("Expires", str(expires)))
    headers += list(extra)
    return Request("REGISTER", request_uri or f"sip:{domain}", headers)


class Phone:
    """A softphone's registration client: answers 401s, reuses a nonce with a rising nc."""

    def __init__(
        self,
        registrar: Registrar,
        user: str = "9001",
        password: str = "agent-pw",
        *,
        source: Address = PHONE,
        prefer: str | None = None,
        reuse_nonce: bool = True,
    ) -> None:
        self.registrar = registrar
        self.user = user
        self.password = password
        self.source = source
        self.prefer = prefer
        self.reuse_nonce = reuse_nonce
        self.cseq = 0
        self.challenge = None
        self.nc = 0
        self.cnonces = itertools.count(1)

    def _credentials(self, request: Request) -> str:
        self.nc += 1
        creds = authorization_for(
            self.challenge,
            method="REGISTER",
            uri=str(request.uri),
            username=self.user,
            password=self.password,
            cnonce=f"cn{next(self.cnonces)}",
            nc=self.nc,
        )
        return str(creds)

    def _take_challenge(self, response: Response) -> None:
        offered = parse_challenges(response.www_authenticate)
        if self.prefer:
            offered = [c for c in offered if c.get("algorithm") == self.prefer] or offered
        self.challenge = offered[0]
        self.nc = 0

    def send(self, now: float, **kw) -> Response:
        """Send a REGISTER (answering at most two challenges); the final response."""
        for _ in range(3):
            self.cseq += 1
            request = register(self.user, cseq=self.cseq, call_id=f"call-{self.user}", **kw)
            if self.challenge is not None and self.reuse_nonce:
                request.headers.add("Authorization", self._credentials(request))
            response = self.registrar.handle_register(request, self.source, now).response
            if response.status_code != 401:
                return response
            self._take_challenge(response)
        return response


def contact_expires(response: Response) -> dict[str, int]:
    """Contact URI -> its expires parameter, from a 200 OK."""
    return {str(c.uri): int(c.param("expires") or -1) for c in response.contact}
