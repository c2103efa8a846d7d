"""backend.grids.readers on fixture files built at test time.

Every malformed input must end in a specific XunchaError code, never a raw GDAL,
pyogrio, zipfile or shapely exception.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyogrio import raw

from backend.core.errors import XunchaError
from backend.grids.readers import (
    GridFileFormatUnsupported,
    GridFileLayerAmbiguous,
    GridFileLayerNotFound,
    GridFileTooLarge,
    GridFileUnreadable,
    GridGeometryType,
    SourceDataset,
    choose_dbf_encoding,
    limits,
    read_grid_file,
)

NAMES = ["东湖街道第一网格", "水果湖社区", "珞珈山"]


# --------------------------------------------------------------------------- builders


def lonlat_square(i: int) -> shapely.Geometry:
    x = 114.30 + i * 0.001
    return shapely.box(x, 30.50, x + 0.001, 30.501)


def cgcs_square(i: int) -> shapely.Geometry:
    # EPSG:4547 (CGCS2000 / 3-degree GK CM 114E) metres, around Wuhan.
    x = 528_000.0 + i * 100
    return shapely.box(x, 3_374_000.0, x + 100, 3_374_100.0)


def feature_collection(geoms: Iterable[Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        **extra,
        "features": [
            {
                "type": "Feature",
                "properties": {"BGID": f"42010200{i}", "名称": NAMES[i % 3]},
                "geometry": g if isinstance(g, dict) or g is None else shapely.geometry.mapping(g),
            }
            for i, g in enumerate(geoms)
        ],
    }


def write_json(path: Path, data: Any, *, prefix: bytes = b"") -> Path:
    path.write_bytes(prefix + json.dumps(data, ensure_ascii=False).encode("utf-8"))
    return path


def write_shapefile(
    folder: Path, stem: str, *, encoding: str = "GBK", geoms: list[shapely.Geometry] | None = None
) -> dict[str, bytes]:
    """Shapefile in EPSG:4547 with Chinese attributes; returns its files' bytes by extension."""
    folder.mkdir(parents=True, exist_ok=True)
    geoms = geoms or [cgcs_square(i) for i in range(3)]
    n = len(geoms)
    raw.write(
        str(folder / f"{stem}.shp"),
        shapely.to_wkb(np.array(geoms, dtype=object)),
        [
            np.array([f"42010200{i}" for i in range(n)], dtype=object),
            np.array([NAMES[i % 3] for i in range(n)], dtype=object),
            np.arange(n, dtype=np.int64),
        ],
        ["BGID", "名称", "序号"],
        driver="ESRI Shapefile",
        geometry_type="Polygon",
        crs="EPSG:4547",
        encoding=encoding,
    )
    return {p.suffix: p.read_bytes() for p in folder.iterdir() if p.stem == stem and p.is_file()}


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def shapefile_zip(
    tmp_path: Path,
    *,
    cpg: bytes | None = b"GBK",
    encoding: str = "GBK",
    stem: str = "网格",
    folder: str = "",
    extra: dict[str, bytes] | None = None,
) -> Path:
    files = write_shapefile(tmp_path / "src", "grid", encoding=encoding)
    files.pop(".cpg", None)
    if cpg is not None:
        files[".cpg"] = cpg
    members = {f"{folder}{stem}{ext}": data for ext, data in files.items()}
    members.update(extra or {})
    return write_zip(tmp_path / "grids.zip", members)


def write_gpkg(path: Path, layers: dict[str, list[shapely.Geometry]]) -> Path:
    for name, geoms in layers.items():
        n = len(geoms)
        raw.write(
            str(path),
            shapely.to_wkb(np.array(geoms, dtype=object)),
            [
                np.array([f"{name}-{i}" for i in range(n)], dtype=object),
                np.array(["2024-03-01"] * n, dtype="datetime64[D]"),
                np.array([NAMES[i % 3] for i in range(n)], dtype=object),
            ],
            ["BGID", "划定日期", "名称"],
            layer=name,
            driver="GPKG",
            geometry_type="Polygon",
            crs="EPSG:4490",
        )
    return path


