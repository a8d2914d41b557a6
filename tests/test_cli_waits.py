"""Waits a person can see: on a terminal, a pause over two seconds is a line on stderr.

Against the RingCentral emulator with a Light budget of one request every 3 s, an ``add``
of 1,001 numbers takes two bulk requests, so the second waits about 3 s: on a terminal
stderr says so, and why; piped, it says nothing. The terminal is faked as in test_cli.py,
and once for real, through a pseudo-terminal around a subprocess.
"""

from __future__ import annotations

import logging
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from optouts import _cli_waits
from optouts.cli import run
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import CREDENTIALS, serve_in_thread

SENDER = "+16505550100"
LINE = "optouts: waiting 3 s: RingCentral allows 1 request every 3 s in its Light group"


@pytest.fixture
def recipients(tmp_path: Path) -> Path:
    """1,001 numbers: two bulk-assign requests."""
    path = tmp_path / "numbers.txt"
    path.write_text("".join(f"+1202555{n:04d}\n" for n in range(1001)), encoding="utf-8")
    return path


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    """The emulator on 127.0.0.1, one Light request every 3 s, and the variables for it."""
    app = Emulator(rate_limit=RateLimit(1, 3.0), auth_rate_limit=None)
    url, stop = serve_in_thread(app)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("OPTOUTS_PROVIDER", "ringcentral")
    monkeypatch.setenv("RC_SERVER_URL", url)
    monkeypatch.setenv("RC_CLIENT_ID", CREDENTIALS["client_id"])
    monkeypatch.setenv("RC_CLIENT_SECRET", CREDENTIALS["client_secret"])
    monkeypatch.setenv("RC_JWT", CREDENTIALS["jwt"])
    yield app
    stop()


def test_a_long_wait_is_a_line_on_a_terminal(
    emulator: Emulator,
    recipients: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    started = time.monotonic()
    assert run(["--format", "csv", "add", "--from", SENDER, "--file", str(recipients)]) == 0
    assert time.monotonic() - started >= 2.9
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 + 1001
    (line,) = [text for text in captured.err.split("\n") if "waiting" in text]
    assert line.endswith(LINE)
    assert emulator.throttled == {}
    assert logging.getLogger("optouts.wait").handlers == []  # gone with the command


def test_nothing_is_added_to_stderr_when_it_is_not_a_terminal(
    emulator: Emulator, recipients: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--format", "csv", "add", "--from", SENDER, "--file", str(recipients)]) == 0
    assert "waiting" not in capsys.readouterr().err


def test_a_wait_already_in_the_services_log_is_not_written_twice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    logger = logging.getLogger("optouts.wait")
    with click.Context(click.Command("x")) as ctx:
        _cli_waits.show(ctx)
        logger.info("waiting 9 s: shown once")
        assert capsys.readouterr().err.count("waiting 9 s") == 1
        root = logging.StreamHandler(sys.stderr)
        logging.getLogger().addHandler(root)
        try:
            logger.info("waiting 9 s: shown once")
        finally:
            logging.getLogger().removeHandler(root)
        assert capsys.readouterr().err.count("waiting 9 s") == 1
    assert logger.handlers == []


def test_a_real_terminal_shows_the_wait(emulator: Emulator, recipients: Path) -> None:
    """``optouts`` in a subprocess whose stderr is a pseudo-terminal."""
    argv = ["--format", "csv", "add", "--from", SENDER, "--file", str(recipients)]
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "optouts.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env={**os.environ, "TERM": "xterm"},
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(main)
    assert process.wait(30) == 0
    text = seen.decode("utf-8", "replace")
    assert f"\r\x1b[2K{LINE}" in text
