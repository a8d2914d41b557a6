"""The provider contract, run against the local ledger through both clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import optouts
from optouts.testing import AnyClient, ProviderContract, blocking


class TestLocalLedger(ProviderContract):
    @pytest.fixture(params=["sync", "async"])
    def client(self, request: pytest.FixtureRequest, empty_ledger: str) -> Iterator[AnyClient]:
        if request.param == "sync":
            with optouts.Client("local", database=empty_ledger) as client:
                yield client
        else:
            wrapped = blocking(optouts.AsyncClient("local", database=empty_ledger))
            try:
                yield wrapped
            finally:
                wrapped.close()
