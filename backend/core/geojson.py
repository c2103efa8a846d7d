"""GeoJSON serialisation shared by list and export endpoints."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import shapely

GEOJSON_MEDIA_TYPE = "application/geo+json"


def geometry_dict(geom: shapely.Geometry, precision: int = 7) -> dict[str, Any]:
    """GeoJSON geometry; 7 decimals of a degree is ~1 cm, finer is noise."""
    rounded = shapely.transform(geom, lambda coords: np.round(coords, precision))
    result: dict[str, Any] = json.loads(shapely.to_geojson(rounded))
    return result


def feature(
    geom: shapely.Geometry | None, properties: dict[str, Any], fid: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "Feature",
        "geometry": geometry_dict(geom) if geom is not None else None,
        "properties": properties,
    }
    if fid is not None:
        out["id"] = fid
    return out


def feature_collection(features: list[dict[str, Any]], **members: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features, **members}
