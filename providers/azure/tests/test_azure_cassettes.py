"""Recorded exchanges, replayed offline with the network blocked.

Two kinds: (a) recorded from the emulator over real HTTP (re-record with
``pytest providers/azure/tests/test_azure_cassettes.py --record-mode=rewrite``), and
(b) the exchanges documented in the seeds and the spec's examples, recorded from a mock
transport that answers with the published bodies. Credentials never reach the files:
``conftest.scrub_request`` runs before anything is written, and
``test_no_cassette_holds_a_credential`` scans every file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import optouts
from optouts_azure import DEFAULT_ACCESS_KEY, AzureEmulator, AzureProvider

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]

SENDER = "+18005550100"
FAST = optouts.RetryPolicy(backoff=0.001, cap=0.01)
CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "azure"

Target = Callable[..., tuple[str, "AzureEmulator | None"]]
Drive = Callable[[Any, httpx.Client, "httpx.Auth | None"], Any]


def numbers(count: int, exchange: int = 555) -> list[str]:
    return [f"+1303{exchange:03d}{i:04d}" for i in range(count)]


@pytest.fixture
def client_for() -> Iterator[Callable[..., optouts.Client]]:
    made: list[optouts.Client] = []

    def make(connection_string: str, **settings: Any) -> optouts.Client:
        client = optouts.Client(
            "azure", connection_string=connection_string, retry=FAST, **settings
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# --- (a) recorded from the emulator ------------------------------------------------------------


def test_add_check_remove(cassette_target: Target, client_for: Any) -> None:
    text, _ = cassette_target()
    client = client_for(text)
    a, b = numbers(2)
    assert [i.opted_out for i in client.add(SENDER, [a, b])] == [True, True]
    assert [i.opted_out for i in client.check(SENDER, [a, b])] == [True, True]
    assert [i.opted_out for i in client.remove(SENDER, [a])] == [False]
    assert [i.opted_out for i in client.check(SENDER, [a, b])] == [False, True]


def test_batching_past_100(cassette_target: Target, client_for: Any) -> None:
    text, _ = cassette_target()
    client = client_for(text)
    many = numbers(250, 556)
    added = client.add(SENDER, many)
    assert added.ok
    assert added.requests == 3
    checked = client.check(SENDER, [*many[::2], *numbers(5, 557)])
    assert checked.requests == 2
    assert [i.opted_out for i in checked] == [True] * 125 + [False] * 5


def test_mixed_per_recipient_outcomes(
    cassette_target: Target, client_for: Any, drive: Drive
) -> None:
    text, emulator = cassette_target()
    if emulator:
        emulator.inject("items")
    client = client_for(text)
    many = numbers(8, 558)
    result = client.add(SENDER, many)
    assert result.ok  # the 500 items were sent again alone
    assert result.requests == 2
    provider = client.provider
    with httpx.Client() as http:
        answers = drive(
            provider.check(SENDER, [many[0], "+123", numbers(1, 559)[0]]), http, provider.auth
        )
    assert answers["+123"].status_code == 400
    assert answers["+123"].error == "Invalid recipient phone number format"
    assert answers[many[0]].opted_out is True


def test_validation_errors(cassette_target: Target, client_for: Any, drive: Drive) -> None:
    text, _ = cassette_target()
    provider = client_for(text).provider
    with httpx.Client() as http:
        with pytest.raises(optouts.ProviderError) as too_many:
            drive(provider.add(SENDER, numbers(101, 560)), http, provider.auth)
        with pytest.raises(optouts.ProviderError) as no_sender:
            drive(provider.add("", numbers(1, 561)), http, provider.auth)
    assert too_many.value.status_code == 400
    assert "maximum length of '100'" in str(too_many.value)
    assert too_many.value.request_id
    assert "The From field is required." in str(no_sender.value)


def test_invalid_api_version(cassette_target: Target, client_for: Any) -> None:
    text, _ = cassette_target()
    client = client_for(text, api_version="2099-01-01")
    with pytest.raises(optouts.ProviderError) as raised:
        client.check(SENDER, numbers(1, 562))
    assert raised.value.code == "InvalidApiVersion"
    assert raised.value.status_code == 400


def test_wrong_key(cassette_target: Target, client_for: Any) -> None:
    text, _ = cassette_target(access_key="b3RoZXIga2V5")
    with pytest.raises(optouts.AuthenticationError) as raised:
        client_for(text).check(SENDER, numbers(1, 563))
    assert raised.value.code == "Denied"
    assert "key may be wrong" in str(raised.value)


def test_feature_not_enabled(cassette_target: Target, client_for: Any) -> None:
    text, _ = cassette_target(enabled=False)
    with pytest.raises(optouts.AuthenticationError) as raised:
        client_for(text).add(SENDER, numbers(1, 564))
    assert raised.value.status_code == 403
    assert "not be enabled" in str(raised.value)


def test_throttled_then_served(cassette_target: Target, client_for: Any) -> None:
    text, emulator = cassette_target()
    if emulator:
        emulator.inject("throttle")
    result = client_for(text).add(SENDER, numbers(3, 565))
    assert result.ok
    assert result.requests == 2


def test_server_errors_then_served(cassette_target: Target, client_for: Any) -> None:
    text, emulator = cassette_target()
    if emulator:
        emulator.inject("error", "unavailable")
    result = client_for(text).check(SENDER, numbers(3, 566))
    assert result.ok
    assert result.requests == 3


# --- (b) the documented exchanges ----------------------------------------------------------------


def documented(answers: dict[str, Any]) -> httpx.Client:
    """Answers each operation with its published body (used when recording only)."""

    def handler(request: httpx.Request) -> httpx.Response:
        operation = request.url.path.rsplit(":", 1)[-1]
        return httpx.Response(200, json=answers[operation])

    return httpx.Client(transport=httpx.MockTransport(handler))


SEED_RECIPIENTS = ["+15550112233", "+15550112234"]
SEED_ANSWERS = {
    "add": {"value": [{"to": r, "httpStatusCode": 200} for r in SEED_RECIPIENTS]},
    "remove": {"value": [{"to": r, "httpStatusCode": 200} for r in SEED_RECIPIENTS]},
    "check": {
        "value": [
            {"to": "+15550112233", "httpStatusCode": 200, "isOptedOut": True},
            {"to": "+15550112234", "httpStatusCode": 200, "isOptedOut": False},
        ]
    },
}


def test_seed_quickstart_exchanges() -> None:
    """Seed 000: the quickstart's add, remove and check of two recipients."""
    text = f"endpoint=https://contoso.communication.azure.com/;accesskey={DEFAULT_ACCESS_KEY}"
    with documented(SEED_ANSWERS) as http:
        client = optouts.Client(
            "azure", connection_string=text, api_version="2024-12-10-preview", http_client=http
        )
        assert [i.opted_out for i in client.add("+15551234567", SEED_RECIPIENTS)] == [True, True]
        assert [i.opted_out for i in client.remove("+15551234567", SEED_RECIPIENTS)] == [False] * 2
        assert [i.opted_out for i in client.check("+15551234567", SEED_RECIPIENTS)] == [True, False]


