"""What the client does for every provider: dedupe, chunk, order, retry, page, report.

Each test runs through both Client and AsyncClient against a scripted vendor, so the
behaviour is observed on the wire rather than assumed. Batches go one at a time here so
scripted faults meet known batches; test_concurrency covers batches in flight together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import optouts
from fakevendor import KEY, Backend, FakeVendor, disconnect, status
from optouts import (
    AuthenticationError,
    InvalidNumber,
    ProviderError,
    RecipientsFailed,
    RetryPolicy,
    UnsupportedOperation,
)
from optouts.testing import AnyClient, blocking

SENDER = "+18005550100"
A, B, C, D, E = (f"+120255501{i:02d}" for i in range(1, 6))
FAST = RetryPolicy(attempts=3, backoff=0.001, cap=0.001)


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Pauses the runners asked for, recorded instead of waited."""
    pauses: list[float] = []

    def record(seconds: float) -> None:
        pauses.append(seconds)

    real_sleep = asyncio.sleep

    async def record_async(seconds: float) -> None:
        if seconds:
            pauses.append(seconds)
        else:
            await real_sleep(0)  # a yield to the event loop, not a pause

    monkeypatch.setattr("optouts._http.time.sleep", record)
    monkeypatch.setattr("optouts._http.asyncio.sleep", record_async)
    return pauses


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, backend: Backend) -> Iterator[AnyClient]:
    provider = FakeVendor(KEY, "https://vendor.test")
    transport = httpx.MockTransport(backend)
    if request.param == "sync":
        with optouts.Client(
            provider,
            retry=FAST,
            max_concurrency=1,
            http_client=httpx.Client(transport=transport),
        ) as c:
            yield c
    else:
        http = httpx.AsyncClient(transport=transport)
        wrapped = blocking(
            optouts.AsyncClient(provider, retry=FAST, max_concurrency=1, http_client=http)
        )
        yield wrapped
        wrapped.close()


def sent_recipients(backend: Backend, path: str = "/check") -> list[list[str]]:
    return [body["to"] for body in backend.requests_to(path)]


def test_duplicates_are_sent_once_and_batches_respect_max_batch(
    client: AnyClient, backend: Backend
) -> None:
    result = client.check(SENDER, [A, B, A, C, D, "bad", E, A])
    assert sent_recipients(backend) == [[A, B, C], [D, E]]
    assert [item.recipient for item in result] == [A, B, A, C, D, "bad", E, A]
    assert result.requests == 2


def test_national_formats_use_default_region(backend: Backend) -> None:
    transport = httpx.MockTransport(backend)
    provider = FakeVendor(KEY, "https://vendor.test")
    with optouts.Client(
        provider, default_region="us", http_client=httpx.Client(transport=transport)
    ) as client:
        result = client.check("(800) 555-0100", ["(202) 555-0101"])
    assert result.sender == SENDER
    assert sent_recipients(backend) == [[A]]


def test_invalid_numbers_never_reach_the_vendor(client: AnyClient, backend: Backend) -> None:
    result = client.check(SENDER, ["nope", "+1555"])
    assert backend.received == []
    assert [item.ok for item in result] == [False, False]


def test_a_recipient_the_vendor_skipped_fails_rather_than_passes(
    client: AnyClient, backend: Backend
) -> None:
    backend.silent.add(B)
    result = client.check(SENDER, [A, B])
    assert [(item.ok, item.opted_out) for item in result] == [(True, False), (False, None)]
    assert "no result" in (result[1].error or "")


def test_unknown_is_none_never_false(client: AnyClient, backend: Backend) -> None:
    backend.unflagged.add(A)
    (item,) = client.check(SENDER, [A])
    assert item.opted_out is None
    assert not item.ok


def test_server_errors_are_retried(client: AnyClient, backend: Backend, slept: list[float]) -> None:
    backend.faults = [status(503), disconnect]
    result = client.check(SENDER, [A])
    assert result.ok
    assert result.requests == 3
    assert len(slept) == 2


def test_exhausted_retries_fail_each_recipient_of_that_batch_only(
    client: AnyClient, backend: Backend, slept: list[float]
) -> None:
    backend.faults = [status(503)] * 3
    result = client.check(SENDER, [A, B, C, D])
    assert [item.ok for item in result] == [False, False, False, True]
    assert {item.status_code for item in result.failed} == {503}
    assert all(item.opted_out is None for item in result.failed)
    assert "vendor failed" in (result[0].error or "")
    with pytest.raises(RecipientsFailed, match="3 recipient"):
        result.raise_for_failures()


def test_per_recipient_server_errors_are_retried_alone(
    client: AnyClient, backend: Backend, slept: list[float]
) -> None:
    backend.item_errors[B] = [500]
    result = client.add(SENDER, [A, B, C])
    assert result.ok
    assert sent_recipients(backend, "/add") == [[A, B, C], [B]]


def test_per_recipient_client_errors_are_not_retried(client: AnyClient, backend: Backend) -> None:
    backend.item_errors[B] = [400]
    result = client.add(SENDER, [A, B])
    assert [item.ok for item in result] == [True, False]
    assert result[1].status_code == 400
    assert len(backend.received) == 1


def test_rate_limits_wait_as_long_as_the_vendor_asks(
    client: AnyClient, backend: Backend, slept: list[float]
) -> None:
    backend.faults = [status(429, {"retry-after": "7"})]
    assert client.check(SENDER, [A]).ok
    assert slept == [7.0]


