"""The grids API on both storage profiles: import, activation, listing, lookup, responsibility."""

from __future__ import annotations

import math
from typing import Any

import pytest

from backend.accounts.models import Role
from backend.geo.chinese_crs import wgs84_to_bd09, wgs84_to_gcj02
from tests.support.apps import ApiHarness
from tests.support.grids import geojson_bytes, lattice_grids

PROBLEM = "application/problem+json"


def upload(api: ApiHarness, data: bytes, name: str = "grids.geojson", **form: Any) -> Any:
    headers = api.token_for("admin", Role.admin)
    fields = {k: str(v).lower() if isinstance(v, bool) else v for k, v in form.items()}
    return api.client.post(
        "/api/v1/grid-versions",
        files={"file": (name, data, "application/geo+json")},
        data={"crs": "EPSG:4490", **fields},
        headers=headers,
    )


@pytest.fixture
def city() -> tuple[list[str], list[Any]]:
    return lattice_grids(12, 10)


@pytest.fixture
def active_city(api: ApiHarness, city) -> dict[str, Any]:
    codes, geoms = city
    response = upload(api, geojson_bytes(codes, geoms), activate=True)
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status and body["title"] and body["request_id"]
    return body


def test_health_and_readiness(api: ApiHarness) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ready", ready
    expected_store = "s3" if api.profile == "production" else "local directory"
    assert ready["checks"]["object_store"]["detail"].startswith(expected_store)
    expected_db = "postgresql" if api.profile == "production" else "sqlite"
    assert ready["checks"]["database"]["detail"] == expected_db


def test_import_reports_and_activation_is_explicit(api: ApiHarness, city) -> None:
    codes, geoms = city
    response = upload(api, geojson_bytes(codes, geoms))
    assert response.status_code == 201, response.text
    version = response.json()
    assert version["cell_count"] == 120 and version["is_active"] is False
    assert version["report"]["overlap_count"] == 0 and version["report"]["gap_count"] == 0
    assert version["report"]["street_count"] == 1 and version["report"]["community_count"] == 10
    headers = api.token_for("inspector1")
    lookup = {"lon": 120.0005, "lat": 30.0005, "crs": "wgs84"}
    assert_problem(
        api.client.get("/api/v1/grids/lookup", params=lookup, headers=headers),
        409,
        "no_active_grid_version",
    )
    admin = api.token_for("admin", Role.admin)
    activated = api.client.post(f"/api/v1/grid-versions/{version['id']}/activate", headers=admin)
    assert activated.json()["is_active"] is True
    found = api.client.get("/api/v1/grids/lookup", params=lookup, headers=headers).json()
    assert found["grid_version_id"] == version["id"]
    assert found["kind"] == "inside" and found["grid_code"] == codes[0]
    assert found["grid"]["community_code"] == codes[0][:12]


def test_refused_file_changes_nothing(api: ApiHarness, city) -> None:
    codes, geoms = city
    codes[5] = codes[4]  # duplicate code
    codes[7] = "not-a-code"
    body = assert_problem(upload(api, geojson_bytes(codes, geoms)), 422, "grid_import_rejected")
    kinds = {p["code"] for p in body["problems"]}
    assert kinds == {"duplicate_grid_code", "invalid_grid_code"}
    admin = api.token_for("admin", Role.admin)
    assert api.client.get("/api/v1/grid-versions", headers=admin).json()["items"] == []


def test_refuse_mode_rejects_invalid_polygon_and_repair_mode_repairs(api: ApiHarness) -> None:
    import shapely

    codes, geoms = lattice_grids(3, 1)
    bowtie = shapely.Polygon([(121, 31), (121.001, 31.001), (121.001, 31), (121, 31.001)])
    geoms.append(bowtie)
    codes.append("33010600100109")
    data = geojson_bytes(codes, geoms)
    body = assert_problem(upload(api, data, invalid="refuse"), 422, "grid_polygon_invalid")
    assert "33010600100109" in body["detail"]
    repaired = upload(api, data, invalid="repair")
    assert repaired.status_code == 201, repaired.text
    report = repaired.json()["report"]
    assert report["invalid_polygon_count"] == 1
    assert report["invalid_polygons"][0]["code"] == "33010600100109"


