"""Helpers for testing code that uses the RingCentral provider, without the network.

``FakeClock`` moves only when told, ``SyncASGITransport`` drives the ASGI emulator from
blocking code (recording every exchange), ``drive`` runs a provider job with a fake clock
in place of sleeping, and ``serve_in_thread`` puts the emulator on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import httpx

from optouts import emulators
from optouts.plugin import run_exchange

from ._emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, Emulator
from ._provider import RingCentralProvider

__all__ = [
    "BASE_URL",
    "CREDENTIALS",
    "FakeClock",
    "SyncASGITransport",
    "drive",
    "fake_clock_provider",
    "make_provider",
    "numbers",
    "serve_in_thread",
]

BASE_URL = "http://127.0.0.1:9"
"""Loopback, the one place plain http may carry credentials; nothing listens on port 9, so
a test that forgot its transport fails at once instead of reaching anything."""

CREDENTIALS: dict[str, str] = {
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_CLIENT_SECRET,
    "jwt": DEFAULT_JWT,
}


def numbers(count: int, prefix: str = "+1212555") -> list[str]:
    """Distinct, possible US numbers: +1212555NNNN."""
    return [f"{prefix}{index:04d}" for index in range(count)]


class FakeClock:
    """A monotonic clock that moves only when told (or when someone 'sleeps' on it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    sleep = advance

    async def async_sleep(self, seconds: float) -> None:
        self.advance(seconds)


class SyncASGITransport(httpx.BaseTransport):
    """Drives the ASGI emulator from blocking code, one event loop per request.

    Records every exchange (request, response) for assertions and conformance checks.
    ``token_delay`` holds token requests a little, so concurrent callers really overlap.
    """

    def __init__(self, app: Emulator, token_delay: float = 0.0) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.token_delay = token_delay
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        if self.token_delay and request.url.path.endswith("/oauth/token"):
            time.sleep(self.token_delay)

        async def run() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        response = asyncio.run(run())
        copy = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        with self._lock:
            self.exchanges.append((copy, response))
        return response

    def statuses(self, path_part: str = "") -> list[int]:
        return [resp.status_code for req, resp in self.exchanges if path_part in req.url.path]


def make_provider(
    api: str = "a2p-sms", server_url: str = BASE_URL, **kwargs: Any
) -> RingCentralProvider:
    options: dict[str, Any] = {**CREDENTIALS, "server_url": server_url, "api": api, **kwargs}
    return RingCentralProvider(**options)


def fake_clock_provider(
    clock: FakeClock, api: str = "a2p-sms", **kwargs: Any
) -> RingCentralProvider:
    return make_provider(
        api, clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, **kwargs
    )


def drive(
    job: Generator[Any, Any, Any], http: httpx.Client, auth: httpx.Auth | None, clock: FakeClock
) -> Any:
    """Run a job like the client does, but every Sleep moves the fake clock instead."""
    return run_exchange(job, http, auth, sleep=clock.advance)


def serve_in_thread(app: Emulator) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread; returns its URL and a stopper."""
    return emulators.serve_in_thread(app)
