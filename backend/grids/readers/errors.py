"""Error classes of the grid-file readers, each with a stable ``code``.

Every failure of :func:`backend.grids.readers.read_grid_file` — however deep in zipfile,
GDAL, pyogrio or GEOS it starts — must reach the caller as one of these, so that the API
and CLI can report a stable code instead of a library's raw exception. They live in their
own module because every other part of the package raises them.
"""

from __future__ import annotations

from backend.core.errors import InvalidInput, PayloadTooLarge


class GridFileUnreadable(InvalidInput):
    code = "grid_file_unreadable"
    title = "The grid file cannot be read"


class GridFileFormatUnsupported(InvalidInput):
    code = "grid_file_format_unsupported"
    title = "The grid file format is not supported"


class GridFileLayerAmbiguous(InvalidInput):
    code = "grid_file_layer_ambiguous"
    title = "The grid file has several layers; choose one"


class GridFileLayerNotFound(InvalidInput):
    code = "grid_file_layer_not_found"
    title = "The requested layer is not in the grid file"


class GridFileTooLarge(PayloadTooLarge):
    code = "grid_file_too_large"
    title = "The grid file is too large"


class GridGeometryType(InvalidInput):
    code = "grid_geometry_type"
    title = "Grid features must be polygons"
