"""Step deadlines and time used, on the city's working calendar (backend.worktime).

A step's limit comes from the case's category (limits are inherited from the major category
on import); a category without a limit for a step, or a code not in the taxonomy, falls back
to DEFAULT_LIMITS. Limits are working time, so a case reported on Friday evening is due on
Monday, and holidays and make-up workdays count as the calendar says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.cases.models import Case, CaseStep, Step
from backend.categories import repository as categories
from backend.worktime import service as worktime
from backend.worktime.calendar import WorkCalendar, parse_duration

# 受理立案 and 派遣 within one working hour each, handling within a working day, verification
# within a working day: the examples city rules give (domain notes, "Case workflow").
DEFAULT_LIMITS: Final[dict[str, str]] = {
    Step.accept: "1h",
    Step.dispatch: "1h",
    Step.handle: "1d",
    Step.check: "1d",
}


@dataclass(frozen=True)
class Clock:
    """The calendar and the category limits, read once per request."""

    calendar: WorkCalendar
    limits: dict[str, str]

    @classmethod
    def for_category(cls, session: Session, category_code: str) -> Clock:
        category = categories.by_code(session, category_code)
        own = dict(category.limits) if category is not None else {}
        return cls(worktime.current(session), {**DEFAULT_LIMITS, **own})

    def limit_minutes(self, step: Step) -> int:
        return parse_duration(self.limits[step], self.calendar.day_minutes)


def start_step(
    session: Session,
    clock: Clock,
    case: Case,
    step: Step,
    at: datetime,
    department_code: str | None = None,
) -> CaseStep:
    return record_step(session, case, plan_step(clock, case, step, at), department_code)


def plan_step(clock: Clock, case: Case, step: Step, at: datetime) -> int:
    """Set the case's running step (a new case's before its INSERT); returns its limit."""
    minutes = clock.limit_minutes(step)
    case.step, case.step_started_at = step.value, at
    case.step_deadline = clock.calendar.deadline(at, minutes)
    return minutes


def record_step(
    session: Session, case: Case, minutes: int, department_code: str | None = None
) -> CaseStep:
    """The row of the step ``plan_step`` set running (the case must have its id)."""
    assert case.id is not None and case.step is not None
    row = CaseStep(
        case_id=case.id,
        step=case.step,
        round=case.rework_count + 1,
        department_code=department_code,
        limit_minutes=minutes,
        started_at=case.step_started_at,
        deadline=case.step_deadline,
    )
    session.add(row)
    return row


def finish_step(
    session: Session, clock: Clock, case: Case, steps: frozenset[Step], at: datetime, actor: str
) -> CaseStep | None:
    """End the running step if it is one of ``steps``: store the working time it took."""
    if case.step is None or Step(case.step) not in steps:
        return None
    row = session.scalar(
        select(CaseStep)
        .where(CaseStep.case_id == case.id, CaseStep.finished_at.is_(None))
        .order_by(CaseStep.id.desc())
        .limit(1)
    )
    if row is not None:
        row.finished_at, row.finished_by = at, actor
        row.working_minutes = round(clock.calendar.working_minutes(row.started_at, at), 2)
        row.overdue = at > row.deadline
    case.step = case.step_started_at = case.step_deadline = None
    return row
