"""The in-process matcher and PostGIS (ST_Covers + GiST) agree, edges and vertices included."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from backend.core.db import create_db_engine, make_session_factory, transaction
from backend.core.settings import load_settings
from backend.grids import repository
from backend.grids.matcher import GridIndex, MatchKind
from tests.support.grids import lattice_grids, store_version


def _points(geoms: list[shapely.Geometry], rng: np.random.Generator, n_random: int):
    x0, y0, x1, y1 = shapely.total_bounds(np.array(geoms))
    pad = 0.0005  # some points outside the city, near and far
    xs = list(rng.uniform(x0 - pad, x1 + pad, n_random))
    ys = list(rng.uniform(y0 - pad, y1 + pad, n_random))
    picked = rng.choice(len(geoms), size=min(len(geoms), 600), replace=False)
    for i in picked.tolist():
        ring = np.asarray(geoms[i].geoms[0].exterior.coords)
        corner = int(rng.integers(0, 4))
        xs.append(ring[corner, 0]), ys.append(ring[corner, 1])  # a vertex
        a, b = ring[corner], ring[corner + 1]
        xs.append((a[0] + b[0]) / 2), ys.append((a[1] + b[1]) / 2)  # an edge midpoint
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize("jitter_m", [0.0, 12.0], ids=["axis-aligned", "jittered"])
def test_matcher_and_st_covers_agree(postgis_url: str, jitter_m: float) -> None:
    codes, geoms = lattice_grids(40, 40, jitter_m=jitter_m, seed=5)
    engine = create_db_engine(load_settings(database_url=postgis_url))
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        version_id = store_version(session, codes, geoms)
    rng = np.random.default_rng(2026)
    xs, ys = _points(geoms, rng, n_random=3800)
    assert len(xs) == 5000

    index = GridIndex(version_id, codes, geoms)
    bulk = index.match_many(xs, ys)
    with transaction(sessions) as session:
        session.execute(text("ANALYZE grid_cells"))
    with transaction(sessions) as session:
        sql = repository.covering_codes_bulk_sql(session, version_id, xs.tolist(), ys.tolist())
        plan = session.execute(
            text("EXPLAIN " + repository.BULK_COVERS_SQL),
            {"lons": xs.tolist(), "lats": ys.tolist(), "version_id": version_id},
        ).all()
    engine.dispose()

    kinds = bulk.kinds()
    on_boundary = 0
    for i, (sql_code, sql_count) in enumerate(sql):
        ours = (
            index.codes[bulk.grid_index[i]]
            if kinds[i] in (MatchKind.inside, MatchKind.edge)
            else None
        )
        assert ours == sql_code, (xs[i], ys[i], ours, sql_code)
        if sql_code is not None:
            assert bulk.candidate_count[i] == sql_count, (xs[i], ys[i])
            on_boundary += sql_count > 1
    # The test is only meaningful if many points sit exactly on shared edges/vertices.
    assert on_boundary >= 600
    assert any("ix_grid_cells_geom" in str(row) for row in plan), plan
