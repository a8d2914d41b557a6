"""The plugin as a user meets it: registered by its entry point, listed with what it can do,
its emulator loaded only by ``optouts emulate aws``, and the whole round trip of the
README: start the emulator, source what it prints, and ``optouts -p aws add/check/list``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import optouts
from optouts_aws import AwsProvider

CLI = [sys.executable, "-c", "from optouts.cli import main; main()"]
WATCH_MODELS = """
import botocore.loaders
models = []
_load = botocore.loaders.Loader.load_service_model
def _watched(self, service_name, *args, **kwargs):
    models.append(service_name)
    return _load(self, service_name, *args, **kwargs)
botocore.loaders.Loader.load_service_model = _watched
"""
"""Records every service model botocore loads (a client's facts are pinned; only finding
its endpoint as botocore does loads the service's model and endpoint rules)."""
LOADED = """
import json, sys
print(json.dumps(sorted(
    name for name in sys.modules if name.split(".")[0] == "uvicorn" or "emulator" in name
) + models))
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_registered_with_every_capability() -> None:
    info = {provider.name: provider for provider in optouts.providers()}["aws"]
    assert info.capabilities == frozenset(optouts.Capability)
    assert info.max_batch == 5
    assert info.module == "optouts_aws._provider"


def test_the_provider_table_shows_it() -> None:
    done = run("providers", "--format", "json")
    assert done.returncode == 0, done.stderr
    row = next(item for item in json.loads(done.stdout) if item["name"] == "aws")
    assert row["capabilities"] == ["add", "check", "list", "remove"]
    assert row["max_batch"] == AwsProvider.max_batch


def test_a_client_loads_no_emulator() -> None:
    code = (
        WATCH_MODELS + "import optouts\noptouts.providers()\n"
        "with optouts.Client('aws', region='us-east-1'):\n    pass\n" + LOADED
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["pinpoint-sms-voice-v2"] * 2  # service-2, endpoint rules


def test_the_emulate_command_describes_itself() -> None:
    done = run("emulate", "aws", "--help")
    assert done.returncode == 0, done.stderr
    for option in (
        "--port",
        "--latency",
        "--quotas",
        "--throttle-rate",
        "--fault-rate",
        "--region",
        "--lookup-not-found",
    ):
        assert option in done.stdout
    assert "> aws.env" in done.stdout


@pytest.fixture
def served_by_the_cli() -> Iterator[dict[str, str]]:
    """``optouts emulate aws`` in its own process; the variables its output exports."""
    process = subprocess.Popen(
        [*CLI, "emulate", "aws"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    exported: dict[str, str] = {}
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while "OPTOUTS_AWS_ENDPOINT_URL" not in exported:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exported[name] = value.strip("'")
        assert all(line.startswith(("#", "export ", "unset ")) for line in lines), lines
        yield exported
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_add_check_list_with_only_the_printed_variables(served_by_the_cli: dict[str, str]) -> None:
    assert set(served_by_the_cli) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "OPTOUTS_AWS_ENDPOINT_URL",
    }
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "OPTOUTS_")) or name.startswith("AWS_EC2_")
    }
    env.update(served_by_the_cli)
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"]  # none
    env["AWS_CONFIG_FILE"] = os.environ["AWS_CONFIG_FILE"]
    added = run(
        "-p", "aws", "add", "--from", "+18005550100", "+12025550101", "+12025550102", env=env
    )
    assert added.returncode == 0, added.stderr
    checked = run(
        "-p",
        "aws",
        "--format",
        "json",
        "check",
        "--from",
        "+18005550100",
        "+12025550101",
        "+12025550103",
        env=env,
    )
    assert checked.returncode == 0, checked.stderr
    answers = {row["recipient"]: row["opted_out"] for row in json.loads(checked.stdout)}
    assert answers == {"+12025550101": True, "+12025550103": False}
    listed = run("-p", "aws", "--format", "json", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {(row["sender"], row["recipient"]) for row in rows} == {
        ("*", "+12025550101"),
        ("*", "+12025550102"),
    }
    assert {row["source"] for row in rows} == {"api"}