KML_PLACEMARK = """
<Placemark><name>{name}</name><description>{desc}</description>{geometry}</Placemark>"""
KML_POLYGON = (
    "<Polygon><outerBoundaryIs><LinearRing><coordinates>"
    "{x},30.5,0 {x2},30.5,0 {x2},30.501,0 {x},30.501,0 {x},30.5,0"
    "</coordinates></LinearRing></outerBoundaryIs></Polygon>"
)


def kml_polygon(i: int) -> str:
    x = 114.3 + i * 0.001
    return KML_POLYGON.format(x=x, x2=x + 0.001)


def kml_document(folders: dict[str, list[str]]) -> str:
    body = []
    counter = 0
    for folder, geometries in folders.items():
        marks = []
        for geometry in geometries:
            marks.append(
                KML_PLACEMARK.format(
                    name=f"42010200{counter}", desc=NAMES[counter % 3], geometry=geometry
                )
            )
            counter += 1
        body.append(f"<Folder><name>{folder}</name>{''.join(marks)}</Folder>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>武汉网格</name>'
        + "".join(body)
        + "</Document></kml>"
    )


def expect_error(
    error: type[XunchaError], code: str, call: Callable[[], object], tmp_path: Path
) -> XunchaError:
    with pytest.raises(error) as info:
        call()
    assert info.value.code == code
    # Server paths must not leak into client-facing messages.
    assert str(tmp_path) not in info.value.detail
    return info.value


# --------------------------------------------------------------------------- GeoJSON


def test_geojson_features_properties_and_default_crs(tmp_path: Path) -> None:
    path = write_json(tmp_path / "grids.geojson", feature_collection(map(lonlat_square, range(3))))
    ds = read_grid_file(path)
    assert isinstance(ds, SourceDataset)
    assert (ds.format, ds.layer, ds.declared_crs) == ("geojson", None, "EPSG:4326")
    assert [f.index for f in ds.features] == [0, 1, 2]
    assert ds.features[1].properties == {"BGID": "420102001", "名称": "水果湖社区"}
    assert shapely.equals(ds.features[2].geometry, lonlat_square(2))
    json.dumps([f.properties for f in ds.features])  # JSON-serialisable


def test_geojson_declared_crs_member_is_reported(tmp_path: Path) -> None:
    data = feature_collection(
        map(cgcs_square, range(2)),
        crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}},
    )
    ds = read_grid_file(write_json(tmp_path / "grids.geojson", data))
    assert ds.declared_crs == "EPSG:4547"


def test_geojson_3d_is_forced_to_2d_and_crs_stays_4326(tmp_path: Path) -> None:
    ring = [
        [114.3, 30.5, 20.0],
        [114.301, 30.5, 20.0],
        [114.301, 30.501, 21.0],
        [114.3, 30.5, 20.0],
    ]
    data = feature_collection([{"type": "Polygon", "coordinates": [ring]}])
    ds = read_grid_file(write_json(tmp_path / "z.geojson", data))
    assert not shapely.has_z(ds.features[0].geometry)
    assert ds.declared_crs == "EPSG:4326"  # GDAL alone would say EPSG:4979


def test_format_comes_from_content_not_extension(tmp_path: Path) -> None:
    # A GeoJSON with a BOM, leading whitespace and a misleading name.
    data = feature_collection([lonlat_square(0)])
    path = write_json(tmp_path / "grids.kml", data, prefix=b"\xef\xbb\xbf \n")
    assert read_grid_file(path).format == "geojson"


