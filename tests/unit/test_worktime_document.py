"""The working-calendar file: parsed, written back, every problem listed at once."""

from __future__ import annotations

import contextlib
from datetime import date, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.worktime.document import CalendarProblems, dump, parse

FILE = b"""version: 1
timezone: Asia/Shanghai
hours: ["09:00-12:00", "14:00-18:00"]
weekend: [saturday, sunday]
holidays: ["2026-10-01", 2026-10-02]
workdays: ["2026-09-27"]
"""


def test_a_calendar_file_and_its_round_trip() -> None:
    calendar = parse(FILE)
    assert calendar.periods == ((time(9), time(12)), (time(14), time(18)))
    assert calendar.day_minutes == 420
    assert calendar.holidays == {date(2026, 10, 1), date(2026, 10, 2)}
    assert calendar.workdays == {date(2026, 9, 27)} and calendar.weekend == {5, 6}
    for fmt in ("yaml", "json"):
        assert parse(dump(calendar, fmt)) == calendar


def test_defaults_for_what_is_left_out() -> None:
    calendar = parse(b"version: 1\n")
    assert calendar.day_minutes == 450 and calendar.weekend == {5, 6}
    assert calendar.timezone == "Asia/Shanghai" and not calendar.holidays


def test_every_problem_at_once() -> None:
    bad = b"""version: 1
timezone: Mars/Olympus
hours: ["09:00-12:00", "11:00-13:00", "18:00-17:00", "9am-5pm"]
weekend: [saturday, funday]
holidays: ["2026-10-01", "2026-13-01"]
workdays: ["2026-10-01"]
colour: red
"""
    with pytest.raises(CalendarProblems) as caught:
        parse(bad)
    text = "\n".join(caught.value.problems)
    for expected in (
        "unknown field 'colour'",
        "Mars/Olympus",
        "overlap",
        "ends before it starts",
        "'9am-5pm' is not HH:MM-HH:MM",
        "'funday' is not a day name",
        "'2026-13-01' is not a date",
        "2026-10-01 is both a holiday and a workday",
    ):
        assert expected in text, expected


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_input_raises_nothing_but_calendar_problems(data: bytes) -> None:
    with contextlib.suppress(CalendarProblems):  # anything else fails the test
        parse(data)
