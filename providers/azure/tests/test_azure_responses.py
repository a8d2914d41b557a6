"""How the provider reads Azure's answers, driven through optouts.Client over MockTransport,
and the spec's published examples replayed through the parser."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import optouts
from optouts_azure import AzureProvider
from optouts_azure._api import Operation
from optouts_azure._responses import (
    is_transient_check_error,
    parse_results,
    raise_for_error,
    retry_after,
)

KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0wMDAwMDAwMA=="
CONNECTION = f"endpoint=https://contoso.communication.azure.com/;accesskey={KEY}"
SENDER = "+18005550100"
A, B, C = "+12025550100", "+12025550101", "+12025550102"
FAST = optouts.RetryPolicy(backoff=0.001, cap=0.01)

Handler = Callable[[httpx.Request], httpx.Response]


def ok_items(request: httpx.Request, **extra: Any) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json={
            "value": [{"to": r["to"], "httpStatusCode": 200, **extra} for r in body["recipients"]]
        },
    )


class Recorder:
    """A MockTransport handler answering from a script, remembering what was asked."""

    def __init__(self, *answers: Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request)

    def recipients(self, index: int) -> list[str]:
        return [r["to"] for r in json.loads(self.requests[index].content)["recipients"]]


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Pauses the client asked for, recorded instead of slept."""
    asked: list[float] = []
    monkeypatch.setattr("time.sleep", asked.append)
    return asked


@pytest.fixture
def client_for() -> Iterator[Callable[[Recorder], optouts.Client]]:
    clients: list[optouts.Client] = []

    def make(recorder: Recorder) -> optouts.Client:
        http = httpx.Client(transport=httpx.MockTransport(recorder))
        client = optouts.Client("azure", connection_string=CONNECTION, http_client=http, retry=FAST)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def json_error(status: int, body: Any, **headers: str) -> Handler:
    return lambda _request: httpx.Response(status, json=body, headers=headers)


def test_requests_are_signed_posts_to_the_operation(client_for: Any) -> None:
    recorder = Recorder(ok_items)
    client_for(recorder).add(SENDER, [A])
    request = recorder.requests[0]
    assert request.method == "POST"
    assert str(request.url) == (
        "https://contoso.communication.azure.com/sms/optouts:add?api-version=2026-01-23"
    )
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"].startswith("HMAC-SHA256 SignedHeaders=")
    assert json.loads(request.content) == {"from": SENDER, "recipients": [{"to": A}]}


def test_validation_400_is_a_provider_error_with_the_fields(client_for: Any) -> None:
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {"From": ["The From field is required."]},
        "traceId": "00-abc-def-00",
    }
    recorder = Recorder(json_error(400, body))
    with pytest.raises(optouts.ProviderError) as raised:
        client_for(recorder).check(SENDER, [A])
    error = raised.value
    assert type(error) is optouts.ProviderError
    assert error.status_code == 400
    assert "One or more validation errors occurred." in str(error)
    assert "From: The From field is required." in str(error)
    assert error.request_id == "00-abc-def-00"
    assert not error.retryable
    assert len(recorder.requests) == 1


def test_standard_400_keeps_the_code(client_for: Any) -> None:
    body = {
        "error": {"code": "InvalidApiVersion", "message": "no such version", "innerError": None}
    }
    recorder = Recorder(json_error(400, body, **{"MS-CV": "cv-1"}))
    with pytest.raises(optouts.ProviderError) as raised:
        client_for(recorder).add(SENDER, [A])
    assert raised.value.code == "InvalidApiVersion"
    assert raised.value.request_id == "cv-1"
    assert "no such version" in str(raised.value)


@pytest.mark.parametrize("status", [401, 403])
def test_refusals_explain_the_two_likely_causes(client_for: Any, status: int) -> None:
    body = {"error": {"code": "Denied", "message": "Signature verification failed."}}
    recorder = Recorder(json_error(status, body, **{"x-ms-client-request-id": "req-9"}))
    with pytest.raises(optouts.AuthenticationError) as raised:
        client_for(recorder).check(SENDER, [A])
    error = raised.value
    assert error.status_code == status
    assert error.code == "Denied"
    assert error.request_id == "req-9"
    assert "key may be wrong" in str(error)
    assert "not be enabled" in str(error)
    assert KEY not in str(error)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refusals_name_the_sender_as_a_possible_cause(client_for: Any, status: int) -> None:
    # Azure's SDK e2e test_opt_out_unauthorized_from_phone_number: a sender the resource
    # does not own is refused with 401, however right the key.
    recorder = Recorder(json_error(status, {"error": {"code": "Unauthorized", "message": ""}}))
    with pytest.raises(optouts.AuthenticationError) as raised:
        client_for(recorder).add("+14255550123", [A])
    message = str(raised.value)
    assert "the sender +14255550123 may not belong to this resource" in message
    assert "key may be wrong" in message
    assert KEY not in message
    assert KEY[:20] not in message


