"""Applying one validated mutation: protocol arguments in, a protocol result out.

The protocol package validates arguments (pure); the reports service does the work; this
module is the seam between them and the only place that knows both vocabularies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from backend.accounts.models import User
from backend.cases import service as cases
from backend.cases.models import Task, TaskKind
from backend.cases.tasks import ENTITY as TASK_ENTITY
from backend.cases.tasks import TaskRejected
from backend.core.errors import XunchaError
from backend.reports import service as reports
from backend.reports.models import Report
from backend.reports.service import (
    LocationInput,
    Locator,
    NewReport,
    PhotoInput,
    ReportRejected,
    WriteResult,
)
from backend.sync import repository as sync_repository
from sync_protocol.messages import MutationResult, RecordRef, ResultStatus
from sync_protocol.mutations import (
    Location,
    MutationArgsError,
    ReportAddPhotos,
    ReportCreate,
    ReportDelete,
    ReportUpdate,
    TaskComplete,
    validate_mutation,
)


@dataclass(frozen=True)
class MutationContext:
    user_id: int
    device_id: str
    locator: Locator
    user: User


Handler = Callable[[Session, MutationContext, Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class Applied:
    result: MutationResult
    # The record version this mutation itself produced (None: it produced none).
    produced_version: int | None = None


def apply_mutation(
    session: Session, ctx: MutationContext, mutation_id: int, name: str, args: dict[str, Any]
) -> Applied:
    """Validate and apply one mutation; permanent failures become ``rejected`` results."""
    try:
        typed = validate_mutation(name, args)
        written = _HANDLERS[name](session, ctx, typed, args)
    except MutationArgsError as exc:
        return Applied(_rejected(mutation_id, exc.code, exc.message))
    except (ReportRejected, TaskRejected) as exc:
        return Applied(_rejected(mutation_id, exc.code, exc.message))
    if isinstance(written, TaskWrite):
        return Applied(_task_result(mutation_id, written), written.task.version)
    produced = written.report.version if written.produced else None
    return Applied(_result(mutation_id, written), produced)


def _create(session: Session, ctx: MutationContext, typed: Any, raw: dict[str, Any]) -> WriteResult:
    assert isinstance(typed, ReportCreate)
    new = NewReport(
        report_id=typed.report_id,
        category_code=typed.category_code,
        description=typed.description,
        address=typed.address,
        location=_location(typed.location),
        captured_at=typed.captured_at,
        photos=tuple(
            PhotoInput(p.photo_id, p.sha256, p.size, p.content_type) for p in typed.photos
        ),
        digest=typed.content_digest(),
    )
    written = reports.create(
        session, user_id=ctx.user_id, device_id=ctx.device_id, new=new, locator=ctx.locator
    )
    if written.produced:
        # Every violation report opens a case for intake (受理), in the same transaction.
        cases.open_from_report(session, written.report, ctx.user.username)
    return written


@dataclass(frozen=True)
class TaskWrite:
    task: Task


def _complete_task(
    session: Session, ctx: MutationContext, typed: Any, _raw: dict[str, Any]
) -> TaskWrite:
    """The evidence report is created first (same rules as report.create), then the task."""
    assert isinstance(typed, TaskComplete)
    task = session.get(Task, typed.task_id)
    if task is None:
        raise TaskRejected("not_found", f"task {typed.task_id} does not exist")
    case = cases.get(session, task.case_id)
    new = NewReport(
        report_id=typed.report_id,
        category_code=case.category_code,
        description=typed.comment or f"task {typed.task_id}: {typed.outcome}",
        address=case.address,
        location=_location(typed.location),
        captured_at=typed.captured_at,
        photos=tuple(
            PhotoInput(p.photo_id, p.sha256, p.size, p.content_type) for p in typed.photos
        ),
        digest=typed.content_digest(),
        photo_role="after",
    )
    _check_outcome(task, typed.outcome)
    evidence = reports.create(
        session, user_id=ctx.user_id, device_id=ctx.device_id, new=new, locator=ctx.locator
    )
    try:
        completion = cases.complete_task(
            session, ctx.user, typed.task_id, typed.outcome, typed.comment, evidence.report
        )
    except XunchaError as exc:  # e.g. the case moved on (illegal_transition): never retried
        raise TaskRejected(exc.code, exc.detail) from None
    return TaskWrite(completion.task)


def _check_outcome(task: Task, outcome: str) -> None:
    wanted = ("done",) if task.kind == TaskKind.handle.value else ("fixed", "not_fixed")
    if outcome not in wanted:
        raise TaskRejected(
            "invalid_outcome", f"a {task.kind} task ends with {' or '.join(wanted)}, not {outcome}"
        )


def _update(
    session: Session, ctx: MutationContext, typed: Any, _raw: dict[str, Any]
) -> WriteResult:
    assert isinstance(typed, ReportUpdate)
    _lock_case(session, typed.report_id)
    changes = {
        name: _location(value) if isinstance(value, Location) else value
        for name, value in typed.changes.items()
    }
    written = reports.update(
        session,
        user_id=ctx.user_id,
        report_id=typed.report_id,
        base_version=typed.base_version,
        changes=changes,
        ignored=typed.ignored_fields,
        own_versions=sync_repository.own_versions(session, ctx.device_id, typed.report_id),
        locator=ctx.locator,
    )
    if written.produced:
        cases.report_changed(session, written.report, ctx.user.username)
    return written


def _delete(
    session: Session, ctx: MutationContext, typed: Any, _raw: dict[str, Any]
) -> WriteResult:
    assert isinstance(typed, ReportDelete)
    _lock_case(session, typed.report_id)
    written = reports.delete(
        session,
        user_id=ctx.user_id,
        report_id=typed.report_id,
        base_version=typed.base_version,
        own_versions=sync_repository.own_versions(session, ctx.device_id, typed.report_id),
    )
    if written.produced:
        cases.report_changed(session, written.report, ctx.user.username)
    return written


def _lock_case(session: Session, report_id: str) -> None:
    """Case before report, the order coordinators lock them in (no deadlocks)."""
    report = session.get(Report, report_id)
    if report is not None:
        cases.lock_case_of(session, report)


def _add_photos(
    session: Session, ctx: MutationContext, typed: Any, _raw: dict[str, Any]
) -> WriteResult:
    assert isinstance(typed, ReportAddPhotos)
    return reports.add_photos(
        session,
        user_id=ctx.user_id,
        report_id=typed.report_id,
        role=typed.role,
        photos=tuple(
            PhotoInput(p.photo_id, p.sha256, p.size, p.content_type) for p in typed.photos
        ),
    )


_HANDLERS: dict[str, Handler] = {
    "report.add_photos": _add_photos,
    "report.create": _create,
    "report.update": _update,
    "report.delete": _delete,
    "task.complete": _complete_task,
}


def _location(loc: Location) -> LocationInput:
    return LocationInput(
        lon=loc.lon,
        lat=loc.lat,
        crs=loc.crs,
        accuracy_m=loc.accuracy_m,
        fix_time=loc.fix_time,
        provider=loc.provider,
    )


def _rejected(mutation_id: int, code: str, message: str) -> MutationResult:
    return MutationResult(
        id=mutation_id, status=ResultStatus.rejected, code=code, message=printable(message)
    )


def printable(text: str) -> str:
    """Text safe to store and send: a client's lone surrogates quoted back become '?'."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _task_result(mutation_id: int, written: TaskWrite) -> MutationResult:
    record = RecordRef(entity=TASK_ENTITY, id=written.task.id, version=written.task.version)
    return MutationResult(id=mutation_id, status=ResultStatus.applied, record=record)


def _result(mutation_id: int, written: WriteResult) -> MutationResult:
    record = RecordRef(entity=reports.ENTITY, id=written.report.id, version=written.report.version)
    status = ResultStatus(written.kind)
    if status is ResultStatus.conflict:
        return MutationResult(
            id=mutation_id,
            status=status,
            record=record,
            fields=written.conflicting,
            server=written.server_values,
        )
    return MutationResult(
        id=mutation_id,
        status=status,
        record=record,
        ignored_fields=written.ignored or None,
    )
