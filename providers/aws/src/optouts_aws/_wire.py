"""The AWS JSON 1.0 protocol as this provider speaks it: requests out, records and errors in.

Every operation is ``POST /`` with ``X-Amz-Target: PinpointSMSVoiceV2.<Operation>`` and a
JSON body. An error answer names its type in the ``x-amzn-ErrorType`` header and in the
body's ``__type``, each in any of the protocol's forms (``Code``, ``Code:http://…``,
``ns#Code``, ``ns#Code:http://…``), read as botocore's ``JSONParser`` reads ``__type``;
its fields are the model's exception members (``Message`` or ``message``, ``Reason``,
``Fields``, ``ResourceType``, ``ResourceId``). Every text kept from an answer is redacted
first (``_redact``): AWS's signature errors may quote the request's credentials back.
Nothing here decides what an error means for a call; the provider does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import attrs
import httpx

from optouts import ProviderError
from optouts.plugin import clip

from ._model import CONTENT_TYPE, PHONE_NUMBER, Operation, target
from ._redact import redact

__all__ = [
    "AwsError",
    "Record",
    "build_request",
    "error_code",
    "protocol_error",
    "read_body",
    "read_error",
    "read_records",
    "same_number",
]

PROVIDER = "aws"
USER_AGENT = "optouts-aws"
_REASON = 300
_CODE = 80
_EXCERPT = 160


def build_request(url: httpx.URL, operation: Operation, body: Mapping[str, Any]) -> httpx.Request:
    """The unsigned request; the provider's auth signs it as it is sent."""
    return httpx.Request(
        "POST",
        url,
        content=json.dumps(body, separators=(",", ":")).encode("utf-8"),
        headers={
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": target(operation),
            "User-Agent": USER_AGENT,
        },
    )


def _excerpt(text: str) -> str:
    flat = redact(re.sub(r"\s+", " ", text).strip())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"


def request_id(response: httpx.Response) -> str | None:
    value = response.headers.get("x-amzn-requestid") or response.headers.get("x-amz-request-id")
    return clip(value, _CODE) if value else None


def protocol_error(message: str, response: httpx.Response) -> ProviderError:
    """An answer that breaks the protocol (unreadable, or not what was asked for).

    Not retryable, as the core's own check of a repeated page cursor is not: AWS gave
    this answer with a success status, and sending the request again buys the same one.
    """
    return ProviderError(
        message,
        provider=PROVIDER,
        status_code=response.status_code,
        request_id=request_id(response),
        retryable=False,
    )


def read_body(response: httpx.Response) -> dict[str, Any]:
    """A successful answer's JSON object, or ProviderError saying what came instead."""
    try:
        body = json.loads(response.content) if response.content.strip() else {}
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise protocol_error(
            f"AWS answered HTTP {response.status_code} with a body that is not a JSON object: "
            f"{_excerpt(response.text)!r}",
            response,
        )
    return body


@attrs.frozen
class AwsError:
    """An error answer, read: the exception's name and members, cut to a sane length."""

    status: int
    code: str
    message: str
    reason: str | None = None
    fields: tuple[tuple[str, str], ...] = ()
    """``ValidationException.Fields``: (name, message) of each field that failed."""
    resource_type: str | None = None
    resource_id: str | None = None
    request_id: str | None = None

    def names_field(self, prefix: str) -> bool:
        return any(name.startswith(prefix) for name, _ in self.fields)

    def describe(self) -> str:
        """``Code: message (reason; field: why)`` for an exception or a failed result."""
        details = [self.reason] if self.reason else []
        details.extend(f"{name}: {why}" if why else name for name, why in self.fields)
        more = f" ({'; '.join(details)})" if details else ""
        text = f"{self.code}: {self.message}" if self.message else self.code
        return clip(text + more, _REASON)


def _text(value: Any, limit: int = _REASON) -> str | None:
    """A text member, redacted and then cut (a cut first could halve a secret)."""
    return clip(redact(value), limit) if isinstance(value, str) and value else None


