"""Responsible units (处置部门) and who works for them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from backend.accounts import service as accounts
from backend.accounts.models import Role, User
from backend.audit import service as audit
from backend.cases import repository, tasks
from backend.cases.errors import CaseInputInvalid, DepartmentNotFound
from backend.cases.models import Department
from backend.core.types import utcnow


def listing(session: Session, *, include_inactive: bool = False) -> Sequence[Department]:
    return repository.departments(session, include_inactive=include_inactive)


def upsert(
    session: Session,
    *,
    code: str,
    name: str,
    kind: str,
    unit_code: str | None,
    active: bool,
    actor: str,
) -> Department:
    """Create a department or update it (departments are retired, never deleted: cases and
    steps name them)."""
    row = repository.department(session, code)
    created = row is None
    if row is None:
        row = Department(code=code, created_at=utcnow())
        session.add(row)
    row.name, row.kind, row.unit_code, row.active = name, kind, unit_code, active
    session.flush()
    audit.record(
        session, actor, "department.create" if created else "department.update", "department",
        code, name=name, kind=kind, unit=unit_code, active=active,
    )  # fmt: skip
    return row


def set_user_department(
    session: Session, user_id: int, department_code: str | None, actor: str
) -> User:
    """Attach a department handler to their unit (None: detach); effective immediately."""
    user = accounts.get_user(session, user_id)
    if department_code is not None:
        if user.role != Role.department_handler.value:
            raise CaseInputInvalid("only department handlers belong to a department")
        department = repository.department(session, department_code)
        if department is None or not department.active:
            raise DepartmentNotFound(f"no active department {department_code!r}")
    before, user.department_code = user.department_code, department_code
    session.flush()
    # The user's phones gain the new department's open handle tasks and drop the old one's
    # through their feed (without this, their digest would no longer match and they'd reset).
    for code in {before, department_code} - {None}:
        tasks.notify_department_change(session, str(code), user.id)
    audit.record(
        session, actor, "user.department", "user", user.id, before=before, after=department_code
    )
    return user
