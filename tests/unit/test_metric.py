"""backend.geo.metric against pyproj's geodesic reference (GeographicLib)."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.geo.metric import (
    LocalMetricProjection,
    distance_m,
    distances_m,
    geodesic_area_m2,
    metres_to_degrees_bounds,
)

GEOD = pyproj.Geod(ellps="WGS84")
WUHAN = (114.3, 30.5)


def geod_point(lon: float, lat: float, azimuth: float, dist: float) -> tuple[float, float]:
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, dist)
    return lon2, lat2


def test_projected_area_of_small_square_matches_geodesic_area() -> None:
    square = shapely.box(114.3, 30.0, 114.301, 30.001)
    geodesic = geodesic_area_m2(square)
    # 0.001° x 0.001° at 30° N: ~96.5 m x ~110.9 m.
    assert 10_600 < geodesic < 10_750
    proj = LocalMetricProjection.from_geometries(square)
    assert shapely.area(proj.to_metric(square)) == pytest.approx(geodesic, rel=1e-6)


def test_equal_area_holds_far_from_the_centre() -> None:
    # A grid 40 km from the projection centre: LAEA is equal-area everywhere.
    proj = LocalMetricProjection(114.3, 30.5)
    square = shapely.box(114.7, 30.6, 114.701, 30.601)
    assert shapely.area(proj.to_metric(square)) == pytest.approx(geodesic_area_m2(square), rel=1e-6)


def test_geodesic_area_ignores_ring_orientation() -> None:
    shell = [(114.3, 30.5), (114.302, 30.5), (114.302, 30.502), (114.3, 30.502)]
    hole = [(114.3005, 30.5005), (114.3015, 30.5005), (114.3015, 30.5015), (114.3005, 30.5015)]
    # Both rings counter-clockwise: pyproj alone would add the hole instead of removing it.
    with_hole = shapely.Polygon(shell, [hole])
    expected = geodesic_area_m2(shapely.Polygon(shell)) - geodesic_area_m2(shapely.Polygon(hole))
    assert geodesic_area_m2(with_hole) == pytest.approx(expected, rel=1e-9)
    assert geodesic_area_m2(shapely.Polygon(shell[::-1])) == pytest.approx(
        geodesic_area_m2(shapely.Polygon(shell)), rel=1e-12
    )


def test_geodesic_area_of_empty_and_missing_is_zero() -> None:
    assert geodesic_area_m2(shapely.Polygon()) == 0.0
    assert geodesic_area_m2(None) == 0.0


@pytest.mark.parametrize("dist", [1.0, 5.0, 20.0, 100.0, 250.0, 500.0])
@pytest.mark.parametrize("azimuth", [0.0, 37.0, 90.0, 135.0, 200.0, 300.0])
@pytest.mark.parametrize("lat", [18.0, 30.5, 45.0, 53.0])
def test_distance_to_point_matches_geodesic(dist: float, azimuth: float, lat: float) -> None:
    lon = 114.3
    target = shapely.Point(*geod_point(lon, lat, azimuth, dist))
    # Documented bound is ~0.003 % at 1 km; allow 0.01 % plus 1 mm of float noise.
    assert distance_m(lon, lat, target) == pytest.approx(dist, rel=1e-4, abs=1e-3)


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(min_value=-55, max_value=55),
    lon=st.floats(min_value=-179, max_value=179),
    azimuth=st.floats(min_value=0, max_value=360),
    dist=st.floats(min_value=1, max_value=1000),
)
def test_distance_matches_geodesic_anywhere_below_1km(
    lat: float, lon: float, azimuth: float, dist: float
) -> None:
    target = shapely.Point(*geod_point(lon, lat, azimuth, dist))
    assert distance_m(lon, lat, target) == pytest.approx(dist, rel=1e-4, abs=1e-3)


def test_distance_to_polygon_is_zero_inside_and_edge_distance_outside() -> None:
    proj = LocalMetricProjection(*WUHAN)
    grid = proj.to_lonlat(shapely.box(0, 0, 100, 100))
    inside = proj.to_lonlat(shapely.Point(50, 50))
    assert distance_m(inside.x, inside.y, grid) == 0.0
    on_edge = proj.to_lonlat(shapely.Point(100, 50))
    assert distance_m(on_edge.x, on_edge.y, grid) == pytest.approx(0.0, abs=1e-3)
    outside = proj.to_lonlat(shapely.Point(130, 50))  # 30 m east of the east edge
    assert distance_m(outside.x, outside.y, grid) == pytest.approx(30.0, rel=1e-3)


def test_distances_vectorised_and_empty_is_infinitely_far() -> None:
    lon, lat = WUHAN
    near = shapely.Point(*geod_point(lon, lat, 90, 50))
    far = shapely.Point(*geod_point(lon, lat, 0, 400))
    result = distances_m(lon, lat, [near, far, shapely.Polygon(), None])
    assert result[:2] == pytest.approx([50, 400], rel=1e-4)
    assert math.isinf(result[2]) and math.isinf(result[3])
    assert math.isinf(distance_m(lon, lat, shapely.Polygon()))


def test_distance_across_the_antimeridian_takes_the_short_way() -> None:
    target = shapely.Point(*geod_point(179.9999, 10.0, 90, 100))  # lands at about -179.9999
    assert target.x < 0
    assert distance_m(179.9999, 10.0, target) == pytest.approx(100, rel=1e-4)


def test_projection_round_trip_and_lengths() -> None:
    proj = LocalMetricProjection.from_bounds((114.0, 30.3, 114.6, 30.7))
    assert (proj.lon0, proj.lat0) == pytest.approx((114.3, 30.5))
    poly = shapely.box(114.51, 30.61, 114.52, 30.62)
    back = proj.to_lonlat(proj.to_metric(poly))
    # PROJ 9.5's ellipsoidal LAEA inverse carries a ~1.3 mm latitude bias; 1e-7° is ~1 cm.
    assert shapely.equals_exact(back, poly, tolerance=1e-7)

    # Lengths 25 km from the centre are within 0.01 % of the geodesic.
    lons = np.array([114.5, 114.51])
    lats = np.array([30.6, 30.61])
    x, y = proj.to_metric_arrays(lons, lats)
    planar = math.hypot(x[1] - x[0], y[1] - y[0])
    geodesic = GEOD.inv(lons[0], lats[0], lons[1], lats[1])[2]
    assert planar == pytest.approx(geodesic, rel=1e-4)
    lon_back, lat_back = proj.to_lonlat_arrays(x, y)
    assert lon_back == pytest.approx(lons, abs=1e-7) and lat_back == pytest.approx(lats, abs=1e-7)


def test_projection_transforms_arrays_of_geometries() -> None:
    proj = LocalMetricProjection(*WUHAN)
    geoms = np.array([shapely.box(114.3, 30.5, 114.301, 30.501), None], dtype=object)
    out = proj.to_metric(geoms)
    assert out[1] is None
    assert shapely.area(out[0]) == pytest.approx(geodesic_area_m2(geoms[0]), rel=1e-6)


@pytest.mark.parametrize("bad", [(114.3, 95.0), (float("nan"), 30.0), (600.0, 30.0)])
def test_projection_rejects_non_lonlat_centres(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        LocalMetricProjection(*bad)


def test_projection_from_empty_bounds_is_an_error() -> None:
    with pytest.raises(ValueError):
        LocalMetricProjection.from_geometries(np.array([shapely.Polygon()], dtype=object))


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(min_value=-80, max_value=80),
    azimuth=st.floats(min_value=0, max_value=360),
    metres=st.floats(min_value=0.5, max_value=50_000),
    fraction=st.floats(min_value=0, max_value=1),
)
def test_degree_bounds_are_conservative(
    lat: float, azimuth: float, metres: float, fraction: float
) -> None:
    lon = 114.3
    dlon, dlat = metres_to_degrees_bounds(lat, metres)
    lon2, lat2 = geod_point(lon, lat, azimuth, metres * fraction)
    assert abs(lon2 - lon) <= dlon
    assert abs(lat2 - lat) <= dlat


def test_degree_bounds_are_not_wildly_loose() -> None:
    dlon, dlat = metres_to_degrees_bounds(30.0, 1000.0)
    assert dlat == pytest.approx(1000 / 110_852, rel=0.02)
    assert dlon == pytest.approx(1000 / (111_320 * math.cos(math.radians(30))), rel=0.02)


def test_degree_bounds_near_the_pole_cover_all_longitudes() -> None:
    assert metres_to_degrees_bounds(89.99, 5_000)[0] == 180.0
    with pytest.raises(ValueError):
        metres_to_degrees_bounds(30.0, -1.0)
