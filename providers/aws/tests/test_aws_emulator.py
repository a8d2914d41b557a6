"""The emulator on its own terms: signatures, shapes, paging, filters, lists, throttles.

Requests are signed here with botocore's ``SigV4Auth`` directly (the provider's signer is
tested elsewhere), so these tests say what the emulator does with any AWS client.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from optouts.testing import BlockingASGITransport
from optouts_aws import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, AwsEmulator, ErrorForms
from optouts_aws._emulator import service_model
from optouts_aws._emulator.wire import NAMESPACE as NS

URL = "http://127.0.0.1:9/"
KEY = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)


def call(
    emulator: AwsEmulator,
    operation: str,
    body: Any,
    *,
    credentials: Any = KEY,
    region: str = "us-east-1",
    service: str = "sms-voice",
    tamper: dict[str, str] | None = None,
) -> httpx.Response:
    """One signed request, as any SDK would send it."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"PinpointSMSVoiceV2.{operation}",
        "Host": "127.0.0.1:9",
    }
    unsigned = AWSRequest(method="POST", url=URL, data=content, headers=headers)
    SigV4Auth(credentials, service, region).add_auth(unsigned)
    sent = dict(unsigned.headers.items())
    sent.update(tamper or {})
    with httpx.Client(transport=BlockingASGITransport(emulator)) as http:
        return http.post(URL, content=content, headers=sent)


def error_of(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = response.json()
    return response.status_code, response.headers["x-amzn-errortype"].split(":")[0], body


@pytest.fixture
def account() -> AwsEmulator:
    return AwsEmulator(seed=0)


# --- signatures ------------------------------------------------------------------------------


def test_a_signed_request_is_served(account: AwsEmulator) -> None:
    answer = call(account, "DescribeOptOutLists", {})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-amz-json-1.0"
    assert answer.headers["x-amzn-requestid"]
    assert [item["OptOutListName"] for item in answer.json()["OptOutLists"]] == ["Default"]


def test_a_wrong_secret(account: AwsEmulator) -> None:
    status, code, body = error_of(
        call(
            account,
            "DescribeOptOutLists",
            {},
            credentials=Credentials(DEFAULT_ACCESS_KEY_ID, "x" * 40),
        )
    )
    assert (status, code, body["__type"]) == (
        403,
        "InvalidSignatureException",
        "InvalidSignatureException",
    )
    assert "secret access key" in body["message"]


def test_a_changed_body_breaks_the_signature(account: AwsEmulator) -> None:
    request = AWSRequest(
        method="POST",
        url=URL,
        data=b"{}",
        headers={"X-Amz-Target": "PinpointSMSVoiceV2.DescribeOptOutLists", "Host": "127.0.0.1:9"},
    )
    SigV4Auth(KEY, "sms-voice", "us-east-1").add_auth(request)
    with httpx.Client(transport=BlockingASGITransport(account)) as http:
        answer = http.post(URL, content=b'{"MaxResults":1}', headers=dict(request.headers.items()))
    assert error_of(answer)[:2] == (403, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "says"),
    [
        (
            {"credentials": Credentials("AKIANOBODYKNOWS00000", "x")},
            403,
            "UnrecognizedClientException",
            "not one",
        ),
        ({"region": "eu-west-1"}, 403, "InvalidSignatureException", "'eu-west-1'"),
        ({"service": "sns"}, 403, "InvalidSignatureException", "sms-voice"),
        (
            {"tamper": {"Authorization": "Bearer nothing"}},
            400,
            "IncompleteSignatureException",
            "AWS4",
        ),
        (
            {"credentials": Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, "tok")},
            403,
            "UnrecognizedClientException",
            "token",
        ),
    ],
)
def test_signature_refusals(
    account: AwsEmulator, kwargs: dict[str, Any], status: int, code: str, says: str
) -> None:
    got_status, got_code, body = error_of(call(account, "DescribeOptOutLists", {}, **kwargs))
    assert (got_status, got_code) == (status, code)
    assert says in body["message"]


def test_no_authorization_at_all(account: AwsEmulator) -> None:
    with httpx.Client(transport=BlockingASGITransport(account)) as http:
        answer = http.post(
            URL, content=b"{}", headers={"X-Amz-Target": "PinpointSMSVoiceV2.DescribeOptOutLists"}
        )
    assert error_of(answer)[:2] == (403, "MissingAuthenticationTokenException")


@pytest.mark.parametrize(("shift", "says"), [(-20, "expired"), (20, "future")])
def test_a_signature_off_the_clock(shift: int, says: str) -> None:
    now = datetime.now(timezone.utc).timestamp()
    skewed = AwsEmulator(clock=lambda: now - shift * 60)
    status, code, body = error_of(call(skewed, "DescribeOptOutLists", {}))
    assert (status, code) == (403, "InvalidSignatureException")
    assert says in body["message"]
    within = AwsEmulator(clock=lambda: now + 10 * 60)
    assert call(within, "DescribeOptOutLists", {}).status_code == 200


