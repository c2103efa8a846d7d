"""How the reference client reaches the server: a one-method protocol and a urllib implementation.

The client only ever needs "send this JSON, give me status, headers and decoded body", so that
is the whole interface; tests and other runtimes substitute their own. Network failures
(refused, reset, timed out, DNS) raise :class:`TransportError` and nothing else, because for
the sync logic they all mean the same thing: nothing is known about the request, keep the
outbox and try again later. HTTP error statuses are *not* exceptions: a 409 or 401 is an
answer the client acts on.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol

from sync_protocol._wire import encode_json


class TransportError(Exception):
    """The request may or may not have reached the server; no answer arrived."""


@dataclass(frozen=True)
class Response:
    """An HTTP answer. ``headers`` keys are lower-case; ``body`` is decoded JSON (including
    ``application/problem+json``), the text of a non-JSON body, or None when empty."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: object = None


class Transport(Protocol):
    def request(
        self, method: str, path: str, body: dict[str, object] | None, headers: dict[str, str]
    ) -> Response: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be silently turned into a GET; treat redirects as answers."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _decode(raw: bytes, content_type: str) -> object:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type.lower():
        try:
            return json.loads(text)
        except ValueError:
            return text  # a truncated or broken body: let the caller see it as text
    return text


class UrllibTransport:
    """JSON over HTTP(S) with the standard library; ``base_url`` like ``https://xc.example``."""

    def __init__(self, base_url: str, timeout: float = 30) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an http(s) URL")
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def request(
        self, method: str, path: str, body: dict[str, object] | None, headers: dict[str, str]
    ) -> Response:
        data = None if body is None else encode_json(body)
        all_headers = {"Accept": "application/json, application/problem+json", **headers}
        if data is not None:
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        request = urllib.request.Request(
            self._base + path, data=data, headers=all_headers, method=method
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                status, answer_headers, raw = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            # An HTTP error status is an answer, not a transport failure.
            try:
                raw = error.read()
            except (OSError, http.client.HTTPException) as exc:
                raise TransportError(f"reading the {error.code} answer failed: {exc}") from exc
            status, answer_headers = error.code, error.headers
        except (OSError, http.client.HTTPException) as exc:
            # URLError (refused, DNS), TimeoutError, ConnectionResetError, IncompleteRead, ...
            raise TransportError(str(exc) or type(exc).__name__) from exc
        lowered = {k.lower(): v for k, v in answer_headers.items()}
        return Response(status, lowered, _decode(raw, lowered.get("content-type", "")))
