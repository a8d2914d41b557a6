"""A 200 that is not the documented answer never passes a number: it fails the numbers it
should have answered, and numbers in answers are compared only once normalised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import optouts
from optouts import AuthenticationError, ProviderError, RetryPolicy, Status
from optouts_ringcentral._errors import json_body
from optouts_ringcentral.testing import make_provider, numbers

SENDER = "+16505550100"
DEEP = "[" * 100_000 + "]" * 100_000
"""Valid JSON nested too deep for the decoder: RecursionError, not ValueError."""


def vendor(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    """A RingCentral whose logins succeed and whose API calls ``answer`` handles."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.url.path == "/restapi/oauth/revoke":
            return httpx.Response(200)
        return answer(request)

    return httpx.Client(transport=httpx.MockTransport(handler))


def always(body: Any) -> Callable[[httpx.Request], httpx.Response]:
    if isinstance(body, str):
        return lambda _: httpx.Response(200, text=body)
    return lambda _: httpx.Response(200, json=body)


def client(api: str, answer: Callable[[httpx.Request], httpx.Response]) -> optouts.Client:
    return optouts.Client(
        make_provider(api), http_client=vendor(answer), retry=RetryPolicy(attempts=1)
    )


def rows(result: optouts.BatchResult) -> list[tuple[bool, bool | None]]:
    return [(item.ok, item.opted_out) for item in result]


# --- add / remove ------------------------------------------------------------------------------

V1_ENVELOPES: list[Any] = [
    "<html>ok</html>",
    {},
    [],
    {"optIns": {"successful": ["+12125550000"]}},
    {"optOuts": []},
    {"optOuts": None},
    {"optOuts": {"successful": "+12125550000"}},
    {"optOuts": {"failed": {"to": "+12125550001"}}},
]


@pytest.mark.parametrize("body", V1_ENVELOPES, ids=str)
def test_a_v1_bulk_assign_answer_that_is_not_one_fails_every_number(body: Any) -> None:
    recipients = numbers(3)
    with client("a2p-sms", always(body)) as rc:
        result = rc.add(SENDER, recipients)
    assert rows(result) == [(False, None)] * 3
    assert all("bulk-assign" in (item.error or "") for item in result)


def test_v1_entries_that_name_no_number_sent_are_skipped_and_their_numbers_fail() -> None:
    """v1 names each success, so an entry we cannot read vouches for nobody."""
    r = numbers(6)
    body = {
        "optOuts": {
            "successful": [{"to": r[0]}, r[1], 5, None, "+1 (212) 555-0004", r[5]],
            "failed": [{"to": [r[2]]}, {"to": r[3], "errorMessage": 5}, "x", {"to": r[5]}],
        }
    }
    with client("a2p-sms", always(body)) as rc:
        result = rc.add(SENDER, r)
    assert rows(result) == [
        (False, None),  # named inside an object: not a number
        (True, True),
        (False, None),  # its failure names a list
        (False, None),  # failed, with an unreadable message
        (True, True),  # written another way, still this number
        (False, None),  # successful and failed: failed
    ]
    errors = [item.error for item in result]
    assert errors[0] == errors[2] == "RingCentral's answer did not mention this number"
    assert errors[3] == errors[5] == "RingCentral did not apply this number"


V2_SUMMARIES: list[Any] = [
    "<html>ok</html>",
    [],
    None,
    {"failedRecords": None},
    {"failedRecords": {"to": "+12125550000"}},
    {"failedRecords": "none"},
    {"failedRecords": [{"error": {"errorCode": "CMN-101", "message": "bad"}}]},
    {"failedRecords": [{"to": 12125550000}]},
    {"failedRecords": [{"to": "+19995550000"}]},
    {"failedRecords": ["+12125550000"]},
    {"errors": [{"errorCode": "CMN-101", "message": "Parameter [records] value is invalid."}]},
]


@pytest.mark.parametrize("body", V2_SUMMARIES, ids=str)
@pytest.mark.parametrize("operation", ["add", "remove"])
def test_a_v2_patch_answer_that_is_not_its_summary_fails_every_number(
    body: Any, operation: str
) -> None:
    """v2 reports only failures, so a summary read in part could hide one: none passes."""
    recipients = numbers(3)
    answer = (lambda _: httpx.Response(200)) if body is None else always(body)
    with client("consents", answer) as rc:
        result = getattr(rc, operation)(SENDER, recipients)
    assert rows(result) == [(False, None)] * 3
    assert all("PATCH" in (item.error or "") for item in result)


def test_an_empty_v2_summary_is_a_full_success() -> None:
    """``failedRecords`` has at least one item when present, so nothing failed is ``{}``."""
    with client("consents", always({})) as rc:
        assert rows(rc.add(SENDER, numbers(2))) == [(True, True)] * 2
        assert rows(rc.remove(SENDER, numbers(2))) == [(True, False)] * 2


def test_a_v2_failed_record_counts_however_its_number_is_written() -> None:
    r = numbers(3)
    body = {"failedRecords": [{"to": "+1 212-555-0001", "error": "refused"}]}
    with client("consents", always(body)) as rc:
        result = rc.add(SENDER, r)
    assert rows(result) == [(True, True), (False, None), (True, True)]
    assert result[1].error == "unknown: RingCentral did not apply this record"


