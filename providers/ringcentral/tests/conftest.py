"""Shared fixtures: a fake clock, the emulator in-process or on 127.0.0.1, providers and clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

import optouts
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import FakeClock, SyncASGITransport, make_provider, serve_in_thread

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared"
SPEC = SHARED / "reference" / "specs" / "ringcentral" / "optouts-openapi.yml"


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test reads or writes the developer's own token cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("OPTOUTS_RINGCENTRAL_TOKEN_CACHE", raising=False)
    return tmp_path / "cache"


@pytest.fixture(params=["a2p-sms", "consents"])
def api(request: pytest.FixtureRequest) -> str:
    """Both RingCentral APIs."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator() -> Emulator:
    """An emulator with room enough that only the pacing tests meet its limits."""
    return Emulator(rate_limit=RateLimit(100_000, 60.0), auth_rate_limit=RateLimit(1000, 60.0))


@pytest.fixture
async def async_client(emulator: Emulator, api: str) -> AsyncIterator[optouts.AsyncClient]:
    """AsyncClient over ASGITransport: the emulator runs in-process."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))
    client = optouts.AsyncClient(make_provider(api), http_client=http)
    yield client
    await client.aclose()
    await http.aclose()


@pytest.fixture
def sync_transport(emulator: Emulator) -> SyncASGITransport:
    return SyncASGITransport(emulator)


@pytest.fixture
def sync_client(sync_transport: SyncASGITransport, api: str) -> Iterator[optouts.Client]:
    """A blocking Client over the in-process emulator."""
    http = httpx.Client(transport=sync_transport)
    client = optouts.Client(make_provider(api), http_client=http)
    yield client
    client.close()
    http.close()


@pytest.fixture
def live_emulator(emulator: Emulator) -> Iterator[tuple[str, Emulator]]:
    """The emulator over real HTTP on 127.0.0.1."""
    url, stop = serve_in_thread(emulator)
    yield url, emulator
    stop()


# --- cassettes ---------------------------------------------------------------------------

PLACEHOLDERS = {
    "access_token": "<ACCESS_TOKEN>",
    "refresh_token": "<REFRESH_TOKEN>",
    "id_token": "<ID_TOKEN>",
    "assertion": "<JWT>",
    "token": "<ACCESS_TOKEN>",
    "client_secret": "<CLIENT_SECRET>",
    "client_assertion": "<JWT>",
}
"""What each secret field becomes in a cassette."""


def scrub_request(request: Any) -> Any:
    """Blank credentials before a request is written (or matched): header, form fields."""
    for name in list(request.headers):
        if name.lower() == "authorization":
            scheme = str(request.headers[name]).split(" ", 1)[0]
            request.headers[name] = (
                "Basic <CLIENT_CREDENTIALS>"
                if scheme.lower() == "basic"
                else "Bearer <ACCESS_TOKEN>"
            )
    body = request.body
    content_type = next(
        (str(v) for k, v in request.headers.items() if k.lower() == "content-type"), ""
    )
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        text = body.decode() if isinstance(body, bytes) else str(body)
        pairs = [(k, PLACEHOLDERS.get(k, v)) for k, v in parse_qsl(text, keep_blank_values=True)]
        request.body = urlencode(pairs).encode()
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Replace tokens in token-endpoint answers, keeping Content-Length true."""
    raw = response.get("body", {}).get("string")
    if not raw:
        return response
    try:
        data = json.loads(raw)
    except ValueError:
        return response
    if not isinstance(data, dict) or not PLACEHOLDERS.keys() & data.keys():
        return response
    for key in PLACEHOLDERS.keys() & data.keys():
        data[key] = PLACEHOLDERS[key]
    text = json.dumps(data).encode()
    response["body"]["string"] = text
    for name in list(response["headers"]):
        if name.lower() == "content-length":
            response["headers"][name] = [str(len(text))]
    return response


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "match_on": ("method", "path", "query", "body"),
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    """``<repo>/cassettes/ringcentral/<test module>``."""
    module = Path(str(request.node.path)).stem
    return str(REPO / "cassettes" / "ringcentral" / module)
