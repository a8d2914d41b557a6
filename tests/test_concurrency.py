"""Batches in flight at once: order, bounds, cancellation, and inputs read lazily."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

import optouts
from fakevendor import KEY, Backend, FakeVendor, status
from optouts import AuthenticationError, ConfigurationError, RetryPolicy

SENDER = "+18005550100"
NUMBERS = [f"+1202555{i:04d}" for i in range(120)]  # 40 batches of 3


class InFlight:
    """Counts requests being served at once, across threads or tasks."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


def test_threads_keep_input_order_and_the_bound() -> None:
    backend, gauge, rng = Backend(), InFlight(), random.Random(1)
    backend.opted_out = {(SENDER, n) for n in NUMBERS[::7]}

    def slow(request: httpx.Request) -> httpx.Response:
        gauge.enter()
        try:
            time.sleep(rng.random() / 200)  # finish out of order
            return backend(request)
        finally:
            gauge.leave()

    http = httpx.Client(transport=httpx.MockTransport(slow))
    provider = FakeVendor(KEY, "https://vendor.test")
    with optouts.Client(provider, max_concurrency=5, http_client=http) as client:
        shuffled = NUMBERS[::-1]
        result = client.check(SENDER, shuffled)
    assert [item.recipient for item in result] == shuffled
    assert [item.opted_out for item in result] == [n in NUMBERS[::7] for n in shuffled]
    assert 1 < gauge.most <= 5
    assert result.requests == 40


def test_tasks_keep_input_order_and_the_bound() -> None:
    backend, gauge, rng = Backend(), InFlight(), random.Random(2)

    async def slow(request: httpx.Request) -> httpx.Response:
        gauge.enter()
        try:
            await asyncio.sleep(rng.random() / 200)
            return backend(request)
        finally:
            gauge.leave()

    async def main() -> optouts.BatchResult:
        http = httpx.AsyncClient(transport=httpx.MockTransport(slow))
        provider = FakeVendor(KEY, "https://vendor.test")
        async with optouts.AsyncClient(provider, max_concurrency=6, http_client=http) as client:
            return await client.add(SENDER, NUMBERS)

    result = asyncio.run(main())
    assert [item.recipient for item in result] == NUMBERS
    assert result.ok
    assert 1 < gauge.most <= 6
    assert backend.opted_out == {(SENDER, n) for n in NUMBERS}


def test_a_fatal_error_stops_every_batch_in_flight() -> None:
    backend = Backend()
    backend.faults = [status(401)] * 50
    seen: list[float] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        await asyncio.sleep(0.001)
        return backend(request)

    async def main() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(slow))
        provider = FakeVendor(KEY, "https://vendor.test")
        async with optouts.AsyncClient(provider, max_concurrency=4, http_client=http) as client:
            with pytest.raises(AuthenticationError):
                await client.check(SENDER, NUMBERS)
            assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())
    assert len(seen) < 40  # the call stopped; it did not send all 40 batches


def test_streaming_reads_its_input_lazily(empty_ledger: str) -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield f"+1202{2000000 + i}"

    with optouts.Client("local", database=empty_ledger) as client:
        results = client.stream("check", SENDER, endless())
        first = next(results)
        assert first.opted_out is False
        assert pulled <= 400_000  # two windows of the ledger (200,000 each), not the million


def test_ledger_ignores_concurrency_it_cannot_use(database: str) -> None:
    with optouts.Client("local", database=database, max_concurrency=8) as client:
        assert client.max_concurrency == 1


@pytest.mark.parametrize("value", [0, -1, "many"])
def test_bad_concurrency_names_the_setting(value: object, database: str) -> None:
    with pytest.raises(ConfigurationError, match="max_concurrency.*OPTOUTS_MAX_CONCURRENCY"):
        optouts.Client("local", database=database, max_concurrency=value)  # type: ignore[arg-type]


def test_concurrency_from_the_environment(monkeypatch: pytest.MonkeyPatch, database: str) -> None:
    monkeypatch.setenv("OPTOUTS_MAX_CONCURRENCY", "3")
    provider = FakeVendor(KEY, "https://vendor.test")
    with optouts.Client(provider, retry=RetryPolicy(attempts=1)) as client:
        assert client.max_concurrency == 3


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_refusal_is_not_repeated_for_every_batch(concurrency: int) -> None:
    backend = Backend()
    backend.faults = [status(401)] * 1000
    numbers = [f"+1202{2000000 + i}" for i in range(3000)]  # 1000 batches of 3
    http = httpx.Client(transport=httpx.MockTransport(backend))
    provider = FakeVendor(KEY, "https://vendor.test")
    client = optouts.Client(provider, max_concurrency=concurrency, http_client=http)
    with client, pytest.raises(AuthenticationError, match="key refused"):
        client.add(SENDER, numbers)
    assert len(backend.received) <= 2 * concurrency + 1
