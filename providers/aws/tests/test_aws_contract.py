"""The provider contract, run for ``aws`` against the emulator through both clients.

The sync client goes over loopback HTTP, the async one through httpx's ASGI transport.
The contract's two senders use lists of their own (``Marketing``, ``Alerts``): an opt-out
belongs to one sender only when that sender's list holds it, which is what the contract's
"opt-outs belong to one sender" asks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import optouts
from optouts.testing import AnyClient, ProviderContract, fresh_numbers
from optouts_aws import AwsEmulator
from optouts_aws.testing import FAST, emulator_settings


class TestAwsAgainstEmulator(ProviderContract):
    @pytest.fixture(params=["sync", "async"])
    def client(
        self, request: pytest.FixtureRequest, emulator: AwsEmulator, async_client_for: Any
    ) -> Iterator[AnyClient]:
        if request.param == "sync":
            served: Any = request.getfixturevalue("served")
            with optouts.Client(
                "aws", retry=FAST, **emulator_settings(endpoint_url=served.url)
            ) as client:
                yield client
            return
        yield async_client_for()

    def test_listing_filters_by_sender_and_status(self, client: AnyClient) -> None:
        """AWS keeps no opt-in records: a removed number leaves its list, so a listing of
        "all" shows the opt-outs that remain and no opt-in (the contract's version expects
        the ledger's and RingCentral's kept opt-ins, which AWS does not have)."""
        numbers = fresh_numbers(4)
        client.add(self.sender, numbers).raise_for_failures()
        client.remove(self.sender, numbers[:1]).raise_for_failures()
        everything = {r.recipient: r for r in client.list(self.sender, status="all")}
        assert {n: everything[n].status for n in numbers[1:]} == dict.fromkeys(
            numbers[1:], optouts.Status.OPTED_OUT
        )
        assert numbers[0] not in everything
        assert list(client.list(self.sender, status="opted-in")) == []
        opted_out = {r.recipient for r in client.list(self.sender)}
        assert set(numbers[1:]) <= opted_out
        assert numbers[0] not in opted_out
        assert all(r.sender == self.sender for r in client.list(self.sender, status="all"))
        assert all(r.sender == self.other_sender for r in client.list(self.other_sender))
