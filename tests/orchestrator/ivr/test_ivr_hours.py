"""Business hours: weekly schedules in a time zone, holidays, DST change days."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from orchestrator.ivr.hours import BusinessHours, parse_holidays, parse_schedule, parse_timezone

from ivr_testkit import utc

LONDON = parse_timezone("Europe/London")
NEW_YORK = parse_timezone("America/New_York")


def office(zone=LONDON, schedule=None, holidays=None) -> BusinessHours:
    return BusinessHours(
        zone,
        parse_schedule(schedule or {"mon-fri": "08:00-18:00", "sat": "09:00-12:30"}),
        parse_holidays(holidays),
    )


def test_weekday_ranges():
    h = office()
    # 2026-01-13 is a Tuesday; London is on GMT (UTC+0) in January.
    assert h.status(utc(2026, 1, 13, 7, 59)) == "closed"
    assert h.status(utc(2026, 1, 13, 8, 0)) == "open"  # start inclusive
    assert h.status(utc(2026, 1, 13, 17, 59)) == "open"
    assert h.status(utc(2026, 1, 13, 18, 0)) == "closed"  # end exclusive
    assert h.status(utc(2026, 1, 17, 12, 29)) == "open"  # Saturday
    assert h.status(utc(2026, 1, 17, 12, 30)) == "closed"
    assert h.status(utc(2026, 1, 18, 10, 0)) == "closed"  # Sunday: not in the schedule


def test_epoch_and_aware_datetimes_agree():
    h = office()
    when = utc(2026, 1, 13, 9, 0)
    assert h.status(when) == h.status(when.timestamp()) == h.status(when.astimezone(NEW_YORK)) == "open"


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        office().status(datetime(2026, 1, 13, 9, 0))
    with pytest.raises(ValueError, match="POSIX seconds"):
        office().status("09:00")


def test_spring_forward_day_london():
    """2026-03-29: clocks go from 01:00 GMT to 02:00 BST. Opening at 08:00 local is 07:00 UTC."""
    h = office(schedule={"mon-sun": "08:00-18:00"})
    assert h.status(utc(2026, 3, 28, 7, 30)) == "closed"  # Saturday, GMT: 07:30 local
    assert h.status(utc(2026, 3, 29, 7, 30)) == "open"  # Sunday, BST: 08:30 local
    assert h.status(utc(2026, 3, 29, 6, 59)) == "closed"
    assert h.status(utc(2026, 3, 29, 16, 59)) == "open"  # 17:59 BST
    assert h.status(utc(2026, 3, 29, 17, 0)) == "closed"  # 18:00 BST


def test_fall_back_day_new_york():
    """2026-11-01: 02:00 EDT becomes 01:00 EST; 01:00-02:00 local happens twice."""
    h = office(NEW_YORK, {"sun": "01:00-01:30, 09:00-17:00"})
    assert h.status(utc(2026, 11, 1, 5, 15)) == "open"  # 01:15 EDT (first pass)
    assert h.status(utc(2026, 11, 1, 6, 15)) == "open"  # 01:15 EST (second pass)
    assert h.status(utc(2026, 11, 1, 5, 45)) == "closed"  # 01:45 EDT
    assert h.status(utc(2026, 11, 1, 13, 59)) == "closed"  # 08:59 EST
    assert h.status(utc(2026, 11, 1, 14, 0)) == "open"  # 09:00 EST
    assert h.status(utc(2026, 11, 1, 21, 59)) == "open"  # 16:59 EST
    assert h.status(utc(2026, 11, 1, 22, 0)) == "closed"  # 17:00 EST (it would be 18:00 EDT)


def test_overnight_and_midnight_ranges():
    h = office(schedule={"fri": "22:00-06:00", "sat": "18:00-24:00"})
    # 2026-01-16 is a Friday (London = UTC in January).
    assert h.status(utc(2026, 1, 16, 21, 59)) == "closed"
    assert h.status(utc(2026, 1, 16, 23, 0)) == "open"
    assert h.status(utc(2026, 1, 17, 5, 59)) == "open"  # Saturday morning, Friday's range
    assert h.status(utc(2026, 1, 17, 6, 0)) == "closed"
    assert h.status(utc(2026, 1, 17, 23, 59)) == "open"
    assert h.status(utc(2026, 1, 18, 0, 0)) == "closed"  # 24:00 ends at midnight


def test_holidays_dated_annual_and_named():
    h = office(
        holidays=[
            "2026-04-03",
            {"12-25": "Christmas Day"},
            {"date": date(2026, 5, 4), "name": "May Day"},
            date(2026, 8, 31),
        ]
    )
    assert h.status(utc(2026, 4, 3, 10)) == "holiday"
    assert h.holiday_name(utc(2026, 4, 3, 10)) == ""
    assert h.status(utc(2027, 4, 3, 10)) == "open"  # Saturday 11:00 BST: the date is a holiday in 2026 only
    assert h.holiday_name(utc(2030, 12, 25, 10)) == "Christmas Day"
    assert h.holiday_name(utc(2026, 5, 4, 10)) == "May Day"
    assert h.status(utc(2026, 8, 31, 10)) == "holiday"
    assert h.holiday_name(utc(2026, 8, 30, 22, 30)) is None  # 23:30 BST on the 30th
    assert h.holiday_name(utc(2026, 8, 30, 23, 30)) == ""  # 00:30 BST on the 31st: local date counts


def test_holiday_date_is_local_not_utc():
    h = office(NEW_YORK, {"mon-sun": "00:00-24:00"}, ["2026-07-04"])
    # 2026-07-05 02:00 UTC is still 4 July (22:00 EDT) in New York.
    assert h.status(utc(2026, 7, 5, 2, 0)) == "holiday"
    assert h.status(utc(2026, 7, 5, 4, 0)) == "open"


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "must map days"),
        ({"mon-fri": "8-18"}, "mon-fri: bad opening hours '8-18': expected 'HH:MM-HH:MM'"),
        ({"mon-fri": "08:00-25:00"}, "mon-fri: bad opening hours '08:00-25:00': not a time of day"),
        ({"mon-fri": "08:00-08:00"}, "mon-fri: bad opening hours '08:00-08:00': empty range"),
        ({"funday": "08:00-18:00"}, "funday: unknown day 'funday'"),
        ({"mon-fri": "08:00-18:00", "fri": "closed"}, "fri: fri is given twice"),
        ({"mon": 480}, "mon: opening hours must be"),
    ],
)
def test_bad_schedules(spec, message):
    with pytest.raises(ValueError) as info:
        parse_schedule(spec)
    assert str(info.value).startswith(message)


def test_day_ranges_wrap_and_closed_days():
    week = parse_schedule({"fri-mon": "10:00-11:00", "tue": "closed"})
    assert [bool(d) for d in week] == [True, False, False, False, True, True, True]


@pytest.mark.parametrize(
    "spec",
    [
        ["2026-02-30"],
        ["13-01"],
        [datetime(2026, 1, 1, tzinfo=timezone.utc)],
        "2026-01-01",
        [{"day": "2026-01-01"}],
    ],
)
def test_bad_holidays(spec):
    with pytest.raises(ValueError):
        parse_holidays(spec)


def test_unknown_time_zone():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_timezone("Mars/Olympus")


def test_every_hour_of_a_dst_week_agrees_with_a_wall_clock_model():
    """Model: convert to local time with zoneinfo and compare minutes by hand."""
    h = office(schedule={"mon-fri": "08:00-18:00", "sat": "09:00-12:30"})
    start = utc(2026, 3, 25)
    for k in range(0, 7 * 24 * 4):
        when = start + timedelta(minutes=15 * k)
        local = when.astimezone(LONDON)
        minute = local.hour * 60 + local.minute
        expected = (local.weekday() < 5 and 480 <= minute < 1080) or (
            local.weekday() == 5 and 540 <= minute < 750
        )
        assert h.is_open(when) == expected, local
