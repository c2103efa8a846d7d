"""Read one layer through pyogrio and turn it into checked, JSON-friendly features.

This is the only place that talks to GDAL. It translates every GDAL/pyogrio/GEOS failure
into :class:`~backend.grids.readers.errors.GridFileUnreadable` with server paths scrubbed
from the message, retries a layer whose text is not valid in the declared encoding as
GB18030, converts attribute values to plain JSON values (NaN → null, bytes → base64,
widened integers back to int, JSON subtype parsed), and refuses non-polygon geometries
while unwrapping polygon-only collections into MultiPolygons.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyogrio
import shapely
from numpy.typing import NDArray
from pyogrio import raw

from backend.core.errors import XunchaError
from backend.grids.readers.dataset import SourceFeature
from backend.grids.readers.errors import GridFileTooLarge, GridFileUnreadable, GridGeometryType

# GDAL otherwise picks the driver by extension first (LIBKML claims any "*.kml"), so
# content-detected GeoJSON and GeoPackage files are opened with an explicit driver.
_DRIVER_PREFIXES = ("GeoJSON:", "GPKG:")

# LIBKML exposes Google Earth display settings as fields; they say nothing about grids.
_KML_PRESENTATION_FIELDS = frozenset(
    {"altitudeMode", "tessellate", "extrude", "visibility", "drawOrder", "icon", "snippet"}
)

# shapely type ids
_POLYGON, _MULTIPOLYGON, _COLLECTION = 3, 6, 7
_MISSING = -1


# --------------------------------------------------------------------------- GDAL access


def _scrub(message: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "<file>")
    message = re.sub(r"/vsizip/\{[^}]*\}", "<zip>", message)
    # GDAL's "specify the driver with a prefix" hint is advice for developers, not users.
    message = message.split("; It might help", 1)[0]
    message = " ".join(message.split())
    return message[:300]


@contextmanager
def _gdal_errors(display: str, *secrets: str) -> Iterator[None]:
    """Translate anything GDAL/pyogrio/GEOS raises into GridFileUnreadable."""
    try:
        yield
    except XunchaError:
        raise
    except Exception as exc:
        detail = _scrub(str(exc), *secrets) or type(exc).__name__
        if "disk image is malformed" in detail or "file is not a database" in detail:
            # SQLite's own wording, behind a long SQL statement: say it plainly.
            detail = "the GeoPackage is damaged or truncated"
        raise GridFileUnreadable(f"{display} cannot be read: {detail}") from exc


@dataclass
class _Layer:
    crs: str | None
    fields: list[str]
    ogr_types: list[str]
    ogr_subtypes: list[str]
    geometry: NDArray[np.object_]  # shapely geometries or None
    columns: list[list[Any]]


def _secrets(src: str) -> tuple[str, ...]:
    """Spellings of the server path that may appear in GDAL messages."""
    bare = src.split(":", 1)[1] if src.startswith(_DRIVER_PREFIXES) else src
    return (src, bare)


def _read_layer(
    src: str, display: str, *, layer: str | None, encoding: str | None, limit: int
) -> _Layer:
    secrets = _secrets(src)

    def attempt(enc: str | None) -> _Layer:
        meta, _fids, wkb, columns = raw.read(
            src,
            layer=layer,
            encoding=enc,
            force_2d=True,
            max_features=limit,
            datetime_as_string=True,
        )
        n = len(columns[0]) if columns else (0 if wkb is None else len(wkb))
        if wkb is None:
            geoms = np.full(n, None, dtype=object)
        else:
            geoms = np.asarray(shapely.from_wkb(wkb, on_invalid="raise"), dtype=object)
        return _Layer(
            crs=meta.get("crs") or None,
            fields=[str(f) for f in meta["fields"]],
            ogr_types=list(meta.get("ogr_types") or []),
            ogr_subtypes=list(meta.get("ogr_subtypes") or []),
            geometry=geoms,
            columns=[_column_values(col) for col in columns],
        )

    with _gdal_errors(display, *secrets):
        try:
            return attempt(encoding)
        except UnicodeDecodeError:
            # Text that is not valid in the declared encoding; in Chinese data that is
            # nearly always GBK. A second failure is reported as unreadable.
            if encoding == "GB18030":
                raise
            return attempt("GB18030")


def _list_layers(src: str, display: str) -> list[tuple[str, str | None]]:
    with _gdal_errors(display, *_secrets(src)):
        listed = pyogrio.list_layers(src)
    return [(str(row[0]), None if row[1] is None else str(row[1])) for row in listed]


# --------------------------------------------------------------------------- value conversion


def _column_values(col: NDArray[Any]) -> list[Any]:
    return [_json_value(v) for v in col.tolist()]


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        # NaN is how pyogrio marks a null in a numeric column; JSON has no NaN.
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _fix_column(values: list[Any], ogr_type: str, ogr_subtype: str) -> list[Any]:
    if ogr_type in {"OFTInteger", "OFTInteger64"}:
        # pyogrio widens an integer column with nulls to float64; undo that.
        return [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
    if ogr_subtype == "OFSTJSON":
        return [_maybe_json(v) for v in values]
    return values


def _maybe_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _properties(layer: _Layer, *, kml: bool) -> list[dict[str, Any]]:
    names = list(layer.fields)
    columns = [
        _fix_column(col, t, s)
        for col, t, s in zip(
            layer.columns,
            layer.ogr_types or [""] * len(names),
            layer.ogr_subtypes or [""] * len(names),
            strict=True,
        )
    ]
    keep = list(range(len(names)))
    if kml:
        keep = [i for i in keep if names[i] not in _KML_PRESENTATION_FIELDS]
        if "description" in names and "Description" not in names:
            names[names.index("description")] = "Description"
    n = len(layer.geometry)
    return [{names[i]: columns[i][row] for i in keep} for row in range(n)]


# --------------------------------------------------------------------------- geometry checks


def _flatten_polygonal(geom: shapely.Geometry) -> list[shapely.Geometry] | None:
    """Polygons inside a (nested) collection, or None if anything else is in there."""
    out: list[shapely.Geometry] = []
    for part in shapely.get_parts(geom).tolist():
        type_id = shapely.get_type_id(part)
        if type_id == _POLYGON:
            out.append(part)
        elif type_id in (_MULTIPOLYGON, _COLLECTION):
            inner = _flatten_polygonal(part)
            if inner is None:
                return None
            out.extend(inner)
        else:
            return None
    return out


def _check_polygonal(
    geoms: NDArray[np.object_], first_index: int, display: str
) -> NDArray[np.object_]:
    """Reject non-polygonal features; turn polygon-only collections into MultiPolygons."""
    type_ids = np.asarray(shapely.get_type_id(geoms))
    ok = np.isin(type_ids, (_POLYGON, _MULTIPOLYGON, _MISSING))
    out = geoms.copy()
    for i in np.flatnonzero(type_ids == _COLLECTION).tolist():
        polys = _flatten_polygonal(geoms[i])
        if polys is not None:
            out[i] = shapely.MultiPolygon(polys)
            ok[i] = True
    bad = np.flatnonzero(~ok)
    if bad.size:
        j = int(bad[0])
        kind = shapely.get_type_id(geoms[j])
        type_name = geoms[j].geom_type if kind != _MISSING else "none"
        raise GridGeometryType(
            f"{display}: feature {first_index + j} is a {type_name}; grids must be "
            f"polygons ({bad.size} non-polygon feature(s) in total)",
            index=first_index + j,
            geometry_type=type_name,
            count=int(bad.size),
        )
    return out


def _has_polygon(geoms: NDArray[np.object_]) -> bool:
    type_ids = np.asarray(shapely.get_type_id(geoms))
    return bool(np.isin(type_ids, (_POLYGON, _MULTIPOLYGON, _COLLECTION)).any())


def _features(
    layer: _Layer, first_index: int, display: str, *, kml: bool = False
) -> list[SourceFeature]:
    geoms = _check_polygonal(layer.geometry, first_index, display)
    props = _properties(layer, kml=kml)
    return [
        SourceFeature(index=first_index + i, properties=p, geometry=g)
        for i, (p, g) in enumerate(zip(props, geoms.tolist(), strict=True))
    ]


def _too_many(display: str, max_features: int) -> GridFileTooLarge:
    return GridFileTooLarge(
        f"{display} has more than {max_features} features", max_features=max_features
    )


def _require_features(features: list[SourceFeature], display: str) -> None:
    if not features:
        raise GridFileUnreadable(f"{display} contains no features")
