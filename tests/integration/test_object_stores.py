"""Both object stores, against the real local directory and an S3 server over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.errors import ServiceUnavailable
from backend.core.settings import Profile, Settings
from backend.storage.base import InvalidObjectKey, ObjectNotFound, ObjectStore
from backend.storage.local import LocalObjectStore
from backend.storage.s3 import S3ObjectStore
from tests.support.apps import s3_fields
from tests.support.services import S3Service


def _s3_settings(s3: S3Service, bucket: str, create: bool = False) -> Settings:
    return Settings(
        profile=Profile.embedded,
        database_url="sqlite:///:memory:",
        s3_create_bucket=create,
        **s3_fields(s3, bucket),
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "objects")
        return
    s3: S3Service = request.getfixturevalue("s3_service")
    bucket = f"xuncha-store-{uuid.uuid4().hex[:10]}"
    s3.client().create_bucket(Bucket=bucket)
    yield S3ObjectStore(_s3_settings(s3, bucket))


def test_round_trip_exists_delete(store: ObjectStore) -> None:
    store.ping()
    payload = bytes(range(256)) * 100
    store.put("photos/ab/cd/original.jpg", payload, "image/jpeg")
    assert store.exists("photos/ab/cd/original.jpg")
    assert store.get("photos/ab/cd/original.jpg") == payload
    store.delete("photos/ab/cd/original.jpg")
    assert not store.exists("photos/ab/cd/original.jpg")
    with pytest.raises(ObjectNotFound):
        store.get("photos/ab/cd/original.jpg")


@pytest.mark.parametrize("key", ["../escape", "/absolute", "a//b", "a/./b", "", "空格 key"])
def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        store.put(key, b"x", "text/plain")


def test_missing_bucket_is_unavailable_unless_created(s3_service: S3Service) -> None:
    bucket = f"xuncha-missing-{uuid.uuid4().hex[:10]}"
    with pytest.raises(ServiceUnavailable):
        S3ObjectStore(_s3_settings(s3_service, bucket)).ping()
    S3ObjectStore(_s3_settings(s3_service, bucket, create=True)).ping()
    assert bucket in {b["Name"] for b in s3_service.client().list_buckets()["Buckets"]}


def test_unreachable_endpoint_is_unavailable() -> None:
    settings = Settings(
        database_url="sqlite:///:memory:",
        object_store="s3",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_access_key="x",
        s3_secret_key="y",  # type: ignore[arg-type]
    )
    with pytest.raises(ServiceUnavailable):
        S3ObjectStore(settings).ping()
