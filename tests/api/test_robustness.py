"""Hostile and unlucky requests: always a 4xx/503 problem document, never a partial write."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from backend.accounts.models import Role
from backend.app import create_app
from tests.api.test_grids_api import assert_problem, upload
from tests.support.apps import ApiHarness, embedded_settings, make_harness, production_settings
from tests.support.grids import geojson_bytes, lattice_grids


@pytest.fixture
def city_api(api: ApiHarness) -> ApiHarness:
    codes, geoms = lattice_grids(4, 3)
    assert upload(api, geojson_bytes(codes, geoms), activate=True).status_code == 201
    return api


def test_failed_commit_is_an_error_and_nothing_is_kept(
    city_api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = city_api
    admin = api.token_for("admin", Role.admin)
    url = "/api/v1/grids/330106001001001/assignments"
    body = {
        "kind": "unit",
        "role": "责任单位",
        "assignee_name": "东湖街道",
        "effective_from": "2026-01-01",
    }

    def broken_commit(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patch:
        patch.setattr(Session, "commit", broken_commit)
        response = api.client.post(url, json=body, headers=admin)
    problem = assert_problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"] and problem["request_id"]
    assert api.client.get(url, headers=admin).json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("get", "/api/v1/grid-versions/2147483648", {}),
        ("post", "/api/v1/grid-versions/2147483648/activate", {}),
        ("get", "/api/v1/grid-versions/0", {}),
        ("get", "/api/v1/grids", {"version": 2**63}),
        ("get", "/api/v1/grids", {"limit": 0}),
        ("get", "/api/v1/grids", {"limit": 10**6}),
        ("get", "/api/v1/grids/" + "9" * 41, {}),
        ("post", "/api/v1/grids/330106001001001/assignments/2147483648/end", {}),
    ],
)
def test_out_of_range_ids_and_sizes_are_422(
    city_api: ApiHarness, method: str, path: str, params: dict[str, object]
) -> None:
    admin = city_api.token_for("admin", Role.admin)
    kwargs = {"json": {"effective_to": "2027-01-01"}} if path.endswith("/end") else {}
    response = getattr(city_api.client, method)(path, params=params, headers=admin, **kwargs)
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/grids?parent=33%00",
        "/api/v1/grids/33%00",
        "/api/v1/grids/33%00/assignments",
        "/api/v1/grids?parent=%1b%5b31m",
    ],
)
def test_control_characters_in_urls_are_refused(city_api: ApiHarness, path: str) -> None:
    admin = city_api.token_for("admin", Role.admin)
    assert_problem(city_api.client.get(path, headers=admin), 422, "invalid_input")


def test_nul_in_bodies_and_forms_is_refused_on_both_profiles(city_api: ApiHarness) -> None:
    api = city_api
    admin = api.token_for("admin", Role.admin)
    body = {"kind": "unit", "role": "x\x00", "assignee_name": "y", "effective_from": "2026-01-01"}
    response = api.client.post(
        "/api/v1/grids/330106001001001/assignments", json=body, headers=admin
    )
    assert_problem(response, 422, "validation_error")
    login = api.client.post("/api/v1/auth/token", json={"username": "a\x00", "password": "x"})
    assert_problem(login, 422, "validation_error")
    codes, geoms = lattice_grids(2, 1)
    assert_problem(upload(api, geojson_bytes(codes, geoms), label="a\x00b"), 422, "invalid_input")


def test_odd_tokens_are_401(city_api: ApiHarness) -> None:
    for token in ("xat1.a.\u00e9", "xat1.\u00e9.\u00e9", "a.b", "xat1..", "x" * 5000):
        response = city_api.client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}".encode()}
        )
        assert_problem(response, 401, "invalid_token")


def test_zero_width_bbox_is_refused(city_api: ApiHarness) -> None:
    headers = city_api.token_for("viewer")
    for bbox in ("120.0005,30.0005,120.0005,30.0005", "120.0005,30,120.0005,30.001"):
        response = city_api.client.get("/api/v1/grids", params={"bbox": bbox}, headers=headers)
        assert_problem(response, 422, "invalid_bbox")


def test_unexpected_errors_are_problem_documents_with_request_id(api: ApiHarness) -> None:
    from fastapi.testclient import TestClient

    app = create_app(runtime=api.runtime)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/boom", headers={"X-Request-ID": "trace-me"})
    body = assert_problem(response, 500, "internal_error")
    assert response.headers["x-request-id"] == "trace-me" and body["request_id"] == "trace-me"
    assert "a bug" not in response.text


def test_unreachable_database_is_503(tmp_path, s3_service) -> None:
    settings = production_settings(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", s3_service, tmp_path
    )
    harness = make_harness("production", settings)
    try:
        response = harness.client.post(
            "/api/v1/auth/token", json={"username": "a", "password": "b"}
        )
        assert_problem(response, 503, "database_unavailable")
        ready = harness.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is False
        assert ready.json()["checks"]["object_store"]["ok"] is True
    finally:
        harness.runtime.close()


def test_an_exhausted_connection_pool_is_503_not_500(
    postgis_url: str, tmp_path, s3_service
) -> None:
    """Overload: every pooled connection busy past the pool timeout answers 503 with
    Retry-After (phones retry later), never a 500."""
    settings = production_settings(
        postgis_url, s3_service, tmp_path, database_pool_size=1, database_pool_timeout_s=0.3
    )
    harness = make_harness("production", settings)
    held = [harness.runtime.engine.connect() for _ in range(11)]  # 1 + the overflow of 10
    try:
        response = harness.client.post(
            "/api/v1/auth/token", json={"username": "a", "password": "b"}
        )
        assert_problem(response, 503, "database_unavailable")
        assert response.headers["retry-after"] == "2"
    finally:
        for connection in held:
            connection.close()
        harness.runtime.close()


def test_embedded_reads_do_not_wait_for_a_writer(sqlite_url: str, tmp_path) -> None:
    """SQLite only: read requests use a deferred BEGIN, so a writer's lock does not stall them."""
    city_api = make_harness("embedded", embedded_settings(sqlite_url, tmp_path / "var"))
    codes, geoms = lattice_grids(4, 3)
    assert upload(city_api, geojson_bytes(codes, geoms), activate=True).status_code == 201
    headers = city_api.token_for("viewer")
    path = sqlite_url.removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # e.g. a CLI import holding the write lock
    try:
        started = time.perf_counter()
        response = city_api.client.get(
            "/api/v1/grids/lookup",
            params={"lon": 120.0005, "lat": 30.0005, "crs": "wgs84"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert time.perf_counter() - started < 2.0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        city_api.runtime.close()


def test_oversized_bodies_are_refused_before_parsing(sqlite_url: str, tmp_path) -> None:
    harness = make_harness(
        "embedded",
        embedded_settings(
            sqlite_url, tmp_path / "var", grid_import_max_bytes=10_000, photo_max_bytes=10_000
        ),
    )
    try:
        admin = harness.token_for("admin", Role.admin)
        big = b"{" + b" " * 2_000_000 + b"}"
        response = harness.client.post(
            "/api/v1/grid-versions",
            files={"file": ("big.geojson", big, "application/geo+json")},
            data={"crs": "EPSG:4490"},
            headers=admin,
        )
        assert_problem(response, 413, "payload_too_large")

        def chunks():
            for _ in range(40):
                yield b"x" * 100_000

        chunked = harness.client.post(
            "/api/v1/auth/token",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert_problem(chunked, 413, "payload_too_large")
    finally:
        harness.runtime.close()
