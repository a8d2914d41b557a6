"""The emulator checks requests as Azure does and answers in the spec's shapes."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from optouts_azure import DEFAULT_ACCESS_KEY, AzureEmulator, DroppedConnection, HMACAuth

SENDER = "+18005550100"
URL = "http://azure.test/sms/optouts:{op}?api-version=2026-01-23"
KEY = base64.b64decode(DEFAULT_ACCESS_KEY)
NOW = 1_700_000_000.0

Send = Callable[..., Awaitable[httpx.Response]]


def body(*recipients: str, sender: str | None = SENDER) -> dict[str, Any]:
    data: dict[str, Any] = {"recipients": [{"to": r} for r in recipients]}
    if sender is not None:
        data["from"] = sender
    return data


@pytest.fixture
async def http(emulator: AzureEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as client:
        yield client


@pytest.fixture
def send(http: httpx.AsyncClient, conforms_response: Callable[[httpx.Response], None]) -> Send:
    """POST a signed request; every answer is checked against the spec."""

    async def post(
        op: str = "check",
        payload: Any = None,
        *,
        url: str | None = None,
        key: bytes = KEY,
        clock: Callable[[], float] | None = None,
        content: bytes | None = None,
        method: str = "POST",
    ) -> httpx.Response:
        data = content if content is not None else json.dumps(payload).encode()
        auth = HMACAuth(key, clock=clock) if clock else HMACAuth(key)
        response = await http.request(method, url or URL.format(op=op), content=data, auth=auth)
        conforms_response(response)
        return response

    return post


def items(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    value: list[dict[str, Any]] = response.json()["value"]
    return value


# --- authentication ----------------------------------------------------------------------


async def test_unsigned_requests_get_azures_401(
    http: httpx.AsyncClient, conforms_response: Callable[[httpx.Response], None]
) -> None:
    response = await http.post(URL.format(op="add"), json=body("+12025550100"))
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "Unauthorized", "message": ""}}
    conforms_response(response)


async def test_a_wrong_key_is_denied(send: Send) -> None:
    response = await send("add", body("+12025550100"), key=b"another key")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Denied"


async def test_a_changed_body_fails_the_content_hash(
    http: httpx.AsyncClient, emulator: AzureEmulator
) -> None:
    request = http.build_request("POST", URL.format(op="add"), json=body("+12025550100"))
    HMACAuth(KEY).sign(request)
    tampered = http.build_request(
        "POST", URL.format(op="add"), json=body("+12025550199"), headers=dict(request.headers)
    )
    tampered.headers["content-length"] = str(len(tampered.content))
    response = await http.send(tampered)
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "Denied",
        "message": "Request 'x-ms-content-sha256' differs from generated content hash.",
    }
    assert emulator.opted_out(SENDER) == set()


async def test_a_signature_for_another_path_is_denied(http: httpx.AsyncClient) -> None:
    request = http.build_request("POST", URL.format(op="check"), json=body("+12025550100"))
    HMACAuth(KEY).sign(request)
    moved = http.build_request(
        "POST", URL.format(op="add"), content=request.content, headers=dict(request.headers)
    )
    response = await http.send(moved)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The request signature is invalid."


@pytest.mark.parametrize(
    ("offset", "status"), [(-16 * 60, 401), (16 * 60, 401), (-14 * 60, 200), (14 * 60, 200)]
)
async def test_dates_more_than_15_minutes_off_are_denied(offset: float, status: int) -> None:
    emulator = AzureEmulator(clock=lambda: NOW)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        response = await http.post(
            URL.format(op="check"),
            json=body("+12025550100"),
            auth=HMACAuth(KEY, clock=lambda: NOW + offset),
        )
    assert response.status_code == status
    if status == 401:
        assert "15 minutes" in response.json()["error"]["message"]


async def test_a_resource_without_the_feature_is_forbidden(
    conforms_response: Callable[[httpx.Response], None],
) -> None:
    emulator = AzureEmulator(enabled=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        response = await http.post(
            URL.format(op="check"), json=body("+12025550100"), auth=HMACAuth(KEY)
        )
    assert response.status_code == 403
    conforms_response(response)


# --- routing and versions ------------------------------------------------------------------


async def test_unknown_paths_and_methods(send: Send) -> None:
    assert (
        await send(url="http://azure.test/sms/optouts:list?api-version=2026-01-23", payload={})
    ).status_code == 404
    assert (await send(method="PUT", payload=body("+12025550100"))).status_code == 405


async def test_a_missing_api_version(send: Send) -> None:
    response = await send(url="http://azure.test/sms/optouts:check", payload=body("+12025550100"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ApiVersionUnspecified"


async def test_an_unknown_api_version(send: Send) -> None:
    url = "http://azure.test/sms/optouts:remove?api-version=2024-12-10w-preview"
    response = await send(url=url, payload=body("+12025550100"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidApiVersion"
    assert "2024-12-10w-preview" in error["message"]


@pytest.mark.parametrize(
    "version",
    ["2024-12-10-preview", "2025-05-29-preview", "2025-08-01-preview", "2025-09-17", "2026-01-23"],
)
async def test_every_published_version_is_served(send: Send, version: str) -> None:
    url = f"http://azure.test/sms/optouts:check?api-version={version}"
    assert (await send(url=url, payload=body("+12025550100"))).status_code == 200


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        (body("+12025550100", sender=None), "From", "The From field is required."),
        (body("+12025550100", sender=""), "From", "The From field is required."),
        ({"from": SENDER}, "Recipients", "The Recipients field is required."),
        (body(), "Recipients", "minimum length of '1'"),
        (body(*(f"+1202555{i:04d}" for i in range(101))), "Recipients", "maximum length of '100'"),
        (
            {"from": SENDER, "recipients": [{"to": "+12025550100"}, {}]},
            "Recipients[1].To",
            "The To field is required.",
        ),
        ([1, 2], "$", "could not be converted"),
    ],
)
async def test_bodies_are_validated_in_the_problem_shape(
    send: Send, payload: Any, field: str, message: str
) -> None:
    response = await send("add", payload)
    assert response.status_code == 400
    problem = response.json()
    assert problem["title"] == "One or more validation errors occurred."
    assert problem["status"] == 400
    assert problem["traceId"].startswith("00-")
    assert any(message in text for text in problem["errors"][field])


async def test_a_body_that_is_not_json(send: Send) -> None:
    response = await send("add", content=b"{not json")
    assert response.status_code == 400
    assert "$" in response.json()["errors"]


async def test_exactly_100_recipients_are_accepted(send: Send) -> None:
    response = await send("add", body(*(f"+1202555{i:04d}" for i in range(100))))
    assert len(items(response)) == 100


async def test_invalid_numbers_fail_alone(send: Send) -> None:
    answer = items(await send("add", body("+12025550100", "+123", "12025550101")))
    assert [item["httpStatusCode"] for item in answer] == [200, 400, 400]
    assert answer[1] == {
        "to": "+123",
        "httpStatusCode": 400,
        "errorMessage": "Invalid recipient phone number format",
    }


# --- state ---------------------------------------------------------------------------------------


async def test_state_is_kept_per_sender_and_recipient(send: Send, emulator: AzureEmulator) -> None:
    a, b = "+12025550100", "+12025550101"
    assert items(await send("add", body(a, b))) == [
        {"to": a, "httpStatusCode": 200},
        {"to": b, "httpStatusCode": 200},
    ]
    await send("remove", body(b))
    other = "+18005550111"
    assert [i["isOptedOut"] for i in items(await send("check", body(a, b)))] == [True, False]
    assert [i["isOptedOut"] for i in items(await send("check", body(a, sender=other)))] == [False]
    assert emulator.opted_out(SENDER) == {a}
    emulator.reset()
    assert emulator.opted_out(SENDER) == set()
    assert emulator.requests == 0


async def test_concurrent_requests_lose_nothing(send: Send, emulator: AzureEmulator) -> None:
    groups = [[f"+1202{g:03d}{i:04d}" for i in range(20)] for g in range(200, 240)]
    await asyncio.gather(*(send("add", body(*group)) for group in groups))
    assert emulator.opted_out(SENDER) == {n for group in groups for n in group}
    assert emulator.requests == len(groups)


def test_threads_share_one_emulator_safely() -> None:
    emulator = AzureEmulator()

    def work(group: int) -> None:
        numbers = [f"+1303{group:03d}{i:04d}" for i in range(25)]

        async def go() -> None:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
                await http.post(URL.format(op="add"), json=body(*numbers), auth=HMACAuth(KEY))

        asyncio.run(go())

    threads = [threading.Thread(target=work, args=(g,)) for g in range(200, 216)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(emulator.opted_out(SENDER)) == 16 * 25
    assert emulator.requests == 16


# --- faults --------------------------------------------------------------------------------------


async def test_injected_faults_come_in_order(send: Send, emulator: AzureEmulator) -> None:
    emulator.inject("error", "unavailable", "throttle")
    first = await send("add", body("+12025550100"))
    second = await send("add", body("+12025550100"))
    throttled = await send("add", body("+12025550100"))
    assert first.status_code == 500
    assert second.status_code == 503
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "0"
    assert (await send("add", body("+12025550100"))).status_code == 200


async def test_throttling_without_retry_after() -> None:
    emulator = AzureEmulator(retry_after=None)
    emulator.inject("throttle")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        response = await http.post(
            URL.format(op="add"), json=body("+12025550100"), auth=HMACAuth(KEY)
        )
    assert response.status_code == 429
    assert "retry-after" not in response.headers


async def test_per_recipient_faults_leave_those_recipients_unchanged(
    send: Send, emulator: AzureEmulator
) -> None:
    numbers = [f"+1202555{i:04d}" for i in range(10)]
    emulator.inject("items")
    answer = items(await send("add", body(*numbers)))
    failed = {i["to"] for i in answer if i["httpStatusCode"] == 500}
    assert failed
    assert all(i["errorMessage"] == "Internal Server Error" for i in answer if i["to"] in failed)
    assert emulator.opted_out(SENDER) == set(numbers) - failed


async def test_a_dropped_connection_is_a_transport_error(
    send: Send, emulator: AzureEmulator
) -> None:
    emulator.inject("drop")
    with pytest.raises(httpx.TransportError):
        await send("add", body("+12025550100"))
    assert emulator.opted_out(SENDER) == set()
    assert issubclass(DroppedConnection, httpx.RemoteProtocolError)


async def test_random_faults_repeat_with_a_seed() -> None:
    async def statuses(seed: int) -> list[int | str]:
        emulator = AzureEmulator(seed=seed, fault_rate=0.5, throttle_rate=0.2)
        seen: list[int | str] = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
            for i in range(40):
                try:
                    response = await http.post(
                        URL.format(op="add"), json=body(f"+1202555{i:04d}"), auth=HMACAuth(KEY)
                    )
                except httpx.TransportError:
                    seen.append("drop")
                else:
                    codes = [item["httpStatusCode"] for item in response.json().get("value", [])]
                    seen.append(response.status_code if codes != [500] else "item")
        return seen

    first, again = await statuses(3), await statuses(3)
    assert first == again
    assert {200, 429} <= set(first)
    assert len(set(first)) >= 4


async def test_latency_still_answers() -> None:
    emulator = AzureEmulator(latency=0.001)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        response = await http.post(
            URL.format(op="check"), json=body("+12025550100"), auth=HMACAuth(KEY)
        )
    assert response.status_code == 200


def test_knobs_are_checked() -> None:
    with pytest.raises(ValueError, match="fault_rate"):
        AzureEmulator(fault_rate=2)
    with pytest.raises(ValueError, match="unknown faults"):
        AzureEmulator(faults=["boom"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown faults"):
        AzureEmulator().inject("boom")  # type: ignore[arg-type]


def test_connection_string_points_at_the_emulator() -> None:
    emulator = AzureEmulator()
    text = emulator.connection_string("http://127.0.0.1:8089/")
    assert text == f"endpoint=http://127.0.0.1:8089/;accesskey={DEFAULT_ACCESS_KEY}"


def test_served_over_loopback_a_drop_closes_the_socket(
    served: Any, emulator: AzureEmulator
) -> None:
    emulator.inject("drop")
    with httpx.Client(auth=HMACAuth(KEY)) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(
                f"{served.url}/sms/optouts:add?api-version=2026-01-23", json=body("+12025550100")
            )
        ok = http.post(
            f"{served.url}/sms/optouts:add?api-version=2026-01-23", json=body("+12025550100")
        )
    assert ok.status_code == 200
    assert ok.headers["ms-cv"]


async def test_item_fault_rate_fails_recipients_on_their_own(
    send: Send, emulator: AzureEmulator
) -> None:
    emulator.item_fault_rate = 0.5
    numbers = [f"+1202555{i:04d}" for i in range(100)]
    answered = items(await send("add", body(*numbers)))
    failed = {item["to"] for item in answered if item["httpStatusCode"] == 500}
    assert 20 < len(failed) < 80
    assert emulator.opted_out(SENDER) == set(numbers) - failed


async def test_check_meets_the_transient_400_add_does_not(
    send: Send, emulator: AzureEmulator
) -> None:
    emulator.inject("invalid_parameter", "invalid_parameter")
    checked = await send("check", body("+12025550100"))
    assert checked.status_code == 400
    assert checked.json()["error"]["message"] == "Request parameter   is invalid."
    added = await send("add", body("+12025550100"))
    assert added.status_code == 200
    assert emulator.opted_out(SENDER) == {"+12025550100"}


async def test_senders_the_resource_does_not_own_get_a_401(
    conforms_response: Callable[[httpx.Response], None],
) -> None:
    emulator = AzureEmulator(senders=[SENDER])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        other = await http.post(
            URL.format(op="add"),
            json=body("+12025550100", sender="+14255550123"),
            auth=HMACAuth(KEY),
        )
        own = await http.post(URL.format(op="add"), json=body("+12025550100"), auth=HMACAuth(KEY))
    assert other.status_code == 401
    conforms_response(other)
    assert other.json() == {"error": {"code": "Unauthorized", "message": ""}}
    assert own.status_code == 200
    assert emulator.opted_out("+14255550123") == set()
