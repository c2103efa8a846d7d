"""Use cases of the grids domain. Services flush, never commit: the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from backend.audit import service as audit
from backend.core.errors import InvalidInput
from backend.core.types import utcnow
from backend.geo.crs import LocationCRS, normalise_location
from backend.grids import repository
from backend.grids.errors import (
    AssignmentAlreadyEnded,
    AssignmentNotFound,
    AssignmentOverlap,
    GridNotFound,
    GridVersionNotFound,
    NoActiveGridVersion,
)
from backend.grids.index_registry import GridIndexRegistry
from backend.grids.matcher import GridIndex, GridMatch, MatchKind
from backend.grids.models import AssigneeKind, GridAssignment, GridCell, GridVersion
from backend.grids.repository import CellFilter

# -- versions -------------------------------------------------------------------------------


def get_version(session: Session, version_id: int) -> GridVersion:
    version = repository.get_version(session, version_id)
    if version is None:
        raise GridVersionNotFound(f"grid version {version_id} does not exist")
    return version


def list_versions(session: Session) -> list[GridVersion]:
    return list(repository.list_versions(session))


def resolve_version_id(session: Session, version_id: int | None) -> int:
    """The requested version, or the active one when none is named."""
    if version_id is not None:
        return get_version(session, version_id).id
    active = repository.active_version_id(session)
    if active is None:
        raise NoActiveGridVersion("no grid version is active; import and activate one first")
    return active


def activate_version(session: Session, version_id: int, actor: str = "system") -> GridVersion:
    """Make ``version_id`` the one active version (atomic: one transaction, rows locked).

    Every process picks the new version up on its next match; a match already running
    finishes on the version it started with and records that version.
    """
    repository.lock_versions(session)
    version = get_version(session, version_id)
    repository.set_active(session, version_id, utcnow())
    session.refresh(version)
    audit.record(session, actor, "grid_version.activate", "grid_version", version_id)
    return version


# -- cells ----------------------------------------------------------------------------------


def get_cell(session: Session, code: str, version_id: int | None = None) -> GridCell:
    resolved = resolve_version_id(session, version_id)
    cell = repository.get_cell(session, resolved, code)
    if cell is None:
        raise GridNotFound(f"grid {code} does not exist in grid version {resolved}")
    return cell


def list_cells(session: Session, flt: CellFilter) -> tuple[list[GridCell], str | None]:
    return repository.list_cells(session, flt)


# -- matching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocationMatch:
    """A device location normalised to WGS-84 and matched to a grid, with review flags."""

    lon: float
    lat: float
    source_crs: LocationCRS
    accuracy_m: float | None
    match: GridMatch
    flags: tuple[str, ...]


def match_location(
    session: Session,
    registry: GridIndexRegistry,
    lon: float,
    lat: float,
    crs: LocationCRS,
    accuracy_m: float | None,
    poor_accuracy_m: float = 50.0,
) -> LocationMatch:
    """Normalise a device location and match it to the active grid version."""
    index = registry.active(session)
    if index is None:
        raise NoActiveGridVersion("no grid version is active; import and activate one first")
    return locate(index, lon, lat, crs, accuracy_m, poor_accuracy_m)


def locate(
    index: GridIndex,
    lon: float,
    lat: float,
    crs: LocationCRS,
    accuracy_m: float | None,
    poor_accuracy_m: float,
) -> LocationMatch:
    """Normalise and match with an index the caller already holds (one lookup per batch)."""
    wgs_lon, wgs_lat = normalise_location(lon, lat, crs)
    found = index.match(wgs_lon, wgs_lat)
    flags = _flags(found, accuracy_m, poor_accuracy_m)
    return LocationMatch(wgs_lon, wgs_lat, crs, accuracy_m, found, flags)


def _flags(found: GridMatch, accuracy_m: float | None, poor_accuracy_m: float) -> tuple[str, ...]:
    flags: list[str] = []
    if found.kind is MatchKind.outside:
        flags.append("outside_grids")
    elif found.kind is MatchKind.nearest:
        flags.append("snapped_to_nearest_grid")
    elif found.kind is MatchKind.edge:
        flags.append("on_grid_boundary")
    if len(found.candidates) > 1 and found.kind is MatchKind.inside:
        flags.append("overlapping_grids")
    if accuracy_m is None:
        flags.append("accuracy_unknown")
    elif accuracy_m > poor_accuracy_m:
        flags.append("poor_accuracy")
    return tuple(flags)


# -- responsibility -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewAssignment:
    kind: AssigneeKind
    role: str
    assignee_name: str
    effective_from: date
    effective_to: date | None = None
    assignee_ref: str | None = None
    phone: str | None = None
    note: str | None = None


def assign(
    session: Session, grid_code: str, new: NewAssignment, actor: str | None
) -> GridAssignment:
    """Record who is responsible for a grid from a date; overlapping duplicates are refused."""
    get_cell(session, grid_code)  # the grid must exist in the active version
    repository.lock_grid_assignments(session, grid_code)
    clashes = repository.overlapping_assignments(
        session, grid_code, new.role, new.assignee_name, new.effective_from, new.effective_to
    )
    if clashes:
        raise AssignmentOverlap(
            f"{new.assignee_name} already holds role {new.role} on grid {grid_code} "
            f"from {clashes[0].effective_from}",
            assignment_id=clashes[0].id,
        )
    return repository.add_assignment(
        session,
        GridAssignment(grid_code=grid_code, created_by=actor, **new.__dict__),
    )


def end_assignment(
    session: Session, grid_code: str, assignment_id: int, end: date, actor: str | None
) -> GridAssignment:
    """Close an assignment's period; the row stays as history."""
    repository.lock_grid_assignments(session, grid_code)
    assignment = repository.get_assignment(session, assignment_id)
    if assignment is None or assignment.grid_code != grid_code:
        raise AssignmentNotFound(f"assignment {assignment_id} does not exist on grid {grid_code}")
    if assignment.effective_to is not None and assignment.effective_to <= end:
        raise AssignmentAlreadyEnded(
            f"assignment {assignment_id} already ended on {assignment.effective_to}"
        )
    if end <= assignment.effective_from:
        raise InvalidInput(
            f"end date {end} must be after the start date {assignment.effective_from}"
        )
    assignment.effective_to = end
    assignment.ended_at = utcnow()
    assignment.ended_by = actor
    session.flush()
    return assignment


def assignments(session: Session, grid_code: str, at: date | None) -> list[GridAssignment]:
    return list(repository.list_assignments(session, grid_code, at))
