"""Photo use cases: direct (presigned) upload, reading a photo with short-lived links."""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.accounts import scope
from backend.accounts.models import Role, User
from backend.core.db import transaction
from backend.core.errors import Forbidden
from backend.core.runtime import Runtime
from backend.media import keys
from backend.media.errors import (
    DirectUploadMissing,
    PhotoDeclarationMismatch,
    PhotoNotDeclared,
    PhotoTooBig,
)
from backend.media.ingest import Declared, record_original, remove_quietly, verify_and_publish
from backend.media.models import Photo, PhotoState, PhotoUpload, UploadKind
from backend.reports.models import Report
from backend.storage.base import ObjectNotFound, ObjectStore, PresignedRequest

# How reports declare photo ids (sync: lower-case, hyphenated UUIDs): nothing else can match.
PHOTO_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


def declared(session: Session, photo_id: str, user_id: int) -> tuple[Photo, Report]:
    """The photo and its report, if a report of this user declares it (else 404, no leak)."""
    if not PHOTO_ID.fullmatch(photo_id):  # e.g. a tus Upload-Metadata value with a NUL in it
        raise PhotoNotDeclared(f"no report of yours declares photo {photo_id[:40]!r}")
    row = session.execute(
        select(Photo, Report)
        .join(Report, Report.id == Photo.report_id)
        .where(Photo.photo_id == photo_id, Report.reporter_id == user_id)
    ).first()
    if row is None:
        raise PhotoNotDeclared(f"no report of yours declares photo {photo_id}")
    return row[0], row[1]


def check_declaration(
    photo: Photo, sha256: str, size: int, content_type: str, max_bytes: int
) -> None:
    if size > max_bytes:
        raise PhotoTooBig(f"photos are limited to {max_bytes} bytes")
    if (sha256.lower(), size, content_type) != (photo.sha256, photo.size, photo.content_type):
        raise PhotoDeclarationMismatch(
            "sha256, size and content_type must be those the report declared",
            declared={
                "sha256": photo.sha256,
                "size": photo.size,
                "content_type": photo.content_type,
            },
        )


@dataclass(frozen=True)
class DirectTarget:
    photo: Photo
    request: PresignedRequest | None  # None: already stored, nothing to upload


def direct_target(
    session: Session,
    runtime: Runtime,
    user: User,
    device_id: str | None,
    photo_id: str,
    sha256: str,
    size: int,
    content_type: str,
    base_url: str,
) -> DirectTarget:
    """A short-lived URL to PUT the original to (signed here: the phone's clock is irrelevant)."""
    photo, _report = declared(session, photo_id, user.id)
    check_declaration(photo, sha256, size, content_type, runtime.settings.photo_max_bytes)
    if photo.state == PhotoState.stored.value:
        return DirectTarget(photo, None)
    seconds = runtime.settings.media_url_seconds
    request = runtime.object_store.presign_put(
        keys.staging(photo_id),
        content_type=content_type,
        size=size,
        sha256_hex=photo.sha256,
        expires_s=seconds,
        overwrite=True,  # staging, not evidence: a retried upload may replace it
    )
    request = replace(request, url=absolute(request.url, base_url))
    _track_staging(session, runtime, photo, user.id, device_id)
    return DirectTarget(photo, request)


def _track_staging(
    session: Session, runtime: Runtime, photo: Photo, user_id: int, device_id: str | None
) -> None:
    """Remember the staging object so the cleanup job removes it if never completed."""
    expires = datetime.now(UTC) + timedelta(hours=runtime.settings.upload_expiry_hours)
    existing = session.scalar(
        select(PhotoUpload).where(
            PhotoUpload.photo_id == photo.photo_id,
            PhotoUpload.kind == UploadKind.direct.value,
            PhotoUpload.completed_at.is_(None),
            PhotoUpload.terminated_at.is_(None),
        )
    )
    if existing is not None:
        existing.expires_at = expires
        return
    session.add(
        PhotoUpload(
            id=str(uuid.uuid4()),
            kind=UploadKind.direct.value,
            photo_id=photo.photo_id,
            user_id=user_id,
            device_id=device_id,
            length=photo.size,
            offset=0,
            chunks=0,
            expires_at=expires,
        )
    )
    session.flush()


