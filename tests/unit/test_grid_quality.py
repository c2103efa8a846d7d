"""Grid import quality report: repair, overlaps, gaps, on hand-made grids with known answers.

Grids are built in metres in a local equal-area projection and converted to lon/lat,
so "a 10 m x 100 m overlap" really is 1000 m² on the ellipsoid.
"""

from __future__ import annotations

from collections.abc import Collection

import pytest
import shapely

from backend.geo.metric import LocalMetricProjection, geodesic_area_m2
from backend.grids.quality import (
    Gap,
    GridPolygonInvalid,
    InvalidPolygon,
    Overlap,
    coverage_summary,
    find_gaps,
    find_overlaps,
    repair_polygons,
)

PROJ = LocalMetricProjection(114.3, 30.5)  # Wuhan


def lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    return PROJ.to_lonlat(geom)


def square(x: float, y: float, size: float = 100.0) -> shapely.Geometry:
    """A grid cell with its south-west corner x, y metres from the city centre."""
    return lonlat(shapely.box(x, y, x + size, y + size))


def tiling(
    cols: int, rows: int, *, skip: Collection[tuple[int, int]] = ()
) -> tuple[list[shapely.Geometry], list[str]]:
    geoms: list[shapely.Geometry] = []
    codes: list[str] = []
    for r in range(rows):
        for c in range(cols):
            if (c, r) in skip:
                continue
            geoms.append(square(c * 100.0, r * 100.0))
            codes.append(f"G{r:02d}{c:02d}")
    return geoms, codes


BOW_TIE = lonlat(shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100), (0, 0)]))


# --------------------------------------------------------------------------- repair


def test_valid_polygons_become_multipolygons_unchanged() -> None:
    geoms, codes = tiling(2, 1)
    fixed, report = repair_polygons(geoms, codes, mode="repair")
    assert report == []
    assert all(g.geom_type == "MultiPolygon" for g in fixed)
    assert all(shapely.equals(a, b) for a, b in zip(fixed, geoms, strict=True))


def test_bow_tie_is_repaired_into_its_two_triangles() -> None:
    geoms = [square(0, 0), BOW_TIE]
    fixed, report = repair_polygons(geoms, ["A", "B"], mode="repair")
    assert report == [InvalidPolygon(index=1, code="B", reason=report[0].reason, repaired=True)]
    assert report[0].reason.startswith("Self-intersection")
    assert fixed[1].geom_type == "MultiPolygon"
    assert shapely.is_valid(fixed[1])
    assert len(fixed[1].geoms) == 2
    # Two triangles of half a 100 m square each: 5000 m² in total.
    assert geodesic_area_m2(fixed[1]) == pytest.approx(5000, rel=1e-3)


def test_refuse_mode_lists_every_invalid_polygon() -> None:
    second_bow_tie = lonlat(shapely.Polygon([(200, 0), (300, 100), (300, 0), (200, 100)]))
    geoms = [BOW_TIE, square(100, 0), second_bow_tie]
    with pytest.raises(GridPolygonInvalid) as info:
        repair_polygons(geoms, ["A", "B", "C"], mode="refuse")
    err = info.value
    assert err.code == "grid_polygon_invalid" and err.status == 422
    invalid = err.extra["invalid"]
    assert [(p["index"], p["code"]) for p in invalid] == [(0, "A"), (2, "C")]
    assert all(p["reason"].startswith("Self-intersection") for p in invalid)
    assert all(p["repaired"] is False for p in invalid)
    assert err.extra["invalid_count"] == 2
    assert "A" in err.detail and "C" in err.detail


def test_refuse_mode_passes_valid_input() -> None:
    geoms, codes = tiling(3, 1)
    fixed, report = repair_polygons(geoms, codes, mode="refuse")
    assert report == [] and len(fixed) == 3


