"""Errors of the sans-IO SIP core, named by whose fault they are (as h11 does).

* :class:`SipParseError` - the *remote* sent bytes we cannot accept. It carries
  ``status_hint``: the response a server should send (400 by default, 505 for
  an unsupported version...), or ``None`` when the message must be dropped
  silently (a malformed response is never answered, RFC 3261 section 18.1.2).
* :class:`SipFramingError` - a parse error that also breaks the framing of a
  stream transport (bad or missing Content-Length on TCP): the connection
  cannot be resynchronised and must be closed (RFC 3261 section 18.3).
* :class:`LocalProtocolError` - *we* tried to do something the protocol does
  not allow (send a final response twice, build a header containing CRLF...).
  It is a ``ValueError`` so callers that validate arguments can catch it.
"""

from __future__ import annotations

__all__ = ["SipError", "SipParseError", "SipFramingError", "LocalProtocolError"]


class SipError(Exception):
    """Base class of every error raised by ``orchestrator.sip``."""


class SipParseError(SipError):
    """The remote peer sent something that is not valid SIP (or SDP).

    ``status_hint`` is the status code a server should answer with, or
    ``None`` when the message should be dropped without a response.
    """

    def __init__(self, reason: str, *, status_hint: int | None = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, status_hint={self.status_hint!r})"


class SipFramingError(SipParseError):
    """A stream can no longer be framed: the connection must be closed."""


class LocalProtocolError(SipError, ValueError):
    """The local application misused the API or asked for something SIP forbids."""
