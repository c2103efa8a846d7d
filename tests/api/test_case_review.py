"""The coordinators' review API over cases on both profiles: every filter includes and
excludes, cursors walk a set exactly once (ties included) and refuse tampering, the GeoJSON
export and the vector tiles carry the same cases, and no user sees outside their scope."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import mapbox_vector_tile
import pytest
import shapely

from backend.accounts.models import Role
from backend.core.db import transaction
from backend.core.types import utcnow
from backend.grids import repository as grids
from tests.api.test_grids_api import assert_problem
from tests.support.apps import ApiHarness
from tests.support.cases import HERE, T0, headers_for, seed_cases, user_id
from tests.support.grids import lattice_grids, store_version

H = timedelta(hours=1)
FAR = (121.4737, 31.2304)  # Shanghai: outside any Hangzhou bbox or tile used here
STREET_A, STREET_B, OTHER_DISTRICT = "330106001", "330106002", "330108"


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, float, float]:
    """Tile x, y and the point's pixel in it (4096 extent), by the OSM wiki's formulas."""
    n = 2**z
    fx = (lon + 180.0) / 360.0 * n
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    x, y = int(fx), int(fy)
    return x, y, (fx - x) * 4096, (fy - y) * 4096


def decode(response: Any, layer: str) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    tile = mapbox_vector_tile.decode(response.content, default_options={"y_coord_down": True})
    features: list[dict[str, Any]] = tile[layer]["features"]
    assert tile[layer]["extent"] == 4096
    return features


@pytest.fixture
def world(api: ApiHarness) -> dict[str, int]:
    """Five cases that differ in every filtered attribute."""
    headers_for(api, "insp1", Role.inspector)
    reporter = user_id(api, "insp1")
    a, b, c, nogrid, closed = seed_cases(
        api,
        dict(
            category_code="0504",
            description="店外经营 水果摊 Fruit Stall",
            grid_code="330106001001001",
            reporter_id=reporter,
            flags=["photo_time_far_from_report"],
            created_at=T0,
            step="accept",
            step_deadline=utcnow() + 1000 * H,
        ),
        dict(
            status="dispatched",
            source="hotline_12345",
            category_code="0501",
            description="占道经营",
            address="天目山路 1 号",
            at=(HERE[0] + 0.002, HERE[1] + 0.001),
            grid_code="330106002003004",
            department_code="cgj-xihu",
            flags=["reused_photo", "photo_time_far_from_report"],
            created_at=T0 + H,
            step="handle",
            step_deadline=T0 + 2 * H,  # long past: overdue
        ),
        dict(
            status="filed",
            source="complaint",
            category_code="0301",
            description="达标率 100%_以上",
            address="西溪路 5 号",
            at=(HERE[0] - 0.003, HERE[1] - 0.002),
            grid_code="330108001001001",
            flags=["reused_photo"],
            created_at=T0 + 2 * H,
            step="dispatch",
            step_deadline=utcnow() + 1000 * H,
        ),
        dict(at=FAR, grid_code=None, description="无网格", created_at=T0 + 3 * H),
        dict(
            status="closed",
            grid_code="330106001002001",
            created_at=T0 + 4 * H,
            step=None,
            step_deadline=T0,  # a stale deadline on a final case is not overdue
        ),
    )
    return {"a": a, "b": b, "c": c, "nogrid": nogrid, "closed": closed}


def test_every_filter_includes_and_excludes(api: ApiHarness, world: dict[str, int]) -> None:
    admin = api.token_for("chief", Role.admin)
    w = world

    def listed(**params: Any) -> set[int]:
        return ids(api.client.get("/api/v1/cases", params=params, headers=admin))

    assert listed() == set(w.values())
    assert listed(status="reported") == {w["a"], w["nogrid"]}
    assert listed(status=["reported", "closed"]) == {w["a"], w["nogrid"], w["closed"]}
    assert listed(source="hotline_12345") == {w["b"]}
    assert listed(source=["complaint", "hotline_12345"]) == {w["b"], w["c"]}
    assert listed(category="05") == {w["a"], w["b"], w["nogrid"], w["closed"]}
    assert listed(category="0504") == {w["a"], w["nogrid"], w["closed"]}
    assert listed(category="03") == {w["c"]}
    assert listed(grid="330106") == {w["a"], w["b"], w["closed"]}
    assert listed(grid=STREET_A) == {w["a"], w["closed"]}
    assert listed(grid="330106001001") == {w["a"]}  # a community
    assert listed(grid="330106002003004") == {w["b"]}  # one grid
    assert listed(department_code="cgj-xihu") == {w["b"]}
    assert listed(department_code="nobody") == set()
    assert listed(created_from=(T0 + H).isoformat()) == {w["b"], w["c"], w["nogrid"], w["closed"]}
    assert listed(created_to=(T0 + H).isoformat()) == {w["a"]}
    assert listed(created_from="2026-11-02T10:00:00+08:00", created_to="2026-11-02T04:00Z") == {
        w["b"],
        w["c"],
    }
    assert listed(bbox="120.0,30.0,120.5,30.5") == {w["a"], w["b"], w["c"], w["closed"]}
    assert listed(bbox="120.128,30.269,120.2,30.3") == {w["a"], w["b"], w["closed"]}
    assert listed(flag="reused_photo") == {w["b"], w["c"]}
    assert listed(flag=["photo_time_far_from_report"]) == {w["a"], w["b"]}
    assert listed(flag=["reused_photo", "photo_time_far_from_report"]) == {w["a"], w["b"], w["c"]}
    assert listed(flag="after_photo_far_from_before") == set()
    assert listed(overdue="true") == {w["b"]}
    assert listed(overdue="false") == set(w.values()) - {w["b"]}
    assert listed(q="水果") == {w["a"]}
    assert listed(q="fruit stall") == {w["a"]}  # case-insensitive
    assert listed(q="天目山") == {w["b"]}  # address
    assert listed(q="100%_") == {w["c"]}
    assert listed(q="%") == {w["c"]} and listed(q="_") == {w["c"]}  # no wildcards
    assert listed(q="1%5") == set() and listed(q="88 号/") == set()
    # Filters combine with AND.
    assert listed(category="05", status="reported", grid="330106") == {w["a"]}
    assert listed(overdue="true", department_code="cgj-xihu", flag="reused_photo") == {w["b"]}


def test_items_carry_the_case(api: ApiHarness, world: dict[str, int]) -> None:
    admin = api.token_for("chief", Role.admin)
    page = api.client.get("/api/v1/cases", params={"department_code": "cgj-xihu"}, headers=admin)
    (item,) = page.json()["items"]
    assert page.json()["next_cursor"] is None
    assert item["id"] == world["b"] and item["status"] == "dispatched"
    assert item["source"] == "hotline_12345" and item["category_code"] == "0501"
    assert item["description"] == "占道经营" and item["address"] == "天目山路 1 号"
    assert item["lon"] == pytest.approx(HERE[0] + 0.002) and item["lat"] == pytest.approx(
        HERE[1] + 0.001
    )
    assert item["grid_code"] == "330106002003004" and item["department_code"] == "cgj-xihu"
    assert item["report_count"] == 1 and item["version"] == 1
    assert sorted(item["flags"]) == ["photo_time_far_from_report", "reused_photo"]
    assert item["step"] == "handle" and item["overdue"] is True
    assert item["step_deadline"] == "2026-11-02T03:00:00Z"
    assert item["created_at"] == item["updated_at"] == "2026-11-02T02:00:00Z"


def test_bad_parameters_are_clear_problems(api: ApiHarness) -> None:
    admin = api.token_for("chief", Role.admin)

    def get(**params: Any) -> Any:
        return api.client.get("/api/v1/cases", params=params, headers=admin)

    assert_problem(get(created_from="2026-11-02T09:00:00"), 422, "invalid_time_range")
    assert_problem(
        get(created_from="2026-11-03T00:00Z", created_to="2026-11-02T00:00Z"),
        422,
        "invalid_time_range",
    )
    assert_problem(get(created_to="9999-12-31T23:00:00-05:00"), 422, "invalid_time_range")
    assert get(created_from="0001-01-01T00:00:00Z").status_code == 200
    assert_problem(get(q="a\x00b"), 422, "invalid_input")  # refused before any SQL
    assert get(q="\\ 🚧 ' \" --").status_code == 200
    assert_problem(get(bbox="1,2,3"), 422, "invalid_bbox")
    assert_problem(get(bbox="120.5,30,120.0,31"), 422, "invalid_bbox")
    for bad in (
        {"status": "lost"},
        {"source": "rumour"},
        {"category": "5"},
        {"category": "05%"},
        {"grid": "3301%"},
        {"flag": "Not A Flag"},
        {"sort": "description"},
        {"limit": 0},
        {"limit": 201},
        {"overdue": "maybe"},
        {"created_from": "yesterday"},
        {"q": "x" * 101},
        {"cursor": "x" * 601},
    ):
        assert_problem(get(**bad), 422, "validation_error")
    assert api.client.get("/api/v1/cases").status_code == 401


def _walk(api: ApiHarness, headers: dict[str, str], **params: Any) -> list[int]:
    seen: list[int] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = api.client.get("/api/v1/cases", params=query, headers=headers).json()
        assert len(body["items"]) <= params["limit"]
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


def test_cursors_walk_every_sort_once_with_ties(api: ApiHarness) -> None:
    admin = api.token_for("chief", Role.admin)
    rows = []
    for i in range(23):
        # Three distinct creation times and deadlines (some none): many equal sort keys.
        deadline = None if i % 4 == 0 else T0 + (i % 3) * H
        rows.append(
            dict(
                created_at=T0 + (i % 3) * H,
                updated_at=T0 + (i % 2) * H,
                step="accept" if deadline else None,
                step_deadline=deadline,
                status="reported" if i % 5 else "filed",
            )
        )
    created = seed_cases(api, *rows)
    facts = {cid: row for cid, row in zip(created, rows, strict=True)}
    never = T0 + 10_000 * H  # stands in for NULL, which sorts last

    expected = {
        "-created_at": sorted(created, key=lambda c: (facts[c]["created_at"], c), reverse=True),
        "created_at": sorted(created, key=lambda c: (facts[c]["created_at"], c)),
        "-updated_at": sorted(created, key=lambda c: (facts[c]["updated_at"], c), reverse=True),
        "step_deadline": sorted(created, key=lambda c: (facts[c]["step_deadline"] or never, c)),
    }
    for sort, order in expected.items():
        for limit in (1, 4, 23, 200):
            assert _walk(api, admin, sort=sort, limit=limit) == order, (sort, limit)
    # The default is newest first; filters page the same way.
    assert _walk(api, admin, limit=5) == expected["-created_at"]
    filed = [c for c in expected["step_deadline"] if facts[c]["status"] == "filed"]
    assert _walk(api, admin, sort="step_deadline", status="filed", limit=2) == filed


def test_tampered_or_foreign_cursors_are_refused(api: ApiHarness) -> None:
    admin = api.token_for("chief", Role.admin)
    seed_cases(api, *({"created_at": T0 + i * H} for i in range(3)))
    first = api.client.get("/api/v1/cases", params={"limit": 1}, headers=admin).json()
    cursor = first["next_cursor"]
    assert cursor

    def with_cursor(value: str, **params: Any) -> Any:
        return api.client.get(
            "/api/v1/cases", params={"limit": 1, "cursor": value, **params}, headers=admin
        )

    assert with_cursor(cursor).status_code == 200
    prefix, payload, mac = cursor.split(".")
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    import base64
    import json

    forged = base64.urlsafe_b64encode(json.dumps(["-created_at", None, 1, "x"]).encode())
    for bad in (
        "garbage",
        f"{prefix}.{payload}.{flipped}",
        f"{prefix}.{forged.decode().rstrip('=')}.{mac}",
        f"k2.{payload}.{mac}",
        cursor + "A",
        "k1.%%%%.x",
        "k1." + "A" * 300 + "." + "B" * 43,
    ):
        assert_problem(with_cursor(bad), 422, "invalid_cursor")
    # A real cursor, but for another sort or other filters.
    assert_problem(with_cursor(cursor, sort="created_at"), 422, "invalid_cursor")
    assert_problem(with_cursor(cursor, status="reported"), 422, "invalid_cursor")


def test_geojson_export(api: ApiHarness, world: dict[str, int], monkeypatch: Any) -> None:
    admin = api.token_for("chief", Role.admin)
    done = api.client.get("/api/v1/cases/export.geojson", headers=admin)
    assert done.status_code == 200, done.text
    assert done.headers["content-type"].startswith("application/geo+json")
    assert done.headers["x-total-count"] == "5"
    body = done.json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 5
    listed = {i["id"]: i for i in api.client.get("/api/v1/cases", headers=admin).json()["items"]}
    for feature in body["features"]:
        assert feature["type"] == "Feature"
        point = shapely.geometry.shape(feature["geometry"])
        assert point.geom_type == "Point"
        item = listed[feature["id"]]
        assert (point.x, point.y) == pytest.approx((item["lon"], item["lat"]), abs=1e-7)
        assert feature["properties"] == {k: v for k, v in item.items() if k not in ("lon", "lat")}
    assert [f["id"] for f in body["features"]] == sorted(world.values())

    some = api.client.get(
        "/api/v1/cases/export.geojson", params={"grid": "330106"}, headers=admin
    ).json()
    assert {f["id"] for f in some["features"]} == {world["a"], world["b"], world["closed"]}
    none = api.client.get(
        "/api/v1/cases/export.geojson", params={"status": "verified"}, headers=admin
    )
    assert none.json() == {"type": "FeatureCollection", "features": []}

    # Bigger than the limit: refused up front, saying by how much.
    monkeypatch.setattr("backend.cases.review_router.MAX_EXPORT", 4)
    refused = assert_problem(
        api.client.get("/api/v1/cases/export.geojson", headers=admin), 422, "export_too_large"
    )
    assert refused["count"] == 5 and refused["limit"] == 4
    fits = api.client.get("/api/v1/cases/export.geojson?grid=330106", headers=admin)
    assert len(fits.json()["features"]) == 3


def test_export_streams_in_batches(api: ApiHarness, monkeypatch: Any) -> None:
    admin = api.token_for("chief", Role.admin)
    created = seed_cases(api, *({"created_at": T0 + i * H} for i in range(7)))
    monkeypatch.setattr("backend.cases.review.EXPORT_BATCH", 3)
    monkeypatch.setattr("backend.cases.review_export.CHUNK_FEATURES", 2)
    body = api.client.get("/api/v1/cases/export.geojson", headers=admin).json()
    assert [f["id"] for f in body["features"]] == created


def test_case_tiles(api: ApiHarness, world: dict[str, int]) -> None:
    admin = api.token_for("chief", Role.admin)
    z = 14
    x, y, px, py = tile_of(*HERE, z)

    def tile(path: str = f"{z}/{x}/{y}", **params: Any) -> Any:
        return api.client.get(f"/api/v1/tiles/cases/{path}.mvt", params=params, headers=admin)

    features = decode(tile(), "cases")
    by_id = {f["id"]: f for f in features}
    # a, b, c and the closed one lie within ~350 m: all in this tile; Shanghai is not.
    assert set(by_id) == {world["a"], world["b"], world["c"], world["closed"]}
    a = by_id[world["a"]]
    assert a["geometry"]["type"] == "Point"
    gx, gy = a["geometry"]["coordinates"]
    assert abs(gx - px) <= 1 and abs(gy - py) <= 1
    assert a["properties"] == {
        "id": world["a"],
        "status": "reported",
        "category_code": "0504",
        "overdue": False,
    }
    assert by_id[world["b"]]["properties"]["overdue"] is True
    assert tile().headers["cache-control"].startswith("private")

    # The list's filters apply.
    assert {f["id"] for f in decode(tile(status="dispatched"), "cases")} == {world["b"]}
    assert {f["id"] for f in decode(tile(category="03"), "cases")} == {world["c"]}
    assert {f["id"] for f in decode(tile(overdue="true"), "cases")} == {world["b"]}
    # Shanghai's tile has the case without a grid; an empty tile is 204 without a body.
    sx, sy, _, _ = tile_of(*FAR, z)
    assert {f["id"] for f in decode(tile(f"{z}/{sx}/{sy}"), "cases")} == {world["nogrid"]}
    empty = tile(f"{z}/{x + 3}/{y}")
    assert empty.status_code == 204 and empty.content == b""
    # A low zoom holds them all.
    lx, ly, _, _ = tile_of(*HERE, 5)
    assert {f["id"] for f in decode(tile(f"5/{lx}/{ly}"), "cases")} == set(world.values())
    assert tile("0/0/0").status_code == 200

    for bad in ("25/0/0", "3/8/0", "3/0/8", "2/-1/0", "-1/0/0", f"{10**30}/0/0"):
        assert_problem(tile(bad), 422, "tile_out_of_range")
    assert_problem(tile("3/a/0"), 422, "validation_error")
    assert api.client.get(f"/api/v1/tiles/cases/{z}/{x}/{y}.mvt").status_code == 401


def test_case_tile_edges_and_buffer(api: ApiHarness) -> None:
    """A case near a tile edge is in both neighbours (64-pixel buffer), same as PostGIS."""
    admin = api.token_for("chief", Role.admin)
    z = 16
    x, y, _, _ = tile_of(*HERE, z)
    n = 2**z
    edge_lon = (x + 1) / n * 360.0 - 180.0  # the tile's east edge
    (near,) = seed_cases(api, {"at": (edge_lon - 1e-6, HERE[1])})
    west = decode(api.client.get(f"/api/v1/tiles/cases/{z}/{x}/{y}.mvt", headers=admin), "cases")
    east = decode(
        api.client.get(f"/api/v1/tiles/cases/{z}/{x + 1}/{y}.mvt", headers=admin), "cases"
    )
    assert [f["id"] for f in west] == [near] and [f["id"] for f in east] == [near]
    assert west[0]["geometry"]["coordinates"][0] in (4095, 4096)
    assert east[0]["geometry"]["coordinates"][0] in (-1, 0)


def test_grid_tiles(api: ApiHarness) -> None:
    viewer = api.token_for("insp9", Role.inspector)
    codes, geoms = lattice_grids(4, 3, origin=HERE, cell_m=100.0)
    z = 17
    centre = geoms[5].centroid
    x, y, _, _ = tile_of(centre.x, centre.y, z)

    def tile(**params: Any) -> Any:
        return api.client.get(f"/api/v1/tiles/grids/{z}/{x}/{y}.mvt", params=params, headers=viewer)

    assert tile().status_code == 204  # nothing active yet: an empty map
    with transaction(api.runtime.sessions) as session:
        version_id = store_version(session, codes, geoms)
    assert tile().status_code == 204
    assert len(decode(tile(version=version_id), "grids")) > 0
    assert_problem(tile(version=version_id + 1), 404, "grid_version_not_found")
    with transaction(api.runtime.sessions) as session:
        grids.set_active(session, version_id, utcnow())

    features = decode(tile(), "grids")
    found = {f["properties"]["code"]: f for f in features}
    assert codes[5] in found
    cell = found[codes[5]]
    assert cell["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert cell["properties"]["street_code"] == codes[5][:9]
    assert cell["properties"]["community_code"] == codes[5][:12]
    # Only cells near this tile (100 m cells, a z17 tile is ~260 m): not all twelve.
    assert set(found) <= set(codes) and 1 < len(found) < len(codes)
    # Its polygon covers its centroid's pixel.
    _, _, cx, cy = tile_of(centre.x, centre.y, z)
    polygon = shapely.geometry.shape(cell["geometry"])
    assert polygon.buffer(1.5).contains(shapely.Point(cx, cy))


def test_scope_on_list_export_and_tiles(api: ApiHarness, world: dict[str, int]) -> None:
    w = world
    everything = set(w.values())
    expectations: list[tuple[str, Role, str | None, str | None, set[int]]] = [
        ("chief", Role.admin, None, None, everything),
        ("intake_city", Role.intake_operator, None, None, everything),
        ("intake_a", Role.intake_operator, STREET_A, None, {w["a"], w["closed"]}),
        ("lead_district", Role.shift_lead, "330106", None, {w["a"], w["b"], w["closed"]}),
        ("dispatch_c", Role.dispatcher, "330108001001", None, {w["c"]}),
        ("intake_none", Role.intake_operator, "330109", None, set()),
        ("handler", Role.department_handler, None, "cgj-xihu", {w["b"]}),
        ("handler_other", Role.department_handler, None, "sanitation", set()),
        ("handler_nodept", Role.department_handler, None, None, set()),
        ("insp1", Role.inspector, None, None, {w["a"]}),
        ("insp2", Role.inspector, None, None, set()),
    ]
    z = 5
    lx, ly, _, _ = tile_of(*HERE, z)
    sx, sy, _, _ = tile_of(*FAR, z)
    for name, role, unit, department, visible in expectations:
        headers = headers_for(api, name, role, unit=unit, department=department)
        assert ids(api.client.get("/api/v1/cases", headers=headers)) == visible, name
        # Filters narrow, never widen.
        for params in ({"grid": "330108"}, {"department_code": "cgj-xihu"}, {"q": "经营"}):
            narrowed = ids(api.client.get("/api/v1/cases", params=params, headers=headers))
            assert narrowed <= visible, (name, params)
        exported = api.client.get("/api/v1/cases/export.geojson", headers=headers)
        assert {f["id"] for f in exported.json()["features"]} == visible, name
        assert exported.headers["x-total-count"] == str(len(visible))
        in_tiles: set[int] = set()
        for tx, ty in {(lx, ly), (sx, sy)}:
            got = api.client.get(f"/api/v1/tiles/cases/{z}/{tx}/{ty}.mvt", headers=headers)
            if got.status_code != 204:
                in_tiles |= {f["id"] for f in decode(got, "cases")}
        assert in_tiles == visible, name