def direct_complete(runtime: Runtime, user: User, photo_id: str, base_url: str) -> PhotoView:
    """Verify what was PUT to the target (reading it back) and keep it as the original;
    returns the stored photo as the caller may see it.

    Unlike the other use cases this one opens its own transactions (see ingest): reading
    back and checking a 20 MB photo must not hold the database in the meantime.
    """
    with transaction(runtime.lookup_sessions) as session:  # one statement, no BEGIN/COMMIT
        photo, _report = declared(session, photo_id, user.id)
        if photo.state == PhotoState.stored.value:
            return view(session, runtime, user, photo_id, base_url)
        facts = Declared.of(photo)
    store = runtime.object_store
    staging = keys.staging(photo_id)
    try:
        path, sha256 = spool(
            store.open_stream(staging), runtime.settings.photo_max_bytes, store.scratch_dir()
        )
    except ObjectNotFound:
        raise DirectUploadMissing(
            f"nothing was uploaded for photo {photo_id}; PUT it to the target first"
        ) from None
    try:
        info = verify_and_publish(runtime, facts, path, sha256)
    except Exception:
        store.delete(staging)  # wrong bytes never linger; the phone asks for a new target
        raise
    finally:
        remove_quietly(path)
    with transaction(runtime.sessions) as session:
        photo = record_original(session, runtime, photo_id, info, via="direct")
        _close_uploads(session, photo_id)
        report = session.get(Report, photo.report_id)  # loaded with the photo: no query
        assert report is not None
        stored = _view_of(session, runtime, user, photo, report, base_url)
    store.delete(staging)
    return stored


def _close_uploads(session: Session, photo_id: str) -> None:
    session.execute(
        update(PhotoUpload)
        .where(PhotoUpload.photo_id == photo_id, PhotoUpload.completed_at.is_(None))
        .values(completed_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


def spool(
    blocks: Iterable[bytes], max_bytes: int, directory: Path | None = None
) -> tuple[Path, str]:
    """Copy a stream of blocks to a temporary file, hashing as it goes; bounded by max_bytes.

    ``directory``: the store's scratch directory, so the file can become the original
    without another copy (ObjectStore.put_file).
    """
    digest = hashlib.sha256()
    total = 0
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        prefix=".tmp~photo-", dir=directory, delete=False
    )
    path = Path(handle.name)
    try:
        with handle:
            for block in blocks:
                total += len(block)
                if total > max_bytes:
                    raise PhotoTooBig(f"photos are limited to {max_bytes} bytes")
                digest.update(block)
                handle.write(block)
    except BaseException:
        remove_quietly(path)
        raise
    return path, digest.hexdigest()


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoView:
    photo: Photo
    links: dict[str, str]
    links_expire_at: datetime


def absolute(url: str, base_url: str) -> str:
    """The local store signs paths on our own API; phones need them as full URLs."""
    return base_url.rstrip("/") + url if url.startswith("/") else url


def view(
    session: Session, runtime: Runtime, user: User, photo_id: str, base_url: str = ""
) -> PhotoView:
    """A photo's metadata and evidence, with links that expire within 15 minutes."""
    row = session.execute(
        select(Photo, Report)
        .join(Report, Report.id == Photo.report_id)
        .where(Photo.photo_id == photo_id)
    ).first()
    if row is None:
        raise PhotoNotDeclared(f"photo {photo_id} does not exist")
    return _view_of(session, runtime, user, row[0], row[1], base_url)


def _view_of(
    session: Session, runtime: Runtime, user: User, photo: Photo, report: Report, base_url: str
) -> PhotoView:
    if not may_see(session, runtime, user, report):
        raise Forbidden("this photo belongs to a report outside your area")
    seconds = runtime.settings.media_url_seconds
    return PhotoView(
        photo,
        links(runtime, photo, seconds, base_url),
        datetime.now(UTC) + timedelta(seconds=seconds),
    )


def may_see(session: Session, runtime: Runtime, user: User, report: Report) -> bool:
    if report.reporter_id == user.id or scope.covers(user, report.grid_code):
        return True
    if report.case_id is not None:
        # A case's evidence is also for its department and whoever holds its tasks.
        from backend.cases import service as cases

        case = cases.get(session, report.case_id)
        if cases.may_see(session, user, case):
            return True
    if Role(user.role) is not Role.inspector or report.grid_code is None:
        return False
    from backend.sync.scope import current_scope

    assigned = current_scope(session, user.id, user.username, runtime.settings.today())
    return report.grid_code in assigned.grid_codes


def links(runtime: Runtime, photo: Photo, seconds: int, base_url: str) -> dict[str, str]:
    """A photo's original/preview/thumbnail links, as full URLs, valid for ``seconds``."""
    return {
        name: absolute(url, base_url)
        for name, url in _links(runtime.object_store, photo, seconds).items()
    }


def _links(store: ObjectStore, photo: Photo, seconds: int) -> dict[str, str]:
    links: dict[str, Any] = {}
    if photo.object_key:
        links["original"] = store.presign_get(
            photo.object_key, expires_s=seconds, filename=f"{photo.photo_id}{_suffix(photo)}"
        )
    if photo.preview_key:
        links["preview"] = store.presign_get(photo.preview_key, expires_s=seconds)
    if photo.thumbnail_key:
        links["thumbnail"] = store.presign_get(photo.thumbnail_key, expires_s=seconds)
    return links


def _suffix(photo: Photo) -> str:
    return {
        "image/jpeg": ".jpg",
        "image/heic": ".heic",
        "image/heif": ".heif",
        "image/png": ".png",
        "image/webp": ".webp",
    }.get(photo.detected_type or photo.content_type, "")
