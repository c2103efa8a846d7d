"""Every answer under /api/v1/uploads carries Tus-Resumable, error documents included; and
``X-HTTP-Method-Override`` is honoured there.

tus clients check the header on every response; error responses are rendered far from the
tus routes (the shared problem handlers), hence a middleware rather than per-route code.
Some networks (proxies, old Android WebViews) only pass GET and POST: tus clients then send
PATCH and DELETE as POST with the override header, which the tus spec asks servers to honour.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/api/v1/uploads"
_OVERRIDABLE = {"PATCH", "DELETE", "HEAD"}


class TusResumableHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        override = _header(scope, b"x-http-method-override")
        if scope.get("method") == "POST" and override in _OVERRIDABLE:
            scope = {**scope, "method": override}

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"tus-resumable", b"1.0.0"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1").strip().upper())
    return None
