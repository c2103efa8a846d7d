"""Demo data: the synthetic city's grids, demo accounts and grid responsibilities.

Idempotent: running it again on a database that already has the demo leaves it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.accounts import repository as accounts_repository
from backend.accounts import service as accounts_service
from backend.accounts.models import Role
from backend.categories import service as categories
from backend.core.db import transaction
from backend.core.runtime import Runtime
from backend.demo import cases as demo_cases
from backend.demo.city import STREET_NAMES, DemoCity
from backend.grids import importer, repository
from backend.grids.codes import GridCodeScheme
from backend.grids.models import AssigneeKind, GridAssignment, GridCell

DEMO_PASSWORD = "xuncha-demo"
ASSIGNMENTS_FROM = date(2026, 1, 1)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    display_name: str


DEMO_ACCOUNTS = (
    DemoAccount("admin", Role.admin, "系统管理员"),
    DemoAccount("intake", Role.intake_operator, "受理员 王芳"),
    DemoAccount("shiftlead", Role.shift_lead, "值班长 李强"),
    DemoAccount("dispatcher", Role.dispatcher, "派遣员 陈静"),
    DemoAccount("handler", Role.department_handler, "执法中队 刘洋"),
    *(
        DemoAccount(f"inspector{i + 1:02d}", Role.inspector, f"{name}街道网格员")
        for i, name in enumerate(STREET_NAMES)
    ),
)


@dataclass(frozen=True)
class DemoSummary:
    created_grids: bool
    grid_count: int
    accounts: tuple[DemoAccount, ...]


def seed_demo(runtime: Runtime, progress: Callable[[str], None] | None = None) -> DemoSummary:
    step = progress or (lambda _stage: None)
    created = False
    with transaction(runtime.sessions) as session:
        has_grids = repository.active_version_id(session) is not None
    if not has_grids:
        path = DemoCity().write_geojson(runtime.settings.var_dir / "demo" / "demo-city.geojson")
        with transaction(runtime.sessions) as session:
            _import_city(session, runtime, path, step)
        created = True
    with transaction(runtime.sessions) as session:
        step("creating demo accounts")
        _ensure_accounts(session)
        step("assigning grid responsibilities")
        _ensure_assignments(session)
        if not categories.tree(session):
            step("loading the default violation categories")
            categories.import_categories(session, categories.default_file())
        step("adding departments and sample cases")
        demo_cases.ensure_departments(session)
        demo_cases.ensure_cases(session)
        version_id = repository.active_version_id(session)
        assert version_id is not None
        count = repository.count_cells(session, version_id)
    return DemoSummary(created, count, DEMO_ACCOUNTS)


def _import_city(
    session: Session, runtime: Runtime, path: Path, step: Callable[[str], None]
) -> None:
    settings = runtime.settings
    importer.import_grid_file(
        session,
        path,
        importer.ImportOptions(
            crs="EPSG:4490",
            label="演示区 demo city",
            activate=True,
            actor="demo",
            overlap_tolerance_m2=settings.grid_overlap_tolerance_m2,
            gap_tolerance_m2=settings.grid_gap_tolerance_m2,
        ),
        GridCodeScheme(settings.grid_code_pattern),
        progress=step,
    )


def _ensure_accounts(session: Session) -> None:
    for account in DEMO_ACCOUNTS:
        if accounts_repository.by_username(session, account.username) is None:
            accounts_service.create_user(
                session,
                username=account.username,
                password=DEMO_PASSWORD,
                role=account.role,
                display_name=account.display_name,
            )


def _ensure_assignments(session: Session) -> None:
    if session.scalar(select(GridAssignment.id).limit(1)) is not None:
        return
    version_id = repository.active_version_id(session)
    rows = session.execute(
        select(GridCell.code, GridCell.street_code, GridCell.street_name).where(
            GridCell.version_id == version_id
        )
    ).all()
    street_codes = sorted({r.street_code for r in rows})
    inspector_of = {code: f"inspector{i + 1:02d}" for i, code in enumerate(street_codes)}
    for code, street_code, street_name in rows:
        session.add_all(
            [
                _demo_assignment(
                    code,
                    AssigneeKind.person,
                    "网格员",
                    f"{street_name}网格员",
                    inspector_of[street_code],
                ),
                _demo_assignment(
                    code, AssigneeKind.unit, "责任单位", f"{street_name}办事处", street_code
                ),
            ]
        )
    session.flush()


def _demo_assignment(
    code: str, kind: AssigneeKind, role: str, name: str, ref: str
) -> GridAssignment:
    return GridAssignment(
        grid_code=code,
        kind=kind.value,
        role=role,
        assignee_name=name,
        assignee_ref=ref,
        effective_from=ASSIGNMENTS_FROM,
        created_by="demo",
    )
