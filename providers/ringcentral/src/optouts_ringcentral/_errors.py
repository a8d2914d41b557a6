"""RingCentral error bodies mapped onto the core exceptions, keyed on codes, never on text.

Three shapes come back: v1 (``ASGErrorResponse``: top-level ``errorCode`` plus
``errors[]``), v2 (``errors[]`` whose entries may name a ``parameterName``) and OAuth (RFC
6749 ``error`` plus RingCentral's ``errors[]``). Request headers never reach a message:
they carry the bearer token. Vendor text (messages, codes, request ids) is cut short
before it reaches a message: a 1 MB error page must not become a 1 MB exception.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from optouts import AuthenticationError, ProviderError, RateLimited
from optouts.plugin import clip

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "LOGGED",
    "LONGEST_RETRY_AFTER",
    "OAUTH_PATH_PREFIX",
    "PROVIDER",
    "REASON",
    "REQUEST_ID_HEADER",
    "TOKEN_EXPIRED",
    "error_code",
    "error_from_response",
    "json_body",
    "quoted",
    "request_id",
    "retry_after",
]

PROVIDER = "ringcentral"
TOKEN_EXPIRED = "OAU-128"
"""A 401 with this code means the access token expired (the session lives: refresh it); any
other 401 means the session died on the server (log in again with the JWT)."""
DEFAULT_RETRY_AFTER = 60.0
"""RingCentral asks for at least 30 s when a 429 carries no Retry-After; 60 s is safe."""
LONGEST_RETRY_AFTER = 86_400.0
"""A Retry-After beyond a day is no wait anyone means: it counts as absent."""
OAUTH_PATH_PREFIX = "/restapi/oauth/"
REQUEST_ID_HEADER = "RCRequestId"
_AUTH_STATUSES = (401, 403)
REASON = 200
"""Characters of a vendor's message (or a value it sent) that our messages show."""
_LABEL = 100
"""Characters of a vendor's code or request id that an error shows."""
LOGGED = 40
"""Characters of vendor text (a group name, a code) that a log line shows."""
_ENTRIES = 3
"""``errors[]`` entries a message quotes; the rest are only counted."""


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or None when there is none or it is not JSON.

    Nesting too deep for the decoder (``[[[[…``) raises RecursionError, not ValueError: it
    is no answer of RingCentral's either, and must not escape a call as a crash.
    """
    try:
        return json.loads(response.content) if response.content else None
    except (ValueError, RecursionError):
        return None


def quoted(value: Any, limit: int = REASON) -> str:
    """A value from a vendor answer for a message: short scalars as their repr, long ones cut
    (saying how long they were), objects and arrays by their JSON type alone."""
    if value is None or isinstance(value, (str, int, float)):
        return clip(repr(value), limit)
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__}"


def _entries(body: Any) -> list[dict[str, Any]]:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [entry for entry in errors if isinstance(entry, dict)]


def error_code(body: Any) -> str | None:
    """The vendor's code: v1 top-level ``errorCode``, else the first ``errors[]`` code, else
    the OAuth ``error``."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("errorCode"), str):
        return clip(body["errorCode"], _LABEL)
    for entry in _entries(body):
        if isinstance(entry.get("errorCode"), str):
            return clip(entry["errorCode"], _LABEL)
    error = body.get("error")
    return clip(error, _LABEL) if isinstance(error, str) else None


def request_id(response: httpx.Response) -> str | None:
    """RingCentral's id of the request (``RCRequestId``), cut short like any vendor text."""
    value = response.headers.get(REQUEST_ID_HEADER)
    return clip(value, _LABEL) if value is not None else None


def retry_after(response: httpx.Response) -> float:
    """Seconds a 429 asks us to wait, always finite: Retry-After when it is a number of
    seconds from 0 to a day, else the documented default penalty, 60 s.

    Absent, unreadable (an HTTP date included) and absurd values (negative, ``nan``,
    ``inf``, ``1e999``, years) all mean "the server did not say": a wait computed from them
    could overflow a sleep or stall a batch for ever, and 60 s is what RingCentral documents.
    """
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER
    # nan compares false, so it takes the default too.
    return seconds if 0 <= seconds <= LONGEST_RETRY_AFTER else DEFAULT_RETRY_AFTER


def _describe(body: Any, status_code: int) -> str:
    """A readable message from the vendor's own fields (no request data of ours), bounded:
    each text cut to ``REASON`` characters, at most a few ``errors[]`` entries quoted."""
    if not isinstance(body, dict):
        return f"RingCentral answered HTTP {status_code}"
    parts: list[str] = []
    top = body.get("message") or body.get("error_description")
    if isinstance(top, str) and top:
        parts.append(clip(top, REASON))
    entries = _entries(body)
    for entry in entries[:_ENTRIES]:
        message = entry.get("message")
        if isinstance(message, str) and message:
            message = clip(message, REASON)
            parameter = entry.get("parameterName")
            if isinstance(parameter, str) and parameter:
                message = f"{message} [parameter {clip(parameter, _LABEL)}]"
            if message not in parts:
                parts.append(message)
    if len(entries) > _ENTRIES:
        parts.append(f"{len(entries) - _ENTRIES} more error(s)")
    return "; ".join(parts) or f"RingCentral answered HTTP {status_code}"


def error_from_response(response: httpx.Response) -> ProviderError:
    """The core exception for a RingCentral error response (any status >= 400)."""
    body = json_body(response)
    status = response.status_code
    code = error_code(body)
    message = _describe(body, status)
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "status_code": status,
        "code": code,
        "request_id": request_id(response),
    }
    if status == 429:
        return RateLimited(message, retry_after=retry_after(response), **common)
    is_oauth = response.request.url.path.startswith(OAUTH_PATH_PREFIX)
    if status in _AUTH_STATUSES or (is_oauth and 400 <= status < 500):
        return AuthenticationError(message, **common)
    return ProviderError(message, **common)
