"""``optouts serve`` as a command: a real process on a free port taking a webhook and
stopping on SIGTERM (on either event loop, and without uvloop or httptools installed), and
the one-line errors for what keeps it from starting."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

import optouts
from optouts.cli import run
from serverkit import CONSUMER, OURS, RC_TOKEN, opted_out, rc_v1

needs_ringcentral = pytest.mark.skipif(
    "ringcentral" not in optouts.inbound.parsers(), reason="optouts-ringcentral is not installed"
)


@pytest.fixture(autouse=True)
def logging_levels() -> Iterator[None]:
    """``serve`` sets the levels of optouts' and uvicorn's loggers; put them back."""
    loggers = [logging.getLogger(name) for name in ("optouts", "uvicorn")]
    levels = [each.level for each in loggers]
    yield
    for each, level in zip(loggers, levels, strict=True):
        each.setLevel(level)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_healthy(url: str, process: subprocess.Popen[str], deadline: float = 30) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise AssertionError(f"optouts serve exited early: {process.communicate()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("optouts serve did not become healthy")


def hiding(modules: Sequence[str]) -> str:
    """Python that makes ``modules`` fail to import, as on an install without them."""
    return "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules)


def start_serve(
    tmp_path: Path, port: int, args: Sequence[str] = (), hidden: Sequence[str] = ()
) -> subprocess.Popen[str]:
    """``optouts serve`` in a process of its own over ``tmp_path/ledger.db``, none of the
    caller's ``OPTOUTS_`` settings, RingCentral's webhook served; ``hidden`` not installed."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OPTOUTS_") or key == "OPTOUTS_LOAD_PLUGINS"
    }
    environ.update(
        OPTOUTS_LOCAL_DATABASE=str(tmp_path / "ledger.db"),
        OPTOUTS_SERVE_RINGCENTRAL_VERIFICATION_TOKEN=RC_TOKEN,
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    script = hiding(hidden) + "from optouts.cli import run\nsys.exit(run(sys.argv[1:]))\n"
    return subprocess.Popen(
        [sys.executable, "-c", script, "serve", "--port", str(port), *args],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


@needs_ringcentral
@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
@pytest.mark.parametrize("loop", ["auto", "asyncio", "uvloop"])
def test_serve_takes_a_webhook_and_stops_cleanly_on_sigterm(tmp_path: Path, loop: str) -> None:
    if loop == "uvloop" and not uvloop_installed():
        pytest.skip("uvloop is not installed")
    database = str(tmp_path / "ledger.db")
    port = free_port()
    process = start_serve(tmp_path, port, [] if loop == "auto" else ["--loop", loop])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        refused = httpx.post(f"{url}/webhooks/ringcentral", json=rc_v1(), timeout=10)
        answer = httpx.post(
            f"{url}/webhooks/ringcentral",
            content=json.dumps(rc_v1()),
            headers={"Verification-Token": RC_TOKEN, "Content-Type": "application/json"},
            timeout=10,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert refused.status_code == 401
    assert answer.status_code == 200, answer.text
    assert process.returncode == 0, stderr
    assert opted_out(database, OURS, [CONSUMER]) == [True]
    assert stdout == ""
    assert "POST /webhooks/ringcentral 200" in stderr
    assert "POST /webhooks/ringcentral 401" in stderr
    assert f"listening on http://127.0.0.1:{port}" in stderr
    running = {"auto": "uvloop" if uvloop_installed() else "asyncio"}.get(loop, loop)
    assert f"(event loop {running}, HTTP parser httptools)" in stderr
    assert "/webhooks/azure is not served" in stderr or "azure" not in optouts.inbound.parsers()
    assert RC_TOKEN not in stderr
    assert "Traceback" not in stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_without_uvloop_and_httptools_it_serves_on_asyncio_and_h11(tmp_path: Path) -> None:
    port = free_port()
    process = start_serve(tmp_path, port, hidden=["uvloop", "httptools"])
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert f"listening on http://127.0.0.1:{port} (event loop asyncio, HTTP parser h11)" in stderr
    assert "GET /healthz 200" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("hidden", "args", "message"),
    [
        (["starlette"], [], "needs the server extra (starlette"),
        (["uvloop"], ["--loop", "uvloop"], "--loop uvloop needs uvloop"),
    ],
    ids=["server-extra", "uvloop"],
)
def test_what_is_missing_is_one_line_saying_what_to_install(
    tmp_path: Path, hidden: list[str], args: list[str], message: str
) -> None:
    script = hiding(hidden) + f"from optouts.cli import run\nsys.exit(run(['serve', *{args!r}]))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "OPTOUTS_LOCAL_DATABASE": str(tmp_path / "ledger.db")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    assert "pip install 'optouts[server]'" in lines[0]
    assert lines[0].startswith("optouts: error: ")
    assert not (tmp_path / "ledger.db").exists()  # refused before the ledger is created


def test_a_port_in_use_is_a_one_line_error(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", database)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run(["serve", "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"optouts: error: cannot listen on 127.0.0.1:{port}: ")
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "environ", "message"),
    [
        (["--target", "local"], {}, "'local' is the ledger"),
        ([], {"OPTOUTS_SERVE_API_KEYS": "short"}, "at least 16 characters"),
        (["--target", "nosuchvendor"], {}, "unknown provider 'nosuchvendor'"),
    ],
    ids=["ledger-target", "short-key", "unknown-target"],
)
def test_settings_that_keep_it_from_starting_are_one_line_errors(
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    environ: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", database)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert run(["serve", "--port", "0", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_serve_help_names_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--target", "--loop", "uvloop", "127.0.0.1", "8080"):
        assert option in out
