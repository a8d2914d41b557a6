"""``optouts sync`` between AWS and the other vendors, each an emulator on 127.0.0.1.

The command runs in its own process, configured only through the environment as a user
would configure it: the standard AWS variables, RingCentral's ``RC_*``, Azure's connection
string, and a ledger path. AWS as the source gives each record under the senders of its
list (``*`` for the default list, which Azure cannot hold and skips); AWS as a target takes
each sender's opt-outs into that sender's list, and ``*`` into every list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from optouts.emulators import serve_in_thread
from optouts_aws import AwsEmulator
from optouts_azure import AzureEmulator
from optouts_ringcentral import Emulator as RingCentralEmulator
from optouts_ringcentral import RateLimit
from optouts_ringcentral._emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT

MARKETING = "+18005550100"
"""A sender with an AWS list of its own."""
RC_SENDER = "+16505550100"
"""A RingCentral sender AWS maps to no list of its own (so: the default list)."""


class Vendors:
    def __init__(self) -> None:
        self.aws = AwsEmulator(seed=0)
        self.aws.create_list("Marketing")
        self.azure = AzureEmulator(seed=0, retry_after=0)
        self.ringcentral = RingCentralEmulator(
            rate_limit=RateLimit(100_000, 60.0), auth_rate_limit=RateLimit(1000, 60.0)
        )
        self.urls: dict[str, str] = {}


@pytest.fixture
def vendors(tmp_path: Path) -> Iterator[Vendors]:
    made = Vendors()
    stops = []
    for name, app in (("aws", made.aws), ("azure", made.azure), ("ringcentral", made.ringcentral)):
        made.urls[name], stop = serve_in_thread(app)
        stops.append(stop)
    try:
        yield made
    finally:
        for stop in stops:
            stop()


def optouts_cli(vendors: Vendors, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,  # the standard AWS variables the test environment set
        "OPTOUTS_AWS_ENDPOINT_URL": vendors.urls["aws"],
        "OPTOUTS_AWS_SENDER_LISTS": f"{MARKETING}=Marketing,*=Default",
        "OPTOUTS_AWS_REQUESTS_PER_SECOND": "off",
        "OPTOUTS_AZURE_CONNECTION_STRING": vendors.azure.connection_string(vendors.urls["azure"]),
        "RC_SERVER_URL": vendors.urls["ringcentral"],
        "RC_CLIENT_ID": DEFAULT_CLIENT_ID,
        "RC_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "RC_JWT": DEFAULT_JWT,
        "OPTOUTS_LOCAL_DATABASE": str(tmp_path / "ledger.db"),
    }
    return subprocess.run(
        [sys.executable, "-c", "from optouts.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_from_aws_to_azure_and_ringcentral(vendors: Vendors, tmp_path: Path) -> None:
    stopped = [f"+1212555{i:04d}" for i in range(7)]
    account_wide = [f"+1312555{i:04d}" for i in range(4)]
    for number in stopped:
        vendors.aws.opt_out("Marketing", number)  # texted STOP to the Marketing number
    for number in account_wide:
        vendors.aws.opt_out("Default", number, end_user=False)  # put there through the API
    done = optouts_cli(
        vendors,
        tmp_path,
        "--format",
        "json",
        "sync",
        "--source",
        "aws",
        "--target",
        "azure",
        "--target",
        "ringcentral",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["source"], summary["listed"]) == ("aws", 11)
    by_target = {t["target"]: t for t in summary["targets"]}
    assert (by_target["azure"]["added"], by_target["azure"]["skipped"]) == (7, 4)  # no '*'
    assert (by_target["ringcentral"]["added"], by_target["ringcentral"]["failed"]) == (11, 0)
    assert vendors.azure.opted_out(MARKETING) == set(stopped)
    records = vendors.ringcentral.records()
    assert {to for (sender, to), status in records.items() if sender == MARKETING} == set(stopped)
    assert {to for (sender, to), status in records.items() if sender == "*"} == set(account_wide)
    assert set(records.values()) == {"OptOut"}

    again = optouts_cli(
        vendors, tmp_path, "sync", "--source", "aws", "--target", "azure", "--target", "ringcentral"
    )
    assert again.returncode == 0, again.stderr
    assert vendors.azure.requests == 1  # nothing new: nothing sent the second time


def test_from_ringcentral_to_aws_and_azure(vendors: Vendors, tmp_path: Path) -> None:
    theirs = [f"+1415555{i:04d}" for i in range(6)]
    everyone = "+14155559999"
    vendors.ringcentral.put_many((RC_SENDER, number) for number in theirs)
    vendors.ringcentral.put("*", everyone)
    vendors.ringcentral.put(MARKETING, "+14155558888")
    done = optouts_cli(
        vendors, tmp_path, "sync", "--source", "ringcentral", "--target", "aws", "--target", "azure"
    )
    assert done.returncode == 0, done.stderr
    # RC_SENDER has no list of its own: its opt-outs go to the default list; Marketing's to
    # Marketing; the account-wide one to every list.
    assert vendors.aws.numbers("Default") == {*theirs, everyone}
    assert vendors.aws.numbers("Marketing") == {"+14155558888", everyone}
    assert vendors.azure.opted_out(RC_SENDER) == set(theirs)
    # And back: AWS now lists them, under the senders of each list.
    listed = optouts_cli(vendors, tmp_path, "-p", "aws", "--format", "csv", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{MARKETING},+14155558888" in listed.stdout
    assert f"*,{everyone}" in listed.stdout