def test_roles_and_authentication(api: ApiHarness, city) -> None:
    codes, geoms = city
    inspector = api.token_for("inspector1")
    response = api.client.post(
        "/api/v1/grid-versions",
        files={"file": ("g.geojson", geojson_bytes(codes, geoms), "application/geo+json")},
        data={"crs": "EPSG:4490"},
        headers=inspector,
    )
    assert_problem(response, 403, "forbidden")
    assert_problem(api.client.get("/api/v1/grids"), 401, "unauthenticated")
    bad = {"Authorization": "Bearer xat1.e30.AAAA"}
    assert_problem(api.client.get("/api/v1/grids", headers=bad), 401, "invalid_token")
    wrong = api.client.post("/api/v1/auth/token", json={"username": "inspector1", "password": "x"})
    assert_problem(wrong, 401, "bad_credentials")


def test_list_filters_pages_and_geojson(api: ApiHarness, active_city) -> None:
    headers = api.token_for("inspector1")
    community = "330106001003"
    page = api.client.get(
        "/api/v1/grids", params={"parent": community, "limit": 5}, headers=headers
    ).json()
    assert [g["code"][:12] for g in page["items"]] == [community] * 5
    rest = api.client.get(
        "/api/v1/grids",
        params={"parent": community, "limit": 50, "cursor": page["next_cursor"]},
        headers=headers,
    ).json()
    assert len(rest["items"]) == 7 and rest["next_cursor"] is None
    assert page["items"][-1]["code"] < rest["items"][0]["code"]

    # The first row's second cell: a bbox around its centre finds it and its neighbours only.
    bbox = "120.0012,30.0002,120.0014,30.0004"
    found = api.client.get(
        "/api/v1/grids", params={"bbox": bbox, "limit": 100}, headers=headers
    ).json()
    assert 1 <= len(found["items"]) <= 4
    assert "330106001001002" in {g["code"] for g in found["items"]}

    geo = api.client.get("/api/v1/grids", params={"format": "geojson", "limit": 3}, headers=headers)
    assert geo.headers["content-type"].startswith("application/geo+json")
    collection = geo.json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 3
    assert collection["features"][0]["geometry"]["type"] == "MultiPolygon"

    detail = api.client.get("/api/v1/grids/330106001001002", headers=headers).json()
    assert detail["geometry"]["type"] == "MultiPolygon" and detail["area_m2"] > 5000
    assert_problem(
        api.client.get("/api/v1/grids/99999999999999", headers=headers), 404, "grid_not_found"
    )
    assert_problem(
        api.client.get("/api/v1/grids", params={"bbox": "1,2,3"}, headers=headers),
        422,
        "invalid_bbox",
    )
    assert_problem(
        api.client.get("/api/v1/grids", params={"cursor": "%%%"}, headers=headers),
        422,
        "invalid_cursor",
    )


@pytest.mark.parametrize("system", ["gcj02", "bd09", "cgcs2000"])
def test_lookup_normalises_device_coordinates(api: ApiHarness, active_city, system: str) -> None:
    headers = api.token_for("inspector1")
    lon, lat = 120.00351, 30.00252
    expected = api.client.get(
        "/api/v1/grids/lookup", params={"lon": lon, "lat": lat, "crs": "wgs84"}, headers=headers
    ).json()
    convert = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09, "cgcs2000": lambda x, y: (x, y)}
    dev_lon, dev_lat = convert[system](lon, lat)
    if system != "cgcs2000":
        # An unconverted device point lands hundreds of metres away: the reason for the crs.
        assert math.dist((dev_lon, dev_lat), (lon, lat)) > 0.002
    found = api.client.get(
        "/api/v1/grids/lookup",
        params={"lon": dev_lon, "lat": dev_lat, "crs": system, "accuracy_m": 8},
        headers=headers,
    ).json()
    assert found["grid_code"] == expected["grid_code"]
    assert found["lon"] == pytest.approx(lon, abs=1e-8) and found["lat"] == pytest.approx(
        lat, abs=1e-8
    )
    assert found["flags"] == [] and found["source_crs"] == system


