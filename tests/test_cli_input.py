"""What the command line reads: recipient files and stdin, CSV imports, the config file.

A line that cannot be read fails alone, named ``file:line``, and the others are answered;
comments and blank lines are no recipients; an empty import is no rows and no failures.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from clirunner import separate_runner
from optouts.cli import cli, run

SENDER = "+18005550100"
US = "+12025550123"
CA = "+14165550123"


@pytest.fixture(autouse=True)
def ledger(monkeypatch: pytest.MonkeyPatch, empty_ledger: str) -> str:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", empty_ledger)
    return empty_ledger


def invoke(argv: list[str], stdin: bytes) -> Result:
    """A run with real bytes on stdin; ``return_value`` is the exit code ``run`` gives."""
    return separate_runner().invoke(cli, argv, stdin, standalone_mode=False)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))[1:]


# Recipient files and stdin


def test_a_line_that_is_not_utf8_fails_alone_naming_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listing = tmp_path / "recipients.txt"
    listing.write_bytes(f"{US}\n+1416\xff555\n{CA}\n".encode("latin-1"))
    code = run(["--format", "csv", "check", "--from", SENDER, "-f", str(listing)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "codec" not in err
    rows = csv_rows(out)
    assert [row[1:4] for row in rows] == [
        [US, "false", "true"],
        ["'+1416\\xff555", "", "false"],  # guarded: it begins with + and is no number
        [CA, "false", "true"],
    ]
    assert rows[1][4] == f"{listing}:2: not UTF-8 (byte 0xff at column 6)"


def test_a_line_of_stdin_that_is_not_utf8_fails_alone() -> None:
    stdin = b"\xef\xbb\xbf" + f"{US}\n\xfe\n{CA}\n".encode("latin-1")
    result = invoke(["--format", "csv", "check", "--from", SENDER, "-"], stdin)
    assert result.return_value == 1
    rows = csv_rows(result.stdout)
    assert [row[1] for row in rows] == [US, "\\xfe", CA]
    assert rows[1][4] == "stdin:2: not UTF-8 (byte 0xfe at column 1)"
    assert [row[3] for row in rows] == ["true", "false", "true"]


def test_the_console_script_survives_bad_bytes_on_stdin(tmp_path: Path, ledger: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "optouts.cli", "--format", "json", "add", "--from", SENDER, "-"],
        input=f"{US}\n\x80\x81\n".encode("latin-1"),
        capture_output=True,
        env={"OPTOUTS_LOCAL_DATABASE": ledger, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == b""
    assert b'"ok": true' in done.stdout
    assert b"stdin:2: not UTF-8" in done.stdout


def test_comments_and_blank_lines_are_no_recipients(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listing = tmp_path / "recipients.txt"
    listing.write_text(
        f"# opt-outs from the March campaign\n\n{US}\n   \n  # {CA} left out\n{CA}\n#\n",
        encoding="utf-8",
    )
    code = run(["--format", "csv", "add", "--from", SENDER, "-f", str(listing)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert [row[1] for row in csv_rows(out)] == [US, CA]


def test_comments_on_stdin_are_skipped_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"# header\n{US}\n\n"))
    assert run(["--format", "csv", "check", "--from", SENDER, "-"]) == 0
    assert [row[1] for row in csv_rows(capsys.readouterr().out)] == [US]


def test_a_file_of_only_comments_prints_no_empty_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listing = tmp_path / "recipients.txt"
    listing.write_text("# nothing yet\n\n", encoding="utf-8")
    assert run(["check", "--from", SENDER, "-f", str(listing)]) == 0
    assert capsys.readouterr().out == ""


def test_a_refused_request_prints_no_table(capsys: pytest.CaptureFixture[str]) -> None:
    """The whole request refused (a sender that is no number): one error line, no table."""
    assert run(["check", "--from", "banana", US, CA]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("optouts: error:")


# Imports


def test_an_empty_import_is_no_rows_and_no_failures() -> None:
    result = invoke(["import", "-"], b"")
    assert result.return_value == 0, result.output
    assert result.stderr.strip() == "read 0 rows: 0 recorded, 0 unchanged, 0 failed"
    assert "-1" not in result.stderr


def test_an_empty_import_as_json() -> None:
    result = invoke(["import", "--format", "json", "-"], b"")
    assert result.return_value == 0
    assert '"failed": 0' in result.stdout
    assert '"rows": 0' in result.stdout


# The config file


def test_a_config_file_that_is_not_utf8_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "conf" / "optouts.toml"
    config.parent.mkdir()
    config.write_bytes(b'provider = "local"\n# caf\xe9\n')
    assert run(["--config", str(config), "list"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert str(config) in err
    assert "not UTF-8 (line 2" in err


def test_a_config_path_that_is_a_folder_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "optouts.d"
    folder.mkdir()
    monkeypatch.setenv("OPTOUTS_CONFIG", str(folder))
    assert run(["list"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert f"config file {folder} cannot be read" in err
