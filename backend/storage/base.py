"""The object store interface that evidence (photo originals, renditions) is written through.

Two implementations: a local directory (embedded profile) and any S3-compatible server
(production: MinIO, AWS S3, Aliyun OSS, Tencent COS). Keys are slash-separated relative paths.

Evidence is never replaced silently: every method that creates an object (``put_stream``,
``concat``, ``copy``) refuses an existing key with :class:`ObjectExists` unless told otherwise,
and an upload that fails half-way leaves nothing under the key. ``put`` (whole bytes, overwrite)
is kept for small derived objects.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound

_KEY = re.compile(r"^(?!/)(?!.*//)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._\-/]{1,512}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(;[ -~]*)?$")

#: Longest lifetime of a presigned URL or local grant: 15 minutes.
MAX_PRESIGN_SECONDS = 900
#: S3's smallest part (except the last) of a multipart upload.
MIN_PART_BYTES = 5 * 1024 * 1024
#: The largest buffer the stores hold per upload (one multipart part).
MAX_PART_BYTES = 8 * 1024 * 1024
#: Chunk size for reading streams and objects.
CHUNK_BYTES = 1024 * 1024


class ObjectNotFound(NotFound):
    code = "object_not_found"


class InvalidObjectKey(InvalidInput):
    code = "invalid_object_key"


class ObjectExists(Conflict):
    """The key already holds an object; evidence is never replaced silently."""

    code = "object_exists"
    title = "The object already exists"


class IncompleteStream(InvalidInput):
    """The stream ended before the announced length; nothing was stored."""

    code = "upload_incomplete"
    title = "The upload ended early"


class GrantInvalid(Forbidden):
    """A direct-upload/download grant that we did not issue, was altered or is for another use."""

    code = "upload_grant_invalid"
    title = "The upload grant is not valid"


class GrantExpired(GrantInvalid):
    """A genuine grant past its expiry (a subclass: ``except GrantInvalid`` catches both)."""

    code = "upload_grant_expired"
    title = "The upload grant has expired"


@dataclass(frozen=True, kw_only=True)
class PresignedRequest:
    """An HTTP request a phone makes itself, straight to the object store (or to our API).

    ``headers`` are exactly the headers the client must send (they are covered by the
    signature: a different value is refused). Signing happened on the server, with the
    server's clock; the phone's clock does not matter.
    """

    url: str
    method: str = "PUT"
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: datetime


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's root (``..``, absolute, odd characters)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidObjectKey(f"invalid object key: {key!r}")
    return key


def check_length(length: int) -> int:
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    return length


def check_expires(expires_s: int) -> int:
    """Presigned URLs and grants live at most :data:`MAX_PRESIGN_SECONDS`."""
    if isinstance(expires_s, bool) or not isinstance(expires_s, int):
        raise ValueError(f"expires_s must be an int, got {expires_s!r}")
    if not 1 <= expires_s <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"expires_s must be within 1..{MAX_PRESIGN_SECONDS}, got {expires_s}")
    return expires_s


def check_sha256_hex(sha256_hex: str) -> str:
    """A hex SHA-256 digest, normalised to lower case."""
    value = sha256_hex.lower() if isinstance(sha256_hex, str) else ""
    if not _SHA256_HEX.match(value):
        raise ValueError(f"not a hex SHA-256 digest: {sha256_hex!r}")
    return value


def check_content_type(content_type: str) -> str:
    """A plausible media type without control characters (it ends up in a signed header)."""
    if not isinstance(content_type, str) or not _CONTENT_TYPE.match(content_type):
        raise ValueError(f"not a media type: {content_type!r}")
    return content_type


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name in RFC 5987 form."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip() or "download"
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"%;' else "_" for c in name)
    quoted = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quoted}"


class ByteStream(Protocol):
    """Anything with ``read(n) -> bytes``: a ``BinaryIO``, ``IO[bytes]``, a request body."""

    def read(self, size: int = -1, /) -> bytes: ...


class ObjectStore(Protocol):
    description: str

    def ping(self) -> None:
        """Raise ServiceUnavailable unless the store answers and the bucket/dir is usable."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` whole (replaces an existing object: not for evidence)."""

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def put_stream(
        self,
        key: str,
        stream: ByteStream,
        length: int,
        content_type: str,
        *,
        overwrite: bool = False,
    ) -> str:
        """Store exactly ``length`` bytes read from ``stream``; return their hex SHA-256.

        Memory stays bounded (at most one multipart part, 8 MiB). Fewer bytes than
        ``length`` → :class:`IncompleteStream` and nothing is stored; bytes beyond ``length``
        are not read. An existing key → :class:`ObjectExists` unless ``overwrite``.
        """
        ...

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the local file at ``path`` under ``key``, never overwriting
        (:class:`ObjectExists`). The caller still removes ``path``; a local store may adopt
        the file itself (a hard link) instead of copying it when it lies in
        :meth:`scratch_dir`."""
        ...

    def scratch_dir(self) -> Path | None:
        """Where to write temporary files that :meth:`put_file` can adopt without a copy
        (None: the system's temp directory is as good as any)."""
        ...

    def open_stream(self, key: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The object's bytes in chunks; :class:`ObjectNotFound` is raised by this call."""
        ...

    def size(self, key: str) -> int:
        """The object's length in bytes (:class:`ObjectNotFound` if missing)."""
        ...

    def concat(
        self, final_key: str, part_keys: Sequence[str], content_type: str
    ) -> tuple[int, str]:
        """Assemble the parts, in order, into a new ``final_key``; return (size, hex SHA-256).

        Never overwrites (:class:`ObjectExists`); the parts are left in place; a failure leaves
        nothing under ``final_key``.
        """
        ...

    def copy(self, src_key: str, dst_key: str) -> None:
        """Copy an object to a new key (:class:`ObjectExists` if ``dst_key`` exists)."""

    def list_keys(self, prefix: str) -> list[str]:
        """The keys starting with ``prefix`` (non-empty; a string prefix), sorted."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix`` (non-empty); return how many."""
        ...

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
        """A request a phone can PUT exactly these bytes with (``expires_s`` ≤ 900).

        An existing key → :class:`ObjectExists` now, and the upload itself is refused if the
        key appears meanwhile — unless ``overwrite`` (e.g. a staging key whose content is
        verified before use).
        """
        ...

    def presign_get(self, key: str, *, expires_s: int, filename: str | None = None) -> str:
        """A URL to download the object for ``expires_s`` (≤ 900) seconds."""
        ...

    def cleanup_stale(self, older_than: timedelta) -> int:
        """Remove what crashed uploads left behind (S3: multipart uploads; local: temp files)."""
        ...


def read_exactly(stream: ByteStream, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``stream`` in chunks of at most 1 MiB; IncompleteStream if short.

    Short reads are fine (sockets return what they have); only an empty read is the end. Bytes
    beyond ``length`` are never read.
    """
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(CHUNK_BYTES, remaining))
        if not chunk:
            received = length - remaining
            raise IncompleteStream(
                f"the upload ended after {received} of {length} bytes",
                expected=length,
                received=received,
            )
        if len(chunk) > remaining:  # a misbehaving reader: never store more than announced
            chunk = chunk[:remaining]
        remaining -= len(chunk)
        yield bytes(chunk)
