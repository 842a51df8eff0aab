"""orchestrator.sip: the sans-IO SIP core (RFC 3261 and friends).

No sockets, no clock, no threads: bytes and ``now`` go in, messages, events
and effects (``Send``, ``SetTimer``, ``CancelTimer``) come out. The Trio
drivers around it are thin. Modules:

* :mod:`~orchestrator.sip.message`, :mod:`~orchestrator.sip.headers`,
  :mod:`~orchestrator.sip.fields`, :mod:`~orchestrator.sip.uri` - the message
  model, header fields and their typed views, URIs (RFC 3261 7, 19, 20, 25);
* :mod:`~orchestrator.sip.framing` - datagram and stream framing (18.3);
* :mod:`~orchestrator.sip.multipart` - multipart bodies (RFC 2046);
* :mod:`~orchestrator.sip.validation` - what a UAS/proxy answers to a request
  it cannot process (8.2, 16.3; RFC 4475);
* :mod:`~orchestrator.sip.transaction` - the four transaction state machines
  (17, RFC 6026) and the :class:`TransactionLayer` that routes to them;
* :mod:`~orchestrator.sip.dialog` - dialogs and route sets (12);
* :mod:`~orchestrator.sip.sdp`, :mod:`~orchestrator.sip.offer_answer` - SDP
  (RFC 4566) and offer/answer for PCMU, PCMA, Opus, telephone-event (RFC 3264);
* :mod:`~orchestrator.sip.digest` - digest authentication (RFC 8760, 7616);
* :mod:`~orchestrator.sip.ids` - branch, tag and Call-ID generation from a
  caller-supplied random source.
"""

from .dialog import Dialog, DialogId, DialogState
from .digest import ALGORITHMS, DigestResult, DigestServer, authorization_for, compute_ha1, digest_response
from .errors import LocalProtocolError, SipError, SipFramingError, SipParseError
from .fields import (
    AuthHeader,
    CSeq,
    MediaType,
    NameAddr,
    Via,
    parse_auth_header,
    parse_cseq,
    parse_media_type,
    parse_name_addr,
    parse_via,
    unquote,
)
from .framing import NEED_DATA, KeepAlive, StreamReceiver, parse_datagram, parse_message
from .ids import MAGIC_COOKIE, new_branch, new_call_id, new_tag
from .headers import Headers, canonical_name, split_list
from .message import (
    REASON_PHRASES,
    SIP_VERSION,
    Message,
    Request,
    Response,
    make_ack,
    make_cancel,
    make_response,
)
from .multipart import BodyPart, build_multipart, parse_multipart
from .uri import AbsoluteUri, SipUri, Uri, parse_uri
from .offer_answer import (
    Codec,
    MediaPolicy,
    Negotiation,
    StreamResult,
    answer_direction,
    apply_answer,
    create_answer,
    create_offer,
)
from .sdp import Connection, Media, Origin, RtpMap, SdpParseError, SessionDescription, Timing
from .transaction import (
    Address,
    CancelTimer,
    LayerStatistics,
    MessageDiscarded,
    RequestReceived,
    ResponseReceived,
    Send,
    SetTimer,
    State,
    TimerConfig,
    TransactionKey,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailure,
    response_destination,
)
from .validation import (
    KNOWN_METHODS,
    Rejection,
    RequestPolicy,
    stateless_error_response,
    validate_request,
    validate_response,
)

__all__ = [
    "LocalProtocolError", "SipError", "SipFramingError", "SipParseError",
    "AuthHeader", "CSeq", "MediaType", "NameAddr", "Via",
    "parse_auth_header", "parse_cseq", "parse_media_type", "parse_name_addr", "parse_via", "unquote",
    "NEED_DATA", "KeepAlive", "StreamReceiver", "parse_datagram", "parse_message",
    "Headers", "canonical_name", "split_list",
    "REASON_PHRASES", "SIP_VERSION", "Message", "Request", "Response",
    "make_ack", "make_cancel", "make_response",
    "BodyPart", "build_multipart", "parse_multipart",
    "AbsoluteUri", "SipUri", "Uri", "parse_uri",
    "KNOWN_METHODS", "Rejection", "RequestPolicy", "stateless_error_response", "validate_request",
    "validate_response",
    "MAGIC_COOKIE", "new_branch", "new_call_id", "new_tag",
    "Address", "CancelTimer", "LayerStatistics", "MessageDiscarded", "RequestReceived", "ResponseReceived",
    "Send", "SetTimer", "State", "TimerConfig", "TransactionKey", "TransactionLayer", "TransactionTerminated",
    "TransactionTimeout", "TransportFailure", "response_destination",
    "Dialog", "DialogId", "DialogState",
    "ALGORITHMS", "DigestResult", "DigestServer", "authorization_for", "compute_ha1", "digest_response",
    "Codec", "MediaPolicy", "Negotiation", "StreamResult",
    "answer_direction", "apply_answer", "create_answer",
    "create_offer",
    "Connection", "Media", "Origin", "RtpMap", "SdpParseError", "SessionDescription", "Timing",
]
