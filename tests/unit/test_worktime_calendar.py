"""Working-time deadlines: office hours, lunch breaks, weekends, holidays, make-up days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.worktime.calendar import WorkCalendar, dates, parse_duration

SH = ZoneInfo("Asia/Shanghai")
# 2026-10-01 (Thu) .. 10-07 a holiday week; Sunday 2026-09-27 a make-up workday. These dates
# are test data, not the real schedule (the State Council publishes that each year).
HOLIDAYS = dates(f"2026-10-0{d}" for d in range(1, 8))
MAKEUP = dates(["2026-09-27"])
CAL = WorkCalendar(holidays=HOLIDAYS, workdays=MAKEUP)


def at(day: str, hhmm: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), SH)


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        (("2026-11-23", "09:00"), "1h", ("2026-11-23", "10:00")),  # Monday morning
        (("2026-11-23", "11:30"), "1h", ("2026-11-23", "14:00")),  # over the lunch break
        (("2026-11-23", "11:00"), "1h", ("2026-11-23", "12:00")),  # exactly to the break
        (("2026-11-23", "17:00"), "1h", ("2026-11-24", "09:00")),  # into the next morning
        (("2026-11-23", "20:00"), "30m", ("2026-11-24", "09:00")),  # reported at night
        (("2026-11-27", "16:30"), "4h", ("2026-11-30", "11:30")),  # Friday → Monday
        (("2026-11-28", "10:00"), "1h", ("2026-11-30", "09:30")),  # reported on Saturday
        (("2026-11-23", "08:30"), "1d", ("2026-11-23", "17:30")),  # one working day
        (("2026-11-23", "09:00"), "7d", ("2026-12-02", "09:00")),  # 7 × 7.5 h
        (("2026-09-30", "16:00"), "4h", ("2026-10-08", "11:00")),  # across the holiday week
        (("2026-09-26", "10:00"), "1h", ("2026-09-27", "09:30")),  # Sat → make-up Sunday
        (("2026-11-23", "10:00"), 0, ("2026-11-23", "10:00")),
        (("2026-11-23", "07:00"), 0, ("2026-11-23", "08:30")),
    ],
)
def test_deadlines(start: tuple[str, str], limit: str | int, expected: tuple[str, str]) -> None:
    assert CAL.deadline(at(*start), limit) == at(*expected)


def test_day_minutes_and_duration_units() -> None:
    assert CAL.day_minutes == 450  # 08:30-12:00 and 13:30-17:30
    assert parse_duration("30m", 450) == 30 and parse_duration("4h", 450) == 240
    assert parse_duration("2d", 450) == 900
    for bad in ("0h", "4 h", "1w", "-1h", ""):
        with pytest.raises(ValueError):
            parse_duration(bad, 450)


def test_instants_in_any_zone_are_judged_in_the_citys() -> None:
    utc_start = at("2026-11-23", "09:00").astimezone(UTC)  # 01:00 UTC
    deadline = CAL.deadline(utc_start, "1h")
    assert deadline == at("2026-11-23", "10:00") and deadline.tzinfo == UTC
    with pytest.raises(ValueError):
        CAL.deadline(datetime(2026, 11, 23, 9, 0), "1h")  # naive


def test_working_minutes_between_instants() -> None:
    assert CAL.working_minutes(at("2026-11-23", "11:00"), at("2026-11-23", "14:00")) == 90
    assert CAL.working_minutes(at("2026-11-27", "17:00"), at("2026-11-30", "09:00")) == 60
    assert CAL.working_minutes(at("2026-11-23", "12:10"), at("2026-11-23", "13:00")) == 0
    assert CAL.working_minutes(at("2026-11-24", "10:00"), at("2026-11-23", "10:00")) == 0


def test_bad_calendars_are_refused() -> None:
    with pytest.raises(ValueError):
        WorkCalendar(periods=((time(13, 0), time(12, 0)),))
    with pytest.raises(ValueError):
        WorkCalendar(periods=((time(8, 0), time(12, 0)), (time(11, 0), time(17, 0))))
    with pytest.raises(ValueError):
        WorkCalendar(holidays=MAKEUP, workdays=MAKEUP)
    with pytest.raises(Exception):  # noqa: B017 - zoneinfo raises its own error type
        WorkCalendar(timezone="Mars/Olympus")
    never = WorkCalendar(weekend=frozenset(range(7)))
    with pytest.raises(ValueError):
        never.deadline(at("2026-11-23", "09:00"), "1h")


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 9, 1), max_value=datetime(2027, 1, 1)),
    minutes=st.integers(min_value=0, max_value=5_000),
)
def test_the_deadline_leaves_exactly_the_limit_of_working_time(
    start: datetime, minutes: int
) -> None:
    begin = start.replace(tzinfo=SH)
    end = CAL.deadline(begin, minutes)
    assert end >= begin
    assert CAL.working_minutes(begin, end) == pytest.approx(minutes, abs=1e-6)
    assert CAL.is_workday(end.date()) and end.tzinfo is not None
    if minutes:
        # Not a minute later than needed: a minute earlier leaves less than the limit.
        assert CAL.working_minutes(begin, end - timedelta(minutes=1)) < minutes
