"""Registration with optouts, the public names, and ``optouts emulate azure``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

import optouts
import optouts_azure
from optouts.cli import cli
from optouts_azure import DEFAULT_ACCESS_KEY, AzureProvider, DroppedConnection
from optouts_azure._plugin import _QuietDrops


def test_the_provider_is_found_by_name() -> None:
    info = next(p for p in optouts.providers() if p.name == "azure")
    assert info.capabilities == frozenset(
        {optouts.Capability.ADD, optouts.Capability.REMOVE, optouts.Capability.CHECK}
    )
    assert info.max_batch == 100
    assert info.module == AzureProvider.__module__


def test_public_names_are_sorted_and_complete() -> None:
    exported = optouts_azure.__all__
    assert exported == sorted(exported, key=lambda name: (not name.isupper(), name))
    public = {name for name in vars(optouts_azure) if not name.startswith("_")}
    assert set(exported) == public - {"annotations"}


def test_emulate_azure_prints_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_serve(app: Any, *, port: int, on_ready: Any) -> None:
        calls.append({"app": app, "port": port})
        on_ready(f"http://127.0.0.1:{port or 40404}")

    monkeypatch.setattr("optouts.emulators.serve", fake_serve)
    result = CliRunner().invoke(
        cli, ["emulate", "azure", "--port", "8089", "--fault-rate", "0.2", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert calls[0]["port"] == 8089
    assert calls[0]["app"].fault_rate == 0.2
    expected = f"OPTOUTS_AZURE_CONNECTION_STRING='endpoint=http://127.0.0.1:8089/;accesskey={DEFAULT_ACCESS_KEY}'"
    assert expected in result.output
    assert "OPTOUTS_PROVIDER=azure" in result.output


def test_emulate_azure_refuses_a_bad_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("optouts.emulators.serve", lambda *_args, **_kwargs: None)
    result = CliRunner().invoke(cli, ["emulate", "azure", "--access-key", "not base64!"])
    assert result.exit_code != 0
    assert "--access-key" in result.output


def test_deliberate_drops_are_not_logged_as_server_errors() -> None:
    quiet = _QuietDrops()
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "boom", (), None)
    assert quiet.filter(record)
    record.exc_info = (DroppedConnection, DroppedConnection("dropped"), None)
    assert not quiet.filter(record)


def test_the_served_emulator_answers_a_client() -> None:
    """``optouts emulate azure`` in a real process, used with the connection string it prints."""
    pytest.importorskip("uvicorn")
    command = [sys.executable, "-c", "from optouts.cli import main; main()", "emulate", "azure"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        export = next(line for line in lines if "OPTOUTS_AZURE_CONNECTION_STRING" in line)
        connection_string = export.split("=", 1)[1].strip().strip("'")
        with optouts.Client("azure", connection_string=connection_string) as client:
            client.add("+18005550100", ["+12025550100"]).raise_for_failures()
            assert [i.opted_out for i in client.check("+18005550100", ["+12025550100"])] == [True]
    finally:
        process.terminate()
        process.communicate(timeout=10)
