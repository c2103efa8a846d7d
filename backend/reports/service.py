"""Report use cases: create, edit and delete (from phones, through sync) and review status.

Every write bumps the report's version, records per field which version changed it (what
conflict detection compares a phone's ``base_version`` with) and appends to the sync change
log in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import shapely
from sqlalchemy.orm import Session

from backend.audit import service as audit
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.geometry import bounds_columns_values
from backend.geo.crs import LocationCRS, normalise_location
from backend.grids.matcher import GridIndex
from backend.grids.service import locate
from backend.media.models import Photo
from backend.reports import repository
from backend.reports.models import (
    CLIENT_FIELDS,
    EDIT_LOCKED_STATUSES,
    LOCKED_STATUSES,
    Report,
    ReportPurpose,
    ReportStatus,
)
from backend.sync.changelog import record_change
from sync_protocol.conflicts import check_delete, merge_update

ENTITY = "report"
SERVER_OWNED = frozenset({"status", "assignee"})


class ReportRejected(Exception):
    """A mutation that can never apply; becomes a ``rejected`` result with this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ReportNotFound(NotFound):
    code = "report_not_found"


class InvalidStatusChange(Conflict):
    code = "invalid_status_change"


@dataclass(frozen=True)
class LocationInput:
    lon: float
    lat: float
    crs: str
    accuracy_m: float
    fix_time: datetime
    provider: str

    def as_dict(self) -> dict[str, Any]:
        """The stored/delivered form, so a phone's value compares equal to the server's."""
        return {
            "lon": self.lon,
            "lat": self.lat,
            "crs": self.crs,
            "accuracy_m": self.accuracy_m,
            "fix_time": _utc_text(self.fix_time),
            "provider": self.provider,
        }


@dataclass(frozen=True)
class PhotoInput:
    photo_id: str
    sha256: str
    size: int
    content_type: str


@dataclass(frozen=True)
class NewReport:
    report_id: str
    category_code: str
    description: str
    address: str
    location: LocationInput
    captured_at: datetime
    photos: tuple[PhotoInput, ...]
    digest: str  # sha256 of the canonical create arguments: equal digest = same report
    photo_role: str = "before"  # "after" for a task's evidence (处理反馈, 核查)


@dataclass(frozen=True)
class Locator:
    """Normalises and matches locations against the grid index resolved once per batch."""

    index: GridIndex | None
    poor_accuracy_m: float

    def place(self, location: LocationInput) -> dict[str, Any]:
        crs = LocationCRS(location.crs)
        if self.index is None:
            lon, lat = normalise_location(location.lon, location.lat, crs)
            grid: dict[str, Any] = {
                "grid_code": None,
                "grid_version_id": None,
                "match_kind": None,
                "match_distance_m": None,
                "match_candidates": [],
                "flags": ["no_grid_version"],
            }
        else:
            found = locate(
                self.index,
                location.lon,
                location.lat,
                crs,
                location.accuracy_m,
                self.poor_accuracy_m,
            )
            lon, lat, m = found.lon, found.lat, found.match
            grid = {
                "grid_code": m.grid_code,
                "grid_version_id": m.grid_version_id,
                "match_kind": m.kind.value,
                "match_distance_m": m.distance_m,
                "match_candidates": list(m.candidates),
                "flags": list(found.flags),
            }
        point = shapely.Point(lon, lat)
        return {
            "loc_lon": location.lon,
            "loc_lat": location.lat,
            "loc_crs": location.crs,
            "loc_accuracy_m": location.accuracy_m,
            "loc_fix_time": location.fix_time,
            "loc_provider": location.provider,
            "geom": point,
            **bounds_columns_values(point),
            **grid,
        }


