"""Structured logs: one JSON object a line on stderr.

Each line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``,
``logger``, ``message``, the context fields the caller gave with
``extra={...}`` (``call``, ``agent``, ``queue``, ``device``...), and
``exception`` (the formatted traceback) when there is one::

    {"time": "2026-11-22T09:14:03.512Z", "level": "info", "logger": "hotline.daemon",
     "message": "call ended", "call": "hotline-1-kx2f9a-17", "queue": "support", "agent": "9002"}

Every logger of the project is under ``hotline.`` (``hotline.calls``,
``hotline.acd``, ``hotline.recording``...); :func:`setup_logging` points the
root logger at one JSON handler with the configured level, so third-party
libraries' warnings come out the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

__all__ = ["JsonFormatter", "setup_logging", "LEVELS"]

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# attributes every LogRecord has: anything else came from ``extra=`` and is context
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime",
                                                                                              "taskName"}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """A LogRecord as one JSON line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = _jsonable(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, separators=(", ", ": "))


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr) as JSON lines.

    Replaces handlers the root logger had (so a second call changes the level
    instead of doubling the lines); returns the handler.
    """
    if level not in LEVELS:
        raise ValueError(f"level: must be one of {', '.join(LEVELS)}, got {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    return handler