@pytest.mark.parametrize("mode", ["repair", "refuse"])
def test_empty_missing_and_non_polygon_geometries_are_refused(mode: str) -> None:
    geoms = [square(0, 0), shapely.Polygon(), None, shapely.LineString([(0, 0), (1, 1)])]
    with pytest.raises(GridPolygonInvalid) as info:
        repair_polygons(geoms, ["OK", "E", "N", "L"], mode=mode)  # type: ignore[arg-type]
    reasons = {p["code"]: p["reason"] for p in info.value.extra["invalid"]}
    assert reasons == {
        "E": "empty geometry",
        "N": "missing geometry",
        "L": "not a polygon (LineString)",
    }


def test_collapsed_polygon_is_unrepairable() -> None:
    # All vertices on one line: no area left after make_valid.
    flat = shapely.Polygon([(114.3, 30.5), (114.3005, 30.5), (114.301, 30.5), (114.3, 30.5)])
    with pytest.raises(GridPolygonInvalid) as info:
        repair_polygons([square(0, 0), flat], ["A", "FLAT"], mode="repair")
    (problem,) = info.value.extra["invalid"]
    assert problem["code"] == "FLAT" and problem["reason"].startswith("unrepairable")


def test_non_finite_coordinates_are_refused() -> None:
    with pytest.warns(RuntimeWarning):  # shapely warns when building it; we want it anyway
        nan_poly = shapely.Polygon([(114.3, 30.5), (float("nan"), 30.5), (114.31, 30.51)])
    with pytest.raises(GridPolygonInvalid) as info:
        repair_polygons([nan_poly], ["NAN"], mode="repair")
    assert "non-finite" in info.value.extra["invalid"][0]["reason"]


def test_collections_of_polygons_and_3d_input_are_normalised() -> None:
    a, b = square(0, 0), square(200, 0)
    collection = shapely.GeometryCollection([a, shapely.MultiPolygon([b])])
    with_z = shapely.force_3d(square(400, 0), 12.5)
    fixed, report = repair_polygons([collection, with_z], ["GC", "Z"], mode="refuse")
    assert report == []
    assert fixed[0].geom_type == "MultiPolygon" and len(fixed[0].geoms) == 2
    assert not shapely.has_z(fixed[1])


def test_overlapping_parts_of_one_grid_are_merged_by_repair() -> None:
    # A MultiPolygon whose parts overlap is invalid; repair unions them.
    parts = shapely.MultiPolygon([square(0, 0), square(50, 0)])
    fixed, report = repair_polygons([parts], ["M"], mode="repair")
    assert report[0].repaired
    assert geodesic_area_m2(fixed[0]) == pytest.approx(15_000, rel=1e-3)


def test_mismatched_codes_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        repair_polygons([square(0, 0)], [], mode="repair")
    with pytest.raises(ValueError):
        repair_polygons([square(0, 0)], ["A"], mode="fix")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- overlaps


def test_known_overlap_area_is_measured_within_one_percent() -> None:
    # Two 100 m squares, the second shifted 90 m east: a 10 m x 100 m overlap.
    geoms = [square(0, 0), square(90, 0)]
    (overlap,) = find_overlaps(geoms, ["B", "A"], min_area_m2=1.0)
    assert (overlap.code_a, overlap.code_b) == ("A", "B")
    assert overlap.area_m2 == pytest.approx(1000.0, rel=0.01)


def test_containment_counts_as_overlap() -> None:
    geoms = [square(0, 0), lonlat(shapely.box(20, 20, 40, 40))]
    (overlap,) = find_overlaps(geoms, ["BIG", "SMALL"], min_area_m2=1.0)
    assert overlap.area_m2 == pytest.approx(400.0, rel=0.01)


def test_exact_tiling_has_no_overlaps_or_gaps() -> None:
    geoms, codes = tiling(6, 5)
    assert find_overlaps(geoms, codes, min_area_m2=0.01) == []
    assert find_gaps(geoms, codes, min_area_m2=0.01) == []


