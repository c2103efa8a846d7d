"""Errors of the accounts domain."""

from backend.core.errors import Conflict, Forbidden, NotFound, Unauthenticated, XunchaError


class BadCredentials(Unauthenticated):
    code = "bad_credentials"
    title = "Wrong username or password"


class UsernameTaken(Conflict):
    code = "username_taken"


class UserInactive(Unauthenticated):
    code = "user_inactive"
    title = "The account is deactivated"


class UserNotFound(NotFound):
    code = "user_not_found"


class DeviceTokenRequired(Forbidden):
    code = "device_token_required"
    title = "Only an enrolled device may call this"


class TooManyAttempts(XunchaError):
    """Too many failed attempts from this client or at this account: wait ``retry_after``."""

    status = 429
    code = "too_many_attempts"
    title = "Too many failed attempts"
