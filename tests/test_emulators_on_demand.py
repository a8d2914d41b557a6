"""Emulators load only for ``optouts emulate``: a client, or the CLI's help, never imports
them (nor uvicorn), which keeps a client's start-up and dependencies small.

Each check runs in a fresh interpreter: in this one the test suite has long since loaded
every emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

LOADED = """
import json, sys
print(json.dumps(sorted(
    name for name in sys.modules
    if name.split(".")[0] == "uvicorn" or "emulator" in name
)))
"""
"""Prints the emulator modules (any with "emulator" in its name) and uvicorn's that loaded."""

CLIENTS = """
import optouts
optouts.providers()
with optouts.Client(
    "azure",
    connection_string="endpoint=https://example.communication.azure.com/;accesskey=a2V5",
):
    pass
with optouts.Client(
    "ringcentral",
    server_url="https://platform.ringcentral.com",
    client_id="id",
    client_secret="secret",
    jwt="header.claims.signature",
):
    pass
"""


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("OPTOUTS_")}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_client_imports_no_emulator_and_no_uvicorn() -> None:
    done = python(CLIENTS + LOADED)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    ("vendor", "options"),
    [
        (
            "azure",
            [
                "--port",
                "--latency",
                "--fault-rate",
                "--throttle-rate",
                "--item-fault-rate",
                "--faults",
                "--retry-after",
                "--seed",
                "--access-key",
                "error, unavailable, items, drop, throttle, invalid_parameter",
                "default: error,unavailable,items,drop",
            ],
        ),
        (
            "ringcentral",
            [
                "--port",
                "--rate-limit",
                "--token-lifetime",
                "--latency",
                "--fault-rate",
                "--drop-rate",
            ],
        ),
    ],
)
def test_emulate_help_shows_the_options_without_loading_the_emulator(
    vendor: str, options: list[str]
) -> None:
    run = "import sys\nfrom optouts.cli import run\nassert run(sys.argv[1:]) == 0\n"
    done = python(run + LOADED, "emulate", vendor, "--help")
    assert done.returncode == 0, done.stderr
    *help_lines, loaded = done.stdout.splitlines()
    shown = " ".join(" ".join(help_lines).split())  # the help wraps to the terminal's width
    assert [option for option in options if option not in shown] == []
    assert json.loads(loaded) == []


def test_emulate_help_lists_every_emulator() -> None:
    done = python("from optouts.cli import main; main()", "emulate", "--help")
    assert done.returncode == 0, done.stderr
    commands = done.stdout.split("Commands:", 1)[1]
    assert "azure" in commands
    assert "ringcentral" in commands