# --- the model's shapes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"OptOutListName": "Default", "OptedOutNumbers": ["+12025550100"] * 6}, "OptedOutNumbers"),
        ({"OptOutListName": "Default", "MaxResults": 101}, "MaxResults"),
        ({"OptOutListName": "Default", "MaxResults": 0}, "MaxResults"),
        ({"OptedOutNumbers": ["+12025550100"]}, "(top)"),
        ({"OptOutListName": "no spaces allowed"}, "OptOutListName"),
        ({"OptOutListName": "Default", "OptedOutNumbers": ["0123"]}, "OptedOutNumbers[0]"),
        (
            {"OptOutListName": "Default", "Filters": [{"Name": "carrier", "Values": ["x"]}]},
            "Filters[0].Name",
        ),
        ({"OptOutListName": "Default", "Surprise": 1}, "(top)"),
    ],
)
def test_bodies_off_the_model_are_refused(account: AwsEmulator, body: Any, field: str) -> None:
    status, code, answer = error_of(call(account, "DescribeOptedOutNumbers", body))
    assert (status, code) == (400, "ValidationException")
    assert answer["Reason"] == "FIELD_VALIDATION_FAILED"
    assert field in [item["Name"] for item in answer["Fields"]]


def test_a_body_that_is_not_json(account: AwsEmulator) -> None:
    status, code, answer = error_of(call(account, "DescribeOptOutLists", b"{not json"))
    assert (status, code, answer["Reason"]) == (400, "ValidationException", "CANNOT_PARSE")


def test_an_unknown_operation(account: AwsEmulator) -> None:
    status, code, _ = error_of(call(account, "SendTextMessage", {}))
    assert (status, code) == (400, "UnknownOperationException")


# --- numbers, lookups and pages -----------------------------------------------------------------


def test_a_lookup_answers_for_the_numbers_in_the_list_only(account: AwsEmulator) -> None:
    account.opt_out("Default", "+12025550101")
    answer = call(
        account,
        "DescribeOptedOutNumbers",
        {"OptOutListName": "Default", "OptedOutNumbers": ["+12025550101", "12025550102"]},
    ).json()
    assert [item["OptedOutNumber"] for item in answer["OptedOutNumbers"]] == ["+12025550101"]
    assert answer["OptedOutNumbers"][0]["EndUserOptedOut"] is True
    assert isinstance(answer["OptedOutNumbers"][0]["OptedOutTimestamp"], float)
    assert answer["OptOutListArn"].endswith(":opt-out-list/Default")
    assert "NextToken" not in answer


def test_numbers_without_a_plus_are_the_same_numbers(account: AwsEmulator) -> None:
    assert (
        call(
            account,
            "PutOptedOutNumber",
            {"OptOutListName": "Default", "OptedOutNumber": "12025550103"},
        ).json()["OptedOutNumber"]
        == "+12025550103"
    )
    assert account.numbers("Default") == {"+12025550103"}


def test_paging_with_a_filter(account: AwsEmulator) -> None:
    for i in range(7):
        account.opt_out("Default", f"+1202555020{i}", end_user=i % 2 == 0)
    seen: list[str] = []
    token = None
    while True:
        body: dict[str, Any] = {
            "OptOutListName": "Default",
            "MaxResults": 2,
            "Filters": [{"Name": "end-user-opted-out", "Values": ["true"]}],
        }
        if token:
            body["NextToken"] = token
        answer = call(account, "DescribeOptedOutNumbers", body).json()
        assert len(answer["OptedOutNumbers"]) <= 2
        seen.extend(item["OptedOutNumber"] for item in answer["OptedOutNumbers"])
        token = answer.get("NextToken")
        if not token:
            break
    assert seen == [f"+1202555020{i}" for i in (0, 2, 4, 6)]


def test_a_token_belongs_to_its_query(account: AwsEmulator) -> None:
    account.store.load("Default", [f"+120255503{i:02d}" for i in range(5)])
    first = call(
        account, "DescribeOptedOutNumbers", {"OptOutListName": "Default", "MaxResults": 2}
    ).json()
    token = first["NextToken"]
    other = call(
        account,
        "DescribeOptedOutNumbers",
        {
            "OptOutListName": "Default",
            "MaxResults": 2,
            "NextToken": token,
            "Filters": [{"Name": "end-user-opted-out", "Values": ["false"]}],
        },
    )
    status, code, body = error_of(other)
    assert (status, code, body["Reason"]) == (400, "ValidationException", "INVALID_NEXT_TOKEN")


