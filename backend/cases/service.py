"""Case use cases: open a case (from a phone's report or another source), move it through the
workflow (backend.cases.lifecycle), and hand tasks to phones.

Every change here happens in the caller's transaction and leaves three traces: a timeline
event (what coordinators read), an audit-chain entry (what proves it later), and — for what
phones see — a change-log entry for sync. Nothing commits here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy.orm import Session

from backend.accounts import scope
from backend.accounts.models import Role, User
from backend.audit import service as audit
from backend.cases import duplicates, repository, review, tasks
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
from backend.cases.timing import Clock, finish_step, plan_step, record_step, start_step
from backend.categories import repository as categories
from backend.geo import metric
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
    """Command centre by unit, departments what is dispatched to them, inspectors the cases
    of their reports and those they hold a task for (review.visible_to, the one definition)."""
    return review.may_see(session, user, case.id)


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
    case.flags = sorted(set(case.flags) | set(_arrival_flags(session, case)))
    _insert_opened(session, case, actor, Role.inspector, now, report_id=report.id)
    report.case_id = case.id
    return case


# Flags a case gets itself (everything else in case.flags comes from its reports).
CASE_FLAGS = frozenset(
    {"category_unknown", "category_retired", "duplicate_suspected", "evidence_far_from_case"}
)
EVIDENCE_FAR_M = 100.0  # a handling/verification report this far from the case is suspect


def lock_case_of(session: Session, report: Report) -> Case | None:
    """Lock the report's case before the report is changed: coordinators lock the case first
    and its reports second, so writers that touch both must follow that order."""
    if report.case_id is None:
        return None
    return repository.get_for_update(session, report.case_id)


def evidence_changed(session: Session, report: Report, locked: Case | None = None) -> None:
    """A report's evidence flags or photos changed: the case shows its reports' flags (so
    the review list can filter on them) and phones holding its tasks get the new photos.

    ``locked``: the report's case, if the caller already holds its lock (no second read).
    """
    if report.case_id is None:
        return
    case = locked if locked is not None else repository.get_for_update(session, report.case_id)
    if case is None:
        return
    from_reports = {f for r in repository.reports_of(session, case.id) for f in r.flags}
    case.flags = sorted({f for f in case.flags if f in CASE_FLAGS} | from_reports)
    tasks.touch_open(session, case.id)


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
    _insert_opened(session, case, user.username, Role(user.role), now, source_ref=new.source_ref)
    return case


def _insert_opened(
    session: Session, case: Case, actor: str, role: Role, now: datetime, **details: Any
) -> None:
    """Store a new case with its first step (intake) running, its event and audit entry.

    The step is planned before the INSERT, so the case row is written once."""
    clock = Clock.for_category(session, case.category_code)
    minutes = plan_step(clock, case, Step.accept, now)
    session.add(case)
    session.flush()
    record_step(session, case, minutes)
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
    if action is None or action.by_phone:
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
            _set_report_status(session, report.id, wanted, actor)


def _set_report_status(session: Session, report_id: str, status: ReportStatus, actor: str) -> None:
    """Set a report's status unless the phone deleted it (or it got locked) since we read it:
    the case's decision stands either way."""
    with contextlib.suppress(reports.ReportNotFound, reports.InvalidStatusChange):
        reports.set_status(session, report_id, status, actor)


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
    if department.unit_code is not None and not (case.grid_code or "").startswith(
        department.unit_code
    ):
        raise CaseInputInvalid(
            f"{code} serves unit {department.unit_code}; this case lies in {case.grid_code}"
        )
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
        if report.purpose == ReportPurpose.violation.value and report.status not in (
            LOCKED_STATUSES
        ):
            _set_report_status(session, report.id, ReportStatus.merged, actor)
        if reports.attach_to_case(session, report.id, target.id) is not None:
            moved.append(report.id)
    session.flush()
    tasks.touch_open(session, target.id)  # phones holding its tasks get the new photos
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


# -- phones changing their report before intake ---------------------------------------------


def report_changed(session: Session, report: Report, actor: str) -> None:
    """The reporter edited or deleted their report while its case waits for intake (after
    that the report is locked): the case follows the edit; a case left with no report is
    withdrawn (declined, with the reporter as actor)."""
    if report.case_id is None or report.purpose != ReportPurpose.violation.value:
        return
    case = repository.get_for_update(session, report.case_id)
    if case is None or case.status != CaseStatus.reported.value:
        return
    session.flush()
    if report.deleted_at is not None:
        if repository.count_reports(session, case.id, ReportPurpose.violation.value) == 0:
            comment = "上报人撤回 (the reporter deleted the report)"
            _transition(
                session, case, ACTIONS["withdraw"], actor=actor, role=Role.inspector,
                comment=comment, details={"report": report.id},
            )  # fmt: skip
        return
    if case.primary_report_id != report.id:
        return
    before = {"category_code": case.category_code, "grid_code": case.grid_code}
    case.category_code, case.description, case.address = (
        report.category_code, report.description, report.address,
    )  # fmt: skip
    case.geom, case.lon, case.lat = report.geom, report.geom.x, report.geom.y
    case.grid_code = report.grid_code
    case.version += 1
    case.updated_at = datetime.now(UTC)
    session.add(
        CaseEvent(
            case_id=case.id, action="report_edited", from_status=case.status,
            to_status=case.status, actor=actor, actor_role=Role.inspector.value,
            at=case.updated_at, comment="", details={"report": report.id, "before": before},
        )
    )  # fmt: skip
    audit.record(session, actor, "case.report_edited", "case", case.id, report=report.id, **before)


# -- tasks from phones -------------------------------------------------------------------------


def complete_task(
    session: Session, user: User, task_id: str, outcome: str, comment: str, report: Report
) -> tasks.Completion:
    """A phone's ``task.complete``: the department's fix or the inspector's verification,
    with ``report`` (just created from the same mutation) carrying the after-photos."""
    found = repository.task(session, task_id)
    if found is None:
        raise tasks.TaskRejected("not_found", f"task {task_id} does not exist")
    # Case first, then task: the order every coordinator action takes (no deadlocks).
    case = repository.get_for_update(session, found.case_id)
    assert case is not None
    task = tasks.claim(session, user, task_id, report.id)
    if task.done_by_report:
        return task
    kind = TaskKind(task.task.kind)
    action = ACTIONS["handle" if kind is TaskKind.handle else "verify"]
    _check_applies(case, action)
    report.purpose = (
        ReportPurpose.handling if kind is TaskKind.handle else ReportPurpose.verification
    ).value
    report.case_id = case.id
    distance = metric.distance_m(case.lon, case.lat, report.geom)
    if distance > EVIDENCE_FAR_M:
        report.flags = sorted({*report.flags, "far_from_case"})
        case.flags = sorted({*case.flags, "evidence_far_from_case"})
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
    community = (case.grid_code or "")[:12]
    if community and not repository.patrols_under(
        session, inspector.username, community, _today(session, case)
    ):
        # 核查 is a visit by someone who knows the area: an inspector of the same community.
        raise CaseInputInvalid(f"{username!r} patrols no grid in community {community} today")
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
