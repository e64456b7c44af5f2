"""Request-level protection: a cap on every request body, and the security headers every response carries."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORM_OVERHEAD_BYTES = 64 * 2**10  # multipart framing and the form's small fields, on top of the upload cap
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'")
# The /docs page loads Swagger UI from this server and starts it with an inline script.
DOCS_PATHS = ("/docs",)
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse a request whose body is larger than `max_bytes`: by its Content-Length, or while it streams in; the
    answer is `refusal`'s (a page, or JSON for the API)."""

    def __init__(self, app: ASGIApp, max_bytes: int, refusal: Callable[[Scope], Response]) -> None:
        self.app, self.max_bytes, self.refusal = app, max_bytes, refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received, started = 0, False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.refusal(scope)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


class SecurityHeaders:
    """nosniff, no framing, same-origin referrers, and a strict CSP unless the response brings its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = DOCS_CSP if scope.get("path", "").startswith(DOCS_PATHS) else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", policy)
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)
