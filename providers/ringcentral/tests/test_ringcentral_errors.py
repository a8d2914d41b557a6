"""Every RingCentral error shape maps onto the core exceptions, keyed on codes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import optouts
from optouts import AuthenticationError, ProviderError, RateLimited, RetryPolicy
from optouts_ringcentral._errors import error_code, error_from_response
from optouts_ringcentral.testing import make_provider

SENDER = "+16505550100"
API_PATH = "http://rc.test/restapi/v1.0/account/~/a2p-sms/opt-outs"
TOKEN_PATH = "http://rc.test/restapi/oauth/token"


def response(status: int, body: Any, url: str = API_PATH, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=httpx.Request("GET", url))


V1_INVALID = {
    "errorCode": "CMN-101",
    "message": "Parameter [from] value is invalid.",
    "errors": [
        {
            "errorCode": "CMN-101",
            "message": "Parameter [from] value is invalid.",
            "parameterName": "from",
        }
    ],
}
V2_INVALID = {
    "errors": [
        {
            "errorCode": "CMN-101",
            "message": "Parameter [to] value is invalid.",
            "parameterName": "to",
            "parameterValue": "x",
        }
    ]
}
OAUTH_INVALID = {
    "error": "invalid_grant",
    "error_description": "Invalid JWT",
    "errors": [{"errorCode": "OAU-140", "message": "Invalid JWT"}],
}


@pytest.mark.parametrize(
    ("status", "body", "url", "kind", "code"),
    [
        (400, V1_INVALID, API_PATH, ProviderError, "CMN-101"),
        (
            404,
            {"errorCode": "CMN-102", "message": "Resource not found"},
            API_PATH,
            ProviderError,
            "CMN-102",
        ),
        (
            500,
            {"errorCode": "CMN-203", "message": "Internal Server Error"},
            API_PATH,
            ProviderError,
            "CMN-203",
        ),
        (400, V2_INVALID, API_PATH, ProviderError, "CMN-101"),
        (
            503,
            {"errors": [{"errorCode": "CMN-211", "message": "Unavailable"}]},
            API_PATH,
            ProviderError,
            "CMN-211",
        ),
        (
            401,
            {"errorCode": "OAU-149", "message": "Invalid token"},
            API_PATH,
            AuthenticationError,
            "OAU-149",
        ),
        (
            403,
            {"errors": [{"errorCode": "CMN-401", "message": "Feature not available"}]},
            API_PATH,
            AuthenticationError,
            "CMN-401",
        ),
        (400, OAUTH_INVALID, TOKEN_PATH, AuthenticationError, "OAU-140"),
        (
            400,
            {"error": "unsupported_grant_type"},
            TOKEN_PATH,
            AuthenticationError,
            "unsupported_grant_type",
        ),
        (
            429,
            {"errorCode": "CMN-301", "message": "Request rate exceeded"},
            API_PATH,
            RateLimited,
            "CMN-301",
        ),
    ],
)
def test_error_shapes(
    status: int, body: Any, url: str, kind: type[ProviderError], code: str
) -> None:
    error = error_from_response(response(status, body, url, RCRequestId="req-1"))
    assert type(error) is kind
    assert error.code == code
    assert error.status_code == status
    assert error.request_id == "req-1"
    assert error.provider == "ringcentral"
    assert error.retryable == (status >= 500 or status == 429)


def test_messages_name_the_parameter() -> None:
    error = error_from_response(response(400, V2_INVALID))
    assert "[parameter to]" in str(error)


def test_codes_are_read_not_messages() -> None:
    same_code = {"errorCode": "CMN-101", "message": "something else entirely"}
    assert error_code(same_code) == error_code(V1_INVALID) == "CMN-101"
    assert error_code({"message": "Parameter [from] value is invalid."}) is None


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), (None, 60.0), ("soon", 60.0)])
def test_retry_after(header: str | None, expected: float) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    error = error_from_response(response(429, {"errorCode": "CMN-301", "message": "x"}, **headers))
    assert isinstance(error, RateLimited)
    assert error.retry_after == expected


def test_non_json_errors_still_map() -> None:
    request = httpx.Request("GET", API_PATH)
    error = error_from_response(
        httpx.Response(502, text="<html>bad gateway</html>", request=request)
    )
    assert error.status_code == 502
    assert error.code is None
    assert error.retryable


def scripted(*answers: httpx.Response) -> httpx.MockTransport:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.url.path == "/restapi/oauth/revoke":
            return httpx.Response(200)
        answer = queue.pop(0)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(handler)


def test_client_raises_a_whole_call_4xx() -> None:
    transport = scripted(httpx.Response(400, json=V1_INVALID))
    http = httpx.Client(transport=transport)
    with (
        optouts.Client(make_provider(), http_client=http) as client,
        pytest.raises(ProviderError) as raised,
    ):
        client.list_page(SENDER)
    assert raised.value.code == "CMN-101"


def test_a_token_endpoint_429_is_rate_limited() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "30", "X-Rate-Limit-Group": "Auth"})

    retry = RetryPolicy(attempts=1)
    http = httpx.Client(transport=httpx.MockTransport(handler))
    with optouts.Client(make_provider(), http_client=http, retry=retry) as client:
        with pytest.raises(RateLimited) as raised:
            client.list_page(SENDER)
        assert raised.value.retry_after == 30.0
        provider = client.provider
        assert provider.pacer.blocked_for("Auth") > 25  # type: ignore[attr-defined]
        assert provider.pacer.blocked_for("Light") == 0  # type: ignore[attr-defined]


def test_a_v1_list_record_without_status_takes_the_filter() -> None:
    body = {"records": [{"from": SENDER, "to": "+12125550100"}], "paging": {"perPage": 100}}
    transport = scripted(httpx.Response(200, json=body), httpx.Response(200, json=body))
    with optouts.Client(make_provider(), http_client=httpx.Client(transport=transport)) as client:
        page = client.list_page(SENDER)
        assert page.items[0].opted_out
        with pytest.raises(ProviderError):
            client.list_page(SENDER, status="all")
