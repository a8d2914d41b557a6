"""The emulator's ASGI application: one endpoint, five operations, AWS's checks and errors.

Each request is handled in AWS's order: the signature (``sigv4``), the operation named by
``X-Amz-Target``, the throttles (a per-operation quota, a random share, or faults queued
by a test), then the body: JSON, then the model's shape (``shapes``: lengths, patterns,
enums, required members; a ValidationException listing the fields), then the operation
itself against the account (``store``). Latency is the answer's due time after arrival,
the emulator's own work included, as a vendor's response time would be.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from optouts.emulators import read_body

from .._knobs import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    FAULTS,
    Fault,
)
from .._model import END_USER_FILTER, MAX_RESULTS, OPERATIONS, TARGET_PREFIX, Operation
from .shapes import problems, service_model
from .sigv4 import MAX_SKEW, Key, Verifier
from .store import DELETE_COOLDOWN, Store, invalid
from .wire import ErrorForms, Receive, Reply, Scope, Send, model_error, plain_error, respond

__all__ = ["AwsEmulator"]


_ERRORS: tuple[Fault, ...] = ("error",)


class _Bucket:
    """A token bucket: ``rate`` requests a second, bursts of up to one second's worth."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _number(value: str) -> str:
    """AWS takes numbers with or without the ``+``; the account keeps them with it."""
    return value if value.startswith("+") else "+" + value


