"""Pull: a device's changes since its cursor, scoped, paged, never skipping (sync-protocol §5, §6).

A cursor is either in *snapshot* mode (first sync: grids, then reports, in id order, while
remembering the change-log position at which the snapshot began) or in *feed* mode (the
change log after a position). Scope changes since the cursor was issued are sent first, as
puts and ``out_of_scope`` deletes. What is delivered for a changed record is always its
current state, so a record appearing twice is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.accounts.models import User
from backend.cases import task_feed, tasks
from backend.cases.models import Task, TaskStatus
from backend.core.geojson import geometry_dict
from backend.devices import repository as devices_repository
from backend.grids.models import GridCell
from backend.reports import repository as reports_repository
from backend.reports import service as reports
from backend.reports.models import Report
from backend.sync import changelog
from backend.sync.changelog import Position
from backend.sync.scope import Scope, current_scope, known, recall
from sync_protocol.cursor import Cursor, CursorCodec, InvalidCursor
from sync_protocol.digest import digest_of
from sync_protocol.directives import Directive
from sync_protocol.messages import (
    MAX_PULL_LIMIT,
    Change,
    DeleteReason,
    PullRequest,
    PullResponse,
)
from sync_protocol.timefmt import format_rfc3339

GRID = "grid"
REPORT = reports.ENTITY
TASK = tasks.ENTITY


@dataclass(frozen=True)
class PullContext:
    user_id: int
    username: str
    user: User
    device_id: str
    last_mutation_id: int
    codec: CursorCodec
    today: date
    directives: list[Directive]


def pull(
    snapshot: Session,
    ctx: PullContext,
    request: PullRequest,
    remember: Callable[[Scope], None],
) -> PullResponse:
    """Answer one pull.

    ``snapshot`` reads everything in one database snapshot (REPEATABLE READ on PostgreSQL), so
    the changes, the digest and ``last_mutation_id`` describe the same moment. ``remember``
    stores a scope not seen before under its hash, in a write transaction of its own: a pull
    otherwise only reads.
    """
    scope = current_scope(snapshot, ctx.user_id, ctx.username, ctx.today)
    if not known(snapshot, scope.hash):
        remember(scope)
    ctx = replace(
        ctx, last_mutation_id=devices_repository.last_mutation_id(snapshot, ctx.device_id)
    )
    if request.cursor is None:
        cursor = _fresh_snapshot_cursor(snapshot, ctx, scope)
        return _snapshot_page(snapshot, ctx, scope, cursor, [], request.limit)
    try:
        cursor = ctx.codec.decode(request.cursor, ctx.device_id)
    except InvalidCursor:
        return _reset(ctx)
    prefix: list[Change] = []
    feed_codes = scope.grid_codes
    if cursor.scope_hash != scope.hash:
        previous = recall(snapshot, ctx.user_id, cursor.scope_hash)
        if previous is None or cursor.mode == "snapshot":
            return _reset(ctx)  # a snapshot under a changed scope is simply restarted
        prefix = _scope_changes(snapshot, ctx, previous, scope)
        if len(prefix) > MAX_PULL_LIMIT:
            return _reset(ctx)  # a huge reassignment: a fresh, paged snapshot is cheaper
        cursor = replace(cursor, scope_hash=scope.hash)
        # Changes since the cursor to records in grids that just left the scope must still
        # be read: a record deleted or moved there since needs its tombstone too.
        feed_codes = tuple(sorted(set(previous.grid_codes) | set(scope.grid_codes)))
    if cursor.mode == "snapshot":
        return _snapshot_page(snapshot, ctx, scope, cursor, prefix, request.limit)
    oldest = changelog.horizon(snapshot)
    if Position(cursor.xid, cursor.seq) < oldest:
        return _reset(ctx)
    return _feed_page(snapshot, ctx, scope, feed_codes, cursor, prefix, request.limit, oldest)


# -- snapshot ---------------------------------------------------------------------------------


def _fresh_snapshot_cursor(session: Session, ctx: PullContext, scope: Scope) -> Cursor:
    start = changelog.head(session)
    return Cursor(
        device_id=ctx.device_id,
        mode="snapshot",
        xid=start.xid,
        seq=start.seq,
        after_entity=None,
        after_id=None,
        scope_hash=scope.hash,
        issued_at=int(time.time()),
    )


def _snapshot_page(
    session: Session,
    ctx: PullContext,
    scope: Scope,
    cursor: Cursor,
    prefix: list[Change],
    limit: int,
) -> PullResponse:
    changes = list(prefix)
    room = max(limit - len(changes), 1)
    after_id = cursor.after_id
    if cursor.after_entity in (None, GRID):
        cells = _grids(session, scope, after_id if cursor.after_entity == GRID else None, room)
        changes.extend(_grid_put(c, scope) for c in cells)
        if len(cells) == room:
            next_cursor = replace(cursor, after_entity=GRID, after_id=cells[-1].code)
            return _respond(ctx, changes, next_cursor, has_more=True)
        after_id, room = None, room - len(cells)
    if cursor.after_entity in (None, GRID, REPORT):
        after_report = after_id if cursor.after_entity == REPORT else None
        page = reports_repository.visible_page(
            session, ctx.user_id, scope.grid_codes, after_report, room
        )
        changes.extend(_report_puts(session, page))
        if len(page) == room:
            next_cursor = replace(cursor, after_entity=REPORT, after_id=page[-1].id)
            return _respond(ctx, changes, next_cursor, has_more=True)
        after_id, room = None, room - len(page)
    if room > 0:
        after_task = after_id if cursor.after_entity == TASK else None
        open_tasks = task_feed.visible_page(session, ctx.user, after_task, room)
        changes.extend(_task_puts(session, open_tasks))
        if len(open_tasks) == room:
            next_cursor = replace(cursor, after_entity=TASK, after_id=open_tasks[-1].id)
            return _respond(ctx, changes, next_cursor, has_more=True)
    # Snapshot complete: continue with the change log from where the snapshot began.
    feed = replace(cursor, mode="feed", after_entity=None, after_id=None)
    return _respond(ctx, changes, feed, has_more=True)


def _grids(session: Session, scope: Scope, after_code: str | None, limit: int) -> list[GridCell]:
    if scope.grid_version_id is None or not scope.grid_codes:
        return []
    query = (
        select(GridCell)
        .where(GridCell.version_id == scope.grid_version_id, GridCell.code.in_(scope.grid_codes))
        .order_by(GridCell.code)
        .limit(limit)
    )
    if after_code is not None:
        query = query.where(GridCell.code > after_code)
    return list(session.scalars(query).all())


# -- feed -------------------------------------------------------------------------------------


def _feed_page(
    session: Session,
    ctx: PullContext,
    scope: Scope,
    feed_codes: tuple[str, ...],
    cursor: Cursor,
    prefix: list[Change],
    limit: int,
    oldest: Position,
) -> PullResponse:
    below = changelog.visibility_limit(session)
    after = Position(cursor.xid, cursor.seq)
    room = max(limit - len(prefix), 1)
    entries = changelog.read_after(session, after, feed_codes, ctx.user_id, room + 1, below)
    has_more = len(entries) > room
    entries = entries[:room]
    changes = prefix + _current_state(
        session, ctx, scope, [(e.entity, e.entity_id) for e in entries]
    )
    if entries:
        after = Position(entries[-1].xid, entries[-1].seq)
    caught_up = not has_more and not changelog.has_withheld(
        session, after, feed_codes, ctx.user_id, below
    )
    digest = None
    if caught_up:
        # Nothing in scope lies between here and the head of the log: jump there, so a device
        # in a quiet area neither rescans other areas' entries nor falls behind the pruning.
        after = max(after, changelog.head(session, below=below, oldest=oldest))
        digest = _scope_digest(session, ctx, scope)
    cursor = replace(cursor, xid=after.xid, seq=after.seq)
    return _respond(ctx, changes, cursor, has_more=has_more, digest=digest)


def _current_state(
    session: Session, ctx: PullContext, scope: Scope, keys: list[tuple[str, str]]
) -> list[Change]:
    """The current state of each record the entries name, in entry order, once each."""
    unique = list(dict.fromkeys(keys))
    by_key = {
        **{
            (REPORT, c.id): c
            for c in _reports_now(session, ctx, scope, [i for e, i in unique if e == REPORT])
        },
        **{(TASK, c.id): c for c in _tasks_now(session, ctx, [i for e, i in unique if e == TASK])},
    }
    return [by_key[key] for key in unique if key in by_key]


def _tasks_now(session: Session, ctx: PullContext, task_ids: list[str]) -> list[Change]:
    found = task_feed.many(session, task_ids)
    visible = [t for t in found.values() if tasks.is_visible(t, ctx.user)]
    changes = _task_puts(session, visible)
    for task in found.values():
        if task not in visible:
            reason: DeleteReason = "out_of_scope" if task.status == TaskStatus.open else "deleted"
            changes.append(
                Change(
                    entity=TASK,
                    id=task.id,
                    op="delete",
                    version=task.version,
                    data=None,
                    reason=reason,
                )
            )
    return changes


def _reports_now(
    session: Session, ctx: PullContext, scope: Scope, report_ids: list[str]
) -> list[Change]:
    unique = report_ids
    found = reports_repository.many(session, unique)
    in_scope = set(scope.grid_codes)
    visible: list[Report] = []
    changes_by_id: dict[str, Change] = {}
    for report_id in unique:
        report = found.get(report_id)
        if report is None:
            continue
        if report.deleted_at is not None:
            changes_by_id[report_id] = _report_delete(report, "deleted")
        elif report.reporter_id == ctx.user_id or report.grid_code in in_scope:
            visible.append(report)
        else:
            changes_by_id[report_id] = _report_delete(report, "out_of_scope")
    for change in _report_puts(session, visible):
        changes_by_id[change.id] = change
    return [changes_by_id[rid] for rid in unique if rid in changes_by_id]


# -- scope changes ----------------------------------------------------------------------------


def _scope_changes(session: Session, ctx: PullContext, before: Scope, after: Scope) -> list[Change]:
    old_codes, new_codes = set(before.grid_codes), set(after.grid_codes)
    version_changed = before.grid_activation_seq != after.grid_activation_seq
    changes = [
        Change(
            entity=GRID,
            id=code,
            op="delete",
            version=max(after.grid_activation_seq, 1),
            data=None,
            reason="out_of_scope",
        )
        for code in sorted(old_codes - new_codes)
    ]
    entering = new_codes if version_changed else new_codes - old_codes
    scope_entering = replace(after, grid_codes=tuple(sorted(entering)))
    changes.extend(
        _grid_put(c, after) for c in _grids(session, scope_entering, None, len(entering) + 1)
    )
    # Reports in grids that left the scope (unless the user made them), then those entering.
    leaving = [
        r
        for r in reports_repository.in_grids(session, sorted(old_codes - new_codes))
        if r.reporter_id != ctx.user_id
    ]
    changes.extend(_report_delete(r, "out_of_scope") for r in leaving)
    arriving = [
        r
        for r in reports_repository.in_grids(session, sorted(new_codes - old_codes))
        if r.reporter_id != ctx.user_id
    ]
    changes.extend(_report_puts(session, arriving))
    return changes


# -- shaping ----------------------------------------------------------------------------------


def _grid_put(cell: GridCell, scope: Scope) -> Change:
    data: dict[str, Any] = {
        "code": cell.code,
        "name": cell.name,
        "version_id": cell.version_id,
        "district_code": cell.district_code,
        "street_code": cell.street_code,
        "community_code": cell.community_code,
        "community_name": cell.community_name,
        "zone_tier": cell.zone_tier,
        "geometry": geometry_dict(cell.geom),
    }
    return Change(
        entity=GRID,
        id=cell.code,
        op="put",
        version=scope.grid_activation_seq,
        data=data,
        reason=None,
    )


def _report_puts(session: Session, page: list[Report]) -> list[Change]:
    photos = reports_repository.photos_of(session, [r.id for r in page])
    return [
        Change(
            entity=REPORT,
            id=r.id,
            op="put",
            version=r.version,
            data=reports.payload(r, photos[r.id]),
            reason=None,
        )
        for r in page
    ]


def _task_puts(session: Session, rows: list[Task]) -> list[Change]:
    data = task_feed.payloads(session, rows)
    return [
        Change(entity=TASK, id=t.id, op="put", version=t.version, data=data[t.id], reason=None)
        for t in rows
    ]


def _report_delete(report: Report, reason: DeleteReason) -> Change:
    return Change(
        entity=REPORT, id=report.id, op="delete", version=report.version, data=None, reason=reason
    )


def _scope_digest(session: Session, ctx: PullContext, scope: Scope) -> tuple[str, int]:
    records = [(GRID, code, scope.grid_activation_seq) for code in scope.grid_codes]
    records.extend(
        (REPORT, rid, version)
        for rid, version in reports_repository.visible_versions(
            session, ctx.user_id, scope.grid_codes
        )
    )
    records.extend(
        (TASK, tid, version) for tid, version in task_feed.visible_versions(session, ctx.user)
    )
    return digest_of(records)


def _respond(
    ctx: PullContext,
    changes: list[Change],
    cursor: Cursor,
    *,
    has_more: bool,
    digest: tuple[str, int] | None = None,
) -> PullResponse:
    return PullResponse(
        changes=changes,
        cursor=ctx.codec.encode(replace(cursor, issued_at=int(time.time()))),
        has_more=has_more,
        reset=False,
        digest=None if digest is None else digest[0],
        record_count=None if digest is None else digest[1],
        last_mutation_id=ctx.last_mutation_id,
        directives=ctx.directives,
        server_time=format_rfc3339(datetime.now(UTC)),
    )


def _reset(ctx: PullContext) -> PullResponse:
    return PullResponse(
        changes=[],
        cursor=None,
        has_more=False,
        reset=True,
        digest=None,
        record_count=None,
        last_mutation_id=ctx.last_mutation_id,
        directives=ctx.directives,
        server_time=format_rfc3339(datetime.now(UTC)),
    )
