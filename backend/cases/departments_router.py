"""Departments: listed for every signed-in user (dispatchers pick one), managed by admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.deps import AdminUser, CurrentUser
from backend.accounts.schemas import UserAdminOut
from backend.cases import departments
from backend.cases.schemas import DepartmentIn, DepartmentList, DepartmentOut, UserDepartmentIn
from backend.core.deps import SessionDep
from backend.core.params import IdPath
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1", tags=["departments"], responses=PROBLEM_RESPONSES
)


@router.get("/departments", operation_id="listDepartments")
def list_departments(
    session: SessionDep,
    _user: CurrentUser,
    include_inactive: Annotated[bool, Query()] = False,
) -> DepartmentList:
    """Responsible units (处置部门) cases can be dispatched to, by code."""
    rows = departments.listing(session, include_inactive=include_inactive)
    return DepartmentList(items=[DepartmentOut.model_validate(r) for r in rows])


@router.put("/departments", operation_id="putDepartment")
def put_department(body: DepartmentIn, session: SessionDep, admin: AdminUser) -> DepartmentOut:
    """Create or update a department (set `active: false` to retire it)."""
    row = departments.upsert(
        session, code=body.code, name=body.name, kind=body.kind, unit_code=body.unit_code,
        active=body.active, actor=admin.username,
    )  # fmt: skip
    return DepartmentOut.model_validate(row)


@router.post("/users/{user_id}/department", operation_id="setUserDepartment", tags=["users"])
def set_user_department(
    user_id: IdPath, body: UserDepartmentIn, session: SessionDep, admin: AdminUser
) -> UserAdminOut:
    """Attach a department handler to their department (null: detach)."""
    user = departments.set_user_department(session, user_id, body.department_code, admin.username)
    return UserAdminOut.model_validate(user)
