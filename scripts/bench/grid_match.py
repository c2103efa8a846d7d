#!/usr/bin/env python3
"""Benchmark: point → grid matching, our in-process GridIndex next to PostGIS, same work, same run.

A 10,000-cell city (100 × 100 jittered ~100 m grids) is stored in PostGIS through our own
migrations and repository; then the same points are matched by

* ours, single point: ``GridIndex.match(lon, lat)`` in a Python loop;
* ours, bulk: ``GridIndex.match_many(lons, lats)``;
* PostGIS, single point: one ``ST_Covers`` query per point over the GiST index (round trip on a
  local socket, prepared statement reused);
* PostGIS, bulk: one ``unnest`` + ``ST_Covers`` join for all points.

Both sides' answers are compared (lowest covering code per point). The last line printed is one
JSON object with the figures and ratios.

PostGIS: ``XUNCHA_BENCH_DATABASE_URL`` (a database where we may create tables), else a throwaway
cluster is provisioned exactly as the test suite does.

Usage: python scripts/bench/grid_match.py [--single N] [--bulk N] [--pg-single N] [--pg-bulk N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import shapely  # noqa: E402
from sqlalchemy import text  # noqa: E402

from backend.core import migrate  # noqa: E402
from backend.core.db import create_db_engine, make_session_factory, transaction  # noqa: E402
from backend.core.settings import load_settings  # noqa: E402
from backend.grids import repository  # noqa: E402
from backend.grids.matcher import GridIndex  # noqa: E402
from tests.support.grids import lattice_grids, store_version  # noqa: E402

# Raw psycopg with server-side prepared statements: PostGIS gets its best shot, without
# SQLAlchemy's per-statement overhead.
SINGLE_SQL = (
    "SELECT code FROM grid_cells WHERE version_id = %s "
    "AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code LIMIT 1"
)
BULK_SQL = (
    repository.BULK_COVERS_SQL.replace("CAST(:lons AS float8[])", "%(lons)s::float8[]")
    .replace("CAST(:lats AS float8[])", "%(lats)s::float8[]")
    .replace(":version_id", "%(version_id)s")
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database_url() -> tuple[str, object | None]:
    url = os.environ.get("XUNCHA_BENCH_DATABASE_URL")
    if url:
        return url, None
    from tests.support import databases
    from tests.support.services import provision_postgis

    service = provision_postgis()
    return databases.create_database(service.admin_url, "xuncha_bench"), service


def store_city(url: str, codes: list[str], geoms: list[shapely.Geometry]) -> int:
    engine = create_db_engine(load_settings(database_url=url))
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        version_id = store_version(session, codes, geoms)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE grid_cells"))
    engine.dispose()
    return version_id


def best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    timings = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=200_000, help="points for our single path")
    parser.add_argument("--bulk", type=int, default=1_000_000, help="points for our bulk path")
    parser.add_argument("--pg-single", type=int, default=5_000, help="PostGIS round trips")
    parser.add_argument("--pg-bulk", type=int, default=100_000, help="points in PostGIS join")
    args = parser.parse_args()

    codes, geoms = lattice_grids(100, 100, jitter_m=12.0, seed=42)
    log(f"city: {len(codes)} grids")
    started = time.perf_counter()
    index = GridIndex(1, codes, geoms)
    build_s = time.perf_counter() - started
    log(f"ours: index built in {build_s:.2f} s ({index.raster.bucket_count} buckets)")

    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = shapely.total_bounds(np.array(geoms))
    xs = rng.uniform(x0, x1, args.bulk)
    ys = rng.uniform(y0, y1, args.bulk)
    sx, sy = xs[: args.single].tolist(), ys[: args.single].tolist()

    match = index.match

    def single_loop() -> None:
        for x, y in zip(sx, sy, strict=True):
            match(x, y)

    single_s = best_of(3, single_loop) / len(sx)
    bulk_s = best_of(3, lambda: index.match_many(xs, ys))
    ours_single_us = single_s * 1e6
    ours_bulk_pps = len(xs) / bulk_s
    log(f"ours: single {ours_single_us:.2f} µs/point, bulk {ours_bulk_pps:,.0f} points/s")

    url, service = database_url()
    try:
        version_id = store_city(url, codes, geoms)
        engine = create_db_engine(load_settings(database_url=url))
        pg_x, pg_y = xs[: args.pg_single].tolist(), ys[: args.pg_single].tolist()
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version()")).scalar_one().split(",")[0]
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for x, y in zip(pg_x[:200], pg_y[:200], strict=True):  # warm caches and the plan
                cur.execute(SINGLE_SQL, (version_id, x, y), prepare=True)
                cur.fetchone()

            def pg_single() -> None:
                for x, y in zip(pg_x, pg_y, strict=True):
                    cur.execute(SINGLE_SQL, (version_id, x, y), prepare=True)
                    cur.fetchone()

            pg_single_s = best_of(3, pg_single) / len(pg_x)
            bx, by = xs[: args.pg_bulk].tolist(), ys[: args.pg_bulk].tolist()
            result: list[tuple[str | None, int]] = []

            def pg_bulk() -> None:
                cur.execute(BULK_SQL, {"lons": bx, "lats": by, "version_id": version_id})
                result[:] = [(code, int(n)) for _idx, code, n in cur.fetchall()]

            pg_bulk_s = best_of(2, pg_bulk)
        engine.dispose()
    finally:
        if service is not None:
            service.stop()  # type: ignore[attr-defined]

    pg_single_us = pg_single_s * 1e6
    pg_bulk_pps = args.pg_bulk / pg_bulk_s
    log(
        f"PostGIS ({version}, PostGIS {postgis}): single {pg_single_us:.1f} µs/point, "
        f"bulk {pg_bulk_pps:,.0f} points/s"
    )

    ours = index.match_many(xs[: args.pg_bulk], ys[: args.pg_bulk])
    codes_of = [
        index.codes[i] if i >= 0 and k < 2 else None
        for i, k in zip(ours.grid_index.tolist(), ours.kind_id.tolist(), strict=True)
    ]
    disagreements = sum(a != b for a, (b, _n) in zip(codes_of, result, strict=True))
    log(f"agreement: {args.pg_bulk - disagreements}/{args.pg_bulk} points")

    figures = {
        "benchmark": "grid_match",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "shapely": shapely.__version__,
            "postgresql": version,
            "postgis": postgis,
        },
        "grids": len(codes),
        "index_build_s": round(build_s, 3),
        "ours_single_us": round(ours_single_us, 3),
        "ours_bulk_points_per_s": round(ours_bulk_pps),
        "postgis_single_us": round(pg_single_us, 1),
        "postgis_bulk_points_per_s": round(pg_bulk_pps),
        "ratio_single_postgis_over_ours": round(pg_single_us / ours_single_us, 1),
        "ratio_bulk_ours_over_postgis": round(ours_bulk_pps / pg_bulk_pps, 1),
        "targets": {"single_us_max": 5.0, "bulk_points_per_s_min": 1_000_000},
        "targets_met": ours_single_us <= 5.0 and ours_bulk_pps >= 1_000_000,
        "disagreements": disagreements,
        "points_compared": args.pg_bulk,
    }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
