"""The one exception type of the sync protocol, with stable codes a server can render.

The package is shared by the server (which turns errors into RFC 9457 problem documents) and
by clients (which switch on the same codes), so an error is data: a snake_case ``code`` that
never changes meaning, a human ``message`` and the HTTP status a server should answer with.
The package itself never speaks HTTP; ``status_hint`` is only advice to whoever does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Every code this package raises, with the HTTP status a server should use (None: the code is
# reported inside a 200 push result, not as an HTTP error). The backend documents these in
# docs/api-errors.md; keeping the list here lets a test check that nothing is missing.
ERROR_CODES: Mapping[str, int | None] = MappingProxyType(
    {
        "invalid_message": 422,
        "invalid_batch": 422,
        "batch_too_large": 413,
        "invalid_app_version": 400,
        "unsupported_protocol": 400,
        "upgrade_required": 426,
        "invalid_cursor": 422,
        "mutation_gap": 409,
        "invalid_args": None,
        "unknown_mutation": None,
    }
)


class ProtocolError(Exception):
    """A message or value that breaks docs/sync-protocol.md.

    ``extra`` holds extension members for the problem document (for example ``supported``
    for ``unsupported_protocol`` or ``directives`` for ``upgrade_required``), so the server
    does not have to know which error carries what.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_hint: int | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # Default to the catalogue so callers cannot give one code two statuses by accident.
        self.status_hint = status_hint if status_hint is not None else ERROR_CODES.get(code)
        self.extra: dict[str, object] = dict(extra or {})


class InvalidMessage(ProtocolError):
    """A request or response body that does not match its schema (422)."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_message", message)