def test_lookup_flags_outside_and_rejects_bad_input(api: ApiHarness, active_city) -> None:
    headers = api.token_for("inspector1")
    outside = api.client.get(
        "/api/v1/grids/lookup",
        params={"lon": 121.5, "lat": 31.2, "crs": "wgs84", "accuracy_m": 80},
        headers=headers,
    ).json()
    assert outside["kind"] == "outside" and outside["grid_code"] is None
    assert outside["flags"] == ["outside_grids", "poor_accuracy"]
    assert outside["distance_m"] > 100_000
    for params in (
        {"lon": 120, "lat": 30, "crs": "mars"},
        {"lon": "nan", "lat": 30, "crs": "wgs84"},
        {"lon": 190, "lat": 30, "crs": "wgs84"},
        {"lon": 120, "lat": 30},
    ):
        body = assert_problem(
            api.client.get("/api/v1/grids/lookup", params=params, headers=headers),
            422,
            "validation_error",
        )
        assert body["errors"]


def test_activation_swaps_the_matcher(api: ApiHarness, city) -> None:
    codes, geoms = city
    first = upload(api, geojson_bytes(codes, geoms), activate=True).json()
    renamed = [c[:-3] + str(900 + i % 99).zfill(3) for i, c in enumerate(codes)]
    renamed = [c[:6] + "002" + c[9:] for c in codes]
    second = upload(api, geojson_bytes(renamed, geoms)).json()
    headers = api.token_for("inspector1")
    params = {"lon": 120.0005, "lat": 30.0005, "crs": "wgs84"}
    before = api.client.get("/api/v1/grids/lookup", params=params, headers=headers).json()
    assert (before["grid_version_id"], before["grid_code"]) == (first["id"], codes[0])
    admin = api.token_for("admin", Role.admin)
    api.client.post(f"/api/v1/grid-versions/{second['id']}/activate", headers=admin)
    after = api.client.get("/api/v1/grids/lookup", params=params, headers=headers).json()
    assert (after["grid_version_id"], after["grid_code"]) == (second["id"], renamed[0])
    versions = api.client.get("/api/v1/grid-versions", headers=admin).json()["items"]
    assert [v["is_active"] for v in versions] == [True, False]
    assert_problem(
        api.client.post("/api/v1/grid-versions/999/activate", headers=admin),
        404,
        "grid_version_not_found",
    )


def test_assignments_keep_history(api: ApiHarness, active_city) -> None:
    admin = api.token_for("admin", Role.admin)
    url = "/api/v1/grids/330106001001001/assignments"
    first = api.client.post(
        url,
        json={
            "kind": "person",
            "role": "网格员",
            "assignee_name": "张伟",
            "phone": "138 0000 0001",
            "effective_from": "2026-01-01",
        },
        headers=admin,
    )
    assert first.status_code == 201, first.text
    clash = api.client.post(
        url,
        json={
            "kind": "person",
            "role": "网格员",
            "assignee_name": "张伟",
            "effective_from": "2026-03-01",
        },
        headers=admin,
    )
    assert_problem(clash, 409, "assignment_overlap")
    ended = api.client.post(
        f"{url}/{first.json()['id']}/end", json={"effective_to": "2026-06-01"}, headers=admin
    )
    assert ended.json()["effective_to"] == "2026-06-01" and ended.json()["ended_by"] == "admin"
    api.client.post(
        url,
        json={
            "kind": "person",
            "role": "网格员",
            "assignee_name": "李娜",
            "effective_from": "2026-06-01",
        },
        headers=admin,
    )
    api.client.post(
        url,
        json={
            "kind": "unit",
            "role": "责任单位",
            "assignee_name": "东湖街道办事处",
            "effective_from": "2026-01-01",
        },
        headers=admin,
    )
    viewer = api.token_for("inspector1")
    history = api.client.get(url, headers=viewer).json()["items"]
    assert [a["assignee_name"] for a in history] == ["张伟", "东湖街道办事处", "李娜"]
    in_march = api.client.get(url, params={"at": "2026-03-15"}, headers=viewer).json()["items"]
    assert {a["assignee_name"] for a in in_march} == {"张伟", "东湖街道办事处"}
    in_july = api.client.get(url, params={"at": "2026-07-01"}, headers=viewer).json()["items"]
    assert {a["assignee_name"] for a in in_july} == {"李娜", "东湖街道办事处"}
    assert_problem(
        api.client.post(
            "/api/v1/grids/99999999999999/assignments",
            json={
                "kind": "unit",
                "role": "x",
                "assignee_name": "y",
                "effective_from": "2026-01-01",
            },
            headers=admin,
        ),
        404,
        "grid_not_found",
    )
    backwards = api.client.post(
        url,
        json={
            "kind": "unit",
            "role": "x",
            "assignee_name": "y",
            "effective_from": "2026-02-01",
            "effective_to": "2026-01-01",
        },
        headers=admin,
    )
    assert_problem(backwards, 422, "invalid_input")


