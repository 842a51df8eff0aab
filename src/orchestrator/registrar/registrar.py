"""The registrar: REGISTER processing of RFC 3261 section 10.3, authenticated
with digest (RFC 3261 22, RFC 8760), on a :class:`LocationService`.

Pure: :meth:`Registrar.handle_register` takes a parsed request, its source
address and ``now`` (POSIX seconds) and returns the response and the
registration events; the Trio side (:mod:`~orchestrator.registrar.service`)
only sends the one and forwards the others.

The steps, in the RFC's order:

1. the Request-URI must name a domain we hold bindings for - else 404
   (RFC 3261 21.4.5: "the domain ... does not match any of the domains
   handled by the recipient");
2. an unknown option tag in Require - 420 with Unsupported (8.2.2.3);
3. authentication - 401 with one WWW-Authenticate per algorithm (SHA-256
   first, RFC 8760 2.4), 401 with ``stale=true`` for a right answer to an
   expired nonce, 403 for wrong credentials (the same 403 for an unknown user),
   400 for malformed credentials; credentials that answer one of our nonces
   in another realm are a 403 ("wrong realm");
4. authorization - the authenticated account may change the bindings of
   ``sip:<username>@<served domain>`` and of the AORs it lists; anything else
   is a 403 (so a user whose To names someone else is refused);
5. the AOR (the To URI, canonical) must be in a served domain - else 404;
6. ``Contact: *`` only alone and with ``Expires: 0`` - else 400;
7. each contact's interval: its ``expires`` parameter, else the Expires
   header, else ``default_expires``; a malformed parameter counts as 3600
   (20.10); above ``max_expires`` it is shortened; ``0 < e < min_expires``
   (and under an hour) is a 423 with Min-Expires; then the bindings change
   atomically (500 when the Call-ID/CSeq order or the store says no; 503 over
   the contact limit);
8. 200 OK listing every current binding with its ``expires``, an Expires
   header (the interval granted to this request's contacts), a Date header
   and no Record-Route (10.3: a registrar MUST NOT add one).

Path (RFC 3327): the Path values of a REGISTER are stored with its bindings
(for the B2BUA to route through the same proxies, e.g. a Kamailio in front)
and echoed in the 200 when the UA's Supported lists ``path``.

Malformed requests are 400 with a Warning saying why; authentication
outcomes say nothing beyond their status code.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate

from orchestrator.sip import (
    Address,
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    make_response,
    parse_name_addr,
)
from orchestrator.sip._grammar import quote

from .credentials import Account
from .digestauth import DigestAuth, DigestStatistics
from .events import RegistrationEvent
from .location import Binding, LocationService, LocationStatistics, RegistrationRejected, aor_key

__all__ = ["RegisterOutcome", "Registrar", "RegistrarConfig", "RegistrarStatistics"]

_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
_MAX_DELTA = 2**32 - 1


@dataclass(frozen=True, kw_only=True)
class RegistrarConfig:
    """What the registrar serves and the intervals it grants.

    ``domains``: hosts (names or addresses) whose bindings we hold - the
    Request-URI host and the AOR host must be one of them. ``date_header``
    adds ``Date`` to 200 responses (``now`` must then be POSIX time).
    ``supported``: option tags accepted in Require (``path``: RFC 3327,
    which this registrar implements).
    """

    domains: frozenset[str]
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    date_header: bool = True
    supported: frozenset[str] = frozenset({"path"})

    def __post_init__(self) -> None:
        if isinstance(self.domains, str) or not self.domains:
            raise ValueError("domains: must be a non-empty set of host names or addresses")
        object.__setattr__(self, "domains", frozenset(d.lower().strip("[]") for d in self.domains))
        for name in ("min_expires", "max_expires", "default_expires"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= _MAX_DELTA:
                raise ValueError(f"{name}: must be an int of seconds in 1..{_MAX_DELTA}")
        if self.min_expires > self.max_expires:
            raise ValueError("min_expires: must not exceed max_expires")
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("default_expires: must lie between min_expires and max_expires")
        if isinstance(self.supported, str):
            raise ValueError("supported: must be a set of option tags, not a string")
        object.__setattr__(self, "supported", frozenset(t.lower() for t in self.supported))

    def serves(self, host: str) -> bool:
        return host.lower().strip("[]") in self.domains


@dataclass(frozen=True)
class RegisterOutcome:
    """What :meth:`Registrar.handle_register` decided.

    ``aor`` and ``account`` are set once known; ``bindings`` are the AOR's
    bindings after a 200.
    """

    response: Response
    events: list[RegistrationEvent] = field(default_factory=list)
    aor: str | None = None
    account: Account | None = None
    bindings: tuple[Binding, ...] = ()

    @property
    def status_code(self) -> int:
        return self.response.status_code


@dataclass(frozen=True)
class RegistrarStatistics:
    requests: int
    responses: dict[int, int]
    location: LocationStatistics
    digest: DigestStatistics


class _Reject(Exception):
    def __init__(
        self,
        status: int,
        detail: str = "",
        headers: tuple[tuple[str, str], ...] = (),
        reason: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.reason = reason


class Registrar:
    """Handles REGISTER requests for ``config.domains`` (pure; see the module docs)."""

    def __init__(
        self, config: RegistrarConfig, auth: DigestAuth, location: LocationService | None = None
    ) -> None:
        if not isinstance(config, RegistrarConfig):
            raise ValueError("config: must be a RegistrarConfig")
        if not isinstance(auth, DigestAuth):
            raise ValueError("auth: must be a DigestAuth")
        self.config = config
        self.auth = auth
        self.location = location if location is not None else LocationService()
        self._requests = 0
        self._responses: Counter[int] = Counter()

    def statistics(self, now: float) -> RegistrarStatistics:
        return RegistrarStatistics(
            requests=self._requests,
            responses=dict(self._responses),
            location=self.location.statistics(),
            digest=self.auth.statistics(now),
        )

    # -- the request ----------------------------------------------------------------------------
    def handle_register(self, request: Request, source: Address, now: float) -> RegisterOutcome:
        """Process one REGISTER (RFC 3261 10.3) and say what to answer."""
        if not isinstance(request, Request) or request.method != "REGISTER":
            raise ValueError("request: must be a REGISTER Request")
        self._requests += 1
        account: Account | None = None
        aor: str | None = None
        try:
            contacts, star, expires_header = self._parse(request)
            self._check_request_uri(request)
            self._check_require(request)
            account = self._authenticate(request, source, now)
            aor = self._authorize(request, account, source, now)
            if star:
                if expires_header != 0:
                    raise _Reject(400, "Contact: * needs Expires: 0 (RFC 3261 10.2.2)")
                bindings, events = self.location.remove_all(
                    aor, call_id=request.call_id, cseq=request.cseq.seq, now=now
                )
                granted: list[int] = []
            else:
                wanted = [(c, self._interval(c, expires_header)) for c in contacts]
                too_brief = [e for _, e in wanted if 0 < e < self.config.min_expires and e < 3600]
                if too_brief:
                    raise _Reject(
                        423,
                        f"expires {min(too_brief)} is below {self.config.min_expires}",
                        (("Min-Expires", str(self.config.min_expires)),),
                    )
                granted = [min(e, self.config.max_expires) for _, e in wanted]
                bindings, events = self.location.register(
                    aor,
                    [(c, g) for (c, _), g in zip(wanted, granted)],
                    call_id=request.call_id,
                    cseq=request.cseq.seq,
                    now=now,
                    source=source,
                    user_agent=request.headers.get("User-Agent"),
                    username=account.username,
                    path=self._path(request),
                )
        except _Reject as r:
            return self._outcome(
                self._response(request, r.status, r.reason, r.headers, r.detail), aor=aor, account=account
            )
        except RegistrationRejected as r:
            return self._outcome(
                self._response(request, r.status_code, r.reason, (), r.detail), aor=aor, account=account
            )
        return self._outcome(self._ok(request, bindings, granted, now), events, aor, account, bindings)

    # -- steps ----------------------------------------------------------------------------------
    def _parse(self, request: Request) -> tuple[list[NameAddr], bool, int | None]:
        try:
            to = request.to
            call_id = request.call_id
            cseq = request.cseq
            star = request.contact_is_star
            contacts = request.contact
            expires = request.expires
        except SipParseError as exc:
            raise _Reject(400, exc.reason) from None
        if cseq.method != "REGISTER":
            raise _Reject(400, "CSeq method does not match the Request-Line")
        if not call_id:
            raise _Reject(400, "empty Call-ID")
        if not isinstance(to.uri, SipUri):
            raise _Reject(400, "REGISTER To must be a SIP or SIPS URI (RFC 3261 10.2)")
        if to.uri.user is None:
            raise _Reject(400, "REGISTER To must name a user")
        for contact in contacts:
            if not isinstance(contact.uri, SipUri):
                raise _Reject(400, f"Contact {contact.uri.scheme}: URIs cannot be reached here")
            q = contact.param("q")
            if q is not None and not _QVALUE.fullmatch(q):
                raise _Reject(400, f"Contact q-value {q[:20]!r} is not a qvalue (RFC 3261 20.10)")
        try:
            for value in request.headers.values("Path"):
                parse_name_addr(value, "Path")
        except SipParseError as exc:
            raise _Reject(400, exc.reason) from None
        return contacts, star, expires

    def _check_request_uri(self, request: Request) -> None:
        uri = request.uri
        if not isinstance(uri, SipUri) or not self.config.serves(uri.host):
            raise _Reject(404, "", reason="Not Found")

    def _check_require(self, request: Request) -> None:
        try:
            required = request.require
        except SipParseError as exc:
            raise _Reject(400, exc.reason) from None
        unknown = [t for t in required if t.lower() not in self.config.supported]
        if unknown:
            raise _Reject(420, "", (("Unsupported", ", ".join(unknown)),))

    def _authenticate(self, request: Request, source: Address, now: float) -> Account:
        verdict = self.auth.verify(request, source.host, now)
        if verdict.ok:
            assert verdict.account is not None
            return verdict.account
        if verdict.outcome in ("challenge", "stale"):
            raise _Reject(
                401,
                "",
                tuple(
                    self.auth.challenge_headers(
                        now, stale=verdict.outcome == "stale", user_agent=request.headers.get("User-Agent")
                    )
                ),
            )
        if verdict.outcome == "bad":
            raise _Reject(400, verdict.reason)
        raise _Reject(403, "")

    def _authorize(self, request: Request, account: Account, source: Address, now: float) -> str:
        to_uri = request.to.uri
        assert isinstance(to_uri, SipUri)
        aor = aor_key(to_uri)
        if not self._may_register(account, aor):
            self.auth.note_failure(source.host, now, "AOR not allowed for this user")
            raise _Reject(403, "")
        if not self.config.serves(to_uri.host):
            raise _Reject(404, "", reason="Not Found")
        return aor

    def _may_register(self, account: Account, aor: str) -> bool:
        host = aor.rpartition("@")[2]
        if (
            account.kind == "user"
            and self.config.serves(host)
            and aor == aor_key(SipUri(host, user=account.username))
        ):
            return True
        for allowed in account.aors:
            try:
                if aor_key(allowed) == aor:
                    return True
            except (ValueError, SipParseError):
                continue
        return False

    def _interval(self, contact: NameAddr, expires_header: int | None) -> int:
        value = contact.param("expires")
        if value is not None:
            if value.isascii() and value.isdigit():
                return min(int(value), _MAX_DELTA)
            return 3600  # RFC 3261 20.10: a malformed expires parameter counts as 3600
        if expires_header is not None:
            return expires_header
        return self.config.default_expires

    # -- responses ------------------------------------------------------------------------------
    def _to_tag(self, request: Request) -> str:
        return self.auth.response_tag(request, "registrar")

    def _response(
        self,
        request: Request,
        status: int,
        reason: str | None,
        headers: tuple[tuple[str, str], ...],
        detail: str,
    ) -> Response:
        extra = list(headers)
        if detail and status in (400, 500, 503, 423):
            extra.append(("Warning", f"399 hotline {quote(_printable(detail))}"))
        response = make_response(request, status, reason, to_tag=self._safe_tag(request), headers=extra)
        response.headers.remove("Record-Route")
        return response

    def _safe_tag(self, request: Request) -> str | None:
        try:
            return None if request.to.tag else self._to_tag(request)
        except SipParseError:
            return self._to_tag(request)

    def _path(self, request: Request) -> tuple[str, ...]:
        """RFC 3327 5.3: the Path values are stored with the binding (when we support path)."""
        if "path" not in self.config.supported:
            return ()
        return tuple(request.headers.values("Path"))

    def _ok(
        self, request: Request, bindings: tuple[Binding, ...], granted: list[int], now: float
    ) -> Response:
        headers: list[tuple[str, str]] = []
        try:
            echo_path = "path" in {t.lower() for t in request.supported}
        except SipParseError:
            echo_path = False
        if echo_path:  # RFC 3327 5.3: returned to a UA that indicated support
            headers.extend(("Path", p) for p in self._path(request))
        live = sorted(
            (b for b in bindings if b.expires_at > now),
            key=lambda b: (-(1.0 if b.q is None else b.q), -b.updated_at),
        )
        for b in live:
            headers.append(("Contact", str(b.contact.with_params(expires=str(b.expires_in(now))))))
        nonzero = [g for g in granted if g > 0]
        if nonzero:
            headers.append(("Expires", str(min(nonzero))))
        if self.config.date_header:
            headers.append(("Date", formatdate(now, usegmt=True)))
        response = make_response(request, 200, to_tag=self._safe_tag(request), headers=headers)
        response.headers.remove("Record-Route")
        return response

    def _outcome(
        self,
        response: Response,
        events: list[RegistrationEvent] | None = None,
        aor: str | None = None,
        account: Account | None = None,
        bindings: tuple[Binding, ...] = (),
    ) -> RegisterOutcome:
        self._responses[response.status_code] += 1
        return RegisterOutcome(response, events or [], aor, account, bindings)


def _printable(text: str) -> str:
    return "".join(c if " " <= c < "\x7f" else "?" for c in text)[:200]
