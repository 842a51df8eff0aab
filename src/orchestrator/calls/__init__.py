"""orchestrator.calls: the B2BUA.

A :class:`CallManager` takes requests from a
:class:`~orchestrator.transport.SipEndpoint` and runs :class:`Call` objects:
each owns :class:`SipLeg` objects (a dialog and an engine leg each), bridged
in the media engine. Routing is pluggable (:class:`Router`, default
:class:`DialPlan`); so are the registrar's :class:`Locator` and
:class:`Authenticator` (in-memory versions in :mod:`orchestrator.calls.memory`)
and the :class:`CallHandler` services for queues and IVR flows. Call events
go to an :class:`EventSink`.
"""

from .call import Call, ConnectResult, Digit, Playback, cause_for_status
from .dtmf import InfoDigit, parse_info_dtmf
from .events import (
    CALL_EVENT_NAMES,
    CallbackSink,
    CallEvent,
    CallRecord,
    ChannelSink,
    EventSink,
    LegRecord,
    NullSink,
)
from .interfaces import (
    AuthChallenge,
    Authenticator,
    AuthOk,
    AuthReject,
    AuthResult,
    CallHandler,
    Contact,
    Identity,
    Locator,
)
from .leg import Destination, LegState, SipLeg
from .manager import CallManager, CallManagerConfig, CallManagerStatistics, CapacityError
from .media import MediaSession, NoAcceptableMedia
from .memory import InMemoryLocator, OpenAuthenticator, StaticAuthenticator
from .registrar import RegistrarAuthenticator, RegistrarLocator
from .routing import (
    DialPlan,
    Prefix,
    Reject,
    Router,
    RouteRequest,
    RouteTarget,
    ToExtension,
    ToIvr,
    ToQueue,
    ToTrunk,
    ToUri,
    Trunk,
    describe,
)

__all__ = [
    "Call", "ConnectResult", "Digit", "Playback", "cause_for_status",
    "InfoDigit", "parse_info_dtmf",
    "CALL_EVENT_NAMES", "CallbackSink", "CallEvent", "CallRecord", "ChannelSink", "EventSink", "LegRecord",
    "NullSink",
    "AuthChallenge", "AuthOk", "AuthReject", "AuthResult", "Authenticator", "CallHandler", "Contact",
    "Identity", "Locator",
    "Destination", "LegState", "SipLeg",
    "CallManager", "CallManagerConfig", "CallManagerStatistics", "CapacityError",
    "MediaSession", "NoAcceptableMedia",
    "InMemoryLocator", "OpenAuthenticator", "StaticAuthenticator",
    "RegistrarAuthenticator", "RegistrarLocator",
    "DialPlan", "Prefix", "Reject", "RouteRequest", "Router", "RouteTarget", "ToExtension", "ToIvr",
    "ToQueue", "ToTrunk", "ToUri", "Trunk", "describe",
]
