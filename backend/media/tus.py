"""tus 1.0 resumable uploads (core, creation, checksum, expiration, termination).

Each PATCH stores its bytes as one object under the upload's prefix and moves the offset in
the same locked database row, so a resumed or repeated PATCH can never write twice at one
offset. When the last byte arrives the chunks are read back in order into a temporary file
(hashed on the way), verified against the photo's declaration and kept as the original.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.accounts.models import User
from backend.core.errors import InvalidInput, XunchaError
from backend.core.runtime import Runtime
from backend.core.streams import SpooledBody
from backend.media import keys
from backend.media.errors import (
    PhotoDeclarationMismatch,
    PhotoTooBig,
    UploadChecksumMismatch,
    UploadGone,
    UploadNotFound,
    UploadOffsetMismatch,
)
from backend.media.ingest import accept_original, remove_quietly
from backend.media.models import PhotoState, PhotoUpload, UploadKind
from backend.media.service import declared, spool

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,checksum,expiration,termination"
CHECKSUMS = ("sha1", "sha256", "md5")


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: photo_id MTIz,filetype aW1hZ2UvanBlZw==`` → {"photo_id": "123", ...}."""
    result: dict[str, str] = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        try:
            result[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(f"Upload-Metadata value for {key!r} is not base64 UTF-8") from None
    return result


def parse_checksum(header: str | None) -> Checksum | None:
    if not header:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise InvalidInput(f"Upload-Checksum algorithm must be one of {', '.join(CHECKSUMS)}")
    try:
        return Checksum(algorithm, base64.b64decode(value, validate=True))
    except binascii.Error:
        raise InvalidInput("Upload-Checksum value is not base64") from None


def create(
    session: Session,
    runtime: Runtime,
    user: User,
    device_id: str | None,
    length: int,
    metadata: dict[str, str],
) -> PhotoUpload:
    """Open (or reopen) the upload of a declared photo."""
    photo_id = metadata.get("photo_id", "")
    if not photo_id:
        raise InvalidInput("Upload-Metadata must name the photo: photo_id <base64 uuid>")
    photo, _report = declared(session, photo_id, user.id)
    if length > runtime.settings.photo_max_bytes:
        raise PhotoTooBig(f"photos are limited to {runtime.settings.photo_max_bytes} bytes")
    if length != photo.size or metadata.get("sha256", photo.sha256).lower() != photo.sha256:
        raise PhotoDeclarationMismatch(
            f"the report declared {photo.size} bytes with SHA-256 {photo.sha256}"
        )
    now = datetime.now(UTC)
    reusable = session.scalar(
        select(PhotoUpload)
        .where(
            PhotoUpload.photo_id == photo_id,
            PhotoUpload.kind == UploadKind.tus.value,
            PhotoUpload.user_id == user.id,
            PhotoUpload.terminated_at.is_(None),
            PhotoUpload.expires_at > now,
        )
        .order_by(PhotoUpload.created_at.desc())
    )
    stored = photo.state == PhotoState.stored.value
    if reusable is not None and (reusable.completed_at is None or stored):
        return reusable  # the phone lost the upload URL; it resumes where the server is
    upload = PhotoUpload(
        id=str(uuid.uuid4()),
        kind=UploadKind.tus.value,
        photo_id=photo_id,
        user_id=user.id,
        device_id=device_id,
        length=length,
        offset=length if stored else 0,  # already here: nothing left to send
        chunks=0,
        expires_at=now + timedelta(hours=runtime.settings.upload_expiry_hours),
        completed_at=now if stored else None,
    )
    session.add(upload)
    session.flush()
    return upload


def get(session: Session, user: User, upload_id: str, *, lock: bool = False) -> PhotoUpload:
    query = select(PhotoUpload).where(
        PhotoUpload.id == upload_id, PhotoUpload.kind == UploadKind.tus.value
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    upload = session.scalar(query)
    if upload is None or upload.user_id != user.id:
        raise UploadNotFound(f"upload {upload_id} does not exist")
    if upload.terminated_at is not None or (
        upload.completed_at is None and upload.expires_at <= datetime.now(UTC)
    ):
        raise UploadGone(f"upload {upload_id} expired or was terminated; start a new one")
    return upload


@dataclass(frozen=True)
class Patched:
    upload: PhotoUpload
    # Set when the last chunk completed an upload whose bytes were refused: the upload is
    # terminated (and that must be committed), then this error is answered.
    refused: XunchaError | None = None


def patch(
    session: Session,
    runtime: Runtime,
    user: User,
    upload_id: str,
    offset: int,
    body: SpooledBody,
    checksum: Checksum | None,
) -> Patched:
    """Append one chunk at ``offset``; the last one completes the photo."""
    upload = get(session, user, upload_id, lock=True)
    if offset != upload.offset:
        raise UploadOffsetMismatch(
            f"Upload-Offset is {offset} but the upload is at {upload.offset}",
            headers={"Upload-Offset": str(upload.offset)},
        )
    if upload.offset + body.length > upload.length:
        raise InvalidInput(f"the chunk runs past Upload-Length {upload.length}")
    if checksum is not None and body.digests.get(checksum.algorithm) != checksum.digest:
        raise UploadChecksumMismatch("the chunk does not match its Upload-Checksum")
    if body.length:
        runtime.object_store.put_stream(
            keys.chunk(upload.id, upload.offset), body.file, body.length, "application/octet-stream"
        )
        upload.offset += body.length
        upload.chunks += 1
    refused = None
    if upload.offset == upload.length and upload.completed_at is None:
        refused = _complete(session, runtime, user, upload)
    session.flush()
    return Patched(upload, refused)


def _complete(
    session: Session, runtime: Runtime, user: User, upload: PhotoUpload
) -> XunchaError | None:
    store = runtime.object_store
    photo, report = declared(session, upload.photo_id, user.id)
    chunk_keys = store.list_keys(keys.chunk_prefix(upload.id))

    def blocks() -> Iterator[bytes]:
        for key in chunk_keys:
            yield from store.open_stream(key)

    path, sha256 = spool(blocks(), runtime.settings.photo_max_bytes)
    try:
        savepoint = session.begin_nested()
        try:
            accept_original(session, runtime, photo, report, path, sha256, via="tus")
            savepoint.commit()
        except XunchaError as refused:
            # Wrong or unusable bytes: nothing of the photo is kept and this upload is over
            # (a fresh one starts from zero); the termination itself is committed.
            savepoint.rollback()
            store.delete_prefix(keys.chunk_prefix(upload.id))
            upload.terminated_at = datetime.now(UTC)
            return refused
    finally:
        remove_quietly(path)
    store.delete_prefix(keys.chunk_prefix(upload.id))
    upload.completed_at = datetime.now(UTC)
    return None


def terminate(session: Session, runtime: Runtime, user: User, upload_id: str) -> None:
    upload = get(session, user, upload_id, lock=True)
    runtime.object_store.delete_prefix(keys.chunk_prefix(upload.id))
    upload.terminated_at = datetime.now(UTC)
    session.flush()
