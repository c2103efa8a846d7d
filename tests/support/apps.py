"""Building a Runtime + app per test, on either storage profile, with real services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.accounts import service as accounts
from backend.accounts.models import Role
from backend.app import create_app
from backend.core.db import transaction
from backend.core.runtime import Runtime
from backend.core.settings import Profile, Settings
from tests.support.services import S3Service

TEST_SECRET = "test-secret-key-for-xuncha-tests-only"
TEST_PASSWORD = "correct horse battery"


def embedded_settings(database_url: str, var_dir: Path, **extra: Any) -> Settings:
    return Settings(
        profile=Profile.embedded,
        database_url=database_url,
        var_dir=var_dir,
        objects_dir=var_dir / "objects",
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        log_json=False,
        **extra,
    )


def s3_fields(s3: S3Service, bucket: str) -> dict[str, Any]:
    """Settings fields that point the object store at the test S3 server and ``bucket``."""
    return {
        "object_store": "s3",
        "s3_endpoint_url": s3.endpoint_url,
        "s3_region": s3.region,
        "s3_bucket": bucket,
        "s3_access_key": s3.access_key,
        "s3_secret_key": s3.secret_key,
        "s3_path_style": True,
    }


def production_settings(database_url: str, s3: S3Service, var_dir: Path, **extra: Any) -> Settings:
    bucket = f"xuncha-test-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    fields: dict[str, Any] = {
        "profile": Profile.production,
        "database_url": database_url,
        "var_dir": var_dir,
        "secret_key": TEST_SECRET,
        "log_json": False,
        "database_pool_size": 5,
        **s3_fields(s3, bucket),
    }
    return Settings(**(fields | extra))


@dataclass
class ApiHarness:
    """A running app on one profile, plus helpers to act as a given role."""

    profile: str
    runtime: Runtime
    client: TestClient

    def session(self) -> Session:
        return self.runtime.sessions()

    def create_user(self, username: str, role: Role = Role.inspector) -> int:
        with transaction(self.runtime.sessions) as session:
            user = accounts.create_user(
                session, username=username, password=TEST_PASSWORD, role=role
            )
            return user.id

    def token_for(self, username: str, role: Role = Role.inspector) -> dict[str, str]:
        """Authorization headers for a (new or existing) user with ``role``."""
        with transaction(self.runtime.sessions) as session:
            from backend.accounts import repository

            if repository.by_username(session, username) is None:
                accounts.create_user(session, username=username, password=TEST_PASSWORD, role=role)
        response = self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": TEST_PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


def make_harness(profile: str, settings: Settings) -> ApiHarness:
    runtime = Runtime.build(settings)
    client = TestClient(create_app(runtime=runtime), raise_server_exceptions=False)
    return ApiHarness(profile, runtime, client)