def error_code(value: str) -> str:
    """An error type in any JSON 1.0 form as its bare name, as botocore's ``JSONParser``
    reads ``__type``: cut at the first ``:``, then keep what follows the last ``#``
    (``ns#ThrottlingException:http://…`` is ``ThrottlingException``)."""
    return value.split(":", 1)[0].rsplit("#", 1)[-1].strip()


def _error_code(response: httpx.Response, body: Mapping[str, Any]) -> str | None:
    """The header first, then the body's members; each source read the same way."""
    sources = [response.headers.get("x-amzn-errortype")]
    sources.extend(body.get(key) for key in ("__type", "code", "Code"))
    for value in sources:
        if isinstance(value, str) and value:
            code = error_code(value)
            if code:
                return redact(code)
    return None


def read_error(response: httpx.Response) -> AwsError:
    """What an error answer says; a body that is not JSON still gives status and headers."""
    try:
        loaded = json.loads(response.content) if response.content.strip() else {}
    except (ValueError, RecursionError):
        loaded = None
    body: Mapping[str, Any] = loaded if isinstance(loaded, dict) else {}
    code = _error_code(response, body) or f"HTTP {response.status_code}"
    message = _text(body.get("message")) or _text(body.get("Message"))
    if loaded is None and response.content.strip():
        message = f"a body that is not JSON: {_excerpt(response.text)!r}"
    raw_fields = body.get("Fields") or body.get("fields")
    fields: list[tuple[str, str]] = []
    if isinstance(raw_fields, list):
        for item in raw_fields[:10]:
            if isinstance(item, dict):
                name = _text(item.get("Name") or item.get("name"), _CODE)
                if name:
                    fields.append((name, _text(item.get("Message") or item.get("message")) or ""))
    return AwsError(
        status=response.status_code,
        code=clip(code, _CODE),
        message=message or "",
        reason=_text(body.get("Reason") or body.get("reason"), _CODE),
        fields=tuple(fields),
        resource_type=_text(body.get("ResourceType") or body.get("resourceType"), _CODE),
        resource_id=_text(body.get("ResourceId") or body.get("resourceId"), _CODE),
        request_id=request_id(response),
    )


@attrs.frozen
class Record:
    """One ``OptedOutNumberInformation``: a number in a list, since when, and who put it."""

    number: str
    """E.164, with the ``+`` AWS's pattern lets a number go without."""
    timestamp: datetime | None
    end_user: bool | None
    raw: Mapping[str, Any]


def _number(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 20 or not PHONE_NUMBER.fullmatch(value):
        return None
    return value if value.startswith("+") else "+" + value


def _timestamp(value: Any) -> datetime | None:
    """The json protocol sends epoch seconds; an ISO 8601 text is read too."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return None


def same_number(given: str | None, number: str) -> bool:
    """Whether AWS's ``given`` (``+`` or not, as its pattern allows) is E.164 ``number``."""
    return given is not None and _number(given) == number


def read_records(response: httpx.Response) -> tuple[list[Record], str | None]:
    """The records of a DescribeOptedOutNumbers answer and its ``NextToken`` (None: last).

    ``OptedOutNumbers`` must be there, a list: an answer without it says nothing about
    the numbers, and reading it as empty would report each asked number not opted out.
    """
    body = read_body(response)
    items = body.get("OptedOutNumbers")
    token = body.get("NextToken")
    if not isinstance(items, list) or (token is not None and not isinstance(token, str)):
        raise protocol_error(
            "AWS answered DescribeOptedOutNumbers without a list of OptedOutNumbers: "
            f"{_excerpt(response.text)!r}",
            response,
        )
    records = []
    for item in items:
        number = _number(item.get("OptedOutNumber")) if isinstance(item, dict) else None
        if number is None:
            raise protocol_error(
                f"AWS listed an opted-out number that is not one: {_excerpt(repr(item))}",
                response,
            )
        assert isinstance(item, dict)
        flag = item.get("EndUserOptedOut")
        records.append(
            Record(
                number=number,
                timestamp=_timestamp(item.get("OptedOutTimestamp")),
                end_user=flag if isinstance(flag, bool) else None,
                raw=item,
            )
        )
    return records, token or None
