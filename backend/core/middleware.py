"""Request id, access log and latency metrics, as one plain ASGI middleware.

Plain ASGI (not BaseHTTPMiddleware) so streaming bodies and background tasks are untouched.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.metrics import Metrics
from backend.core.request_context import reset_request_id, set_request_id

access_log = logging.getLogger("xuncha.access")
# Accept a caller's id only if it looks like an id, so logs cannot be injected through it.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        started_response = False

        async def send_tracking(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            if _has_control_characters(scope):
                await _reject_control_characters(scope, receive, send_tracking)
            else:
                await self.app(scope, receive, send_tracking)
        except Exception as exc:
            # Exceptions no handler claimed end here, inside the request context, so the
            # 500 still carries the request id (Starlette's outer handler would not).
            if started_response:
                raise
            response = _fallback_response(exc)
            await response(scope, receive, send_tracking)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.request_seconds.labels(scope["method"], route, str(status)).observe(
                elapsed
            )
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            reset_request_id(token)


# %00-%1F and %7F in a path or query: never meaningful here, and NUL breaks PostgreSQL text.
_ENCODED_CONTROL = re.compile(rb"%(?:[01][0-9a-fA-F]|7[fF])")


def _has_control_characters(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope.get("path", "").encode()
    query = scope.get("query_string", b"")
    return bool(
        _ENCODED_CONTROL.search(raw_path)
        or _ENCODED_CONTROL.search(query)
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in scope.get("path", ""))
    )


async def _reject_control_characters(scope: Scope, receive: Receive, send: Send) -> None:
    from backend.core.problems import problem_response

    response = problem_response(
        422,
        "invalid_input",
        "The request is not valid",
        "control characters (such as NUL) are not allowed in the URL",
    )
    await response(scope, receive, send)


def _fallback_response(exc: Exception) -> Any:
    from backend.core.problems import (
        TRANSIENT_DATABASE_ERRORS,
        database_unavailable_response,
        internal_error_response,
    )

    if isinstance(exc, TRANSIENT_DATABASE_ERRORS):
        logging.getLogger("xuncha.errors").warning("database unavailable: %s", exc)
        return database_unavailable_response()
    logging.getLogger("xuncha.errors").exception("unhandled error", exc_info=exc)
    return internal_error_response()


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SAFE_REQUEST_ID.match(text) else None
    return None


def _route_template(scope: Scope) -> str:
    # The matched route's path template keeps metric cardinality bounded (/grids/{code}).
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
