"""What the readers return: plain, JSON-friendly features with shapely geometries.

Every format ends up in the same :class:`SourceDataset`, so the importer never needs to
know whether the grids came from GeoJSON, a Shapefile, a GeoPackage or KML. Kept apart so
that the OGR layer code and the per-format readers can both build it without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import shapely


@dataclass(frozen=True)
class SourceFeature:
    index: int  # 0-based position in the file, for error messages
    properties: dict[str, Any]  # JSON-serialisable attribute values
    geometry: shapely.Geometry | None


@dataclass(frozen=True)
class SourceDataset:
    format: str  # "geojson" | "shapefile" | "gpkg" | "kml"
    layer: str | None
    declared_crs: str | None  # pyogrio's crs string ("EPSG:4547" or WKT); None if absent
    features: list[SourceFeature]