def test_empty_401_body_still_authenticates_nothing(client_for: Any) -> None:
    recorder = Recorder(json_error(401, {"error": {"code": "Unauthorized", "message": ""}}))
    with pytest.raises(optouts.AuthenticationError, match="HTTP 401"):
        client_for(recorder).check(SENDER, [A])


def test_429_is_retried_after_the_time_azure_asked(client_for: Any, pauses: list[float]) -> None:
    throttled = json_error(
        429, {"error": {"code": "TooManyRequests", "message": "slow"}}, **{"Retry-After": "7"}
    )
    recorder = Recorder(throttled, ok_items)
    result = client_for(recorder).add(SENDER, [A, B])
    assert result.ok
    assert result.requests == 2
    assert pauses == [7.0]


def test_429_that_never_ends_raises_rate_limited() -> None:
    response = httpx.Response(429, json={"error": {"code": "TooManyRequests", "message": "slow"}})
    with pytest.raises(optouts.RateLimited) as raised:
        raise_for_error(response)
    assert raised.value.retry_after is None
    assert raised.value.retryable


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"Retry-After": "Thu, 10 Aug 2023 12:40:05 GMT"}, 10.0),
        ({"Retry-After": "Thu, 10 Aug 2023 12:00:00 GMT"}, 0.0),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(
    headers: dict[str, str], expected: float | None
) -> None:
    response = httpx.Response(429, headers=headers)
    assert retry_after(response, now=lambda: 1691671195.0) == expected


@pytest.mark.parametrize(
    "value",
    [
        "inf",
        "-inf",
        "Infinity",
        "nan",
        "NaN",
        "1e999",
        "-1e999",
        "9" * 400,
        "9" * 5000,
        "-3",
        "-0.5",
        "-" + "9" * 400,
    ],
)
@pytest.mark.parametrize("header", ["Retry-After", "retry-after-ms", "x-ms-retry-after-ms"])
def test_retry_after_without_a_usable_wait_is_absent(header: str, value: str) -> None:
    response = httpx.Response(429, headers={header: value})
    assert retry_after(response, now=lambda: 1691671195.0) is None


def test_an_unusable_retry_after_ms_falls_back_to_retry_after() -> None:
    response = httpx.Response(429, headers={"retry-after-ms": "inf", "Retry-After": "4"})
    assert retry_after(response) == 4.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "1" + "0" * 300}, 1e300),  # huge but finite: the policy refuses it
        ({"retry-after-ms": "1e300"}, 1e297),
        ({"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, 253402300799.0 - 1691671195.0),
        ({"Retry-After": "Mon, 01 Jan 0001 00:00:00 GMT"}, 0.0),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),
        ({"Retry-After": "Thu, 10 Aug 2023 12:40:05 -0000"}, None),  # no zone: unknown
        ({"Retry-After": "Sat, 01 Jan 10000 00:00:00 GMT"}, None),
        ({"Retry-After": "Thu, 10 Aug 2023 99:99:99 GMT"}, None),
    ],
)
def test_retry_after_dates_far_off_and_huge_numbers(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after(httpx.Response(429, headers=headers), now=lambda: 1691671195.0) == expected


@given(
    st.sampled_from(["Retry-After", "retry-after-ms", "x-ms-retry-after-ms"]),
    st.one_of(
        st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40),
        st.floats().map(repr),
        st.integers().map(str),
        st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    ),
)
@example("Retry-After", "1e999")
@example("Retry-After", "nan")
def test_retry_after_never_raises_and_never_says_forever(header: str, value: str) -> None:
    stripped = value.strip(" \t")
    if not stripped:
        return  # httpx refuses a header it cannot send; nothing to parse
    response = httpx.Response(429, headers=[(header.encode(), stripped.encode("latin-1"))])
    wait = retry_after(response, now=lambda: 1691671195.0)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


