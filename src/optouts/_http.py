"""The one place that sends providers' requests: a sync and an async runner for jobs.

A job (an exchange wrapped by ``_retry``) yields ``httpx.Request`` objects, ``Sleep``
pauses and ``Note`` facts. The runners send the requests with the provider's auth, hand
back responses, throw transport errors (and optouts errors an auth flow raised) into the
job so its retry policy sees them, and count the cost.

Redirects are never followed, whatever the caller's ``httpx.Client`` says: a redirect
would carry a signature, a JWT or a token wherever the answer points, plain ``http://``
included; a provider that meets one sees the 3xx.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import attrs
import httpx

from ._errors import OptOutError
from ._provider import Exchange, Note, Sleep

__all__ = ["VENDOR_TIMEOUT", "Stats", "run_async", "run_sync"]

T = TypeVar("T")
logger = logging.getLogger("optouts")

VENDOR_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""How long the client's own HTTP client waits for a vendor: 10 s to connect, 60 s for
each read, write or free connection. Bulk calls can take seconds; a vendor that takes the
connection and never answers must not hold a call forever (a timeout is then a transport
error, retried like any other)."""


@attrs.define
class Stats:
    """What a call cost: requests sent (retries included), retries, seconds paused."""

    requests: int = 0
    retries: int = 0
    waited: float = 0.0
    """Seconds spent pausing, for pacing and for retries."""
    rate_limit_wait: float = 0.0
    """The part of ``waited`` spent on rate limits: pacing and Retry-After."""
    notes: dict[str, object] = attrs.Factory(dict)
    auth_requests: int = 0
    """The part of ``requests`` an auth flow sent on its own (token fetches), which vendors
    count apart from API calls (RingCentral's Auth group)."""

    def merge(self, other: Stats) -> None:
        """Add what one batch cost (each batch counts alone, so threads never share one)."""
        self.requests += other.requests
        self.retries += other.retries
        self.waited += other.waited
        self.rate_limit_wait += other.rate_limit_wait
        self.notes.update(other.notes)
        self.auth_requests += other.auth_requests

    def sent(self, reply: httpx.Response) -> None:
        """Count the request and any an auth flow sent before it: a token fetch, or the
        same request refused with a 401 (not an auth request: the same object again)."""
        self.requests += 1 + len(reply.history)
        self.auth_requests += sum(earlier.request is not reply.request for earlier in reply.history)

    def paused(self, step: Sleep) -> None:
        if step.reason != "pace":
            self.retries += 1
        if step.reason != "retry":
            self.rate_limit_wait += step.seconds
        self.waited += step.seconds


def _log(request: httpx.Request, outcome: str, attempt: int, started: float) -> None:
    """One line per vendor request; never headers or bodies, which carry secrets and numbers."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s -> %s (attempt %d) in %.3fs",
            request.method,
            request.url.path,
            outcome,
            attempt,
            time.perf_counter() - started,
        )


class _Steps(Generic[T]):
    """Advances a job and keeps the books; the runners add only the waiting."""

    def __init__(self, job: Exchange[T], stats: Stats) -> None:
        self.job = job
        self.stats = stats
        self.value: T | None = None
        self._reply: httpx.Response | None = None
        self._error: BaseException | None = None

    def next(self) -> httpx.Request | Sleep | None:
        """The next request or pause; None once the job returned (see ``value``)."""
        while True:
            try:
                if self._error is not None:
                    step = self.job.throw(self._error)
                else:
                    step = self.job.send(self._reply)
            except StopIteration as stop:
                self.value = stop.value
                return None
            self._reply, self._error = None, None
            if isinstance(step, Note):
                self.stats.notes[step.name] = step.value
                continue
            if isinstance(step, Sleep):
                self.stats.paused(step)
            return step

    def answered(self, request: httpx.Request, reply: httpx.Response, started: float) -> None:
        self.stats.sent(reply)
        _log(request, str(reply.status_code), self.stats.retries + 1, started)
        self._reply = reply

    def failed(self, request: httpx.Request, error: Exception, started: float) -> None:
        """A transport error (or an auth flow's refusal) goes back into the job to retry."""
        self.stats.requests += 1
        _log(request, type(error).__name__, self.stats.retries + 1, started)
        self._error = error


def _no_http() -> RuntimeError:
    return RuntimeError("this provider sent a request but has no HTTP client")


def _timed(request: httpx.Request, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
    """``request`` with the HTTP client's timeouts unless it carries its own: a provider
    builds a bare ``httpx.Request``, which has none, and ``send`` adds none, so a vendor
    that accepts the connection and never answers would hold the call forever."""
    if "timeout" not in request.extensions:
        request.extensions["timeout"] = http.timeout.as_dict()
    return request


def run_sync(
    job: Exchange[T],
    http: httpx.Client | None,
    auth: httpx.Auth | None,
    stats: Stats,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Drive ``job`` to its end over a blocking HTTP client (``sleep`` is swappable for tests)."""
    sleep = sleep or time.sleep
    steps = _Steps(job, stats)
    while (step := steps.next()) is not None:
        if isinstance(step, Sleep):
            sleep(step.seconds)
            continue
        if http is None:
            raise _no_http()
        started = time.perf_counter()
        try:
            reply = http.send(
                _timed(step, http), auth=auth or httpx.USE_CLIENT_DEFAULT, follow_redirects=False
            )
            steps.answered(step, reply, started)
        except (httpx.TransportError, OptOutError) as exc:
            steps.failed(step, exc, started)
    return steps.value  # type: ignore[return-value]


async def run_async(
    job: Exchange[T], http: httpx.AsyncClient | None, auth: httpx.Auth | None, stats: Stats
) -> T:
    """Drive ``job`` to its end over an async HTTP client."""
    steps = _Steps(job, stats)
    while (step := steps.next()) is not None:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            continue
        if http is None:
            raise _no_http()
        started = time.perf_counter()
        try:
            reply = await http.send(
                _timed(step, http), auth=auth or httpx.USE_CLIENT_DEFAULT, follow_redirects=False
            )
            steps.answered(step, reply, started)
        except (httpx.TransportError, OptOutError) as exc:
            steps.failed(step, exc, started)
    return steps.value  # type: ignore[return-value]
