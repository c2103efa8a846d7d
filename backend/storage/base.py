"""The object store interface that evidence (photo originals, renditions) is written through.

Two implementations: a local directory (embedded profile) and any S3-compatible server
(production: MinIO, AWS S3, Aliyun OSS, Tencent COS). Keys are slash-separated relative paths.
"""

from __future__ import annotations

import re
from typing import Protocol

from backend.core.errors import InvalidInput, NotFound

_KEY = re.compile(r"^(?!/)(?!.*//)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._\-/]{1,512}$")


class ObjectNotFound(NotFound):
    code = "object_not_found"


class InvalidObjectKey(InvalidInput):
    code = "invalid_object_key"


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's root (``..``, absolute, odd characters)."""
    if not _KEY.match(key):
        raise InvalidObjectKey(f"invalid object key: {key!r}")
    return key


class ObjectStore(Protocol):
    description: str

    def ping(self) -> None:
        """Raise ServiceUnavailable unless the store answers and the bucket/dir is usable."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...
