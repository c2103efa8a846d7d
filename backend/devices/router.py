"""Enrollment codes, device enrollment, device tokens, device administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from backend.accounts import throttle
from backend.accounts.deps import AdminUser
from backend.core.deps import RuntimeDep, SessionDep, SettingsDep
from backend.core.params import DB_ID_MAX, IdPath
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.core.types import utcnow
from backend.devices import service
from backend.devices.errors import DeviceCredentialsInvalid, EnrollmentCodeInvalid
from backend.devices.schemas import (
    DeviceList,
    DeviceOut,
    DeviceTokenIn,
    DeviceTokenOut,
    EnrolledUser,
    EnrollIn,
    EnrollmentCodeOut,
    EnrollOut,
)

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1", tags=["devices"], responses=PROBLEM_RESPONSES
)
DeviceIdPath = Annotated[str, Path(min_length=1, max_length=36)]


@router.post(
    "/users/{user_id}/enrollment-codes", operation_id="createEnrollmentCode", status_code=201
)
def create_enrollment_code(
    user_id: IdPath, request: Request, session: SessionDep, settings: SettingsDep, admin: AdminUser
) -> EnrollmentCodeOut:
    """A one-time, expiring code (and QR payload) that enrolls one phone for this user."""
    issued = service.create_enrollment_code(
        session, settings, user_id, admin.username, str(request.base_url)
    )
    return EnrollmentCodeOut(
        code=issued.code, expires_at=issued.expires_at, qr_payload=issued.qr_payload
    )


@router.post(
    "/devices/enroll",
    operation_id="enrollDevice",
    status_code=201,
    responses=throttle.TOO_MANY_ATTEMPTS_RESPONSE,
)
def enroll(body: EnrollIn, request: Request, runtime: RuntimeDep) -> EnrollOut:
    """Exchange an enrollment code for device credentials (the secret is shown once).

    Wrong codes are limited per client address (429 `too_many_attempts`)."""
    settings = runtime.settings
    done = throttle.guarded(
        runtime,
        throttle.enroll_limits(settings, _client(request)),
        lambda session: service.enroll(
            session, settings, body.code, body.device_name, body.platform, body.app_version
        ),
        failures=(EnrollmentCodeInvalid,),
    )
    return EnrollOut(
        device_id=done.device.id,
        device_secret=done.device_secret,
        access_token=done.access_token,
        expires_in=done.expires_in,
        user=EnrolledUser.model_validate(done.user),
        server_time=utcnow(),
    )


@router.post(
    "/devices/token", operation_id="deviceToken", responses=throttle.TOO_MANY_ATTEMPTS_RESPONSE
)
def device_token(body: DeviceTokenIn, request: Request, runtime: RuntimeDep) -> DeviceTokenOut:
    """A fresh short-lived access token for an enrolled device.

    Wrong device credentials are limited per client address (429 `too_many_attempts`);
    a revoked device or deactivated account is told so and not counted."""
    settings = runtime.settings
    token, ttl = throttle.guarded(
        runtime,
        throttle.device_token_limits(settings, _client(request)),
        lambda session: service.device_token(session, settings, body.device_id, body.device_secret),
        failures=(DeviceCredentialsInvalid,),
    )
    return DeviceTokenOut(access_token=token, expires_in=ttl, server_time=utcnow())


def _client(request: Request) -> str:
    return throttle.client_address(request.client.host if request.client else None)


@router.get("/devices", operation_id="listDevices")
def list_devices(
    session: SessionDep,
    _admin: AdminUser,
    user_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
) -> DeviceList:
    """Enrolled devices, oldest first."""
    return DeviceList(
        items=[DeviceOut.model_validate(d) for d in service.list_devices(session, user_id)]
    )


@router.post("/devices/{device_id}/revoke", operation_id="revokeDevice")
def revoke(device_id: DeviceIdPath, session: SessionDep, admin: AdminUser) -> DeviceOut:
    """Revoke a device: its next request fails with device_revoked (lost or stolen phone)."""
    return DeviceOut.model_validate(service.revoke(session, device_id, admin.username))