def test_geojson_value_types_are_json_friendly(tmp_path: Path) -> None:
    data = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "day": "2024-01-02",
                    "at": "2024-01-02T03:04:05Z",
                    "n": 3,
                    "ratio": 0.5,
                    "tags": [1, 2],
                    "meta": {"k": "值"},
                },
                "geometry": shapely.geometry.mapping(lonlat_square(0)),
            },
            {
                "type": "Feature",
                "properties": {"day": None, "at": None, "n": None, "ratio": None},
                "geometry": shapely.geometry.mapping(lonlat_square(1)),
            },
        ],
    }
    ds = read_grid_file(write_json(tmp_path / "types.geojson", data))
    first, second = (f.properties for f in ds.features)
    assert first == {
        "day": "2024-01-02",
        "at": "2024-01-02T03:04:05Z",
        "n": 3,
        "ratio": 0.5,
        "tags": [1, 2],
        "meta": {"k": "值"},
    }
    assert type(first["n"]) is int
    assert second["n"] is None and second["ratio"] is None and second["day"] is None
    json.dumps(first, allow_nan=False)
    json.dumps(second, allow_nan=False)


def test_geojson_collection_of_polygons_becomes_multipolygon(tmp_path: Path) -> None:
    collection = {
        "type": "GeometryCollection",
        "geometries": [
            shapely.geometry.mapping(lonlat_square(0)),
            shapely.geometry.mapping(lonlat_square(2)),
        ],
    }
    ds = read_grid_file(write_json(tmp_path / "gc.geojson", feature_collection([collection])))
    assert shapely.get_type_id(ds.features[0].geometry) == 6  # MultiPolygon


def test_geojson_null_geometry_is_passed_through(tmp_path: Path) -> None:
    ds = read_grid_file(
        write_json(tmp_path / "null.geojson", feature_collection([lonlat_square(0), None]))
    )
    assert ds.features[1].geometry is None


def test_geojson_with_points_names_first_offending_feature(tmp_path: Path) -> None:
    geoms = [lonlat_square(0), shapely.Point(114.3, 30.5), shapely.LineString([(0, 0), (1, 1)])]
    path = write_json(tmp_path / "points.geojson", feature_collection(geoms))
    err = expect_error(
        GridGeometryType, "grid_geometry_type", lambda: read_grid_file(path), tmp_path
    )
    assert err.extra["index"] == 1
    assert err.extra["geometry_type"] == "Point"
    assert err.extra["count"] == 2
    assert "feature 1" in err.detail


def test_collection_with_a_point_is_not_a_grid(tmp_path: Path) -> None:
    collection = {
        "type": "GeometryCollection",
        "geometries": [
            shapely.geometry.mapping(lonlat_square(0)),
            {"type": "Point", "coordinates": [114.3, 30.5]},
        ],
    }
    path = write_json(tmp_path / "gc.geojson", feature_collection([collection]))
    expect_error(GridGeometryType, "grid_geometry_type", lambda: read_grid_file(path), tmp_path)


def test_gbk_encoded_geojson_is_decoded(tmp_path: Path) -> None:
    # Old Chinese desktop tools write GeoJSON in the ANSI code page.
    text = json.dumps(feature_collection([lonlat_square(0)]), ensure_ascii=False)
    path = tmp_path / "gbk.geojson"
    path.write_bytes(text.encode("gbk"))
    ds = read_grid_file(path)
    assert ds.features[0].properties["名称"] == NAMES[0]


def test_too_many_features(tmp_path: Path) -> None:
    path = write_json(tmp_path / "g.geojson", feature_collection(map(lonlat_square, range(5))))
    assert len(read_grid_file(path, max_features=5).features) == 5
    err = expect_error(
        GridFileTooLarge,
        "grid_file_too_large",
        lambda: read_grid_file(path, max_features=4),
        tmp_path,
    )
    assert err.status == 413


def test_feature_collection_without_features_is_unreadable(tmp_path: Path) -> None:
    path = write_json(tmp_path / "empty.geojson", {"type": "FeatureCollection", "features": []})
    expect_error(GridFileUnreadable, "grid_file_unreadable", lambda: read_grid_file(path), tmp_path)


# --------------------------------------------------------------------------- Shapefile


def test_zipped_shapefile_with_gbk_cpg(tmp_path: Path) -> None:
    ds = read_grid_file(shapefile_zip(tmp_path, cpg=b"GBK"))
    assert (ds.format, ds.layer, ds.declared_crs) == ("shapefile", "网格", "EPSG:4547")
    assert [f.properties["名称"] for f in ds.features] == NAMES
    assert ds.features[0].properties["序号"] == 0
    assert shapely.equals(ds.features[1].geometry, cgcs_square(1))


