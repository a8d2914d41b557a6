"""The emulator's side of the JSON 1.0 protocol: error replies as AWS shapes them, and ASGI I/O.

An error answer carries its exception's name twice, as AWS's do: in ``x-amzn-ErrorType``
and in the body's ``__type`` (namespaced, as Smithy services send it), with the model's
members of that exception beside it. Errors outside the model (the signature family,
``UnknownOperationException``) come as AWS's front end sends them: a plain ``__type`` and
a lower-case ``message``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from .._model import CONTENT_TYPE

__all__ = ["Reply", "model_error", "plain_error", "respond"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NAMESPACE = "com.amazonaws.pinpointsmsvoicev2"


class Reply(Exception):
    """An early answer (an error) that ends the handling of a request."""

    def __init__(self, status: int, body: dict[str, Any], error_type: str | None = None) -> None:
        super().__init__(error_type or str(status))
        self.status = status
        self.body = body
        self.error_type = error_type


def model_error(status: int, code: str, message: str, **members: Any) -> Reply:
    """An exception of the service model, with its members (``Reason``, ``Fields``, …)."""
    body = {"__type": f"{NAMESPACE}#{code}", "Message": message}
    body.update({name: value for name, value in members.items() if value is not None})
    return Reply(status, body, code)


def plain_error(status: int, code: str, message: str) -> Reply:
    """A common error of AWS's front end (signatures, unknown operations)."""
    return Reply(status, {"__type": code, "message": message}, code)


async def respond(
    send: Send,
    status: int,
    body: Any,
    request_id: str,
    error_type: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    if error_type is not None:
        headers.append((b"x-amzn-errortype", f"{error_type}:http://internal.amazon.com/".encode()))
    headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
