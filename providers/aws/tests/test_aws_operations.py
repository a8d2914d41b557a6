"""add, remove, check and list against the emulator, where AWS's shape differs from the model.

Lists are shared by senders, ``*`` writes every list, listing turns one record into one
pair per sender, a check reads only its sender's list; AWS's errors land where they
belong: a throttle is retried, an unknown list is a configuration mistake, a refused
number fails alone, and a number AWS never answered for is unknown, never "not opted out".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import optouts
from optouts.plugin import run_exchange
from optouts.testing import BlockingASGITransport
from optouts_aws import MAX_LOOKUP, AwsEmulator, AwsProvider
from optouts_aws.testing import OTHER, SENDER, Recorder, emulator_settings

Make = Callable[..., optouts.Client]


def numbers(count: int, exchange: int = 555) -> list[str]:
    return [f"+1303{exchange:03d}{i:04d}" for i in range(count)]


def targets(recorder: Recorder) -> list[str]:
    return [e.request.headers["x-amz-target"].split(".")[1] for e in recorder.exchanges]


def recorded_client(emulator: AwsEmulator, **overrides: Any) -> tuple[optouts.Client, Recorder]:
    recorder = Recorder(BlockingASGITransport(emulator))
    client = optouts.Client(
        "aws",
        http_client=httpx.Client(transport=recorder),
        retry=overrides.pop("retry", optouts.RetryPolicy(backoff=0.001, cap=0.01)),
        **emulator_settings(**overrides),
    )
    return client, recorder


# --- senders and lists ---------------------------------------------------------------------


def test_each_sender_writes_and_reads_its_own_list(
    emulator: AwsEmulator, client: optouts.Client
) -> None:
    mine, theirs = numbers(2, 501), numbers(2, 502)
    client.add(SENDER, mine).raise_for_failures()
    client.add(OTHER, theirs).raise_for_failures()
    assert emulator.numbers("Marketing") == set(mine)
    assert emulator.numbers("Alerts") == set(theirs)
    assert [r.opted_out for r in client.check(SENDER, mine + theirs)] == [True, True, False, False]
    # A sender without a list of its own reads the default list, which holds neither.
    assert [r.opted_out for r in client.check("+18005550199", mine)] == [False, False]


def test_the_wildcard_writes_every_list_and_reads_the_default(
    emulator: AwsEmulator, client: optouts.Client
) -> None:
    everyone = numbers(2, 503)
    result = client.add("*", everyone)
    assert result.ok
    assert result.requests == 2 * 3  # one Put per number per list in use
    for name in ("Default", "Marketing", "Alerts"):
        assert emulator.numbers(name) == set(everyone)
    for sender in ("*", SENDER, OTHER, "+18005550199"):
        assert all(r.opted_out for r in client.check(sender, everyone))
    assert client.remove("*", everyone[:1]).ok
    for name in ("Default", "Marketing", "Alerts"):
        assert emulator.numbers(name) == set(everyone[1:])


def test_a_listing_reports_each_record_under_the_senders_of_its_list(
    emulator: AwsEmulator, client_for: Make
) -> None:
    shared = {SENDER: "Marketing", OTHER: "Marketing", "*": "Default"}
    client = client_for(sender_lists=shared)
    emulator.opt_out("Marketing", "+13035550001")
    emulator.opt_out("Default", "+13035550002", end_user=False)
    records = sorted(client.list(), key=lambda r: (r.sender, r.recipient))
    assert [(r.sender, r.recipient, r.source) for r in records] == [
        ("*", "+13035550002", "api"),
        (SENDER, "+13035550001", "recipient"),
        (OTHER, "+13035550001", "recipient"),
    ]
    record = records[1]
    assert record.status is optouts.Status.OPTED_OUT
    assert record.updated_at is not None
    assert record.updated_at.tzinfo is not None
    assert record.raw["OptOutListName"] == "Marketing"
    assert record.raw["EndUserOptedOut"] is True
    assert {r.recipient for r in client.list(OTHER)} == {"+13035550001"}
    assert {r.sender for r in client.list(OTHER)} == {OTHER}
    assert [r.recipient for r in client.list("*")] == ["+13035550002"]


def test_opted_in_records_do_not_exist_at_aws(
    emulator: AwsEmulator, client: optouts.Client
) -> None:
    emulator.opt_out("Default", "+13035550003")
    before = emulator.requests
    page = client.list_page(status="opted-in")
    assert page.items == ()
    assert page.next_cursor is None
    assert emulator.requests == before  # nothing to ask AWS


# --- paging ---------------------------------------------------------------------------------


def test_pages_of_pairs_never_exceed_the_page_size(emulator: AwsEmulator, client_for: Make) -> None:
    """Three senders share a list: an AWS page of records is cut into listing pages."""
    senders = [SENDER, OTHER, "+18005550122"]
    client = client_for(sender_lists=dict.fromkeys(senders, "Marketing"))
    listed = numbers(11, 504)
    for number in listed:
        emulator.opt_out("Marketing", number)
    seen: list[tuple[str, str]] = []
    cursor = None
    pages = 0
    while True:
        page = client.list_page(page_size=2, cursor=cursor)
        pages += 1
        assert 1 <= len(page.items) <= 2
        seen.extend((r.sender, r.recipient) for r in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = {(s, n) for s in senders for n in listed}
    assert len(seen) == len(expected) == len(set(seen))
    assert set(seen) == expected
    # Each record stands for 3 pairs, one record a request: pages of 2 and 1 pairs.
    assert pages == 22


def test_empty_lists_are_skipped_within_one_page(
    emulator: AwsEmulator, client: optouts.Client
) -> None:
    emulator.opt_out("Alerts", "+13035550009")  # Default and Marketing stay empty
    before = emulator.requests
    page = client.list_page(page_size=5)  # Default (empty), then Alerts
    assert [(r.sender, r.recipient) for r in page.items] == [(OTHER, "+13035550009")]
    assert emulator.requests - before == 2
    assert page.next_cursor is not None  # Marketing is still to be read
    last = client.list_page(page_size=5, cursor=page.next_cursor)
    assert (last.items, last.next_cursor) == ((), None)


def test_listing_uses_aws_next_token_within_the_model_limit(emulator: AwsEmulator) -> None:
    for number in numbers(250, 505):
        emulator.opt_out("Default", number)
    client, recorder = recorded_client(emulator, sender_lists={})
    assert len(list(client.list())) == 250
    bodies = [json.loads(e.request.content) for e in recorder.exchanges]
    assert [b.get("MaxResults") for b in bodies] == [100, 100, 100]
    assert "NextToken" not in bodies[0]
    assert all("NextToken" in b for b in bodies[1:])


def test_a_cursor_of_another_mapping_is_refused(emulator: AwsEmulator, client_for: Make) -> None:
    for number in numbers(3, 506):
        emulator.opt_out("Marketing", number)
    cursor = client_for().list_page(SENDER, page_size=1).next_cursor
    assert cursor is not None
    with pytest.raises(optouts.InvalidCursor, match="another listing"):
        client_for(sender_lists={SENDER: "Alerts"}).list_page(SENDER, cursor=cursor)
    with pytest.raises(optouts.InvalidCursor):
        client_for().list_page(SENDER, cursor="aws1.bm90IGpzb24")
    with pytest.raises(optouts.InvalidCursor):
        client_for().list_page(SENDER, cursor="rc1.something")


def test_a_next_token_aws_refuses_is_an_invalid_cursor(
    emulator: AwsEmulator, client_for: Make
) -> None:
    for number in numbers(3, 507):
        emulator.opt_out("Marketing", number)
    client = client_for()
    cursor = client.list_page(SENDER, page_size=1).next_cursor
    assert cursor is not None
    emulator.store.load("Marketing", numbers(1, 508))  # a token stays valid across changes
    assert client.list_page(SENDER, page_size=1, cursor=cursor).items
    from optouts_aws._listing import Position

    forged = Position(0, "bm90IGEgdG9rZW4=").encode(client.provider.lists.plan(SENDER))  # type: ignore[attr-defined]
    with pytest.raises(optouts.InvalidCursor, match="NextToken"):
        client.list_page(SENDER, cursor=forged)


def test_a_lookup_answered_in_pages_is_read_to_the_end(emulator: AwsEmulator) -> None:
    paged = AwsEmulator(lookup_page_size=2)
    in_list = numbers(4, 509)
    for number in in_list:
        paged.opt_out("Default", number)
    client, recorder = recorded_client(paged, sender_lists={})
    asked = [*in_list, *numbers(1, 510)]
    assert [r.opted_out for r in client.check("*", asked)] == [True] * 4 + [False]
    assert targets(recorder) == ["DescribeOptedOutNumbers"] * 2
    assert "NextToken" in json.loads(recorder.exchanges[1].request.content)


def test_a_check_asks_as_many_numbers_as_one_lookup_allows(emulator: AwsEmulator) -> None:
    client, recorder = recorded_client(emulator)
    result = client.check(SENDER, numbers(12, 511))
    assert result.ok
    assert result.requests == 3
    sizes = [len(json.loads(e.request.content)["OptedOutNumbers"]) for e in recorder.exchanges]
    assert sorted(sizes) == [2, MAX_LOOKUP, MAX_LOOKUP]


# --- errors ---------------------------------------------------------------------------------


def test_throttling_is_retried(emulator: AwsEmulator, client: optouts.Client) -> None:
    emulator.inject("throttle", "throttle")
    result = client.add(SENDER, numbers(1, 512))
    assert result.ok
    assert result.retries == 2
    assert emulator.throttled == 2
    emulator.inject("throttle")
    checked = client.check(SENDER, numbers(1, 512))
    assert [r.opted_out for r in checked] == [True]
    assert checked.retries == 1


def test_a_number_aws_never_answered_for_is_unknown(
    emulator: AwsEmulator, client_for: Make
) -> None:
    client = client_for(retry=optouts.RetryPolicy(attempts=2, backoff=0.001))
    emulator.opt_out("Marketing", "+13035130000")
    emulator.inject("throttle", "throttle")
    result = client.check(SENDER, ["+13035130000", "+13035130001"])
    assert [(r.ok, r.opted_out) for r in result] == [(False, None), (False, None)]
    assert "ThrottlingException" in str(result[0].error)
    emulator.inject("error", "error")
    result = client.check(SENDER, ["+13035130000"])
    assert [(r.ok, r.opted_out, r.status_code) for r in result] == [(False, None, 500)]


def test_server_errors_are_retried(emulator: AwsEmulator, client: optouts.Client) -> None:
    emulator.inject("error", "unavailable")
    result = client.remove(SENDER, numbers(1, 514))
    assert result.ok
    assert result.retries == 2


def test_an_unknown_list_names_the_list_and_the_setting(client_for: Make) -> None:
    client = client_for(sender_lists={SENDER: "Nowhere"})
    for call in (
        lambda: client.check(SENDER, numbers(1, 515)),
        lambda: client.add(SENDER, numbers(1, 515)),
        lambda: client.remove(SENDER, numbers(1, 515)),
        lambda: client.list_page(SENDER),
    ):
        with pytest.raises(optouts.ConfigurationError) as raised:
            call()
        assert "'Nowhere'" in str(raised.value)
        assert "sender_lists" in str(raised.value)
        assert "create-opt-out-list" in str(raised.value)
    with pytest.raises(optouts.ConfigurationError, match="'opt_out_list'"):
        client_for(sender_lists={}, opt_out_list="Gone").check("*", numbers(1, 515))


def test_a_number_aws_refuses_fails_alone(emulator: AwsEmulator) -> None:
    refused = "+13035160001"
    strict = AwsEmulator(rejected=[refused])
    strict.opt_out("Default", "+13035160002")
    client, recorder = recorded_client(strict, sender_lists={})
    batch = ["+13035160000", refused, "+13035160002"]
    checked = client.check("*", batch)
    assert [(r.ok, r.opted_out) for r in checked] == [(True, False), (False, None), (True, True)]
    assert "ValidationException" in str(checked[1].error)
    assert checked[1].status_code == 400
    # one lookup of the three, refused; then each alone
    assert [len(json.loads(e.request.content)["OptedOutNumbers"]) for e in recorder.exchanges] == [
        3,
        1,
        1,
        1,
    ]
    added = client.add("*", batch)
    assert [r.ok for r in added] == [True, False, True]
    assert strict.numbers("Default") == {"+13035160000", "+13035160002"}


def test_removing_a_number_not_in_the_list_is_done(
    emulator: AwsEmulator, client: optouts.Client
) -> None:
    result = client.remove(SENDER, numbers(2, 517))
    assert result.ok
    assert [r.opted_out for r in result] == [False, False]


def test_a_number_is_deleted_once_in_thirty_days(
    emulator: AwsEmulator, client: optouts.Client
) -> None:
    (number,) = numbers(1, 518)
    client.add(SENDER, [number]).raise_for_failures()
    assert client.remove(SENDER, [number]).ok
    client.add(SENDER, [number]).raise_for_failures()
    again = client.remove(SENDER, [number])
    assert [(r.ok, r.opted_out) for r in again] == [(False, None)]
    assert "30 days" in str(again[0].error)
    assert again.retries == 0  # a refusal, not a failure worth repeating
    assert emulator.numbers("Marketing") == {number}


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("AccessDeniedException", 400, optouts.AuthenticationError),
        ("ExpiredTokenException", 403, optouts.AuthenticationError),
        ("ThrottlingException", 400, optouts.RateLimited),
        ("InternalServerException", 500, optouts.ProviderError),
    ],
)
def test_whole_request_errors(code: str, status: int, error: type[Exception]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            json={
                "__type": f"com.amazonaws.pinpointsmsvoicev2#{code}",
                "Message": "no",
                "Reason": "ACCOUNT_DISABLED",
            },
            headers={"x-amzn-RequestId": "req-1"},
        )

    provider = optouts.Client("aws", **emulator_settings()).provider
    assert isinstance(provider, AwsProvider)
    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        pytest.raises(error) as raised,
    ):
        run_exchange(provider.check(SENDER, ["+13035190000"]), http, provider.auth)
    assert getattr(raised.value, "code", None) == code
    assert getattr(raised.value, "request_id", None) == "req-1"
    if code == "AccessDeniedException":
        assert "sms-voice:DescribeOptedOutNumbers" in str(raised.value)
        assert "ACCOUNT_DISABLED" in str(raised.value)


def test_an_answer_that_is_not_json(client_for: Make) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>a proxy</html>")

    provider = client_for().provider
    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        pytest.raises(optouts.ProviderError, match="not a JSON object"),
    ):
        run_exchange(provider.check(SENDER, ["+13035190000"]), http, provider.auth)


# --- pacing and the lists themselves -----------------------------------------------------------


def test_pacing_keeps_each_operation_under_its_quota() -> None:
    """The emulator enforces 20 lookups a second; the provider paced at 20 meets no throttle."""
    strict = AwsEmulator(quotas={"DescribeOptedOutNumbers": 20.0, "PutOptedOutNumber": 50.0})
    client, _ = recorded_client(
        strict,
        requests_per_second="DescribeOptedOutNumbers=20,PutOptedOutNumber=50",
        sender_lists={},
    )
    started = time.monotonic()
    result = client.check("*", numbers(5 * 40, 520))  # 40 lookups
    elapsed = time.monotonic() - started
    assert result.ok
    assert strict.throttled == 0
    assert elapsed >= 39 / 20 - 0.05
    assert result.rate_limit_wait > 0
    unpaced, _ = recorded_client(strict, sender_lists={}, retry=optouts.RetryPolicy(attempts=1))
    flood = unpaced.check("*", numbers(5 * 100, 521))
    assert strict.throttled > 0
    assert not flood.ok


def test_opt_out_lists_and_creating_one(emulator: AwsEmulator, client: optouts.Client) -> None:
    provider = client.provider
    assert isinstance(provider, AwsProvider)
    http = httpx.Client(transport=BlockingASGITransport(emulator))
    names = {
        item["OptOutListName"]
        for item in run_exchange(provider.opt_out_lists(), http, provider.auth)
    }
    assert names == {"Default", "Marketing", "Alerts"}
    created = run_exchange(provider.create_opt_out_list("Promotions"), http, provider.auth)
    assert created["OptOutListName"] == "Promotions"
    with pytest.raises(optouts.ProviderError, match="ConflictException"):
        run_exchange(provider.create_opt_out_list("Promotions"), http, provider.auth)
    http.close()