def test_server_errors_are_retried(client_for: Any, pauses: list[float]) -> None:
    failing = json_error(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}})
    recorder = Recorder(failing, failing, ok_items)
    result = client_for(recorder).add(SENDER, [A])
    assert result.ok
    assert result.requests == 3
    assert len(pauses) == 2


@pytest.mark.usefixtures("pauses")
def test_server_errors_that_persist_fail_each_recipient(client_for: Any) -> None:
    recorder = Recorder(json_error(500, {"error": {"code": "InternalServerError", "message": "x"}}))
    result = client_for(recorder).check(SENDER, [A, B])
    assert [item.ok for item in result] == [False, False]
    assert [item.opted_out for item in result] == [None, None]
    assert {item.status_code for item in result} == {500}
    assert result.requests == FAST.attempts


@pytest.mark.usefixtures("pauses")
def test_transport_errors_are_retried(client_for: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    recorder = Recorder(refuse, ok_items)
    assert client_for(recorder).add(SENDER, [A]).ok
    assert len(recorder.requests) == 2


def test_non_json_error_body_shows_status_and_excerpt() -> None:
    html = "<html><body><h1>502 Bad Gateway</h1>" + "x" * 500 + "</body></html>"
    recorder = Recorder(lambda _request: httpx.Response(502, text=html, headers={"MS-CV": "cv-2"}))
    with pytest.raises(optouts.ProviderError) as raised:
        raise_for_error(recorder(httpx.Request("POST", "https://x")))
    message = str(raised.value)
    assert "HTTP 502" in message
    assert "<html><body><h1>502 Bad Gateway</h1>" in message
    assert len(raised.value.message) < 300
    assert raised.value.retryable
    assert raised.value.request_id == "cv-2"


def test_non_json_success_is_a_provider_error(client_for: Any) -> None:
    recorder = Recorder(lambda _request: httpx.Response(200, text="OK"))
    with pytest.raises(optouts.ProviderError, match="not JSON: 'OK'"):
        client_for(recorder).add(SENDER, [A])


def test_success_without_value_is_a_provider_error(client_for: Any) -> None:
    recorder = Recorder(lambda _request: httpx.Response(200, json={"items": []}))
    with pytest.raises(optouts.ProviderError, match="'value'"):
        client_for(recorder).add(SENDER, [A])


def test_per_recipient_failures_keep_the_vendor_message(client_for: Any) -> None:
    def mixed(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "value": [
                    {"to": A, "httpStatusCode": 200, "isOptedOut": True},
                    {
                        "to": B,
                        "httpStatusCode": 400,
                        "errorMessage": "Invalid recipient phone number format",
                    },
                    {"to": C, "httpStatusCode": 404},
                ]
            },
        )

    result = client_for(Recorder(mixed)).check(SENDER, [A, B, C])
    assert [(i.ok, i.opted_out, i.status_code) for i in result] == [
        (True, True, 200),
        (False, None, 400),
        (False, None, 404),
    ]
    assert result[1].error == "Invalid recipient phone number format"
    assert result[2].error == "HTTP 404"
    assert result.requests == 1


@pytest.mark.usefixtures("pauses")
def test_per_recipient_server_errors_are_sent_again_alone(client_for: Any) -> None:
    def first(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "value": [
                    {"to": A, "httpStatusCode": 200},
                    {"to": B, "httpStatusCode": 500, "errorMessage": "Internal Server Error"},
                    {"to": C, "httpStatusCode": 200},
                ]
            },
        )

    recorder = Recorder(first, ok_items)
    result = client_for(recorder).add(SENDER, [A, B, C])
    assert result.ok
    assert recorder.recipients(1) == [B]


def test_a_missing_flag_is_unknown_never_false(client_for: Any) -> None:
    recorder = Recorder(ok_items)  # 200 items without isOptedOut
    result = client_for(recorder).check(SENDER, [A])
    assert result[0].opted_out is None
    assert not result[0].ok
    assert "unknown" in (result[0].error or "")


def test_add_and_remove_report_the_state_they_set(client_for: Any) -> None:
    recorder = Recorder(ok_items)
    client = client_for(recorder)
    assert [i.opted_out for i in client.add(SENDER, [A])] == [True]
    assert [i.opted_out for i in client.remove(SENDER, [A])] == [False]


