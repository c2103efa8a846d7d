"""Requests on behalf of an enrolled device: headers, access tokens, error answers.

Split from :mod:`sync_protocol.client` so the client reads as the protocol's steps while this
module holds the mechanics every request shares: the protocol headers, refreshing the access
token once when the server refuses it (section 2), and turning error answers into the state
the app acts on (offline, retry later, re-enroll, upgrade).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import NoReturn

from sync_protocol.enrollment import TokenRequest, TokenResponse
from sync_protocol.errors import ProtocolError
from sync_protocol.messages import Directive, DirectiveType
from sync_protocol.outcomes import SyncState
from sync_protocol.problems import Problem
from sync_protocol.store import Credentials, Store
from sync_protocol.timefmt import format_rfc3339, parse_rfc3339
from sync_protocol.transport import Response, Transport, TransportError
from sync_protocol.versions import PROTOCOL_VERSION

TOKEN_PATH = "/api/v1/devices/token"
# Refresh a little before the server's expiry; device clocks drift.
_TOKEN_MARGIN = timedelta(seconds=60)


class Halt(Exception):
    """Stop the current push/pull in ``state`` (not an error for the caller)."""

    def __init__(
        self, state: SyncState, error: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(state.value)
        self.state, self.error, self.retry_after = state, error, retry_after


def problem_of(response: Response) -> Problem | None:
    """The problem document of an error answer, or None when it cannot be read.

    Unreadable covers a proxy's HTML page, an empty body, and a problem whose ``directives``
    hold a type this version does not know: the answer is then handled by its HTTP status
    alone (:meth:`Session.halt_for`), which never touches the outbox.
    """
    try:
        return Problem.from_json(response.body)
    except ProtocolError:
        return None


def retry_after(response: Response) -> int | None:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() and len(value) < 7 else None


class Session:
    """The request side of one client; remembers the directives of the last answer."""

    def __init__(
        self, store: Store, transport: Transport, app_version: str, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._transport = transport
        self._app_version = app_version
        self._clock = clock
        self.directives: list[Directive] = store.directives()

    def headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"X-Xuncha-Protocol": str(PROTOCOL_VERSION), "X-Xuncha-App": self._app_version}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def envelope(self, device_id: str) -> dict[str, object]:
        return {
            "protocol_version": PROTOCOL_VERSION,
            "app_version": self._app_version,
            "device_id": device_id,
        }

    def credentials(self) -> Credentials:
        credentials = self._store.credentials()
        if credentials is None:
            raise Halt(SyncState.not_enrolled, "not_enrolled")
        return credentials

    def expiry(self, expires_in: int) -> str:
        return format_rfc3339(self._clock() + timedelta(seconds=expires_in) - _TOKEN_MARGIN)

    def post(self, path: str, body: dict[str, object], token: str | None) -> Response:
        try:
            return self._transport.request("POST", path, body, self.headers(token))
        except TransportError:
            raise Halt(SyncState.offline, "network") from None

    def send(self, path: str, body: dict[str, object]) -> Response:
        """POST with a valid access token, refreshing it once if the server refuses it."""
        credentials = self.credentials()
        token = credentials.access_token
        expires = credentials.token_expires_at
        if token is None or expires is None or parse_rfc3339(expires) <= self._clock():
            token = self.refresh(credentials)
        response = self.post(path, body, token)
        problem = problem_of(response) if response.status == 401 else None
        if problem is not None and problem.code in ("token_expired", "invalid_token"):
            response = self.post(path, body, self.refresh(credentials))
        if response.status == 401:
            self.halt_for(response, problem_of(response))
        return response

    def refresh(self, credentials: Credentials) -> str:
        request = TokenRequest(credentials.device_id, credentials.device_secret)
        response = self.post(TOKEN_PATH, request.to_json(), None)
        if response.status != 200:
            self.halt_for(response, problem_of(response))
        try:
            answer = TokenResponse.from_json(response.body)
        except ProtocolError:
            raise Halt(SyncState.failed, "invalid_response") from None
        self._store.save_token(answer.access_token, self.expiry(answer.expires_in))
        return answer.access_token

    def halt_for(self, response: Response, problem: Problem | None) -> NoReturn:
        """Turn an error answer into the state the app acts on; always raises."""
        code = problem.code if problem else f"http_{response.status}"
        if problem is not None and problem.directives:
            self.note_directives(problem.directives)
        if response.status == 401:
            revoked = code in ("device_revoked", "user_inactive") or any(
                d.type == DirectiveType.re_enroll for d in (problem.directives if problem else ())
            )
            raise Halt(SyncState.re_enroll if revoked else SyncState.failed, code)
        if response.status == 426:
            raise Halt(SyncState.upgrade_required, code)
        if response.status >= 500 or response.status == 429:
            raise Halt(SyncState.retry_later, code, retry_after(response))
        raise Halt(SyncState.failed, code)

    def note_directives(
        self, directives: Sequence[Directive], *, reset_records: bool = True
    ) -> None:
        self.directives = list(directives)
        self._store.save_directives(directives)
        if reset_records and any(d.type == DirectiveType.reset for d in directives):
            self._store.reset_records()