@pytest.mark.parametrize(
    "cpg",
    [None, b"936", b"CP936", b"GB2312", b"ANSI", b"UTF-8", b"nonsense"],
    ids=["no-cpg", "936", "CP936", "GB2312", "ANSI", "wrong-utf8", "unknown"],
)
def test_gbk_dbf_is_decoded_whatever_the_cpg_says(tmp_path: Path, cpg: bytes | None) -> None:
    ds = read_grid_file(shapefile_zip(tmp_path, cpg=cpg))
    assert [f.properties["名称"] for f in ds.features] == NAMES
    assert "名称" in ds.features[0].properties  # field names too


def test_utf8_dbf_wins_over_a_cpg_that_claims_gbk(tmp_path: Path) -> None:
    ds = read_grid_file(shapefile_zip(tmp_path, cpg=b"GBK", encoding="UTF-8"))
    assert [f.properties["名称"] for f in ds.features] == NAMES


def test_dbf_encoding_choice_tolerates_a_character_cut_at_the_field_end() -> None:
    name = "网格一号".encode("gbk")
    header = bytearray(32)
    struct.pack_into("<IHH", header, 4, 1, 32 + 32 + 1, 1 + 8)
    field = bytearray(32)
    field[:4] = b"NAME"
    field[11:12] = b"C"
    field[16] = 8
    record = b" " + name[:7] + b" "  # last character cut in half, then padding
    dbf = bytes(header) + bytes(field) + b"\r" + record[:9]
    assert choose_dbf_encoding(dbf, None) == "GB18030"
    assert choose_dbf_encoding(dbf, b"UTF-8") == "GB18030"
    assert choose_dbf_encoding(bytes(header) + bytes(field) + b"\r" + b" ABC     ", b"GBK") == (
        "GB18030"
    )
    assert choose_dbf_encoding(b"", None) is None


def test_shapefile_in_subfolder_with_macos_junk(tmp_path: Path) -> None:
    path = shapefile_zip(
        tmp_path,
        folder="导出/",
        extra={"__MACOSX/导出/._网格.shp": b"\x00\x05\x16\x07junk", "说明.txt": b"readme"},
    )
    ds = read_grid_file(path)
    assert ds.layer == "网格" and len(ds.features) == 3


def test_shapefile_with_gbk_file_names_in_zip(tmp_path: Path) -> None:
    # Windows zip tools in a Chinese locale store GBK names without the UTF-8 flag.
    class GbkName(zipfile.ZipInfo):
        def _encodeFilenameFlags(self) -> tuple[bytes, int]:
            return self.filename.encode("gbk"), self.flag_bits & ~0x800

    files = write_shapefile(tmp_path / "src", "grid")
    path = tmp_path / "gbk-names.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for ext, data in files.items():
            info = GbkName(f"数据/网格{ext}")
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    ds = read_grid_file(path)
    assert ds.layer == "网格"
    assert ds.features[0].properties["名称"] == NAMES[0]


def test_shapefile_without_prj_has_no_declared_crs(tmp_path: Path) -> None:
    files = write_shapefile(tmp_path / "src", "grid")
    members = {f"grid{ext}": data for ext, data in files.items() if ext != ".prj"}
    ds = read_grid_file(write_zip(tmp_path / "noprj.zip", members))
    assert ds.declared_crs is None


def two_shapefile_zip(tmp_path: Path) -> Path:
    a = write_shapefile(tmp_path / "a", "east")
    b = write_shapefile(tmp_path / "b", "west", geoms=[cgcs_square(9)])
    members = {f"east{ext}": d for ext, d in a.items()} | {f"west{ext}": d for ext, d in b.items()}
    return write_zip(tmp_path / "two.zip", members)


def test_zip_with_two_shapefiles_is_ambiguous(tmp_path: Path) -> None:
    path = two_shapefile_zip(tmp_path)
    err = expect_error(
        GridFileLayerAmbiguous, "grid_file_layer_ambiguous", lambda: read_grid_file(path), tmp_path
    )
    assert err.extra["layers"] == ["east", "west"]


