"""The provider contract, run for ``azure`` against the emulator through both clients.

Sync goes over loopback HTTP, async through httpx's ASGI transport; list is not offered by
Azure, so the contract checks that it raises UnsupportedOperation instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import optouts
from optouts.testing import AnyClient, ProviderContract, blocking
from optouts_azure import AzureEmulator

FAST = optouts.RetryPolicy(backoff=0.001, cap=0.01)


class TestAzureAgainstEmulator(ProviderContract):
    @pytest.fixture(params=["sync", "async"])
    def client(
        self, request: pytest.FixtureRequest, emulator: AzureEmulator, connection_string: str
    ) -> Iterator[AnyClient]:
        if request.param == "sync":
            served: Any = request.getfixturevalue("served")
            text = emulator.connection_string(served.url)
            with optouts.Client("azure", connection_string=text, retry=FAST) as client:
                yield client
            return
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))
        wrapped = blocking(
            optouts.AsyncClient(
                "azure", connection_string=connection_string, http_client=http, retry=FAST
            )
        )
        try:
            yield wrapped
        finally:
            wrapped.close()
            asyncio.run(http.aclose())  # the ASGI transport holds no sockets
