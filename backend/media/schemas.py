"""Bodies of the photo API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt

from backend.core.schemas import InputModel

ContentType = Literal["image/jpeg", "image/heic", "image/heif", "image/png", "image/webp"]


class UploadTargetIn(InputModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex, as declared")
    size: StrictInt = Field(ge=1, le=200 * 1024 * 1024)
    content_type: ContentType


class UploadTargetOut(BaseModel):
    photo_id: str
    state: Literal["declared", "stored"]
    method: Literal["PUT"] | None = None
    url: str | None = Field(default=None, description="PUT the bytes here, with `headers`")
    headers: dict[str, str] = Field(default_factory=dict)
    expires_at: datetime | None = None


class PhotoOut(BaseModel):
    photo_id: str
    report_id: str
    role: str
    state: str
    sha256: str
    size: int
    content_type: str
    detected_type: str | None
    width: int | None
    height: int | None
    stored_at: datetime | None
    uploaded_via: str | None
    exif: dict[str, Any] | None
    flags: list[str]
    evidence: dict[str, Any] | None
    renditions_ready: bool
    links: dict[str, str] = Field(description="original / preview / thumbnail; short-lived")
    links_expire_at: datetime
