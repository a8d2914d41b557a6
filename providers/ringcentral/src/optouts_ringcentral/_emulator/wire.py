"""What every route shares: the ASGI types, what a handler gets of a request, the exception
it raises to answer with an error, and RingCentral's error bodies in their three shapes."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@attrs.frozen
class _Call:
    """What a handler gets of a request."""

    query: str
    headers: dict[str, str]
    body: bytes


class _Reply(Exception):
    """Raised by handlers to answer with an error; caught by the dispatcher."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _v1_error(code: str, message: str, parameter: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"errorCode": code, "message": message}
    if parameter:
        entry["parameterName"] = parameter
    return {"errorCode": code, "message": message, "errors": [entry]}


def _v2_error(code: str, message: str, parameter: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"errorCode": code, "message": message}
    if parameter:
        entry["parameterName"] = parameter
    return {"errors": [entry]}


def _oauth_error(error: str, code: str, message: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": message,
        "errors": [{"errorCode": code, "message": message}],
    }


def _error(style: str, code: str, message: str, parameter: str | None = None) -> dict[str, Any]:
    if style == "oauth":
        return _oauth_error("invalid_request", code, message)
    return (_v1_error if style == "v1" else _v2_error)(code, message, parameter)


def _invalid(style: str, parameter: str) -> dict[str, Any]:
    return _error(style, "CMN-101", f"Parameter [{parameter}] value is invalid.", parameter)


def _json(body: bytes, style: str) -> dict[str, Any]:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise _Reply(400, _error(style, "CMN-100", "Request body is not valid JSON")) from None
    if not isinstance(data, dict):
        raise _Reply(400, _error(style, "CMN-100", "Request body must be a JSON object"))
    return data


def _per_page(value: Any, *, default: int, style: str) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _Reply(400, _invalid(style, "perPage")) from None
    if isinstance(value, bool) or not 1 <= number <= 1000:
        raise _Reply(400, _invalid(style, "perPage"))
    return number