def test_zip_with_two_shapefiles_and_a_layer_choice(tmp_path: Path) -> None:
    path = two_shapefile_zip(tmp_path)
    ds = read_grid_file(path, layer="west")
    assert ds.layer == "west" and len(ds.features) == 1
    assert read_grid_file(path, layer="east.shp").layer == "east"
    err = expect_error(
        GridFileLayerNotFound,
        "grid_file_layer_not_found",
        lambda: read_grid_file(path, layer="north"),
        tmp_path,
    )
    assert err.extra["layers"] == ["east", "west"]


def test_zip_without_shapefile_is_unsupported(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "docs.zip", {"a.txt": b"hello", "b.csv": b"x,y\n1,2\n"})
    err = expect_error(
        GridFileFormatUnsupported,
        "grid_file_format_unsupported",
        lambda: read_grid_file(path),
        tmp_path,
    )
    assert err.extra["entries"] == ["a.txt", "b.csv"]


def test_zip_with_incomplete_shapefile(tmp_path: Path) -> None:
    files = write_shapefile(tmp_path / "src", "grid")
    members = {f"grid{ext}": d for ext, d in files.items() if ext != ".dbf"}
    path = write_zip(tmp_path / "nodbf.zip", members)
    err = expect_error(
        GridFileUnreadable, "grid_file_unreadable", lambda: read_grid_file(path), tmp_path
    )
    assert err.extra["missing"] == ["grid.dbf"]


@pytest.mark.parametrize(
    "evil", ["../evil.txt", "a/../../evil.shp", "/etc/evil.shp", "C:/evil.shp", "..\\evil.dbf"]
)
def test_zip_path_traversal_is_refused(tmp_path: Path, evil: str) -> None:
    files = write_shapefile(tmp_path / "src", "grid")
    members = {f"grid{ext}": d for ext, d in files.items()} | {evil: b"x"}
    path = write_zip(tmp_path / "evil.zip", members)
    err = expect_error(
        GridFileUnreadable, "grid_file_unreadable", lambda: read_grid_file(path), tmp_path
    )
    assert err.extra["reason"] == "unsafe_zip_entry"


def test_corrupt_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + os.urandom(300))
    expect_error(GridFileUnreadable, "grid_file_unreadable", lambda: read_grid_file(path), tmp_path)


def test_zip_with_damaged_member_data(tmp_path: Path) -> None:
    path = shapefile_zip(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".dbf"))
    # Flip bytes inside the compressed .dbf data (after its 30-byte local header + name).
    start = info.header_offset + 30 + len(info.filename.encode()) + 10
    for k in range(start, start + 8):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))
    expect_error(GridFileUnreadable, "grid_file_unreadable", lambda: read_grid_file(path), tmp_path)


def test_zip_bomb_is_refused_by_declared_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_UNCOMPRESSED_BYTES", 1 << 20)
    path = shapefile_zip(tmp_path, extra={"padding.bin": bytes(2 << 20)})
    assert path.stat().st_size < 64 * 1024  # zeros compress ~1000:1
    err = expect_error(
        GridFileTooLarge, "grid_file_too_large", lambda: read_grid_file(path), tmp_path
    )
    assert err.status == 413


def test_zip_member_that_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    """A header that under-states the inflated size (the classic bomb) must not pass."""
    path = shapefile_zip(tmp_path)
    data = bytearray(path.read_bytes())
    # Walk the central directory from the end-of-central-directory record.
    eocd = data.rindex(b"PK\x05\x06")
    entries, pos = (
        struct.unpack_from("<H", data, eocd + 10)[0],
        struct.unpack_from("<I", data, eocd + 16)[0],
    )
    patched = 0
    for _ in range(entries):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        local = struct.unpack_from("<I", data, pos + 42)[0]
        if bytes(data[pos + 46 : pos + 46 + name_len]).endswith(b".shp"):
            struct.pack_into("<I", data, pos + 24, 10)  # central directory
            struct.pack_into("<I", data, local + 22, 10)  # local header
            patched += 1
        pos += 46 + name_len + extra_len + comment_len
    assert patched == 1
    path.write_bytes(bytes(data))
    err = expect_error(
        GridFileUnreadable, "grid_file_unreadable", lambda: read_grid_file(path), tmp_path
    )
    assert "damaged" in err.detail


