"""The header section of a SIP message: ordered fields, canonical names.

RFC 3261 section 7.3: header names are case-insensitive, several have a
compact form (section 7.3.3, plus the registered ones of later RFCs), a
comma-separated list may be split over several lines or kept on one
(section 7.3.1), and the order of fields with the same name matters.

:class:`Headers` keeps every field in arrival order, with its name in
canonical spelling (compact forms expanded; unknown names kept as received)
and its value as received after unfolding. Typed, validated views of the
values live in :mod:`orchestrator.sip.fields` and are computed on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .errors import LocalProtocolError

__all__ = ["Headers", "canonical_name", "split_list", "COMPACT_FORMS", "LIST_HEADERS", "SINGLETON_HEADERS"]

# RFC 3261 7.3.3 and the IANA "Header Fields" registry's compact forms.
COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "n": "Identity-Info", "o": "Event", "r": "Refer-To",
    "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}

_KNOWN = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Content-Length", "Content-Transfer-Encoding", "Content-Type",
    "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity", "Identity-Info", "In-Reply-To",
    "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization", "P-Asserted-Identity",
    "P-Preferred-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To", "Referred-By", "Reject-Contact",
    "Replaces",
    "Reply-To", "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server", "Service-Route",
    "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject", "Subscription-State", "Supported", "Timestamp",
    "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]
_CANONICAL = {name.lower(): name for name in _KNOWN}

# Fields whose grammar is a comma-separated list (RFC 3261 7.3.1 allows such
# fields to be combined on one line or split over several). Authorization-type
# fields are *not* lists: their commas separate auth-params.
LIST_HEADERS = frozenset(n.lower() for n in [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events", "Call-Info",
    "Contact", "Content-Encoding", "Content-Language", "Error-Info", "In-Reply-To", "P-Asserted-Identity",
    "P-Preferred-Identity", "Path", "Proxy-Require", "Reason", "Record-Route", "Reject-Contact",
    "Accept-Contact", "Require", "Route", "Service-Route", "Supported", "Unsupported", "Via", "Warning",
])

# Fields that may appear at most once (RFC 3261 section 20 / 8.1.1).
SINGLETON_HEADERS = frozenset(n.lower() for n in [
    "Call-ID", "Content-Length", "Content-Type", "CSeq", "Expires", "From", "Max-Forwards", "To",
    "Min-Expires", "RSeq", "RAck",
])


def canonical_name(name: str) -> str:
    """Canonical spelling of a header name (compact forms expanded)."""
    lower = name.lower()
    if len(lower) == 1:
        expanded = COMPACT_FORMS.get(lower)
        if expanded:
            return expanded
    return _CANONICAL.get(lower, name)


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, honouring quoted-strings and ``<...>``.

    Elements are stripped; empty elements are kept (so that a validator can
    reject ``Via: ...;;,;,,`` instead of silently accepting it).
    """
    if "," not in value:
        return [value.strip()]
    parts = []
    start = 0
    in_quotes = in_angle = False
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == "," and not in_angle:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    parts.append(value[start:].strip())
    return parts


def _check_field(name: str, value: str) -> None:
    if not isinstance(name, str) or not isinstance(value, str):
        raise LocalProtocolError("header name and value must be str")
    from ._grammar import is_token

    if not is_token(name):
        raise LocalProtocolError(f"header name {name!r} is not a token")
    if "\r" in value or "\n" in value:
        raise LocalProtocolError(f"header {name} value contains CR or LF")


class Headers:
    """Ordered header fields; lookups are case-insensitive and know compact forms.

    Values are strings (octets that are not UTF-8 are kept as surrogate
    escapes, so they serialize back unchanged).
    """

    __slots__ = ("_fields", "version")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = []
        self.version = 0  # bumped on every change; lets messages cache typed views
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def _trusted(cls, fields: list[tuple[str, str]]) -> Headers:
        """Build from fields the parser already checked and canonicalised."""
        h = cls.__new__(cls)
        h._fields = fields
        h.version = 0
        return h

    # -- reading -----------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._fields == other._fields

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def get(self, name: str, default: str | None = None) -> str | None:
        """Value of the first field called ``name``."""
        key = canonical_name(name).lower()
        for n, v in self._fields:
            if n.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Values of every field line called ``name``, in order."""
        key = canonical_name(name).lower()
        return [v for n, v in self._fields if n.lower() == key]

    def values(self, name: str) -> list[str]:
        """Every list element of ``name`` across all its lines (split on commas for list fields)."""
        key = canonical_name(name).lower()
        lines = [v for n, v in self._fields if n.lower() == key]
        if key not in LIST_HEADERS:
            return lines
        out: list[str] = []
        for line in lines:
            out.extend(split_list(line))
        return out

    def count(self, name: str) -> int:
        return len(self.values(name))

    # -- writing -----------------------------------------------------------
    def add(self, name: str, value: str) -> None:
        """Append a field (after every existing one)."""
        _check_field(name, value)
        self._fields.append((canonical_name(name), value.strip()))
        self.version += 1

    def insert(self, index: int, name: str, value: str) -> None:
        _check_field(name, value)
        self._fields.insert(index, (canonical_name(name), value.strip()))
        self.version += 1

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before the first field of the same name (or at the top)."""
        key = canonical_name(name).lower()
        for i, (n, _) in enumerate(self._fields):
            if n.lower() == key:
                self.insert(i, name, value)
                return
        self.insert(0, name, value)

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` by one field, where the first one was."""
        _check_field(name, value)
        key = canonical_name(name).lower()
        fields = self._fields
        first = next((i for i, (n, _) in enumerate(fields) if n.lower() == key), None)
        self._fields = [(n, v) for n, v in fields if n.lower() != key]
        at = len(self._fields) if first is None else first
        self._fields.insert(at, (canonical_name(name), value.strip()))
        self.version += 1

    def remove(self, name: str) -> int:
        """Remove every field called ``name``; return how many were removed."""
        key = canonical_name(name).lower()
        before = len(self._fields)
        self._fields = [(n, v) for n, v in self._fields if n.lower() != key]
        if len(self._fields) != before:
            self.version += 1
        return before - len(self._fields)

    def replace_first_value(self, name: str, value: str) -> None:
        """Replace the first list element of ``name`` (e.g. the top Via), keeping the rest."""
        _check_field(name, value)
        key = canonical_name(name).lower()
        for i, (n, v) in enumerate(self._fields):
            if n.lower() == key:
                rest = split_list(v)[1:] if key in LIST_HEADERS else []
                self._fields[i] = (n, ", ".join([value.strip(), *rest]))
                self.version += 1
                return
        raise LocalProtocolError(f"no {name} header to replace")

    def pop_first_value(self, name: str) -> str | None:
        """Remove and return the first list element of ``name`` (e.g. strip the top Via)."""
        key = canonical_name(name).lower()
        for i, (n, v) in enumerate(self._fields):
            if n.lower() == key:
                parts = split_list(v) if key in LIST_HEADERS else [v]
                if len(parts) > 1:
                    self._fields[i] = (n, ", ".join(parts[1:]))
                else:
                    del self._fields[i]
                self.version += 1
                return parts[0]
        return None

    def copy(self) -> Headers:
        return Headers._trusted(list(self._fields))
