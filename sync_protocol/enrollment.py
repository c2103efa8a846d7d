"""Messages of section 2: enrolling a device and refreshing its access token.

Kept apart from the push/pull messages because they are exchanged once per install (enroll)
or every 15 minutes (token) and carry secrets, which ``__repr__`` must never print: logs of
the reference client and of the server may include these objects.

Requests (``EnrollRequest``, ``TokenRequest``) refuse unknown members; responses
(``EnrollResponse`` with its ``EnrolledUser``, ``TokenResponse``) ignore them, as every answer of
the server does (docs/sync-protocol.md section 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from sync_protocol._decode import Fields
from sync_protocol.errors import InvalidMessage
from sync_protocol.versions import check_protocol, parse_semver

MAX_SECRET_LENGTH = 512


@dataclass(frozen=True)
class EnrollRequest:
    """``POST /api/v1/devices/enroll`` with a single-use code from an administrator."""

    code: str = field(repr=False)
    device_name: str
    platform: str
    app_version: str
    protocol_version: int

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = Fields(obj, "", InvalidMessage)
        version = f.integer("protocol_version", lo=0, hi=2**31 - 1)
        check_protocol(version)
        app_version = f.text("app_version", min_len=1, max_len=64)
        parse_semver(app_version)
        request = cls(
            code=f.text("code", min_len=1, max_len=64, strip=True),
            device_name=f.text("device_name", min_len=1, max_len=100, strip=True),
            platform=f.text("platform", min_len=1, max_len=20),
            app_version=app_version,
            protocol_version=version,
        )
        f.finish()
        return request

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "device_name": self.device_name,
            "platform": self.platform,
            "app_version": self.app_version,
            "protocol_version": self.protocol_version,
        }


@dataclass(frozen=True)
class EnrolledUser:
    id: int
    username: str
    display_name: str
    role: str

    @classmethod
    def from_json(cls, obj: object, path: str) -> Self:
        f = Fields(obj, path, InvalidMessage, unknown="ignore")  # server -> phone
        user = cls(
            id=f.integer("id", lo=1),
            username=f.text("username", min_len=1, max_len=64),
            display_name=f.text("display_name", max_len=100),
            role=f.text("role", min_len=1, max_len=40),
        )
        f.finish()
        return user

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
        }


@dataclass(frozen=True)
class EnrollResponse:
    """``201``: the device's credentials. The secret is shown once; store it in the keystore."""

    device_id: str
    device_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    expires_in: int
    user: EnrolledUser
    server_time: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = Fields(obj, "", InvalidMessage, unknown="ignore")  # server -> phone
        response = cls(
            device_id=f.uuid("device_id"),
            device_secret=f.text("device_secret", min_len=1, max_len=MAX_SECRET_LENGTH),
            access_token=f.text("access_token", min_len=1, max_len=MAX_SECRET_LENGTH),
            expires_in=f.integer("expires_in", lo=1, hi=86_400 * 30),
            user=EnrolledUser.from_json(f.raw("user"), "user"),
            server_time=f.time("server_time"),
        )
        f.finish()
        return response

    def to_json(self) -> dict[str, object]:
        return {
            "device_id": self.device_id,
            "device_secret": self.device_secret,
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "user": self.user.to_json(),
            "server_time": self.server_time,
        }


@dataclass(frozen=True)
class TokenRequest:
    """``POST /api/v1/devices/token``: a fresh access token for the device's secret."""

    device_id: str
    device_secret: str = field(repr=False)

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = Fields(obj, "", InvalidMessage)
        request = cls(
            device_id=f.uuid("device_id"),
            device_secret=f.text("device_secret", min_len=1, max_len=MAX_SECRET_LENGTH),
        )
        f.finish()
        return request

    def to_json(self) -> dict[str, object]:
        return {"device_id": self.device_id, "device_secret": self.device_secret}


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    expires_in: int
    server_time: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = Fields(obj, "", InvalidMessage, unknown="ignore")  # server -> phone
        response = cls(
            access_token=f.text("access_token", min_len=1, max_len=MAX_SECRET_LENGTH),
            expires_in=f.integer("expires_in", lo=1, hi=86_400 * 30),
            server_time=f.time("server_time"),
        )
        f.finish()
        return response

    def to_json(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "server_time": self.server_time,
        }