def test_problem_documents_for_malformed_requests(api: ApiHarness) -> None:
    response = api.client.post(
        "/api/v1/auth/token", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_error")
    assert_problem(api.client.get("/no/such/route"), 404, "not_found")
    assert_problem(api.client.delete("/healthz"), 405, "method_not_allowed")


def test_request_id_and_metrics(api: ApiHarness) -> None:
    response = api.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = api.client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert generated.headers["x-request-id"] != "bad id\nwith newline"
    api.client.get("/api/v1/grids/abc")
    metrics = api.client.get("/metrics").text
    assert 'route="/healthz"' in metrics and 'route="/api/v1/grids/{code}"' in metrics
    assert "xuncha_http_request_duration_seconds_bucket" in metrics


def test_app_start_prebuilds_the_active_index(api: ApiHarness, active_city) -> None:
    from fastapi.testclient import TestClient

    from backend.app import create_app

    api.runtime.grid_indexes = type(api.runtime.grid_indexes)(tolerance_m=30)
    assert api.runtime.grid_indexes.cached_versions() == []
    with TestClient(create_app(runtime=api.runtime)) as client:
        assert client.get("/healthz").status_code == 200
        assert api.runtime.grid_indexes.cached_versions() == [active_city["id"]]


def _gpkg_bytes(tmp_path, codes, geoms) -> bytes:
    import numpy as np
    import shapely
    from pyogrio.raw import write

    path = tmp_path / "grids.gpkg"
    write(
        str(path),
        geometry=shapely.to_wkb(np.array(geoms, dtype=object)),
        field_data=[np.array(codes, dtype=object)],
        fields=["网格编码"],
        geometry_type="MultiPolygon",
        crs="EPSG:4490",
        driver="GPKG",
    )
    return path.read_bytes()


def _kml_bytes(codes, geoms) -> bytes:
    placemarks = "".join(
        f"<Placemark><name>{code}</name><Polygon><outerBoundaryIs><LinearRing><coordinates>"
        + " ".join(f"{x},{y}" for x, y in geom.geoms[0].exterior.coords)
        + "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
        for code, geom in zip(codes, geoms, strict=True)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2">'
        f"<Document>{placemarks}</Document></kml>"
    ).encode()


@pytest.mark.parametrize("kind", ["gpkg", "kml"])
def test_formats_are_sniffed_not_trusted_from_names(api: ApiHarness, tmp_path, kind: str) -> None:
    codes, geoms = lattice_grids(4, 3)
    if kind == "gpkg":
        data, form = _gpkg_bytes(tmp_path, codes, geoms), {}
    else:
        data, form = _kml_bytes(codes, geoms), {"field_map": "code=Name"}
    hostile_name = "../" + "长" * 400 + ".txt"
    response = upload(api, data, name=hostile_name, **form)
    assert response.status_code == 201, response.text
    version = response.json()
    assert version["cell_count"] == 12 and version["source_format"] == kind
    assert len(version["source_filename"]) <= 300 and "/" not in version["source_filename"]
    assert len(version["label"]) <= 200
