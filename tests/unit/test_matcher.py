"""GridIndex: covers semantics on edges and vertices, tie-breaks, tolerance, bulk = single."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.grids.matcher import GridIndex, MatchKind
from tests.support.grids import lattice_grids


@pytest.fixture(scope="module")
def squares() -> GridIndex:
    # Axis-aligned 0.001° squares: edges and vertices are exactly representable.
    codes, geoms = [], []
    for row in range(4):
        for col in range(4):
            x, y = 120.0 + col * 0.001, 30.0 + row * 0.001
            codes.append(f"330106001{row + 1:03d}{col + 1:02d}")
            geoms.append(shapely.box(x, y, x + 0.001, y + 0.001))
    return GridIndex(7, codes, geoms, tolerance_m=30)


@pytest.fixture(scope="module")
def jittered() -> tuple[GridIndex, list[str], list[shapely.Geometry]]:
    codes, geoms = lattice_grids(30, 30)
    return GridIndex(3, codes, geoms), codes, geoms


def test_point_inside_one_grid(squares: GridIndex) -> None:
    found = squares.match(120.0005, 30.0005)
    assert found == (7, MatchKind.inside, "33010600100101", ("33010600100101",), 0.0)


def test_point_on_shared_edge_keeps_both_and_picks_lowest(squares: GridIndex) -> None:
    found = squares.match(120.001, 30.0005)
    assert found.kind is MatchKind.edge
    assert found.candidates == ("33010600100101", "33010600100102")
    assert found.grid_code == "33010600100101"


def test_point_on_shared_vertex_touches_four(squares: GridIndex) -> None:
    found = squares.match(120.001, 30.001)
    assert found.kind is MatchKind.edge
    assert found.candidates == (
        "33010600100101",
        "33010600100102",
        "33010600100201",
        "33010600100202",
    )
    assert found.grid_code == "33010600100101"


def test_outer_boundary_is_edge_of_one(squares: GridIndex) -> None:
    found = squares.match(120.0, 30.0005)
    assert found.kind is MatchKind.edge
    assert found.candidates == ("33010600100101",)


def test_near_point_snaps_within_tolerance(squares: GridIndex) -> None:
    # 20 m west of the city's west edge at lat 30.0005.
    dlon = 20 / (111_320 * math.cos(math.radians(30.0005)))
    found = squares.match(120.0 - dlon, 30.0005)
    assert found.kind is MatchKind.nearest
    assert found.grid_code == "33010600100101"
    assert found.distance_m == pytest.approx(20, abs=0.2)


def test_far_point_is_outside_with_distance(squares: GridIndex) -> None:
    dlon = 45 / (111_320 * math.cos(math.radians(30.0005)))
    found = squares.match(120.0 - dlon, 30.0005)
    assert found.kind is MatchKind.outside
    assert found.grid_code is None and found.candidates == ()
    assert found.distance_m == pytest.approx(45, abs=0.3)


def test_nearest_tie_goes_to_lowest_code(squares: GridIndex) -> None:
    # Due south of the vertex shared by the two bottom-left squares: equidistant to both.
    found = squares.match(120.001, 30.0 - 10 / 111_320)
    assert found.kind is MatchKind.nearest
    assert found.grid_code == "33010600100101"


def test_nearest_uses_metres_not_degrees() -> None:
    # At lat 60 a degree of longitude is half a degree of latitude: the grid that is nearer
    # in degrees (north, 0.00025°) is farther in metres (27.8 m) than the east one (0.0004° lon
    # = 22.3 m). Degree-nearest search alone would pick the wrong grid.
    north = shapely.box(10.0, 60.00025, 10.001, 60.001)
    east = shapely.box(10.0004, 59.999, 10.001, 60.0002)
    index = GridIndex(1, ["north0000000001", "east00000000001"], [north, east], tolerance_m=50)
    found = index.match(10.0, 60.0)
    assert found.grid_code == "east00000000001"
    assert found.distance_m == pytest.approx(22.3, abs=0.3)


def test_overlapping_grids_inside_both(squares: GridIndex) -> None:
    a = shapely.box(0, 0, 0.002, 0.001)
    b = shapely.box(0.001, 0, 0.003, 0.001)
    index = GridIndex(1, ["b", "a"], [b, a])
    found = index.match(0.0015, 0.0005)
    assert found.kind is MatchKind.inside
    assert found.candidates == ("a", "b") and found.grid_code == "a"


def test_empty_index_matches_nothing() -> None:
    index = GridIndex(1, [], [])
    assert index.match(120, 30).kind is MatchKind.outside


def test_nan_is_outside_not_a_crash(squares: GridIndex) -> None:
    assert squares.match(float("nan"), 30.0).kind is MatchKind.outside


def test_bulk_equals_single_on_random_edges_and_vertices(jittered) -> None:
    index, _codes, geoms = jittered
    rng = np.random.default_rng(11)
    x0, y0, x1, y1 = shapely.total_bounds(np.array(geoms))
    pad = 0.0006  # some points fall outside, within and beyond the tolerance
    xs = list(rng.uniform(x0 - pad, x1 + pad, 3000))
    ys = list(rng.uniform(y0 - pad, y1 + pad, 3000))
    for geom in geoms[::7]:
        ring = np.asarray(geom.geoms[0].exterior.coords)
        xs.extend(ring[:, 0]), ys.extend(ring[:, 1])  # vertices
    bulk = index.match_many(np.array(xs), np.array(ys))
    kinds = bulk.kinds()
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        single = index.match(x, y)
        expected_code = None if bulk.grid_index[i] < 0 else index.codes[bulk.grid_index[i]]
        assert single.grid_code == expected_code, (x, y)
        assert single.kind is kinds[i], (x, y)
        if single.kind in (MatchKind.inside, MatchKind.edge):
            assert len(single.candidates) == bulk.candidate_count[i]
            assert single.candidates == index.candidates_of(x, y)
        elif single.distance_m is not None:
            assert single.distance_m == pytest.approx(bulk.distance_m[i])


def test_vertices_of_jittered_lattice_are_edges(jittered) -> None:
    index, _codes, geoms = jittered
    interior_vertex = np.asarray(geoms[31].geoms[0].exterior.coords)[2]
    found = index.match(*interior_vertex)
    assert found.kind is MatchKind.edge
    assert len(found.candidates) == 4


@settings(max_examples=300, deadline=None)
@given(st.floats(119.999, 120.004, allow_nan=False), st.floats(29.999, 30.004, allow_nan=False))
def test_matches_agree_with_brute_force(squares: GridIndex, lon: float, lat: float) -> None:
    covering = tuple(
        code
        for code, geom in zip(squares.codes, squares.geometries, strict=True)
        if geom.covers(shapely.Point(lon, lat))
    )
    found = squares.match(lon, lat)
    if covering:
        assert found.candidates == covering
        assert found.grid_code == covering[0]
    else:
        assert found.kind in (MatchKind.nearest, MatchKind.outside)


def test_nearest_search_radius_is_wide_enough_on_the_ellipsoid() -> None:
    # Grid A is 30.02 m due north, grid B 29.99 m due east (tolerance 30 m). B is nearer in
    # metres but farther in degrees; a search radius computed too tightly misses it.
    from backend.geo.metric import radii_of_curvature

    lon0, lat0 = 120.0, 30.0
    m, n = radii_of_curvature(lat0)
    d_north = 30.02 / (math.radians(1) * m)
    d_east = 29.99 / (math.radians(1) * n * math.cos(math.radians(lat0)))
    a = shapely.box(lon0 - 1e-4, lat0 + d_north, lon0 + 1e-4, lat0 + d_north + 1e-4)
    b = shapely.box(lon0 + d_east, lat0 - 1e-4, lon0 + d_east + 1e-4, lat0 + 1e-4)
    index = GridIndex(1, ["A0000000000001", "B0000000000001"], [a, b], tolerance_m=30.0)
    found = index.match(lon0, lat0)
    assert found.kind is MatchKind.nearest and found.grid_code == "B0000000000001"
    assert found.distance_m == pytest.approx(29.99, abs=0.01)
