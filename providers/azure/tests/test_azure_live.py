"""Against a real Azure resource: runs when OPTOUTS_TEST_AZURE_CONNECTION_STRING and
OPTOUTS_TEST_AZURE_SENDER are set; records with ``--record-mode=rewrite``, replays after.

The recipient is a fictional number; Azure does not promise read-after-write, so a check
right after an add is only required to answer, not to agree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import optouts

pytestmark = [pytest.mark.live, pytest.mark.vcr, pytest.mark.block_network]

RECIPIENT = "+12025550142"


@pytest.fixture
def live_client(
    request: pytest.FixtureRequest, record_mode: str, vcr_cassette_dir: str
) -> Iterator[optouts.Client]:
    connection_string = os.environ.get("OPTOUTS_TEST_AZURE_CONNECTION_STRING")
    sender = os.environ.get("OPTOUTS_TEST_AZURE_SENDER")
    if not connection_string or not sender:
        pytest.skip(
            "live: set OPTOUTS_TEST_AZURE_CONNECTION_STRING and OPTOUTS_TEST_AZURE_SENDER "
            "to run against a real Azure resource"
        )
    cassette = Path(vcr_cassette_dir) / f"{request.node.name}.yaml"
    if record_mode == "none" and not cassette.is_file():
        pytest.skip("live: no recording yet; run once with --record-mode=rewrite")
    with optouts.Client("azure", connection_string=connection_string) as client:
        yield client


def test_live_round_trip(live_client: optouts.Client) -> None:
    sender = os.environ["OPTOUTS_TEST_AZURE_SENDER"]
    assert live_client.add(sender, [RECIPIENT]).ok
    checked = live_client.check(sender, [RECIPIENT])
    assert checked[0].ok == (checked[0].opted_out is not None)
    assert live_client.remove(sender, [RECIPIENT]).ok
