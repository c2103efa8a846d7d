"""Bodies of the device enrollment API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from backend.accounts.models import Role
from backend.core.schemas import InputModel, NonBlankText

SEMVER_PATTERN = r"^\d+(\.\d+){0,2}([-+][\w.+-]*)?$"


class EnrollmentCodeOut(BaseModel):
    code: str = Field(examples=["K7QF-2MXD-9RTB"])
    expires_at: datetime
    qr_payload: str = Field(description="Print as a QR code; the app scans it to enroll")


class EnrollIn(InputModel):
    code: str = Field(min_length=4, max_length=40)
    device_name: NonBlankText = Field(min_length=1, max_length=100)
    platform: Literal["android", "ios", "other"]
    app_version: str = Field(
        min_length=1, max_length=40, pattern=r"^\d+(\.\d+){0,2}([-+][\w.+-]*)?$"
    )
    protocol_version: StrictInt = Field(default=1, ge=1, le=1000)


class EnrolledUser(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role


class EnrollOut(BaseModel):
    device_id: str
    device_secret: str = Field(description="Shown once; keep it in the platform keystore")
    access_token: str
    expires_in: int
    user: EnrolledUser
    server_time: datetime


class DeviceTokenIn(InputModel):
    device_id: str = Field(min_length=1, max_length=36)
    device_secret: str = Field(min_length=1, max_length=200)


class DeviceTokenOut(BaseModel):
    access_token: str
    expires_in: int
    server_time: datetime


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: int
    name: str
    platform: str
    app_version: str
    last_mutation_id: int
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


class DeviceList(BaseModel):
    items: list[DeviceOut]
