"""Fixtures for the AWS provider's tests: a clean AWS environment, the emulator in-process
and on loopback, clients over both, and cassette settings that scrub credentials."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

import optouts
from optouts.testing import BlockingASGITransport, SwappableServer, blocking
from optouts_aws import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    AwsEmulator,
)
from optouts_aws.testing import FAST, emulator_settings

REPO = Path(__file__).resolve().parents[3]
CASSETTES = REPO / "cassettes" / "aws"
RECORDED_HOST = "sms-voice.us-east-1.amazonaws.invalid"
SCRUBBED = "<scrubbed>"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's optouts or AWS settings; every test has the emulator's
    key pair and Region in the standard variables, as a user of the emulator would."""
    for name in list(os.environ):
        if name.startswith("AWS_") or (
            name.startswith("OPTOUTS_")
            and name != "OPTOUTS_LOAD_PLUGINS"
            and not name.startswith("OPTOUTS_TEST_")
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no 1 s wait for an instance role
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DEFAULT_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_REGION", DEFAULT_REGION)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def emulator() -> AwsEmulator:
    """An account with the lists ``LISTS`` names."""
    made = AwsEmulator(seed=0)
    made.create_list("Marketing")
    made.create_list("Alerts")
    return made


@pytest.fixture
def client_for(emulator: AwsEmulator) -> Iterator[Callable[..., optouts.Client]]:
    """``make(**settings)``: a blocking Client over the in-process emulator."""
    made: list[optouts.Client] = []

    def make(app: AwsEmulator | None = None, **overrides: Any) -> optouts.Client:
        retry = overrides.pop("retry", FAST)
        http = httpx.Client(transport=BlockingASGITransport(app or emulator))
        client = optouts.Client(
            "aws", retry=retry, http_client=http, **emulator_settings(**overrides)
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(client_for: Callable[..., optouts.Client]) -> optouts.Client:
    return client_for()


@pytest.fixture
def async_client_for(emulator: AwsEmulator) -> Iterator[Callable[..., Any]]:
    """``make(**settings)``: an AsyncClient over the in-process emulator, made blocking."""
    made: list[Any] = []

    def make(app: AwsEmulator | None = None, **overrides: Any) -> Any:
        retry = overrides.pop("retry", FAST)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app or emulator))
        wrapped = blocking(
            optouts.AsyncClient(
                "aws", retry=retry, http_client=http, **emulator_settings(**overrides)
            )
        )
        made.append((wrapped, http))
        return wrapped

    yield make
    for wrapped, http in made:
        wrapped.close()
        asyncio.run(http.aclose())


# --- the emulator on loopback --------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[SwappableServer]:
    """The emulator on 127.0.0.1 for the whole session (each test swaps in its own)."""
    with SwappableServer(AwsEmulator()).running() as server:
        yield server


@pytest.fixture
def served(emulator_server: SwappableServer, emulator: AwsEmulator) -> SwappableServer:
    """The loopback server, serving this test's ``emulator``."""
    emulator_server.app = emulator
    return emulator_server


# --- cassettes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    return str(CASSETTES / Path(str(request.node.path)).stem)


_SIGNING_HEADERS = {"authorization", "x-amz-date", "x-amz-security-token", "host"}


def scrub_request(request: Any) -> Any:
    """Runs on a copy before recording and before matching: no key, token or signature."""
    parts = urlsplit(request.uri)
    request.uri = urlunsplit(("https", RECORDED_HOST, *parts[2:]))
    for name in list(request.headers):
        if name.lower() in _SIGNING_HEADERS:
            request.headers[name] = SCRUBBED
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in {"date", "server"}:
            del headers[name]
    return response


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    return {
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        # Signatures and dates change every run: match what the provider decided to send.
        "match_on": ["method", "path", "body", "x_amz_target"],
        "decode_compressed_response": True,
    }


def _same_target(r1: Any, r2: Any) -> None:
    """Put and Delete of one number send the same body: the operation tells them apart."""
    assert r1.headers.get("X-Amz-Target") == r2.headers.get("X-Amz-Target")


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    vcr.register_matcher("x_amz_target", _same_target)
