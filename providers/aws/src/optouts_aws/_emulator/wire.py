"""The emulator's side of the JSON 1.0 protocol: error replies as AWS shapes them, and ASGI I/O.

An error answer carries its exception's name twice, as AWS's do: in ``x-amzn-ErrorType``
(``Code:http://internal.amazon.com/``) and in the body's ``__type`` (namespaced, as Smithy
services send it), with the model's members of that exception beside it. Errors outside
the model (the signature family, ``UnknownOperationException``) come as AWS's front end
sends them: a plain ``__type`` and a lower-case ``message``. ``ErrorForms`` sends either
name in another of the protocol's forms (``Code``, ``Code:http://…``, ``ns#Code``,
``ns#Code:http://…``), or leaves the header out, so a client's reading of each is tested.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import attrs

from .._model import CONTENT_TYPE

__all__ = ["NAMESPACE", "ErrorForms", "Reply", "model_error", "plain_error", "respond"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NAMESPACE = "com.amazonaws.pinpointsmsvoicev2"
AWS_HEADER = "{code}:http://internal.amazon.com/"


def _form(template: str | None) -> str | None:
    if template is not None:
        try:
            shown = template.format(code="Code", namespace=NAMESPACE)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"not an error-name form: {template!r} ({error})") from None
        if "Code" not in shown:
            raise ValueError(f"an error-name form must hold {{code}}: {template!r}")
    return template


@attrs.frozen
class ErrorForms:
    """How an error answer spells its exception's name: templates of ``{code}`` (the
    bare name) and ``{namespace}`` (the service's Smithy namespace)."""

    header: str | None = attrs.field(default=AWS_HEADER, converter=_form)
    """``x-amzn-ErrorType``; None sends no header (the name is then the body's alone)."""
    body: str | None = attrs.field(default=None, converter=_form)
    """``__type``; None: as AWS sends it (``ns#Code`` for the model's exceptions, the
    bare name for its front end's)."""

    def header_value(self, code: str | None) -> str | None:
        if code is None or self.header is None:
            return None
        return self.header.format(code=code, namespace=NAMESPACE)

    def apply(self, body: dict[str, Any], code: str | None) -> dict[str, Any]:
        if code is None or self.body is None:
            return body
        return {**body, "__type": self.body.format(code=code, namespace=NAMESPACE)}


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
    error_header: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> None:
    """Send one answer; ``error_header`` is the whole ``x-amzn-ErrorType`` value, if any."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    if error_header is not None:
        headers.append((b"x-amzn-errortype", error_header.encode("latin-1")))
    headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