def test_a_filter_value_that_is_not_a_boolean(account: AwsEmulator) -> None:
    body = {
        "OptOutListName": "Default",
        "Filters": [{"Name": "end-user-opted-out", "Values": ["maybe"]}],
    }
    status, code, answer = error_of(call(account, "DescribeOptedOutNumbers", body))
    assert (status, code, answer["Reason"]) == (400, "ValidationException", "INVALID_FILTER_VALUES")


def test_missing_lists_and_numbers_say_which(account: AwsEmulator) -> None:
    status, code, body = error_of(
        call(
            account,
            "PutOptedOutNumber",
            {"OptOutListName": "Nowhere", "OptedOutNumber": "+12025550104"},
        )
    )
    assert (status, code, body["ResourceType"], body["ResourceId"]) == (
        400,
        "ResourceNotFoundException",
        "opt-out-list",
        "Nowhere",
    )
    status, code, body = error_of(
        call(
            account,
            "DeleteOptedOutNumber",
            {"OptOutListName": "Default", "OptedOutNumber": "+12025550104"},
        )
    )
    assert (code, body["ResourceType"]) == ("ResourceNotFoundException", "opted-out-number")


def test_a_lookup_may_answer_not_found_for_an_unknown_number() -> None:
    account = AwsEmulator(lookup_not_found=True)
    account.opt_out("Default", "+12025550111")
    asked = {"OptOutListName": "Default", "OptedOutNumbers": ["+12025550111", "12025550112"]}
    status, code, body = error_of(call(account, "DescribeOptedOutNumbers", asked))
    assert (status, code, body["ResourceType"], body["ResourceId"]) == (
        400,
        "ResourceNotFoundException",
        "opted-out-number",
        "+12025550112",
    )
    known = {"OptOutListName": "Default", "OptedOutNumbers": ["+12025550111"]}
    answer = call(account, "DescribeOptedOutNumbers", known).json()
    assert [item["OptedOutNumber"] for item in answer["OptedOutNumbers"]] == ["+12025550111"]
    # A missing list is said first; a listing (no numbers named) is not a lookup.
    status, code, body = error_of(
        call(account, "DescribeOptedOutNumbers", {**asked, "OptOutListName": "Nowhere"})
    )
    assert body["ResourceType"] == "opt-out-list"
    listing = call(account, "DescribeOptedOutNumbers", {"OptOutListName": "Default"}).json()
    assert len(listing["OptedOutNumbers"]) == 1
    assert AwsEmulator().lookup_not_found is False  # off unless asked for


def test_an_arn_names_a_list(account: AwsEmulator) -> None:
    arn = "arn:aws:sms-voice:us-east-1:123456789012:opt-out-list/Default"
    assert (
        call(
            account, "PutOptedOutNumber", {"OptOutListName": arn, "OptedOutNumber": "+12025550105"}
        ).status_code
        == 200
    )
    foreign = "arn:aws:sms-voice:us-east-1:999999999999:opt-out-list/Default"
    assert (
        error_of(
            call(
                account,
                "PutOptedOutNumber",
                {"OptOutListName": foreign, "OptedOutNumber": "+12025550105"},
            )
        )[1]
        == "ResourceNotFoundException"
    )


def test_the_thirty_day_rule_follows_the_clock() -> None:
    now = [1_800_000_000.0]
    account = AwsEmulator(clock=lambda: now[0], max_skew=10**10)
    body = {"OptOutListName": "Default", "OptedOutNumber": "+12025550106"}
    for _ in range(2):
        assert call(account, "PutOptedOutNumber", body).status_code == 200
        now[0] += 3600
    assert call(account, "DeleteOptedOutNumber", body).status_code == 200
    call(account, "PutOptedOutNumber", body)
    _status, code, answer = error_of(call(account, "DeleteOptedOutNumber", body))
    assert (code, answer["Reason"]) == ("ValidationException", "PHONE_NUMBER_CANNOT_BE_OPTED_IN")
    now[0] += 30 * 24 * 3600
    assert call(account, "DeleteOptedOutNumber", body).status_code == 200


# --- lists ------------------------------------------------------------------------------------