def test_unrequested_and_malformed_items_are_ignored() -> None:
    response = httpx.Response(
        200,
        json={
            "value": [
                {"to": "+19995550100", "httpStatusCode": 200, "isOptedOut": True},
                {"to": A, "httpStatusCode": "200", "isOptedOut": True},
                {"to": A, "httpStatusCode": True},
                "junk",
                {"to": B, "httpStatusCode": 200, "isOptedOut": False},
                {"to": B, "httpStatusCode": 200, "isOptedOut": True},
            ]
        },
    )
    results = parse_results("check", response, [A, B])
    assert list(results) == [B]
    assert results[B].opted_out is False


def test_recipients_azure_skipped_are_failed_by_the_client(client_for: Any) -> None:
    recorder = Recorder(lambda _request: httpx.Response(200, json={"value": []}))
    result = client_for(recorder).check(SENDER, [A])
    assert not result[0].ok
    assert result[0].opted_out is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"MS-CV": "cv", "x-ms-client-request-id": "client", "x-ms-request-id": "server"}, "cv"),
        ({"x-ms-client-request-id": "client", "x-ms-request-id": "server"}, "client"),
        ({"x-ms-request-id": "server"}, "server"),
    ],
)
def test_request_id_header_order(headers: dict[str, str], expected: str) -> None:
    response = httpx.Response(500, json={"error": {"code": "X", "message": "y"}}, headers=headers)
    with pytest.raises(optouts.ProviderError) as raised:
        raise_for_error(response)
    assert raised.value.request_id == expected


def test_list_is_unsupported_with_the_ledger_hint(client_for: Any) -> None:
    client = client_for(Recorder(ok_items))
    with pytest.raises(optouts.UnsupportedOperation) as raised:
        list(client.list())
    assert "azure" in str(raised.value)
    assert "local" in str(raised.value)
    with pytest.raises(optouts.UnsupportedOperation):
        client.list_page()


# --- the spec's published examples ---------------------------------------------------------


@pytest.mark.parametrize("operation", ["add", "remove", "check"])
def test_published_examples_parse(examples: dict[str, Any], operation: Operation) -> None:
    example = examples[operation]
    provider = AzureProvider.from_connection_string(CONNECTION)
    sender = example["request"]["from"]
    recipients = [r["to"] for r in example["request"]["recipients"]]
    request = provider.build_request(operation, sender, recipients)
    assert json.loads(request.content) == example["request"]
    answer = httpx.Response(200, json=example["response_200"])
    results = parse_results(operation, answer, recipients)
    for item in example["response_200"]["value"]:
        result = results[item["to"]]
        assert result.status_code == item["httpStatusCode"]
        assert result.ok == (item["httpStatusCode"] == 200)
        if result.ok:
            expected = item.get("isOptedOut", operation == "add")
            assert result.opted_out is expected
        else:
            assert result.opted_out is None
            assert result.error == item["errorMessage"]


def test_published_error_examples_raise(examples: dict[str, Any]) -> None:
    with pytest.raises(optouts.ProviderError) as bad:
        raise_for_error(httpx.Response(400, json=examples["check"]["response_400"]))
    assert bad.value.code == "ApiVersionUnspecified"
    with pytest.raises(optouts.AuthenticationError) as denied:
        raise_for_error(httpx.Response(401, json=examples["check"]["response_401"]))
    assert denied.value.code == "Denied"
    assert "x-ms-content-sha256" in str(denied.value)


def test_the_every_sender_wildcard_is_refused_before_sending(client_for: Any) -> None:
    recorder = Recorder(ok_items)
    client = client_for(recorder)
    with pytest.raises(optouts.InvalidNumber, match="per sender") as refused:
        client.check("*", [A])
    assert recorder.requests == []
    assert str(client.provider.refuses("add", "*")) == str(refused.value)  # what a dry run is told
    assert client.provider.refuses("add", "+18005550100") is None


# --- check's transient 400 -------------------------------------------------------------------

TRANSIENT = {"error": {"code": "BadRequest", "message": "Request parameter   is invalid."}}


