"""Writing grid cells to GIS files (GeoJSON streamed; GeoPackage through pyogrio/GDAL)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import shapely

from backend.core.geojson import feature
from backend.grids.feature_mapping import FIELDS
from backend.grids.models import GridCell

EXPORT_FIELDS = (*FIELDS, "area_m2")


def _properties(cell: GridCell) -> dict[str, object]:
    return {name: getattr(cell, name) for name in EXPORT_FIELDS} | {"version_id": cell.version_id}


def write_cells(
    path: Path,
    fmt: Literal["geojson", "gpkg"],
    cells: Iterable[GridCell],
    on_cell: Callable[[], None] = lambda: None,
) -> int:
    """Write cells to ``path`` atomically (a temp file renamed at the end); returns the count."""
    # Same suffix: GDAL picks behaviour by extension and warns on an unexpected one.
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        count = (_write_geojson if fmt == "geojson" else _write_gpkg)(tmp, cells, on_cell)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _write_geojson(path: Path, cells: Iterable[GridCell], on_cell: Callable[[], None]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write('{"type":"FeatureCollection","features":[\n')
        for cell in cells:
            if count:
                out.write(",\n")
            out.write(
                json.dumps(feature(cell.geom, _properties(cell), cell.code), ensure_ascii=False)
            )
            count += 1
            on_cell()
        out.write("\n]}\n")
    return count


def _write_gpkg(path: Path, cells: Iterable[GridCell], on_cell: Callable[[], None]) -> int:
    from pyogrio.raw import write

    rows = []
    for cell in cells:
        rows.append(cell)
        on_cell()
    fields = [*EXPORT_FIELDS, "version_id"]
    field_data = [
        np.array(
            [getattr(c, name) for c in rows], dtype=np.float64 if name == "area_m2" else object
        )
        if name != "version_id"
        else np.array([c.version_id for c in rows], dtype=np.int64)
        for name in fields
    ]
    geometry = shapely.to_wkb(np.array([c.geom for c in rows], dtype=object))
    write(
        str(path),
        geometry=geometry,
        field_data=field_data,
        fields=fields,
        geometry_type="MultiPolygon",
        crs="EPSG:4326",
        driver="GPKG",
        layer="grids",
    )
    return len(rows)
