"""Connection strings and settings: every accepted form, every refusal, and no key in any text."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

import optouts
from optouts_azure import AzureProvider, Connection, parse_connection_string
from optouts_azure._connection import ConnectionStringError

KEY = base64.b64encode(b"k" * 64).decode()  # 88 characters ending in '=='
KEY_BYTES = b"k" * 64
ENDPOINT = "https://contoso.communication.azure.com"
CONNECTION = f"endpoint={ENDPOINT}/;accesskey={KEY}"


def test_parses_the_documented_form() -> None:
    connection = parse_connection_string(CONNECTION)
    assert connection == Connection(ENDPOINT, KEY_BYTES)


def test_keys_are_case_insensitive_and_padding_survives() -> None:
    assert KEY.endswith("==")
    connection = parse_connection_string(f" AccessKey={KEY} ; ENDPOINT={ENDPOINT}/// ;")
    assert connection.endpoint == ENDPOINT
    assert connection.key == KEY_BYTES


def test_unknown_parts_are_ignored() -> None:
    assert parse_connection_string(f"{CONNECTION};region=westeurope").endpoint == ENDPOINT


def test_a_port_and_path_prefix_are_kept() -> None:
    text = f"endpoint=http://127.0.0.1:8089/proxy/;accesskey={KEY}"
    assert parse_connection_string(text).endpoint == "http://127.0.0.1:8089/proxy"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"endpoint={ENDPOINT}", "no accesskey"),
        (f"accesskey={KEY}", "no endpoint"),
        (f"endpoint={ENDPOINT};accesskey=", "no accesskey"),
        (f"endpoint={ENDPOINT};junk;accesskey={KEY}", "part 2 is not name=value"),
        (f"endpoint={ENDPOINT};accesskey={KEY[:-1]}", "not valid base64"),
        (f"endpoint={ENDPOINT};accesskey={KEY[:40]}!!", "not valid base64"),
        (f"endpoint=contoso;accesskey={KEY}", "not a URL"),
        (f"endpoint=ftp://contoso;accesskey={KEY}", "not a URL"),
        (f"endpoint={KEY};accesskey={KEY}", "not a URL"),
        (f"endpoint=https://u:p@contoso;accesskey={KEY}", "user info"),
        ("", "no endpoint and no accesskey"),
    ],
)
def test_malformed_strings_say_why_without_the_key(text: str, reason: str) -> None:
    with pytest.raises(ConnectionStringError) as raised:
        parse_connection_string(text)
    assert reason in str(raised.value)
    assert KEY[:20] not in str(raised.value)


PLAIN_HTTP = [
    "http://contoso.communication.azure.com",
    "HTTP://contoso.communication.azure.com/",
    "http://10.0.0.7:8089",
    "http://127.0.0.1.nip.io",
    "http://[2001:db8::1]:8089/proxy",
]
LOOPBACK = ["http://127.0.0.1:8089", "http://127.5.6.7", "http://localhost:8089", "http://[::1]:8"]


@pytest.mark.parametrize("endpoint", PLAIN_HTTP)
def test_plain_http_off_this_machine_is_refused(endpoint: str) -> None:
    with pytest.raises(ConnectionStringError, match="must use https://") as raised:
        parse_connection_string(f"endpoint={endpoint};accesskey={KEY}")
    assert raised.value.part == "endpoint"
    with pytest.raises(ConnectionStringError, match="must use https://"):
        Connection.from_parts(endpoint, KEY)
    with pytest.raises(ConnectionStringError, match="must use https://"):
        Connection(endpoint, KEY_BYTES)


@pytest.mark.parametrize("endpoint", LOOPBACK)
def test_plain_http_to_loopback_is_accepted(endpoint: str) -> None:
    assert parse_connection_string(f"endpoint={endpoint}/;accesskey={KEY}").endpoint == endpoint
    assert Connection.from_parts(endpoint, KEY).endpoint == endpoint


@pytest.mark.parametrize("endpoint", PLAIN_HTTP)
def test_a_plain_http_connection_string_setting_is_a_configuration_error(endpoint: str) -> None:
    with pytest.raises(optouts.ConfigurationError) as raised:
        optouts.Client("azure", connection_string=f"endpoint={endpoint};accesskey={KEY}")
    message = str(raised.value)
    assert "setting 'connection_string'" in message
    assert "https://" in message
    assert KEY not in message
    assert KEY[:20] not in message


@pytest.mark.parametrize("endpoint", PLAIN_HTTP)
def test_a_plain_http_endpoint_setting_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setenv("OPTOUTS_AZURE_ENDPOINT", endpoint)
    monkeypatch.setenv("OPTOUTS_AZURE_ACCESS_KEY", KEY)
    with pytest.raises(optouts.ConfigurationError) as raised:
        optouts.Client("azure")
    message = str(raised.value)
    assert "setting 'endpoint'" in message
    assert "OPTOUTS_AZURE_ENDPOINT" in message
    assert "access_key" not in message  # the key is fine: only the endpoint is named
    assert KEY[:20] not in message


@pytest.mark.parametrize("endpoint", LOOPBACK)
def test_loopback_settings_reach_the_emulator(endpoint: str) -> None:
    by_string = optouts.Client("azure", connection_string=f"endpoint={endpoint};accesskey={KEY}")
    by_parts = optouts.Client("azure", endpoint=endpoint, access_key=KEY)
    for client in (by_string, by_parts):
        assert isinstance(client.provider, AzureProvider)
        assert client.provider.connection.endpoint == endpoint


def test_a_bad_access_key_setting_names_access_key() -> None:
    with pytest.raises(optouts.ConfigurationError, match="setting 'access_key'") as raised:
        optouts.Client("azure", endpoint=ENDPOINT, access_key=KEY[:-2] + "!!")
    assert "OPTOUTS_AZURE_ACCESS_KEY" in str(raised.value)


def test_connection_repr_hides_the_key() -> None:
    text = repr(parse_connection_string(CONNECTION))
    assert ENDPOINT in text
    assert KEY not in text
    assert repr(KEY_BYTES) not in text


# --- settings through optouts ---------------------------------------------------------------


def test_client_takes_a_connection_string_argument() -> None:
    client = optouts.Client("azure", connection_string=CONNECTION)
    assert isinstance(client.provider, AzureProvider)
    assert client.provider.connection.endpoint == ENDPOINT
    assert client.provider.api_version == "2026-01-23"


@pytest.mark.parametrize(
    "variable", ["OPTOUTS_AZURE_CONNECTION_STRING", "COMMUNICATION_SERVICES_CONNECTION_STRING"]
)
def test_connection_string_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("OPTOUTS_PROVIDER", "azure")
    monkeypatch.setenv(variable, CONNECTION)
    provider = optouts.Client().provider
    assert isinstance(provider, AzureProvider)
    assert provider.connection.key == KEY_BYTES


def test_endpoint_and_key_instead_of_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTOUTS_AZURE_ENDPOINT", ENDPOINT + "/")
    monkeypatch.setenv("OPTOUTS_AZURE_ACCESS_KEY", KEY)
    monkeypatch.setenv("OPTOUTS_AZURE_API_VERSION", "2024-12-10-preview")
    provider = optouts.Client("azure").provider
    assert isinstance(provider, AzureProvider)
    assert provider.connection == Connection(ENDPOINT, KEY_BYTES)
    assert provider.api_version == "2024-12-10-preview"


def test_settings_from_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_ACS", CONNECTION)
    (tmp_path / "optouts.toml").write_text(
        'provider = "azure"\n[providers.azure]\nconnection_string = "env:MY_ACS"\n'
        'api_version = "2025-09-17"\n'
    )
    provider = optouts.Client().provider
    assert isinstance(provider, AzureProvider)
    assert provider.api_version == "2025-09-17"


def test_missing_credentials_name_the_setting_and_variables() -> None:
    with pytest.raises(optouts.ConfigurationError) as raised:
        optouts.Client("azure")
    message = str(raised.value)
    for text in (
        "connection_string",
        "OPTOUTS_AZURE_CONNECTION_STRING",
        "COMMUNICATION_SERVICES_CONNECTION_STRING",
        "[providers.azure]",
        "OPTOUTS_AZURE_ENDPOINT",
        "OPTOUTS_AZURE_ACCESS_KEY",
    ):
        assert text in message


def test_endpoint_without_key_is_missing_credentials() -> None:
    with pytest.raises(optouts.ConfigurationError, match="access_key"):
        optouts.Client("azure", endpoint=ENDPOINT)


def test_both_forms_at_once_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMUNICATION_SERVICES_CONNECTION_STRING", CONNECTION)
    with pytest.raises(optouts.ConfigurationError, match="one form only") as raised:
        optouts.Client("azure", endpoint=ENDPOINT, access_key=KEY)
    assert KEY not in str(raised.value)


@pytest.mark.parametrize(
    "settings",
    [
        {"connection_string": f"endpoint={ENDPOINT};accesskey={KEY[:-1]}"},
        {"connection_string": f"endpoint={KEY};accesskey={KEY}"},
        {"endpoint": ENDPOINT, "access_key": KEY[:-2] + "!!"},
    ],
)
def test_malformed_settings_never_print_the_key(settings: dict[str, Any]) -> None:
    with pytest.raises(optouts.ConfigurationError) as raised:
        optouts.Client("azure", **settings)
    message = str(raised.value)
    assert "OPTOUTS_AZURE_" in message
    assert KEY[:-2] not in message
    assert KEY[:20] not in message


def test_unknown_api_version_shape_is_refused() -> None:
    with pytest.raises(optouts.ConfigurationError, match="api_version"):
        optouts.Client("azure", connection_string=CONNECTION, api_version="latest")


def test_future_dated_api_versions_are_accepted() -> None:
    provider = optouts.Client("azure", connection_string=CONNECTION, api_version="2027-03-01")
    assert isinstance(provider.provider, AzureProvider)


def test_no_text_shows_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def refuse(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "Denied", "message": "bad signature"}})

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    client = optouts.Client("azure", connection_string=CONNECTION, http_client=http)
    provider = client.provider
    assert isinstance(provider, AzureProvider)
    with pytest.raises(optouts.AuthenticationError) as raised:
        client.check("+18005550100", ["+12025550100"])
    texts = [repr(client), repr(provider), str(provider), repr(provider.auth)]
    texts += [
        repr(provider.connection),
        repr(vars(provider)),
        str(raised.value),
        repr(raised.value),
    ]
    texts += [caplog.text]
    for text in texts:
        assert KEY not in text
        assert repr(KEY_BYTES)[2:30] not in text
        assert "Signature=" not in text
    http.close()