def test_kmz_is_read_as_kml(tmp_path: Path) -> None:
    doc = kml_document({"东湖街道": [kml_polygon(0), kml_polygon(1)]})
    path = write_zip(tmp_path / "grids.kmz", {"doc.kml": doc.encode()})
    ds = read_grid_file(path)
    assert ds.format == "kml" and len(ds.features) == 2


# --------------------------------------------------------------------------- GeoPackage


def test_gpkg_with_one_layer(tmp_path: Path) -> None:
    path = write_gpkg(tmp_path / "grids.gpkg", {"单元网格": [lonlat_square(0), lonlat_square(1)]})
    ds = read_grid_file(path)
    assert (ds.format, ds.layer, ds.declared_crs) == ("gpkg", "单元网格", "EPSG:4490")
    assert ds.features[1].properties == {
        "BGID": "单元网格-1",
        "划定日期": "2024-03-01",
        "名称": NAMES[1],
    }


def test_gpkg_with_two_layers_needs_a_choice(tmp_path: Path) -> None:
    path = write_gpkg(
        tmp_path / "two.gpkg", {"east": [lonlat_square(0)], "west": [lonlat_square(5)] * 2}
    )
    err = expect_error(
        GridFileLayerAmbiguous, "grid_file_layer_ambiguous", lambda: read_grid_file(path), tmp_path
    )
    assert err.extra["layers"] == ["east", "west"]
    ds = read_grid_file(path, layer="west")
    assert ds.layer == "west" and len(ds.features) == 2
    expect_error(
        GridFileLayerNotFound,
        "grid_file_layer_not_found",
        lambda: read_grid_file(path, layer="north"),
        tmp_path,
    )


def test_gpkg_attribute_tables_are_not_layers(tmp_path: Path) -> None:
    path = write_gpkg(tmp_path / "mixed.gpkg", {"grids": [lonlat_square(0)]})
    raw.write(
        str(path), None, [np.array(["x"], dtype=object)], ["note"], layer="notes", driver="GPKG"
    )
    assert read_grid_file(path).layer == "grids"


