"""The one place that sends providers' requests: a sync and an async runner for jobs.

A job (an exchange wrapped by ``_retry``) yields ``httpx.Request`` objects, ``Sleep``
pauses and ``Note`` facts. The runners send the requests with the provider's auth, hand
back responses, throw transport errors (and optouts errors an auth flow raised) into the
job so its retry policy sees them, and count the cost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import attrs
import httpx

from ._errors import OptOutError
from ._provider import Exchange, Note, Sleep

__all__ = ["Stats", "run_async", "run_sync"]

T = TypeVar("T")
logger = logging.getLogger("optouts")


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

    def merge(self, other: Stats) -> None:
        """Add what one batch cost (each batch counts alone, so threads never share one)."""
        self.requests += other.requests
        self.retries += other.retries
        self.waited += other.waited
        self.rate_limit_wait += other.rate_limit_wait
        self.notes.update(other.notes)

    def sent(self, reply: httpx.Response) -> None:
        """Count the request and any an auth flow sent before it (a token fetch)."""
        self.requests += 1 + len(reply.history)

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


def run_sync(
    job: Exchange[T],
    http: httpx.Client | None,
    auth: httpx.Auth | None,
    stats: Stats,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Drive ``job`` to its end over a blocking HTTP client (``sleep`` is swappable for tests)."""
    sleep = sleep or time.sleep
    reply: httpx.Response | None = None
    error: BaseException | None = None
    while True:
        try:
            step = job.throw(error) if error is not None else job.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        reply, error = None, None
        if isinstance(step, Note):
            stats.notes[step.name] = step.value
            continue
        if isinstance(step, Sleep):
            stats.paused(step)
            sleep(step.seconds)
            continue
        if http is None:
            raise RuntimeError("this provider sent a request but has no HTTP client")
        started = time.perf_counter()
        try:
            reply = http.send(step, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except (httpx.TransportError, OptOutError) as exc:
            stats.requests += 1
            _log(step, type(exc).__name__, stats.retries + 1, started)
            error = exc
        else:
            stats.sent(reply)
            _log(step, str(reply.status_code), stats.retries + 1, started)


async def run_async(
    job: Exchange[T], http: httpx.AsyncClient | None, auth: httpx.Auth | None, stats: Stats
) -> T:
    """Drive ``job`` to its end over an async HTTP client."""
    reply: httpx.Response | None = None
    error: BaseException | None = None
    while True:
        try:
            step = job.throw(error) if error is not None else job.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        reply, error = None, None
        if isinstance(step, Note):
            stats.notes[step.name] = step.value
            continue
        if isinstance(step, Sleep):
            stats.paused(step)
            await asyncio.sleep(step.seconds)
            continue
        if http is None:
            raise RuntimeError("this provider sent a request but has no HTTP client")
        started = time.perf_counter()
        try:
            reply = await http.send(step, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except (httpx.TransportError, OptOutError) as exc:
            stats.requests += 1
            _log(step, type(exc).__name__, stats.retries + 1, started)
            error = exc
        else:
            stats.sent(reply)
            _log(step, str(reply.status_code), stats.retries + 1, started)