def test_rotated_tiling_has_no_overlaps() -> None:
    # Rotated cells defeat the bounding-box shortcut, so the exact path is exercised.
    geoms, codes = [], []
    for r in range(4):
        for c in range(4):
            cell = shapely.affinity.rotate(
                shapely.box(c * 100, r * 100, c * 100 + 100, r * 100 + 100), 30, origin=(0, 0)
            )
            geoms.append(lonlat(cell))
            codes.append(f"R{r}{c}")
    assert find_overlaps(geoms, codes, min_area_m2=0.01) == []
    assert find_gaps(geoms, codes, min_area_m2=0.01) == []


def test_sliver_overlap_below_tolerance_is_ignored() -> None:
    # 5 cm x 100 m = 5 m² of overlap: digitising noise, not a data error.
    geoms = [square(0, 0), square(99.95, 0)]
    assert find_overlaps(geoms, ["A", "B"], min_area_m2=10.0) == []
    (sliver,) = find_overlaps(geoms, ["A", "B"], min_area_m2=1.0)
    assert sliver.area_m2 == pytest.approx(5.0, rel=0.02)


def test_overlaps_are_sorted_largest_first() -> None:
    geoms = [square(0, 0), square(80, 0), square(1000, 0), square(1095, 0)]
    result = find_overlaps(geoms, ["A", "B", "C", "D"], min_area_m2=1.0)
    assert [(o.code_a, o.code_b) for o in result] == [("A", "B"), ("C", "D")]
    assert result[0].area_m2 == pytest.approx(2000, rel=0.01)
    assert result[1].area_m2 == pytest.approx(500, rel=0.01)


def test_overlaps_ignore_missing_geometries_and_tiny_inputs() -> None:
    assert find_overlaps([square(0, 0)], ["A"], min_area_m2=1.0) == []
    assert find_overlaps([square(0, 0), None, square(50, 0)], ["A", "N", "B"], min_area_m2=1.0) == [
        Overlap("A", "B", pytest.approx(5000, rel=0.01))  # type: ignore[arg-type]
    ]


# --------------------------------------------------------------------------- gaps


def test_known_hole_is_found_with_its_neighbours() -> None:
    geoms, codes = tiling(3, 3, skip={(1, 1)})
    (gap,) = find_gaps(geoms, codes, min_area_m2=1.0)
    assert gap.area_m2 == pytest.approx(10_000, rel=0.01)
    assert gap.neighbour_codes == tuple(sorted(codes))  # all 8 surround the hole
    missing_cell = lonlat(shapely.box(100, 100, 200, 200))
    assert missing_cell.contains(shapely.Point(gap.representative_lon, gap.representative_lat))


def test_outer_boundary_concavity_is_not_a_gap() -> None:
    # An L-shaped city: the missing corner is outside, not a hole.
    geoms, codes = tiling(3, 3, skip={(2, 2)})
    assert find_gaps(geoms, codes, min_area_m2=1.0) == []


def test_island_inside_a_hole_is_subtracted_from_the_gap() -> None:
    # 5 x 5 cells, the inner 3 x 3 removed except the very centre.
    inner = {(c, r) for c in (1, 2, 3) for r in (1, 2, 3)} - {(2, 2)}
    geoms, codes = tiling(5, 5, skip=inner)
    (gap,) = find_gaps(geoms, codes, min_area_m2=1.0)
    assert gap.area_m2 == pytest.approx(80_000, rel=0.01)
    assert "G0202" in gap.neighbour_codes  # the island touches the gap
    assert not square(200, 200).contains(
        shapely.Point(gap.representative_lon, gap.representative_lat)
    )


def test_hole_inside_an_island_is_reported_once() -> None:
    # 7 x 7 frame, gap ring inside, a 3 x 3 island with its own hole in the middle.
    gap_ring = {(c, r) for c in range(1, 6) for r in range(1, 6)} - {
        (c, r) for c in (2, 3, 4) for r in (2, 3, 4)
    }
    geoms, codes = tiling(7, 7, skip=gap_ring | {(3, 3)})
    gaps = find_gaps(geoms, codes, min_area_m2=1.0)
    assert [round(g.area_m2, -2) for g in gaps] == [160_000, 10_000]


