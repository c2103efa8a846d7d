"""The working calendar as a file (pure): parse and validate, write back.

    version: 1
    timezone: Asia/Shanghai
    hours: ["08:30-12:00", "13:30-17:30"]
    weekend: [saturday, sunday]
    holidays: ["2026-10-01", "2026-10-02"]   # 法定节假日 (the State Council's yearly notice)
    workdays: ["2026-09-27"]                 # 调休上班: weekend days that are working days

Every problem is reported at once; a file with any problem changes nothing.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import date, time
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from backend.core import yaml_files
from backend.worktime.calendar import OFFICE_HOURS, WorkCalendar

__all__ = ["DAYS", "CalendarProblems", "dump", "parse"]

DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PERIOD = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")
_FIELDS = {"version", "timezone", "hours", "weekend", "holidays", "workdays"}
MAX_BYTES: Final = 200_000


class CalendarProblems(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems[:5]))
        self.problems = problems


def parse(data: bytes) -> WorkCalendar:
    if len(data) > MAX_BYTES:
        raise CalendarProblems([f"the file is larger than {MAX_BYTES} bytes"])
    try:
        document = yaml_files.load(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, yaml.YAMLError):
        raise CalendarProblems(["the file is not UTF-8 YAML or JSON"]) from None
    except yaml_files.UnsafeYAML as exc:  # aliases or deep nesting: minutes of CPU, gigabytes
        raise CalendarProblems([str(exc)]) from None
    if not isinstance(document, dict):
        raise CalendarProblems(["the file must be a mapping (version, timezone, hours, …)"])
    problems = [f"unknown field {k!r}" for k in sorted(set(map(str, document)) - _FIELDS)]
    version = document.get("version")
    if type(version) is not int or version != 1:  # not `true`, which == 1
        problems.append("version must be 1")
    zone = document.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone {zone!r} is not a known IANA zone")
    periods = _periods(document.get("hours"), problems)
    weekend = _weekend(document.get("weekend", ["saturday", "sunday"]), problems)
    holidays = _dates(document.get("holidays", []), "holidays", problems)
    workdays = _dates(document.get("workdays", []), "workdays", problems)
    for clash in sorted(holidays & workdays):
        problems.append(f"{clash} is both a holiday and a workday")
    if problems:
        raise CalendarProblems(problems)
    try:
        return WorkCalendar(str(zone), periods, weekend, holidays, workdays)
    except ValueError as exc:
        raise CalendarProblems([str(exc)]) from None


def dump(calendar: WorkCalendar, fmt: str = "yaml") -> bytes:
    document: dict[str, Any] = {
        "version": 1,
        "timezone": calendar.timezone,
        "hours": [f"{a:%H:%M}-{b:%H:%M}" for a, b in calendar.periods],
        "weekend": [DAYS[d] for d in sorted(calendar.weekend)],
        "holidays": [d.isoformat() for d in sorted(calendar.holidays)],
        "workdays": [d.isoformat() for d in sorted(calendar.workdays)],
    }
    if fmt == "json":
        return json.dumps(document, indent=2).encode() + b"\n"
    text: str = yaml.safe_dump(document, sort_keys=False)
    return text.encode()


def _periods(value: Any, problems: list[str]) -> tuple[tuple[time, time], ...]:
    if value is None:
        return OFFICE_HOURS
    if not isinstance(value, list) or not value:
        problems.append('hours: a list such as ["08:30-12:00", "13:30-17:30"]')
        return OFFICE_HOURS
    periods = []
    for item in value:
        match = _PERIOD.match(str(item))
        if match is None:
            problems.append(f"hours: {item!r} is not HH:MM-HH:MM")
            continue
        h1, m1, h2, m2 = map(int, match.groups())
        start, end = time(h1, m1), time(h2, m2)
        if not start < end:
            problems.append(f"hours: {item!r} ends before it starts")
        periods.append((start, end))
    ordered = sorted(periods)
    for (_, end), (start, _) in itertools.pairwise(ordered):
        if start < end:
            problems.append("hours: working periods overlap")
    return tuple(ordered) or OFFICE_HOURS


def _weekend(value: Any, problems: list[str]) -> frozenset[int]:
    if not isinstance(value, list):
        problems.append("weekend: a list of day names, e.g. [saturday, sunday]")
        return frozenset({5, 6})
    days = set()
    for item in value:
        name = str(item).lower()
        if name not in DAYS:
            problems.append(f"weekend: {item!r} is not a day name ({', '.join(DAYS)})")
        else:
            days.add(DAYS.index(name))
    if len(days) == 7:
        problems.append("weekend: every day cannot be a weekend day")
    return frozenset(days)


def _dates(value: Any, name: str, problems: list[str]) -> frozenset[date]:
    if not isinstance(value, list):
        problems.append(f"{name}: a list of dates such as 2026-10-01")
        return frozenset()
    found = set()
    for item in value:
        if isinstance(item, date):  # YAML reads an unquoted 2026-10-01 as a date
            found.add(item)
            continue
        try:
            found.add(date.fromisoformat(str(item)))
        except ValueError:
            problems.append(f"{name}: {item!r} is not a date (YYYY-MM-DD)")
    return frozenset(found)
