"""A uniform bucket raster over a grid set: the matcher's spatial index.

Each bucket (a few times smaller than a grid) is classified once when an index is built:

* *interior*: its box, enlarged by a small margin, lies in the interior of exactly one grid
  and touches no other, so every point in it matches that grid with no geometry test;
* *mixed*: the grids whose geometry touches the box, as candidates to test exactly;
* *empty*: no grid touches it, so a point there goes straight to the nearest-grid search.

Candidates are stored in CSR form (bucket → row, row → slice of grid indices, ascending), which
serves both the scalar path (through memoryviews, no numpy scalar overhead) and the vectorised
one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree

EMPTY = -2
MIXED = -1
MAX_BUCKETS = 2_000_000
BUCKETS_PER_GRID_SIDE = 8
# Bucket boxes are enlarged by this much (degrees, ~1 cm) before the interior test, so a point
# whose bucket index was rounded across a bucket edge is still inside the box that was tested.
MARGIN_DEG = 1e-7
_CHUNK_BUCKETS = 250_000

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BucketRaster:
    x0: float
    y0: float
    inv_dx: float
    inv_dy: float
    nx: int
    ny: int
    state: npt.NDArray[np.int32]  # grid index (interior), MIXED or EMPTY
    mixed_row: npt.NDArray[np.int32]  # bucket -> CSR row (mixed buckets), else -1
    row_start: IntArray  # CSR row -> first position in row_grids; one extra entry at the end
    row_grids: IntArray  # candidate grid indices, ascending within each row
    # Python-int views of the arrays above, for the per-point path.
    state_view: memoryview
    mixed_row_view: memoryview
    row_start_view: memoryview
    row_grids_view: memoryview

    @property
    def bucket_count(self) -> int:
        return self.nx * self.ny

    def buckets_of(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> IntArray:
        """Bucket id of each point, -1 outside the raster (same arithmetic as the scalar path)."""
        fx = (x - self.x0) * self.inv_dx
        fy = (y - self.y0) * self.inv_dy
        inside = (fx >= 0) & (fy >= 0) & (fx < self.nx) & (fy < self.ny)
        out = np.full(x.shape[0], -1, dtype=np.int64)
        out[inside] = fy[inside].astype(np.int64) * self.nx + fx[inside].astype(np.int64)
        return out


def build_raster(geoms: npt.NDArray[np.object_], tree: STRtree) -> BucketRaster:
    if geoms.size == 0:
        return _assemble(0.0, 0.0, 1.0, 1.0, 0, 0, np.zeros(0, np.int32), [], [])
    bounds = shapely.bounds(geoms)
    x0, y0 = float(bounds[:, 0].min()), float(bounds[:, 1].min())
    x1, y1 = float(bounds[:, 2].max()), float(bounds[:, 3].max())
    dx = max(float(np.median(bounds[:, 2] - bounds[:, 0])) / BUCKETS_PER_GRID_SIDE, 1e-6)
    dy = max(float(np.median(bounds[:, 3] - bounds[:, 1])) / BUCKETS_PER_GRID_SIDE, 1e-6)
    nx, ny = int((x1 - x0) / dx) + 1, int((y1 - y0) / dy) + 1
    if nx * ny > MAX_BUCKETS:
        # A sprawling extent (several cities, far-off islands): coarser buckets keep memory
        # bounded; matches stay exact, only more of them take the exact-test path.
        scale = (nx * ny / MAX_BUCKETS) ** 0.5
        dx, dy = dx * scale, dy * scale
        nx, ny = int((x1 - x0) / dx) + 1, int((y1 - y0) / dy) + 1
    state = np.full(nx * ny, EMPTY, dtype=np.int32)
    mixed_ids: list[IntArray] = []
    mixed_pairs: list[tuple[IntArray, IntArray]] = []
    rows_per_chunk = max(1, _CHUNK_BUCKETS // nx)
    for first_row in range(0, ny, rows_per_chunk):
        rows = np.arange(first_row, min(ny, first_row + rows_per_chunk), dtype=np.int64)
        ids, counts, grids = _classify_rows(geoms, tree, x0, y0, dx, dy, nx, rows, state)
        mixed_ids.append(ids)
        mixed_pairs.append((counts, grids))
    return _assemble(x0, y0, dx, dy, nx, ny, state, mixed_ids, mixed_pairs)


def _classify_rows(
    geoms: npt.NDArray[np.object_],
    tree: STRtree,
    x0: float,
    y0: float,
    dx: float,
    dy: float,
    nx: int,
    rows: IntArray,
    state: npt.NDArray[np.int32],
) -> tuple[IntArray, IntArray, IntArray]:
    """Classify the buckets of some raster rows; returns the mixed ones in CSR pieces."""
    ix = np.tile(np.arange(nx, dtype=np.int64), rows.size)
    iy = np.repeat(rows, nx)
    boxes = shapely.box(
        x0 + ix * dx - MARGIN_DEG,
        y0 + iy * dy - MARGIN_DEG,
        x0 + (ix + 1) * dx + MARGIN_DEG,
        y0 + (iy + 1) * dy + MARGIN_DEG,
    )
    box_pos, grid_pos = tree.query(boxes, predicate="intersects")
    bucket_ids = iy * nx + ix
    nothing = np.zeros(0, dtype=np.int64)
    if box_pos.size == 0:
        return nothing, nothing, nothing
    order = np.lexsort((grid_pos, box_pos))
    box_pos, grid_pos = box_pos[order], grid_pos[order]
    hits = np.bincount(box_pos, minlength=boxes.size)
    first = np.searchsorted(box_pos, np.arange(boxes.size))

    interior = np.zeros(boxes.size, dtype=bool)
    single = np.flatnonzero(hits == 1)
    if single.size:
        only = grid_pos[first[single]]
        inside = shapely.contains_properly(geoms[only], boxes[single])
        interior[single[inside]] = True
        state[bucket_ids[single[inside]]] = only[inside]

    mixed = (hits > 0) & ~interior
    state[bucket_ids[mixed]] = MIXED
    keep = mixed[box_pos]  # pairs are sorted by box, so kept pairs are already CSR-ordered
    return bucket_ids[mixed], hits[mixed].astype(np.int64), grid_pos[keep].astype(np.int64)


def _view(array: npt.NDArray[np.int32] | npt.NDArray[np.int64]) -> memoryview:
    return memoryview(array)  # type: ignore[arg-type]  # ndarray implements the buffer protocol


def _assemble(
    x0: float,
    y0: float,
    dx: float,
    dy: float,
    nx: int,
    ny: int,
    state: npt.NDArray[np.int32],
    mixed_ids: list[IntArray],
    mixed_pairs: list[tuple[IntArray, IntArray]],
) -> BucketRaster:
    ids = np.concatenate(mixed_ids) if mixed_ids else np.zeros(0, np.int64)
    counts = np.concatenate([c for c, _ in mixed_pairs]) if mixed_pairs else np.zeros(0, np.int64)
    grids = np.concatenate([g for _, g in mixed_pairs]) if mixed_pairs else np.zeros(0, np.int64)
    mixed_row = np.full(nx * ny, -1, dtype=np.int32)
    mixed_row[ids] = np.arange(ids.size, dtype=np.int32)
    row_start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return BucketRaster(
        x0=x0,
        y0=y0,
        inv_dx=1.0 / dx,
        inv_dy=1.0 / dy,
        nx=nx,
        ny=ny,
        state=state,
        mixed_row=mixed_row,
        row_start=row_start,
        row_grids=grids,
        state_view=_view(state),
        mixed_row_view=_view(mixed_row),
        row_start_view=_view(row_start),
        row_grids_view=_view(grids),
    )
