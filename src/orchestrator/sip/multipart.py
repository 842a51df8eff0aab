"""Multipart bodies (RFC 2046 section 5.1, as SIP uses them: RFC 3261 7.4,
RFC 5621). Parts are framed by the boundary only, so binary parts holding NUL
octets or CRLFs (RFC 4475 3.1.1.11) come back byte-exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import LocalProtocolError, SipParseError
from .fields import MediaType, parse_media_type, unquote
from .headers import Headers
from .message import _parse_fields

__all__ = ["BodyPart", "parse_multipart", "build_multipart"]

_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


@dataclass(frozen=True)
class BodyPart:
    """One part: its header fields (Content-Type...) and its octets."""

    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def content_type(self) -> MediaType | None:
        for name, value in self.headers:
            if name == "Content-Type":
                return parse_media_type(value)
        return None


def boundary_of(content_type: MediaType) -> str:
    value = unquote(content_type.param("boundary"))
    if not value or not _BOUNDARY_RE.fullmatch(value):
        raise SipParseError("multipart Content-Type without a valid boundary parameter")
    return value


def parse_multipart(body: bytes, content_type: MediaType) -> list[BodyPart]:
    """Split a ``multipart/*`` body into its parts (RFC 2046 5.1.1)."""
    if content_type.type.lower() != "multipart":
        raise SipParseError(f"not a multipart type: {content_type.mime}")
    delimiter = b"--" + boundary_of(content_type).encode("ascii")
    # The first delimiter may start the body; every other one follows a CRLF.
    if body.startswith(delimiter):
        pos = 0
    else:
        pos = body.find(b"\r\n" + delimiter)
        if pos < 0:
            raise SipParseError("multipart body without its boundary")
        pos += 2
    parts = []
    while True:
        after = pos + len(delimiter)
        if body[after:after + 2] == b"--":
            return parts
        eol = body.find(b"\r\n", after)
        if eol < 0 or body[after:eol].strip(b" \t"):
            raise SipParseError("garbage after a multipart delimiter")
        nxt = body.find(b"\r\n" + delimiter, eol)
        if nxt < 0:
            raise SipParseError("multipart body without its closing delimiter")
        parts.append(_parse_part(body[eol + 2:nxt]))
        pos = nxt + 2


def _parse_part(raw: bytes) -> BodyPart:
    if raw.startswith(b"\r\n"):
        return BodyPart((), raw[2:])
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("multipart part without an empty line after its headers")
    head = raw[:end].decode("utf-8", "surrogateescape")
    fields = _parse_fields(["", *head.split("\r\n")])
    return BodyPart(tuple(fields), raw[end + 4:])


def build_multipart(parts: list[BodyPart], boundary: str) -> bytes:
    """Serialize parts with ``boundary`` (which must not occur inside any part)."""
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise LocalProtocolError(f"boundary: {boundary!r} is not a valid RFC 2046 boundary")
    delimiter = b"--" + boundary.encode("ascii")
    out = bytearray()
    for part in parts:
        if delimiter in part.body:
            raise LocalProtocolError("boundary: occurs inside a part's body")
        out += delimiter + b"\r\n"
        for name, value in Headers(part.headers):
            out += f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")
        out += b"\r\n" + part.body + b"\r\n"
    out += delimiter + b"--\r\n"
    return bytes(out)