def test_truncated_gpkg(tmp_path: Path) -> None:
    source = write_gpkg(tmp_path / "full.gpkg", {"grids": list(map(lonlat_square, range(50)))})
    data = source.read_bytes()
    for size in (60, 4096, len(data) // 2):
        path = tmp_path / f"cut{size}.gpkg"
        path.write_bytes(data[:size])
        with pytest.raises(GridFileUnreadable) as info:
            read_grid_file(path)
        assert info.value.code == "grid_file_unreadable"


def test_plain_sqlite_database_is_not_a_geopackage(tmp_path: Path) -> None:
    path = tmp_path / "data.gpkg"
    with sqlite3.connect(path) as db:
        db.execute("create table t (a int)")
    db.close()
    expect_error(
        GridFileFormatUnsupported,
        "grid_file_format_unsupported",
        lambda: read_grid_file(path),
        tmp_path,
    )


# --------------------------------------------------------------------------- KML


def test_kml_folders_are_concatenated_and_point_folders_skipped(tmp_path: Path) -> None:
    doc = kml_document(
        {
            "东湖街道": [kml_polygon(0), kml_polygon(1)],
            "标注": ["<Point><coordinates>114.3,30.5</coordinates></Point>"],
            "水果湖街道": [f"<MultiGeometry>{kml_polygon(5)}</MultiGeometry>"],
        }
    )
    path = tmp_path / "grids.kml"
    path.write_text(doc, encoding="utf-8")
    ds = read_grid_file(path)
    assert (ds.format, ds.layer, ds.declared_crs) == ("kml", None, "EPSG:4326")
    # Positions count every placemark in file order, including the skipped label.
    assert [f.index for f in ds.features] == [0, 1, 3]
    assert ds.features[0].properties["Name"] == "420102000"
    assert ds.features[0].properties["Description"] == NAMES[0]
    assert "tessellate" not in ds.features[0].properties
    assert shapely.get_type_id(ds.features[2].geometry) == 6  # MultiPolygon
    assert not shapely.has_z(ds.features[0].geometry)


def test_kml_layer_choice(tmp_path: Path) -> None:
    doc = kml_document(
        {"东湖街道": [kml_polygon(0)], "水果湖街道": [kml_polygon(1), kml_polygon(2)]}
    )
    path = tmp_path / "grids.kml"
    path.write_text(doc, encoding="utf-8")
    ds = read_grid_file(path, layer="水果湖街道")
    assert ds.layer == "水果湖街道" and len(ds.features) == 2
    expect_error(
        GridFileLayerNotFound,
        "grid_file_layer_not_found",
        lambda: read_grid_file(path, layer="nope"),
        tmp_path,
    )


def test_kml_with_only_points(tmp_path: Path) -> None:
    doc = kml_document({"标注": ["<Point><coordinates>114.3,30.5</coordinates></Point>"]})
    path = tmp_path / "points.kml"
    path.write_text(doc, encoding="utf-8")
    err = expect_error(
        GridGeometryType, "grid_geometry_type", lambda: read_grid_file(path), tmp_path
    )
    assert err.extra["index"] == 0


# --------------------------------------------------------------------------- not GIS at all


@pytest.mark.parametrize(
    ("name", "content", "error", "code"),
    [
        ("empty.geojson", b"", GridFileUnreadable, "grid_file_unreadable"),
        ("random.bin", bytes(range(256)) * 8, GridFileUnreadable, "grid_file_unreadable"),
        (
            "notes.txt",
            "这不是地图文件\nhello\n".encode(),
            GridFileUnreadable,
            "grid_file_unreadable",
        ),
        (
            "grids.geojson",
            b'{"type": "FeatureCollection", "features": [',
            GridFileUnreadable,
            "grid_file_unreadable",
        ),
        ("config.json", b'{"a": 1}', GridFileUnreadable, "grid_file_unreadable"),
        (
            "grids.shp",
            b"\x00\x00\x27\x0a" + bytes(96),
            GridFileFormatUnsupported,
            "grid_file_format_unsupported",
        ),
        (
            "track.gpx",
            b'<?xml version="1.0"?><gpx version="1.1"></gpx>',
            GridFileFormatUnsupported,
            "grid_file_format_unsupported",
        ),
        ("grids.dxf", b"  0\nSECTION\n", GridFileFormatUnsupported, "grid_file_format_unsupported"),
        (
            "topo.json",
            b'{"type": "Topology", "objects": {}}',
            GridFileFormatUnsupported,
            "grid_file_format_unsupported",
        ),
        (
            "grids.kml",
            b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>',
            GridFileUnreadable,
            "grid_file_unreadable",
        ),
    ],
)
def test_non_gis_and_broken_files(
    tmp_path: Path, name: str, content: bytes, error: type[XunchaError], code: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    expect_error(error, code, lambda: read_grid_file(path), tmp_path)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    expect_error(
        GridFileUnreadable,
        "grid_file_unreadable",
        lambda: read_grid_file(tmp_path / "nope.zip"),
        tmp_path,
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from(
        [
            b"",
            b"{",
            b'{"type":"FeatureCollection","features":[',
            b"PK\x03\x04",
            b"SQLite format 3\x00",
            b"<kml>",
        ]
    ),
    body=st.binary(max_size=400),
)
def test_fuzzed_input_only_raises_xuncha_errors(tmp_path: Path, prefix: bytes, body: bytes) -> None:
    path = tmp_path / "fuzz.dat"
    path.write_bytes(prefix + body)
    try:
        read_grid_file(path)
    except XunchaError as exc:
        assert exc.code.startswith("grid_")
