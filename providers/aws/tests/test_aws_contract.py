"""The provider contract, run for ``aws`` against the emulator through both clients.

The sync client goes over loopback HTTP, the async one through httpx's ASGI transport.
The contract's two senders use lists of their own (``Marketing``, ``Alerts``): an opt-out
belongs to one sender only when that sender's list holds it, which is what the contract's
"opt-outs belong to one sender" asks. The contract runs again against an emulator that
answers a lookup naming an unknown number with ResourceNotFoundException instead of
leaving the number out (``lookup_not_found``): AWS's reference allows either reading.
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

    keeps_opt_ins = False  # a removed number leaves its list: AWS keeps no opt-ins
    lookups_of_two_unknown = 1

    def test_unknown_numbers_read_not_opted_out(self, client: AnyClient) -> None:
        result = client.check(self.sender, fresh_numbers(2))
        assert [(r.ok, r.opted_out) for r in result] == [(True, False), (True, False)]
        assert result.requests == self.lookups_of_two_unknown

    def test_each_sender_lists_only_its_own_list(self, client: AnyClient) -> None:
        numbers = fresh_numbers(2)
        client.add(self.sender, numbers[:1]).raise_for_failures()
        client.add(self.other_sender, numbers[1:]).raise_for_failures()
        mine = {r.recipient for r in client.list(self.sender, status="all")}
        theirs = {r.recipient for r in client.list(self.other_sender)}
        assert (numbers[0] in mine, numbers[1] in mine) == (True, False)
        assert (numbers[0] in theirs, numbers[1] in theirs) == (False, True)
        assert all(r.sender == self.sender for r in client.list(self.sender, status="all"))
        assert all(r.sender == self.other_sender for r in client.list(self.other_sender))


class TestAwsAgainstEmulatorAnsweringNotFound(TestAwsAgainstEmulator):
    lookups_of_two_unknown = 3  # the lookup, answered not found; then each number alone

    @pytest.fixture
    def emulator(self) -> AwsEmulator:
        made = AwsEmulator(seed=0, lookup_not_found=True)
        made.create_list("Marketing")
        made.create_list("Alerts")
        return made
