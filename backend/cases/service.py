"""Case use cases: open a case (from a phone's report or another source), move it through the
workflow (backend.cases.lifecycle), and hand tasks to phones.

Every change here happens in the caller's transaction and leaves three traces: a timeline
event (what coordinators read), an audit-chain entry (what proves it later), and — for what
phones see — a change-log entry for sync. Nothing commits here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy.orm import Session

from backend.accounts import scope
from backend.accounts.models import Role, User
from backend.audit import service as audit
from backend.cases import duplicates, repository, tasks
from backend.cases.errors import (
    ActionNotAllowed,
    CaseInputInvalid,
    CaseNotFound,
    CaseOutOfScope,
    CommentRequired,
    DepartmentNotFound,
    EvidenceMissing,
    IllegalTransition,
    StaleCase,
)
from backend.cases.lifecycle import ACTIONS, REPORT_STATUS, Action
from backend.cases.models import (
    FINAL_STATUSES,
    Case,
    CaseEvent,
    CaseSource,
    CaseStatus,
    Step,
    TaskKind,
)
from backend.cases.timing import Clock, finish_step, start_step
from backend.categories import repository as categories
from backend.reports import service as reports
from backend.reports.models import LOCKED_STATUSES, Report, ReportPurpose, ReportStatus

MAX_AUDIT_COMMENT = 500


@dataclass(frozen=True)
class ActionInput:
    comment: str = ""
    expected_version: int | None = None
    department_code: str | None = None
    into_case_id: int | None = None


@dataclass(frozen=True)
class NewCase:
    """A case from a source other than an inspector's phone (hotline, video patrol, ...)."""

    source: CaseSource
    source_ref: str | None
    category_code: str
    description: str
    address: str
    lon: float
    lat: float
    grid_code: str | None
    flags: list[str] = field(default_factory=list)


# -- reading -----------------------------------------------------------------------------------


def get(session: Session, case_id: int) -> Case:
    case = repository.get(session, case_id)
    if case is None:
        raise CaseNotFound(f"case {case_id} does not exist")
    return case


def may_see(session: Session, user: User, case: Case) -> bool:
    """Command centre by unit, departments what is dispatched to them, inspectors their own
    reports' cases and the cases they hold a task for."""
    role = Role(user.role)
    if role is Role.department_handler:
        return user.department_code is not None and case.department_code == user.department_code
    if role is Role.inspector:
        return case.reporter_id == user.id or tasks.holds_task(session, user.id, case.id)
    return scope.covers(user, case.grid_code)


def visible(session: Session, user: User, case_id: int) -> Case:
    case = get(session, case_id)
    if not may_see(session, user, case):
        raise CaseOutOfScope(f"case {case_id} is outside your area")
    return case


# -- opening -----------------------------------------------------------------------------------


