"""A device's scope: the grids its user is responsible for today, in the active grid version.

Reports located in those grids and every report the user made are in scope too (see
docs/sync-protocol.md §3); this module pins down the grid part, which changes with
reassignments and activations, and names each distinct scope by a hash that cursors carry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.core.types import utcnow
from backend.grids import repository as grids
from backend.grids.models import AssigneeKind, GridAssignment, GridCell
from backend.sync.models import ScopeSnapshot


@dataclass(frozen=True)
class Scope:
    user_id: int
    grid_version_id: int | None
    # The activation that made grid_version_id active: the version number of grid records.
    grid_activation_seq: int
    grid_codes: tuple[str, ...]  # sorted
    hash: str


def scope_hash(activation_seq: int, grid_version_id: int | None, codes: tuple[str, ...]) -> str:
    text = json.dumps([activation_seq, grid_version_id, list(codes)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def current_scope(session: Session, user_id: int, username: str, today: date) -> Scope:
    active = grids.active_version_and_seq(session)
    version_id, activation_seq = active if active is not None else (None, 0)
    codes: tuple[str, ...] = ()
    if version_id is not None:
        assigned = (
            select(GridAssignment.grid_code)
            .where(
                GridAssignment.kind == AssigneeKind.person.value,
                GridAssignment.assignee_ref == username,
                GridAssignment.effective_from <= today,
                or_(GridAssignment.effective_to.is_(None), GridAssignment.effective_to > today),
            )
            .scalar_subquery()
        )
        codes = tuple(
            session.scalars(
                select(GridCell.code)
                .where(GridCell.version_id == version_id, GridCell.code.in_(assigned))
                .order_by(GridCell.code)
            ).all()
        )
    digest = scope_hash(activation_seq, version_id, codes)
    return Scope(user_id, version_id, activation_seq, codes, digest)


def remember(session: Session, scope: Scope) -> None:
    """Keep the scope under its hash so a later cursor naming it can be diffed against."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(ScopeSnapshot)
        .values(
            scope_hash=scope.hash,
            grid_version_id=scope.grid_version_id,
            grid_activation_seq=scope.grid_activation_seq,
            grid_codes=list(scope.grid_codes),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["scope_hash"])
    )


def known(session: Session, digest: str) -> bool:
    return session.get(ScopeSnapshot, digest) is not None


def recall(session: Session, user_id: int, digest: str) -> Scope | None:
    snapshot = session.get(ScopeSnapshot, digest)
    if snapshot is None:
        return None
    codes = tuple(snapshot.grid_codes)
    return Scope(user_id, snapshot.grid_version_id, snapshot.grid_activation_seq, codes, digest)
