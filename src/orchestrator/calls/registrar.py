"""Adapters from :mod:`orchestrator.registrar` to the B2BUA's interfaces.

The registrar's services are pure and synchronous with POSIX time passed in
(``lookup(aor)`` on its Trio service, ``check(request, source, now)`` on its
Authenticator); the B2BUA asks through the small async protocols of
:mod:`orchestrator.calls.interfaces`. These two classes join them::

    manager = CallManager(endpoint, engine, router=plan,
                          locator=RegistrarLocator(registrar_service),
                          authenticator=RegistrarAuthenticator(authenticator),
                          ...)
    endpoint.handler = registrar_service.handler(manager.handle)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.sip import Address, Request, SipUri

from .interfaces import AuthChallenge, AuthOk, AuthReject, AuthResult, Contact, Identity

__all__ = ["RegistrarLocator", "RegistrarAuthenticator"]

_CHALLENGE_HEADERS = ("WWW-Authenticate", "Proxy-Authenticate")


class RegistrarLocator:
    """A :class:`~orchestrator.calls.interfaces.Locator` over the registrar's
    ``lookup(aor) -> [Binding]`` (a RegistrarService, or anything with that method).

    A binding registered over TCP or TLS is reached through the connection it
    registered on (its source address is the flow, RFC 5626); over UDP, at
    its Contact URI.
    """

    def __init__(self, service: Any) -> None:
        if not callable(getattr(service, "lookup", None)):
            raise ValueError("service: must have a lookup(aor) method")
        self.service = service

    async def lookup(self, aor: str) -> Sequence[Contact]:
        out = []
        for binding in self.service.lookup(aor):
            uri = binding.uri
            if not isinstance(uri, SipUri):
                continue
            source = binding.source
            out.append(Contact(aor=binding.aor, uri=uri,
                               flow=source if source is not None and source.reliable else None,
                               q=1.0 if binding.q is None else binding.q, user_agent=binding.user_agent))
        return out


class RegistrarAuthenticator:
    """An :class:`~orchestrator.calls.interfaces.Authenticator` over the registrar's
    ``check(request, source, now) -> AuthDecision`` (``clock`` gives ``now``)."""

    def __init__(self, authenticator: Any, *, clock: Callable[[], float] = time.time) -> None:
        if not callable(getattr(authenticator, "check", None)):
            raise ValueError("authenticator: must have a check(request, source, now) method")
        self.authenticator = authenticator
        self.clock = clock

    async def check(self, request: Request, source: Address) -> AuthResult:
        decision = self.authenticator.check(request, source, self.clock())
        if decision.response is None:
            identity = decision.identity
            if identity is None:
                return AuthOk(Identity("anonymous"))
            return AuthOk(Identity(identity.kind, identity.name))
        response = decision.response
        headers = tuple((n, v) for n, v in response.headers if n in _CHALLENGE_HEADERS)
        if response.status_code in (401, 407):
            return AuthChallenge(response.status_code, headers)
        return AuthReject(response.status_code)
