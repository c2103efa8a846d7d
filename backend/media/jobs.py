"""Background work on photos: renditions, perceptual hash, near-duplicates, before/after pairs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.cases import service as cases
from backend.core.db import transaction
from backend.core.runtime import Runtime
from backend.jobs.worker import handler
from backend.media import keys
from backend.media.cleanup import cleanup
from backend.media.evidence import PhotoFacts, before_after_pair
from backend.media.ingest import RENDITIONS_JOB, remove_quietly
from backend.media.inspect import PhotoCorrupt
from backend.media.models import Photo, PhotoRole, PhotoState
from backend.media.renditions import hamming, make_renditions, phash_bands
from backend.media.service import spool
from backend.reports.models import Report
from backend.reports.service import refresh_evidence_flags

CLEANUP_JOB = "media.cleanup"
NEAR_DUPLICATE_BITS = 3


@handler(RENDITIONS_JOB)
def renditions(runtime: Runtime, payload: dict[str, Any]) -> None:
    """Make preview and thumbnail, hash the picture, and update the evidence (idempotent)."""
    photo_id = str(payload["photo_id"])
    with transaction(runtime.read_sessions) as session:
        photo = session.scalar(select(Photo).where(Photo.photo_id == photo_id))
        if photo is None or photo.state != PhotoState.stored.value or photo.renditions_at:
            return
        key, content_type = photo.object_key, photo.detected_type or photo.content_type
    assert key is not None
    store = runtime.object_store
    path, _sha = spool(store.open_stream(key), runtime.settings.photo_max_bytes)
    try:
        made = make_renditions(path, content_type, max_pixels=runtime.settings.photo_max_pixels)
        phash = made.phash  # computed from the decoded preview: no second decode
    except PhotoCorrupt as exc:
        # Structurally complete (checked on upload) but the pixels do not decode: still the
        # bytes the phone declared, so kept — and flagged, not retried.
        _mark_undecodable(runtime, photo_id, exc.detail)
        return
    finally:
        remove_quietly(path)
    # Renditions are derived, not evidence: rewriting them under fixed keys is what makes a
    # retried job harmless.
    store.put(keys.preview(photo_id), made.preview, "image/jpeg")
    store.put(keys.thumbnail(photo_id), made.thumbnail, "image/jpeg")
    with transaction(runtime.sessions) as session:
        photo = session.scalar(select(Photo).where(Photo.photo_id == photo_id).with_for_update())
        assert photo is not None
        photo.preview_key = keys.preview(photo_id)
        photo.thumbnail_key = keys.thumbnail(photo_id)
        photo.renditions_at = datetime.now(UTC)
        photo.phash = _signed64(phash)
        photo.phash_b0, photo.phash_b1, photo.phash_b2, photo.phash_b3 = phash_bands(phash)
        _near_duplicates(session, photo, phash)
        report = session.get(Report, photo.report_id)
        assert report is not None
        cases.lock_case_of(session, report)
        _pair_before_after(session, report)
        refresh_evidence_flags(session, report)
        cases.evidence_changed(session, report)


def _mark_undecodable(runtime: Runtime, photo_id: str, why: str) -> None:
    with transaction(runtime.sessions) as session:
        photo = session.scalar(select(Photo).where(Photo.photo_id == photo_id).with_for_update())
        assert photo is not None
        photo.flags = sorted({*(photo.flags or []), "photo_undecodable"})
        photo.evidence = {**(photo.evidence or {}), "decode_error": why}
        photo.renditions_at = datetime.now(UTC)  # attempted: the job is done
        report = session.get(Report, photo.report_id)
        assert report is not None
        cases.lock_case_of(session, report)
        refresh_evidence_flags(session, report)
        cases.evidence_changed(session, report)


@handler(CLEANUP_JOB)
def cleanup_job(runtime: Runtime, _payload: dict[str, Any]) -> None:
    with transaction(runtime.sessions) as session:
        cleanup(session, runtime)


def _near_duplicates(session: Session, photo: Photo, phash: int) -> None:
    bands = phash_bands(phash)
    candidates = session.scalars(
        select(Photo).where(
            Photo.report_id != photo.report_id,
            Photo.phash.is_not(None),
            or_(
                Photo.phash_b0 == bands[0],
                Photo.phash_b1 == bands[1],
                Photo.phash_b2 == bands[2],
                Photo.phash_b3 == bands[3],
            ),
        )
    ).all()
    close = sorted(
        {
            c.report_id
            for c in candidates
            if c.phash is not None and hamming(_unsigned64(c.phash), phash) <= NEAR_DUPLICATE_BITS
        }
    )
    if close:
        photo.flags = sorted({*(photo.flags or []), "photo_near_duplicate"})
        photo.evidence = {**(photo.evidence or {}), "near_duplicate_reports": close[:20]}


def _pair_before_after(session: Session, report: Report) -> None:
    photos = session.scalars(
        select(Photo).where(Photo.report_id == report.id, Photo.state == PhotoState.stored.value)
    ).all()
    before = [_facts(p) for p in photos if p.role == PhotoRole.before.value]
    after = [p for p in photos if p.role == PhotoRole.after.value]
    if not before or not after:
        return
    pairs = {pair.after_id: pair for pair in before_after_pair(before, [_facts(p) for p in after])}
    for photo in after:
        pair = pairs.get(photo.photo_id)
        if pair is None:
            continue
        kept = [f for f in (photo.flags or []) if not f.startswith("after_photo_")]
        photo.flags = sorted({*kept, *pair.flags})
        photo.evidence = {**(photo.evidence or {}), "pair": pair.as_json()}


def _facts(photo: Photo) -> PhotoFacts:
    return PhotoFacts.from_stored(
        photo_id=photo.photo_id,
        sha256=photo.sha256,
        exif=photo.exif or {},
        phash=None if photo.phash is None else _unsigned64(photo.phash),
    )


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def _unsigned64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
