"""Removing what abandoned uploads leave behind (chunk objects, staging objects, stale
multipart uploads), and finished jobs after a week."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.runtime import Runtime
from backend.jobs import queue
from backend.media import keys
from backend.media.models import PhotoUpload, UploadKind

KEEP_DONE_JOBS = timedelta(days=7)


@dataclass(frozen=True)
class CleanupReport:
    expired_uploads: int
    stale_store_items: int
    forgotten_jobs: int = 0


def cleanup(session: Session, runtime: Runtime, now: datetime | None = None) -> CleanupReport:
    now = now or datetime.now(UTC)
    store = runtime.object_store
    expired = session.scalars(
        select(PhotoUpload)
        .where(
            PhotoUpload.completed_at.is_(None),
            PhotoUpload.terminated_at.is_(None),
            PhotoUpload.expires_at < now,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for upload in expired:
        if upload.kind == UploadKind.tus.value:
            store.delete_prefix(keys.chunk_prefix(upload.id))
        else:
            store.delete(keys.staging(upload.photo_id))
        upload.terminated_at = now
    session.flush()
    stale = store.cleanup_stale(timedelta(hours=runtime.settings.upload_expiry_hours))
    forgotten = queue.forget_done(session, now - KEEP_DONE_JOBS)
    return CleanupReport(len(expired), stale, forgotten)
