"""Reading Azure's answers: per-recipient results from a 200, exceptions from anything else.

Nothing here retries or waits. Whole-request failures become the core's exceptions, whose
``retryable`` flag and ``retry_after`` tell the client what to do; per-recipient failures
keep their vendor status code so the client can send the 5xx ones again alone.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from optouts import AuthenticationError, Outcome, ProviderError, RateLimited

from ._api import Operation

__all__ = ["parse_results", "raise_for_error", "request_id", "retry_after"]

PROVIDER = "azure"
REQUEST_ID_HEADERS = ("ms-cv", "x-ms-client-request-id", "x-ms-request-id")
_EXCERPT = 160
_NO_FLAG = "Azure answered without isOptedOut, so whether this recipient opted out is unknown"
_AUTH_HINT = (
    "the access key may be wrong, or opt-out management may not be enabled for this resource "
    "(it is enabled per resource on request)"
)


def request_id(response: httpx.Response, body: Any = None) -> str | None:
    """The id Azure support asks for: a request id header, else a validation traceId."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return str(value)
    if isinstance(body, dict) and isinstance(body.get("traceId"), str):
        return str(body["traceId"])
    return None


def retry_after(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """Seconds Azure asked to wait: ``retry-after-ms``, or ``Retry-After`` in seconds or a date."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = response.headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now())


def excerpt(text: str) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise ProviderError(
            f"Azure answered HTTP {response.status_code} with a body that is not JSON: "
            f"{excerpt(response.text)!r}",
            provider=PROVIDER,
            status_code=response.status_code,
            request_id=request_id(response),
        ) from None


def parse_results(
    operation: Operation, response: httpx.Response, recipients: Sequence[str]
) -> dict[str, Outcome]:
    """One result per recipient Azure answered for; others are left for the client to fail."""
    if not response.is_success:
        raise_for_error(response)
    body = _json(response)
    items = body.get("value") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ProviderError(
            f"Azure answered HTTP {response.status_code} without a 'value' list: "
            f"{excerpt(response.text)!r}",
            provider=PROVIDER,
            status_code=response.status_code,
            request_id=request_id(response),
        )
    sent = set(recipients)
    results: dict[str, Outcome] = {}
    for item in items:
        to = item.get("to") if type(item) is dict else None
        if to in sent and to not in results:
            outcome = _outcome(operation, item)
            if outcome is not None:
                results[to] = outcome
    return results


# Most answers are one of these; sharing them keeps a 100,000-recipient call cheap.
_SUCCESS = {
    ("add", None): Outcome(True, True, status_code=200),
    ("remove", None): Outcome(True, False, status_code=200),
    ("check", True): Outcome(True, True, status_code=200),
    ("check", False): Outcome(True, False, status_code=200),
}


def _outcome(operation: Operation, item: dict[str, Any]) -> Outcome | None:
    status = item.get("httpStatusCode")
    if type(status) is not int:
        return None
    if not 200 <= status < 300:
        message = item.get("errorMessage")
        error = message if isinstance(message, str) and message else f"HTTP {status}"
        return Outcome.failure(error, status)
    flag = item.get("isOptedOut") if operation == "check" else None
    if operation == "check" and type(flag) is not bool:
        # Unknown is not "not opted out": treating it as False could message someone who said STOP.
        return Outcome.failure(_NO_FLAG, status)
    shared = _SUCCESS[operation, flag] if status == 200 else None
    return shared or Outcome(True, operation == "add" if flag is None else flag, status_code=status)


def raise_for_error(response: httpx.Response) -> None:
    """Raise the exception that matches a non-2xx answer."""
    status = response.status_code
    text = response.content.strip()
    try:
        body = json.loads(text) if text else None
    except (ValueError, UnicodeDecodeError):
        body, not_json = None, True
    else:
        not_json = False
    rid = request_id(response, body)
    code, detail = _error_detail(body)
    if not_json:
        detail = f"a body that is not JSON: {excerpt(response.text)!r}"
    where = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status in (401, 403):
        raise AuthenticationError(
            f"Azure refused the request ({where}); {_AUTH_HINT}",
            provider=PROVIDER,
            status_code=status,
            code=code,
            request_id=rid,
        )
    if status == 429:
        raise RateLimited(
            f"Azure is throttling requests ({where})",
            retry_after=retry_after(response),
            provider=PROVIDER,
            status_code=status,
            code=code,
            request_id=rid,
        )
    if status == 404 and not detail:
        where = f"HTTP {status}: not found; check the endpoint"
    raise ProviderError(
        f"Azure answered {where}",
        provider=PROVIDER,
        status_code=status,
        code=code,
        request_id=rid,
    )


def _error_detail(body: Any) -> tuple[str | None, str | None]:
    """(code, message) from either 400 shape: ``{error: {code, message}}`` or a validation one."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        return (
            code if isinstance(code, str) and code else None,
            message if isinstance(message, str) and message else None,
        )
    errors = body.get("errors")
    title = body.get("title")
    parts = [title] if isinstance(title, str) and title else []
    if isinstance(errors, Mapping):
        fields = []
        for field, messages in errors.items():
            shown = (
                "; ".join(m for m in messages if isinstance(m, str))
                if isinstance(messages, list)
                else ""
            )
            fields.append(f"{field}: {shown}" if shown else str(field))
        if fields:
            parts.append("(" + "; ".join(fields) + ")")
    return None, " ".join(parts) or None
