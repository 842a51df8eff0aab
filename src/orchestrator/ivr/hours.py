"""Business hours: a weekly schedule in a time zone, and a holiday calendar.

Opening ranges are wall-clock times in the schedule's IANA time zone
(``zoneinfo``), so a daylight-saving change moves the UTC instant at which the
office opens and nothing else: 08:00 in Europe/London is 08:00 UTC in winter
and 07:00 UTC in summer. A range whose end is not after its start runs past
midnight into the next day (``22:00-06:00``); ``24:00`` ends a range at
midnight. Holidays are dates in the same zone, either one day
(``2026-12-25``) or every year (``12-25``).

The caller passes ``now`` (an aware datetime or a POSIX timestamp): nothing
here reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["BusinessHours", "DAYS", "parse_schedule", "parse_holidays", "parse_timezone", "to_datetime"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_ANNUAL = re.compile(r"^(\d{2})-(\d{2})$")

Range = tuple[int, int]  # minutes since local midnight; end may be <= start (overnight)


def to_datetime(now: datetime | float | int, tz: Any = timezone.utc) -> datetime:
    """``now`` (aware datetime or POSIX seconds) as an aware datetime in ``tz``."""
    if isinstance(now, datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now: a datetime must be timezone-aware")
        return now.astimezone(tz)
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise ValueError(f"now: expected an aware datetime or POSIX seconds, not {type(now).__name__}")
    return datetime.fromtimestamp(now, tz)


def parse_timezone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError("must be an IANA time zone name such as 'Europe/London'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _days(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if "-" in part:
            first, last = part.split("-", 1)
            if first not in DAYS or last not in DAYS:
                raise ValueError(f"unknown day range {part!r} (days are {', '.join(DAYS)})")
            a, b = DAYS.index(first), DAYS.index(last)
            out.extend(DAYS.index(DAYS[(a + k) % 7]) for k in range(((b - a) % 7) + 1))
        elif part in DAYS:
            out.append(DAYS.index(part))
        else:
            raise ValueError(f"unknown day {part!r} (days are {', '.join(DAYS)})")
    return out


def _ranges(value: Any) -> list[Range]:
    if value is None or value == "closed":
        return []
    items = value if isinstance(value, list) else str(value).split(",") if isinstance(value, str) else None
    if items is None:
        raise ValueError("opening hours must be 'HH:MM-HH:MM' (several separated by commas) or 'closed'")
    out = []
    for item in items:
        m = _RANGE.match(item) if isinstance(item, str) else None
        if m is None:
            raise ValueError(f"bad opening hours {item!r}: expected 'HH:MM-HH:MM'")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
            raise ValueError(f"bad opening hours {item!r}: not a time of day")
        if start == end:
            raise ValueError(f"bad opening hours {item!r}: empty range")
        out.append((start, end % (24 * 60)))
    return out


def parse_schedule(spec: Any) -> tuple[tuple[Range, ...], ...]:
    """``{"mon-fri": "08:00-18:00", "sat": "09:00-12:00"}`` -> seven tuples of ranges.

    Raises ValueError naming the day key that is wrong.
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError("must map days ('mon-fri', 'sat', 'sun') to opening hours")
    week: list[list[Range] | None] = [None] * 7
    for key, value in spec.items():
        if not isinstance(key, str):
            raise ValueError(f"day key {key!r} must be a string such as 'mon-fri'")
        try:
            days = _days(key.lower())
            ranges = _ranges(value)
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
        for d in days:
            if week[d] is not None:
                raise ValueError(f"{key}: {DAYS[d]} is given twice")
            week[d] = ranges
    return tuple(tuple(r or ()) for r in week)


def parse_holidays(spec: Any) -> dict[date | tuple[int, int], str]:
    """A list of dates, ``{date: name}`` items, or ``{date: D, name: N}`` items."""
    if spec is None:
        return {}
    if not isinstance(spec, list):
        raise ValueError("must be a list of dates ('2026-12-25', or '12-25' for every year)")
    out: dict[date | tuple[int, int], str] = {}
    for item in spec:
        name = ""
        if isinstance(item, Mapping):
            if set(item) <= {"date", "name"} and "date" in item:
                when, name = item["date"], str(item.get("name") or "")
            elif len(item) == 1:
                when, name = next(iter(item.items()))
                name = str(name or "")
            else:
                raise ValueError(f"bad holiday {dict(item)!r}: use {{date: ..., name: ...}}")
        else:
            when = item
        out[_holiday_date(when)] = name
    return out


def _holiday_date(when: Any) -> date | tuple[int, int]:
    if isinstance(when, datetime):
        raise ValueError(f"holiday {when!r} must be a date, not a date and time")
    if isinstance(when, date):
        return when
    if isinstance(when, str):
        m = _ANNUAL.match(when)
        try:
            if m:
                month, day = int(m.group(1)), int(m.group(2))
                date(2000, month, day)  # 2000 is a leap year: 02-29 is allowed
                return (month, day)
            return date.fromisoformat(when)
        except ValueError:
            pass
    raise ValueError(f"bad holiday date {when!r}: expected YYYY-MM-DD or MM-DD")


@dataclass(frozen=True)
class BusinessHours:
    """When an office is open; :meth:`status` says ``open``, ``closed`` or ``holiday``."""

    zone: ZoneInfo
    week: tuple[tuple[Range, ...], ...]
    holidays: Mapping[date | tuple[int, int], str] = field(default_factory=dict)

    def holiday_name(self, now: datetime | float) -> str | None:
        """The holiday's name ('' when unnamed) if ``now`` falls on one, else None."""
        local = to_datetime(now, self.zone)
        day = local.date()
        if day in self.holidays:
            return self.holidays[day]
        return self.holidays.get((day.month, day.day))

    def is_open(self, now: datetime | float) -> bool:
        local = to_datetime(now, self.zone)
        minute = local.hour * 60 + local.minute
        today = local.weekday()
        for start, end in self.week[today]:
            if end > start:
                if start <= minute < end:
                    return True
            elif minute >= start:  # an overnight range that began today
                return True
        for start, end in self.week[(today - 1) % 7]:
            if end <= start and minute < end:  # yesterday's overnight range
                return True
        return False

    def status(self, now: datetime | float) -> str:
        if self.holiday_name(now) is not None:
            return "holiday"
        return "open" if self.is_open(now) else "closed"
