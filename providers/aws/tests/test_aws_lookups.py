"""Lookups and pages that hold AWS to its answers: nothing missing read as "not opted out",
no loop without end, and both ways AWS may say a number is not in a list.

A 200 without ``OptedOutNumbers``, or with a record of a number that was not asked, is
a protocol error: it vouches for none of the batch's numbers, so none is reported False.
Every loop over ``NextToken`` refuses a token it already followed, and a lookup of at most
5 numbers reads at most ``LOOKUP_PAGES`` pages. AWS may leave an unknown number out of a
lookup's answer or answer it with ``ResourceNotFoundException`` (``opted-out-number``):
the emulator does either (``lookup_not_found``), and both read the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import optouts
from optouts.plugin import run_exchange
from optouts_aws import AwsEmulator, AwsProvider
from optouts_aws._emulator.wire import NAMESPACE
from optouts_aws._paging import LOOKUP_PAGES
from optouts_aws.testing import FAST, SENDER, emulator_settings

Handler = Callable[[dict[str, Any], int], httpx.Response]
Make = Callable[..., optouts.Client]
ASKED = ["+13035800000", "+13035800001"]


class Mocked:
    """A client whose every request is answered by ``handler(body, n)`` (n counts from 1)."""

    def __init__(self, handler: Handler, **settings: Any) -> None:
        self.bodies: list[dict[str, Any]] = []

        def answer(request: httpx.Request) -> httpx.Response:
            self.bodies.append(json.loads(request.content))
            if len(self.bodies) > 100:
                raise AssertionError("over 100 requests: a loop that does not end")
            return handler(self.bodies[-1], len(self.bodies))

        self.http = httpx.Client(transport=httpx.MockTransport(answer))
        settings.setdefault("sender_lists", {})
        self.client = optouts.Client(
            "aws", retry=FAST, http_client=self.http, **emulator_settings(**settings)
        )
        provider = self.client.provider
        assert isinstance(provider, AwsProvider)
        self.provider = provider

    def run(self, exchange: Any) -> Any:
        return run_exchange(exchange, self.http, self.provider.auth)


@pytest.fixture
def mocked() -> Iterator[Callable[..., Mocked]]:
    made: list[Mocked] = []

    def make(handler: Handler, **settings: Any) -> Mocked:
        made.append(Mocked(handler, **settings))
        return made[-1]

    yield make
    for each in made:
        each.client.close()


def ok(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=body, headers={"x-amzn-RequestId": "req-1"})


def not_found(kind: str, resource: str | None) -> httpx.Response:
    body = {"__type": f"{NAMESPACE}#ResourceNotFoundException", "Message": "not found"}
    if kind:
        body["ResourceType"] = kind
    if resource is not None:
        body["ResourceId"] = resource
    return httpx.Response(400, json=body, headers={"x-amzn-ErrorType": "ResourceNotFoundException"})


def record(number: str) -> dict[str, Any]:
    return {"OptedOutNumber": number, "OptedOutTimestamp": 1767225600, "EndUserOptedOut": True}


# --- an answer missing what it must carry ---------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"OptOutListName": "Default", "OptOutListArn": "arn:aws:sms-voice:::opt-out-list/Default"},
        {"OptedOutNumbers": None},
        {"OptedOutNumbers": {"OptedOutNumber": ASKED[0]}},
    ],
    ids=["empty", "no-key", "null", "not-a-list"],
)
def test_a_lookup_answer_without_its_records_answers_nothing(
    mocked: Callable[..., Mocked], body: dict[str, Any]
) -> None:
    aws = mocked(lambda sent, n: ok(body))
    with pytest.raises(optouts.ProviderError, match="without a list of OptedOutNumbers") as raised:
        aws.client.check("*", ASKED)
    assert raised.value.retryable is False
    assert raised.value.status_code == 200
    assert raised.value.request_id == "req-1"
    assert len(aws.bodies) == 1  # a protocol error, not worth sending again
    with pytest.raises(optouts.ProviderError, match="OptedOutNumbers"):
        aws.client.list_page()


def test_a_record_of_a_number_not_asked_answers_nothing(mocked: Callable[..., Mocked]) -> None:
    aws = mocked(lambda sent, n: ok({"OptedOutNumbers": [record("+19995550000")]}))
    with pytest.raises(optouts.ProviderError, match="not asked about"):
        aws.client.check("*", ASKED)
    # Not even a number that was asked, answered beside it, is taken from such an answer.
    both = mocked(lambda sent, n: ok({"OptedOutNumbers": [record(ASKED[0]), record("+1999")]}))
    with pytest.raises(optouts.ProviderError, match="1 record"):
        both.run(both.provider.check("*", ASKED))


def test_records_without_a_plus_are_the_numbers_asked(mocked: Callable[..., Mocked]) -> None:
    aws = mocked(lambda sent, n: ok({"OptedOutNumbers": [record(ASKED[1].lstrip("+"))]}))
    assert [r.opted_out for r in aws.client.check("*", ASKED)] == [False, True]


# --- paging that would not end ----------------------------------------------------------------


def test_a_lookup_reads_at_most_its_pages(mocked: Callable[..., Mocked]) -> None:
    aws = mocked(lambda sent, n: ok({"OptedOutNumbers": [], "NextToken": f"t{n}"}))
    with pytest.raises(optouts.ProviderError, match=f"more than {LOOKUP_PAGES} pages"):
        aws.client.check("*", ASKED)
    assert len(aws.bodies) == LOOKUP_PAGES


def test_a_lookup_refuses_a_token_it_followed(mocked: Callable[..., Mocked]) -> None:
    tokens = ["a", "b", "a"]
    aws = mocked(lambda sent, n: ok({"OptedOutNumbers": [], "NextToken": tokens[n - 1]}))
    with pytest.raises(optouts.ProviderError, match="already returned"):
        aws.client.check("*", ASKED)
    assert [b.get("NextToken") for b in aws.bodies] == [None, "a", "b"]


def test_a_lookup_in_as_many_pages_as_numbers_is_read(client_for: Make) -> None:
    paged = AwsEmulator(lookup_page_size=1)
    numbers = [f"+1303581000{i}" for i in range(5)]
    for number in numbers:
        paged.opt_out("Default", number)
    checked = client_for(paged, sender_lists={}).check("*", numbers)
    assert [r.opted_out for r in checked] == [True] * 5
    assert checked.requests == 5


def test_a_listing_refuses_a_token_it_followed(mocked: Callable[..., Mocked]) -> None:
    aws = mocked(lambda sent, n: ok({"OptedOutNumbers": [], "NextToken": "same"}))
    with pytest.raises(optouts.ProviderError, match="already returned"):
        aws.client.list_page()
    assert len(aws.bodies) == 2


def test_a_listing_refuses_the_token_of_its_own_cursor(mocked: Callable[..., Mocked]) -> None:
    def answer(sent: dict[str, Any], n: int) -> httpx.Response:
        if "NextToken" not in sent:
            return ok({"OptedOutNumbers": [record("+13035820000")], "NextToken": "again"})
        return ok({"OptedOutNumbers": [], "NextToken": "again"})

    aws = mocked(answer)
    first = aws.client.list_page(page_size=5)
    assert first.next_cursor is not None
    with pytest.raises(optouts.ProviderError, match="already returned"):
        aws.client.list_page(page_size=5, cursor=first.next_cursor)
    assert len(aws.bodies) == 2


def test_a_listing_hands_back_a_run_of_empty_pages(mocked: Callable[..., Mocked]) -> None:
    """Fresh tokens and no records, page after page: one call reads a bounded number of
    pages, then hands the cursor back; the listing goes on from it and ends."""

    def answer(sent: dict[str, Any], n: int) -> httpx.Response:
        if n < 25:
            return ok({"OptedOutNumbers": [], "NextToken": f"t{n}"})
        return ok({"OptedOutNumbers": [record("+13035830000")]})

    aws = mocked(answer)
    page = aws.client.list_page()
    assert (page.items, len(aws.bodies)) == ((), 10)
    assert page.next_cursor is not None
    assert [r.recipient for r in aws.client.list()] == ["+13035830000"]


def test_the_lists_of_the_account_refuse_a_token_they_followed(
    mocked: Callable[..., Mocked],
) -> None:
    aws = mocked(lambda sent, n: ok({"OptOutLists": [], "NextToken": "same"}))
    with pytest.raises(optouts.ProviderError, match="already returned"):
        aws.run(aws.provider.opt_out_lists())
    assert len(aws.bodies) == 2


def test_the_lists_of_the_account_must_be_a_list(mocked: Callable[..., Mocked]) -> None:
    aws = mocked(lambda sent, n: ok({"NextToken": None}))
    with pytest.raises(optouts.ProviderError, match="without a list of OptOutLists"):
        aws.run(aws.provider.opt_out_lists())


# --- "not found": AWS's other way of saying a number is not in a list ------------------------


@pytest.fixture(params=[False, True], ids=["left-out", "not-found"])
def account(request: pytest.FixtureRequest) -> AwsEmulator:
    made = AwsEmulator(seed=0, lookup_not_found=request.param)
    made.create_list("Marketing")
    return made


def test_unknown_numbers_read_not_opted_out_either_way(
    account: AwsEmulator, client_for: Make
) -> None:
    listed = ["+13035840000", "+13035840002"]
    for number in listed:
        account.opt_out("Marketing", number)
    client = client_for(account)
    batch = ["+13035840000", "+13035840001", "+13035840002", "+13035840003"]
    checked = client.check(SENDER, batch)
    assert [(r.ok, r.opted_out) for r in checked] == [(True, True), (True, False)] * 2
    # Left out: one lookup. Not found: the lookup, then each number alone.
    assert checked.requests == (1 + 4 if account.lookup_not_found else 1)
    alone = client.check(SENDER, ["+13035840001"])
    assert [(r.ok, r.opted_out) for r in alone] == [(True, False)]
    assert alone.requests == 1
    everyone = client.check(SENDER, listed)
    assert [r.opted_out for r in everyone] == [True, True]
    assert everyone.requests == 1


def test_a_missing_list_stays_a_configuration_error_either_way(
    account: AwsEmulator, client_for: Make
) -> None:
    with pytest.raises(optouts.ConfigurationError, match="'Nowhere'"):
        client_for(account, sender_lists={SENDER: "Nowhere"}).check(SENDER, ASKED)


def test_a_refused_number_fails_alone_either_way(account: AwsEmulator, client_for: Make) -> None:
    account.rejected.add("+13035850001")
    account.opt_out("Marketing", "+13035850002")
    checked = client_for(account).check(SENDER, ["+13035850000", "+13035850001", "+13035850002"])
    assert [(r.ok, r.opted_out) for r in checked] == [(True, False), (False, None), (True, True)]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (not_found("opted-out-number", ASKED[0]), (True, False)),
        (not_found("opted-out-number", ASKED[0].lstrip("+")), (True, False)),
        (not_found("opted-out-number", "+19995550000"), (False, None)),  # another number
        (not_found("opted-out-number", None), (False, None)),  # which number?
    ],
    ids=["the-number", "without-plus", "another-number", "no-id"],
)
def test_not_found_is_read_only_about_the_number_asked(
    mocked: Callable[..., Mocked], answer: httpx.Response, expected: tuple[bool, bool | None]
) -> None:
    aws = mocked(lambda sent, n: answer)
    checked = aws.client.check("*", ASKED[:1])
    assert [(r.ok, r.opted_out) for r in checked] == [expected]
    assert checked.retries == 0


def test_not_found_about_the_list_is_a_configuration_error(
    mocked: Callable[..., Mocked],
) -> None:
    for answer in (not_found("opt-out-list", "Default"), not_found("", None)):
        aws = mocked(lambda sent, n, answer=answer: answer)
        with pytest.raises(optouts.ConfigurationError, match="'Default'"):
            aws.client.check("*", ASKED)
        assert len(aws.bodies) == 1


def test_not_found_in_a_batch_looks_each_number_up(mocked: Callable[..., Mocked]) -> None:
    """AWS names the first number it lacks; each number is then asked alone."""

    def answer(sent: dict[str, Any], n: int) -> httpx.Response:
        asked = sent["OptedOutNumbers"]
        if asked == [ASKED[1]]:
            return ok({"OptedOutNumbers": [record(ASKED[1])]})
        return not_found("opted-out-number", asked[0])

    aws = mocked(answer)
    checked = aws.client.check("*", ASKED)
    assert [(r.ok, r.opted_out) for r in checked] == [(True, False), (True, True)]
    assert [b["OptedOutNumbers"] for b in aws.bodies] == [ASKED, ASKED[:1], ASKED[1:]]
