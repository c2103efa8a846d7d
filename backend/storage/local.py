"""Object store in a local directory (embedded profile)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from backend.core.errors import ServiceUnavailable
from backend.storage.base import ObjectNotFound, check_key


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"local directory {root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise ServiceUnavailable(f"object directory {self.root} is not writable")
        except OSError as exc:
            raise ServiceUnavailable(f"object directory {self.root}: {exc.strerror}") from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a crash never leaves a half-written object under the real key.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object {key} does not exist") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
