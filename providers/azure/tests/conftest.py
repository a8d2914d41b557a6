"""Fixtures for the Azure provider's tests: emulators in-process and on loopback, the official
schema, and cassette settings that scrub credentials when recording."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

import optouts
from optouts.testing import SwappableServer
from optouts_azure import DEFAULT_ACCESS_KEY, AzureEmulator

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared"
SPECS = SHARED / "reference" / "specs" / "azure"
CASSETTES = REPO / "cassettes" / "azure"
RECORDED_HOST = "resource.communication.azure.invalid"
SCRUBBED = "<scrubbed>"
BASE = "https://azure.test"
FAST = optouts.RetryPolicy(backoff=0.001, cap=0.01)

Validator = Callable[[str, Any], None]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's optouts or Azure settings (live-test variables aside)."""
    for name in list(os.environ):
        if name == "COMMUNICATION_SERVICES_CONNECTION_STRING" or (
            name.startswith("OPTOUTS_")
            and name != "OPTOUTS_LOAD_PLUGINS"
            and not name.startswith("OPTOUTS_TEST_")
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def emulator() -> AzureEmulator:
    return AzureEmulator(seed=0, retry_after=0)


@pytest.fixture
def connection_string(emulator: AzureEmulator) -> str:
    return emulator.connection_string(BASE)


# --- the official schema ------------------------------------------------------------------


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    path = SPECS / "optouts.schema.json"
    if not path.is_file():
        pytest.skip(f"the shared Azure spec is not checked out next to the repo ({path})")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.fixture(scope="session")
def examples() -> dict[str, Any]:
    path = SPECS / "examples.json"
    if not path.is_file():
        pytest.skip(f"the shared Azure examples are not checked out next to the repo ({path})")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.fixture(scope="session")
def conforms(schema: dict[str, Any]) -> Validator:
    """``conforms(definition, document)`` fails the test unless the document fits the spec."""
    import jsonschema

    def check(definition: str, document: Any) -> None:
        jsonschema.validate(document, {**schema["$defs"][definition], "$defs": schema["$defs"]})

    return check


def response_definition(status: int) -> str:
    """The spec's body for a status; undeclared errors (403, 429, 5xx) use the standard shape."""
    return {200: "OptOutResponse", 400: "BadRequestErrorResponse"}.get(
        status, "StandardErrorResponse"
    )


@pytest.fixture(scope="session")
def conforms_response(conforms: Validator) -> Callable[[httpx.Response], None]:
    """Fails the test unless the answer's body fits the spec's shape for its status."""
    return lambda response: conforms(response_definition(response.status_code), response.json())


class Conformance(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Wraps a transport and checks every request body and answer against the spec."""

    def __init__(self, inner: Any, conforms: Validator) -> None:
        self.inner = inner
        self.conforms = conforms
        self.requests: list[httpx.Request] = []

    def _check_request(self, request: httpx.Request) -> None:
        self.requests.append(request)
        self.conforms("OptOutRequest", json.loads(request.content))

    def _check_response(self, response: httpx.Response) -> None:
        self.conforms(response_definition(response.status_code), response.json())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._check_request(request)
        response: httpx.Response = self.inner.handle_request(request)
        response.read()
        self._check_response(response)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._check_request(request)
        response: httpx.Response = await self.inner.handle_async_request(request)
        await response.aread()
        self._check_response(response)
        return response

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def conformance(conforms: Validator) -> Callable[[Any], Conformance]:
    return lambda inner: Conformance(inner, conforms)


# --- the emulator on loopback --------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[SwappableServer]:
    """The emulator on 127.0.0.1 for the whole session (each test swaps in its own)."""
    with SwappableServer(AzureEmulator()).running() as server:
        yield server


@pytest.fixture
def served(emulator_server: SwappableServer, emulator: AzureEmulator) -> SwappableServer:
    """The loopback server, serving this test's ``emulator``."""
    emulator_server.app = emulator
    return emulator_server


# --- cassettes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    return str(CASSETTES / Path(str(request.node.path)).stem)


def scrub_request(request: Any) -> Any:
    """Runs on a copy before recording and before matching: no key or signature is kept."""
    parts = urlsplit(request.uri)
    request.uri = urlunsplit(("https", RECORDED_HOST, *parts[2:]))
    for name in list(request.headers):
        if name.lower() in {"authorization", "x-ms-client-request-id", "host"}:
            request.headers[name] = SCRUBBED
    if isinstance(request.body, bytes):
        request.body = re.sub(
            rb"(?i)accesskey=[^;\"&]*", b"accesskey=" + SCRUBBED.encode(), request.body
        )
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in {"x-ms-client-request-id", "date", "server"}:
            del headers[name]
    return response


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    return {
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        # Signatures and dates change every run: match what the provider decided to send.
        "match_on": ["method", "path", "query", "body"],
        "decode_compressed_response": True,
    }


@pytest.fixture
def cassette_target(
    request: pytest.FixtureRequest, record_mode: str
) -> Callable[..., tuple[str, AzureEmulator | None]]:
    """``make(**knobs)``: a connection string, and the emulator behind it when recording.

    Replaying needs no server: answers come from the cassette and nothing is contacted.
    """

    def make(**knobs: Any) -> tuple[str, AzureEmulator | None]:
        if record_mode == "none":
            return f"endpoint=http://127.0.0.1:9/;accesskey={DEFAULT_ACCESS_KEY}", None
        server: SwappableServer = request.getfixturevalue("emulator_server")
        emulator = AzureEmulator(**{"seed": 0, "retry_after": 0, **knobs})
        server.app = emulator
        return f"endpoint={server.url}/;accesskey={DEFAULT_ACCESS_KEY}", emulator

    return make


@pytest.fixture
def drive() -> Callable[[Any, httpx.Client, httpx.Auth | None], Any]:
    """Run one provider exchange over ``http`` as the client would, without its checks."""

    def run(exchange: Any, http: httpx.Client, auth: httpx.Auth | None) -> Any:
        reply: httpx.Response | None = None
        while True:
            try:
                step = exchange.send(reply)
            except StopIteration as stop:
                return stop.value
            reply = http.send(step, auth=auth or httpx.USE_CLIENT_DEFAULT)

    return run
