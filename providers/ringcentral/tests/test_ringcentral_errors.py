"""Every RingCentral error shape maps onto the core exceptions, keyed on codes."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import optouts
from optouts import AuthenticationError, ProviderError, RateLimited, RetryPolicy
from optouts_ringcentral._errors import error_code, error_from_response, retry_after
from optouts_ringcentral.testing import FakeClock, make_provider, numbers

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


ABSURD_WAITS = [
    "inf",
    "-inf",
    "Infinity",
    "nan",
    "1e999",
    "99999999999999999999",
    "86401",
    "-5",
    "-0.5",
    "",
    "soon",
    "Wed, 21 Oct 2015 07:28:00 GMT",
]


@pytest.mark.parametrize("header", ABSURD_WAITS)
def test_an_absurd_retry_after_is_the_default_penalty(header: str) -> None:
    error = error_from_response(response(429, {"errorCode": "CMN-301"}, **{"Retry-After": header}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 60.0


@pytest.mark.parametrize(("header", "expected"), [("0", 0.0), ("2.5", 2.5), ("86400", 86400.0)])
def test_a_sane_retry_after_is_believed(header: str, expected: float) -> None:
    assert retry_after(response(429, {}, **{"Retry-After": header})) == expected


@given(
    st.one_of(
        st.floats().map(repr),
        st.integers().map(str),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    )
)
def test_retry_after_is_always_a_sane_wait(header: str) -> None:
    wait = retry_after(response(429, {}, **{"Retry-After": header}))
    assert 0 <= wait <= 86_400


# --- answers that cannot be read are never "no records" -------------------------------------

UNREADABLE_PAGES = [
    {},
    {"records": None},
    {"records": "none"},
    {"records": {}},
    {"records": [1]},
    {"records": [], "paging": "last"},
    {"records": [], "paging": {"nextPageToken": 5}},
]


def serving(body: Any, bad: set[str] | None = None) -> httpx.MockTransport:
    """A vendor answering ``body`` to every list or search (only those naming a number in
    ``bad``, when given; the others get an empty page)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.url.path == "/restapi/oauth/revoke":
            return httpx.Response(200)
        asked = request.content.decode() + str(request.url.params)
        if bad is None or any(number in asked for number in bad):
            return httpx.Response(200, json=body)
        return httpx.Response(200, json={"records": [], "paging": {"perPage": 1000}})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("api", ["a2p-sms", "consents"])
@pytest.mark.parametrize("body", UNREADABLE_PAGES, ids=str)
def test_an_unreadable_page_is_an_error_not_an_empty_page(api: str, body: Any) -> None:
    http = httpx.Client(transport=serving(body))
    with (
        optouts.Client(make_provider(api), http_client=http) as client,
        pytest.raises(ProviderError, match="RingCentral returned"),
    ):
        client.list_page(SENDER)


@pytest.mark.parametrize("api", ["a2p-sms", "consents"])
@pytest.mark.parametrize("size", [1, 60], ids=["lookup", "listing"])
@pytest.mark.parametrize("body", UNREADABLE_PAGES, ids=str)
def test_an_unreadable_page_fails_the_checked_recipients(api: str, size: int, body: Any) -> None:
    recipients = numbers(size)
    http = httpx.Client(transport=serving(body))
    with optouts.Client(make_provider(api), http_client=http) as client:
        result = client.check(SENDER, recipients)
    assert result.info["check_plan"].plan == ("lookup" if size == 1 else "list")
    assert [(item.ok, item.opted_out) for item in result] == [(False, None)] * size
    assert all("RingCentral returned" in (item.error or "") for item in result)


def test_an_unreadable_lookup_fails_its_own_recipients_alone() -> None:
    recipients = numbers(25)  # v2: two searches (20 + 5), cheaper than two listings
    http = httpx.Client(transport=serving({"records": None}, bad={recipients[-1]}))
    with optouts.Client(make_provider("consents"), http_client=http) as client:
        result = client.check(SENDER, recipients)
    assert result.info["check_plan"].plan == "lookup"
    answers = [(item.ok, item.opted_out) for item in result]
    assert answers == [(True, False)] * 20 + [(False, None)] * 5


# --- vendor text is cut short in errors, outcomes and logs ---------------------------------------

