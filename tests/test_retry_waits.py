"""Waits a server sets are bounded: past the deadline or absurd, the batch fails at once.

A ``Retry-After`` of ``inf`` or ``1e999`` once reached ``time.sleep`` and raised
``OverflowError``; a pacer's pause past the deadline was waited out in full. Every pause
now passes the retry policy, and one it cannot hold fails the batch with ``RateLimited``.

Every pause the policy does take is announced on the logger ``optouts.wait``: at INFO, with
how long and why, when it lasts over two seconds (the command line shows those on a
terminal), at DEBUG otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import httpx
import pytest

import optouts
from fakevendor import KEY, Backend, FakeVendor, status
from optouts import (
    Capability,
    Exchange,
    Outcome,
    ProviderError,
    RateLimited,
    Results,
    RetryPolicy,
    Sleep,
    _retry,
)
from optouts._retry import LONGEST_WAIT, retry_items, with_retry
from optouts.testing import AnyClient, blocking

SENDER = "+18005550100"
A = "+12025550101"
B = "+12025550102"


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Pauses the runners were asked for, recorded instead of waited."""
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def record_async(seconds: float) -> None:
        if seconds:
            pauses.append(seconds)
        else:
            await real_sleep(0)

    monkeypatch.setattr("optouts._http.time.sleep", pauses.append)
    monkeypatch.setattr("optouts._http.asyncio.sleep", record_async)
    return pauses


@contextlib.contextmanager
def open_client(
    kind: str, provider: optouts.Provider, policy: RetryPolicy, backend: Backend
) -> Iterator[AnyClient]:
    """A Client or an AsyncClient (driven on a private loop) over ``backend``."""
    transport = httpx.MockTransport(backend)
    if kind == "sync":
        with optouts.Client(
            provider, retry=policy, http_client=httpx.Client(transport=transport)
        ) as client:
            yield client
        return
    http = httpx.AsyncClient(transport=transport)
    wrapped = blocking(optouts.AsyncClient(provider, retry=policy, http_client=http))
    try:
        yield wrapped
    finally:
        wrapped.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("after", ["inf", "1e999", "1e300", str(10**30)])
@pytest.mark.parametrize("deadline", [None, 60.0])
def test_an_absurd_retry_after_fails_the_batch_without_waiting(
    kind: str, after: str, deadline: float | None, slept: list[float]
) -> None:
    backend = Backend()
    backend.faults = [status(429, {"retry-after": after})]
    provider = FakeVendor(KEY, "https://vendor.test")
    with open_client(kind, provider, RetryPolicy(attempts=5, deadline=deadline), backend) as c:
        (item,) = c.check(SENDER, [A])
    assert (item.ok, item.opted_out, item.status_code) == (False, None, 429)
    assert "retry deadline" in (item.error or "")
    assert slept == []
    assert len(backend.received) == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_retry_after_that_is_not_a_number_means_the_usual_backoff(
    kind: str, slept: list[float]
) -> None:
    backend = Backend()
    backend.faults = [status(429, {"retry-after": "nan"})]
    policy = RetryPolicy(attempts=2, backoff=0.25, cap=0.25)
    with open_client(kind, FakeVendor(KEY, "https://vendor.test"), policy, backend) as c:
        (item,) = c.check(SENDER, [A])
    assert item.ok
    assert len(slept) == 1
    assert 0 <= slept[0] <= 0.25


class PacedVendor(optouts.Provider):
    """Answers in-process after asking for a pause first, as a pacer over its limit does."""

    name: ClassVar[str] = "paced"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHECK})
    pause = 0.0

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        yield Sleep(self.pause, "pace")
        return dict.fromkeys(recipients, Outcome(ok=True, opted_out=False))


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(("pause", "waited"), [(5.0, [5.0]), (600.0, []), (math.inf, [])])
def test_a_pace_past_the_deadline_fails_at_once(
    kind: str, pause: float, waited: list[float], slept: list[float]
) -> None:
    provider = PacedVendor()
    provider.pause = pause
    with open_client(kind, provider, RetryPolicy(attempts=3, deadline=300), Backend()) as client:
        (item,) = client.check(SENDER, [A])
    assert slept == waited
    if waited:
        assert (item.ok, item.opted_out) == (True, False)
    else:
        # the client's own pacing refused the wait: no vendor answered 429
        assert (item.ok, item.opted_out, item.status_code) == (False, None, None)
        assert "keeping under the vendor's rate limit" in (item.error or "")
        assert "past the retry deadline of 300s" in (item.error or "")


def test_without_a_deadline_a_wait_longer_than_a_day_is_refused() -> None:
    policy = RetryPolicy(deadline=None)
    assert not policy.too_long(LONGEST_WAIT, 0.0)
    assert policy.too_long(LONGEST_WAIT + 1, 0.0)
    assert policy.too_long(math.nan, 0.0)


