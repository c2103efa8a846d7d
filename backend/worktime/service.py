"""The city's working calendar: stored, replaced from a file, used for deadlines."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from backend.audit import service as audit
from backend.core.types import utcnow
from backend.worktime.calendar import WorkCalendar
from backend.worktime.document import CalendarProblems, dump, parse
from backend.worktime.errors import CalendarFileInvalid
from backend.worktime.models import ConfigDocument

NAME = "work_calendar"


def current(session: Session) -> WorkCalendar:
    """The stored calendar, or office hours with weekends off and no holidays yet."""
    row = session.get(ConfigDocument, NAME)
    if row is None:
        return WorkCalendar()
    return _parsed(json.dumps(row.document, sort_keys=True))


# Every report a phone pushes opens a case timed on the calendar; parsing the stored
# document (through the YAML loader, which also reads JSON) cost milliseconds each time.
# Keyed by the document's own text, so a replaced calendar (from any process) is never
# served stale. A WorkCalendar is immutable, so sharing one between threads is safe.
_last_parsed: tuple[str, WorkCalendar] | None = None


def _parsed(text: str) -> WorkCalendar:
    global _last_parsed
    cached = _last_parsed
    if cached is not None and cached[0] == text:
        return cached[1]
    calendar = parse(text.encode())
    _last_parsed = (text, calendar)
    return calendar


def replace(session: Session, data: bytes, actor: str) -> WorkCalendar:
    try:
        calendar = parse(data)
    except CalendarProblems as exc:
        raise CalendarFileInvalid(str(exc), problems=exc.problems) from None
    document = json.loads(dump(calendar, "json"))
    row = session.get(ConfigDocument, NAME)
    if row is None:
        session.add(ConfigDocument(name=NAME, document=document, updated_by=actor))
    else:
        row.document, row.updated_at, row.updated_by = document, utcnow(), actor
    session.flush()
    audit.record(
        session, actor, "calendar.replace", "config", NAME,
        holidays=len(calendar.holidays), workdays=len(calendar.workdays),
    )  # fmt: skip
    return calendar


def export(session: Session, fmt: str = "yaml") -> bytes:
    return dump(current(session), fmt)
