"""tus 1.0 resumable uploads (core, creation, checksum, expiration, termination).

Each PATCH's body is spooled before anything else happens, then written to the store as one
object under the upload's prefix (with a random part in its key); a short transaction then
moves the offset and records the object — only if the upload is still at the offset the
PATCH was for, so two racing PATCHes never both count. No database lock or connection is
held while bytes arrive or are written: on SQLite one slow phone would stop every other
writer, on PostgreSQL it would hold a pooled connection.

The PATCH that brings the last byte is not stored as a chunk: the stored chunks, read back in
order, and then its body go straight into a temporary file (hashed on the way), which is
verified against the photo's declaration and published as the original outside any
transaction; a last short transaction records it (ingest.record_original).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.accounts.models import User
from backend.core.db import transaction
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
from backend.media.ingest import Declared, record_original, remove_quietly, verify_and_publish
from backend.media.models import PhotoState, PhotoUpload, UploadKind
from backend.media.service import declared, spool
from backend.storage.base import read_exactly

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
    # terminated (and that is committed), then this error is answered.
    refused: XunchaError | None = None


@dataclass(frozen=True)
class PatchPlan:
    """What a PATCH may do, read (with the caller's authentication) before its body is."""

    upload: PhotoUpload
    facts: Declared | None  # the declaration, when this PATCH brings the last byte


def plan_patch(
    session: Session, user: User, upload_id: str, offset: int, length: int | None
) -> PatchPlan:
    """Refuse a PATCH that cannot apply before its body is read; ``length``: Content-Length."""
    upload = get(session, user, upload_id)
    if offset != upload.offset:
        raise UploadOffsetMismatch(
            f"Upload-Offset is {offset} but the upload is at {upload.offset}",
            headers={"Upload-Offset": str(upload.offset)},
        )
    if length is not None and offset + length > upload.length:
        raise InvalidInput(f"the chunk runs past Upload-Length {upload.length}")
    completes = bool(length) and offset + (length or 0) == upload.length
    facts = Declared.of(declared(session, upload.photo_id, user.id)[0]) if completes else None
    return PatchPlan(upload, facts)


def patch(
    runtime: Runtime,
    user: User,
    plan: PatchPlan,
    offset: int,
    body: SpooledBody,
    checksum: Checksum | None,
) -> Patched:
    """Append one chunk at ``offset``; the last one completes the photo.

    Opens its own short transactions around the store writes (see the module docstring).
    """
    upload = plan.upload
    _check_chunk(upload, offset, body, checksum)
    if body.length == 0:
        return Patched(upload)  # nothing to add (a probe, or an already complete upload)
    if offset + body.length < upload.length:
        return Patched(_append(runtime, user, upload, offset, body))
    facts = plan.facts
    if facts is None:  # no Content-Length (chunked transfer): read the declaration now
        with transaction(runtime.read_sessions) as session:
            facts = Declared.of(declared(session, upload.photo_id, user.id)[0])
    return _complete(runtime, user, upload, offset, body, facts)


def _check_chunk(
    upload: PhotoUpload, offset: int, body: SpooledBody, checksum: Checksum | None
) -> None:
    if offset != upload.offset:
        raise UploadOffsetMismatch(
            f"Upload-Offset is {offset} but the upload is at {upload.offset}",
            headers={"Upload-Offset": str(upload.offset)},
        )
    if upload.offset + body.length > upload.length:
        raise InvalidInput(f"the chunk runs past Upload-Length {upload.length}")
    if checksum is not None and body.digests.get(checksum.algorithm) != checksum.digest:
        raise UploadChecksumMismatch("the chunk does not match its Upload-Checksum")


def _advance(session: Session, user: User, upload_id: str, offset: int) -> PhotoUpload:
    """The upload, locked, if it is still at ``offset`` (a racing PATCH may have moved it)."""
    upload = get(session, user, upload_id, lock=True)
    if upload.offset != offset:
        raise UploadOffsetMismatch(
            f"another request moved the upload to {upload.offset}",
            headers={"Upload-Offset": str(upload.offset)},
        )
    return upload


def _append(
    runtime: Runtime, user: User, upload: PhotoUpload, offset: int, body: SpooledBody
) -> PhotoUpload:
    key = keys.chunk(upload.id, offset, secrets.token_hex(4))
    store = runtime.object_store
    store.put_stream(key, body.file, body.length, "application/octet-stream")
    try:
        with transaction(runtime.sessions) as session:
            row = _advance(session, user, upload.id, offset)
            row.offset = offset + body.length
            row.chunks += 1
            row.parts = [*row.parts, key]
    except BaseException:
        store.delete(key)  # lost the race or failed: this chunk never counted
        raise
    return row


def _complete(
    runtime: Runtime,
    user: User,
    upload: PhotoUpload,
    offset: int,
    last: SpooledBody,
    facts: Declared,
) -> Patched:
    """Verify the stored chunks followed by ``last`` (the completing PATCH's body, which is
    never stored as a chunk: it goes straight into the check) and keep them as the photo."""
    store = runtime.object_store

    def blocks() -> Iterator[bytes]:
        for key in upload.parts:
            yield from store.open_stream(key)
        yield from read_exactly(last.file, last.length)

    path, sha256 = spool(blocks(), runtime.settings.photo_max_bytes, store.scratch_dir())
    try:
        info = verify_and_publish(runtime, facts, path, sha256)
    except XunchaError as refused:
        # Wrong or unusable bytes: nothing of the photo is kept and this upload is over (a
        # fresh one starts from zero).
        with transaction(runtime.sessions) as session:
            row = _advance(session, user, upload.id, offset)
            row.terminated_at = datetime.now(UTC)
        store.delete_prefix(keys.chunk_prefix(upload.id))
        return Patched(row, refused)
    finally:
        remove_quietly(path)
    with transaction(runtime.sessions) as session:
        row = _advance(session, user, upload.id, offset)
        row.offset = row.length
        row.chunks += 1
        row.completed_at = datetime.now(UTC)
        record_original(session, runtime, upload.photo_id, info, via="tus")
    store.delete_prefix(keys.chunk_prefix(upload.id))
    return Patched(row)


def terminate(runtime: Runtime, user: User, upload_id: str) -> None:
    with transaction(runtime.sessions) as session:
        upload = get(session, user, upload_id, lock=True)
        upload.terminated_at = datetime.now(UTC)
    runtime.object_store.delete_prefix(keys.chunk_prefix(upload.id))
