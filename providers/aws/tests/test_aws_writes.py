"""Write batches that fail part way: the client's retry sends only what had not succeeded.

An add or remove of 5 numbers over N lists is 5 × N requests. When one is throttled (or
draws a 5xx, or its connection drops), the client's policy retries the batch; the
provider keeps what the first try finished, so the retry sends the unfinished requests
alone and every number keeps its outcome. A new call, even of equal numbers, is never
taken for a retry. And a created list carries a ClientToken, reused by its retries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import optouts
from optouts.plugin import run_exchange, with_retry
from optouts.testing import BlockingASGITransport
from optouts_aws import AwsEmulator, AwsProvider
from optouts_aws._resume import KEEP, Unfinished
from optouts_aws.testing import FAST, SENDER, emulator_settings

TWO_LISTS = {SENDER: "Marketing", "*": "Default"}
NUMBERS = [f"+1303590000{i}" for i in range(5)]
Make = Callable[..., Any]


class Faulty(httpx.BaseTransport):
    """The emulator, with a fault before chosen requests (counted from 1): ``"throttle"``
    or ``"error"`` queued in the emulator, or ``"drop"``: the request is applied and its
    answer lost (a connection that broke on the way back)."""

    def __init__(self, emulator: AwsEmulator, faults: dict[int, str]) -> None:
        self.emulator = emulator
        self.inner = BlockingASGITransport(emulator)
        self.faults = faults
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(
            (request.headers["x-amz-target"].split(".")[1], json.loads(request.content))
        )
        fault = self.faults.get(len(self.sent))
        if fault in ("throttle", "error"):
            self.emulator.inject(fault)  # type: ignore[arg-type]
        response = self.inner.handle_request(request)
        if fault == "drop":
            response.read()
            raise httpx.ReadError("connection reset", request=request)
        return response


def faulty_client(emulator: AwsEmulator, faults: dict[int, str], **settings: Any) -> Any:
    transport = Faulty(emulator, faults)
    client = optouts.Client(
        "aws",
        retry=settings.pop("retry", FAST),
        http_client=httpx.Client(transport=transport),
        **emulator_settings(sender_lists=TWO_LISTS, **settings),
    )
    return client, transport


@pytest.fixture
def account() -> AwsEmulator:
    made = AwsEmulator(seed=0)
    made.create_list("Marketing")
    return made


def test_a_throttle_on_the_last_request_resends_it_alone(account: AwsEmulator) -> None:
    for name in ("Default", "Marketing"):
        account.load(name, NUMBERS)
    client, transport = faulty_client(account, {10: "throttle"})
    removed = client.remove("*", NUMBERS)
    assert [(r.ok, r.opted_out) for r in removed] == [(True, False)] * 5
    assert removed.requests == 11  # 5 numbers × 2 lists, and the throttled one again
    assert removed.retries == 1
    assert (
        transport.sent[-1]
        == transport.sent[-2]
        == (
            "DeleteOptedOutNumber",
            {"OptOutListName": "Marketing", "OptedOutNumber": NUMBERS[-1]},
        )
    )
    assert account.numbers("Default") == account.numbers("Marketing") == set()
    client.close()


@pytest.mark.parametrize("fault", ["throttle", "error", "drop"])
def test_a_failure_part_way_resends_from_there(account: AwsEmulator, fault: str) -> None:
    client, transport = faulty_client(account, {4: fault})
    added = client.add("*", NUMBERS)
    assert [(r.ok, r.opted_out) for r in added] == [(True, True)] * 5
    # A throttle and a 500 are answered before AWS does anything: the 4th request is sent
    # again. A dropped answer leaves it unknown (here: applied), so it is sent again too.
    assert added.requests == 11
    sent = [(body["OptOutListName"], body["OptedOutNumber"]) for _, body in transport.sent]
    assert sent[3] == sent[4]
    assert len(set(sent)) == 10
    assert account.numbers("Default") == account.numbers("Marketing") == set(NUMBERS)
    client.close()


def test_a_refused_number_is_not_sent_again_by_the_retry(account: AwsEmulator) -> None:
    account.rejected.add(NUMBERS[1])
    client, transport = faulty_client(account, {8: "throttle"})
    added = client.add("*", NUMBERS)
    assert [r.ok for r in added] == [True, False, True, True, True]
    assert "ValidationException" in str(added[1].error)
    # numbers 0 (2), 1 (refused on its first list: 1), 2 (2), 3 on Default, then throttled
    assert added.requests == 2 + 1 + 2 + 2 + 1 + 2
    numbers = [body["OptedOutNumber"] for _, body in transport.sent]
    assert numbers.count(NUMBERS[1]) == 1
    client.close()


def test_a_new_call_is_never_taken_for_a_retry(account: AwsEmulator) -> None:
    client, _ = faulty_client(account, {6: "throttle"}, retry=optouts.RetryPolicy(attempts=1))
    first = client.add("*", NUMBERS)
    assert not first.ok  # the policy gave up: every number of the batch failed
    assert first.requests == 6
    again = client.add("*", list(NUMBERS))
    assert again.ok
    assert again.requests == 10  # everything, though 5 of them were done a moment ago
    assert client.provider._unfinished  # the first try's record stayed, and was not used
    client.close()


def test_the_async_client_resends_only_what_failed(
    account: AwsEmulator, async_client_for: Make
) -> None:
    for name in ("Default", "Marketing"):
        account.load(name, NUMBERS)
    count = [0]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            count[0] += 1
            if count[0] == 10:
                account.inject("throttle")
        await account(scope, receive, send)

    client = async_client_for(app, sender_lists=TWO_LISTS)
    removed = client.remove("*", NUMBERS)
    assert [(r.ok, r.opted_out) for r in removed] == [(True, False)] * 5
    assert (removed.requests, count[0]) == (11, 11)
    assert account.numbers("Default") == account.numbers("Marketing") == set()


# --- the record of unfinished batches ----------------------------------------------------------


def test_an_unfinished_batch_is_taken_once_by_its_own_retry() -> None:
    now = [0.0]
    unfinished = Unfinished(clock=lambda: now[0])
    batch = list(NUMBERS)
    done = {(NUMBERS[0], "Default"): optouts.Outcome(True, True)}
    unfinished.keep("PutOptedOutNumber", "*", batch, done)
    assert unfinished.take("PutOptedOutNumber", "*", list(batch)) == {}  # an equal list
    assert unfinished.take("DeleteOptedOutNumber", "*", batch) == {}  # another operation
    unfinished.keep("PutOptedOutNumber", "*", batch, done)
    assert unfinished.take("PutOptedOutNumber", SENDER, batch) == {}  # another sender
    unfinished.keep("PutOptedOutNumber", "*", batch, done)
    assert unfinished.take("PutOptedOutNumber", "*", batch) == done
    assert unfinished.take("PutOptedOutNumber", "*", batch) == {}  # taken once
    unfinished.keep("PutOptedOutNumber", "*", batch, done)
    now[0] += KEEP + 1
    assert unfinished.take("PutOptedOutNumber", "*", batch) == {}  # too late
    unfinished.keep("PutOptedOutNumber", "*", batch, done)
    batch.append("+13035900009")
    assert unfinished.take("PutOptedOutNumber", "*", batch) == {}  # changed since
    other = list(NUMBERS)
    unfinished.keep("PutOptedOutNumber", "*", other, done)
    now[0] += KEEP + 1
    unfinished.keep("PutOptedOutNumber", "*", list(NUMBERS), done)
    assert len(unfinished) == 1  # the stale entry went


# --- creating a list ---------------------------------------------------------------------------


def test_a_create_carries_a_client_token(account: AwsEmulator) -> None:
    transport = Faulty(account, {})
    http = httpx.Client(transport=transport)
    provider = optouts.Client("aws", http_client=http, **emulator_settings()).provider
    assert isinstance(provider, AwsProvider)
    run_exchange(provider.create_opt_out_list("One"), http, provider.auth)
    run_exchange(provider.create_opt_out_list("Two"), http, provider.auth)
    tokens = [body["ClientToken"] for _, body in transport.sent]
    assert all(uuid.UUID(token).version == 4 for token in tokens)
    assert tokens[0] != tokens[1]


def test_a_create_whose_answer_was_lost_is_the_same_create(account: AwsEmulator) -> None:
    """The first try is applied and its answer lost; the retry, with the same token, is
    answered as the first would have been, not refused as a name already taken."""
    transport = Faulty(account, {1: "drop"})
    http = httpx.Client(transport=transport)
    provider = optouts.Client("aws", http_client=http, **emulator_settings()).provider
    assert isinstance(provider, AwsProvider)
    token = str(uuid.uuid4())
    created = run_exchange(
        with_retry(lambda: provider.create_opt_out_list("Promotions", client_token=token), FAST),
        http,
        provider.auth,
    )
    assert created["OptOutListName"] == "Promotions"
    assert [body["ClientToken"] for _, body in transport.sent] == [token, token]
    # Another create of the name is still refused.
    with pytest.raises(optouts.ProviderError, match="ConflictException"):
        run_exchange(provider.create_opt_out_list("Promotions"), http, provider.auth)
