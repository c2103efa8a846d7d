"""RFC 9457 problem+json rendering for every error the API returns.

Clients switch on ``code`` (stable, snake_case); ``title`` and ``detail`` are for humans.
Validation errors, unknown routes, wrong methods and unexpected failures all use the same shape,
so a phone app needs exactly one error parser.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from backend.core.errors import XunchaError
from backend.core.request_context import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
TRANSIENT_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,  # every connection busy for database_pool_timeout_s: overloaded, retry
)
log = logging.getLogger("xuncha.errors")

# Starlette raises HTTPException for routing-level failures; give them stable codes too.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


class ValidationIssue(BaseModel):
    """One field-level problem inside a ``validation_error``."""

    loc: list[str | int] = Field(description="Path to the offending field, e.g. ['body', 'lon']")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus our stable ``code`` and the request id."""

    type: str = Field(default="about:blank")
    title: str
    status: int
    detail: str | None = None
    code: str = Field(description="Stable machine-readable error code")
    request_id: str | None = None
    errors: list[ValidationIssue] | None = None

    model_config = {"extra": "allow"}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # A problem may quote the client's input back (an unknown member's name, say); a lone
        # surrogate from a JSON "\\ud800" escape has no UTF-8 form and becomes "?" here
        # instead of turning the answer into a 500.
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "replace")


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": f"https://xuncha.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return ProblemResponse(status_code=status, content=body, headers=headers)


def _json_safe_loc(loc: Any) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


def _validation_issues(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": _json_safe_loc(err.get("loc", ())),
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


async def _on_xuncha_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, XunchaError)
    headers = exc.extra.pop("headers", None)
    return problem_response(exc.status, exc.code, exc.title, exc.detail, headers, **exc.extra)


async def _on_validation_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    issues = _validation_issues(exc)
    first = issues[0] if issues else None
    detail = (
        f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if first else "Invalid request"
    )
    return problem_response(
        422, "validation_error", "The request is not valid", detail, errors=issues
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: Starlette's 405 names only the methods of
    the first route with the path, RFC 9110 §15.5.6 wants all of the resource's."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


def _json_body_invalid(cause: BaseException) -> ProblemResponse:
    """FastAPI reports a JSON body that does not parse as a validation error, but one that is
    not UTF-8 or is nested too deeply for the parser as a bare 400: the same mistake, so the
    same answer (malformed multipart bodies stay 400 bad_request)."""
    reason = "not UTF-8" if isinstance(cause, UnicodeDecodeError) else "nested too deeply"
    message = f"the body is not valid JSON ({reason})"
    issue = {"loc": ["body"], "msg": message, "type": "json_invalid"}
    return problem_response(
        422, "validation_error", "The request is not valid", f"body: {message}", errors=[issue]
    )


async def _on_http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError | RecursionError):
        return _json_body_invalid(exc.__cause__)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    return problem_response(exc.status_code, code, title, str(exc.detail), headers or None)


async def _on_protocol_error(_request: Request, exc: Exception) -> ProblemResponse:
    from sync_protocol.errors import ProtocolError

    assert isinstance(exc, ProtocolError)
    status = exc.status_hint or 422
    title = exc.code.replace("_", " ").capitalize()
    return problem_response(status, exc.code, title, exc.message, None, **exc.extra)


async def _on_database_unavailable(_request: Request, exc: Exception) -> ProblemResponse:
    # Connection failures, lock timeouts and deadlocks: the request changed nothing (its
    # transaction rolled back) and retrying later is the right client reaction.
    log.warning("database unavailable: %s", str(exc).splitlines()[0][:300])
    return database_unavailable_response()


def database_unavailable_response() -> ProblemResponse:
    return problem_response(
        503,
        "database_unavailable",
        "The database is unavailable",
        "The database could not complete the request; nothing was changed. Retry shortly.",
        headers={"Retry-After": "2"},
    )


def internal_error_response() -> ProblemResponse:
    return problem_response(
        500, "internal_error", "Internal server error", "An unexpected error occurred."
    )


async def _on_unexpected(_request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error", exc_info=exc)
    return internal_error_response()


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(XunchaError, _on_xuncha_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    from sync_protocol.errors import ProtocolError

    app.add_exception_handler(ProtocolError, _on_protocol_error)
    for transient in TRANSIENT_DATABASE_ERRORS:
        app.add_exception_handler(transient, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem documents with these statuses (``model``
    registers the Problem schema; the content entry applies it to problem+json)."""
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        status: {"model": Problem, "content": content, "description": description}
        for status, description in descriptions.items()
    }


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = problem_responses(
    {
        400: "Malformed request (bad_request: unparseable body; request_aborted; protocol codes)",
        401: "Not authenticated",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Request body too large (payload_too_large or a domain code)",
        422: "Invalid input (validation_error or a domain code)",
        503: "Database unavailable (database_unavailable); retry",
    }
)
