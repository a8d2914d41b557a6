"""The provider contract, for both RingCentral APIs and both clients, against the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import optouts
from optouts.testing import AnyClient, ProviderContract, blocking
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import SyncASGITransport, make_provider


class TestRingCentralContract(ProviderContract):
    @pytest.fixture(
        params=[
            ("a2p-sms", "sync"),
            ("a2p-sms", "async"),
            ("consents", "sync"),
            ("consents", "async"),
        ],
        ids=lambda param: "-".join(param),
    )
    def client(self, request: pytest.FixtureRequest) -> Iterator[AnyClient]:
        api, kind = request.param
        emulator = Emulator(rate_limit=RateLimit(100_000, 60), auth_rate_limit=RateLimit(100, 60))
        if kind == "sync":
            http = httpx.Client(transport=SyncASGITransport(emulator))
            client = optouts.Client(make_provider(api), http_client=http)
            yield client
            client.close()
            http.close()
            return
        async_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))
        wrapped = blocking(optouts.AsyncClient(make_provider(api), http_client=async_http))
        yield wrapped
        try:
            wrapped._wait(wrapped.client.aclose())  # revokes the session first
            wrapped._wait(async_http.aclose())
        finally:
            wrapped._loop.close()