class AwsEmulator:
    """The ASGI app. Thread- and task-safe: one instance may serve many clients at once.

    ``quotas`` (operation → requests per second) enforces AWS's per-operation throttling
    (``PUBLISHED_RATES`` are the defaults AWS publishes); ``throttle_rate`` throttles a
    random share of requests and ``fault_rate`` fails a share with ``faults``;
    ``rejected`` numbers are refused as invalid (ValidationException) wherever they
    appear; ``lookup_page_size`` makes lookups answer in pages of that many records.

    ``lookup_not_found`` answers a lookup that names a number the list does not hold
    with ``ResourceNotFoundException`` (``ResourceType`` ``opted-out-number``,
    ``ResourceId`` the first such number asked, in E.164) instead of leaving it out: the
    reference only says an invalid number fails a lookup, so a client must read both.
    ``error_forms`` spells error names in another of the protocol's forms.
    """

    def __init__(
        self,
        *,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        secret_access_key: str = DEFAULT_SECRET_ACCESS_KEY,
        session_token: str | None = None,
        keys: Mapping[str, Key] | None = None,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
        latency: float = 0.0,
        throttle_rate: float = 0.0,
        fault_rate: float = 0.0,
        faults: Collection[Fault] = _ERRORS,
        quotas: Mapping[Operation, float | None] | None = None,
        rejected: Collection[str] = (),
        lookup_page_size: int | None = None,
        lookup_not_found: bool = False,
        error_forms: ErrorForms | None = None,
        default_page_size: int = MAX_RESULTS,
        delete_cooldown: float = DELETE_COOLDOWN,
        max_skew: float = MAX_SKEW,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, rate in (("throttle_rate", throttle_rate), ("fault_rate", fault_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        all_keys = {access_key_id: (secret_access_key, session_token), **(keys or {})}
        self.region = region
        self.verifier = Verifier(all_keys, region, max_skew=max_skew, clock=clock)
        self.store = Store(region, account, clock=clock, delete_cooldown=delete_cooldown)
        self.latency = latency
        self.throttle_rate = throttle_rate
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.rejected = {_number(n) for n in rejected}
        """Numbers refused as invalid wherever they appear (a test's per-number failure)."""
        self.lookup_page_size = lookup_page_size
        self.lookup_not_found = lookup_not_found
        """Unknown numbers in a lookup: ResourceNotFoundException rather than left out."""
        self.error_forms = error_forms or ErrorForms()
        self.default_page_size = default_page_size
        self._monotonic = monotonic
        self._buckets = {
            op: _Bucket(rate, monotonic()) for op, rate in (quotas or {}).items() if rate
        }
        self._model = service_model()
        self._seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._queued: deque[Fault] = deque()
        self.requests = 0
        """Requests received, refused ones included."""
        self.counts: Counter[str] = Counter()
        """Requests per operation that passed the signature check."""
        self.throttled = 0

    def __repr__(self) -> str:
        return f"<AwsEmulator region={self.region!r} requests={self.requests}>"

    # --- for tests -------------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Make the next signed requests meet these faults, one each, before any random ones."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._queued.extend(faults)

    def opt_out(self, list_name: str, number: str, *, end_user: bool = True) -> None:
        """A person's STOP (``end_user``) or an API put, straight into a list."""
        self.store.put(list_name, _number(number), end_user=end_user)

    def load(self, list_name: str, numbers: Iterable[str], *, end_user: bool = True) -> int:
        """Many numbers into a list at once (created if missing); how many were new."""
        return self.store.load(list_name, (_number(n) for n in numbers), end_user=end_user)

    def numbers(self, list_name: str) -> set[str]:
        """The numbers in a list (for tests)."""
        return set(self.store.contents(list_name))

    def create_list(self, name: str) -> None:
        self.store.create(name)

    # --- serving ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the AWS emulator serves HTTP, not {scope['type']!r}")
        loop = asyncio.get_running_loop()
        due = loop.time() + self.latency
        body = await read_body(receive)
        with self._lock:
            self.requests += 1
            number = self.requests
        request_id = str(
            uuid.UUID(bytes=hashlib.sha256(f"{self._seed}:{number}".encode()).digest()[:16])
        )
        try:
            status, answer, error_type = 200, self._handle(scope, body), None
        except Reply as reply:
            status, answer, error_type = reply.status, reply.body, reply.error_type
        forms = self.error_forms
        remaining = due - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        await respond(
            send,
            status,
            forms.apply(answer, error_type),
            request_id,
            forms.header_value(error_type),
        )

    def _handle(self, scope: Scope, body: bytes) -> dict[str, Any]:
        headers = _headers(scope)
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"").decode("latin-1")
        self.verifier.verify(scope["method"], path.decode("latin-1"), query, headers, body)
        operation = self._route(scope, headers)
        self.counts[operation] += 1
        self._throttle(operation)
        params = _params(body)
        shape = self._model.operation_model(operation).input_shape
        found = problems(params, shape)
        if found:
            fields = [item.partition(": ") for item in found]
            raise invalid(
                f"{len(found)} validation error(s): {'; '.join(found)}",
                "FIELD_VALIDATION_FAILED",
                [(name, why) for name, _, why in fields],
            )
        handlers: dict[Operation, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "PutOptedOutNumber": self._put,
            "DeleteOptedOutNumber": self._delete,
            "DescribeOptedOutNumbers": self._describe_numbers,
            "DescribeOptOutLists": self._describe_lists,
            "CreateOptOutList": self._create_list,
        }
        return handlers[operation](params)

    def _route(self, scope: Scope, headers: Mapping[str, str]) -> Operation:
        target = headers.get("x-amz-target", "")
        prefix, _, name = target.partition(".")
        if scope["method"] != "POST" or scope["path"] != "/" or prefix != TARGET_PREFIX:
            raise plain_error(404, "UnknownOperationException", "No operation is served here.")
        operation = next((op for op in OPERATIONS if op == name), None)
        if operation is None:
            raise plain_error(
                400, "UnknownOperationException", f"The emulator does not serve {name[:60]!r}."
            )
        return operation

    def _throttle(self, operation: Operation) -> None:
        with self._lock:
            fault = self._queued.popleft() if self._queued else None
            if fault is None and self.throttle_rate and self._rng.random() < self.throttle_rate:
                fault = "throttle"
            if fault is None and self.fault_rate and self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.faults)
            bucket = self._buckets.get(operation)
            if fault is None and bucket is not None and not bucket.take(self._monotonic()):
                fault = "throttle"
            if fault == "throttle":
                self.throttled += 1
        if fault == "throttle":
            raise model_error(400, "ThrottlingException", "Rate exceeded.")
        if fault == "error":
            raise model_error(
                500, "InternalServerException", "An internal error occurred.", RequestId="emulated"
            )
        if fault == "unavailable":
            raise plain_error(503, "ServiceUnavailableException", "Service unavailable.")

    def _refuse_rejected(self, numbers: list[str], field: str, each: bool) -> None:
        for index, number in enumerate(numbers):
            if _number(number) in self.rejected:
                name = f"{field}[{index}]" if each else field
                raise invalid(
                    f"The phone number {number} is not valid.",
                    "INVALID_PARAMETER",
                    [(name, "not a valid phone number")],
                )

    # --- operations --------------------------------------------------------------------------

    def _put(self, params: dict[str, Any]) -> dict[str, Any]:
        self._refuse_rejected([params["OptedOutNumber"]], "OptedOutNumber", each=False)
        return self.store.put(params["OptOutListName"], _number(params["OptedOutNumber"]))

    def _delete(self, params: dict[str, Any]) -> dict[str, Any]:
        self._refuse_rejected([params["OptedOutNumber"]], "OptedOutNumber", each=False)
        return self.store.delete(params["OptOutListName"], _number(params["OptedOutNumber"]))

    def _describe_numbers(self, params: dict[str, Any]) -> dict[str, Any]:
        asked = params.get("OptedOutNumbers")
        if asked is not None:
            self._refuse_rejected(asked, "OptedOutNumbers", each=True)
        end_user: set[bool] | None = None
        for item in params.get("Filters", []):
            if item["Name"] == END_USER_FILTER:
                values = {value.lower() for value in item["Values"]}
                if not values <= {"true", "false"}:
                    raise invalid(
                        "The end-user-opted-out filter takes true or false.",
                        "INVALID_FILTER_VALUES",
                        [("Filters", "end-user-opted-out takes true or false")],
                    )
                chosen = {value == "true" for value in values}
                end_user = chosen if end_user is None else end_user & chosen
        limit = params.get("MaxResults", self.default_page_size)
        if asked is not None and self.lookup_page_size:
            limit = min(limit, self.lookup_page_size)
        info, records, token = self.store.describe_numbers(
            params["OptOutListName"],
            None if asked is None else [_number(n) for n in asked],
            end_user,
            params.get("NextToken"),
            limit,
            not_found=self.lookup_not_found,
        )
        answer: dict[str, Any] = {
            "OptOutListArn": info["OptOutListArn"],
            "OptOutListName": info["OptOutListName"],
            "OptedOutNumbers": records,
        }
        if token is not None:
            answer["NextToken"] = token
        return answer

    def _describe_lists(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("Owner") == "SHARED":
            return {"OptOutLists": []}
        lists, token = self.store.describe_lists(
            params.get("OptOutListNames"),
            params.get("NextToken"),
            params.get("MaxResults", self.default_page_size),
        )
        answer: dict[str, Any] = {"OptOutLists": lists}
        if token is not None:
            answer["NextToken"] = token
        return answer

    def _create_list(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self.store.create(params["OptOutListName"], params.get("ClientToken"))
        return {**info, "Tags": params.get("Tags", [])}


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _params(body: bytes) -> dict[str, Any]:
    try:
        params = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):
        params = None
    if not isinstance(params, dict):
        raise model_error(
            400,
            "ValidationException",
            "The request body is not a JSON object.",
            Reason="CANNOT_PARSE",
        )
    return params


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
