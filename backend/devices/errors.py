"""Errors of the devices domain."""

from backend.core.errors import NotFound, Unauthenticated


class EnrollmentCodeInvalid(Unauthenticated):
    code = "enrollment_code_invalid"
    title = "The enrollment code is unknown, used or expired"


class DeviceRevoked(Unauthenticated):
    code = "device_revoked"
    title = "This device has been revoked"


class DeviceCredentialsInvalid(Unauthenticated):
    code = "device_credentials_invalid"


class DeviceNotFound(NotFound):
    code = "device_not_found"
