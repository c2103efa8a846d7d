#!/usr/bin/env python3
"""Benchmark: the coordinators' review API over 100,000 cases in PostGIS, through the real app.

100,000 cases are COPYed into a migrated PostGIS database (70 % in a dense centre, σ ≈ 2 km,
30 % spread over a 35 × 28 km city; 10 streets, 9 statuses, a year of creation times at
one-second resolution, so sort keys tie), with a 10,000-cell grid version active. Then the
app (production code path, in-process through Starlette's TestClient, so HTTP parsing,
authentication, scope and serialisation are all counted) answers:

* case tiles at z12, z14 and z16: the 3 × 3 tiles around the dense centre, round robin;
* grid tiles at z14 and z16, the same way;
* the list: first page unfiltered, first page with status + category filters, a command-centre
  user scoped to one street, ``overdue=true``, and a deep page (a cursor 10,000 rows in);
* the GeoJSON export of one street (~10,000 cases).

Median and p95 per scenario over ``--requests`` timed requests after 3 warm-ups. The last
line printed is one JSON object with the figures.

PostGIS: ``--dsn`` or ``XUNCHA_BENCH_DATABASE_URL`` (a database where we may create tables;
it is migrated and the cases table is emptied first), else a throwaway cluster is provisioned
exactly as the test suite does.

Usage: python scripts/bench/case_tiles_100k.py [--cases 100000] [--requests 30] [--dsn URL]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402

from backend.accounts import service as accounts  # noqa: E402
from backend.accounts.models import Role  # noqa: E402
from backend.app import create_app  # noqa: E402
from backend.core import migrate  # noqa: E402
from backend.core.db import create_db_engine, make_session_factory, transaction  # noqa: E402
from backend.core.runtime import Runtime  # noqa: E402
from backend.core.settings import load_settings  # noqa: E402
from backend.grids import repository as grids  # noqa: E402
from tests.support.grids import lattice_grids, store_version  # noqa: E402

CENTRE = (120.16, 30.27)
CITY = (120.0, 30.15, 120.35, 30.40)
STATUSES = ["reported", "accepted", "filed", "declined", "voided", "dispatched", "handled"]
STATUSES += ["verified", "closed"]
STATUS_WEIGHTS = [0.08, 0.04, 0.08, 0.05, 0.03, 0.15, 0.07, 0.05, 0.45]
STEP_OF = {"reported": "accept", "accepted": "accept", "filed": "dispatch"}
STEP_OF |= {"dispatched": "handle", "handled": "check", "verified": "check"}
CATEGORIES = ["0101", "0103", "0201", "0301", "0402", "0501", "0503", "0504", "0506", "0508"]
SOURCES = ["inspector"] * 6 + ["hotline_12345", "complaint", "video_patrol", "third_party"]
DEPARTMENTS = [f"dept-{i}" for i in range(5)]
PASSWORD = "bench-password-long-enough"
COLUMNS = (
    "source, status, category_code, description, address, geom, lon, lat, grid_code, on_spot, "
    "department_code, report_count, flags, rework_count, step, step_started_at, step_deadline, "
    "created_by, created_at, updated_at, version"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database_url(dsn: str | None) -> tuple[str, Any]:
    url = dsn or os.environ.get("XUNCHA_BENCH_DATABASE_URL")
    if url:
        return url, None
    from tests.support import databases
    from tests.support.services import provision_postgis

    service = provision_postgis()
    return databases.create_database(service.admin_url, "xuncha_bench_cases"), service


def case_rows(count: int, now: datetime, seed: int = 11) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    dense = rng.random(count) < 0.7
    lon = np.where(dense, rng.normal(CENTRE[0], 0.02, count), rng.uniform(CITY[0], CITY[2], count))
    lat = np.where(dense, rng.normal(CENTRE[1], 0.02, count), rng.uniform(CITY[1], CITY[3], count))
    status = rng.choice(STATUSES, count, p=STATUS_WEIGHTS)
    category = rng.choice(CATEGORIES, count)
    source = rng.choice(SOURCES, count)
    street = rng.integers(1, 11, count)
    age_s = rng.integers(0, 365 * 86400, count)
    deadline_s = rng.integers(-2 * 86400, 3 * 86400, count)
    flag_draw = rng.random(count)
    rows = []
    for i in range(count):
        created = now - timedelta(seconds=int(age_s[i]))
        st = str(status[i])
        step = STEP_OF.get(st)
        dept = DEPARTMENTS[i % 5] if st in ("dispatched", "handled", "verified", "closed") else None
        flags = ["reused_photo"] if flag_draw[i] < 0.1 else []
        if 0.1 <= flag_draw[i] < 0.15:
            flags = ["photo_time_far_from_report"]
        x, y = float(lon[i]), float(lat[i])
        grid = f"330106{int(street[i]):03d}{1 + i % 20:03d}{1 + i % 50:03d}"
        rows.append(
            (
                str(source[i]),
                st,
                str(category[i]),
                f"案卷 {i} 店外经营",
                f"文三路 {i % 500} 号",
                f"SRID=4326;POINT({x!r} {y!r})",
                x,
                y,
                grid,
                False,
                dept,
                1,
                json.dumps(flags),
                0,
                step,
                created if step else None,
                now + timedelta(seconds=int(deadline_s[i])) if step else None,
                "bench",
                created,
                created,
                1,
            )
        )
    return rows


def load(url: str, count: int, now: datetime) -> dict[str, float]:
    engine = create_db_engine(load_settings(database_url=url))
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE cases, departments, grid_versions CASCADE"))
        for code in DEPARTMENTS:
            conn.execute(
                text(
                    "INSERT INTO departments (code, name, kind, active, created_at) "
                    "VALUES (:c, :c, 'enforcement', true, now())"
                ),
                {"c": code},
            )
    rows = case_rows(count, now)
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY cases ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
    copy_s = time.perf_counter() - started
    codes, geoms = lattice_grids(100, 100, origin=(CENTRE[0] - 0.05, CENTRE[1] - 0.045))
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        version_id = store_version(session, codes, geoms)
        grids.set_active(session, version_id, now)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return {"copy_s": round(copy_s, 2), "rows_per_s": round(count / copy_s)}


def tiles_around(lon: float, lat: float, z: int) -> list[str]:
    n = 2**z
    fx = (lon + 180.0) / 360.0 * n
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    x, y = int(fx), int(fy)
    return [f"{z}/{x + dx}/{y + dy}" for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def timed(
    runs: int, urls: list[str], call: Callable[[str], Any], check: Callable[[Any], None]
) -> dict[str, float]:
    for url in urls[:3]:
        check(call(url))
    timings = []
    for i in range(runs):
        url = urls[i % len(urls)]
        started = time.perf_counter()
        response = call(url)
        timings.append((time.perf_counter() - started) * 1000)
        check(response)
    timings.sort()
    p95 = timings[min(len(timings) - 1, math.ceil(0.95 * len(timings)) - 1)]
    return {"median_ms": round(statistics.median(timings), 1), "p95_ms": round(p95, 1)}


def ok(response: Any) -> None:
    assert response.status_code in (200, 204), response.text[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per scenario")
    parser.add_argument("--dsn", help="PostGIS database URL (else XUNCHA_BENCH_DATABASE_URL)")
    args = parser.parse_args()

    now = datetime.now(UTC)
    url, service = database_url(args.dsn)
    figures: dict[str, Any] = {}
    try:
        loaded = load(url, args.cases, now)
        log(f"loaded {args.cases} cases by COPY in {loaded['copy_s']} s")
        with tempfile.TemporaryDirectory() as var:
            settings = load_settings(
                database_url=url, var_dir=Path(var), worker_in_process=False, log_json=False
            )
            runtime = Runtime.build(settings)
            with transaction(runtime.sessions) as session:
                accounts.create_user(
                    session, username="bench-admin", password=PASSWORD, role=Role.admin
                )
                accounts.create_user(
                    session,
                    username="bench-intake",
                    password=PASSWORD,
                    role=Role.intake_operator,
                    unit_code="330106003",
                )
            figures["machine"] = machine(url)
            client = TestClient(create_app(runtime=runtime))
            figures |= run_scenarios(client, args.requests)
            client.close()
            runtime.close()
    finally:
        if service is not None:
            service.stop()
    result = {"benchmark": "case_review_100k", "cases": args.cases, "load": loaded, **figures}
    print(json.dumps(result, ensure_ascii=False))


def machine(url: str) -> dict[str, Any]:
    engine = create_db_engine(load_settings(database_url=url))
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version()")).scalar_one().split(",")[0]
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    engine.dispose()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": version,
        "postgis": postgis,
    }


def login(client: TestClient, username: str) -> dict[str, str]:
    done = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    done.raise_for_status()
    return {"Authorization": f"Bearer {done.json()['access_token']}"}


def tile_facts(client: TestClient, headers: dict[str, str], urls: list[str]) -> dict[str, Any]:
    """Features per tile, size, and how many tiles hit the feature cap."""
    import mapbox_vector_tile

    sizes, counts, cut = [], [], 0
    for url in urls:
        response = client.get(url, headers=headers)
        sizes.append(len(response.content))
        cut += response.headers.get("x-tile-truncated") == "true"
        layers = mapbox_vector_tile.decode(response.content) if response.content else {}
        counts.append(sum(len(layer["features"]) for layer in layers.values()))
    return {
        "features_mean": round(statistics.mean(counts)),
        "features_max": max(counts),
        "kb_mean": round(statistics.mean(sizes) / 1024, 1),
        "truncated_tiles": cut,
    }


def run_scenarios(client: TestClient, runs: int) -> dict[str, Any]:
    admin, intake = login(client, "bench-admin"), login(client, "bench-intake")

    def get(headers: dict[str, str]) -> Callable[[str], Any]:
        return lambda url: client.get(url, headers=headers)

    out: dict[str, Any] = {"tiles": {}, "list": {}, "export": {}}
    plan = [("cases", z, centre) for z in (12, 14, 16) for centre in (True, False)]
    plan += [("grids", z, False) for z in (14, 16)]
    for layer, z, centre in plan:
        around = tiles_around(*CENTRE, z)
        urls = [f"/api/v1/tiles/{layer}/{t}.mvt" for t in (around[4:5] if centre else around)]
        name = f"{layer}_z{z}_{'centre' if centre else '3x3'}"
        out["tiles"][name] = timed(runs, urls, get(admin), ok) | tile_facts(client, admin, urls)
        log(f"tiles {name}: {out['tiles'][name]}")

    base = "/api/v1/cases"
    scenarios = {
        "first_page": (f"{base}?limit=50", admin),
        "filtered_status_category": (
            f"{base}?limit=50&status=dispatched&status=handled&category=05",
            admin,
        ),
        "scoped_street_user": (f"{base}?limit=50", intake),
        "overdue": (f"{base}?limit=50&overdue=true&sort=step_deadline", admin),
        "text_search": (f"{base}?limit=50&q=%E6%96%87%E4%B8%89%E8%B7%AF%2012", admin),
    }
    for name, (url, headers) in scenarios.items():
        out["list"][name] = timed(runs, [url], get(headers), ok)
        log(f"list {name}: {out['list'][name]}")
    cursor = None
    for _ in range(50):  # 50 pages of 200: a cursor 10,000 rows deep
        body = client.get(
            f"{base}?limit=200" + (f"&cursor={cursor}" if cursor else ""), headers=admin
        ).json()
        cursor = body["next_cursor"]
    out["list"]["deep_page_10k"] = timed(runs, [f"{base}?limit=50&cursor={cursor}"], get(admin), ok)
    log(f"list deep page: {out['list']['deep_page_10k']}")

    url = "/api/v1/cases/export.geojson?grid=330106005"
    sizes: list[int] = []

    def export_check(response: Any) -> None:
        ok(response)
        sizes.append(len(response.content))

    stats = timed(max(5, runs // 6), [url], get(admin), export_check)
    total = client.get(url, headers=admin).headers["x-total-count"]
    stats |= {"features": int(total), "mb": round(sizes[-1] / 1e6, 2)}
    out["export"]["one_street"] = stats
    log(f"export: {stats}")
    return out


if __name__ == "__main__":
    main()
