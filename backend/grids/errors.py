"""Errors of the grids domain (stable codes; see docs/api-errors.md)."""

from backend.core.errors import Conflict, NotFound


class GridVersionNotFound(NotFound):
    code = "grid_version_not_found"


class GridNotFound(NotFound):
    code = "grid_not_found"


class NoActiveGridVersion(Conflict):
    code = "no_active_grid_version"
    title = "No grid version is active; import and activate one first"


class AssignmentNotFound(NotFound):
    code = "assignment_not_found"


class AssignmentOverlap(Conflict):
    code = "assignment_overlap"
    title = "The assignment overlaps an existing one for the same person and role"


class AssignmentAlreadyEnded(Conflict):
    code = "assignment_already_ended"
