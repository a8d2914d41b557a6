"""One retry policy for every provider: exponential backoff with full jitter, a cap, a deadline.

All four operations are idempotent (add and remove set a state, check and list read), so a
whole exchange may be sent again. Retrying is expressed as a job that yields ``Sleep``
between attempts, so the same code serves the sync and the async client.

Every pause that starts is announced on the logger ``optouts.wait`` by whoever decides it:
here for backoff and Retry-After, the provider for its own pacing. One over
``SHOWN_WAIT`` seconds is an INFO record saying why ("waiting 58 s: ..."), which the
command line shows on a terminal; shorter ones are DEBUG records.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs
import httpx

from ._errors import ProviderError, RateLimited
from ._models import Outcome
from ._provider import Exchange, Results, Sleep

__all__ = [
    "LONGEST_WAIT",
    "SHOWN_WAIT",
    "RetryPolicy",
    "announce_wait",
    "is_retryable",
    "retry_items",
    "with_retry",
]

T = TypeVar("T")
logger = logging.getLogger("optouts")
wait_logger = logging.getLogger("optouts.wait")
_jitter = random.Random()

SHOWN_WAIT = 2.0
"""Seconds beyond which a wait is announced at INFO: long enough for a person to wonder."""

LONGEST_WAIT = 24 * 3600.0
"""No single pause lasts longer, deadline or not: a server asking for more is refused."""


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

    def pause(self, attempt: int, error: Exception, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based); a vendor's word may be ``inf``."""
        wait = error.retry_after if isinstance(error, RateLimited) else None
        if wait is not None and not math.isnan(wait):  # nan: the vendor said nothing usable
            return max(0.0, wait)
        ceiling = min(self.cap, self.backoff * 2.0 ** min(attempt - 1, 1023))
        return (rng or _jitter).uniform(0, ceiling)

    def too_long(self, seconds: float, elapsed: float) -> bool:
        """True when a pause of ``seconds`` would end past the deadline, or is absurd."""
        if not math.isfinite(seconds) or seconds > LONGEST_WAIT:
            return True
        return self.deadline is not None and elapsed + seconds > self.deadline


def announce_wait(seconds: float, why: str) -> None:
    """Say on ``optouts.wait`` that a pause of ``seconds`` starts, and why."""
    level = logging.INFO if seconds > SHOWN_WAIT else logging.DEBUG
    if wait_logger.isEnabledFor(level):
        shown = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
        wait_logger.log(level, "waiting %s: %s", shown, why)


def _why_again(error: Exception, attempt: int, policy: RetryPolicy) -> str:
    """Why a retry waits, for a person; never the error's text, which may quote vendors."""
    who = getattr(error, "provider", None) or "the vendor"
    then = f"then try {attempt + 1} of {policy.attempts}"
    if isinstance(error, RateLimited):
        status = f", HTTP {error.status_code}" if error.status_code else ""
        return f"{who} asked for a pause (rate limited{status}); {then}"
    if isinstance(error, ProviderError) and error.status_code:
        return f"{who} answered HTTP {error.status_code}; {then}"
    if isinstance(error, httpx.TransportError):
        return f"{who} could not be reached ({type(error).__name__}); {then}"
    return f"{who} failed ({type(error).__name__}); {then}"


def is_retryable(error: Exception) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, ProviderError) and error.retryable


def with_retry(
    start: Callable[[], Exchange[T]],
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
) -> Exchange[T]:
    """Run ``start()``'s exchange, starting it afresh after each retryable failure.

    Every pause passes through here, the exchange's own (a pacer's, a penalty window's)
    and the backoff between tries: one that would end past the deadline, or that no one
    could wait out (``inf``, days), fails the batch at once with ``RateLimited``.
    """
    began = clock()
    attempt = 1
    while True:
        try:
            return (yield from _bounded(start(), policy, began, clock))
        except Exception as error:
            final = isinstance(error, _WaitRefused) or attempt >= policy.attempts
            if final or not is_retryable(error):
                raise
            pause = policy.pause(attempt, error)
            if policy.too_long(pause, clock() - began):
                if isinstance(error, RateLimited):
                    raise _past_deadline(pause, policy, error) from error
                raise
            logger.debug(
                "retrying after %s (attempt %d, pause %.2fs)", _describe(error), attempt, pause
            )
            announce_wait(pause, _why_again(error, attempt, policy))
            yield Sleep(pause, "rate-limited" if isinstance(error, RateLimited) else "retry")
            attempt += 1


def _bounded(
    job: Exchange[T], policy: RetryPolicy, began: float, clock: Callable[[], float]
) -> Exchange[T]:
    """Pass ``job``'s steps through, refusing a pause that the deadline cannot hold."""
    reply: httpx.Response | None = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = job.throw(error) if error is not None else job.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply, error = None, None
            if isinstance(step, Sleep) and policy.too_long(step.seconds, clock() - began):
                raise _past_deadline(step.seconds, policy, None, step.reason)
            try:
                reply = yield step
            except Exception as thrown:  # a transport error for the job to see
                error = thrown
    finally:
        job.close()


class _WaitRefused(RateLimited):
    """A wait not worth starting: final for this batch, since retrying meets it again."""


def _past_deadline(
    seconds: float, policy: RetryPolicy, cause: RateLimited | None, reason: str = ""
) -> RateLimited:
    limit = "" if policy.deadline is None else f" of {policy.deadline:g}s"
    wait = f"{seconds:.0f}s" if seconds <= LONGEST_WAIT else "more than a day"
    if cause is None and reason == "pace":  # the client's own pacing: no vendor answer to quote
        return _WaitRefused(
            f"keeping under the vendor's rate limit would wait {wait} before sending, past "
            f"the retry deadline{limit} (lower max_concurrency, or raise the deadline)",
            status_code=None,
        )
    if cause is None:
        return _WaitRefused(f"the vendor asked to wait {wait}, past the retry deadline{limit}")
    return _WaitRefused(
        f"{cause.message}; waiting {wait} would pass the retry deadline{limit}",
        retry_after=cause.retry_after,
        provider=cause.provider,
        status_code=cause.status_code,
        code=cause.code,
        request_id=cause.request_id,
    )


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
        if policy.too_long(pause, clock() - began):
            break
        logger.debug("retrying %d recipient(s) the vendor failed (attempt %d)", len(again), attempt)
        announce_wait(
            pause, f"the vendor failed {len(again)} recipient(s); then sending them again"
        )
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
