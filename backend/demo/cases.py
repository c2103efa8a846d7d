"""Demo departments and a few cases from the hotline, complaints and video patrol, walked to
different steps, so the review screens, tiles and overdue list have something to show."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.accounts import repository as accounts
from backend.cases import departments, service
from backend.cases.models import Case, CaseSource
from backend.grids import repository as grids
from backend.grids.models import GridCell

DEMO_DEPARTMENTS = (
    ("zfzd-1", "城管执法一中队", "enforcement"),
    ("hw-1", "环卫所", "sanitation"),
    ("scjg-1", "市场监管所", "market"),
)
HANDLER_DEPARTMENT = "zfzd-1"
# (source, category, description, how far along: actions in order)
DEMO_CASES = (
    (CaseSource.hotline_12345, "0504", "市民来电：沿街商铺店外经营，占用人行道", ()),
    (CaseSource.hotline_12319, "0102", "来电反映：小区门口垃圾堆积两天未清运", ("accept",)),
    (CaseSource.complaint, "0510", "群众投诉：夜间露天烧烤油烟扰民", ("accept", "file")),
    (CaseSource.video_patrol, "0501", "视频巡查发现：路口流动摊贩", ("file", "dispatch")),
    (CaseSource.leader_assigned, "0101", "领导交办：违章搭建彩钢棚", ("file", "dispatch")),
    (CaseSource.hotline_12345, "0201", "来电反映：楼道小广告", ("decline",)),
)


def ensure_departments(session: Session) -> None:
    existing = {d.code for d in departments.listing(session, include_inactive=True)}
    for code, name, kind in DEMO_DEPARTMENTS:
        if code not in existing:
            departments.upsert(
                session, code=code, name=name, kind=kind, unit_code=None, active=True,
                actor="demo",
            )  # fmt: skip
    handler = accounts.by_username(session, "handler")
    if handler is not None and handler.department_code is None:
        departments.set_user_department(session, handler.id, HANDLER_DEPARTMENT, "demo")


def ensure_cases(session: Session) -> None:
    if session.scalar(select(Case.id).limit(1)) is not None:
        return
    admin = accounts.by_username(session, "admin")
    version_id = grids.active_version_id(session)
    assert admin is not None and version_id is not None
    cells = session.scalars(
        select(GridCell).where(GridCell.version_id == version_id).order_by(GridCell.code)
    ).all()
    step = max(len(cells) // len(DEMO_CASES), 1)
    for i, (source, category, description, actions) in enumerate(DEMO_CASES):
        cell = cells[(i * step) % len(cells)]
        point = cell.geom.representative_point()
        new = service.NewCase(
            source, None, category, description, f"{cell.name}附近", point.x, point.y, cell.code
        )
        case = service.open_from_source(session, admin, new)
        for action in actions:
            given = service.ActionInput(
                comment="演示" if action == "decline" else "",
                department_code=HANDLER_DEPARTMENT if action == "dispatch" else None,
            )
            service.act(session, admin, case.id, action, given)
