"""The service's one limit on what a client sends: 1 MiB of body, counted as it arrives.

A ``Content-Length`` is only a claim: the count is kept on the bytes received, so a client
that lies about it, or sends chunks without one, is stopped once it has sent 1 MiB, and
the service never holds more. A declared length over the limit is refused before any
byte is read. Nothing is refused until a route reads the body: a 404 stays a 404.
"""

from __future__ import annotations

import sys

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY", "BodyLimit", "BodyTooLarge"]

MAX_BODY = 1024 * 1024
"""Bytes of request body the service reads at most."""


class BodyTooLarge(HTTPException):
    """Raised from reading the body; answered 413 like any HTTPException."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit:,} bytes")


class BodyLimit:
    """ASGI middleware: reading a request body past ``limit`` bytes raises BodyTooLarge."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared is not None and declared > self.limit:
                raise BodyTooLarge(self.limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            if not (text.isascii() and text.isdigit()):
                return None
            return int(text) if len(text) <= 18 else sys.maxsize  # int() refuses 4,300 digits
    return None
