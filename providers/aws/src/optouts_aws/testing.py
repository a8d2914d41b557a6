"""Helpers for testing code that uses the AWS provider against its emulator, offline.

``emulator_settings`` gives the client settings that point at an in-process or loopback
emulator (no pacing, two senders on lists of their own), and ``Recorder`` wraps an httpx
transport, keeping every request and answer, so a test can hold each one to the model.
The emulator itself is ``optouts_aws.AwsEmulator``.
"""

from __future__ import annotations

from typing import Any

import attrs
import httpx

import optouts

__all__ = [
    "BASE_URL",
    "FAST",
    "LISTS",
    "OTHER",
    "SENDER",
    "Exchanged",
    "Recorder",
    "emulator_settings",
]

BASE_URL = "http://127.0.0.1:9"
"""Loopback, the one place plain http may carry a signature; nothing listens on port 9, so
a test that forgot its transport fails at once instead of reaching anything."""
FAST = optouts.RetryPolicy(backoff=0.001, cap=0.01)
SENDER = "+18005550100"
OTHER = "+18005550111"
LISTS = {SENDER: "Marketing", OTHER: "Alerts", "*": "Default"}
"""Two senders on lists of their own, every other sender on ``Default``."""


def emulator_settings(**overrides: Any) -> dict[str, Any]:
    """Client settings for the emulator: no pacing (it enforces no quota unless told to)
    and ``LISTS``; credentials and Region come from the standard AWS variables."""
    return {
        "endpoint_url": BASE_URL,
        "requests_per_second": "off",
        "sender_lists": LISTS,
        **overrides,
    }


@attrs.frozen
class Exchanged:
    request: httpx.Request
    response: httpx.Response


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Passes requests to ``inner`` (a sync or async transport) and keeps each exchange."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.exchanges: list[Exchanged] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append(Exchanged(request, response))
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await self.inner.handle_async_request(request)
        await response.aread()
        self.exchanges.append(Exchanged(request, response))
        return response

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()
