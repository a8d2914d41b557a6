"""One retry policy for every provider: exponential backoff with full jitter, a cap, a deadline.

All four operations are idempotent (add and remove set a state, check and list read), so a
whole exchange may be sent again. Retrying is expressed as a job that yields ``Sleep``
between attempts, so the same code serves the sync and the async client.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs
import httpx

from ._errors import ProviderError, RateLimited
from ._models import Outcome
from ._provider import Exchange, Results, Sleep

__all__ = ["RetryPolicy", "is_retryable", "retry_items", "with_retry"]

T = TypeVar("T")
logger = logging.getLogger("optouts")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class RetryPolicy:
    """How often and how patiently a failed request is sent again."""

    attempts: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    """Tries in all, the first included."""
    backoff: float = attrs.field(default=0.5, validator=_non_negative)
    """Base of the exponential backoff, in seconds."""
    cap: float = attrs.field(default=30.0, validator=_non_negative)
    """Longest single pause, in seconds (a vendor's Retry-After may exceed it)."""
    deadline: float | None = 300.0
    """No retry starts later than this many seconds after the first attempt."""

    def pause(self, attempt: int, error: Exception, rng: random.Random = random._inst) -> float:
        """Seconds to wait after failed ``attempt`` (1-based)."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        return rng.uniform(0, min(self.cap, self.backoff * 2 ** (attempt - 1)))


def is_retryable(error: Exception) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, ProviderError) and error.retryable


def with_retry(
    start: Callable[[], Exchange[T]],
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
) -> Exchange[T]:
    """Run ``start()``'s exchange, starting it afresh after each retryable failure."""
    began = clock()
    attempt = 1
    while True:
        try:
            return (yield from start())
        except Exception as error:
            if not is_retryable(error) or attempt >= policy.attempts:
                raise
            pause = policy.pause(attempt, error)
            if policy.deadline is not None and clock() + pause - began > policy.deadline:
                raise
            logger.debug(
                "retrying after %s (attempt %d, pause %.2fs)", _describe(error), attempt, pause
            )
            yield Sleep(pause, "rate-limited" if isinstance(error, RateLimited) else "retry")
            attempt += 1


def _item_needs_retry(outcome: Outcome) -> bool:
    return (outcome.status_code or 0) >= 500


def retry_items(
    send: Callable[[Sequence[str]], Exchange[Results]],
    recipients: Sequence[str],
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
) -> Exchange[Results]:
    """Send a batch, then send again only the recipients the vendor failed with a 5xx.

    The whole request is retried by ``with_retry``; a 200 that carries per-recipient
    server errors is answered by retrying those recipients alone, within the same policy.
    """
    began = clock()
    answers = dict((yield from with_retry(lambda: send(recipients), policy, clock)))
    for attempt in range(1, policy.attempts):
        failed = [r for r, result in answers.items() if not result.ok]
        again = [r for r in failed if _item_needs_retry(answers[r])]
        if not again:
            break
        pause = policy.pause(attempt, RuntimeError("per-recipient server error"))
        if policy.deadline is not None and clock() + pause - began > policy.deadline:
            break
        logger.debug("retrying %d recipient(s) the vendor failed (attempt %d)", len(again), attempt)
        yield Sleep(pause, "retry")
        try:
            answers.update((yield from with_retry(functools.partial(send, again), policy, clock)))
        except Exception as error:
            # The rest of the batch was answered (and applied): only these recipients fail.
            outcome = Outcome.failure(str(error), getattr(error, "status_code", None))
            answers.update(dict.fromkeys(again, outcome))
            break
    return answers


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
