"""DTMF carried in SIP INFO requests, as deployed equipment sends it.

Neither body format has an RFC of its own; both are de facto standards:

* ``application/dtmf-relay`` (Cisco and most PBXs)::

      Signal=5
      Duration=160

* ``application/dtmf``: the body is the digit (``5``), sometimes the RFC 4733
  event code (``10`` for ``*``, ``11`` for ``#``, RFC 4733 3.2 Table 3).

:func:`parse_info_dtmf` turns either into the same digit the media engine
reports for RFC 4733 events, so a digit is a digit whatever carried it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InfoDigit", "parse_info_dtmf", "DTMF_CONTENT_TYPES"]

DTMF_CONTENT_TYPES = frozenset({"application/dtmf-relay", "application/dtmf"})
_EVENT_CODES = {str(i): str(i) for i in range(10)} | {"10": "*", "11": "#", "12": "A", "13": "B",
                                                        "14": "C", "15": "D"}
_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class InfoDigit:
    digit: str
    duration_ms: int | None


def _digit(text: str) -> str | None:
    value = text.strip().upper()
    if value in _DIGITS:
        return value
    return _EVENT_CODES.get(value.lstrip("0") or "0")


def parse_info_dtmf(content_type: str, body: bytes) -> InfoDigit | None:
    """The digit in an INFO body, or None if the body holds no valid digit."""
    mime = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return None
    if mime == "application/dtmf":
        digit = _digit(text)
        return InfoDigit(digit, None) if digit else None
    if mime != "application/dtmf-relay":
        return None
    fields: dict[str, str] = {}
    for line in text.replace("\r", "\n").split("\n"):
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    signal = fields.get("signal")
    digit = _digit(signal) if signal else None
    if digit is None:
        return None
    duration = fields.get("duration", "")
    ms = int(duration) if duration.isdigit() and len(duration) <= 6 else None
    return InfoDigit(digit, ms)