@dataclass
class WriteResult:
    kind: Literal["applied", "conflict", "gone", "locked"]
    report: Report
    conflicting: tuple[str, ...] = ()
    server_values: dict[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    # True only when this write made the report's current version. An idempotent repeat or
    # a no-op edit is "applied" too, but the version it reports is someone else's: treating
    # it as the device's own would let that device's later edits skip a real conflict.
    produced: bool = False


def create(
    session: Session, *, user_id: int, device_id: str, new: NewReport, locator: Locator
) -> WriteResult:
    """Store a phone's new report; the same report sent again is the same success."""
    existing = repository.get(session, new.report_id)
    if existing is not None:
        if existing.reporter_id == user_id and existing.create_digest == new.digest:
            return WriteResult("gone" if existing.deleted_at else "applied", existing)
        raise ReportRejected(
            "duplicate_id", f"report {new.report_id} already exists with different content"
        )
    taken = repository.photo_ids_taken(session, [p.photo_id for p in new.photos])
    if taken:
        raise ReportRejected("duplicate_photo_id", f"photo {taken[0]} belongs to another report")
    now = datetime.now(UTC)
    report = Report(
        id=new.report_id,
        reporter_id=user_id,
        device_id=device_id,
        create_digest=new.digest,
        category_code=new.category_code,
        description=new.description,
        address=new.address,
        captured_at=new.captured_at,
        captured_offset_min=_offset_minutes(new.captured_at),
        received_at=now,
        updated_at=now,
        status=ReportStatus.submitted.value,
        version=1,
        field_versions={name: 1 for name in CLIENT_FIELDS},
        **locator.place(new.location),
    )
    photos = [
        Photo(
            report_id=new.report_id,
            photo_id=p.photo_id,
            position=i,
            sha256=p.sha256,
            size=p.size,
            content_type=p.content_type,
            role=new.photo_role,
        )
        for i, p in enumerate(new.photos)
    ]
    repository.add(session, report, photos)
    record_change(session, ENTITY, report.id, grid_code=report.grid_code, owner_user_id=user_id)
    return WriteResult("applied", report, produced=True)


def update(
    session: Session,
    *,
    user_id: int,
    report_id: str,
    base_version: int,
    changes: Mapping[str, Any],
    ignored: tuple[str, ...],
    own_versions: frozenset[int],
    locator: Locator,
) -> WriteResult:
    """Apply a phone's field edits made on ``base_version``; overlaps become conflicts.

    ``ignored``: server-owned fields the phone tried to change (reported back, never applied);
    ``own_versions``: versions this device produced, which never conflict with its own edits.
    """
    report = _own_report_for_update(session, report_id, user_id)
    wanted = {k: (v.as_dict() if isinstance(v, LocationInput) else v) for k, v in changes.items()}
    outcome = merge_update(
        report.version,
        report.field_versions,
        report.snapshot(),
        base_version,
        wanted,
        SERVER_OWNED,
        _state(report),
        own_versions=own_versions,
    )
    ignored = tuple(sorted(set(ignored) | set(outcome.ignored)))
    if outcome.kind in ("gone", "locked"):
        return WriteResult(outcome.kind, report)
    if outcome.kind == "conflict":
        current = report.snapshot()
        return WriteResult(
            "conflict",
            report,
            conflicting=tuple(outcome.conflicting),
            server_values={f: current[f] for f in outcome.conflicting},
        )
    if outcome.kind == "noop" or not outcome.apply:
        return WriteResult("applied", report, ignored=ignored)
    previous_grid = report.grid_code
    new_version = report.version + 1
    for name, value in outcome.apply.items():
        if name == "location":
            location = changes["location"]
            assert isinstance(location, LocationInput)
            evidence = [f for f in report.flags if f.startswith(EVIDENCE_PREFIXES)]
            for column, placed in locator.place(location).items():
                setattr(report, column, placed)
            report.flags = [*report.flags, *evidence]  # a new location keeps photo evidence
        else:
            setattr(report, name, value)
    report.field_versions = {**report.field_versions, **dict.fromkeys(outcome.apply, new_version)}
    _bump(report, new_version)
    record_change(
        session,
        ENTITY,
        report.id,
        grid_code=report.grid_code,
        prev_grid_code=previous_grid if previous_grid != report.grid_code else None,
        owner_user_id=report.reporter_id,
    )
    return WriteResult("applied", report, ignored=ignored, produced=True)


def delete(
    session: Session,
    *,
    user_id: int,
    report_id: str,
    base_version: int,
    own_versions: frozenset[int] = frozenset(),
) -> WriteResult:
    """Withdraw a report (soft delete: it leaves every device as a tombstone)."""
    report = _own_report_for_update(session, report_id, user_id)
    verdict = check_delete(report.version, base_version, _state(report), own_versions=own_versions)
    if verdict == "conflict":
        # Tell the phone what changed since the version it deleted: those fields' values
        # as it would receive them (photos, flags and case_id included).
        current = payload(report, repository.photos_of(session, [report.id])[report.id])
        changed = sorted(
            f for f, v in report.field_versions.items() if v > base_version and f in current
        )
        changed = changed or sorted(report.snapshot())
        return WriteResult(
            "conflict",
            report,
            conflicting=tuple(changed),
            server_values={f: current[f] for f in changed if f in current},
        )
    if verdict != "applied":
        return WriteResult(verdict, report)
    report.deleted_at = datetime.now(UTC)
    _bump(report, report.version + 1)
    _record(session, report)
    return WriteResult("applied", report, produced=True)


def add_photos(
    session: Session,
    *,
    user_id: int,
    report_id: str,
    role: str,
    photos: tuple[PhotoInput, ...],
) -> WriteResult:
    """Declare more photos (e.g. 整改后 pictures of a fix); the same set again is a no-op."""
    report = _own_report_for_update(session, report_id, user_id)
    if report.deleted_at is not None:
        return WriteResult("gone", report)
    if report.status in LOCKED_STATUSES or report.purpose != ReportPurpose.violation.value:
        return WriteResult("locked", report)
    existing = {p.photo_id: p for p in repository.photos_of(session, [report.id])[report.id]}
    repeated = [p for p in photos if p.photo_id in existing]
    if (
        repeated
        and len(repeated) == len(photos)
        and all(
            existing[p.photo_id].sha256 == p.sha256 and existing[p.photo_id].role == role
            for p in repeated
        )
    ):
        return WriteResult("applied", report)  # a replay of the same declaration
    taken = repository.photo_ids_taken(session, [p.photo_id for p in photos])
    if taken:
        raise ReportRejected("duplicate_photo_id", f"photo {taken[0]} is already declared")
    start = len(existing)
    session.add_all(
        Photo(
            report_id=report.id,
            photo_id=p.photo_id,
            position=start + i,
            sha256=p.sha256,
            size=p.size,
            content_type=p.content_type,
            role=role,
        )
        for i, p in enumerate(photos)
    )
    new_version = report.version + 1
    report.field_versions = {**report.field_versions, "photos": new_version}
    _bump(report, new_version)
    session.flush()
    _record(session, report)
    return WriteResult("applied", report, produced=True)


def set_status(
    session: Session, report_id: str, status: ReportStatus, actor: str = "system"
) -> Report:
    """The command centre's decision on a report (server-owned: phones cannot change it)."""
    report = repository.get_for_update(session, report_id)
    if report is None or report.deleted_at is not None:
        raise ReportNotFound(f"report {report_id} does not exist")
    if report.status in LOCKED_STATUSES:
        raise InvalidStatusChange(f"report {report_id} is {report.status}; it cannot change")
    if report.status == status.value:
        return report
    new_version = report.version + 1
    previous = report.status
    report.status = status.value
    report.field_versions = {**report.field_versions, "status": new_version}
    _bump(report, new_version)
    _record(session, report)
    audit.record(
        session, actor, "report.status", "report", report.id, before=previous, after=status.value
    )
    return report


def attach_to_case(session: Session, report_id: str, case_id: int) -> Report | None:
    """Make ``report_id`` evidence of another case (a merge); phones see the new ``case_id``.
    None when the report was deleted meanwhile."""
    report = repository.get_for_update(session, report_id)
    if report is None or report.deleted_at is not None:
        return None
    if report.case_id != case_id:
        new_version = report.version + 1
        report.case_id = case_id
        report.field_versions = {**report.field_versions, "case_id": new_version}
        _bump(report, new_version)
        _record(session, report)
    return report


EVIDENCE_PREFIXES = ("photo_", "after_photo_")


def refresh_evidence_flags(
    session: Session, report: Report, *, photos_changed: bool = False
) -> bool:
    """Fold the report's photos' evidence flags into the report's own flags.

    The flags and the photos' states are server-owned like the status: a change bumps the
    version and reaches phones and reviewers through the change log. Returns whether it did.
    """
    photos = repository.photos_of(session, [report.id])[report.id]
    from_photos = {flag for p in photos for flag in (p.flags or [])}
    own = [f for f in report.flags if not f.startswith(EVIDENCE_PREFIXES)]
    flags = own + sorted(from_photos)
    if flags == report.flags and not photos_changed:
        return False
    new_version = report.version + 1
    changed = ["photos"] if photos_changed else []
    if flags != report.flags:
        changed.append("flags")
    report.flags = flags
    report.field_versions = {**report.field_versions, **dict.fromkeys(changed, new_version)}
    _bump(report, new_version)
    _record(session, report)
    return True


def get(session: Session, report_id: str) -> Report:
    report = repository.get(session, report_id)
    if report is None:
        raise ReportNotFound(f"report {report_id} does not exist")
    return report


def payload(report: Report, photos: list[Photo]) -> dict[str, Any]:
    """A report as a phone receives it (docs/sync-protocol.md §3)."""
    grid = None
    if report.grid_code is not None or report.match_kind is not None:
        grid = {
            "code": report.grid_code,
            "version_id": report.grid_version_id,
            "match_kind": report.match_kind,
            "distance_m": report.match_distance_m,
            "candidates": report.match_candidates,
        }
    return {
        "id": report.id,
        "reporter_id": report.reporter_id,
        "category_code": report.category_code,
        "description": report.description,
        "address": report.address,
        "location": report.location_dict(),
        "wgs84": {"lon": report.geom.x, "lat": report.geom.y},
        "grid": grid,
        "flags": report.flags,
        "captured_at": _device_text(report.captured_at, report.captured_offset_min),
        "received_at": _utc_text(report.received_at),
        "status": report.status,
        "purpose": report.purpose,
        "case_id": report.case_id,
        "photos": [
            {
                "photo_id": p.photo_id,
                "sha256": p.sha256,
                "size": p.size,
                "content_type": p.content_type,
                "role": p.role,
                "state": p.state,
                "flags": p.flags or [],
            }
            for p in photos
        ],
        "version": report.version,
    }


def _own_report_for_update(session: Session, report_id: str, user_id: int) -> Report:
    report = repository.get_for_update(session, report_id)
    if report is None:
        raise ReportRejected("not_found", f"report {report_id} does not exist")
    if report.reporter_id != user_id:
        raise ReportRejected("forbidden", "only the reporter's devices may edit this report")
    return report


def _record(session: Session, report: Report) -> None:
    record_change(
        session, ENTITY, report.id, grid_code=report.grid_code, owner_user_id=report.reporter_id
    )


def _state(report: Report) -> Literal["open", "deleted", "closed"]:
    """Phones may edit and delete a violation report until intake accepts its case; evidence
    reports (handling, verification) are never edited."""
    if report.deleted_at is not None:
        return "deleted"
    if report.purpose != ReportPurpose.violation.value:
        return "closed"
    return "closed" if report.status in EDIT_LOCKED_STATUSES else "open"


def _bump(report: Report, new_version: int) -> None:
    report.version = new_version
    report.updated_at = datetime.now(UTC)


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset()
    if offset is None:
        raise InvalidInput("timestamps must carry a UTC offset")
    return int(offset.total_seconds() // 60)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _device_text(moment: datetime, offset_min: int) -> str:
    """The device's capture time shown in the device's own offset, as it was sent."""
    from datetime import timedelta, timezone

    return moment.astimezone(timezone(timedelta(minutes=offset_min))).isoformat()
