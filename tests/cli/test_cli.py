"""The ``xuncha`` command: grids import/list/export/activate/match, users, migrate, demo."""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from pathlib import Path

import pytest
from pyogrio.raw import read
from typer.testing import CliRunner

from backend.cli.main import app
from tests.support.apps import TEST_SECRET
from tests.support.grids import geojson_bytes, lattice_grids


@pytest.fixture(params=["embedded", "production"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    base = {"XUNCHA_VAR_DIR": str(tmp_path / "var"), "XUNCHA_LOG_JSON": "false"}
    if request.param == "embedded":
        return base | {"XUNCHA_DATABASE_URL": request.getfixturevalue("sqlite_url")}
    s3 = request.getfixturevalue("s3_service")
    bucket = f"xuncha-cli-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    return base | {
        "XUNCHA_S3_BUCKET": bucket,
        "XUNCHA_PROFILE": "production",
        "XUNCHA_DATABASE_URL": request.getfixturevalue("postgis_url"),
        "XUNCHA_SECRET_KEY": TEST_SECRET,
        "XUNCHA_S3_ENDPOINT_URL": s3.endpoint_url,
        "XUNCHA_S3_ACCESS_KEY": s3.access_key,
        "XUNCHA_S3_SECRET_KEY": s3.secret_key,
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def grid_file(tmp_path: Path) -> Path:
    codes, geoms = lattice_grids(6, 5)
    path = tmp_path / "city.geojson"
    path.write_bytes(geojson_bytes(codes, geoms))
    return path


def test_grids_workflow(env: dict[str, str], grid_file: Path, tmp_path: Path) -> None:
    code, out, err = run(env, "grids", "import", str(grid_file), "--crs", "EPSG:4490")
    assert code == 0, err
    assert "imported version 1" in out and "30 in 5 communities" in out
    assert "inactive" in out
    code, _, err = run(env, "grids", "match", "120.0005", "30.0005", "--crs", "wgs84")
    assert code == 2 and "no_active_grid_version" in err
    code, out, err = run(env, "grids", "activate", "1")
    assert code == 0 and "is now active" in out, err
    code, out, _ = run(env, "grids", "versions")
    assert "✓" in out and "30" in out
    code, out, _ = run(env, "grids", "list", "--parent", "330106001002")
    assert out.count("330106001002") >= 6
    code, out, _ = run(env, "grids", "match", "120.0005", "30.0005", "--crs", "wgs84")
    assert code == 0 and out.startswith("inside: 330106001001001")

    exported = tmp_path / "out.geojson"
    code, out, err = run(env, "grids", "export", str(exported))
    assert code == 0, err
    collection = json.loads(exported.read_text(encoding="utf-8"))
    assert len(collection["features"]) == 30
    assert collection["features"][0]["properties"]["community_code"] == "330106001001"
    code, _, err = run(env, "grids", "export", str(exported))
    assert code == 2 and "--overwrite" in err

    gpkg = tmp_path / "out.gpkg"
    code, _, err = run(env, "grids", "export", str(gpkg), "--parent", "330106001003")
    assert code == 0, err
    meta, _fids, geometry, _fields = read(str(gpkg))
    assert len(geometry) == 6 and meta["crs"] == "EPSG:4326"


def test_bad_input_is_one_clear_line(env: dict[str, str], grid_file: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("this is not a grid file")
    cases = [
        (["grids", "import", str(garbage), "--crs", "EPSG:4490"], "grid_file_unreadable"),
        (["grids", "import", str(grid_file), "--crs", "mars"], "unknown_crs"),
        (["grids", "import", str(grid_file), "--crs", "EPSG:4490", "--field", "x"], "code=WGBM"),
        (["grids", "import", str(grid_file), "--invalid", "ignore"], "repair or refuse"),
        (["grids", "activate", "42"], "grid_version_not_found"),
        (["grids", "export", str(tmp_path / "x.csv")], ".geojson or .gpkg"),
    ]
    for args, expected in cases:
        code, out, err = run(env, *args)
        assert code == 2, (args, out, err)
        assert expected in err, (args, err)
        assert len(err.strip().splitlines()) <= 2, err  # one message (rich may wrap it)
        assert "Traceback" not in err + out


def test_refused_import_writes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    codes, geoms = lattice_grids(3, 2)
    codes[1] = codes[0]
    path = tmp_path / "dup.geojson"
    path.write_bytes(geojson_bytes(codes, geoms))
    code, _, err = run(env, "grids", "import", str(path), "--crs", "EPSG:4490", "--activate")
    assert code == 2 and "duplicate_grid_code" in err
    code, out, _ = run(env, "grids", "versions")
    assert code == 0 and "✓" not in out


def test_users_and_migrate(env: dict[str, str]) -> None:
    code, out, err = run(env, "migrate")
    assert code == 0 and "0011 → 0011" in out, err
    code, out, err = run(
        env, "users", "create", "chief", "--role", "admin", "--password", "long-enough-pw"
    )
    assert code == 0 and "created chief (admin)" in out, err
    code, _, err = run(env, "users", "create", "chief", "--role", "admin", "--password", "x" * 9)
    assert code == 2 and "username_taken" in err
    code, _, err = run(env, "users", "create", "short", "--role", "admin", "--password", "x")
    assert code == 2 and "at least 8" in err


def test_demo_seeds_a_city_once(tmp_path: Path) -> None:
    env = {"XUNCHA_VAR_DIR": str(tmp_path / "var"), "XUNCHA_LOG_JSON": "false"}
    code, out, err = run(env, "demo", "--no-serve")
    assert code == 0, err
    assert "2880 grids (created)" in out and "inspector01" in out
    code, out, err = run(env, "demo", "--no-serve")
    assert code == 0 and "2880 grids (already present)" in out, err
    [database] = (tmp_path / "var").glob("*.sqlite3")
    with sqlite3.connect(database) as db:
        statuses = sorted(row[0] for row in db.execute("SELECT status FROM cases"))
        departments = db.execute("SELECT count(*) FROM departments").fetchone()[0]
    assert departments == 3 and len(statuses) == 6, "seeded once, not twice"
    assert statuses == ["accepted", "declined", "dispatched", "dispatched", "filed", "reported"]
    code, out, err = run(env, "audit", "verify")
    assert code == 0, (out, err)


def test_production_profile_refuses_sqlite(tmp_path: Path) -> None:
    env = {"XUNCHA_PROFILE": "production", "XUNCHA_DATABASE_URL": "sqlite:///x.db"}
    code, _, err = run(env, "migrate")
    assert code == 2 and "invalid configuration" in err


def test_environment_problems_are_one_line(grid_file: Path, tmp_path: Path) -> None:
    not_a_db = tmp_path / "notdb.sqlite3"
    not_a_db.write_text("plain text, not SQLite")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        ({"XUNCHA_DATABASE_URL": "foo://x"}, ["migrate"], "invalid configuration"),
        ({"XUNCHA_DATABASE_URL": "notaurl"}, ["migrate"], "invalid configuration"),
        ({"XUNCHA_DATABASE_URL": f"sqlite:///{not_a_db}"}, ["migrate"], "database error"),
        ({"XUNCHA_VAR_DIR": str(a_file / "var")}, ["migrate"], "Not a directory"),
        ({}, ["migrate", "nosuchrevision"], "migration error"),
        ({}, ["grids", "activate", "99999999999999999999"], "Invalid value"),
        ({}, ["serve", "--port", "99999"], "Invalid value"),
        ({}, ["users", "create", " ", "--role", "admin", "--password", "x" * 9], "username"),
    ]
    for extra, args, expected in cases:
        env = {"XUNCHA_VAR_DIR": str(tmp_path / "var"), "XUNCHA_LOG_JSON": "false"} | extra
        code, out, err = run(env, *args)
        assert code == 2, (args, out, err)
        assert expected in err, (args, err)
        assert "Traceback" not in err + out


def test_unwritable_report_imports_nothing(env: dict[str, str], grid_file: Path, tmp_path) -> None:
    code, _, err = run(
        env, "grids", "import", str(grid_file), "--crs", "EPSG:4490", "--report", str(tmp_path)
    )
    assert code == 2 and "Is a directory" in err
    code, out, _ = run(env, "grids", "versions")
    assert "EPSG:4490" not in out  # no version was left behind
    directory = tmp_path / "looks-like.geojson"
    directory.mkdir()
    code, _, err = run(env, "grids", "export", str(directory), "--overwrite")
    assert code == 2 and "is a directory" in err


def test_enrollment_codes_and_prune_from_the_cli(env: dict[str, str]) -> None:
    code, _, err = run(
        env, "users", "create", "zhangwei", "--role", "inspector", "--password", "patrol-pass-1"
    )
    assert code == 0, err
    code, out, err = run(
        env, "users", "enrollment-code", "zhangwei", "--server", "https://xc.example"
    )
    assert code == 0, err
    assert "code " in out and "xuncha:enroll?v=1&server=https%3A%2F%2Fxc.example&code=" in out
    code, _, err = run(env, "users", "enrollment-code", "nobody")
    assert code == 2 and "no user named" in err
    code, out, err = run(env, "sync", "prune", "--days", "30")
    assert code == 0 and "removed 0 change-log entries" in out, err


def _enqueue_cleanup(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    from backend.core.db import transaction
    from backend.core.runtime import Runtime
    from backend.core.settings import load_settings
    from backend.jobs import queue
    from backend.media.jobs import CLEANUP_JOB

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime.build(load_settings())
    try:
        with transaction(runtime.sessions) as session:
            for _ in range(jobs):
                queue.enqueue(session, CLEANUP_JOB, {})
    finally:
        runtime.close()


def test_worker_jobs_and_media_cleanup(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(env, "migrate")[0] == 0
    code, out, err = run(env, "jobs", "status")
    assert code == 0 and "no jobs" in out, err
    _enqueue_cleanup(env, monkeypatch, 2)
    code, out, err = run(env, "worker", "--until-idle")
    assert code == 0 and "ran 2 jobs" in out, err
    code, out, err = run(env, "jobs", "status")
    assert code == 0 and "media.cleanup" in out and "│ 2 " in out, out
    code, out, err = run(env, "jobs", "retry-failed")
    assert code == 0 and "queued 0 failed jobs again" in out, (out, err)
    code, out, err = run(env, "media", "cleanup")
    assert code == 0 and "expired uploads removed: 0" in out, err


def test_worker_stops_cleanly_on_sigterm(tmp_path: Path, sqlite_url: str) -> None:
    import os
    import shutil
    import signal
    import subprocess
    import time

    env = {
        **os.environ,
        "XUNCHA_VAR_DIR": str(tmp_path / "var"),
        "XUNCHA_LOG_JSON": "false",
        "XUNCHA_DATABASE_URL": sqlite_url,
    }
    assert run(env, "migrate")[0] == 0
    xuncha = shutil.which("xuncha") or str(Path(sys.executable).parent / "xuncha")
    worker = subprocess.Popen(
        [xuncha, "worker", "--poll", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        first = worker.stdout.readline()
        assert "worker running" in first, first + worker.stderr.read()  # type: ignore[union-attr]
        time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    assert "SIGTERM" in out and "worker stopped after 0 jobs" in out


def test_categories_import_export_list(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "migrate")[0] == 0
    code, out, err = run(env, "categories", "list")
    assert code == 0 and "no categories" in out, err
    code, out, err = run(env, "categories", "import", "--dry-run")
    assert code == 0 and "29 created" in out and "dry run" in out, err
    code, out, err = run(env, "categories", "import")
    assert code == 0 and "29 created" in out, err
    exported = tmp_path / "cats.json"
    code, out, err = run(env, "categories", "export", str(exported))
    assert code == 0 and "(json)" in out, err
    code, out, err = run(env, "categories", "import", str(exported))
    assert code == 0 and "29 unchanged" in out, err
    code, out, _ = run(env, "categories", "list")
    assert "shop_front_trading" in out and "店外经营" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ncategories:\n  - code: 504\n", encoding="utf-8")
    code, _, err = run(env, "categories", "import", str(bad))
    assert code == 2 and "category_file_invalid" in err and "quote codes" in err


def test_audit_verify_head_and_tail(env: dict[str, str]) -> None:
    assert run(env, "migrate")[0] == 0
    code, out, err = run(env, "users", "create", "chief", "--role", "admin", "--password", "x" * 12)
    assert code == 0, err
    code, out, err = run(env, "audit", "verify")
    assert code == 0 and "intact: 1 entries" in out, err
    code, head, _ = run(env, "audit", "head")
    assert code == 0 and head.startswith("1:")
    code, out, _ = run(env, "audit", "tail")
    assert "cli:" in out and "user.create" in out
    code, out, err = run(env, "audit", "verify", "--expect-head", "0:" + "0" * 64)
    assert code == 1 and "NOT intact" in err and "head_mismatch" in err


def test_calendar_import_export_deadline(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "migrate")[0] == 0
    source = tmp_path / "calendar.yaml"
    source.write_text('version: 1\nworkdays: ["2026-09-27"]\n', encoding="utf-8")
    code, out, err = run(env, "calendar", "import", str(source))
    assert code == 0 and "1 make-up workdays" in out, err
    code, out, err = run(env, "calendar", "deadline", "2026-09-25T17:00+08:00", "1h")
    assert code == 0 and out.startswith("2026-09-27T09:00:00+08:00"), err
    code, _, err = run(env, "calendar", "deadline", "2026-09-25T17:00", "1h")
    assert code == 2 and "UTC offset" in err
    out_file = tmp_path / "out.json"
    code, out, err = run(env, "calendar", "export", str(out_file))
    assert code == 0 and '"2026-09-27"' in out_file.read_text(), err
    source.write_text("version: 1\nhours: [nonsense]\n", encoding="utf-8")
    code, _, err = run(env, "calendar", "import", str(source))
    assert code == 2 and "calendar_file_invalid" in err
