"""The provider contract: behaviours every provider must show through Client and AsyncClient.

A provider's test module subclasses ``ProviderContract`` and overrides the ``client``
fixture to yield a ``Client`` (or ``blocking(AsyncClient)``) connected to a fresh provider,
usually one talking to the vendor's emulator::

    class TestMyProvider(ProviderContract):
        @pytest.fixture(params=["sync", "async"])
        def client(self, request):
            ...

Tests skip what the provider does not declare, and check that undeclared operations raise
``UnsupportedOperation``. This module needs pytest, so import it only from tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import httpx
import pytest

from .._client import AsyncClient, Operation
from .._errors import InvalidNumber, UnsupportedOperation
from .._models import BatchResult, Capability, OptOut, Page, RecipientResult, Status
from .._provider import Provider
from ..emulators import ASGIApp, serve_in_thread

__all__ = [
    "AnyClient",
    "BlockingASGITransport",
    "BlockingAsyncClient",
    "ProviderContract",
    "SwappableServer",
    "blocking",
    "fresh_numbers",
]


class AnyClient(Protocol):
    """What the contract drives: Client, or an AsyncClient made blocking."""

    provider: Provider

    def add(self, sender: str, recipients: Iterable[str]) -> BatchResult: ...
    def remove(self, sender: str, recipients: Iterable[str]) -> BatchResult: ...
    def check(self, sender: str, recipients: Iterable[str]) -> BatchResult: ...
    def stream(
        self, operation: Operation, sender: str, recipients: Iterable[str]
    ) -> Iterator[RecipientResult]: ...
    def list_page(
        self,
        sender: str | None = ...,
        *,
        status: Status | str | None = ...,
        page_size: int | None = ...,
        cursor: str | None = ...,
    ) -> Page: ...
    def list(
        self,
        sender: str | None = ...,
        *,
        status: Status | str | None = ...,
        page_size: int | None = ...,
    ) -> Iterator[OptOut]: ...


class BlockingAsyncClient:
    """Runs an AsyncClient on a private event loop so the same tests drive both clients."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.provider = client.provider
        self._loop = asyncio.new_event_loop()

    def _wait(self, awaitable: Any) -> Any:
        return self._loop.run_until_complete(awaitable)

    def add(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        result: BatchResult = self._wait(self.client.add(sender, recipients))
        return result

    def remove(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        result: BatchResult = self._wait(self.client.remove(sender, recipients))
        return result

    def check(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        result: BatchResult = self._wait(self.client.check(sender, recipients))
        return result

    def stream(
        self, operation: Operation, sender: str, recipients: Iterable[str]
    ) -> Iterator[RecipientResult]:
        async def drain() -> list[RecipientResult]:
            return [item async for item in self.client.stream(operation, sender, recipients)]

        return iter(self._wait(drain()))

    def list_page(self, sender: str | None = None, **kwargs: Any) -> Page:
        page: Page = self._wait(self.client.list_page(sender, **kwargs))
        return page

    def list(self, sender: str | None = None, **kwargs: Any) -> Iterator[OptOut]:
        async def drain() -> list[OptOut]:
            return [item async for item in self.client.list(sender, **kwargs)]

        return iter(self._wait(drain()))

    def close(self) -> None:
        try:
            self._wait(self.client.aclose())
        finally:
            self._loop.close()


def blocking(client: AsyncClient) -> BlockingAsyncClient:
    return BlockingAsyncClient(client)


_counter = itertools.count()


def fresh_numbers(count: int) -> list[str]:
    """Distinct, valid US numbers (area code 202) no other call of this process handed out."""
    if not 0 < count <= 10_000:
        raise ValueError("between 1 and 10,000 numbers per call")
    exchange = 200 + next(_counter) % 700
    return [f"+1202{exchange}{line:04d}" for line in range(count)]


def _assert_order(result: BatchResult, expected: list[str]) -> None:
    assert [item.recipient for item in result] == expected


class ProviderContract:
    """Behaviours every provider must pass. Override ``client``."""

    sender = "+18005550100"
    other_sender = "+18005550111"
    keeps_opt_ins = True
    """False for a vendor whose list holds opt-outs only (AWS): a removed number leaves
    the list, so a listing of every status shows no opt-in for it."""

    @pytest.fixture
    def client(self) -> Iterator[AnyClient]:
        raise NotImplementedError("override the client fixture")

    @staticmethod
    def requires(client: AnyClient, *capabilities: Capability) -> None:
        missing = [c.value for c in capabilities if c not in client.provider.capabilities]
        if missing:
            pytest.skip(f"provider {client.provider.name!r} does not offer {', '.join(missing)}")

    def test_add_then_check(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.CHECK)
        opted, untouched = fresh_numbers(3), fresh_numbers(1)
        added = client.add(self.sender, opted)
        assert added.ok
        assert [item.opted_out for item in added] == [True, True, True]
        checked = client.check(self.sender, [*opted, *untouched])
        assert checked.ok
        assert [item.opted_out for item in checked] == [True, True, True, False]

    def test_remove_undoes_add(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.REMOVE, Capability.CHECK)
        numbers = fresh_numbers(2)
        client.add(self.sender, numbers).raise_for_failures()
        removed = client.remove(self.sender, numbers[:1])
        assert removed.ok
        assert [item.opted_out for item in removed] == [False]
        assert [item.opted_out for item in client.check(self.sender, numbers)] == [False, True]

    def test_opt_outs_belong_to_one_sender(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.CHECK)
        numbers = fresh_numbers(1)
        client.add(self.sender, numbers).raise_for_failures()
        assert [item.opted_out for item in client.check(self.other_sender, numbers)] == [False]

    def test_results_follow_input_order(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.CHECK)
        numbers = fresh_numbers(30)
        client.add(self.sender, numbers[::3]).raise_for_failures()
        shuffled = numbers[:]
        random.Random(7).shuffle(shuffled)
        result = client.check(self.sender, shuffled)
        _assert_order(result, shuffled)
        assert [item.opted_out for item in result] == [n in numbers[::3] for n in shuffled]

    def test_duplicates_answered_at_every_position(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.CHECK)
        a, b = fresh_numbers(2)
        client.add(self.sender, [a, a, a]).raise_for_failures()
        result = client.check(self.sender, [a, b, a, a])
        _assert_order(result, [a, b, a, a])
        assert [item.opted_out for item in result] == [True, False, True, True]

    def test_invalid_numbers_fail_alone(self, client: AnyClient) -> None:
        self.requires(client, Capability.CHECK)
        (good,) = fresh_numbers(1)
        result = client.check(self.sender, ["not-a-number", good, "+1555", ""])
        assert [item.ok for item in result] == [False, True, False, False]
        assert [item.opted_out for item in result] == [None, False, None, None]
        assert all(item.error for item in result.failed)
        assert result.failed[0].recipient == "not-a-number"

    def test_answers_are_never_guessed(self, client: AnyClient) -> None:
        self.requires(client, Capability.CHECK)
        for item in client.check(self.sender, fresh_numbers(5)):
            assert item.ok == (item.opted_out is not None)

    def test_more_recipients_than_one_request_holds(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.CHECK)
        numbers = fresh_numbers(min(client.provider.max_batch * 2 + 3, 2_003))
        assert client.add(self.sender, numbers).ok
        result = client.check(self.sender, numbers)
        _assert_order(result, numbers)
        assert all(item.opted_out is True for item in result)

    def test_streaming_matches_collected_results(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.CHECK)
        numbers = fresh_numbers(12)
        client.add(self.sender, numbers[:6]).raise_for_failures()
        recipients = iter([*numbers, "bad"])
        streamed = list(client.stream("check", self.sender, recipients))
        assert [item.opted_out for item in streamed] == [True] * 6 + [False] * 6 + [None]

    def test_empty_input_is_an_empty_result(self, client: AnyClient) -> None:
        self.requires(client, Capability.CHECK)
        assert len(client.check(self.sender, [])) == 0

    def test_invalid_sender_raises_before_any_request(self, client: AnyClient) -> None:
        self.requires(client, Capability.CHECK)
        with pytest.raises(InvalidNumber):
            client.check("not a sender", fresh_numbers(1))

    def test_paging_loses_and_repeats_nothing(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.LIST)
        first, second = fresh_numbers(23), fresh_numbers(11)
        client.add(self.sender, first).raise_for_failures()
        client.add(self.other_sender, second).raise_for_failures()
        ours = {(self.sender, n) for n in first} | {(self.other_sender, n) for n in second}
        seen: list[tuple[str, str]] = []
        cursor: str | None = None
        while True:
            page = client.list_page(page_size=7, cursor=cursor)
            assert len(page.items) <= 7
            seen.extend((r.sender, r.recipient) for r in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen))
        assert ours <= set(seen)
        assert {(r.sender, r.recipient) for r in client.list(page_size=5)} == set(seen)

    def test_listing_filters_by_sender_and_status(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.REMOVE, Capability.LIST)
        numbers = fresh_numbers(4)
        client.add(self.sender, numbers).raise_for_failures()
        client.remove(self.sender, numbers[:1]).raise_for_failures()
        records = {r.recipient: r for r in client.list(self.sender, status="all")}
        assert {n: records[n].status for n in numbers[1:]} == dict.fromkeys(
            numbers[1:], Status.OPTED_OUT
        )
        if self.keeps_opt_ins:
            assert records[numbers[0]].status is Status.OPTED_IN
            assert numbers[0] in {r.recipient for r in client.list(self.sender, status="opted-in")}
        else:
            assert numbers[0] not in records
            assert list(client.list(self.sender, status="opted-in")) == []
        opted_out = {r.recipient for r in client.list(self.sender)}
        assert set(numbers[1:]) <= opted_out
        assert numbers[0] not in opted_out
        assert all(r.sender == self.sender for r in client.list(self.sender, status="all"))

    def test_records_are_normalised(self, client: AnyClient) -> None:
        self.requires(client, Capability.ADD, Capability.LIST)
        (number,) = fresh_numbers(1)
        client.add(self.sender, [number]).raise_for_failures()
        record = next(r for r in client.list(self.sender) if r.recipient == number)
        assert record.status is Status.OPTED_OUT
        assert record.country == "US"
        assert record.provider == client.provider.name

    def test_undeclared_operations_raise(self, client: AnyClient) -> None:
        calls: dict[Capability, Callable[[], object]] = {
            Capability.ADD: lambda: client.add(self.sender, fresh_numbers(1)),
            Capability.REMOVE: lambda: client.remove(self.sender, fresh_numbers(1)),
            Capability.CHECK: lambda: client.check(self.sender, fresh_numbers(1)),
            Capability.LIST: lambda: client.list_page(),
        }
        for capability, call in calls.items():
            if capability in client.provider.capabilities:
                continue
            with pytest.raises(UnsupportedOperation) as raised:
                call()
            assert client.provider.name in str(raised.value)
            assert capability.value in str(raised.value)


class BlockingASGITransport(httpx.BaseTransport):
    """Serves a blocking ``httpx.Client`` from an ASGI app in-process (an emulator, say).

    Each request runs on a fresh event loop, so it works from any thread.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()

        async def run() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(run())


class SwappableServer:
    """One loopback server for a whole test session, serving whichever app a test puts in
    ``app``: starting uvicorn for each test would cost more than most tests do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.url = ""
        """Its base URL while ``running``."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    @contextlib.contextmanager
    def running(self) -> Iterator[SwappableServer]:
        """Serve on 127.0.0.1 until the block ends."""
        self.url, stop = serve_in_thread(self)
        try:
            yield self
        finally:
            stop()
