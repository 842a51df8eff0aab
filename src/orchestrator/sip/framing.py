"""Message framing for datagram and stream transports (RFC 3261 sections 7.5,
18.3 and 20.14; keep-alives of RFC 5626 section 3.5.1).

* Datagram (UDP): one message per datagram. Content-Length may be absent, then
  the body is the rest of the datagram; if present it must not exceed what the
  datagram holds (else 400), and octets beyond it are discarded (RFC 4475
  3.1.1.8).
* Stream (TCP/TLS): :class:`StreamReceiver` takes bytes as they arrive and
  yields whole messages by Content-Length, which is mandatory there. CRLFs
  before a start line are skipped; a double CRLF is reported as a keep-alive
  ping (the driver answers it with a single CRLF pong). A framing error is
  final: the connection must be closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SipFramingError, SipParseError
from .message import Request, Response, parse_head

__all__ = ["parse_datagram", "parse_message", "StreamReceiver", "KeepAlive", "NEED_DATA",
           "DEFAULT_MAX_MESSAGE_SIZE"]

DEFAULT_MAX_MESSAGE_SIZE = 65535
_HEAD_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class KeepAlive:
    """A CRLFCRLF ping received on a stream (RFC 5626 3.5.1): answer with CRLF."""


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


def _content_length(msg: Request | Response) -> int | None:
    """The one Content-Length of ``msg``; several or a bad value are a framing error."""
    values = msg.headers.get_all("Content-Length")
    if not values:
        return None
    if len(values) > 1 and len(set(values)) > 1:
        raise SipFramingError("conflicting Content-Length headers (RFC 4475 3.3.9)")
    text = values[0]
    if not text.isdigit() or not text.isascii():
        raise SipFramingError(f"Content-Length is not a number: {text[:20]!r}")
    if len(text.lstrip("0")) > 10:
        raise SipFramingError("Content-Length out of range")
    return int(text)


def _split_head(data: bytes) -> tuple[bytes, int] | None:
    m = _HEAD_END.search(data)
    if not m:
        return None
    return data[:m.start()], m.end()


def _response_hint(data: bytes, exc: SipParseError) -> SipParseError:
    if data[:4].upper() == b"SIP/":
        exc.status_hint = None
    return exc


def parse_datagram(data: bytes) -> Request | Response:
    """Parse the one message in a datagram (RFC 3261 18.3); trailing octets are ignored.

    Raises :class:`SipParseError` only (``status_hint`` 400 for a bad request,
    ``None`` for a bad response, which must be dropped).
    """
    data = bytes(data).lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty datagram", status_hint=None)
    split = _split_head(data)
    if split is None:
        raise _response_hint(data, SipParseError("no empty line ends the header section"))
    head, body_start = split
    msg = parse_head(head)
    try:
        length = _content_length(msg)
    except SipParseError as exc:
        raise _response_hint(data, SipParseError(exc.reason)) from None
    available = len(data) - body_start
    if length is None:
        msg.body = data[body_start:]
    elif length > available:
        raise _response_hint(data, SipParseError(
            f"Content-Length {length} exceeds the {available} octets in the datagram (RFC 4475 3.1.2.2)"))
    else:
        msg.body = data[body_start:body_start + length]
    return msg


def parse_message(data: bytes) -> Request | Response:
    """Parse bytes holding exactly one message (as :meth:`Message.serialize` makes).

    A Content-Length must match the octets after the header section exactly.
    """
    data = bytes(data)
    split = _split_head(data)
    if split is None:
        raise _response_hint(data, SipParseError("no empty line ends the header section"))
    head, body_start = split
    msg = parse_head(head)
    length = _content_length(msg)
    body = data[body_start:]
    if length is not None and length != len(body):
        raise _response_hint(data, SipParseError(
            f"Content-Length {length} does not match the {len(body)} octets of body"))
    msg.body = body
    return msg


class StreamReceiver:
    """Frames SIP messages out of a byte stream (TCP, TLS), h11 style.

    Feed bytes with :meth:`receive_data` (``b""`` means the peer closed), then
    call :meth:`next_event` until it returns :data:`NEED_DATA`. Events are a
    :class:`Request`, a :class:`Response` or :class:`KeepAlive`. Any framing
    problem raises :class:`SipFramingError`, and every later call raises it
    again: the stream cannot be resynchronised (RFC 3261 18.3).
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if not isinstance(max_message_size, int) or max_message_size < 64:
            raise ValueError("max_message_size: must be an int >= 64")
        self.max_message_size = max_message_size
        self._buffer = bytearray()
        self._scan_from = 0
        self._error: SipFramingError | None = None
        self._closed = False
        self._pending_head: tuple[Request | Response, int, int] | None = None

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not yet framed, and whether the peer closed the stream."""
        return bytes(self._buffer), self._closed

    def receive_data(self, data: bytes) -> None:
        if self._closed and data:
            raise ValueError("data: received after the end of the stream")
        if not data:
            self._closed = True
            return
        self._buffer += data

    def _fail(self, reason: str) -> SipFramingError:
        self._error = SipFramingError(reason)
        return self._error

    def next_event(self) -> Request | Response | KeepAlive | _NeedData:
        if self._error is not None:
            raise self._error
        buf = self._buffer
        if self._pending_head is None:
            # Skip CRLFs before a start line; a CRLFCRLF is a keep-alive ping.
            while buf[:1] in (b"\r", b"\n"):
                if buf[:4] == b"\r\n\r\n":
                    del buf[:4]
                    self._scan_from = 0
                    return KeepAlive()
                if len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                    return self._need_more()  # cannot tell a ping from a pong yet
                del buf[:2 if buf[:2] == b"\r\n" else 1]
                self._scan_from = 0
            m = _HEAD_END.search(buf, max(0, self._scan_from - 3))
            if not m:
                self._scan_from = len(buf)
                if len(buf) > self.max_message_size:
                    raise self._fail("header section larger than max_message_size")
                return self._need_more()
            head = bytes(buf[:m.start()])
            try:
                msg = parse_head(head)
                length = _content_length(msg)
            except SipParseError as exc:
                raise self._fail(exc.reason) from None
            if length is None:
                raise self._fail("Content-Length is mandatory on a stream transport (RFC 3261 18.3)")
            if m.end() + length > self.max_message_size:
                raise self._fail("message larger than max_message_size")
            self._pending_head = (msg, m.end(), length)
        msg, body_start, length = self._pending_head
        if len(buf) < body_start + length:
            return self._need_more()
        msg.body = bytes(buf[body_start:body_start + length])
        del buf[:body_start + length]
        self._pending_head = None
        self._scan_from = 0
        return msg

    def _need_more(self) -> _NeedData:
        if self._closed and self._buffer.strip(b"\r\n"):
            raise self._fail("stream closed in the middle of a message")
        return NEED_DATA

    def messages(self) -> list[Request | Response | KeepAlive]:
        """Every event available now (convenience around :meth:`next_event`)."""
        out = []
        while True:
            event = self.next_event()
            if event is NEED_DATA:
                return out
            out.append(event)  # type: ignore[arg-type]