HUGE = "A" * 1_000_000


def test_a_huge_error_body_makes_a_short_error() -> None:
    body = {
        "errorCode": "X" * 100_000,
        "message": HUGE,
        "errors": [
            {"errorCode": "CMN-101", "message": "B" * 1_000_000, "parameterName": "p" * 100_000},
            *({"errorCode": "CMN-101", "message": f"error {n}"} for n in range(999)),
        ],
    }
    headers = {"RCRequestId": "R" * 100_000}
    error = error_from_response(response(400, body, **headers))
    assert len(str(error)) < 2000
    assert "1,000,000 characters" in str(error)
    assert "997 more error(s)" in str(error)
    assert len(error.code or "") < 150
    assert len(error.request_id or "") < 150


def test_a_huge_token_error_makes_a_short_error() -> None:
    body = {"error": "X" * 100_000, "error_description": HUGE}
    error = error_from_response(response(400, body, TOKEN_PATH))
    assert isinstance(error, AuthenticationError)
    assert len(str(error)) < 1000


def vendor_answering(body: Any) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.url.path == "/restapi/oauth/revoke":
            return httpx.Response(200)
        return httpx.Response(200, json=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


RECIPIENT = "+12125550000"


@pytest.mark.parametrize(
    ("api", "body"),
    [
        ("a2p-sms", {"optOuts": {"failed": [{"to": RECIPIENT, "errorMessage": HUGE}]}}),
        (
            "consents",
            {
                "failedRecords": [
                    {"to": RECIPIENT, "error": {"errorCode": "X" * 100_000, "message": HUGE}}
                ]
            },
        ),
    ],
)
def test_a_huge_per_number_reason_is_cut_short(api: str, body: Any) -> None:
    with optouts.Client(make_provider(api), http_client=vendor_answering(body)) as client:
        result = client.add(SENDER, [RECIPIENT])
    assert not result[0].ok
    assert len(result[0].error or "") < 500
    assert "1,000,000 characters" in (result[0].error or "")


@pytest.mark.parametrize(
    ("api", "record"),
    [
        ("a2p-sms", {"from": SENDER, "to": RECIPIENT, "status": HUGE}),
        ("consents", {"from": SENDER, "to": RECIPIENT, "optStatus": HUGE}),
        ("a2p-sms", {"from": HUGE, "to": RECIPIENT, "status": "OptOut"}),
        ("consents", {"from": SENDER, "to": HUGE, "optStatus": "OptOut"}),
    ],
)
def test_a_huge_record_value_is_cut_short(api: str, record: dict[str, Any]) -> None:
    http = vendor_answering({"records": [record]})
    with optouts.Client(make_provider(api), http_client=http) as client:
        result = client.check(SENDER, [RECIPIENT])
    assert not result[0].ok
    assert len(result[0].error or "") < 500


def test_log_lines_cut_vendor_text_short(caplog: pytest.LogCaptureFixture) -> None:
    """A group name and a token error code come from the vendor: they are cut in logs too."""
    caplog.set_level(logging.DEBUG, logger="optouts.ringcentral")
    logins = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal logins
        if request.url.path == "/restapi/oauth/token":
            logins += 1
            if "refresh_token=" in request.content.decode():
                return httpx.Response(400, json={"error": "E" * 100_000})
            return httpx.Response(
                200, json={"access_token": "t", "refresh_token": "r", "expires_in": 600}
            )
        group = {"X-Rate-Limit-Group": "G" * 10_000, "Retry-After": "0"}
        return httpx.Response(429, headers=group, json={"errorCode": "CMN-301"})

    clock = FakeClock()
    provider = make_provider(clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep)
    http = httpx.Client(transport=httpx.MockTransport(handler))
    with optouts.Client(provider, http_client=http, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(RateLimited):
            client.list_page(SENDER)
        clock.advance(590)  # due for renewal: the refresh is refused, the JWT logs in again
        with pytest.raises(RateLimited):
            client.list_page(SENDER)
    assert logins == 3
    mine = [r.getMessage() for r in caplog.records if r.name == "optouts.ringcentral"]
    assert any("rate limited in group" in line for line in mine)
    assert any("refresh refused" in line for line in mine)
    assert max(len(line) for line in mine) < 300