def test_the_exchange_is_closed_when_its_pause_is_refused() -> None:
    closed: list[bool] = []

    def exchange() -> Exchange[int]:
        try:
            yield Sleep(1e9, "pace")
            return 1
        finally:
            closed.append(True)

    job = with_retry(exchange, RetryPolicy())
    with pytest.raises(RateLimited, match="past the retry deadline"):
        job.send(None)
    assert closed == [True]


def test_backoff_never_overflows_however_many_attempts() -> None:
    policy = RetryPolicy(attempts=5000, backoff=1.0, cap=30.0)
    assert 0 <= policy.pause(4000, RuntimeError("boom"), random.Random(1)) <= 30.0


# Waits a person can see


def failing(*errors: Exception) -> Callable[[], Exchange[str]]:
    """An exchange that raises each of ``errors`` in turn, then answers "done"."""
    left = list(errors)

    def start() -> Exchange[str]:
        if left:
            raise left.pop(0)
        return "done"
        yield  # pragma: no cover - makes this a generator

    return start


def drive(job: Exchange[Any]) -> tuple[Any, list[Sleep]]:
    """Run ``job`` to its answer, noting its pauses instead of taking them."""
    pauses: list[Sleep] = []
    try:
        step = next(job)
        while True:
            assert isinstance(step, Sleep)
            pauses.append(step)
            step = job.send(None)
    except StopIteration as stop:
        return stop.value, pauses


def waits(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    """The wait announcements at ``level`` (the tests below log ``optouts.wait`` at DEBUG)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "optouts.wait" and record.levelno == level
    ]


@pytest.fixture
def wait_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """``caplog`` holding every wait announcement, the DEBUG ones too."""
    caplog.set_level(logging.DEBUG, logger="optouts.wait")
    return caplog


@pytest.fixture
def longest_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full jitter at its ceiling, so a backoff's length is known."""
    monkeypatch.setattr(_retry._jitter, "uniform", lambda low, high: high)


def test_a_retry_after_over_two_seconds_says_how_long_and_why(
    wait_log: pytest.LogCaptureFixture,
) -> None:
    limited = RateLimited("slow down", retry_after=58, provider="ringcentral")
    answer, pauses = drive(with_retry(failing(limited), RetryPolicy()))
    assert answer == "done"
    assert [pause.seconds for pause in pauses] == [58]
    assert waits(wait_log) == [
        "waiting 58 s: ringcentral asked for a pause (rate limited, HTTP 429); then try 2 of 4"
    ]


def test_a_long_backoff_is_announced_and_a_short_one_only_in_the_debug_log(
    wait_log: pytest.LogCaptureFixture, longest_backoff: None
) -> None:
    down = [ProviderError("unavailable", provider="azure", status_code=503) for _ in range(3)]
    policy = RetryPolicy(attempts=4, backoff=1.0, cap=30.0)
    answer, pauses = drive(with_retry(failing(*down), policy))
    assert answer == "done"
    assert [pause.seconds for pause in pauses] == [1.0, 2.0, 4.0]
    assert waits(wait_log) == ["waiting 4 s: azure answered HTTP 503; then try 4 of 4"]
    assert waits(wait_log, logging.DEBUG) == [
        "waiting 1 s: azure answered HTTP 503; then try 2 of 4",
        "waiting 2 s: azure answered HTTP 503; then try 3 of 4",
    ]


def test_long_waits_are_said_in_minutes_and_never_quote_the_error(
    wait_log: pytest.LogCaptureFixture,
) -> None:
    secretish = RateLimited("Bearer rcemu-at-SECRET refused", retry_after=240, provider="x")
    drive(with_retry(failing(secretish), RetryPolicy()))
    (line,) = waits(wait_log)
    assert line.startswith("waiting 4 min: x asked for a pause")
    assert "SECRET" not in wait_log.text


def test_a_wait_past_the_deadline_is_not_announced(wait_log: pytest.LogCaptureFixture) -> None:
    limited = RateLimited("slow down", retry_after=3600, provider="ringcentral")
    with pytest.raises(RateLimited):
        drive(with_retry(failing(limited), RetryPolicy(deadline=300)))
    assert waits(wait_log) == []
    assert waits(wait_log, logging.DEBUG) == []


def test_resending_failed_recipients_after_a_long_pause_is_announced(
    wait_log: pytest.LogCaptureFixture, longest_backoff: None
) -> None:
    calls: list[Sequence[str]] = []

    def send(recipients: Sequence[str]) -> Exchange[Results]:
        calls.append(list(recipients))
        if len(calls) == 1:
            return {A: Outcome.NOT_OPTED_OUT, B: Outcome.failure("busy", 503)}
        return dict.fromkeys(recipients, Outcome.NOT_OPTED_OUT)
        yield  # pragma: no cover - makes this a generator

    answers, pauses = drive(retry_items(send, [A, B], RetryPolicy(backoff=5.0)))
    assert all(outcome.ok for outcome in answers.values())
    assert calls == [[A, B], [B]]
    assert [pause.seconds for pause in pauses] == [5.0]
    assert waits(wait_log) == [
        "waiting 5 s: the vendor failed 1 recipient(s); then sending them again"
    ]
