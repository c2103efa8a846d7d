"""Session-wide test setup: PostGIS and S3 are provisioned once per run.

The logic lives in ``tests/support/services.py``; this file only wires it into pytest:

* The xdist controller (or the single process without xdist) provisions in
  ``pytest_configure`` and exports the descriptions as ``XUNCHA_TEST__*`` environment
  variables, which xdist workers inherit and read instead of starting their own servers.
* Under ``CI=true`` a missing service aborts the run (exit code 3): CI must never go green by
  skipping the production-profile tests. Locally the ``postgis_service``/``s3_service``
  fixtures skip with the reason, which ``-ra`` lists in the summary.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

# Before any backend import: the suite creates hundreds of users, and argon2's standard
# parameters (~0.1 s a hash) would cost minutes. tests/unit/test_password_hashing.py checks
# that the service's default stays the standard profile.
os.environ["XUNCHA_INSECURE_FAST_PASSWORD_HASHES"] = "1"

from tests.support.services import PostgisService, S3Service, SessionServices

_SERVICES = pytest.StashKey[SessionServices]()

# Runs that only print information (and never use the services) are not worth a server start.
_INFORMATIONAL_OPTIONS = (
    "help",
    "markers",
    "collectonly",
    "showfixtures",
    "show_fixtures_per_test",
)


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        services = SessionServices.from_env(os.environ)
    elif any(getattr(config.option, name, False) for name in _INFORMATIONAL_OPTIONS):
        services = SessionServices.unavailable("not provisioned for an informational run")
    else:
        services = SessionServices.provision()
        services.export_env(os.environ)
        if services.errors and _in_ci():
            config.stash[_SERVICES] = services  # so pytest_unconfigure stops the other one
            pytest.exit(
                "CI=true requires every test service, but:\n" + "\n".join(services.errors),
                returncode=3,
            )
    config.stash[_SERVICES] = services


def pytest_report_header(config: pytest.Config) -> list[str]:
    services = config.stash.get(_SERVICES, None)
    return services.report_lines() if services is not None else []


def pytest_unconfigure(config: pytest.Config) -> None:
    services = config.stash.get(_SERVICES, None)
    if services is not None:
        services.stop()


def _unavailable(reason: str | None) -> NoReturn:
    message = (reason or "service unavailable").splitlines()[0]
    if _in_ci():
        pytest.fail(f"{message} (CI=true: services are mandatory)", pytrace=False)
    pytest.skip(f"{message} (details in the report header)")


@pytest.fixture(scope="session")
def postgis_service(pytestconfig: pytest.Config) -> PostgisService:
    """The session's PostgreSQL + PostGIS server (throwaway cluster or XUNCHA_TEST_DATABASE_URL)."""
    services = pytestconfig.stash[_SERVICES]
    if services.postgis is None:
        _unavailable(services.postgis_error)
    return services.postgis


@pytest.fixture(scope="session")
def s3_service(pytestconfig: pytest.Config) -> S3Service:
    """The session's S3 endpoint (moto standalone server or XUNCHA_TEST_S3_ENDPOINT)."""
    services = pytestconfig.stash[_SERVICES]
    if services.s3 is None:
        _unavailable(services.s3_error)
    return services.s3


# --------------------------------------------------------------------------------------------
# Databases and apps: every schema comes from the Alembic migrations.

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.support import databases  # noqa: E402
from tests.support.apps import (  # noqa: E402
    ApiHarness,
    embedded_settings,
    make_harness,
    production_settings,
)

PROFILES = ("embedded", "production")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.build_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgis_template(postgis_service: PostgisService) -> Iterator[str]:
    name = databases.build_postgis_template(postgis_service.admin_url)
    yield name
    databases.drop_database(postgis_service.admin_url, name)


@pytest.fixture
def postgis_url(postgis_service: PostgisService, postgis_template: str) -> Iterator[str]:
    """A fresh, migrated PostGIS database for one test."""
    with databases.postgis_clone(postgis_service.admin_url, postgis_template) as url:
        yield url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database for one test."""
    return databases.clone_sqlite(sqlite_template, tmp_path / "db")


@pytest.fixture(params=PROFILES)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiHarness]:
    """The app on each storage profile in turn: the same API tests must pass on both."""
    if request.param == "embedded":
        settings = embedded_settings(request.getfixturevalue("sqlite_url"), tmp_path / "var")
    else:
        settings = production_settings(
            request.getfixturevalue("postgis_url"),
            request.getfixturevalue("s3_service"),
            tmp_path / "var",
        )
    harness = make_harness(request.param, settings)
    try:
        yield harness
    finally:
        harness.client.close()
        harness.runtime.close()
