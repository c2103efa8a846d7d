"""Errors of the coordinators' review API over cases (stable codes; see docs/api-errors.md)."""

from backend.core.errors import InvalidInput


class InvalidCaseCursor(InvalidInput):
    """Same code as the grids list's cursor error: one thing for a client to handle."""

    code = "invalid_cursor"


class InvalidTimeRange(InvalidInput):
    code = "invalid_time_range"
    title = "The time range is not valid"


class ExportTooLarge(InvalidInput):
    code = "export_too_large"
    title = "Too many cases for one export; narrow the filters"


class TileOutOfRange(InvalidInput):
    code = "tile_out_of_range"
    title = "No such tile"
