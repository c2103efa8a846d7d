"""Working time: deadlines and time used, counted on the city's working calendar (pure).

Case time limits are working time (GB/T 30428, city rules: "1 working hour", "7 working
days"): nights, weekends and public holidays do not count, and make-up workdays (调休上班,
often a Saturday or Sunday next to a holiday) do. All of it is configuration, because every
city sets its own office hours and the holiday schedule is published each year.

* Durations: ``30m`` and ``4h`` are working minutes and hours; ``7d`` is seven working days,
  taken as seven standard working days of working time (``day_minutes``: 8 h for
  08:30–12:00 + 13:30–17:30), which is how limits in days and in hours compare.
* A deadline is the instant at which that much working time has passed since the start; a
  start outside working hours counts from the next working period.
* Instants are timezone-aware; the calendar's own zone (Asia/Shanghai by default) decides
  which day and hour they fall on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["OFFICE_HOURS", "WorkCalendar", "dates", "parse_duration"]

_DURATION: Final = re.compile(r"^([1-9][0-9]{0,4})(m|h|d)$")
_MAX_DAYS_SCANNED: Final = 3660  # a deadline ten years out means a broken calendar
OFFICE_HOURS: Final = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))


def parse_duration(text: str, day_minutes: int) -> int:
    """Working minutes in ``30m`` / ``4h`` / ``7d``."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a working duration such as 30m, 4h or 7d")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * {"m": 1, "h": 60, "d": day_minutes}[unit]


@dataclass(frozen=True)
class WorkCalendar:
    timezone: str = "Asia/Shanghai"
    # Working periods of a working day, in order, not overlapping.
    periods: tuple[tuple[time, time], ...] = (
        (time(8, 30), time(12, 0)),
        (time(13, 30), time(17, 30)),
    )
    weekend: frozenset[int] = frozenset({5, 6})  # Monday is 0
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # make-up days (调休上班)

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # unknown zones fail here, not at the first deadline
        if not self.periods:
            raise ValueError("a working day needs at least one working period")
        previous = time(0, 0)
        for start, end in self.periods:
            if not start < end or start < previous:
                raise ValueError("working periods must be increasing and not overlap")
            previous = end
        if self.holidays & self.workdays:
            clash = min(self.holidays & self.workdays)
            raise ValueError(f"{clash} is both a holiday and a make-up workday")

    @property
    def day_minutes(self) -> int:
        return sum(_minutes(end) - _minutes(start) for start, end in self.periods)

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() not in self.weekend

    def deadline(self, start: datetime, duration: str | int) -> datetime:
        """When ``duration`` (a duration text, or working minutes) of working time has passed."""
        left: float = (
            parse_duration(duration, self.day_minutes) if isinstance(duration, str) else duration
        )
        if left < 0:
            raise ValueError("a duration cannot be negative")
        for begin, end in self._periods_from(start):
            length = _span_minutes(begin, end)
            if left <= length:
                return (begin + timedelta(minutes=left)).astimezone(start.tzinfo)
            left -= length
        raise ValueError("no working time in the next ten years: check the calendar")

    def working_minutes(self, start: datetime, end: datetime) -> float:
        """Working time between two instants (for the time a step took); 0 if end ≤ start."""
        if end <= start:
            return 0.0
        total = 0.0
        for begin, stop in self._periods_from(start):
            if begin >= end:
                break
            total += (min(stop, end) - begin).total_seconds() / 60
        return total

    def _periods_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working periods (local, aware) from ``start`` on, the first one clipped to it."""
        if start.tzinfo is None:
            raise ValueError("instants must carry a time zone")
        zone = ZoneInfo(self.timezone)
        local = start.astimezone(zone)
        for offset in range(_MAX_DAYS_SCANNED):
            day = local.date() + timedelta(days=offset)
            if not self.is_workday(day):
                continue
            for begin_t, end_t in self.periods:
                begin = datetime.combine(day, begin_t, zone)
                end = datetime.combine(day, end_t, zone)
                if end <= local:
                    continue
                yield max(begin, local), end


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _span_minutes(begin: datetime, end: datetime) -> float:
    return (end - begin).total_seconds() / 60


def dates(values: Iterable[str]) -> frozenset[date]:
    """ISO dates from configuration ('2026-10-01')."""
    return frozenset(date.fromisoformat(value) for value in values)