def test_creating_and_describing_lists(account: AwsEmulator) -> None:
    made = call(
        account,
        "CreateOptOutList",
        {"OptOutListName": "Marketing", "Tags": [{"Key": "team", "Value": "sms"}]},
    ).json()
    assert made["OptOutListName"] == "Marketing"
    assert made["Tags"] == [{"Key": "team", "Value": "sms"}]
    _status, code, body = error_of(
        call(account, "CreateOptOutList", {"OptOutListName": "Marketing"})
    )
    assert (code, body["Reason"]) == ("ConflictException", "RESOURCE_ALREADY_EXISTS")
    for name in ("A", "B", "C"):
        call(account, "CreateOptOutList", {"OptOutListName": name})
    first = call(account, "DescribeOptOutLists", {"MaxResults": 3}).json()
    rest = call(
        account, "DescribeOptOutLists", {"MaxResults": 3, "NextToken": first["NextToken"]}
    ).json()
    names = [i["OptOutListName"] for i in first["OptOutLists"] + rest["OptOutLists"]]
    assert names == ["A", "B", "C", "Default", "Marketing"]
    assert "NextToken" not in rest
    chosen = call(account, "DescribeOptOutLists", {"OptOutListNames": ["Marketing"]}).json()
    assert [i["OptOutListName"] for i in chosen["OptOutLists"]] == ["Marketing"]
    missing = call(account, "DescribeOptOutLists", {"OptOutListNames": ["Nope"]})
    assert error_of(missing)[1] == "ResourceNotFoundException"
    if "Owner" in service_model().operation_model("DescribeOptOutLists").input_shape.members:
        # Models since botocore 1.3x: lists shared from other accounts (none here)
        shared = call(account, "DescribeOptOutLists", {"Owner": "SHARED"}).json()
        assert shared == {"OptOutLists": []}


def test_a_create_sent_again_with_its_token_is_the_same_create(account: AwsEmulator) -> None:
    """A ClientToken makes CreateOptOutList idempotent: the same token and name are
    answered as the first create was; without it, or with another, the name is taken."""
    body = {"OptOutListName": "Promotions", "ClientToken": "token-1"}
    first = call(account, "CreateOptOutList", body)
    again = call(account, "CreateOptOutList", body)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    for other in ({"ClientToken": "token-2"}, {}):
        _status, code, _ = error_of(
            call(account, "CreateOptOutList", {"OptOutListName": "Promotions", **other})
        )
        assert code == "ConflictException"


# --- error names in every form -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("forms", "header", "type_"),
    [
        (
            ErrorForms(),
            "ThrottlingException:http://internal.amazon.com/",
            f"{NS}#ThrottlingException",
        ),
        (ErrorForms(header="{code}"), "ThrottlingException", f"{NS}#ThrottlingException"),
        (ErrorForms(header=None, body="{code}:http://x/"), None, "ThrottlingException:http://x/"),
        (
            ErrorForms(header="{namespace}#{code}", body="{namespace}#{code}:http://x/"),
            f"{NS}#ThrottlingException",
            f"{NS}#ThrottlingException:http://x/",
        ),
    ],
)
def test_error_names_in_the_form_asked(forms: ErrorForms, header: str | None, type_: str) -> None:
    account = AwsEmulator(error_forms=forms)
    account.inject("throttle")
    answer = call(account, "DescribeOptOutLists", {})
    assert answer.status_code == 400
    assert answer.headers.get("x-amzn-errortype") == header
    assert answer.json()["__type"] == type_
    assert answer.json()["Message"] == "Rate exceeded."


# --- throttles and faults ------------------------------------------------------------------------


def test_quotas_throttle_over_the_rate() -> None:
    clock = [0.0]
    account = AwsEmulator(quotas={"DescribeOptOutLists": 2.0}, monotonic=lambda: clock[0])
    codes = [call(account, "DescribeOptOutLists", {}).status_code for _ in range(3)]
    assert codes == [200, 200, 400]
    assert error_of(call(account, "DescribeOptOutLists", {}))[1] == "ThrottlingException"
    clock[0] += 0.5
    assert call(account, "DescribeOptOutLists", {}).status_code == 200
    assert account.throttled == 2


def test_queued_faults(account: AwsEmulator) -> None:
    account.inject("error", "unavailable", "throttle")
    first, second, third = (call(account, "DescribeOptOutLists", {}) for _ in range(3))
    assert error_of(first)[:2] == (500, "InternalServerException")
    assert error_of(second)[:2] == (503, "ServiceUnavailableException")
    assert error_of(third)[:2] == (400, "ThrottlingException")
    assert call(account, "DescribeOptOutLists", {}).status_code == 200


def test_a_throttle_rate_with_a_seed_repeats() -> None:
    def run() -> list[int]:
        account = AwsEmulator(throttle_rate=0.5, seed=3)
        return [call(account, "DescribeOptOutLists", {}).status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert 200 in first
    assert 400 in first


def test_latency_is_the_answer_time(account: AwsEmulator) -> None:
    slow = AwsEmulator(latency=0.2)
    started = datetime.now()
    call(slow, "DescribeOptOutLists", {})
    assert datetime.now() - started >= timedelta(seconds=0.2)
