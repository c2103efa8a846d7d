"""Duplicate suggestions for the command centre (docs/duplicates.md).

Read-only: merging is the case transition ``void`` with ``into_case_id``. Only command-centre
roles and admins ask, and both the case and every suggestion must lie in the caller's unit:
a suggestion from another district is not shown (nor counted against ``limit``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from backend.accounts import scope
from backend.accounts.deps import require_roles
from backend.accounts.models import Role, User
from backend.cases import duplicates
from backend.cases.errors import CaseOutOfScope
from backend.core.deps import SessionDep
from backend.core.params import IdPath
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1/cases", tags=["cases"], responses=PROBLEM_RESPONSES
)
Coordinator = Annotated[
    User,
    Depends(require_roles(Role.intake_operator, Role.shift_lead, Role.dispatcher, Role.admin)),
]


class DuplicateOut(BaseModel):
    case_id: int
    status: str = Field(description="Never a final status (declined, voided, closed)")
    distance_m: float = Field(description="Metres on the WGS-84 ellipsoid, to 0.1 m")
    created_at: datetime
    report_count: int
    grid_code: str | None
    address: str


class DuplicatesOut(BaseModel):
    case_id: int
    category_code: str
    radius_m: float = Field(description="The category's duplicate radius in force")
    window_minutes: int = Field(description="Calendar minutes either side of the case's created_at")
    items: list[DuplicateOut] = Field(description="Nearest first")


@router.get("/{case_id}/duplicates", operation_id="listCaseDuplicates")
def list_duplicates(
    case_id: IdPath,
    session: SessionDep,
    user: Coordinator,
    limit: Annotated[int, Query(ge=1, le=50, description="At most this many")] = 10,
) -> DuplicatesOut:
    """Open cases of the same category near this one in place and time: merge candidates."""
    case = duplicates.load_case(session, case_id)
    if not scope.covers(user, case.grid_code):
        raise CaseOutOfScope("this case is outside your area")
    # Admins see the whole city; a command-centre user without a unit too.
    unit = None if user.role == Role.admin else user.unit_code
    found = duplicates.suggest(session, case, limit=limit, unit_code=unit)
    rule = duplicates.rule_for(session, case.category_code)
    return DuplicatesOut(
        case_id=case.id,
        category_code=case.category_code,
        radius_m=rule.radius_m,
        window_minutes=int(rule.window.total_seconds()) // 60,
        items=[
            DuplicateOut(
                case_id=s.case_id,
                status=s.status,
                distance_m=round(s.distance_m, 1),
                created_at=s.created_at,
                report_count=s.report_count,
                grid_code=s.grid_code,
                address=s.address,
            )
            for s in found
            # The query already kept the caller's unit; this is the one rule, checked again.
            if scope.covers(user, s.grid_code)
        ],
    )