@pytest.mark.parametrize("api", ["a2p-sms", "consents"])
def test_an_unreadable_answer_fails_its_own_request_alone(api: str) -> None:
    """1500 numbers are two requests: the readable answer stands, the call goes on."""
    recipients = numbers(1500)
    answers = iter(
        [
            httpx.Response(200, json={"optOuts": {"successful": recipients[:1000]}}),
            httpx.Response(200, text="<html>maintenance</html>"),
        ]
        if api == "a2p-sms"
        else [httpx.Response(200, json={}), httpx.Response(200, text="<html>maintenance</html>")]
    )
    with client(api, lambda _: next(answers)) as rc:
        result = rc.add(SENDER, recipients)
    assert rows(result) == [(True, True)] * 1000 + [(False, None)] * 500


# --- records without a readable sender or recipient -------------------------------------------

R = "+12125550000"
"""numbers(1)[0], the recipient the record below concerns."""
UNREADABLE_RECORDS = [
    {"to": R},
    {"from": SENDER},
    {"from": 16505550100, "to": R},
    {"from": "16505550100", "to": R},
    {"from": SENDER, "to": 12125550000},
    {"from": "", "to": R},
    {"from": SENDER, "to": "nobody"},
    {"from": None, "to": R},
    {"from": [SENDER], "to": R},
]


def page(record: dict[str, Any], api: str) -> dict[str, Any]:
    key = "status" if api == "a2p-sms" else "optStatus"
    return {"records": [{**record, key: "OptOut"}], "paging": {"perPage": 1000}}


@pytest.mark.parametrize("api", ["a2p-sms", "consents"])
@pytest.mark.parametrize("size", [1, 60], ids=["lookup", "listing"])
@pytest.mark.parametrize("record", UNREADABLE_RECORDS, ids=str)
def test_a_record_without_a_readable_pair_fails_its_recipients(
    api: str, size: int, record: dict[str, Any]
) -> None:
    """Never "not opted out": the record may well be their opt-out."""
    with client(api, always(page(record, api))) as rc:
        result = rc.check(SENDER, numbers(size))
        with pytest.raises(ProviderError, match="RingCentral returned"):
            rc.list_page(SENDER)
    assert result.info["check_plan"].plan == ("lookup" if size == 1 else "list")
    assert rows(result) == [(False, None)] * size
    assert all("phone number" in (i.error or "") or "missing" in (i.error or "") for i in result)


@pytest.mark.parametrize("api", ["a2p-sms", "consents"])
@pytest.mark.parametrize("size", [1, 60], ids=["lookup", "listing"])
def test_numbers_are_normalised_before_they_are_compared(api: str, size: int) -> None:
    record = {"from": "+1 650 555 0100", "to": "+1 (212) 555-0000"}
    with client(api, always(page(record, api))) as rc:
        result = rc.check(SENDER, numbers(size))
        listed = rc.list_page(SENDER).items
    assert rows(result)[0] == (True, True)
    assert [(item.sender, item.recipient, item.country) for item in listed] == [(SENDER, R, "US")]


def test_a_v2_account_wide_consent_needs_no_sender() -> None:
    record = {"coverage": "Account", "to": R}
    with client("consents", always(page(record, "consents"))) as rc:
        assert rows(rc.check(SENDER, numbers(1))) == [(True, True)]
        assert rc.list_page("*", status=Status.OPTED_OUT).items[0].sender == "*"


def test_v1_short_code_and_account_wide_senders_are_read() -> None:
    records = [
        {"from": " 12345 ", "to": R, "status": "OptOut"},
        {"from": "*", "to": R, "status": "OptOut"},
    ]
    with client("a2p-sms", always({"records": records})) as rc:
        assert [item.sender for item in rc.list_page(None).items] == ["12345", "*"]


# --- JSON nested too deep ------------------------------------------------------------------------


def test_json_nested_too_deep_is_not_json() -> None:
    assert json_body(httpx.Response(200, text=DEEP)) is None


@pytest.mark.parametrize("api", ["a2p-sms", "consents"])
def test_a_page_nested_too_deep_fails_the_recipients(api: str) -> None:
    with client(api, always(DEEP)) as rc:
        assert rows(rc.check(SENDER, numbers(2))) == [(False, None)] * 2
        assert rows(rc.add(SENDER, numbers(2))) == [(False, None)] * 2


def test_an_error_nested_too_deep_is_still_the_error() -> None:
    with (
        client("a2p-sms", lambda _: httpx.Response(400, text=DEEP)) as rc,
        pytest.raises(ProviderError) as raised,
    ):
        rc.list_page(SENDER)
    assert raised.value.status_code == 400


def test_a_token_answer_nested_too_deep_is_an_authentication_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, text=DEEP)
        raise AssertionError("no API call without a token")

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with (
        optouts.Client(make_provider(), http_client=http) as rc,
        pytest.raises(AuthenticationError, match="without an access token"),
    ):
        rc.check(SENDER, numbers(1))