def open_from_report(session: Session, report: Report, actor: str) -> Case:
    """A phone's new violation report opens a case waiting for intake (受理)."""
    now = datetime.now(UTC)
    case = Case(
        source=CaseSource.inspector.value,
        status=CaseStatus.reported.value,
        category_code=report.category_code,
        description=report.description,
        address=report.address,
        geom=report.geom,
        lon=report.geom.x,
        lat=report.geom.y,
        grid_code=report.grid_code,
        on_spot=False,
        primary_report_id=report.id,
        reporter_id=report.reporter_id,
        report_count=1,
        flags=sorted(set(report.flags)),
        rework_count=0,
        created_by=actor,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(case)
    session.flush()
    case.flags = sorted(set(case.flags) | set(_arrival_flags(session, case)))
    report.case_id = case.id
    _opened(session, case, actor, Role.inspector, now, report_id=report.id)
    return case


def _arrival_flags(session: Session, case: Case) -> list[str]:
    """What intake should look at first: a category the city's taxonomy does not (or no
    longer) have — a phone with an old tree — and open cases it may duplicate."""
    flags = []
    category = categories.by_code(session, case.category_code)
    if category is None:
        flags.append("category_unknown")
    elif not category.active:
        flags.append("category_retired")
    if duplicates.suggest(session, case, limit=1):
        flags.append("duplicate_suspected")
    return flags


def open_from_source(session: Session, user: User, new: NewCase) -> Case:
    """A case from the hotline, a complaint, video patrol or a leader: it enters at intake."""
    if not scope.covers(user, new.grid_code):
        raise CaseOutOfScope("the location is outside your area")
    now = datetime.now(UTC)
    case = Case(
        source=new.source.value,
        source_ref=new.source_ref,
        status=CaseStatus.reported.value,
        category_code=new.category_code,
        description=new.description,
        address=new.address,
        geom=shapely.Point(new.lon, new.lat),
        lon=new.lon,
        lat=new.lat,
        grid_code=new.grid_code,
        on_spot=False,
        report_count=0,
        flags=list(new.flags),
        rework_count=0,
        created_by=user.username,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(case)
    session.flush()
    _opened(session, case, user.username, Role(user.role), now, source_ref=new.source_ref)
    return case


def _opened(
    session: Session, case: Case, actor: str, role: Role, now: datetime, **details: Any
) -> None:
    clock = Clock.for_category(session, case.category_code)
    start_step(session, clock, case, Step.accept, now)
    details = {k: v for k, v in details.items() if v is not None}
    session.add(
        CaseEvent(
            case_id=case.id, action="open", from_status=None, to_status=case.status,
            actor=actor, actor_role=role.value, at=now, comment="",
            details={"source": case.source, **details},
        )
    )  # fmt: skip
    audit.record(
        session, actor, "case.open", "case", case.id, source=case.source,
        category=case.category_code, grid=case.grid_code, **details,
    )  # fmt: skip


# -- the workflow ------------------------------------------------------------------------------


def act(session: Session, user: User, case_id: int, name: str, given: ActionInput) -> Case:
    """Take a coordinator's or department's action on a case (409 when it does not apply)."""
    action = ACTIONS.get(name)
    if action is None or action.by_task:
        raise CaseInputInvalid(f"unknown action {name[:40]!r}")
    case = repository.get_for_update(session, case_id)
    if case is None:
        raise CaseNotFound(f"case {case_id} does not exist")
    role = Role(user.role)
    if role not in action.roles:
        raise ActionNotAllowed(f"a {role.value} cannot {name} a case")
    if not may_see(session, user, case):
        raise CaseOutOfScope(f"case {case_id} is outside your area")
    if given.expected_version is not None and given.expected_version != case.version:
        raise StaleCase(
            f"case {case_id} is at version {case.version}, not {given.expected_version}",
            version=case.version,
        )
    _check_applies(case, action)
    comment = given.comment.strip()
    if action.needs_comment and not comment:
        raise CommentRequired(f"{name} needs a comment (the reason)")
    return _EFFECTS[name](session, user, case, action, comment, given)


def _check_applies(case: Case, action: Action) -> None:
    status = CaseStatus(case.status)
    if status not in action.sources:
        raise IllegalTransition(
            f"cannot {action.name} a case that is {status.value}",
            case_status=status.value,
            allowed_from=sorted(s.value for s in action.sources),
        )


def _transition(
    session: Session,
    case: Case,
    action: Action,
    *,
    actor: str,
    role: Role,
    comment: str,
    details: dict[str, Any] | None = None,
    department_code: str | None = None,
) -> Case:
    """Move ``case`` along ``action``: steps, timeline, reports' status, version, audit."""
    now = datetime.now(UTC)
    clock = Clock.for_category(session, case.category_code)
    previous = case.status
    finish_step(session, clock, case, action.ends, now, actor)
    case.status = action.target.value
    if action.starts is not None:
        start_step(session, clock, case, action.starts, now, department_code)
    if action.target in FINAL_STATUSES:
        case.step = case.step_started_at = case.step_deadline = None
        case.closed_at = now if action.target is CaseStatus.closed else case.closed_at
    case.version += 1
    case.updated_at = now
    details = details or {}
    session.add(
        CaseEvent(
            case_id=case.id, action=action.name, from_status=previous,
            to_status=case.status, actor=actor, actor_role=role.value, at=now,
            comment=comment, details=details,
        )
    )  # fmt: skip
    _project_report_status(session, case, actor)
    audit.record(
        session, actor, f"case.{action.name}", "case", case.id, before=previous,
        after=case.status, comment=comment[:MAX_AUDIT_COMMENT], **details,
    )  # fmt: skip
    session.flush()
    return case


def _project_report_status(session: Session, case: Case, actor: str) -> None:
    """Phones see the command centre's decision as their reports' status (server-owned)."""
    wanted = ReportStatus(REPORT_STATUS[CaseStatus(case.status)])
    for report in repository.reports_of(session, case.id):
        if report.purpose != ReportPurpose.violation.value:
            continue
        if report.status != wanted.value and report.status not in LOCKED_STATUSES:
            reports.set_status(session, report.id, wanted, actor)


def _simple(
    session: Session, user: User, case: Case, action: Action, comment: str, _: ActionInput
) -> Case:
    if action.name == "decline":
        case.decline_reason = comment
    return _transition(
        session, case, action, actor=user.username, role=Role(user.role), comment=comment
    )


def _confirm_fix(
    session: Session, user: User, case: Case, action: Action, comment: str, _: ActionInput
) -> Case:
    roles = repository.stored_photo_roles(session, case.id, ReportPurpose.violation.value)
    missing = sorted({"before", "after"} - roles)
    if missing:
        raise EvidenceMissing(
            "an on-the-spot fix needs stored before and after photos; missing: "
            + ", ".join(missing),
            missing=missing,
        )
    case.on_spot = True
    return _transition(
        session, case, action, actor=user.username, role=Role(user.role), comment=comment
    )


def _dispatch(
    session: Session, user: User, case: Case, action: Action, comment: str, given: ActionInput
) -> Case:
    code = given.department_code
    if not code:
        raise CaseInputInvalid(f"{action.name} needs department_code")
    department = repository.department(session, code)
    if department is None or not department.active:
        raise DepartmentNotFound(f"no active department {code!r}")
    if action.name == "redispatch" and code == case.department_code:
        raise CaseInputInvalid(f"the case is already with {code}")
    previous = case.department_code
    tasks.cancel_open(session, case.id)
    case.department_code = code
    _transition(
        session, case, action, actor=user.username, role=Role(user.role), comment=comment,
        details={"department": code, "previous_department": previous}, department_code=code,
    )  # fmt: skip
    tasks.create_handle(session, case)
    return case


def _return(
    session: Session, user: User, case: Case, action: Action, comment: str, _: ActionInput
) -> Case:
    department = case.department_code
    tasks.cancel_open(session, case.id)
    case.department_code = None
    return _transition(
        session, case, action, actor=user.username, role=Role(user.role), comment=comment,
        details={"department": department},
    )  # fmt: skip


def _rework(
    session: Session, user: User, case: Case, action: Action, comment: str, _: ActionInput
) -> Case:
    if case.department_code is None:
        raise IllegalTransition("the case has no department to send it back to")
    tasks.cancel_open(session, case.id)
    case.rework_count += 1
    _transition(
        session, case, action, actor=user.username, role=Role(user.role), comment=comment,
        details={"department": case.department_code, "round": case.rework_count + 1},
        department_code=case.department_code,
    )  # fmt: skip
    tasks.create_handle(session, case)
    return case


def _close(
    session: Session, user: User, case: Case, action: Action, comment: str, _: ActionInput
) -> Case:
    verification = repository.last_task(session, case.id, TaskKind.verify)
    if verification is None or verification.outcome != "fixed":
        raise IllegalTransition(
            "the verification did not find the problem fixed: send it back (rework)",
            case_status=case.status,
        )
    return _transition(
        session, case, action, actor=user.username, role=Role(user.role), comment=comment,
        details={"verification_report": verification.result_report_id},
    )  # fmt: skip


def _void(
    session: Session, user: User, case: Case, action: Action, comment: str, given: ActionInput
) -> Case:
    into_id = given.into_case_id
    if into_id is None:
        raise CaseInputInvalid("void needs into_case_id: the case this one duplicates")
    if into_id == case.id:
        raise CaseInputInvalid("a case cannot be merged into itself")
    target = repository.get_for_update(session, into_id)
    if target is None:
        raise CaseNotFound(f"case {into_id} does not exist")
    if not may_see(session, user, target):
        raise CaseOutOfScope(f"case {into_id} is outside your area")
    if CaseStatus(target.status) in FINAL_STATUSES:
        raise IllegalTransition(
            f"cannot merge into a case that is {target.status}", case_status=target.status
        )
    moved = merge_reports(session, case, target, user.username)
    case.merged_into_id = target.id
    _transition(
        session, case, action, actor=user.username, role=Role(user.role), comment=comment,
        details={"into_case": target.id, "reports": moved},
    )  # fmt: skip
    target.version += 1
    target.updated_at = datetime.now(UTC)
    session.add(
        CaseEvent(
            case_id=target.id, action="merge_in", from_status=target.status,
            to_status=target.status, actor=user.username, actor_role=user.role,
            at=target.updated_at, comment=comment, details={"from_case": case.id, "reports": moved},
        )
    )  # fmt: skip
    return case


def merge_reports(session: Session, duplicate: Case, target: Case, actor: str) -> list[str]:
    """Move a duplicate's reports (and their evidence) to ``target``; recount both.

    The moved reports keep every photo and flag; they show phones ``merged`` (a duplicate
    report is evidence, not a new find: it does not count as 有效上报 twice).
    """
    moved: list[str] = []
    for report in repository.reports_of(session, duplicate.id):
        moved.append(report.id)
        if report.purpose == ReportPurpose.violation.value and report.status not in (
            LOCKED_STATUSES
        ):
            # First: set_status re-reads the row under a lock (unflushed edits would be lost).
            reports.set_status(session, report.id, ReportStatus.merged, actor)
        report.case_id = target.id
    session.flush()
    target.report_count = repository.count_reports(
        session, target.id, ReportPurpose.violation.value
    )
    target.flags = sorted(set(target.flags) | set(duplicate.flags))
    duplicate.report_count = 0
    return moved


_EFFECTS = {
    "accept": _simple,
    "file": _simple,
    "decline": _simple,
    "void": _void,
    "confirm_fix": _confirm_fix,
    "dispatch": _dispatch,
    "redispatch": _dispatch,
    "return": _return,
    "close": _close,
    "rework": _rework,
}


# -- tasks from phones -------------------------------------------------------------------------


def complete_task(
    session: Session, user: User, task_id: str, outcome: str, comment: str, report: Report
) -> tasks.Completion:
    """A phone's ``task.complete``: the department's fix or the inspector's verification,
    with ``report`` (just created from the same mutation) carrying the after-photos."""
    task = tasks.claim(session, user, task_id, report.id)
    if task.done_by_report:
        return task
    case = repository.get_for_update(session, task.task.case_id)
    assert case is not None
    kind = TaskKind(task.task.kind)
    action = ACTIONS["handle" if kind is TaskKind.handle else "verify"]
    _check_applies(case, action)
    report.purpose = (
        ReportPurpose.handling if kind is TaskKind.handle else ReportPurpose.verification
    ).value
    report.case_id = case.id
    tasks.finish(session, task.task, outcome, report.id)
    _transition(
        session, case, action, actor=user.username, role=Role(user.role), comment=comment,
        details={"task": task.task.id, "outcome": outcome, "report": report.id},
    )  # fmt: skip
    if kind is TaskKind.handle:
        tasks.create_verify(session, case, _today(session, case))
    return task


def assign_verifier(
    session: Session, user: User, case_id: int, username: str, comment: str
) -> Case:
    """Give the open verification task to another inspector (the first device drops it)."""
    if Role(user.role) not in (Role.shift_lead, Role.dispatcher, Role.admin):
        raise ActionNotAllowed(f"a {user.role} cannot assign verification")
    case = repository.get_for_update(session, case_id)
    if case is None:
        raise CaseNotFound(f"case {case_id} does not exist")
    if not may_see(session, user, case):
        raise CaseOutOfScope(f"case {case_id} is outside your area")
    if case.status != CaseStatus.handled.value:
        raise IllegalTransition(
            f"only a handled case has a verification to assign; this one is {case.status}",
            case_status=case.status,
        )
    inspector = repository.user_by_username(session, username)
    if inspector is None or inspector.role != Role.inspector.value or not inspector.is_active:
        raise CaseInputInvalid(f"{username!r} is not an active inspector")
    previous = tasks.reassign_verify(session, case, inspector)
    now = datetime.now(UTC)
    case.version += 1
    case.updated_at = now
    session.add(
        CaseEvent(
            case_id=case.id, action="assign_verifier", from_status=case.status,
            to_status=case.status, actor=user.username, actor_role=user.role, at=now,
            comment=comment, details={"verifier": username, "previous": previous},
        )
    )  # fmt: skip
    audit.record(
        session, user.username, "case.assign_verifier", "case", case.id,
        verifier=username, previous=previous,
    )  # fmt: skip
    return case


def _today(session: Session, case: Case) -> date:
    clock = Clock.for_category(session, case.category_code)
    return datetime.now(ZoneInfo(clock.calendar.timezone)).date()
