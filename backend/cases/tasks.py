"""Tasks for phones: 处置 (handle) for a department's handlers, 核查 (verify) for an inspector.

A task reaches devices through sync: each change appends one change-log entry per person who
should hear about it (owner_user_id), so the pull feed, which already follows a user's own
entries, delivers it — and delivers a tombstone to the person who just lost it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import Session

from backend.accounts.models import Role, User
from backend.cases import repository
from backend.cases.models import Case, Task, TaskKind, TaskStatus
from backend.sync.changelog import record_change

ENTITY = "task"


class TaskRejected(Exception):
    """A ``task.complete`` that can never apply; becomes a ``rejected`` sync result."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Completion:
    task: Task
    done_by_report: bool  # already completed by this very report: an idempotent repeat


def visible_filter(user: User) -> Any:
    """Open tasks a user's devices hold: their own, or their department's handle tasks."""
    mine = Task.assignee_id == user.id
    if user.role == Role.department_handler.value and user.department_code is not None:
        mine = or_(
            mine,
            (Task.department_code == user.department_code) & (Task.kind == TaskKind.handle.value),
        )
    return mine & (Task.status == TaskStatus.open.value)


def is_visible(task: Task, user: User) -> bool:
    if task.status != TaskStatus.open.value:
        return False
    if task.assignee_id == user.id:
        return True
    return (
        task.kind == TaskKind.handle.value
        and user.role == Role.department_handler.value
        and user.department_code is not None
        and task.department_code == user.department_code
    )


def create_handle(session: Session, case: Case) -> Task:
    assert case.department_code is not None
    task = _new(session, case, TaskKind.handle, department_code=case.department_code)
    _notify(session, task, repository.department_handlers(session, case.department_code))
    return task


def create_verify(session: Session, case: Case, today: date) -> Task:
    """核查 goes to an inspector responsible for the grid today: the reporter if they still
    are (they know the place), else the first named one; nobody → unassigned, listed for the
    shift lead to assign."""
    inspectors = (
        repository.grid_inspectors(session, case.grid_code, today) if case.grid_code else []
    )
    chosen = next((u for u in inspectors if u.id == case.reporter_id), None)
    if chosen is None and inspectors:
        chosen = inspectors[0]
    task = _new(session, case, TaskKind.verify, assignee_id=chosen.id if chosen else None)
    _notify(session, task, [chosen.id] if chosen else [])
    return task


def reassign_verify(session: Session, case: Case, inspector: User) -> str | None:
    """Returns the previous assignee's username (None: it was unassigned)."""
    open_verify = repository.open_tasks(session, case.id, TaskKind.verify)
    if not open_verify:
        create = _new(session, case, TaskKind.verify, assignee_id=inspector.id)
        _notify(session, create, [inspector.id])
        return None
    task = open_verify[0]
    previous_id = task.assignee_id
    if previous_id == inspector.id:
        return inspector.username
    task.assignee_id = inspector.id
    _bump(task)
    # The previous holder's devices get the change too: for them it is now a tombstone.
    _notify(session, task, [inspector.id, *([previous_id] if previous_id else [])])
    previous = session.get(User, previous_id) if previous_id else None
    return previous.username if previous else None


def notify_department_change(session: Session, department_code: str, user_id: int) -> None:
    """Tell one user's devices about every open handle task of a department they joined or
    left: their pull renders each as a put or a tombstone by their current department."""
    for task in repository.open_department_tasks(session, department_code):
        _notify(session, task, [user_id])


def touch_open(session: Session, case_id: int) -> None:
    """The case's evidence changed (photos stored, reports merged in): open tasks get a new
    version so phones holding them pull the new payload."""
    for task in repository.open_tasks(session, case_id):
        _bump(task)
        _notify(session, task, _recipients(session, task))


def cancel_open(session: Session, case_id: int) -> None:
    for task in repository.open_tasks(session, case_id):
        task.status = TaskStatus.cancelled.value
        _bump(task)
        _notify(session, task, _recipients(session, task))


def claim(session: Session, user: User, task_id: str, report_id: str) -> Completion:
    task = repository.task_for_update(session, task_id)
    if task is None:
        raise TaskRejected("not_found", f"task {task_id} does not exist")
    if task.status == TaskStatus.done.value and task.result_report_id == report_id:
        return Completion(task, True)
    if not is_visible(task, user):
        if task.status != TaskStatus.open.value:
            raise TaskRejected("task_closed", f"task {task_id} is {task.status}")
        raise TaskRejected("task_not_yours", f"task {task_id} is not (or no longer) yours")
    return Completion(task, False)


def finish(session: Session, task: Task, outcome: str, report_id: str) -> None:
    task.status = TaskStatus.done.value
    task.outcome = outcome
    task.result_report_id = report_id
    _bump(task)
    _notify(session, task, _recipients(session, task))


def _new(
    session: Session,
    case: Case,
    kind: TaskKind,
    *,
    assignee_id: int | None = None,
    department_code: str | None = None,
) -> Task:
    now = datetime.now(UTC)
    task = Task(
        id=str(uuid.uuid4()),
        case_id=case.id,
        kind=kind.value,
        status=TaskStatus.open.value,
        assignee_id=assignee_id,
        department_code=department_code,
        due_at=case.step_deadline,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(task)
    session.flush()
    return task


def _bump(task: Task) -> None:
    task.version += 1
    task.updated_at = datetime.now(UTC)


def _recipients(session: Session, task: Task) -> list[int]:
    if task.assignee_id is not None:
        return [task.assignee_id]
    if task.department_code is not None:
        return repository.department_handlers(session, task.department_code)
    return []


def _notify(session: Session, task: Task, user_ids: Iterable[int]) -> None:
    for user_id in sorted(set(user_ids)):
        record_change(session, ENTITY, task.id, grid_code=None, owner_user_id=user_id)
