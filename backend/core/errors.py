"""One error hierarchy for the whole service, rendered as RFC 9457 problem+json.

Every error a client can cause is a subclass of :class:`XunchaError` with a stable
machine-readable ``code``; handlers in :mod:`backend.core.problems` turn them into responses.
Services and pure modules raise these; they never build HTTP responses themselves.
"""

from __future__ import annotations

from typing import Any, ClassVar


class XunchaError(Exception):
    """Base of every error the service reports to a client or CLI user."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        # Extension members of the problem document (RFC 9457 section 3.2).
        self.extra = extra


class InvalidInput(XunchaError):
    status = 422
    code = "invalid_input"
    title = "The request is not valid"


class NotFound(XunchaError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(XunchaError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class Unauthenticated(XunchaError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(XunchaError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class PayloadTooLarge(XunchaError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class RequestAborted(XunchaError):
    """The client closed the connection before its body was complete (nobody reads the answer)."""

    status = 400
    code = "request_aborted"
    title = "The request body was not received completely"


class UnsupportedMediaType(XunchaError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ServiceUnavailable(XunchaError):
    status = 503
    code = "service_unavailable"
    title = "A dependency is unavailable"
