"""End to end through optouts.Client (emulator on loopback) and optouts.AsyncClient (emulator
in-process), with every request body and answer checked against the official schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

import optouts
from optouts_azure import DEFAULT_ACCESS_KEY, AzureEmulator, AzureProvider

SENDER = "+18005550100"
FAST = optouts.RetryPolicy(backoff=0.001, cap=0.01)


def numbers(count: int, exchange: int = 555) -> list[str]:
    return [f"+1202{exchange:03d}{i:04d}" for i in range(count)]


def sent_recipients(requests: list[httpx.Request]) -> list[list[str]]:
    return [[r["to"] for r in json.loads(req.content)["recipients"]] for req in requests]


@pytest.fixture
def sync_client(
    served: Any, emulator: AzureEmulator, conformance: Callable[[Any], Any]
) -> Iterator[tuple[optouts.Client, Any]]:
    transport = conformance(httpx.HTTPTransport())
    http = httpx.Client(transport=transport)
    client = optouts.Client(
        "azure",
        connection_string=emulator.connection_string(served.url),
        http_client=http,
        retry=FAST,
    )
    with client, http:
        yield client, transport


@pytest.fixture
async def async_client(
    emulator: AzureEmulator, connection_string: str, conformance: Callable[[Any], Any]
) -> AsyncIterator[tuple[optouts.AsyncClient, Any]]:
    transport = conformance(httpx.ASGITransport(app=emulator))
    async with (
        httpx.AsyncClient(transport=transport) as http,
        optouts.AsyncClient(
            "azure", connection_string=connection_string, http_client=http, retry=FAST
        ) as client,
    ):
        yield client, transport


# --- sync, over loopback ---------------------------------------------------------------------


def test_sync_round_trip(sync_client: tuple[optouts.Client, Any], emulator: AzureEmulator) -> None:
    client, transport = sync_client
    a, b = numbers(2)
    assert [i.opted_out for i in client.add(SENDER, [a, b])] == [True, True]
    assert [i.opted_out for i in client.remove(SENDER, [b])] == [False]
    assert [i.opted_out for i in client.check(SENDER, [a, b])] == [True, False]
    assert emulator.opted_out(SENDER) == {a}
    assert len(transport.requests) == 3


def test_sync_batches_250_into_3_requests(
    sync_client: tuple[optouts.Client, Any], emulator: AzureEmulator
) -> None:
    client, transport = sync_client
    many = numbers(250)
    result = client.add(SENDER, many)
    assert result.ok
    assert result.requests == 3
    # The sync client sends batches from a thread pool: they may arrive in any order.
    assert sorted(len(batch) for batch in sent_recipients(transport.requests)) == [50, 100, 100]
    assert emulator.opted_out(SENDER) == set(many)


def test_sync_order_duplicates_and_invalid_numbers(
    sync_client: tuple[optouts.Client, Any],
) -> None:
    client, transport = sync_client
    a, b, c = numbers(3)
    client.add(SENDER, [b]).raise_for_failures()
    result = client.check(SENDER, [c, "not a number", b, a, b, "+1555"])
    assert [i.recipient for i in result] == [c, "not a number", b, a, b, "+1555"]
    assert [i.opted_out for i in result] == [False, None, True, False, True, None]
    assert sent_recipients(transport.requests)[-1] == [c, b, a]


def test_sync_survives_faults(
    sync_client: tuple[optouts.Client, Any], emulator: AzureEmulator
) -> None:
    client, _ = sync_client
    many = numbers(30)
    emulator.inject("drop", "error", "throttle", "items")
    result = client.add(SENDER, many)
    assert result.ok
    assert emulator.opted_out(SENDER) == set(many)
    assert result.requests >= 5


def test_sync_wrong_key_is_an_authentication_error(served: Any) -> None:
    other = AzureEmulator(access_key="b3RoZXIga2V5")
    served.app = other
    text = f"endpoint={served.url};accesskey={DEFAULT_ACCESS_KEY}"
    with (
        optouts.Client("azure", connection_string=text, retry=FAST) as client,
        pytest.raises(optouts.AuthenticationError) as raised,
    ):
        client.check(SENDER, numbers(1))
    assert raised.value.status_code == 401
    assert raised.value.request_id
    assert DEFAULT_ACCESS_KEY not in str(raised.value)


def test_sync_a_sender_the_resource_does_not_own_is_named(served: Any) -> None:
    served.app = AzureEmulator(senders=[SENDER])
    text = served.app.connection_string(served.url)
    with (
        optouts.Client("azure", connection_string=text, retry=FAST) as client,
        pytest.raises(optouts.AuthenticationError) as raised,
    ):
        client.add("+14255550123", numbers(1))
    assert raised.value.status_code == 401
    assert "the sender +14255550123 may not belong to this resource" in str(raised.value)
    assert DEFAULT_ACCESS_KEY not in str(raised.value)
    assert served.app.opted_out("+14255550123") == set()


@pytest.fixture
def quick_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AzureProvider, "recheck_pause", 0.001)


@pytest.mark.usefixtures("quick_recheck")
def test_sync_check_survives_one_transient_400(
    sync_client: tuple[optouts.Client, Any], emulator: AzureEmulator
) -> None:
    client, transport = sync_client
    a, b = numbers(2, 570)
    client.add(SENDER, [a]).raise_for_failures()
    emulator.inject("invalid_parameter")
    result = client.check(SENDER, [a, b])
    assert [i.opted_out for i in result] == [True, False]
    assert [r.url.path for r in transport.requests] == [
        "/sms/optouts:add",
        "/sms/optouts:check",
        "/sms/optouts:check",
    ]


@pytest.mark.usefixtures("quick_recheck")
def test_sync_check_fails_on_a_second_transient_400(
    sync_client: tuple[optouts.Client, Any], emulator: AzureEmulator
) -> None:
    client, transport = sync_client
    emulator.inject("invalid_parameter", "invalid_parameter", "invalid_parameter")
    with pytest.raises(optouts.ProviderError, match="Request parameter") as raised:
        client.check(SENDER, numbers(1, 571))
    assert raised.value.status_code == 400
    assert len(transport.requests) == 2  # FAST allows 4 attempts; this 400 gets two


def test_sync_unknown_api_version(served: Any, emulator: AzureEmulator) -> None:
    text = emulator.connection_string(served.url)
    with (
        optouts.Client("azure", connection_string=text, api_version="2099-01-01") as client,
        pytest.raises(optouts.ProviderError) as raised,
    ):
        client.check(SENDER, numbers(1))
    assert raised.value.code == "InvalidApiVersion"


def test_list_is_unsupported(sync_client: tuple[optouts.Client, Any]) -> None:
    client, transport = sync_client
    with pytest.raises(optouts.UnsupportedOperation, match="no list API"):
        client.list_page()
    assert transport.requests == []


# --- async, in-process -------------------------------------------------------------------------


async def test_async_round_trip(async_client: tuple[optouts.AsyncClient, Any]) -> None:
    client, transport = async_client
    a, b = numbers(2, 556)
    assert (await client.add(SENDER, [a, b])).ok
    await client.remove(SENDER, [a])
    assert [i.opted_out for i in await client.check(SENDER, [a, b])] == [False, True]
    assert len(transport.requests) == 3


async def test_async_batches_250_into_3_requests(
    async_client: tuple[optouts.AsyncClient, Any],
) -> None:
    client, transport = async_client
    many = numbers(250, 557)
    assert (await client.add(SENDER, many)).ok
    result = await client.check(SENDER, [*reversed(many), many[0]])
    assert result.requests == 3
    assert [i.recipient for i in result] == [*reversed(many), many[0]]
    assert all(i.opted_out is True for i in result)
    assert [len(batch) for batch in sent_recipients(transport.requests)] == [100, 100, 50] * 2


async def test_async_per_recipient_500s_are_retried_alone(
    async_client: tuple[optouts.AsyncClient, Any], emulator: AzureEmulator
) -> None:
    client, transport = async_client
    many = numbers(10, 558)
    emulator.inject("items")
    result = await client.add(SENDER, many)
    assert result.ok
    first, second = sent_recipients(transport.requests)
    assert first == many
    assert 0 < len(second) < len(many)
    assert set(second) < set(many)
    assert emulator.opted_out(SENDER) == set(many)


async def test_async_429_is_honoured(
    async_client: tuple[optouts.AsyncClient, Any], emulator: AzureEmulator
) -> None:
    client, _ = async_client
    emulator.inject("throttle", "throttle")
    result = await client.check(SENDER, numbers(3, 559))
    assert result.ok
    assert result.requests == 3


async def test_async_persistent_item_failures_are_reported(
    emulator: AzureEmulator, connection_string: str
) -> None:
    emulator.inject(*("items",) * 10)
    policy = optouts.RetryPolicy(attempts=2, backoff=0.001)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        client = optouts.AsyncClient(
            "azure", connection_string=connection_string, http_client=http, retry=policy
        )
        result = await client.add(SENDER, numbers(1, 560))
    assert not result.ok
    assert result[0].status_code == 500
    assert result[0].error == "Internal Server Error"
    assert result[0].opted_out is None


@pytest.mark.usefixtures("quick_recheck")
async def test_async_check_survives_one_transient_400(
    async_client: tuple[optouts.AsyncClient, Any], emulator: AzureEmulator
) -> None:
    client, transport = async_client
    emulator.inject("invalid_parameter")
    result = await client.check(SENDER, numbers(3, 572))
    assert result.ok
    assert [i.opted_out for i in result] == [False] * 3
    assert len(transport.requests) == 2


async def test_async_streaming(async_client: tuple[optouts.AsyncClient, Any]) -> None:
    client, _ = async_client
    many = numbers(5, 561)
    await client.add(SENDER, many[:2])
    streamed = [item async for item in client.stream("check", SENDER, iter(many))]
    assert [i.opted_out for i in streamed] == [True, True, False, False, False]


async def test_async_list_is_unsupported(async_client: tuple[optouts.AsyncClient, Any]) -> None:
    client, _ = async_client
    with pytest.raises(optouts.UnsupportedOperation):
        await client.list_page()


async def test_every_request_conforms_to_the_schema(
    async_client: tuple[optouts.AsyncClient, Any], emulator: AzureEmulator
) -> None:
    client, transport = async_client
    emulator.inject("items", "error", "throttle")
    many = numbers(120, 562)
    await client.add(SENDER, many)
    await client.remove(SENDER, many[:7])
    await client.check(SENDER, many)
    assert len(transport.requests) >= 6  # each one validated by the transport on its way
