"""Accepting an original: verify it against its declaration, read it, keep it, queue the rest.

Both upload paths end here with the bytes in a local temporary file and their SHA-256
computed while they arrived. Nothing is stored unless the bytes are exactly what the report
declared and are a complete image of an accepted type; once stored, an original is never
replaced.

Two steps, so the slow one holds no database lock or connection: :func:`verify_and_publish`
(hash, structure, metadata, the no-overwrite write to the store) runs outside any
transaction; :func:`record_original` then records it in a short one. A crash between the two
leaves a published original that the next attempt finds byte-identical and records.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.cases import service as cases
from backend.core.runtime import Runtime
from backend.jobs import queue
from backend.media import keys
from backend.media.errors import PhotoHashMismatch
from backend.media.evidence import location_check, time_check
from backend.media.inspect import PhotoInfo, inspect_photo
from backend.media.models import Photo, PhotoState
from backend.reports.models import Report
from backend.reports.service import refresh_evidence_flags
from backend.storage.base import ObjectExists

RENDITIONS_JOB = "photo.renditions"


@dataclass(frozen=True)
class Declared:
    """What a report said about a photo: the reference its bytes are checked against."""

    photo_id: str
    sha256: str
    size: int

    @classmethod
    def of(cls, photo: Photo) -> Declared:
        return cls(photo.photo_id, photo.sha256, photo.size)


def verify_and_publish(runtime: Runtime, declared: Declared, path: Path, sha256: str) -> PhotoInfo:
    """Check ``path`` against the declaration and keep it as the original (no database work).

    Raises the 4xx of what is wrong; nothing is stored then. Publishing the same bytes twice
    is harmless (a racing or retried upload), other bytes never replace an original.
    """
    size = path.stat().st_size
    if sha256 != declared.sha256 or size != declared.size:
        raise PhotoHashMismatch(
            f"received {size} bytes with SHA-256 {sha256}; the report declared "
            f"{declared.size} bytes with {declared.sha256}",
            declared_sha256=declared.sha256,
            received_sha256=sha256,
        )
    info = inspect_photo(path, max_pixels=runtime.settings.photo_max_pixels)
    _publish(runtime, declared.photo_id, path, info.content_type, sha256)
    return info


def record_original(
    session: Session, runtime: Runtime, photo_id: str, info: PhotoInfo, via: str
) -> Photo:
    """Mark a published original stored, with its metadata and evidence, and queue its
    renditions — in the caller's transaction, so the job exists exactly if the photo does."""
    row = session.execute(
        select(Photo, Report)
        .join(Report, Report.id == Photo.report_id)
        .where(Photo.photo_id == photo_id)
        .with_for_update(of=Photo)
        .execution_options(populate_existing=True)
    ).first()
    assert row is not None  # declared photos are never deleted without their report
    photo, report = row[0], row[1]
    if photo.state == PhotoState.stored.value:
        return photo  # a concurrent upload of the same (verified) bytes recorded it first
    case = cases.lock_case_of(session, report)
    photo.state = PhotoState.stored.value
    photo.object_key = keys.original(photo.photo_id)
    photo.stored_at = datetime.now(UTC)
    photo.uploaded_via = via
    photo.detected_type = info.content_type
    photo.width, photo.height = info.width, info.height
    photo.exif = info.exif.as_json()
    photo.flags, photo.evidence, photo.distance_m = _evidence(session, runtime, photo, report, info)
    session.flush()
    refresh_evidence_flags(session, report, photos_changed=True)
    cases.evidence_changed(session, report, locked=case)
    queue.enqueue(session, RENDITIONS_JOB, {"photo_id": photo.photo_id})
    return photo


def _publish(runtime: Runtime, photo_id: str, path: Path, content_type: str, sha256: str) -> None:
    store = runtime.object_store
    key = keys.original(photo_id)
    try:
        store.put_file(key, path, content_type)
    except ObjectExists:
        # A previous attempt stored it but its transaction did not commit: the same bytes are
        # fine; anything else would be a second, different original, which must never happen.
        digest = hashlib.sha256()
        for block in store.open_stream(key):
            digest.update(block)
        if digest.hexdigest() != sha256:
            raise PhotoHashMismatch(
                "a different original is already stored for this photo"
            ) from None


def _evidence(
    session: Session, runtime: Runtime, photo: Photo, report: Report, info: PhotoInfo
) -> tuple[list[str], dict[str, Any], float | None]:
    settings = runtime.settings
    located = location_check(
        info.exif, report.geom.x, report.geom.y, threshold_m=settings.evidence_distance_m
    )
    timed = time_check(
        info.exif,
        report.captured_at,
        report.received_at,
        max_skew=timedelta(hours=settings.evidence_time_hours),
    )
    flags = [*located.flags, *timed.flags]
    reused = session.scalars(
        select(Photo.report_id).where(
            Photo.sha256 == photo.sha256,
            Photo.report_id != photo.report_id,
            Photo.state == PhotoState.stored.value,
        )
    ).all()
    if reused:
        flags.append("photo_reused")
    evidence: dict[str, Any] = {
        "distance_m": located.distance_m,
        "photo_time": timed.photo_time.isoformat() if timed.photo_time else None,
        "reused_in_reports": sorted(set(reused))[:20],
    }
    return sorted(set(flags)), evidence, located.distance_m


def spooled_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
