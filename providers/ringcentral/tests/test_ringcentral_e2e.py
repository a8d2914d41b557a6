"""End to end: configuration, plugin registration, the CLI, and both clients over the emulator."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import optouts
from optouts_ringcentral import Emulator, RingCentralProvider
from optouts_ringcentral._emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_JWT,
    parse_rate_limit,
)
from optouts_ringcentral.testing import numbers

SENDER = "+16505550100"


def test_registered_as_a_plugin() -> None:
    info = {provider.name: provider for provider in optouts.providers()}
    assert "ringcentral" in info
    assert info["ringcentral"].capabilities == frozenset(optouts.Capability)


def test_sync_client_over_real_http(
    live_emulator: tuple[str, Emulator], monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    url, emulator = live_emulator
    monkeypatch.setenv("RC_SERVER_URL", url)
    monkeypatch.setenv("RC_CLIENT_ID", DEFAULT_CLIENT_ID)
    monkeypatch.setenv("RC_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    monkeypatch.setenv("OPTOUTS_RINGCENTRAL_JWT", DEFAULT_JWT)
    monkeypatch.setenv("OPTOUTS_RINGCENTRAL_API", api)
    with optouts.Client("ringcentral") as client:
        recipients = numbers(5)
        assert client.add(SENDER, recipients).ok
        assert client.remove(SENDER, recipients[:2]).ok
        checked = client.check(SENDER, recipients)
        assert [item.opted_out for item in checked] == [False, False, True, True, True]
        assert {r.recipient for r in client.list(SENDER)} == set(recipients[2:])
    assert emulator.counts["getToken"] == 1
    assert emulator.counts["revokeToken"] == 1


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RC_SERVER_URL", "https://elsewhere.example")
    monkeypatch.setenv("OPTOUTS_RINGCENTRAL_API", "v2")
    client = optouts.Client(
        "ringcentral",
        client_id="id",
        client_secret="secret",
        jwt=DEFAULT_JWT,
        server_url="http://127.0.0.1:9/",
    )
    provider = client.provider
    assert isinstance(provider, RingCentralProvider)
    assert provider.server_url == "http://127.0.0.1:9"
    assert provider.api == "consents"
    client.close()


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RC_CLIENT_ID", "OPTOUTS_RINGCENTRAL_CLIENT_ID", "OPTOUTS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(optouts.ConfigurationError, match="OPTOUTS_RINGCENTRAL_CLIENT_ID"):
        optouts.Client("ringcentral", client_secret="s", jwt="j")


def test_bad_api_setting_is_a_configuration_error() -> None:
    with pytest.raises(optouts.ConfigurationError, match="api"):
        optouts.Client("ringcentral", client_id="i", client_secret="s", jwt="j", api="v3")


async def test_async_client_in_process(
    async_client: optouts.AsyncClient, emulator: Emulator
) -> None:
    recipients = numbers(30)
    assert (await async_client.add(SENDER, recipients[:10])).ok
    checked = await async_client.check(SENDER, recipients)
    assert [item.opted_out for item in checked] == [True] * 10 + [False] * 20
    listed = [record async for record in async_client.list(SENDER, page_size=3)]
    assert sorted(r.recipient for r in listed) == recipients[:10]
    assert emulator.counts["getToken"] == 1


def test_emulate_command() -> None:
    from optouts_ringcentral._plugin import emulate_ringcentral

    result = CliRunner().invoke(emulate_ringcentral, ["--help"])
    assert result.exit_code == 0
    assert "--rate-limit" in result.output
    bad = CliRunner().invoke(emulate_ringcentral, ["--rate-limit", "fifty"])
    assert bad.exit_code != 0


def test_rate_limit_option() -> None:
    limit = parse_rate_limit("50/10s")
    assert (limit.limit, limit.window, limit.penalty_seconds) == (50, 10.0, 10.0)
    with pytest.raises(ValueError, match="LIMIT"):
        parse_rate_limit("0/10s")


def test_emulator_refuses_unknown_paths_and_methods(emulator: Emulator) -> None:
    from optouts_ringcentral.testing import SyncASGITransport

    with httpx.Client(transport=SyncASGITransport(emulator), base_url="http://rc.test") as http:
        assert http.get("/restapi/v1.0/nowhere").status_code == 404
        assert http.delete("/restapi/oauth/token").status_code == 405
        token = emulator.issue_token()
        other = http.get(
            "/restapi/v1.0/account/999/a2p-sms/opt-outs",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert other.status_code == 404
        assert other.json()["errorCode"] == "CMN-102"
        csv = http.get(
            "/restapi/v1.0/account/~/a2p-sms/opt-outs",
            headers={"Authorization": f"Bearer {token}", "Accept": "text/csv"},
        )
        assert csv.headers["content-type"] == "text/csv"
        assert csv.text.startswith("from,to,status,source")


LIVE_VARIABLES = ("RC_SERVER_URL", "RC_CLIENT_ID", "RC_CLIENT_SECRET", "RC_JWT", "RC_TEST_SENDER")


@pytest.mark.live
def test_live_read_only() -> None:
    """Against RingCentral itself, read-only; runs only with credentials in the environment."""
    if not all(os.environ.get(name) for name in LIVE_VARIABLES):
        pytest.skip(f"set {', '.join(LIVE_VARIABLES)} to run against RingCentral")
    sender = os.environ["RC_TEST_SENDER"]
    with optouts.Client("ringcentral") as client:
        page = client.list_page(sender, page_size=10)
        assert all(record.provider == "ringcentral" for record in page.items)
        assert len(client.check(sender, ["+12125550100"])) == 1


def test_public_api_is_complete_and_sorted() -> None:
    import optouts_ringcentral

    names = optouts_ringcentral.__all__
    assert names == sorted(names)
    assert all(hasattr(optouts_ringcentral, name) for name in names)


@pytest.mark.parametrize(
    "url", ["http://platform.ringcentral.com", "http://10.0.0.5:8080", "ftp://127.0.0.1"]
)
def test_server_url_must_be_https(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    credentials: dict[str, Any] = {"client_id": "i", "client_secret": "s", "jwt": "j"}
    with pytest.raises(optouts.ConfigurationError, match="server_url") as raised:
        optouts.Client("ringcentral", server_url=url, **credentials)
    assert "https://" in str(raised.value)
    monkeypatch.setenv("RC_SERVER_URL", url)
    with pytest.raises(optouts.ConfigurationError, match="RC_SERVER_URL"):
        optouts.Client("ringcentral", **credentials)
    with pytest.raises(optouts.ConfigurationError, match="server_url"):
        RingCentralProvider(server_url=url, **credentials)


def test_plain_http_is_for_the_emulator_on_this_machine(
    live_emulator: tuple[str, Emulator],
) -> None:
    url, emulator = live_emulator
    assert url.startswith("http://127.0.0.1:")
    with optouts.Client(
        "ringcentral",
        server_url=url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        jwt=DEFAULT_JWT,
    ) as client:
        assert client.list_page(SENDER).items == ()
    assert emulator.counts["getToken"] == 1
    for other in ("http://localhost:8080/", "http://[::1]:8080", "https://rc.example"):
        assert RingCentralProvider(server_url=other, client_id="i", client_secret="s", jwt="j")
