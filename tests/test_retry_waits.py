"""Waits a server sets are bounded: past the deadline or absurd, the batch fails at once.

A ``Retry-After`` of ``inf`` or ``1e999`` once reached ``time.sleep`` and raised
``OverflowError``; a pacer's pause past the deadline was waited out in full. Every pause
now passes the retry policy, and one it cannot hold fails the batch with ``RateLimited``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Iterator, Sequence
from typing import ClassVar

import httpx
import pytest

import optouts
from fakevendor import KEY, Backend, FakeVendor, status
from optouts import Capability, Exchange, Outcome, RateLimited, Results, RetryPolicy, Sleep
from optouts._retry import LONGEST_WAIT, with_retry
from optouts.testing import AnyClient, blocking

SENDER = "+18005550100"
A = "+12025550101"


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
        assert (item.ok, item.opted_out, item.status_code) == (False, None, 429)
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
