"""An emulator of the Azure SMS opt-out API, written from the published 2026-01-23 spec.

It is a plain ASGI application (no framework) that checks requests as Azure does: the
HMAC signature, the content hash and the date (at most 15 minutes off), the api-version and
the body, answering with Azure's error shapes. State is kept per sender–recipient pair.
Knobs add latency, faults (whole-request 5xx, per-recipient 500s, dropped connections,
check's transient 400), per-recipient 500s at their own rate, throttling (429 with
``Retry-After``) and the senders the resource owns (others get a 401, as Azure's own SDK
tests show); with a ``seed`` the same requests meet the same faults.

Run it in-process with ``httpx.ASGITransport(app=AzureEmulator())`` or on 127.0.0.1 with
``optouts emulate azure``. A dropped connection surfaces in-process as
``httpx.RemoteProtocolError``, as it does over a socket.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import parse_qs

import httpx

from optouts.emulators import read_body

from ._api import API_VERSIONS, MAX_RECIPIENTS, OPERATIONS, Operation
from ._knobs import DEFAULT_ACCESS_KEY, FAULTS, RANDOM_FAULTS, Fault

__all__ = ["DEFAULT_ACCESS_KEY", "AzureEmulator", "DroppedConnection", "Fault"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_SKEW: Final = 15 * 60
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_AUTHORIZATION = re.compile(r"HMAC-SHA256 SignedHeaders=([^&\s]+)&Signature=(\S+)")
_VALIDATION_TYPE = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
_VALIDATION_TITLE = "One or more validation errors occurred."
_INVALID_NUMBER = "Invalid recipient phone number format"
_INVALID_PARAMETER = "Request parameter   is invalid."
"""As azure-sdk-for-js#35009 quotes it, the parameter's name left blank."""


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised by the emulator to close a connection without a complete answer."""


class _Reply(Exception):
    """An early answer (an error) that ends the handling of a request."""

    def __init__(self, status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = status
        self.body = body
        self.headers = list(headers)


def _error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message}})


class AzureEmulator:
    """The ASGI app. Thread- and task-safe: one instance may serve many clients at once."""

    def __init__(
        self,
        *,
        access_key: str = DEFAULT_ACCESS_KEY,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        faults: Collection[Fault] = RANDOM_FAULTS,
        throttle_rate: float = 0.0,
        item_fault_rate: float = 0.0,
        retry_after: float | None = 1.0,
        seed: int | None = None,
        enabled: bool = True,
        senders: Collection[str] | None = None,
        max_skew: float = MAX_SKEW,
        api_versions: Collection[str] = API_VERSIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        rates = (
            ("fault_rate", fault_rate),
            ("throttle_rate", throttle_rate),
            ("item_fault_rate", item_fault_rate),
        )
        for name, rate in rates:
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        self._key = base64.b64decode(access_key, validate=True)
        self.latency = latency
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.throttle_rate = throttle_rate
        self.item_fault_rate = item_fault_rate
        """Share of recipients answered 500 on their own, in requests that otherwise succeed."""
        self.retry_after = retry_after
        self.enabled = enabled
        self.senders = None if senders is None else frozenset(senders)
        """The numbers and short codes the resource owns; None accepts any sender."""
        self.max_skew = max_skew
        self.api_versions = frozenset(api_versions)
        self._access_key = access_key
        self._clock = clock
        self._seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._opted_out: set[tuple[str, str]] = set()
        self._queued: deque[Fault] = deque()
        self.requests = 0
        """Requests received, including rejected ones."""

    def __repr__(self) -> str:
        return f"<AzureEmulator requests={self.requests} opt_outs={len(self._opted_out)}>"

    def connection_string(self, base_url: str) -> str:
        """A connection string that points a client at this emulator served at ``base_url``."""
        return f"endpoint={base_url.rstrip('/')}/;accesskey={self._access_key}"

    def inject(self, *faults: Fault) -> None:
        """Make the next requests meet these faults, one each, before any random ones."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._queued.extend(faults)

    def opted_out(self, sender: str) -> set[str]:
        """The recipients opted out of ``sender`` (for tests)."""
        with self._lock:
            return {recipient for s, recipient in self._opted_out if s == sender}

    def reset(self) -> None:
        """Forget state, queued faults and the request count; replay the seed from the start."""
        with self._lock:
            self._opted_out.clear()
            self._queued.clear()
            self.requests = 0
            self._rng = random.Random(self._seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the Azure emulator serves HTTP, not {scope['type']!r}")
        # The answer is due ``latency`` after the request arrived, the emulator's own work
        # included, as a vendor's response time would be.
        due = asyncio.get_running_loop().time() + self.latency
        body = await read_body(receive)
        headers = _headers(scope)
        with self._lock:
            self.requests += 1
            number = self.requests
        reply_headers = [("ms-cv", self._correlation_id(number))]
        if "x-ms-client-request-id" in headers:
            reply_headers.append(("x-ms-client-request-id", headers["x-ms-client-request-id"]))
        dropped = False
        try:
            status, answer = self._handle(scope, headers, body, number)
        except _Reply as reply:
            status, answer = reply.status, reply.body
            reply_headers.extend(reply.headers)
        except DroppedConnection:
            dropped = True
        remaining = due - asyncio.get_running_loop().time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        if dropped:
            await _drop(send)
            raise DroppedConnection("the Azure emulator dropped the connection")
        await _respond(send, status, answer, reply_headers)

    def _handle(
        self, scope: Scope, headers: dict[str, str], body: bytes, number: int
    ) -> tuple[int, Any]:
        operation = self._route(scope)
        self._authenticate(scope, headers, body)
        fault = self._next_fault()
        if fault == "throttle":
            extra = [] if self.retry_after is None else [("retry-after", f"{self.retry_after:g}")]
            raise _Reply(
                429,
                {
                    "error": {
                        "code": "TooManyRequests",
                        "message": "Too many requests; retry later.",
                    }
                },
                extra,
            )
        self._check_api_version(scope)
        sender, recipients = _validate(body, number)
        if self.senders is not None and sender not in self.senders:
            raise _error(401, "Unauthorized", "")
        if fault == "invalid_parameter" and operation == "check":
            raise _error(400, "BadRequest", _INVALID_PARAMETER)  # the code is not documented
        if fault == "error":
            raise _error(500, "InternalServerError", "An internal server error occurred.")
        if fault == "unavailable":
            raise _error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        if fault == "drop":
            raise DroppedConnection("the Azure emulator dropped the connection")
        failing = (
            self._pick_failing(recipients) if fault == "items" else self._item_faults(recipients)
        )
        return 200, {
            "value": [self._apply(operation, sender, to, to in failing) for to in recipients]
        }

    def _route(self, scope: Scope) -> Operation:
        path = scope["path"]
        operation = next((op for op in OPERATIONS if path == f"/sms/optouts:{op}"), None)
        if operation is None:
            raise _error(404, "NotFound", f"No resource matches the path {path!r}.")
        if scope["method"] != "POST":
            raise _error(
                405, "MethodNotAllowed", f"{scope['method']} is not allowed here; use POST."
            )
        return operation

    def _authenticate(self, scope: Scope, headers: dict[str, str], body: bytes) -> None:
        if not self.enabled:
            raise _error(403, "Forbidden", "Opt-out management is not enabled for this resource.")
        match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        if match is None:
            raise _error(401, "Unauthorized", "")
        signed, signature = match.group(1).lower().split(";"), match.group(2)
        if (
            "host" not in signed
            or "x-ms-content-sha256" not in signed
            or not ("x-ms-date" in signed or "date" in signed)
        ):
            raise _error(
                401, "Denied", "SignedHeaders must include x-ms-date, host and x-ms-content-sha256."
            )
        if any(name not in headers for name in signed):
            raise _error(401, "Denied", "A signed header is missing from the request.")
        date_header = "x-ms-date" if "x-ms-date" in signed else "date"
        try:
            sent_at = parsedate_to_datetime(headers[date_header]).timestamp()
        except (TypeError, ValueError, IndexError):
            raise _error(
                401, "Denied", f"The {date_header} header is not an RFC 1123 date."
            ) from None
        if abs(self._clock() - sent_at) > self.max_skew:
            raise _error(
                401, "Denied", "The request date is more than 15 minutes from the server time."
            )
        body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if not hmac.compare_digest(headers["x-ms-content-sha256"], body_hash):
            raise _error(
                401, "Denied", "Request 'x-ms-content-sha256' differs from generated content hash."
            )
        path_and_query = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            path_and_query += b"?" + scope["query_string"]
        values = ";".join(headers[name] for name in signed)
        message = f"{scope['method']}\n{path_and_query.decode('latin-1')}\n{values}"
        expected = hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).digest()
        try:
            given = base64.b64decode(signature, validate=True)
        except ValueError:
            given = b""
        if not hmac.compare_digest(given, expected):
            raise _error(401, "Denied", "The request signature is invalid.")

    def _check_api_version(self, scope: Scope) -> None:
        version = _query_value(scope.get("query_string", b""), "api-version")
        if not version:
            raise _error(
                400, "ApiVersionUnspecified", "An API version is required, but was not specified."
            )
        if version not in self.api_versions:
            raise _error(
                400,
                "InvalidApiVersion",
                f"The HTTP resource that matches the request URI '{scope['path']}' "
                f"does not support the API version '{version}'.",
            )

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._queued:
                return self._queued.popleft()
            if self.throttle_rate and self._rng.random() < self.throttle_rate:
                return "throttle"
            if self.fault_rate and self.faults and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.faults)
            return None

    def _pick_failing(self, recipients: list[str]) -> set[str]:
        with self._lock:
            failing = {to for to in recipients if self._rng.random() < 0.5}
            return failing or {self._rng.choice(recipients)}

    def _item_faults(self, recipients: list[str]) -> set[str]:
        if not self.item_fault_rate:
            return set()
        with self._lock:
            return {to for to in recipients if self._rng.random() < self.item_fault_rate}

    def _apply(self, operation: Operation, sender: str, to: str, fail: bool) -> dict[str, Any]:
        if not _E164.fullmatch(to):
            return {"to": to, "httpStatusCode": 400, "errorMessage": _INVALID_NUMBER}
        if fail:
            return {"to": to, "httpStatusCode": 500, "errorMessage": "Internal Server Error"}
        pair = (sender, to)
        with self._lock:
            if operation == "add":
                self._opted_out.add(pair)
            elif operation == "remove":
                self._opted_out.discard(pair)
            else:
                return {"to": to, "httpStatusCode": 200, "isOptedOut": pair in self._opted_out}
        return {"to": to, "httpStatusCode": 200}

    def _correlation_id(self, number: int) -> str:
        digest = hashlib.sha256(f"{self._seed}:{number}".encode()).digest()
        return base64.b64encode(digest[:16]).decode().rstrip("=") + ".0"

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _validate(body: bytes, number: int) -> tuple[str, list[str]]:
    """The sender and recipients of a well-formed body, or a 400 in ASP.NET's problem shape."""
    errors: dict[str, list[str]] = {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        errors["$"] = ["The JSON value could not be converted to OptOutRequest."]
        raise _validation_error(errors, number)
    sender = data.get("from")
    if not isinstance(sender, str) or not sender:
        errors["From"] = ["The From field is required."]
    recipients = data.get("recipients")
    found: list[str] = []
    if not isinstance(recipients, list):
        errors["Recipients"] = ["The Recipients field is required."]
    elif not recipients:
        errors["Recipients"] = [
            "The field Recipients must be a string or array type with a minimum length of '1'."
        ]
    elif len(recipients) > MAX_RECIPIENTS:
        errors["Recipients"] = [
            "The field Recipients must be a string or array type with a maximum length of "
            f"'{MAX_RECIPIENTS}'."
        ]
    else:
        for index, item in enumerate(recipients):
            to = item.get("to") if isinstance(item, dict) else None
            if not isinstance(to, str) or not to:
                errors[f"Recipients[{index}].To"] = ["The To field is required."]
            else:
                found.append(to)
    if errors:
        raise _validation_error(errors, number)
    assert isinstance(sender, str)
    return sender, found


def _validation_error(errors: dict[str, list[str]], number: int) -> _Reply:
    trace = hashlib.sha256(f"trace:{number}".encode()).hexdigest()
    return _Reply(
        400,
        {
            "type": _VALIDATION_TYPE,
            "title": _VALIDATION_TITLE,
            "status": 400,
            "errors": errors,
            "traceId": f"00-{trace[:32]}-{trace[32:48]}-00",
        },
    )


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        headers[name.decode("latin-1").lower()] = value.decode("latin-1")
    return headers


def _query_value(query: bytes, name: str) -> str | None:
    values = parse_qs(query.decode("latin-1"), keep_blank_values=True).get(name)
    return values[0] if values else None


async def _respond(send: Send, status: int, body: Any, headers: list[tuple[str, str]]) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(payload)).encode()),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def _drop(send: Send) -> None:
    """Start an answer and stop halfway, so the client sees the connection close."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"value":[', "more_body": True})
