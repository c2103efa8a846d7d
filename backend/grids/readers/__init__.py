"""Read a city's unit-grid file (单元网格) into plain Python features.

Cities hand us their grid layer in whatever their GIS vendor exported: GeoJSON,
a zipped Shapefile (often with GBK attributes and no ``.cpg``), a GeoPackage, or a KML
from Google Earth / 奥维. Uploads are untrusted, so this package:

* decides the format from the file's *content* (magic bytes), not its name — browsers
  and chat apps rename files freely;
* opens zips with Python first to refuse path traversal, zip bombs, encrypted or corrupt
  members before GDAL sees them (GDAL then reads the Shapefile in place via ``/vsizip/``,
  nothing is extracted to disk);
* picks the DBF text encoding itself (UTF-8, then ``.cpg``, then the DBF language-driver
  byte, then GB18030), because GDAL's fallback for a DBF without ``.cpg`` is ISO-8859-1,
  which turns every Chinese grid name into mojibake without any error;
* turns every GDAL/pyogrio failure into a :class:`GridFileUnreadable` (or a sibling with
  a stable ``code``), with server paths scrubbed from the message.

Coordinates are returned exactly as stored; reprojection is :mod:`backend.geo.crs`'s job,
fed by :attr:`SourceDataset.declared_crs`.

Layers: a Shapefile zip and a GeoPackage must have exactly one candidate layer or the
caller names one (``layer=``); several → :class:`GridFileLayerAmbiguous` listing them.
KML is different: exporters put each 街道/社区 in its own ``<Folder>``, which GDAL exposes
as one layer per folder, so without ``layer=`` all layers that contain at least one
polygon are concatenated in file order, and layers without any polygon (label points,
road lines) are skipped. A zip holding a ``.kml`` and no ``.shp`` (a KMZ) is read as KML.

Layout: :mod:`.sniff` decides the format, :mod:`.zip_safety` vets a zip and picks its
Shapefile or KML, :mod:`.dbf_encoding` picks the DBF encoding, :mod:`.ogr` reads a layer
through pyogrio and checks its values and geometries, :mod:`.formats` holds one reader
per format; :mod:`.errors`, :mod:`.limits` and :mod:`.dataset` are shared by all of them.
"""

from __future__ import annotations

from pathlib import Path

from backend.grids.readers.dataset import SourceDataset, SourceFeature
from backend.grids.readers.dbf_encoding import choose_dbf_encoding
from backend.grids.readers.errors import (
    GridFileFormatUnsupported,
    GridFileLayerAmbiguous,
    GridFileLayerNotFound,
    GridFileTooLarge,
    GridFileUnreadable,
    GridGeometryType,
)
from backend.grids.readers.formats import _read_geojson, _read_gpkg, _read_kml, _read_zip_source
from backend.grids.readers.limits import MAX_UNCOMPRESSED_BYTES, MAX_ZIP_ENTRIES
from backend.grids.readers.sniff import detect_format
from backend.grids.readers.zip_safety import _open_zip, _plan_zip

__all__ = [
    "MAX_UNCOMPRESSED_BYTES",
    "MAX_ZIP_ENTRIES",
    "GridFileFormatUnsupported",
    "GridFileLayerAmbiguous",
    "GridFileLayerNotFound",
    "GridFileTooLarge",
    "GridFileUnreadable",
    "GridGeometryType",
    "SourceDataset",
    "SourceFeature",
    "choose_dbf_encoding",
    "detect_format",
    "read_grid_file",
]


def read_grid_file(
    path: Path, *, layer: str | None = None, max_features: int = 200_000
) -> SourceDataset:
    """Read a grid file of any supported format.

    ``layer`` selects a layer in a multi-layer file (Shapefile name without ``.shp``,
    GeoPackage table, KML folder); it is ignored for GeoJSON, which has one layer.
    More than ``max_features`` features raises :class:`GridFileTooLarge`.
    Every failure is an :class:`~backend.core.errors.XunchaError` subclass.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "zip":
        with _open_zip(path) as zf:
            source = _plan_zip(path, zf, layer)
        return _read_zip_source(source, path.name, max_features)
    if kind == "geojson":
        return _read_geojson(path, max_features)
    if kind == "gpkg":
        return _read_gpkg(path, layer, max_features)
    return _read_kml(str(path), path.name, layer, max_features)
