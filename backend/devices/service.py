"""Device enrollment, device tokens and revocation."""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.orm import Session

from backend.accounts import repository as accounts
from backend.accounts.errors import UserInactive
from backend.accounts.models import User
from backend.accounts.security import TokenClaims, issue_token, new_secret, secret_digest
from backend.accounts.service import RE_ENROLL, get_user, live_user
from backend.audit import service as audit
from backend.core.settings import Settings
from backend.core.types import utcnow
from backend.devices import repository
from backend.devices.errors import (
    DeviceCredentialsInvalid,
    DeviceNotFound,
    DeviceRevoked,
    EnrollmentCodeInvalid,
)
from backend.devices.models import Device, EnrollmentCode

# No 0/O, 1/I/L: codes are read off paper and typed on phones.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_GROUPS, CODE_GROUP_LEN = 3, 4


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime
    qr_payload: str


@dataclass(frozen=True)
class Enrollment:
    device: Device
    device_secret: str
    access_token: str
    expires_in: int
    user: User


def _normalise_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def create_enrollment_code(
    session: Session, settings: Settings, user_id: int, actor: str, base_url: str
) -> IssuedCode:
    """A single-use code (60 bits) that lets one phone enroll as ``user_id``."""
    get_user(session, user_id)
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUPS * CODE_GROUP_LEN))
    code = "-".join(raw[i : i + CODE_GROUP_LEN] for i in range(0, len(raw), CODE_GROUP_LEN))
    expires_at = utcnow() + timedelta(minutes=settings.enrollment_code_minutes)
    repository.add(
        session,
        EnrollmentCode(
            code_hash=secret_digest(raw),
            user_id=user_id,
            created_by=actor,
            expires_at=expires_at,
        ),
    )
    server = settings.public_base_url or base_url
    payload = f"xuncha:enroll?v=1&server={quote(server.rstrip('/'), safe='')}&code={code}"
    audit.record(session, actor, "enrollment_code.create", "user", user_id)
    return IssuedCode(code, expires_at, payload)


def enroll(
    session: Session,
    settings: Settings,
    code: str,
    device_name: str,
    platform: str,
    app_version: str,
) -> Enrollment:
    """Exchange an enrollment code for device credentials (once)."""
    code_hash = secret_digest(_normalise_code(code))
    now = utcnow()
    owner = repository.code_owner(session, code_hash)
    user = accounts.get(session, owner) if owner is not None else None
    if user is None or not user.is_active:
        raise EnrollmentCodeInvalid("the enrollment code is unknown, used or expired")
    secret = new_secret("xds1")
    device = Device(
        id=str(uuid.uuid4()),
        user_id=user.id,
        name=device_name,
        platform=platform,
        app_version=app_version,
        secret_hash=secret_digest(secret),
        last_seen_at=now,
    )
    repository.add(session, device)
    if repository.claim_code(session, code_hash, device.id, now) != user.id:
        # Used or expired meanwhile: raising rolls the device row back with the request.
        raise EnrollmentCodeInvalid("the enrollment code is unknown, used or expired")
    ttl = settings.device_token_minutes * 60
    token = issue_token(
        settings.secret_key.get_secret_value(), user.id, user.token_version, ttl, device.id
    )
    audit.record(
        session, user.username, "device.enroll", "device", device.id, name=device_name,
        platform=platform, app_version=app_version,
    )  # fmt: skip
    return Enrollment(device, secret, token, ttl, user)


def device_token(
    session: Session, settings: Settings, device_id: str, device_secret: str
) -> tuple[str, int]:
    """A fresh short-lived access token for an enrolled, unrevoked device."""
    device = repository.get(session, device_id) if _is_uuid(device_id) else None
    if device is None or not hmac.compare_digest(
        device.secret_hash.encode(), secret_digest(device_secret).encode()
    ):
        raise DeviceCredentialsInvalid("unknown device or wrong device secret")
    user = accounts.get(session, device.user_id)
    assert user is not None  # foreign key
    active_device(session, device.id, user.id)
    if not user.is_active:
        raise UserInactive("this account is deactivated", directives=[RE_ENROLL])
    device.last_seen_at = utcnow()
    ttl = settings.device_token_minutes * 60
    token = issue_token(
        settings.secret_key.get_secret_value(), user.id, user.token_version, ttl, device.id
    )
    return token, ttl


def active_device(session: Session, device_id: str, user_id: int) -> Device:
    device = repository.get(session, device_id) if _is_uuid(device_id) else None
    return usable_device(device, user_id)


def usable_device(device: Device | None, user_id: int) -> Device:
    """``device`` as loaded for a token of ``user_id``, refused if unknown or revoked."""
    if device is None or device.user_id != user_id:
        raise DeviceCredentialsInvalid("the token names an unknown device")
    if device.revoked_at is not None:
        raise DeviceRevoked("this device has been revoked", directives=[RE_ENROLL])
    return device


def user_and_device(session: Session, claims: TokenClaims) -> tuple[User, Device]:
    """A device token's user and device, read in one query and checked as the two alone are."""
    assert claims.device_id is not None
    user, device = repository.user_and_device(
        session, claims.user_id, claims.device_id if _is_uuid(claims.device_id) else None
    )
    user = live_user(user, claims)
    return user, usable_device(device, user.id)


def revoke(session: Session, device_id: str, actor: str) -> Device:
    device = repository.get(session, device_id) if _is_uuid(device_id) else None
    if device is None:
        raise DeviceNotFound(f"device {device_id} does not exist")
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        device.revoked_by = actor
        session.flush()
        audit.record(session, actor, "device.revoke", "device", device.id)
    return device


def list_devices(session: Session, user_id: int | None) -> list[Device]:
    return list(repository.list_devices(session, user_id))


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
