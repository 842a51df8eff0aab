"""Lexical building blocks of the RFC 3261 grammar (section 25.1).

Header values reach these helpers already unfolded: every ``CRLF 1*WSP`` fold
has become one space, so ``LWS`` is simply a run of SP / HTAB here. The
:class:`Scanner` walks a header value and raises :class:`SipParseError` (never
anything else) on input that does not match the grammar.
"""

from __future__ import annotations

import re

from .errors import SipParseError

# RFC 3261 25.1 character sets.
ALPHANUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
MARK = "-_.!~*'()"
UNRESERVED = ALPHANUM + MARK
TOKEN_CHARS = frozenset(ALPHANUM + "-.!%*_+`'~")
# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#           "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
WORD_CHARS = frozenset(ALPHANUM + "-.!%*_+`'~()<>:\\\"/[]?{}")
USER_SAFE = frozenset(UNRESERVED + "&=+$,;?/")
PASSWORD_SAFE = frozenset(UNRESERVED + "&=+$,")
PARAM_SAFE = frozenset(UNRESERVED + "[]/:&+$")
HEADER_SAFE = frozenset(UNRESERVED + "[]/?:+$")

TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
WS = " \t"
# quoted-string: qdtext (no CTLs but HTAB, no '"' or '\\') or quoted-pair (any octet but CR, LF).
_QUOTED_RE = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\r\n])*)"')
_QUOTED_PAIR_RE = re.compile(r"\\([^\r\n])")
_HEX = frozenset("0123456789abcdefABCDEF")


def is_token(text: str) -> bool:
    return bool(text) and TOKEN_RE.fullmatch(text) is not None


def unescape(text: str, what: str) -> str:
    """Decode ``%HH`` escapes (RFC 3261 ``escaped``); the octets are UTF-8.

    Octets that are not valid UTF-8 are kept as surrogate escapes, so that
    :func:`escape` gives the same octets back.
    """
    if "%" not in text:
        return text
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            hx = text[i + 1:i + 3]
            if len(hx) != 2 or hx[0] not in _HEX or hx[1] not in _HEX:
                raise SipParseError(f"bad %-escape in {what}")
            out.append(int(hx, 16))
            i += 3
        else:
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
    return out.decode("utf-8", "surrogateescape")


def escape(text: str, safe: frozenset[str]) -> str:
    """Escape every character outside ``safe`` as ``%HH`` of its UTF-8 octets."""
    if all(c in safe for c in text):
        return text
    parts = []
    for c in text:
        if c in safe:
            parts.append(c)
        else:
            parts.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
    return "".join(parts)


_ESCAPED_PATTERNS: dict[frozenset[str], re.Pattern[str]] = {}


def _escaped_pattern(safe: frozenset[str]) -> re.Pattern[str]:
    pattern = _ESCAPED_PATTERNS.get(safe)
    if pattern is None:
        chars = "".join(re.escape(c) for c in sorted(safe))
        pattern = _ESCAPED_PATTERNS[safe] = re.compile(f"(?:[{chars}]|%[0-9A-Fa-f]{{2}})*")
    return pattern


def check_escaped(text: str, safe: frozenset[str], what: str, *, allow_empty: bool = False) -> None:
    """Check that ``text`` is ``*(safe / escaped)``."""
    if not text and not allow_empty:
        raise SipParseError(f"empty {what}")
    if _escaped_pattern(safe).fullmatch(text):
        return
    i, n = 0, len(text)  # slow path: say what is wrong
    while i < n:
        c = text[i]
        if c == "%":
            if i + 2 >= n or text[i + 1] not in _HEX or text[i + 2] not in _HEX:
                raise SipParseError(f"bad %-escape in {what}")
            i += 3
        elif c in safe:
            i += 1
        else:
            raise SipParseError(f"invalid character {c!r} in {what}")
    raise SipParseError(f"invalid {what}")  # pragma: no cover - the loop always finds the fault


_NEEDS_QUOTED_PAIR = re.compile(r'["\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def quote(text: str) -> str:
    """Render ``text`` as a quoted-string: ``"``, ``\\`` and control characters
    become quoted-pairs (RFC 3261 25.1); CR and LF cannot be represented."""
    if "\r" in text or "\n" in text:
        raise SipParseError("CR or LF cannot appear in a quoted-string")
    return '"' + _NEEDS_QUOTED_PAIR.sub(lambda m: "\\" + m.group(), text) + '"'


class Scanner:
    """A cursor over one (unfolded) header value."""

    __slots__ = ("text", "pos", "what")

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what

    def error(self, message: str) -> SipParseError:
        return SipParseError(f"{self.what}: {message} at offset {self.pos}")

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> bool:
        start = self.pos
        text, n = self.text, len(self.text)
        while self.pos < n and text[self.pos] in WS:
            self.pos += 1
        return self.pos > start

    def accept(self, ch: str) -> bool:
        """``SWS ch SWS``: consume ``ch`` with the whitespace around it, if it is next."""
        save = self.pos
        self.skip_ws()
        if self.peek() == ch:
            self.pos += 1
            self.skip_ws()
            return True
        self.pos = save
        return False

    def expect(self, ch: str) -> None:
        if not self.accept(ch):
            raise self.error(f"expected {ch!r}")

    def token(self) -> str:
        m = TOKEN_RE.match(self.text, self.pos)
        if not m:
            raise self.error("expected a token")
        self.pos = m.end()
        return m.group()

    def take_until(self, stops: str) -> str:
        start = self.pos
        text, n = self.text, len(self.text)
        while self.pos < n and text[self.pos] not in stops:
            self.pos += 1
        return text[start:self.pos]

    def quoted_string(self) -> str:
        """Read a quoted-string (cursor on the opening quote); return it unescaped."""
        if self.peek() != '"':
            raise self.error("expected a quoted-string")
        m = _QUOTED_RE.match(self.text, self.pos)
        if not m:
            raise self.error("unterminated or invalid quoted-string")
        self.pos = m.end()
        content = m.group(1)
        return _QUOTED_PAIR_RE.sub(r"\1", content) if "\\" in content else content

    def raw_quoted_string(self) -> str:
        """Like :meth:`quoted_string` but return the text with its quotes and escapes."""
        start = self.pos
        self.quoted_string()
        return self.text[start:self.pos]
