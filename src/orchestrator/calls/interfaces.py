"""The interfaces the B2BUA uses and other services implement.

Three services plug into :class:`~orchestrator.calls.CallManager`:

* a :class:`Locator` answers "where is this user's device" - the registrar's
  location service (RFC 3261 10, with RFC 3327 Path and RFC 5626 flows);
* an :class:`Authenticator` answers "may this request come in" - digest
  authentication of devices (RFC 8760) and trunk authentication by address
  allowlist or digest;
* :class:`CallHandler` objects take calls routed to a queue (the ACD) or an
  IVR flow; see :class:`orchestrator.calls.Call` for what a handler can do
  with a call (answer, play, collect digits, connect to an agent device...).

Trivial in-memory implementations live in :mod:`orchestrator.calls.memory`.

Rules for implementers (they keep Hotline from helping scanners):

* ``Authenticator.check`` must answer an unauthenticated request the same way
  whether or not the user it names exists: the same challenge (401/407 with a
  fresh nonce), never a 404 or a 403 that tells "no such user" from "wrong
  password". Use :class:`AuthReject` only for requests that can never be
  accepted whatever credentials they carry (e.g. a blocked address), and
  give it no detail.
* ``Locator.lookup`` returns every live binding of an address-of-record, best
  first (highest q), and an empty list both for an unknown user and a known
  one with no device registered: the B2BUA answers both 480.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from orchestrator.sip import Address, Request, SipUri

if TYPE_CHECKING:
    from .call import Call
    from .routing import RouteTarget

__all__ = [
    "Contact", "Locator", "Identity", "AuthOk", "AuthChallenge", "AuthReject", "AuthResult",
    "Authenticator", "CallHandler",
]


@dataclass(frozen=True, kw_only=True)
class Contact:
    """One registered binding of an address-of-record (``aor``, e.g. ``sip:9001@hotline``).

    ``uri`` is where INVITEs go (the Contact of the REGISTER). ``flow`` is the
    source address (and transport) the REGISTER came from: when set, requests
    are sent there - over the very connection for TCP/TLS (RFC 5626 flows),
    which also reaches devices behind NAT. ``path`` are the Path header values
    (RFC 3327) to use as Route headers. ``expires_at`` is on the Trio clock.
    """

    aor: str
    uri: SipUri
    flow: Address | None = None
    path: tuple[str, ...] = ()
    q: float = 1.0
    expires_at: float | None = None
    instance: str | None = None
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uri, SipUri):
            raise ValueError("uri: must be a SipUri (parse it with orchestrator.sip.parse_uri)")
        if not 0.0 <= self.q <= 1.0:
            raise ValueError(f"q: must be within 0.0..1.0, not {self.q!r}")
        if self.flow is not None and not isinstance(self.flow, Address):
            raise ValueError("flow: must be an Address or None")


@runtime_checkable
class Locator(Protocol):
    """Where a user's devices are."""

    async def lookup(self, aor: str) -> Sequence[Contact]:
        """Live bindings of ``aor`` (``sip:user@domain``), best first; [] if none."""
        ...


@dataclass(frozen=True)
class Identity:
    """Who a request comes from, once authenticated.

    ``kind`` is "user" (a registered device's account), "trunk" (a carrier or
    PBX trunk, ``name`` is the trunk's name) or "anonymous" (authentication
    not required for this source).
    """

    kind: Literal["user", "trunk", "anonymous"]
    name: str = ""


@dataclass(frozen=True)
class AuthOk:
    identity: Identity


@dataclass(frozen=True)
class AuthChallenge:
    """Answer the request with ``status`` (401 or 407) and these headers
    (``WWW-Authenticate`` / ``Proxy-Authenticate`` challenges)."""

    status: int = 407
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.status not in (401, 407):
            raise ValueError(f"status: must be 401 or 407, not {self.status!r}")


@dataclass(frozen=True)
class AuthReject:
    """Refuse without detail (403)."""

    status: int = 403
    headers: tuple[tuple[str, str], ...] = field(default=())


AuthResult = AuthOk | AuthChallenge | AuthReject


@runtime_checkable
class Authenticator(Protocol):
    """Whether a request (INVITE, REFER...) may be processed."""

    async def check(self, request: Request, source: Address) -> AuthResult:
        ...


@runtime_checkable
class CallHandler(Protocol):
    """A service that takes calls routed to it (queues: the ACD; IVR flows).

    ``handle`` runs in its own task, with the call not yet answered. It may
    answer, play prompts, read digits, record, put on hold, and connect the
    call to another device (:meth:`Call.connect`). When it returns, a call
    that is not connected to another party is hung up; if it raises, the call
    is hung up with cause ``handler_error`` (and a 500 if it was unanswered).
    A call ended by the caller cancels the handler's task.
    """

    async def handle(self, call: Call, target: RouteTarget) -> None:
        ...
