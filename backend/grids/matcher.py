"""Point → unit grid matching, in process, over one grid version.

Why in process: every report is matched when it is applied, on both storage profiles, and a
PostGIS round trip (~70 µs) costs more than a whole match here (~1-2 µs).

* Grids are sorted by code, so "lowest code wins" is "lowest index wins".
* A bucket raster (:mod:`backend.grids.bucket_raster`) answers most points without any
  geometry test and narrows the rest to a few candidates.
* Boundary semantics are "covers": a point on a shared edge or vertex is covered by every grid
  having that edge; all are reported as candidates, the lowest code is chosen, and the kind is
  ``edge``. GEOS predicates are exact, so points placed exactly on an edge behave.
* A point covered by no grid goes to the nearest grid within the tolerance (metres, measured
  in a local projection, ties to the lowest code); beyond it the result is ``outside``, which
  callers accept and flag, never drop.

The PostGIS equivalent (ST_Covers + GiST) is in :mod:`backend.grids.repository`; a test checks
that both agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree

from backend.geo.metric import distance_m
from backend.grids.bucket_raster import MIXED, build_raster

# Shapely >= 2.2 has scalar fast paths (~0.1 µs instead of ~2 µs through the ufunc machinery).
_intersects_xy = getattr(shapely.lib, "intersects_xy_scalar", None) or shapely.intersects_xy
_contains_xy = getattr(shapely.lib, "contains_xy_scalar", None) or shapely.contains_xy

# Beyond ~50 km from every grid a point is simply far outside the city: the exact metric
# search is skipped, so absurd inputs (say, near a pole) cannot make a match expensive.
FAR_DEGREES = 0.5


class MatchKind(StrEnum):
    inside = "inside"
    edge = "edge"
    nearest = "nearest"
    outside = "outside"


KINDS = (MatchKind.inside, MatchKind.edge, MatchKind.nearest, MatchKind.outside)
KIND_ID = {kind: i for i, kind in enumerate(KINDS)}


class GridMatch(NamedTuple):
    """The outcome of matching one point; recorded on the report that carried the point.

    A NamedTuple because a match is built per report point and tuples are the cheapest
    immutable records Python has.
    """

    grid_version_id: int
    kind: MatchKind
    grid_code: str | None
    candidates: tuple[str, ...]
    distance_m: float | None


@dataclass(frozen=True)
class BulkMatch:
    """Column-wise results of :meth:`GridIndex.match_many` (grid index -1: no grid)."""

    grid_version_id: int
    grid_index: npt.NDArray[np.int64]
    kind_id: npt.NDArray[np.int8]
    distance_m: npt.NDArray[np.float64]
    candidate_count: npt.NDArray[np.int32]

    def kinds(self) -> list[MatchKind]:
        return [KINDS[k] for k in self.kind_id.tolist()]


class GridIndex:
    """Immutable matcher over one grid version; swapped as a whole on activation."""

    def __init__(
        self,
        version_id: int,
        codes: Sequence[str],
        geometries: Sequence[shapely.Geometry],
        *,
        tolerance_m: float = 30.0,
    ) -> None:
        if len(codes) != len(geometries):
            raise ValueError("codes and geometries differ in length")
        order = sorted(range(len(codes)), key=codes.__getitem__)
        self.version_id = version_id
        self.tolerance_m = tolerance_m
        self.codes: tuple[str, ...] = tuple(codes[i] for i in order)
        self.geometries = np.array([geometries[i] for i in order], dtype=object)
        shapely.prepare(self.geometries)
        self._tree = STRtree(self.geometries)
        self.raster = build_raster(self.geometries, self._tree)

    def __len__(self) -> int:
        return len(self.codes)

    # -- one point ------------------------------------------------------------------------

    def match(self, lon: float, lat: float) -> GridMatch:
        """Match one WGS-84 lon/lat point (already normalised from the device's system)."""
        r = self.raster
        fx = (lon - r.x0) * r.inv_dx
        fy = (lat - r.y0) * r.inv_dy
        if 0.0 <= fx < r.nx and 0.0 <= fy < r.ny:
            bucket = int(fy) * r.nx + int(fx)
            state = r.state_view[bucket]
            if state >= 0:
                code = self.codes[state]
                return GridMatch(self.version_id, MatchKind.inside, code, (code,), 0.0)
            if state == MIXED:
                found = self._match_candidates(lon, lat, r.mixed_row_view[bucket])
                if found is not None:
                    return found
        return self._match_nearest(lon, lat)

    def _match_candidates(self, lon: float, lat: float, row: int) -> GridMatch | None:
        r, geoms = self.raster, self.geometries
        start, end = r.row_start_view[row], r.row_start_view[row + 1]
        covering = [
            g for g in r.row_grids_view[start:end].tolist() if _intersects_xy(geoms[g], lon, lat)
        ]
        if not covering:
            return None
        chosen = covering[0]  # candidates ascend, so this is the lowest code
        kind = MatchKind.inside if _contains_xy(geoms[chosen], lon, lat) else MatchKind.edge
        codes = tuple(self.codes[g] for g in covering)
        return GridMatch(self.version_id, kind, codes[0], codes, 0.0)

    def _match_nearest(self, lon: float, lat: float) -> GridMatch:
        index, distance = self.nearest(lon, lat)
        if index is not None and distance <= self.tolerance_m:
            code = self.codes[index]
            return GridMatch(self.version_id, MatchKind.nearest, code, (code,), distance)
        known = None if index is None else distance
        return GridMatch(self.version_id, MatchKind.outside, None, (), known)

    def nearest(self, lon: float, lat: float) -> tuple[int | None, float]:
        """The metrically nearest grid and its distance in metres (ties: lowest code).

        Exact for the distances that decide a match; beyond ``FAR_DEGREES`` the distance is
        only indicative (reported to reviewers, never used to match).
        """
        if not self.codes or not (math.isfinite(lon) and math.isfinite(lat)):
            return None, float("inf")
        point = shapely.Point(lon, lat)
        by_degree, degrees = self._tree.query_nearest(point, return_distance=True)
        first = int(by_degree[0])
        # Nearest in degrees is not always nearest in metres (a degree of longitude is shorter
        # than one of latitude). On the ellipsoid a degree of longitude is N·cos(lat) and one
        # of latitude is M, with M <= N, so any grid nearer in metres lies within
        # degrees · M / (N · cos(lat)) <= degrees / cos(lat): the spherical bound is safe.
        radius = float(degrees[0]) / max(math.cos(math.radians(lat)), 1e-9) * 1.000001 + 1e-12
        if radius > FAR_DEGREES:
            return first, distance_m(lon, lat, self.geometries[first])
        candidates = np.sort(self._tree.query(point, predicate="dwithin", distance=radius))
        best_index, best_distance = None, float("inf")
        for i in candidates.tolist():
            d = distance_m(lon, lat, self.geometries[i])
            if d < best_distance:
                best_index, best_distance = i, d
        return best_index, best_distance

    # -- many points ----------------------------------------------------------------------

    def match_many(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> BulkMatch:
        """Vectorised :meth:`match` with identical results, for batch work and benchmarks."""
        x = np.asarray(lons, dtype=np.float64)
        y = np.asarray(lats, dtype=np.float64)
        n = x.shape[0]
        out = BulkMatch(
            self.version_id,
            grid_index=np.full(n, -1, dtype=np.int64),
            kind_id=np.full(n, KIND_ID[MatchKind.outside], dtype=np.int8),
            distance_m=np.full(n, np.nan, dtype=np.float64),
            candidate_count=np.zeros(n, dtype=np.int32),
        )
        buckets = self.raster.buckets_of(x, y)
        state = np.where(buckets >= 0, self.raster.state[np.maximum(buckets, 0)], -3)
        interior = state >= 0
        out.grid_index[interior] = state[interior]
        out.kind_id[interior] = KIND_ID[MatchKind.inside]
        out.distance_m[interior] = 0.0
        out.candidate_count[interior] = 1
        mixed = np.flatnonzero(state == MIXED)
        if mixed.size:
            self._match_candidates_many(x, y, mixed, buckets[mixed], out)
        for i in np.flatnonzero(out.grid_index < 0).tolist():
            index, metres = self.nearest(float(x[i]), float(y[i]))
            if index is not None and metres <= self.tolerance_m:
                out.grid_index[i] = index
                out.kind_id[i] = KIND_ID[MatchKind.nearest]
                out.candidate_count[i] = 1
            out.distance_m[i] = np.nan if index is None else metres
        return out

    def _match_candidates_many(
        self,
        x: npt.NDArray[np.float64],
        y: npt.NDArray[np.float64],
        points: npt.NDArray[np.intp],
        buckets: npt.NDArray[np.int64],
        out: BulkMatch,
    ) -> None:
        r = self.raster
        rows = r.mixed_row[buckets]
        starts = r.row_start[rows]
        counts = r.row_start[rows + 1] - starts
        # Expand to (point, candidate) pairs: candidate k of point p sits at starts[p] + k.
        pair_point = np.repeat(np.arange(points.size), counts)
        pair_offset = np.arange(pair_point.size) - np.repeat(np.cumsum(counts) - counts, counts)
        pair_grid = r.row_grids[np.repeat(starts, counts) + pair_offset]
        px, py = x[points[pair_point]], y[points[pair_point]]
        covered = shapely.intersects_xy(self.geometries[pair_grid], px, py)
        pair_point, pair_grid = pair_point[covered], pair_grid[covered]
        if pair_point.size == 0:
            return
        hits = np.bincount(pair_point, minlength=points.size).astype(np.int32)
        # Pairs ascend by grid within each point, so the first covered pair is the lowest code.
        first = np.unique(pair_point, return_index=True)[1]
        matched = points[pair_point[first]]
        chosen = pair_grid[first]
        out.grid_index[matched] = chosen
        out.candidate_count[matched] = hits[pair_point[first]]
        out.distance_m[matched] = 0.0
        interior = shapely.contains_xy(self.geometries[chosen], x[matched], y[matched])
        out.kind_id[matched] = np.where(
            interior, KIND_ID[MatchKind.inside], KIND_ID[MatchKind.edge]
        ).astype(np.int8)

    def candidates_of(self, lon: float, lat: float) -> tuple[str, ...]:
        """Every grid covering the point, ascending by code (full candidate list for bulk)."""
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return tuple(self.codes[i] for i in sorted(hits.tolist()))
