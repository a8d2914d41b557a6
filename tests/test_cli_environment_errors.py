"""What the command line does when the machine or the network fails it: one line on stderr,
``optouts: error: …``, a non-zero exit, never a traceback, and nothing already done lost.

A vendor that cannot be reached while listing, stdout full or closed, stdin closed, a
ledger path the process may not use, a disk that fills up during an import.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clirunner import separate_runner
from optouts import AsyncClient, Capability, Client, Provider, ProviderError, RetryPolicy
from optouts.cli import cli, run
from optouts_ringcentral import Emulator
from optouts_ringcentral.testing import CREDENTIALS, serve_in_thread

SENDER = "+18005550100"
SECRET = "SECRET-never-shown"
FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")
ONE_LINE = re.compile(r"\Aoptouts: error: [^\n]+\n\Z")


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def optouts(
    *args: str, stdout: Any = subprocess.PIPE, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """The real command in a child process: its streams are the ones a shell gives it."""
    return subprocess.run(
        [sys.executable, "-m", "optouts.cli", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
        **kw,
    )


def one_error_line(stderr: str) -> str:
    """The last line of stderr, after checking it is the only error and no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("optouts: error:")]
    assert len(errors) == 1, stderr
    assert stderr.endswith(errors[0] + "\n"), stderr
    return errors[0]


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> str:
    """RingCentral settings that point at a closed port, with a secret to look for."""
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("RC_SERVER_URL", url)
    monkeypatch.setenv("RC_CLIENT_ID", "client")
    monkeypatch.setenv("RC_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("RC_JWT", f"{SECRET}.b.c")
    monkeypatch.setenv("OPTOUTS_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("OPTOUTS_RETRY_BACKOFF", "0.01")
    return url


# A vendor out of reach while listing (item 3)


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "ringcentral", "list"],
        ["-p", "ringcentral", "--format", "json", "list"],
        ["sync", "--source", "ringcentral", "--target", "local"],
        ["sync", "--source", "ringcentral", "--target", "local", "--dry-run"],
    ],
)
def test_an_unreachable_vendor_is_one_line_naming_it(
    unreachable: str, args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if "--dry-run" in args:  # a plan needs a ledger to plan against
        assert run(["add", "--from", SENDER, "+12025550101"]) == 0
        capsys.readouterr()
    assert run(args) == 1
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert line.startswith("optouts: error: could not reach ringcentral: ")
    assert "Connection refused" in line or "ConnectError" in line
    assert SECRET not in err
    assert out == ""


def test_aws_unreachable_while_listing_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("OPTOUTS_RETRY_ATTEMPTS", "1")
    assert run(["-p", "aws", "list"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("optouts: error: could not reach aws: ")
    assert SECRET not in line


class _Lister(Provider):
    """A vendor that only lists, one request a page."""

    name = "lister"
    capabilities = frozenset({Capability.LIST})

    def list_page(self, sender: Any, status: Any, size: int, cursor: Any) -> Any:
        yield httpx.Request("GET", "https://lister.test/records")
        raise AssertionError("never answered in these tests")


@pytest.mark.parametrize("kind", [httpx.ReadTimeout, httpx.ConnectError, httpx.RemoteProtocolError])
@pytest.mark.parametrize("blocking", [True, False])
def test_listing_raises_a_provider_error_after_the_retries(
    kind: type[httpx.TransportError], blocking: bool
) -> None:
    sent: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise kind("timed out" if kind is httpx.ReadTimeout else "", request=request)

    policy = RetryPolicy(attempts=3, backoff=0)
    transport = httpx.MockTransport(refuse)
    errors: list[ProviderError] = []
    if blocking:
        http = httpx.Client(transport=transport)
        with Client(_Lister(), retry=policy, http_client=http) as client:
            for call in (lambda: list(client.list()), client.list_page):
                with pytest.raises(ProviderError) as raised:
                    call()
                errors.append(raised.value)
    else:

        async def both() -> None:
            http = httpx.AsyncClient(transport=transport)
            async with AsyncClient(_Lister(), retry=policy, http_client=http) as client:
                with pytest.raises(ProviderError) as raised:
                    [r async for r in client.list()]
                errors.append(raised.value)
                with pytest.raises(ProviderError) as raised:
                    await client.list_page()
                errors.append(raised.value)

        asyncio.run(both())
    for error in errors:
        assert error.provider == "lister"
        assert error.status_code is None
        assert str(error).startswith("could not reach lister")
        assert kind.__name__ in str(error)
        assert isinstance(error.__cause__, kind)
    assert len(sent) == 6  # every call retried before giving up


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    app = Emulator(rate_limit=None, auth_rate_limit=None)
    url, stop = serve_in_thread(app)
    monkeypatch.setenv("RC_SERVER_URL", url)
    monkeypatch.setenv("RC_CLIENT_ID", CREDENTIALS["client_id"])
    monkeypatch.setenv("RC_CLIENT_SECRET", CREDENTIALS["client_secret"])
    monkeypatch.setenv("RC_JWT", CREDENTIALS["jwt"])
    monkeypatch.setenv("OPTOUTS_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("OPTOUTS_RETRY_BACKOFF", "0.01")
    yield app
    stop()


def test_json_cut_short_by_a_lost_vendor_still_parses(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = [f"+1202555{n:04d}" for n in range(5)]
    assert run(["-p", "ringcentral", "add", "--from", SENDER, *numbers]) == 0
    capsys.readouterr()
    send = httpx.HTTPTransport.handle_request
    pages = 0

    def vendor_gone_after_one_page(self: httpx.HTTPTransport, request: httpx.Request) -> Any:
        nonlocal pages
        if request.method == "GET":
            pages += 1
            if pages > 1:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return send(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", vendor_gone_after_one_page)
    assert run(["-p", "ringcentral", "--format", "json", "list", "--page-size", "2"]) == 1
    out, err = capsys.readouterr()
    records = json.loads(out)  # the array was closed
    assert [r["recipient"] for r in records] == numbers[:2]
    assert one_error_line(err).startswith("optouts: error: could not reach ringcentral")


# stdout and stdin (item 4)


@needs_dev_full
@pytest.mark.parametrize(
    "args",
    [
        ["export"],
        ["list"],
        ["--format", "json", "list"],
        ["check", "--from", SENDER, "+12025550101"],
        ["providers"],
        ["--help"],
        ["--version"],
    ],
)
def test_a_full_stdout_is_one_line(args: list[str], database: str) -> None:
    env = {"OPTOUTS_LOCAL_DATABASE": database}
    assert optouts("add", "--from", SENDER, "+12025550101", env=env).returncode == 0
    with FULL.open("w") as full:
        done = optouts(*args, stdout=full, env=env)
    assert done.returncode == 1, done.stderr
    assert one_error_line(done.stderr) == (
        "optouts: error: cannot write to stdout: No space left on device"
    )


def _close(fd: int) -> Any:
    return lambda: os.close(fd)


def test_a_closed_stdout_is_one_line(empty_ledger: str) -> None:
    env = {"OPTOUTS_LOCAL_DATABASE": empty_ledger}
    for args in (["export"], ["check", "--from", SENDER, "+12025550101"], ["--version"]):
        done = optouts(*args, stdout=None, env=env, preexec_fn=_close(1))
        assert done.returncode == 1, done.stderr
        assert one_error_line(done.stderr) == "optouts: error: cannot write to stdout: it is closed"


def test_a_closed_stdout_does_not_stop_a_command_that_prints_nothing_on_it(
    database: str, tmp_path: Path
) -> None:
    data = tmp_path / "in.csv"
    data.write_text(f"sender,recipient,status\n{SENDER},+12025550101,opted-out\n")
    env = {"OPTOUTS_LOCAL_DATABASE": database}
    done = optouts("import", str(data), stdout=None, env=env, preexec_fn=_close(1))
    assert done.returncode == 0, done.stderr
    assert "1 recorded" in done.stderr


def test_a_closed_stdin_is_one_line(empty_ledger: str) -> None:
    env = {"OPTOUTS_LOCAL_DATABASE": empty_ledger}
    done = optouts("check", "--from", SENDER, "-", env=env, stdin=None, preexec_fn=_close(0))
    assert done.returncode == 1, done.stderr
    assert one_error_line(done.stderr) == "optouts: error: cannot read stdin: it is closed"


def test_a_reader_that_goes_away_ends_quietly(database: str) -> None:
    env = {"OPTOUTS_LOCAL_DATABASE": database}
    numbers = [f"+1202555{n:04d}" for n in range(3000)]
    assert optouts("add", "--from", SENDER, *numbers, env=env).returncode == 0
    child = subprocess.Popen(
        [sys.executable, "-m", "optouts.cli", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdout.readline()
    child.stdout.close()
    with child.stderr:
        err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 1
    assert "Traceback" not in err, err
    assert "Exception ignored" not in err, err


# The ledger's path and file (item 4)


def test_a_ledger_path_the_process_may_not_use_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = str(tmp_path / "locked" / "ledger.db")

    def refused(*_: object, **__: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), where)

    monkeypatch.setattr("optouts.ledger.Ledger.from_settings", refused)
    assert run(["-s", f"database={where}", "audit", "+12025550101"]) == 1
    assert one_error_line(capsys.readouterr().err) == f"optouts: error: {where}: Permission denied"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may enter any folder")
def test_a_folder_the_user_cannot_enter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    where = folder / "ledger.db"
    assert run(["-s", f"database={where}", "add", "--from", SENDER, "+12025550101"]) == 0
    folder.chmod(0)
    try:
        for command in ("check", "add"):
            capsys.readouterr()
            code = run(["-s", f"database={where}", command, "--from", SENDER, "+12025550101"])
            assert code in (1, 2)
            line = one_error_line(capsys.readouterr().err)
            assert str(where) in line
            assert "ermission denied" in line
    finally:
        folder.chmod(0o700)


def test_a_database_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("optouts.ledger.Ledger.from_settings", full)
    assert run(["audit", "+12025550101"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        "optouts: error: the ledger's database failed: database or disk is full"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE as on Linux")
def test_an_import_stopped_by_a_full_disk_says_what_it_kept(tmp_path: Path) -> None:
    import resource

    rows = 60_000
    data = tmp_path / "big.csv"
    with data.open("w", encoding="utf-8") as out:
        out.write("sender,recipient,status\n")
        out.writelines(f"{SENDER},+1202{n:07d},opted-out\n" for n in range(rows))
    database = tmp_path / "ledger.db"

    def small_disk() -> None:  # files may grow to 3 MB: the first window fits, not all
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, 3_000_000))

    env = {"OPTOUTS_LOCAL_DATABASE": str(database)}
    done = optouts("import", str(data), env=env, preexec_fn=small_disk)
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    found = re.search(r"the import stopped after the first ([\d,]+) rows of ", line)
    assert found, line
    assert "the ledger's database failed: " in line
    kept = int(found.group(1).replace(",", ""))
    assert 0 < kept < rows
    listed = optouts("--format", "csv", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) - 1 == kept  # every row it counted is there


# Smaller


def test_json_output_holds_no_lone_surrogate(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--format", "json", "check", "--from", SENDER, "+1202555\udcff"]) == 1
    out = capsys.readouterr().out
    assert "\\ud" not in out
    (row,) = json.loads(out)
    assert row["recipient"] == "+1202555\\xff"
    assert row["ok"] is False


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_the_ringcentral_emulator_refuses_a_port_out_of_range(port: str) -> None:
    result = separate_runner().invoke(cli, ["emulate", "ringcentral", "--port", port])
    assert result.exit_code == 2
    assert "not in the range 0<=x<=65535" in result.stderr
    assert run(["emulate", "ringcentral", "--port", port]) == 2