@pytest.mark.parametrize("operation", ["add", "remove", "check"])
def test_spec_examples(examples: dict[str, Any], drive: Drive, operation: str) -> None:
    """The 2026-01-23 examples, mixed 200/400/500 items included (seed 002 shows remove)."""
    example = examples[operation]
    provider = AzureProvider.from_connection_string(
        f"endpoint=https://contoso.communication.azure.com/;accesskey={DEFAULT_ACCESS_KEY}"
    )
    recipients = [r["to"] for r in example["request"]["recipients"]]
    with documented({operation: example["response_200"]}) as http:
        exchange = getattr(provider, operation)(example["request"]["from"], recipients)
        results = drive(exchange, http, provider.auth)
    assert [results[r].status_code for r in recipients] == [
        item["httpStatusCode"] for item in example["response_200"]["value"]
    ]
    assert results["+123"].error == "Invalid recipient phone number format"
    if operation == "check":
        assert [results[r].opted_out for r in recipients] == [True, False, None, None]


# --- the files themselves -------------------------------------------------------------------------

FORBIDDEN = {
    "an HMAC signature": re.compile(r"Signature=(?!<scrubbed>)\S"),
    "an access key": re.compile(r"(?i)accesskey=(?!<scrubbed>)[^;\s'\"]"),
    "a bearer token": re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "a base64 key": re.compile(r"[A-Za-z0-9+/]{60,}={0,2}"),
    "the emulator's key": re.compile(re.escape(DEFAULT_ACCESS_KEY)),
}


def leaks(text: str) -> list[str]:
    return [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host&Signature=abc=",
        "endpoint=https://x/;accesskey=abc",
        "Authorization: Bearer abcdefghijkl",
        "token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig",
        "key: " + "A" * 86 + "==",
        DEFAULT_ACCESS_KEY,
    ],
)
def test_the_scan_catches_credentials(text: str) -> None:
    assert leaks(text)


def test_content_hashes_are_not_credentials() -> None:
    assert leaks("x-ms-content-sha256: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") == []


def test_no_cassette_holds_a_credential() -> None:
    files = sorted(CASSETTES.rglob("*.yaml"))
    assert files, f"no cassettes under {CASSETTES}"
    found = {str(path.relative_to(CASSETTES)): leaks(path.read_text()) for path in files}
    assert {path: what for path, what in found.items() if what} == {}


def test_cassettes_cover_every_error_shape() -> None:
    statuses: set[int] = set()
    for path in CASSETTES.rglob("*.yaml"):
        statuses.update(
            int(code) for code in re.findall(r"\n    status:\n      code: (\d+)", path.read_text())
        )
    assert {200, 400, 401, 403, 429, 500, 503} <= statuses


def test_recorded_exchanges_conform(conforms: Callable[[str, Any], None]) -> None:
    """Every recorded answer fits the spec, and so does every request meant to be valid."""
    yaml = pytest.importorskip("yaml")
    for path in CASSETTES.rglob("*.yaml"):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            if not path.name.startswith("test_validation_errors"):
                conforms("OptOutRequest", json.loads(interaction["request"]["body"]))
            status = interaction["response"]["status"]["code"]
            definition = {200: "OptOutResponse", 400: "BadRequestErrorResponse"}.get(
                status, "StandardErrorResponse"
            )
            conforms(definition, json.loads(interaction["response"]["body"]["string"]))
