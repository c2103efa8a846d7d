"""Object store in a local directory (embedded profile).

Every write goes to a temp file in the target's directory, is fsynced, and is then published
under its key in one step, so a crash never leaves a half-written object under a real key.
Publishing without overwrite uses ``os.link`` (fails if the name exists), so of two writers of
the same key exactly one wins and the other gets :class:`ObjectExists`. On file systems without
hard links, the key is first reserved with ``O_CREAT | O_EXCL`` and the temp file renamed over
it: still one winner, but a reader may see an empty object for that instant.

Temp files are named ``.tmp~…``: ``~`` is not allowed in keys, so they can never be mistaken
for (or collide with) an object. ``cleanup_stale`` removes those a crash left behind.

Direct upload/download URLs point at our own API and carry a signed grant (see
:mod:`backend.storage.grants`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from backend.core.errors import ServiceUnavailable
from backend.storage.base import (
    CHUNK_BYTES,
    ByteStream,
    ObjectExists,
    ObjectNotFound,
    PresignedRequest,
    check_content_type,
    check_expires,
    check_key,
    check_length,
    check_sha256_hex,
    read_exactly,
)
from backend.storage.grants import (
    GrantKind,
    LocalGrant,
    sign_local_grant,
    verify_local_grant,
)

__all__ = ["LocalGrant", "LocalObjectStore", "sign_local_grant", "verify_local_grant"]

TMP_PREFIX = ".tmp~"
DIRECT_PUT_PATH = "/api/v1/media/direct/"
SIGNED_GET_PATH = "/api/v1/media/signed/"

# os.link failures that mean "this file system has no hard links", not "the name exists".
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK}


class LocalObjectStore:
    def __init__(
        self, root: Path, signing_key: bytes | None = None, public_base_url: str = ""
    ) -> None:
        self.root = Path(root)
        self.signing_key = signing_key
        self.public_base_url = public_base_url.rstrip("/")
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

    # ----------------------------------------------------------------------------------------
    # whole objects

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        fd, tmp = self._temp_file(path)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"object {key} does not exist") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def path_of(self, key: str) -> Path:
        """The file holding ``key`` (for serving it with sendfile); ObjectNotFound if none."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"object {key} does not exist")
        return path

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()

    # ----------------------------------------------------------------------------------------
    # streams

    def put_stream(
        self,
        key: str,
        stream: ByteStream,
        length: int,
        content_type: str,
        *,
        overwrite: bool = False,
    ) -> str:
        path = self._path(key)
        check_length(length)
        if not overwrite and path.exists():
            raise ObjectExists(f"object {key} already exists")
        _size, digest = self._write_new(key, read_exactly(stream, length), overwrite=overwrite)
        return digest

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Adopt ``path`` by a hard link when it is on this store's file system (no copy)."""
        check_content_type(content_type)
        target = self._path(key)
        if target.exists():
            raise ObjectExists(f"object {key} already exists")
        if os.stat(path).st_dev != os.stat(self.root).st_dev:
            with path.open("rb") as handle:
                self.put_stream(key, handle, path.stat().st_size, content_type)
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # the bytes are durable before the name is
        finally:
            os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        _publish(path, target, key, overwrite=False)

    def scratch_dir(self) -> Path:
        # Temp names (TMP_PREFIX) in the root: never listed as objects, removed by
        # cleanup_stale if a crash leaves them, and on the file system put_file links within.
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def open_stream(self, key: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"object {key} does not exist") from exc
        return _chunks_of(handle, chunk_size)

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"object {key} does not exist") from exc
        if not path.is_file():
            raise ObjectNotFound(f"object {key} does not exist")
        return stat.st_size

    def concat(
        self, final_key: str, part_keys: Sequence[str], content_type: str
    ) -> tuple[int, str]:
        path = self._path(final_key)
        if isinstance(part_keys, str) or not part_keys:
            raise ValueError("concat needs a non-empty sequence of part keys")
        for part in part_keys:
            self.size(part)  # checks the key and that it exists, before writing anything
        if path.exists():
            raise ObjectExists(f"object {final_key} already exists")

        def chunks() -> Iterator[bytes]:
            for part in part_keys:
                yield from self.open_stream(part)

        return self._write_new(final_key, chunks(), overwrite=False)

    def copy(self, src_key: str, dst_key: str) -> None:
        src, dst = self._path(src_key), self._path(dst_key)
        if not src.is_file():
            raise ObjectNotFound(f"object {src_key} does not exist")
        if dst.exists():
            raise ObjectExists(f"object {dst_key} already exists")
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Objects are never modified in place (every write renames a new file over the
            # name), so sharing the inode is safe, atomic and refuses an existing name.
            os.link(src, dst)
        except FileExistsError as exc:
            raise ObjectExists(f"object {dst_key} already exists") from exc
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object {src_key} does not exist") from exc
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS and exc.errno != errno.EXDEV:
                raise
            self._write_new(dst_key, self.open_stream(src_key), overwrite=False)
        else:
            _fsync_dir(dst.parent)

    def list_keys(self, prefix: str) -> list[str]:
        """The keys starting with ``prefix`` (a string prefix, as on S3), sorted."""
        return sorted(key for key, _path in self._walk_prefix(prefix))

    def delete_prefix(self, prefix: str) -> int:
        """Delete the objects whose key starts with ``prefix`` (a string prefix, as on S3).

        Stays inside the root, follows no symbolic links, leaves temp files of writes in
        progress alone and removes the directories it emptied.
        """
        visited: list[Path] = []
        count = 0
        for _key, path in self._walk_prefix(prefix, visited):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                count += 1
        for emptied in reversed(visited):  # deepest first
            if emptied != self.root:
                with contextlib.suppress(OSError):  # not empty (e.g. a write in progress)
                    emptied.rmdir()
        return count

    def _walk_prefix(
        self, prefix: str, visited: list[Path] | None = None
    ) -> Iterator[tuple[str, Path]]:
        """(key, path) of the objects under ``prefix``; ``visited`` collects the directories
        entirely inside the prefix, parents first."""
        check_key(prefix)
        directory = prefix.rpartition("/")[0]
        base = self.root / directory if directory else self.root
        if not base.is_dir() or base.is_symlink():
            return
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            here = Path(dirpath)
            rel = here.relative_to(self.root).as_posix()
            rel = "" if rel == "." else rel + "/"
            # Only descend where keys can start with the prefix.
            dirnames[:] = [
                d
                for d in dirnames
                if (rel + d + "/").startswith(prefix) or prefix.startswith(rel + d + "/")
            ]
            if visited is not None and rel.startswith(prefix):
                visited.append(here)
            for name in filenames:
                if not name.startswith(TMP_PREFIX) and (rel + name).startswith(prefix):
                    yield rel + name, here / name

    # ----------------------------------------------------------------------------------------
    # direct URLs on our own API

    def presign_put(
        self,
        key: str,
        *,
        content_type: str,
        size: int,
        sha256_hex: str,
        expires_s: int,
        overwrite: bool = False,
    ) -> PresignedRequest:
        path = self._path(key)
        grant = LocalGrant(
            kind="put",
            key=key,
            expires_at=_expiry(expires_s),
            content_type=check_content_type(content_type),
            size=check_length(size),
            sha256_hex=check_sha256_hex(sha256_hex),
            overwrite=overwrite,
        )
        if not overwrite and path.exists():
            raise ObjectExists(f"object {key} already exists")
        token = sign_local_grant(self._key(), grant)
        return PresignedRequest(
            url=f"{self.public_base_url}{DIRECT_PUT_PATH}{token}",
            method="PUT",
            headers={"Content-Type": content_type, "Content-Length": str(size)},
            expires_at=grant.expires_at,
        )

    def presign_get(self, key: str, *, expires_s: int, filename: str | None = None) -> str:
        check_key(key)
        grant = LocalGrant(kind="get", key=key, expires_at=_expiry(expires_s), filename=filename)
        token = sign_local_grant(self._key(), grant)
        return f"{self.public_base_url}{SIGNED_GET_PATH}{token}"

    def verify_grant(
        self, token: str, *, kind: GrantKind, now: datetime | None = None
    ) -> LocalGrant:
        """For the media endpoints: the grant in ``token`` (GrantInvalid / GrantExpired)."""
        return verify_local_grant(self._key(), token, now, kind=kind)

    def _key(self) -> bytes:
        if not self.signing_key:
            raise RuntimeError("this LocalObjectStore was built without a signing key")
        return self.signing_key

    # ----------------------------------------------------------------------------------------
    # hygiene

    def remove_stale_temp_files(self, older_than: timedelta) -> int:
        """Delete temp files (left by crashed writes) last modified before now - older_than."""
        cutoff = time.time() - older_than.total_seconds()
        count = 0
        if not self.root.is_dir():
            return 0
        for dirpath, _dirnames, filenames in os.walk(self.root, followlinks=False):
            for name in filenames:
                if not name.startswith(TMP_PREFIX):
                    continue
                path = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    if path.lstat().st_mtime < cutoff:
                        path.unlink()
                        count += 1
        return count

    def cleanup_stale(self, older_than: timedelta) -> int:
        return self.remove_stale_temp_files(older_than)

    # ----------------------------------------------------------------------------------------
    # writing

    def _temp_file(self, path: Path) -> tuple[int, Path]:
        """A new temp file next to ``path``: (open descriptor, its path)."""
        for attempt in range(3):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
            except FileNotFoundError:
                # A concurrent delete_prefix removed the (empty) directory: make it again.
                if attempt == 2:
                    raise
                continue
            return fd, Path(tmp)
        raise AssertionError("unreachable")

    def _write_new(self, key: str, chunks: Iterable[bytes], *, overwrite: bool) -> tuple[int, str]:
        """Write ``chunks`` to a temp file, fsync, publish under ``key``; (size, sha256)."""
        path = self._path(key)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = self._temp_file(path)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            _publish(tmp, path, key, overwrite=overwrite)
        finally:
            tmp.unlink(missing_ok=True)
        return size, digest.hexdigest()


def _publish(tmp: Path, path: Path, key: str, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise ObjectExists(f"object {key} already exists") from exc
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError as exc2:
                raise ObjectExists(f"object {key} already exists") from exc2
            os.close(fd)
            os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the new name durable (best effort: not every platform can fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _chunks_of(handle: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def _expiry(expires_s: int) -> datetime:
    now = int(time.time())
    return datetime.fromtimestamp(now + check_expires(expires_s), UTC)