def test_a_transient_check_400_is_sent_once_more(client_for: Any, pauses: list[float]) -> None:
    recorder = Recorder(json_error(400, TRANSIENT), lambda r: ok_items(r, isOptedOut=True))
    result = client_for(recorder).check(SENDER, [A, B])
    assert result.ok
    assert [i.opted_out for i in result] == [True, True]
    assert len(recorder.requests) == 2
    assert recorder.recipients(1) == [A, B]
    assert pauses == [AzureProvider.recheck_pause]
    first, second = (r.headers["x-ms-client-request-id"] for r in recorder.requests)
    assert first != second  # a new request, signed afresh


def test_a_transient_check_400_is_retried_once_only(client_for: Any, pauses: list[float]) -> None:
    recorder = Recorder(json_error(400, TRANSIENT))
    client = client_for(recorder)
    with pytest.raises(optouts.ProviderError, match="Request parameter") as raised:
        client.check(SENDER, [A])
    assert raised.value.status_code == 400
    assert not raised.value.retryable  # the core's policy (4 attempts) does not send it again
    assert len(recorder.requests) == 2
    assert len(pauses) == 1


@pytest.mark.parametrize("operation", ["add", "remove"])
def test_add_and_remove_never_resend_that_400(client_for: Any, operation: str) -> None:
    recorder = Recorder(json_error(400, TRANSIENT), ok_items)
    with pytest.raises(optouts.ProviderError, match="Request parameter"):
        getattr(client_for(recorder), operation)(SENDER, [A])
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "BadRequest", "message": "Request parameter 'from' is invalid."}},
        {"error": {"code": "InvalidApiVersion", "message": "no such version"}},
        {"title": "One or more validation errors occurred.", "errors": {"From": ["required"]}},
        {"error": {"code": "BadRequest", "message": ""}},
        [1, 2],
    ],
)
def test_other_400s_from_check_are_not_resent(client_for: Any, body: Any) -> None:
    recorder = Recorder(json_error(400, body), ok_items)
    with pytest.raises(optouts.ProviderError):
        client_for(recorder).check(SENDER, [A])
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("operation", "status", "message", "expected"),
    [
        ("check", 400, "Request parameter   is invalid.", True),
        ("check", 400, "request parameter is invalid", True),
        ("check", 400, " Request\tparameter is INVALID. ", True),
        ("check", 400, "Request parameter 'to' is invalid.", False),
        ("check", 500, "Request parameter   is invalid.", False),
        ("add", 400, "Request parameter   is invalid.", False),
        ("remove", 400, "Request parameter   is invalid.", False),
    ],
)
def test_the_transient_400_rule(
    operation: Operation, status: int, message: str, expected: bool
) -> None:
    response = httpx.Response(status, json={"error": {"code": "BadRequest", "message": message}})
    assert is_transient_check_error(operation, response) is expected


# --- malformed answers -------------------------------------------------------------------------


def test_items_whose_to_is_not_a_string_are_ignored() -> None:
    response = httpx.Response(
        200,
        json={
            "value": [
                {"to": [A], "httpStatusCode": 200, "isOptedOut": True},
                {"to": {"n": A}, "httpStatusCode": 200, "isOptedOut": True},
                {"to": B, "httpStatusCode": 200, "isOptedOut": False},
            ]
        },
    )
    assert list(parse_results("check", response, [A, B])) == [B]


@pytest.mark.parametrize("status", [200, 400, 500])
def test_a_body_nested_too_deeply_is_a_provider_error(status: int) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = httpx.Response(status, content=deep)
    with pytest.raises(optouts.ProviderError) as raised:
        parse_results("check", response, [A])
    assert raised.value.status_code == status
    assert len(str(raised.value)) < 400
    assert not is_transient_check_error("check", response)


def test_a_huge_vendor_message_makes_a_short_error_and_result() -> None:
    huge = "x" * 1_000_000
    refused = httpx.Response(
        400,
        json={"error": {"code": "C" * 100_000, "message": huge}},
        headers={"ms-cv": "r" * 100_000},
    )
    with pytest.raises(optouts.ProviderError) as caught:
        parse_results("add", refused, ["+12025550101"])
    assert len(str(caught.value)) < 1_000
    items = {"value": [{"to": "+12025550101", "httpStatusCode": 400, "errorMessage": huge}]}
    (outcome,) = parse_results("add", httpx.Response(200, json=items), ["+12025550101"]).values()
    assert outcome.error is not None
    assert len(outcome.error) < 400
