"""Reading Azure's answers: per-recipient results from a 200, exceptions from anything else.

Nothing here retries or waits. Whole-request failures become the core's exceptions, whose
``retryable`` flag and ``retry_after`` tell the client what to do; per-recipient failures
keep their vendor status code so the client can send the 5xx ones again alone.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from optouts import AuthenticationError, Outcome, ProviderError, RateLimited
from optouts.plugin import clip

from ._api import Operation

__all__ = [
    "is_transient_check_error",
    "parse_results",
    "raise_for_error",
    "request_id",
    "retry_after",
]

PROVIDER = "azure"
REQUEST_ID_HEADERS = ("ms-cv", "x-ms-client-request-id", "x-ms-request-id")
_EXCERPT = 160
_REASON = 300
"""Characters of a vendor's error message an exception or a result carries."""
_CODE = 80
_NO_FLAG = "Azure answered without isOptedOut, so whether this recipient opted out is unknown"
_TRANSIENT_CHECK_MESSAGE = "request parameter is invalid"


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
    """Seconds Azure asked to wait: ``retry-after-ms``, or ``Retry-After`` in seconds or a date.

    A header that gives no usable wait (``inf``, ``nan``, a negative number, garbage) counts
    as absent, so the next one or the backoff decides. A huge finite wait is returned as
    asked: the retry policy, not this parser, refuses waits past its deadline.
    """
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        millis = _seconds(response.headers.get(name))
        if millis is not None:
            return millis / 1000
    value = response.headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:  # a date; a number refused above ("inf", "-3") is none and comes out None
        when = parsedate_to_datetime(value)
        wait = when.timestamp() - now() if when.tzinfo is not None else math.nan
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # A date already past asks for no wait at all.
    return max(0.0, wait) if math.isfinite(wait) else None


def _seconds(value: str | None) -> float | None:
    """A finite, non-negative number of the header, else None."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def excerpt(text: str) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ProviderError(
            f"Azure answered HTTP {response.status_code} with a body that is not JSON: "
            f"{excerpt(response.text)!r}",
            provider=PROVIDER,
            status_code=response.status_code,
            request_id=request_id(response),
        ) from None


def parse_results(
    operation: Operation,
    response: httpx.Response,
    recipients: Sequence[str],
    *,
    sender: str | None = None,
) -> dict[str, Outcome]:
    """One result per recipient Azure answered for; others are left for the client to fail."""
    if not response.is_success:
        raise_for_error(response, sender=sender)
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
        if type(to) is str and to in sent and to not in results:
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
        error = clip(message, _REASON) if isinstance(message, str) and message else f"HTTP {status}"
        return Outcome.failure(error, status)
    flag = item.get("isOptedOut") if operation == "check" else None
    if operation == "check" and type(flag) is not bool:
        # Unknown is not "not opted out": treating it as False could message someone who said STOP.
        return Outcome.failure(_NO_FLAG, status)
    shared = _SUCCESS[operation, flag] if status == 200 else None
    return shared or Outcome(True, operation == "add" if flag is None else flag, status_code=status)


def is_transient_check_error(operation: Operation, response: httpx.Response) -> bool:
    """True for the one 400 worth sending again: ``check`` answered "Request parameter is invalid".

    The rule: operation ``check``, HTTP 400, and an error message that reads "Request
    parameter is invalid" once spacing, case and a final period are set aside (the service
    leaves the parameter's name blank: "Request parameter   is invalid."). The code is not
    looked at; none is documented. The Azure JS SDK's tracker records this answer on check
    only, failing nightly runs that pass again unchanged (azure-sdk-for-js#35009), and the
    reference lists it as a check behaviour. add and remove have no such report, so a 400
    from them, like any other 400, is the caller's mistake and is never sent again.
    """
    if operation != "check" or response.status_code != 400:
        return False
    _, message = _error_detail(_body(response.content))
    if message is None:
        return False
    return " ".join(message.split()).rstrip(".").casefold() == _TRANSIENT_CHECK_MESSAGE


def _body(content: bytes) -> Any:
    """The JSON of an error answer, or None when it has none (or one too deeply nested)."""
    text = content.strip()
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None


def _auth_hint(sender: str | None) -> str:
    """Why Azure may refuse a request whose key signs it; the key itself is never shown."""
    # Azure's own SDK tests show a 401 for a sender the resource does not own
    # (test_opt_out_unauthorized_from_phone_number), not only for a wrong key.
    owner = f"the sender {sender}" if sender else "the sender"
    return (
        f"the access key may be wrong, or {owner} may not belong to this resource, "
        "or opt-out management may not be enabled for it (Azure enables it per resource "
        "on request)"
    )


def raise_for_error(response: httpx.Response, *, sender: str | None = None) -> None:
    """Raise the exception that matches a non-2xx answer; ``sender`` helps explain a 401/403."""
    status = response.status_code
    text = response.content.strip()
    try:
        body = json.loads(text) if text else None
    except (ValueError, RecursionError):
        body, not_json = None, True
    else:
        not_json = False
    rid = request_id(response, body)
    code, detail = _error_detail(body)
    # Vendor text, cut short: a 1 MB error body must not become a 1 MB exception.
    rid, code = (clip(rid, _CODE) if rid else None), (clip(code, _CODE) if code else None)
    detail = clip(detail, _REASON) if detail else None
    if not_json:
        detail = f"a body that is not JSON: {excerpt(response.text)!r}"
    where = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status in (401, 403):
        raise AuthenticationError(
            f"Azure refused the request ({where}); {_auth_hint(sender)}",
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
