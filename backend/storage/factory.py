"""Builds the configured object store."""

from __future__ import annotations

from backend.core.settings import Settings
from backend.storage.base import ObjectStore
from backend.storage.grants import derive_signing_key
from backend.storage.local import LocalObjectStore
from backend.storage.s3 import S3ObjectStore


def build_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "s3":
        return S3ObjectStore(settings)
    assert settings.objects_dir is not None
    return LocalObjectStore(
        settings.objects_dir,
        signing_key=derive_signing_key(settings.secret_key.get_secret_value()),
        public_base_url=settings.public_base_url or "",
    )
