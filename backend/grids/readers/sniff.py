"""Decide a grid file's format from its content (magic bytes), never from its name.

Browsers and chat apps rename files freely, so the extension is only used to give a
helpful message for formats we recognise but do not import ("export as GeoJSON…")
instead of "corrupt file". This is also the first size check: a file larger than the
uncompressed cap is refused before anything parses it.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from backend.grids.readers import limits
from backend.grids.readers.errors import (
    GridFileFormatUnsupported,
    GridFileTooLarge,
    GridFileUnreadable,
)

_SNIFF_BYTES = 64 * 1024

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")
_SHP_MAGIC = b"\x00\x00\x27\x0a"
_FGB_MAGIC = b"fgb\x03"
_KML_MARKERS = (b"<kml", b"http://www.opengis.net/kml/", b"http://earth.google.com/kml/")

# Recognised GIS formats we do not import, so the user gets "export as GeoJSON/Shapefile"
# instead of "corrupt file".
_UNSUPPORTED_EXTENSIONS = {
    ".shp": "a bare .shp (zip it together with its .shx, .dbf, .prj and .cpg)",
    ".shx": "a Shapefile index (zip the whole Shapefile instead)",
    ".dbf": "a Shapefile attribute table (zip the whole Shapefile instead)",
    ".dxf": "AutoCAD DXF",
    ".dwg": "AutoCAD DWG",
    ".tab": "MapInfo TAB",
    ".mif": "MapInfo MIF",
    ".gpx": "GPX",
    ".gml": "GML",
    ".csv": "CSV",
    ".xlsx": "Excel",
    ".xls": "Excel",
    ".fgb": "FlatGeobuf",
    ".gdb": "Esri File Geodatabase",
    ".mdb": "Esri Personal Geodatabase",
    ".topojson": "TopoJSON",
}


def detect_format(path: Path) -> str:
    """Classify by magic bytes: ``"zip"``, ``"gpkg"``, ``"kml"`` or ``"geojson"``.

    A zip is only classified as Shapefile or KMZ once its members are listed.
    """
    name = path.name
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise GridFileUnreadable(f"{name}: the file cannot be opened ({exc.strerror})") from exc
    if size == 0:
        raise GridFileUnreadable(f"{name} is empty")
    if size > limits.MAX_UNCOMPRESSED_BYTES:
        raise GridFileTooLarge(
            f"{name} is {size} bytes; the limit is {limits.MAX_UNCOMPRESSED_BYTES}",
            limit_bytes=limits.MAX_UNCOMPRESSED_BYTES,
        )
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head.startswith(_SQLITE_MAGIC):
        if len(head) < 100:
            raise GridFileUnreadable(f"{name} is a truncated SQLite/GeoPackage file")
        if head[68:72] not in _GPKG_APPLICATION_IDS:
            raise GridFileFormatUnsupported(
                f"{name} is an SQLite database but not a GeoPackage", detected="sqlite"
            )
        return "gpkg"
    if head.startswith(_SHP_MAGIC):
        raise _unsupported(name, _UNSUPPORTED_EXTENSIONS[".shp"], "shp")
    if head.startswith(_FGB_MAGIC):
        raise _unsupported(name, "FlatGeobuf", "flatgeobuf")
    text = _strip_text_prefix(head)
    if text.startswith(b"{"):
        if b'"Topology"' in text[:4096]:
            raise _unsupported(name, "TopoJSON", "topojson")
        if b'"geometryType"' in text or b'"esriGeometry' in text:
            raise _unsupported(name, "Esri JSON", "esrijson")
        return "geojson"
    if text.startswith(b"<"):
        lowered = text.lower()
        if any(marker in lowered for marker in _KML_MARKERS):
            return "kml"
        for marker, label in ((b"<gpx", "GPX"), (b"opengis.net/gml", "GML")):
            if marker in lowered:
                raise _unsupported(name, label, label.lower())
    suffix = path.suffix.lower()
    if suffix in _UNSUPPORTED_EXTENSIONS:
        raise _unsupported(name, _UNSUPPORTED_EXTENSIONS[suffix], suffix.lstrip("."))
    raise GridFileUnreadable(
        f"{name} is not a recognisable GIS file; upload GeoJSON, a zipped Shapefile, "
        "a GeoPackage (.gpkg) or KML"
    )


def _strip_text_prefix(head: bytes) -> bytes:
    # Windows tools love a UTF-8 BOM; JSON/XML may start with whitespace.
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    return head.lstrip(b" \t\r\n")


def _unsupported(name: str, label: str, detected: str) -> GridFileFormatUnsupported:
    return GridFileFormatUnsupported(
        f"{name} looks like {label}, which cannot be imported; export the grids as "
        "GeoJSON, a zipped Shapefile, a GeoPackage or KML",
        detected=detected,
    )