def test_authentication_failures_stop_the_call(client: AnyClient, backend: Backend) -> None:
    backend.faults = [status(401), status(401)]
    with pytest.raises(AuthenticationError, match="key refused"):
        client.check(SENDER, [A, B, C, D])
    assert len(backend.received) <= 2  # each batch at most once: never retried


def test_a_deadline_stops_retrying(backend: Backend, slept: list[float]) -> None:
    backend.faults = [status(429, {"retry-after": "600"})]
    policy = RetryPolicy(attempts=5, deadline=60)
    transport = httpx.MockTransport(backend)
    provider = FakeVendor(KEY, "https://vendor.test")
    with optouts.Client(provider, retry=policy, http_client=httpx.Client(transport=transport)) as c:
        (item,) = c.check(SENDER, [A])
    assert not item.ok
    assert item.status_code == 429
    assert slept == []


def test_unsupported_operations_name_provider_operation_and_way_around(client: AnyClient) -> None:
    with pytest.raises(UnsupportedOperation) as raised:
        client.remove(SENDER, [A])
    assert str(raised.value) == (
        "provider 'fakevendor' does not support 'remove': remove it in the vendor console"
    )


def test_invalid_sender_raises_before_anything_is_sent(client: AnyClient, backend: Backend) -> None:
    with pytest.raises(InvalidNumber):
        client.add("not a sender", [A])
    assert backend.received == []


def test_listing_follows_cursors_to_the_end(client: AnyClient, backend: Backend) -> None:
    backend.pages = [
        {"records": [{"from": SENDER, "to": A}, {"from": SENDER, "to": B}], "next": "1"},
        {"records": [{"from": SENDER, "to": C}], "next": "2"},
        {"records": [], "next": None},
    ]
    assert [r.recipient for r in client.list(page_size=2)] == [A, B, C]
    assert [body["size"] for body in backend.requests_to("/list")] == [2, 2, 2]
    page = client.list_page(page_size=2, cursor="1")
    assert page.next_cursor == "2"


def test_a_repeated_cursor_is_an_error_not_a_loop(client: AnyClient, backend: Backend) -> None:
    backend.pages = [
        {"records": [{"from": SENDER, "to": A}], "next": "1"},
        {"records": [{"from": SENDER, "to": B}], "next": "1"},
    ]
    with pytest.raises(ProviderError, match="cursor it had already returned"):
        list(client.list())


def test_page_size_is_checked_against_the_provider(client: AnyClient) -> None:
    with pytest.raises(ValueError, match="between 1 and 50"):
        client.list_page(page_size=51)


def test_streaming_yields_in_input_order(client: AnyClient) -> None:
    numbers = [A, "bad", B, A]
    assert [item.recipient for item in client.stream("check", SENDER, iter(numbers))] == numbers


def test_requests_are_logged_without_secrets(
    client: AnyClient, backend: Backend, caplog: pytest.LogCaptureFixture, slept: list[float]
) -> None:
    backend.faults = [status(500)]
    with caplog.at_level(logging.DEBUG, logger="optouts"):
        client.check(SENDER, [A])
    lines = [record.getMessage() for record in caplog.records]
    assert "POST /check -> 500 (attempt 1)" in lines[0]
    assert any("POST /check -> 200 (attempt 2)" in line for line in lines)
    assert KEY not in caplog.text
    assert KEY not in repr(client.provider)


def test_single_string_is_refused_as_recipients(client: AnyClient) -> None:
    with pytest.raises(TypeError, match="not a single string"):
        client.check(SENDER, A)


def test_settings_cannot_be_combined_with_a_provider_instance() -> None:
    provider: Any = FakeVendor(KEY, "https://vendor.test")
    with pytest.raises(optouts.ConfigurationError):
        optouts.Client(provider, key="x")


def test_a_failed_retry_of_some_recipients_keeps_the_others_answers(
    client: AnyClient, backend: Backend, slept: list[float]
) -> None:
    backend.item_errors[B] = [500]
    backend.faults = [lambda body: None, status(400)]
    result = client.add(SENDER, [A, B, C])
    assert [(item.ok, item.opted_out) for item in result] == [
        (True, True),
        (False, None),
        (True, True),
    ]
    assert result[1].status_code == 400


def test_a_closed_client_refuses_work_in_words(backend: Backend) -> None:
    """Not the HTTP pool's RuntimeError or a database's own error: one line that says why."""
    transport = httpx.MockTransport(backend)
    client = optouts.Client(
        FakeVendor(KEY, "https://vendor.test"), http_client=httpx.Client(transport=transport)
    )
    client.close()
    client.close()  # closing twice is harmless
    for work in (
        lambda: client.check(SENDER, [A]),
        lambda: client.add(SENDER, [A]),
        lambda: client.stream("check", SENDER, [A]),
        lambda: client.list_page(SENDER),
    ):
        with pytest.raises(optouts.OptOutError, match="fakevendor client is closed"):
            work()

    async def closed_async() -> None:
        http = httpx.AsyncClient(transport=transport)
        async_client = optouts.AsyncClient(FakeVendor(KEY, "https://vendor.test"), http_client=http)
        await async_client.aclose()
        await async_client.aclose()
        with pytest.raises(optouts.OptOutError, match="client is closed"):
            await async_client.check(SENDER, [A])
        with pytest.raises(optouts.OptOutError, match="client is closed"):
            await async_client.list_page(SENDER)
        with pytest.raises(optouts.OptOutError, match="client is closed"):
            async_client.stream("check", SENDER, [A])
        await http.aclose()

    asyncio.run(closed_async())
    assert backend.received == []
