"""Coordinate normalisation: GCJ-02 / BD-09 maths, EPSG parsing and input validation.

The known pairs below are published values from independent public projects, so these
tests check our formulas against other people's implementations, not against themselves.
Inverse accuracy is measured as a geodesic distance on WGS-84 (pyproj.Geod).
"""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.core.errors import InvalidInput
from backend.geo import chinese_crs as cc
from backend.geo.crs import (
    CoordinatesOutOfRange,
    LocationCRS,
    SourceCRS,
    UnknownCoordinateSystem,
    detect_crs_from_wkt_or_authority,
    normalise_location,
    parse_source_crs,
)

GEOD = pyproj.Geod(ellps="WGS84")

LonLat = tuple[float, float]


def metres(a: LonLat, b: LonLat) -> float:
    """Geodesic distance between two (lon, lat) points in metres."""
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


# --------------------------------------------------------------------------- known pairs

# (WGS-84, GCJ-02) as (lon, lat). Sources:
#   googollee/eviltransform: go/transform_test.go, python/test.py, javascript/test.js
#     (same three pairs in every language port, published as lat, lng; swapped here).
#   wandergis/coordtransform: README.md, "wgs84togcj02(116.404, 39.915)" example output
#     (also asserted in athxx/coordtransform-rs tests and hutool's CoordinateUtilTest).
#   hujiulong/gcoord: test/unit/crs/WGS84.spec.ts, "WGS84 to GCJ02" for [123, 45]
#     (published to 8 decimals).
WGS_GCJ_PAIRS: list[tuple[str, LonLat, LonLat]] = [
    ("eviltransform shanghai", (121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ("eviltransform shenzhen", (113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ("eviltransform beijing", (116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
    ("coordtransform README", (116.404, 39.915), (116.41024449916938, 39.91640428150164)),
    ("gcoord WGS84.spec", (123.0, 45.0), (123.00607541, 45.00197815)),
]

# (WGS-84, BD-09). Source: hujiulong/gcoord test/unit/crs/WGS84.spec.ts, "WGS84 to BD09"
# for [123, 45] (published to 7 decimals, i.e. +-5e-8 deg of rounding).
WGS_BD_PAIRS: list[tuple[str, LonLat, LonLat]] = [
    ("gcoord WGS84.spec", (123.0, 45.0), (123.0124491, 45.0083293)),
]

# (GCJ-02, BD-09). Sources:
#   wandergis/coordtransform README.md, "gcj02tobd09(116.404, 39.915)" example output.
#   hujiulong/gcoord test/unit/crs/GCJ02.spec.ts, "GCJ02 to BD09" for [123, 45].
# Not used: googollee/eviltransform python/test.py TESTS_bd. Its expected values come from
# that library's own approximate BD->WGS chain (and, per Artoria2e5/PRCoords' README, its
# BD-09 parameters were wrong for a while); they are 10-40 m from the exact inverse.
GCJ_BD_PAIRS: list[tuple[str, LonLat, LonLat]] = [
    ("coordtransform README", (116.404, 39.915), (116.41036949371029, 39.92133699351021)),
    ("gcoord GCJ02.spec", (123.0, 45.0), (123.00636499, 45.00636899)),
]

FORWARD_TOL_DEG = 1e-6
INVERSE_TOL_M = 0.5


@pytest.mark.parametrize(("label", "wgs", "gcj"), WGS_GCJ_PAIRS)
def test_wgs84_to_gcj02_matches_published_pairs(label: str, wgs: LonLat, gcj: LonLat) -> None:
    got = cc.wgs84_to_gcj02(*wgs)
    assert got == pytest.approx(gcj, abs=FORWARD_TOL_DEG), label


@pytest.mark.parametrize(("label", "wgs", "gcj"), WGS_GCJ_PAIRS)
def test_gcj02_to_wgs84_inverts_published_pairs(label: str, wgs: LonLat, gcj: LonLat) -> None:
    assert metres(cc.gcj02_to_wgs84(*gcj), wgs) < INVERSE_TOL_M, label


@pytest.mark.parametrize(("label", "wgs", "bd"), WGS_BD_PAIRS)
def test_wgs84_bd09_matches_published_pairs(label: str, wgs: LonLat, bd: LonLat) -> None:
    assert cc.wgs84_to_bd09(*wgs) == pytest.approx(bd, abs=FORWARD_TOL_DEG), label
    assert metres(cc.bd09_to_wgs84(*bd), wgs) < INVERSE_TOL_M, label


@pytest.mark.parametrize(("label", "gcj", "bd"), GCJ_BD_PAIRS)
def test_gcj02_bd09_matches_published_pairs(label: str, gcj: LonLat, bd: LonLat) -> None:
    assert cc.gcj02_to_bd09(*gcj) == pytest.approx(bd, abs=FORWARD_TOL_DEG), label
    assert metres(cc.bd09_to_gcj02(*bd), gcj) < INVERSE_TOL_M, label


def test_array_versions_match_published_pairs() -> None:
    wgs = np.array([p[1] for p in WGS_GCJ_PAIRS])
    gcj = np.array([p[2] for p in WGS_GCJ_PAIRS])
    lons, lats = cc.wgs84_to_gcj02_arrays(wgs[:, 0], wgs[:, 1])
    np.testing.assert_allclose(lons, gcj[:, 0], rtol=0, atol=FORWARD_TOL_DEG)
    np.testing.assert_allclose(lats, gcj[:, 1], rtol=0, atol=FORWARD_TOL_DEG)
    back_lons, back_lats = cc.gcj02_to_wgs84_arrays(gcj[:, 0], gcj[:, 1])
    for back, expected in zip(zip(back_lons, back_lats, strict=True), wgs, strict=True):
        assert metres((float(back[0]), float(back[1])), tuple(expected)) < INVERSE_TOL_M


# --------------------------------------------------------------------------- properties

mainland_lon = st.floats(min_value=73.0, max_value=135.0, allow_nan=False)
mainland_lat = st.floats(min_value=18.0, max_value=53.0, allow_nan=False)
ROUND_TRIP_TOL_M = 0.05


@settings(max_examples=300, deadline=None)
@given(lon=mainland_lon, lat=mainland_lat)
def test_gcj02_round_trip(lon: float, lat: float) -> None:
    gcj = cc.wgs84_to_gcj02(lon, lat)
    assert gcj != (lon, lat)  # the offset really is applied inside China
    assert metres(cc.gcj02_to_wgs84(*gcj), (lon, lat)) < ROUND_TRIP_TOL_M


@settings(max_examples=300, deadline=None)
@given(lon=mainland_lon, lat=mainland_lat)
def test_gcj02_inverse_solves_forward_to_1e9_degrees(lon: float, lat: float) -> None:
    # The other direction: treat the sample as a GCJ-02 input and check the residual.
    wgs = cc.gcj02_to_wgs84(lon, lat)
    again = cc.wgs84_to_gcj02(*wgs)
    assert abs(again[0] - lon) < 1e-9
    assert abs(again[1] - lat) < 1e-9


@settings(max_examples=300, deadline=None)
@given(lon=mainland_lon, lat=mainland_lat)
def test_bd09_round_trip(lon: float, lat: float) -> None:
    bd = cc.wgs84_to_bd09(lon, lat)
    assert metres(cc.bd09_to_wgs84(*bd), (lon, lat)) < ROUND_TRIP_TOL_M
    bd_from_gcj = cc.gcj02_to_bd09(lon, lat)
    assert metres(cc.bd09_to_gcj02(*bd_from_gcj), (lon, lat)) < ROUND_TRIP_TOL_M


def test_array_round_trips_and_agree_with_scalars() -> None:
    rng = np.random.default_rng(20240601)
    lons = rng.uniform(73.0, 135.0, 5000)
    lats = rng.uniform(18.0, 53.0, 5000)
    cases = [
        (cc.wgs84_to_gcj02_arrays, cc.gcj02_to_wgs84_arrays, cc.wgs84_to_gcj02),
        (cc.wgs84_to_bd09_arrays, cc.bd09_to_wgs84_arrays, cc.wgs84_to_bd09),
        (cc.gcj02_to_bd09_arrays, cc.bd09_to_gcj02_arrays, cc.gcj02_to_bd09),
    ]
    for forward, inverse, scalar_forward in cases:
        f_lons, f_lats = forward(lons, lats)
        b_lons, b_lats = inverse(f_lons, f_lats)
        assert np.max(np.abs(b_lons - lons)) < 1e-9
        assert np.max(np.abs(b_lats - lats)) < 1e-9
        for i in range(0, 5000, 250):
            expected = scalar_forward(float(lons[i]), float(lats[i]))
            assert (f_lons[i], f_lats[i]) == pytest.approx(expected, abs=1e-12)


def test_array_functions_do_not_modify_their_input() -> None:
    lons = np.array([121.47, 116.40])
    lats = np.array([31.23, 39.90])
    cc.gcj02_to_wgs84_arrays(lons, lats)
    np.testing.assert_array_equal(lons, [121.47, 116.40])
    np.testing.assert_array_equal(lats, [31.23, 39.90])


@pytest.mark.parametrize(
    ("city", "wgs"),
    [("shanghai", (121.4737, 31.2304)), ("beijing", (116.3975, 39.9087))],
)
def test_offset_magnitudes_are_plausible(city: str, wgs: LonLat) -> None:
    gcj_offset = metres(wgs, cc.wgs84_to_gcj02(*wgs))
    bd_offset = metres(wgs, cc.wgs84_to_bd09(*wgs))
    assert 100.0 < gcj_offset < 1000.0, city
    # BD-09 adds ~0.0065/0.006 degrees (~700-900 m) on top of GCJ-02: about 1 km in all.
    assert 800.0 < bd_offset < 1600.0, city


# --------------------------------------------------------------------------- outside China

OUTSIDE_CHINA: list[LonLat] = [
    (-0.1276, 51.5072),  # London
    (-74.006, 40.7128),  # New York
    (139.6917, 35.6895),  # Tokyo: east of the box's 137.8347 edge
    (151.2093, -33.8688),  # Sydney
    (100.5018, 0.5),  # south of the box's 0.8293 edge
]


@pytest.mark.parametrize("point", OUTSIDE_CHINA)
def test_points_outside_china_are_unchanged(point: LonLat) -> None:
    for fn in (
        cc.wgs84_to_gcj02,
        cc.gcj02_to_wgs84,
        cc.wgs84_to_bd09,
        cc.bd09_to_wgs84,
        cc.gcj02_to_bd09,
        cc.bd09_to_gcj02,
    ):
        assert fn(*point) == point, fn.__name__


def test_arrays_mix_inside_and_outside_and_pass_nan_through() -> None:
    lons = np.array([-0.1276, 121.5272106, math.nan])
    lats = np.array([51.5072, 31.1774276, 30.0])
    out_lons, out_lats = cc.wgs84_to_gcj02_arrays(lons, lats)
    assert (out_lons[0], out_lats[0]) == (-0.1276, 51.5072)
    assert (out_lons[1], out_lats[1]) == pytest.approx(WGS_GCJ_PAIRS[0][2], abs=1e-6)
    assert math.isnan(out_lons[2])
    back_lons, back_lats = cc.gcj02_to_wgs84_arrays(out_lons, out_lats)
    assert (back_lons[0], back_lats[0]) == (-0.1276, 51.5072)
    assert math.isnan(back_lons[2])


# --------------------------------------------------------------------------- normalise_location


def test_normalise_location_wgs84_and_cgcs2000_are_identities() -> None:
    assert normalise_location(121.5, 31.2, LocationCRS.wgs84) == (121.5, 31.2)
    assert normalise_location(121.5, 31.2, LocationCRS.cgcs2000) == (121.5, 31.2)


@pytest.mark.parametrize(("label", "wgs", "gcj"), WGS_GCJ_PAIRS)
def test_normalise_location_gcj02(label: str, wgs: LonLat, gcj: LonLat) -> None:
    assert metres(normalise_location(*gcj, LocationCRS.gcj02), wgs) < INVERSE_TOL_M, label


@pytest.mark.parametrize(("label", "wgs", "bd"), WGS_BD_PAIRS)
def test_normalise_location_bd09(label: str, wgs: LonLat, bd: LonLat) -> None:
    assert metres(normalise_location(*bd, LocationCRS.bd09), wgs) < INVERSE_TOL_M, label


def test_normalise_location_accepts_the_plain_string_values() -> None:
    lon, lat = WGS_GCJ_PAIRS[0][2]
    as_str = normalise_location(lon, lat, "gcj02")  # type: ignore[arg-type]
    assert as_str == normalise_location(lon, lat, LocationCRS.gcj02)


def test_normalise_location_rejects_unknown_crs() -> None:
    with pytest.raises(UnknownCoordinateSystem):
        normalise_location(121.5, 31.2, "mars")  # type: ignore[arg-type]


BAD_GEOGRAPHIC: list[LonLat] = [
    (math.nan, 31.2),
    (121.5, math.nan),
    (math.inf, 31.2),
    (121.5, -math.inf),
    (180.5, 31.2),
    (-180.5, 31.2),
    (121.5, 90.5),
    (121.5, -91.0),
    (500000.0, 3400000.0),  # a Gauss-Kruger point declared as lon/lat
]


@pytest.mark.parametrize("crs", list(LocationCRS))
@pytest.mark.parametrize("point", BAD_GEOGRAPHIC)
def test_normalise_location_rejects_bad_coordinates(point: LonLat, crs: LocationCRS) -> None:
    with pytest.raises(CoordinatesOutOfRange) as info:
        normalise_location(*point, crs)
    assert info.value.code == "coordinates_out_of_range"
    assert isinstance(info.value, InvalidInput)
    assert info.value.status == 422


def test_range_edges_are_accepted() -> None:
    assert normalise_location(180.0, 90.0, LocationCRS.wgs84) == (180.0, 90.0)
    assert normalise_location(-180.0, -90.0, LocationCRS.gcj02) == (-180.0, -90.0)


# --------------------------------------------------------------------------- parse_source_crs


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("EPSG:4326", "EPSG:4326"),
        ("epsg:4490", "EPSG:4490"),
        (" EPSG: 4547 ", "EPSG:4547"),
        ("4549", "EPSG:4549"),
        ("EPSG:32650", "EPSG:32650"),
        ("EPSG:4526", "EPSG:4526"),
        ("WGS84", "EPSG:4326"),
        ("wgs-84", "EPSG:4326"),
        ("CGCS2000", "EPSG:4490"),
        ("GCJ02", "gcj02"),
        ("bd09", "bd09"),
    ],
)
def test_parse_source_crs_accepted_forms(text: str, name: str) -> None:
    assert parse_source_crs(text).name == name


@pytest.mark.parametrize(
    "text",
    [
        "EPSG:999999",  # no such code
        "mars",
        "",
        "   ",
        "EPSG:4978",  # geocentric
        "EPSG:4979",  # geographic 3D
        "EPSG:5773",  # vertical (EGM96 height)
        "EPSG:9518",  # compound
        "EPSG:7030",  # an ellipsoid, not a CRS
        "EPSG:4214",  # Beijing 1954: only a ballpark (zero) shift to WGS-84 exists in PROJ
        "EPSG:2385",  # Xian 1980 / 3-degree Gauss-Kruger CM 120E, same reason
        "EPSG:4547x",
        "urn:ogc:def:crs:OGC::CRS84",
    ],
)
def test_parse_source_crs_rejects_unusable_systems(text: str) -> None:
    with pytest.raises(UnknownCoordinateSystem) as info:
        parse_source_crs(text)
    assert info.value.code == "unknown_crs"
    assert isinstance(info.value, InvalidInput)


def test_unknown_crs_message_names_the_accepted_forms() -> None:
    with pytest.raises(UnknownCoordinateSystem) as info:
        parse_source_crs("mars")
    for form in ("EPSG:", "wgs84", "cgcs2000", "gcj02", "bd09"):
        assert form in info.value.detail


def test_geographic_sources_are_identities_without_pyproj(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pyproj must not be used for EPSG:4326 / EPSG:4490")

    monkeypatch.setattr(pyproj.Transformer, "from_crs", forbidden)
    for text in ("EPSG:4326", "EPSG:4490", "wgs84", "cgcs2000"):
        src = parse_source_crs(text)
        assert src.to_wgs84_xy(121.5, 31.2) == (121.5, 31.2)
        lons, lats = src.to_wgs84_arrays([121.5, 116.4], [31.2, 39.9])
        assert lons.tolist() == [121.5, 116.4]
        assert lats.tolist() == [31.2, 39.9]


# --------------------------------------------------------------------------- projected sources


def test_epsg_4547_on_the_central_meridian_matches_the_meridian_arc() -> None:
    # Independent of PROJ's projection code: on the central meridian (x = false easting
    # 500000 m, scale factor 1 for Chinese Gauss-Kruger) the northing is the meridian arc
    # length on the CGCS2000 ellipsoid (GRS80 to 0.1 mm), measured here with a geodesic.
    lat = 30.5
    arc = pyproj.Geod(ellps="GRS80").inv(114.0, 0.0, 114.0, lat)[2]
    lon_out, lat_out = parse_source_crs("EPSG:4547").to_wgs84_xy(500000.0, arc)
    assert lon_out == pytest.approx(114.0, abs=1e-9)
    assert lat_out == pytest.approx(lat, abs=1e-8)


def test_epsg_4547_off_meridian_matches_an_explicit_gauss_kruger_definition() -> None:
    # Same projection spelled out as a PROJ string (no EPSG database look-up), so a wrong
    # code, wrong axis order or lat/lon swap in our code would show up as a mismatch.
    explicit = pyproj.Transformer.from_crs(
        "+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m",
        "+proj=longlat +ellps=GRS80",
        always_xy=True,
    )
    x, y = 437_654.3, 3_380_123.9
    expected = explicit.transform(x, y)
    got = parse_source_crs("EPSG:4547").to_wgs84_xy(x, y)
    assert got == pytest.approx(expected, abs=1e-9)
    assert 113.0 < got[0] < 114.0  # lon first
    assert 30.0 < got[1] < 31.0


def test_zone_prefixed_gauss_kruger_and_utm_are_lon_lat_ordered() -> None:
    # EPSG:4526 is the same CM 114E zone with the zone number (38) prefixed to eastings.
    prefixed = parse_source_crs("EPSG:4526").to_wgs84_xy(38_500_000.0, 3_400_000.0)
    plain = parse_source_crs("EPSG:4547").to_wgs84_xy(500_000.0, 3_400_000.0)
    assert prefixed == pytest.approx(plain, abs=1e-9)
    lon, lat = parse_source_crs("EPSG:32650").to_wgs84_xy(500_000.0, 3_400_000.0)
    assert lon == pytest.approx(117.0, abs=1e-9)  # UTM 50N central meridian
    assert 30.0 < lat < 31.0


def test_projected_arrays_match_scalar() -> None:
    src = parse_source_crs("EPSG:4547")
    xs = np.array([437_654.3, 500_000.0, 512_345.6])
    ys = np.array([3_380_123.9, 3_400_000.0, 2_500_000.0])
    lons, lats = src.to_wgs84_arrays(xs, ys)
    for x, y, lon, lat in zip(xs, ys, lons, lats, strict=True):
        assert (lon, lat) == pytest.approx(src.to_wgs84_xy(float(x), float(y)), abs=1e-12)


@pytest.mark.parametrize(
    "point",
    [
        (math.nan, 3_400_000.0),
        (500_000.0, math.inf),
        (1e12, 1e12),  # PROJ returns inf
        (3_400_000.0, 500_000.0),  # swapped columns: PROJ gives a valid-looking (139E, 4N)
        (500_000.0, -1e9),  # PROJ gives (114E, 1.8N), far outside the zone's area of use
    ],
)
def test_projected_source_rejects_impossible_coordinates(point: LonLat) -> None:
    src = parse_source_crs("EPSG:4547")
    with pytest.raises(CoordinatesOutOfRange):
        src.to_wgs84_xy(*point)
    with pytest.raises(CoordinatesOutOfRange):
        src.to_wgs84_arrays([500_000.0, point[0]], [3_400_000.0, point[1]])


def test_gauss_kruger_file_declared_as_wgs84_is_rejected_with_a_hint() -> None:
    with pytest.raises(CoordinatesOutOfRange) as info:
        parse_source_crs("wgs84").to_wgs84_arrays([500_000.0], [3_400_000.0])
    assert "do not look like" in info.value.detail


@pytest.mark.parametrize("text", ["wgs84", "gcj02", "bd09", "EPSG:4490"])
def test_geographic_sources_reject_bad_coordinates(text: str) -> None:
    src = parse_source_crs(text)
    for point in BAD_GEOGRAPHIC:
        with pytest.raises(CoordinatesOutOfRange):
            src.to_wgs84_xy(*point)
        with pytest.raises(CoordinatesOutOfRange):
            src.to_wgs84_arrays([121.5, point[0]], [31.2, point[1]])


# --------------------------------------------------------------------------- geometries


def _polygon_with_holes(origin: LonLat, size: float) -> shapely.Polygon:
    x0, y0 = origin
    shell = [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size)]
    s = size / 10
    holes = [
        [(x0 + s, y0 + s), (x0 + 3 * s, y0 + s), (x0 + 3 * s, y0 + 3 * s), (x0 + s, y0 + 3 * s)],
        [(x0 + 5 * s, y0 + 5 * s), (x0 + 8 * s, y0 + 5 * s), (x0 + 8 * s, y0 + 8 * s)],
    ]
    return shapely.Polygon(shell, holes)


@pytest.mark.parametrize(
    ("text", "origin", "size"),
    [
        ("EPSG:4547", (500_000.0, 3_400_000.0), 100.0),
        ("gcj02", (121.47, 31.23), 0.001),
        ("bd09", (116.40, 39.90), 0.001),
        ("wgs84", (121.47, 31.23), 0.001),
    ],
)
def test_geometry_transform_keeps_structure(text: str, origin: LonLat, size: float) -> None:
    src = parse_source_crs(text)
    first = _polygon_with_holes(origin, size)
    second = _polygon_with_holes((origin[0] + 3 * size, origin[1]), size)
    multi = shapely.MultiPolygon([first, second])

    out = src.to_wgs84_geometry(multi)

    assert isinstance(out, shapely.MultiPolygon)
    assert len(out.geoms) == 2
    for before, after in zip(multi.geoms, out.geoms, strict=True):
        assert len(after.interiors) == len(before.interiors) == 2
        assert len(after.exterior.coords) == len(before.exterior.coords)
        for ring_before, ring_after in zip(before.interiors, after.interiors, strict=True):
            assert len(ring_after.coords) == len(ring_before.coords)
    assert shapely.get_num_coordinates(out) == shapely.get_num_coordinates(multi)
    assert out.is_valid
    # Each vertex is exactly what the scalar conversion gives.
    coords_in = shapely.get_coordinates(multi)
    coords_out = shapely.get_coordinates(out)
    for (x, y), (lon, lat) in zip(coords_in[::5], coords_out[::5], strict=True):
        assert (lon, lat) == pytest.approx(src.to_wgs84_xy(float(x), float(y)), abs=1e-9)


def test_geometry_transform_handles_points_and_empty_geometries() -> None:
    src = parse_source_crs("gcj02")
    gcj = WGS_GCJ_PAIRS[0][2]
    point = src.to_wgs84_geometry(shapely.Point(gcj))
    assert metres((point.x, point.y), WGS_GCJ_PAIRS[0][1]) < INVERSE_TOL_M
    assert src.to_wgs84_geometry(shapely.Polygon()).is_empty


def test_geometry_transform_rejects_bad_vertices() -> None:
    src = parse_source_crs("wgs84")
    with pytest.raises(CoordinatesOutOfRange):
        src.to_wgs84_geometry(shapely.LineString([(121.5, 31.2), (500_000.0, 3_400_000.0)]))


def test_source_crs_is_hashable_and_comparable() -> None:
    assert parse_source_crs("EPSG:4547") == parse_source_crs("4547")
    assert len({parse_source_crs("wgs84"), parse_source_crs("EPSG:4326")}) == 1
    assert isinstance(parse_source_crs("gcj02"), SourceCRS)


# --------------------------------------------------------------------------- file metadata

ESRI_CGCS2000_WKT = (
    'GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",'
    'SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]]'
)


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("EPSG:4326", "EPSG:4326"),
        (pyproj.CRS.from_epsg(4547).to_wkt(), "EPSG:4547"),
        (ESRI_CGCS2000_WKT, "EPSG:4490"),  # ESRI .prj without an authority code
        (None, None),
        ("", None),
        ("not a crs at all", None),
    ],
)
def test_detect_crs_from_wkt_or_authority(declared: str | None, expected: str | None) -> None:
    assert detect_crs_from_wkt_or_authority(declared) == expected