def test_sliver_gap_below_tolerance_is_ignored() -> None:
    # A 3 x 3 block whose centre cell is 2 cm too narrow: a 2 cm x 100 m = 2 m² sliver.
    geoms, codes = tiling(3, 3, skip={(1, 1)})
    geoms.append(lonlat(shapely.box(100, 100, 199.98, 200)))
    codes.append("G0101")
    assert find_gaps(geoms, codes, min_area_m2=5.0) == []
    (sliver,) = find_gaps(geoms, codes, min_area_m2=1.0)
    assert sliver.area_m2 == pytest.approx(2.0, rel=0.05)
    assert "G0101" in sliver.neighbour_codes and "G0102" in sliver.neighbour_codes


def test_gaps_are_sorted_largest_first() -> None:
    big_hole = {(1, 1), (2, 1)}
    geoms, codes = tiling(8, 3, skip=big_hole | {(5, 1)})
    gaps = find_gaps(geoms, codes, min_area_m2=1.0)
    assert [round(g.area_m2, -2) for g in gaps] == [20_000, 10_000]
    assert isinstance(gaps[0], Gap)


def test_negative_tolerance_is_rejected() -> None:
    geoms, codes = tiling(2, 2)
    with pytest.raises(ValueError):
        find_gaps(geoms, codes, min_area_m2=-1)
    with pytest.raises(ValueError):
        find_overlaps(geoms, codes, min_area_m2=-1)


# --------------------------------------------------------------------------- at scale


def test_defects_are_found_exactly_in_a_larger_city() -> None:
    cols = rows = 40
    holes = {(c, r) for c in (2, 10, 18, 26, 34) for r in (10, 30)}
    widened = {(c, r) for c in (3, 11, 19, 27) for r in (5, 25)}
    geoms, codes = tiling(cols, rows, skip=holes)
    index = {code: i for i, code in enumerate(codes)}
    for c, r in widened:
        # 20 m into the east neighbour: one 20 m x 100 m = 2000 m² overlap each.
        geoms[index[f"G{r:02d}{c:02d}"]] = lonlat(
            shapely.box(c * 100.0, r * 100.0, c * 100.0 + 120, r * 100.0 + 100)
        )
    fixed, report = repair_polygons(geoms, codes, mode="refuse")
    assert report == []

    overlaps = find_overlaps(fixed, codes, min_area_m2=1.0)
    assert {(o.code_a, o.code_b) for o in overlaps} == {
        (f"G{r:02d}{c:02d}", f"G{r:02d}{c + 1:02d}") for c, r in widened
    }
    assert all(o.area_m2 == pytest.approx(2000, rel=0.01) for o in overlaps)

    gaps = find_gaps(fixed, codes, min_area_m2=1.0)
    assert len(gaps) == len(holes)
    assert all(g.area_m2 == pytest.approx(10_000, rel=0.01) for g in gaps)
    assert all(len(g.neighbour_codes) == 8 for g in gaps)


# --------------------------------------------------------------------------- summary


def test_coverage_summary_reports_grid_areas() -> None:
    geoms, _codes = tiling(3, 2)
    summary = coverage_summary([*geoms, None])
    assert summary.grid_count == 6
    assert summary.total_area_m2 == pytest.approx(60_000, rel=1e-3)
    assert summary.median_grid_area_m2 == pytest.approx(10_000, rel=1e-3)
    min_lon, min_lat, max_lon, max_lat = summary.bounds
    assert min_lon == pytest.approx(114.3) and min_lat == pytest.approx(30.5)
    assert max_lon > min_lon and max_lat > min_lat
    assert coverage_summary([]).grid_count == 0
