"""One reader per supported format, built on the shared OGR layer code.

The formats differ in how a layer is chosen and which CRS they declare: GeoJSON has one
layer and defaults to WGS-84 by RFC 7946; a GeoPackage or a Shapefile zip must have
exactly one candidate layer unless the caller names one; a KML is read folder by folder,
concatenating the folders that hold polygons. Each reader also enforces the feature cap
and refuses an empty file.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

from backend.grids.readers.dataset import SourceDataset, SourceFeature
from backend.grids.readers.errors import (
    GridFileLayerAmbiguous,
    GridFileLayerNotFound,
    GridFileUnreadable,
)
from backend.grids.readers.ogr import (
    _check_polygonal,
    _features,
    _has_polygon,
    _Layer,
    _list_layers,
    _read_layer,
    _require_features,
    _too_many,
)
from backend.grids.readers.zip_safety import _ZipSource


def _file_mentions_crs(path: Path) -> bool:
    """Does a GeoJSON file carry a (pre-RFC 7946) "crs" member anywhere?"""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return mm.find(b'"crs"') != -1


# A JSON string escape GDAL cannot keep: \u0000 (it ends the text there, silently) or a
# UTF-16 surrogate escape that is not half of a pair (it becomes U+FFFD). Only escapes count:
# the backslash must not itself be escaped (an odd run of backslashes before the "u").
_LOSSY_ESCAPE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u(?:0000"
    rb"|[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<![dD][89abAB][0-9a-fA-F]{2}\\u)[dD][c-fC-F][0-9a-fA-F]{2})"
)


def _refuse_lossy_escapes(path: Path) -> None:
    """Refuse a GeoJSON whose text GDAL would change without a word (see _LOSSY_ESCAPE)."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        found = _LOSSY_ESCAPE.search(mm) if mm.find(b"\\u") != -1 else None
        if found is not None:
            escape = found.group().decode("ascii").lstrip("\\")
            raise GridFileUnreadable(
                f"{path.name} holds the escape \\{escape} at byte {found.end() - 6}: a NUL "
                "character or half of a surrogate pair, which no text column can hold"
            )


def _geojson_crs(path: Path, gdal_crs: str | None) -> str | None:
    """The CRS a GeoJSON declares, explicitly or by RFC 7946.

    Without a "crs" member RFC 7946 fixes WGS-84 lon/lat, and GDAL says EPSG:4326 —
    or EPSG:4979 when the coordinates have a Z, which we drop anyway. Report plain
    EPSG:4326 in both cases so callers see one spelling. (Chinese exports sometimes
    hold GCJ-02 or projected coordinates under that default; only the person importing
    can know, so the importer lets them override.)
    """
    if _file_mentions_crs(path):
        return gdal_crs
    return "EPSG:4326"


def _read_geojson(path: Path, max_features: int) -> SourceDataset:
    display = path.name
    _refuse_lossy_escapes(path)
    src = f"GeoJSON:{path}"
    layer = _read_layer(src, display, layer=None, encoding=None, limit=max_features + 1)
    if len(layer.geometry) > max_features:
        raise _too_many(display, max_features)
    features = _features(layer, 0, display)
    _require_features(features, display)
    declared = _geojson_crs(path, layer.crs)
    return SourceDataset(format="geojson", layer=None, declared_crs=declared, features=features)


def _pick_layer(layers: list[tuple[str, str | None]], wanted: str | None, display: str) -> str:
    spatial = [name for name, geometry_type in layers if geometry_type is not None]
    if not spatial:
        raise GridFileUnreadable(f"{display} has no layer with geometries")
    if wanted is not None:
        if wanted in spatial:
            return wanted
        raise GridFileLayerNotFound(
            f"{display} has no layer {wanted!r}; available: {', '.join(spatial)}",
            layers=spatial,
        )
    if len(spatial) > 1:
        raise GridFileLayerAmbiguous(
            f"{display} has {len(spatial)} layers; choose one of: {', '.join(spatial)}",
            layers=spatial,
        )
    return spatial[0]


def _read_gpkg(path: Path, wanted: str | None, max_features: int) -> SourceDataset:
    display = path.name
    src = f"GPKG:{path}"
    name = _pick_layer(_list_layers(src, display), wanted, display)
    layer = _read_layer(src, display, layer=name, encoding=None, limit=max_features + 1)
    if len(layer.geometry) > max_features:
        raise _too_many(display, max_features)
    features = _features(layer, 0, display)
    _require_features(features, display)
    return SourceDataset(format="gpkg", layer=name, declared_crs=layer.crs, features=features)


def _read_zip_source(source: _ZipSource, display: str, max_features: int) -> SourceDataset:
    if source.format == "kml":
        return _read_kml(source.gdal_path, display, None, max_features)
    layer = _read_layer(
        source.gdal_path, display, layer=None, encoding=source.encoding, limit=max_features + 1
    )
    if len(layer.geometry) > max_features:
        raise _too_many(display, max_features)
    features = _features(layer, 0, display)
    _require_features(features, display)
    return SourceDataset(
        format="shapefile", layer=source.layer, declared_crs=layer.crs, features=features
    )


def _read_kml(src: str, display: str, wanted: str | None, max_features: int) -> SourceDataset:
    layers = _list_layers(src, display)
    names = [name for name, _ in layers]
    if wanted is not None and wanted not in names:
        raise GridFileLayerNotFound(
            f"{display} has no folder/layer {wanted!r}; available: {', '.join(names)}",
            layers=names,
        )
    features: list[SourceFeature] = []
    used: list[str] = []
    first_offender: tuple[_Layer, int] | None = None
    position = 0  # running feature position across all layers, in file order
    for name in names:
        if wanted is not None and name != wanted:
            continue
        budget = max_features - len(features) + 1
        layer = _read_layer(src, display, layer=name, encoding=None, limit=budget)
        count = len(layer.geometry)
        if wanted is None and not _has_polygon(layer.geometry):
            # A folder of labels or roads next to the grid folders: not grids, skip it.
            if count and first_offender is None:
                first_offender = (layer, position)
            position += count
            continue
        features.extend(_features(layer, position, display, kml=True))
        used.append(name)
        position += count
        if len(features) > max_features:
            raise _too_many(display, max_features)
    if not features and first_offender is not None:
        # Only non-polygon layers: report the first of them like any other file.
        _check_polygonal(first_offender[0].geometry, first_offender[1], display)
    _require_features(features, display)
    # KML coordinates are WGS-84 lon/lat by definition (OGC KML 2.2, §6.2).
    return SourceDataset(
        format="kml",
        layer=used[0] if len(used) == 1 else None,
        declared_crs="EPSG:4326",
        features=features,
    )
