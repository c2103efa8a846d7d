"""Where each kind of object lives in the store (one place, so no key is built twice)."""

from __future__ import annotations


def original(photo_id: str) -> str:
    return f"photos/{photo_id}/original"


def preview(photo_id: str) -> str:
    return f"photos/{photo_id}/preview.jpg"


def thumbnail(photo_id: str) -> str:
    return f"photos/{photo_id}/thumbnail.jpg"


def staging(photo_id: str) -> str:
    """A presigned upload lands here, and becomes the original only once verified."""
    return f"staging/{photo_id}/upload"


def chunk_prefix(upload_id: str) -> str:
    return f"uploads/{upload_id}/"


def chunk(upload_id: str, offset: int, nonce: str) -> str:
    # Zero-padded offset for humans listing a bucket; the nonce keeps a chunk whose PATCH
    # lost a race or crashed from blocking the retry (the upload row lists the real ones).
    return f"{chunk_prefix(upload_id)}{offset:012d}-{nonce}"
