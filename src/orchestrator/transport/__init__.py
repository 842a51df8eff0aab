"""orchestrator.transport: the SIP stack's Trio side.

* :class:`UdpTransport`, :class:`StreamTransport` (TCP, and TLS with a
  :class:`TlsConfig`) - sockets, framing, connection reuse, keep-alive;
* :class:`TimerService` - every SIP timer in one heap, one task;
* :class:`SipEndpoint` - drives the sans-IO
  :class:`~orchestrator.sip.TransactionLayer` with received messages, time and
  timers; hands requests to a handler as :class:`IncomingRequest` and lets
  callers follow their requests' responses through :class:`ClientTransaction`;
* :class:`TokenBucket`, :class:`SourceRateLimiter` - overload protection.

Everything runs in nurseries: ``await nursery.start(endpoint.run)`` returns
once every transport is listening.
"""

from .endpoint import (
    DEFAULT_CONTENT_TYPES,
    ClientTransaction,
    EndpointConfig,
    EndpointStatistics,
    IncomingRequest,
    SipEndpoint,
    Transport,
    TransportUnavailable,
)
from .limits import LimiterStatistics, RateLimit, SourceRateLimiter, TokenBucket
from .stream import StreamStatistics, StreamTransport
from .timers import TimerService, TimerStatistics
from .tls import TlsConfig
from .udp import MAX_DATAGRAM, UdpStatistics, UdpTransport

__all__ = [
    "DEFAULT_CONTENT_TYPES", "ClientTransaction", "EndpointConfig", "EndpointStatistics", "IncomingRequest",
    "SipEndpoint", "Transport", "TransportUnavailable",
    "LimiterStatistics", "RateLimit", "SourceRateLimiter", "TokenBucket",
    "StreamStatistics", "StreamTransport", "TimerService", "TimerStatistics", "TlsConfig",
    "MAX_DATAGRAM", "UdpStatistics", "UdpTransport",
]
