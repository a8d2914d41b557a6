"""The emulators as a new user meets them: two at once, their variables sourced side by
side, and the README's walk-through run as it is written.

Also the errors met on the way: an out-of-range fault rate, a missing RingCentral JWT (which
the emulator prints as ``RC_JWT``), a closed ledger client.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import optouts
from clirunner import separate_runner
from optouts.cli import cli, run

README = Path(__file__).resolve().parents[1] / "README.md"
SENDER = "+18005550100"


def fake_serve(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """``serve`` that says it is ready on ``port`` and returns, serving nothing."""

    def serve(app: Any, *, port: int = 0, on_ready: Any) -> None:
        on_ready(f"http://127.0.0.1:{port or chosen}")

    chosen = port
    monkeypatch.setattr("optouts.emulators.serve", serve)


def sourced(lines: str, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.env"
    path.write_text(lines, encoding="utf-8")
    return path


def test_both_emulators_print_lines_to_source_side_by_side(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_serve(monkeypatch, 18101)
    azure = separate_runner().invoke(cli, ["emulate", "azure"])
    fake_serve(monkeypatch, 18102)
    ringcentral = separate_runner().invoke(cli, ["emulate", "ringcentral"])
    assert (azure.exit_code, ringcentral.exit_code) == (0, 0), azure.output + ringcentral.output
    files = [
        sourced(azure.stdout, tmp_path, "azure"),
        sourced(ringcentral.stdout, tmp_path, "ringcentral"),
    ]
    script = " && ".join(f". {path}" for path in files) + " && env"
    shell = subprocess.run(
        ["sh", "-euc", script],
        env={"PATH": os.environ["PATH"], "OPTOUTS_PROVIDER": "local"},
        capture_output=True,
        text=True,
        check=True,
    )
    variables = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert variables["OPTOUTS_PROVIDER"] == "local"  # neither emulator takes it over
    assert "endpoint=http://127.0.0.1:18101/" in variables["OPTOUTS_AZURE_CONNECTION_STRING"]
    assert variables["RC_SERVER_URL"] == "http://127.0.0.1:18102"
    assert {"RC_CLIENT_ID", "RC_CLIENT_SECRET", "RC_JWT"} <= set(variables)
    assert shell.stderr == ""


@pytest.mark.parametrize("option", ["--fault-rate", "--drop-rate"])
@pytest.mark.parametrize("vendor", ["azure", "ringcentral"])
def test_a_rate_out_of_range_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], vendor: str, option: str
) -> None:
    if vendor == "azure" and option == "--drop-rate":
        option = "--throttle-rate"
    fake_serve(monkeypatch, 18103)
    assert run(["emulate", vendor, option, "5"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert option in captured.err
    assert "0<=x<=1" in captured.err


def test_a_missing_jwt_names_every_variable_that_sets_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RC_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RC_CLIENT_ID", "id")
    monkeypatch.setenv("RC_CLIENT_SECRET", "secret")
    monkeypatch.delenv("RC_JWT", raising=False)
    assert run(["-p", "ringcentral", "check", "--from", SENDER, "+12025550101"]) == 2
    err = capsys.readouterr().err
    assert "'jwt'" in err
    assert "OPTOUTS_RINGCENTRAL_JWT" in err
    assert "RC_JWT" in err


def test_a_closed_ledger_client_says_it_is_closed(tmp_path: Path) -> None:
    client = optouts.Client("local", database=str(tmp_path / "ledger.db"))
    client.add(SENDER, ["+12025550101"])
    client.close()
    with pytest.raises(optouts.OptOutError, match="closed"):
        client.check(SENDER, ["+12025550101"])
    with pytest.raises(optouts.OptOutError, match="closed"):
        list(client.list())


def readme_walkthrough() -> str:
    section = README.read_text(encoding="utf-8").split("## Try it against the emulators", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return block.group(1)


@pytest.mark.skipif(shutil.which("optouts") is None, reason="the optouts script is not on PATH")
def test_the_readme_walkthrough_works_as_written(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    environ = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    # Output to files, not pipes: an emulator left running must not keep a pipe open.
    out_file, err_file = tmp_path / "out.txt", tmp_path / "err.txt"
    with out_file.open("w") as stdout, err_file.open("w") as stderr:
        shell = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", readme_walkthrough()],
            env=environ,
            cwd=tmp_path,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its emulators are stopped with it, whatever happens
        )
    try:
        code = shell.wait(timeout=180)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
    out, err = out_file.read_text(), err_file.read_text()
    assert code == 0, f"exit code {code}:\n{out}\n{err}"
    rows = [line.split() for line in out.splitlines()]
    assert ["+12025550101", "yes", "yes"] in rows  # the STOP taken at RingCentral, at Azure
    assert ["+12025550199", "no", "yes"] in rows
    assert any(row[:2] == [SENDER, "+12025550102"] and "ringcentral" in row for row in rows)
    assert "azure" in out.split("vendor confirmations", 1)[1]
    assert "created a new ledger" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("vendor", ["azure", "ringcentral", "aws"])
@pytest.mark.parametrize(
    ("option", "value"),
    [("--latency", "nan"), ("--latency", "-1"), ("--latency", "inf"), ("--port", "65536")],
)
def test_every_emulator_refuses_an_impossible_port_or_latency(
    vendor: str, option: str, value: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "optouts.cli", "emulate", vendor, option, value],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert option in done.stderr
