"""The ``xuncha`` command: grids import/list/export/activate/match, users, migrate, demo."""

from __future__ import annotations

import json
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
    return base | {
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
    assert code == 0 and "0003 → 0003" in out, err
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
