"""The command line: output formats, where recipients come from, exit codes and error lines."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from optouts import ProviderError, RecipientResult
from optouts.cli import run
from optouts.ledger._schema import SCHEMA_VERSION

SENDER = "+18005550100"
OTHER_SENDER = "+18005550111"
US = "+12025550123"
CA = "+14165550123"
GB = "+442079460000"
RESULT_KEYS = ["sender", "recipient", "opted_out", "ok", "error"]
RECORD_KEYS = ["sender", "recipient", "status", "country", "source", "updated_at"]
BAR_CHARACTERS = "━█▏▎▍▌▋▊▉╸╺"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
"""How every time a person reads is written: UTC, Z, to the microsecond."""


@pytest.fixture(autouse=True)
def ledger(monkeypatch: pytest.MonkeyPatch, empty_ledger: str) -> str:
    """Every command uses a fresh, empty ledger through OPTOUTS_LOCAL_DATABASE."""
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", empty_ledger)
    return empty_ledger


class Ran:
    """Exit code and captured output of one ``optouts`` run."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> list[dict[str, Any]]:
        rows = json.loads(self.out)
        assert isinstance(rows, list)
        return rows

    def csv(self) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.out)))


def optouts(capsys: pytest.CaptureFixture[str], *argv: str) -> Ran:
    code = run(list(argv))
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)


def assert_one_error_line(err: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("optouts: error: ")
    assert "Traceback" not in err


def stored(database: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return db.execute(
            "SELECT sender, recipient, status FROM optouts_readable ORDER BY sender, recipient"
        ).fetchall()


# Output formats


def test_add_json_prints_one_object_per_recipient_with_the_result_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = optouts(capsys, "--format", "json", "add", "--from", SENDER, US, CA)
    assert (ran.code, ran.err) == (0, "")
    rows = ran.json()
    assert [list(row) for row in rows] == [RESULT_KEYS, RESULT_KEYS]
    assert rows == [
        {"sender": SENDER, "recipient": US, "opted_out": True, "ok": True, "error": None},
        {"sender": SENDER, "recipient": CA, "opted_out": True, "ok": True, "error": None},
    ]


def test_check_and_remove_json(capsys: pytest.CaptureFixture[str]) -> None:
    optouts(capsys, "add", "--from", SENDER, US)
    checked = optouts(capsys, "--format", "json", "check", "--from", SENDER, US, CA)
    assert checked.code == 0
    assert [list(row) for row in checked.json()] == [RESULT_KEYS, RESULT_KEYS]
    assert [(row["recipient"], row["opted_out"]) for row in checked.json()] == [
        (US, True),
        (CA, False),
    ]
    removed = optouts(capsys, "--format", "json", "remove", "--from", SENDER, US)
    assert removed.code == 0
    assert removed.json() == [
        {"sender": SENDER, "recipient": US, "opted_out": False, "ok": True, "error": None}
    ]
    again = optouts(capsys, "--format", "json", "check", "--from", SENDER, US)
    assert again.json()[0]["opted_out"] is False


def test_csv_prints_a_header_and_one_row_per_recipient(
    capsys: pytest.CaptureFixture[str],
) -> None:
    optouts(capsys, "add", "--from", SENDER, US)
    ran = optouts(capsys, "--format", "csv", "check", "--from", SENDER, US, CA, "not-a-number")
    assert ran.code == 1
    header, *rows = ran.csv()
    assert header == RESULT_KEYS
    assert [row[:4] for row in rows] == [
        [SENDER, US, "true", "true"],
        [SENDER, CA, "false", "true"],
        [SENDER, "not-a-number", "", "false"],
    ]
    assert [row[4] for row in rows[:2]] == ["", ""]
    assert "not a phone number" in rows[2][4]


def test_table_prints_the_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    ran = optouts(capsys, "add", "--from", SENDER, US, CA)
    assert ran.code == 0
    assert US in ran.out
    assert CA in ran.out
    listed = optouts(capsys, "list")
    assert listed.code == 0
    assert US in listed.out
    assert CA in listed.out
    assert SENDER in listed.out


def test_list_json_objects_have_the_record_keys(capsys: pytest.CaptureFixture[str]) -> None:
    optouts(capsys, "add", "--from", SENDER, US, GB)
    ran = optouts(capsys, "--format", "json", "list")
    assert (ran.code, ran.err) == (0, "")
    rows = ran.json()
    assert [list(row) for row in rows] == [RECORD_KEYS, RECORD_KEYS]
    assert [
        (r["sender"], r["recipient"], r["status"], r["country"], r["source"]) for r in rows
    ] == [
        (SENDER, US, "opted-out", "US", "api"),
        (SENDER, GB, "opted-out", "GB", "api"),
    ]
    assert all(ISO_UTC.fullmatch(row["updated_at"]) for row in rows)


def test_list_json_of_an_empty_ledger_is_an_empty_array(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = optouts(capsys, "--format", "json", "list")
    assert ran.code == 0
    assert ran.json() == []


def test_list_csv(capsys: pytest.CaptureFixture[str]) -> None:
    optouts(capsys, "add", "--from", SENDER, CA)
    header, *rows = optouts(capsys, "--format", "csv", "list").csv()
    assert header == RECORD_KEYS
    assert [row[:5] for row in rows] == [[SENDER, CA, "opted-out", "CA", "api"]]


def test_list_status_all_includes_opt_ins_and_from_filters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    optouts(capsys, "add", "--from", SENDER, US, CA)
    optouts(capsys, "add", "--from", OTHER_SENDER, GB)
    optouts(capsys, "remove", "--from", SENDER, US)

    def listed(*options: str) -> list[tuple[str, str, str]]:
        ran = optouts(capsys, "--format", "json", "list", *options)
        assert ran.code == 0
        return [(r["sender"], r["recipient"], r["status"]) for r in ran.json()]

    assert listed() == [(SENDER, CA, "opted-out"), (OTHER_SENDER, GB, "opted-out")]
    assert listed("--status", "all") == [
        (SENDER, US, "opted-in"),
        (SENDER, CA, "opted-out"),
        (OTHER_SENDER, GB, "opted-out"),
    ]
    assert listed("--status", "opted-in") == [(SENDER, US, "opted-in")]
    assert listed("--from", OTHER_SENDER, "--status", "all") == [(OTHER_SENDER, GB, "opted-out")]
    assert listed("--from", "+18005550199") == []


def test_list_pages_through_every_record(capsys: pytest.CaptureFixture[str]) -> None:
    recipients = [f"+1202555{n:04d}" for n in range(25)]
    optouts(capsys, "add", "--from", SENDER, *recipients)
    ran = optouts(capsys, "--format", "json", "list", "--page-size", "4")
    assert [row["recipient"] for row in ran.json()] == recipients


# Where recipients come from


def test_recipients_from_a_file_skip_blank_lines_and_keep_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ledger: str
) -> None:
    listing = tmp_path / "recipients.txt"
    listing.write_text(f"{GB}\n\n  {US}  \n\n{CA}\n", encoding="utf-8")
    ran = optouts(capsys, "--format", "json", "add", "--from", SENDER, "--file", str(listing))
    assert ran.code == 0
    assert [row["recipient"] for row in ran.json()] == [GB, US, CA]
    assert {row[1] for row in stored(ledger)} == {GB, US, CA}


def test_recipients_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{CA}\n\n{US}\n"))
    ran = optouts(capsys, "--format", "json", "add", "--from", SENDER, "-")
    assert ran.code == 0
    assert [row["recipient"] for row in ran.json()] == [CA, US]


def test_arguments_come_first_then_files_then_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    listing = tmp_path / "recipients.txt"
    listing.write_text(f"{CA}\n", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{GB}\n"))
    ran = optouts(
        capsys, "--format", "json", "check", "--from", SENDER, US, "-", "--file", str(listing)
    )
    assert ran.code == 0
    assert [row["recipient"] for row in ran.json()] == [US, CA, GB]


def test_duplicates_are_reported_at_each_position(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ledger: str
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{US}\n{CA}\n{US}\n"))
    ran = optouts(capsys, "--format", "json", "add", "--from", SENDER, US, "-")
    assert ran.code == 0
    rows = ran.json()
    assert [row["recipient"] for row in rows] == [US, US, CA, US]
    assert all(row["ok"] and row["opted_out"] for row in rows)
    assert len(stored(ledger)) == 2


# Exit codes and errors


def test_failed_recipient_exits_1_and_the_valid_ones_are_still_processed(
    capsys: pytest.CaptureFixture[str], ledger: str
) -> None:
    ran = optouts(capsys, "--format", "json", "add", "--from", SENDER, US, "not-a-number", CA)
    assert ran.code == 1
    rows = ran.json()
    assert [(row["recipient"], row["ok"], row["opted_out"]) for row in rows] == [
        (US, True, True),
        ("not-a-number", False, None),
        (CA, True, True),
    ]
    assert rows[1]["error"]
    assert [row[1] for row in stored(ledger)] == [US, CA]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["add", US], id="missing --from"),
        pytest.param(["add", "--from", SENDER], id="no recipients"),
        pytest.param(["--provider", "nope", "add", "--from", SENDER, US], id="unknown provider"),
        pytest.param(["--set", "nope=1", "add", "--from", SENDER, US], id="unknown setting"),
        pytest.param(["--set", "nope", "add", "--from", SENDER, US], id="bad --set syntax"),
        pytest.param(["--set", "=1", "check", "--from", SENDER, US], id="--set without name"),
        pytest.param(["add", "--from", "banana", US], id="invalid sender"),
        pytest.param(["check", "--from", SENDER, "--file", "missing.txt"], id="missing file"),
        pytest.param(["list", "--status", "maybe"], id="unknown status"),
        pytest.param(["list", "--page-size", "100000"], id="page size too large"),
        pytest.param(["list", "--page-size", "0"], id="page size zero"),
        pytest.param(["--format", "xml", "list"], id="unknown format"),
        pytest.param(["frobnicate"], id="unknown command"),
    ],
)
def test_usage_errors_exit_2_with_one_error_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    ran = optouts(capsys, *argv)
    assert ran.code == 2
    assert_one_error_line(ran.err)
    assert ran.out == ""


def test_usage_error_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    optouts(capsys, "--set", "nope=1", "add", "--from", SENDER, US)
    assert (
        optouts(capsys, "--format", "json", "check", "--from", SENDER, US).json()[0]["opted_out"]
        is False
    )


def test_error_lines_say_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--from" in optouts(capsys, "add", US).err
    assert "'nope'" in optouts(capsys, "--provider", "nope", "list").err
    assert "'nope'" in optouts(capsys, "--set", "nope=1", "list").err
    assert "NAME=VALUE" in optouts(capsys, "--set", "nope", "list").err
    assert "banana" in optouts(capsys, "check", "--from", "banana", US).err


def test_newer_ledger_is_one_error_line(capsys: pytest.CaptureFixture[str], ledger: str) -> None:
    """A ledger written by a newer optouts is a configuration error, not a traceback."""
    with contextlib.closing(sqlite3.connect(ledger)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    ran = optouts(capsys, "check", "--from", SENDER, US)
    assert ran.code == 2
    assert_one_error_line(ran.err)
    assert "upgrade" in ran.err


def test_unopenable_database_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """SQLite's own errors (here: the path is a folder) come out as one line too."""
    ran = optouts(capsys, "--set", f"database={tmp_path}", "list")
    assert ran.code != 0
    assert_one_error_line(ran.err)


def test_console_script_never_prints_a_traceback(tmp_path: Path, ledger: str) -> None:
    environ = {**os.environ, "OPTOUTS_LOCAL_DATABASE": ledger, "COLUMNS": "200"}

    def console(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "optouts.cli", *argv],
            env=environ,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    usage = console("add", "--from", "banana", US)
    assert usage.returncode == 2
    assert_one_error_line(usage.stderr)

    partial = console("--format", "json", "add", "--from", SENDER, US, "not-a-number")
    assert partial.returncode == 1
    assert partial.stderr == ""
    assert [row["ok"] for row in json.loads(partial.stdout)] == [True, False]


# Providers, progress, configuration, emulators


def test_providers_json_lists_local_with_every_capability(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = optouts(capsys, "--format", "json", "providers")
    assert ran.code == 0
    local = next(row for row in ran.json() if row["name"] == "local")
    assert local["capabilities"] == ["add", "check", "list", "remove"]


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipients = [f"+1202555{n:04d}" for n in range(300)]
    ran = optouts(capsys, "--format", "json", "add", "--from", SENDER, *recipients)
    assert ran.code == 0
    assert ran.err == ""
    assert not set(BAR_CHARACTERS) & set(ran.out)
    assert len(ran.json()) == 300


def test_database_from_set_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.db"
    ran = optouts(capsys, "--set", f"database={chosen}", "add", "--from", SENDER, US)
    assert ran.code == 0
    assert stored(str(chosen)) == [(SENDER, US, "opted-out")]
    assert optouts(capsys, "--format", "json", "list").json() == []  # the env one is untouched


def test_config_file_in_working_directory_is_honoured(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPTOUTS_LOCAL_DATABASE")
    (tmp_path / "optouts.toml").write_text(
        '[providers.local]\ndatabase = "x.db"\nsource = "toml"\n', encoding="utf-8"
    )
    ran = optouts(capsys, "add", "--from", SENDER, US)
    assert ran.code == 0
    assert Path.cwd() == tmp_path
    assert stored(str(tmp_path / "x.db")) == [(SENDER, US, "opted-out")]
    listed = optouts(capsys, "--format", "json", "list").json()
    assert [(r["recipient"], r["source"]) for r in listed] == [(US, "toml")]


def test_environment_beats_the_config_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ledger: str
) -> None:
    (tmp_path / "optouts.toml").write_text(
        '[providers.local]\ndatabase = "x.db"\n', encoding="utf-8"
    )
    assert optouts(capsys, "add", "--from", SENDER, US).code == 0
    assert stored(ledger) == [(SENDER, US, "opted-out")]
    assert not (tmp_path / "x.db").exists()


def test_missing_config_file_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "optouts.toml"
    ran = optouts(capsys, "--config", str(missing), "list")
    assert ran.code == 2
    assert_one_error_line(ran.err)
    assert str(missing) in ran.err


def test_emulate_help_lists_azure(capsys: pytest.CaptureFixture[str]) -> None:
    ran = optouts(capsys, "emulate", "--help")
    assert ran.code == 0
    assert "azure" in ran.out.split("Commands:", 1)[1]


def test_the_progress_bar_on_a_terminal_leaves_the_results_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal a bar shows rate and ETA on stderr; stdout still gets every result."""
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("".join(f"+1202555{i:04d}\n" for i in range(3000)), encoding="utf-8")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert run(["--format", "csv", "check", "--from", "+18005550100", "--file", str(numbers)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3001
    assert "Traceback" not in captured.err


# Text from vendors and files is shown, never obeyed

MARKUP = "[bold red]x[/]"
LINK = "\x1b]8;;http://evil\x07click\x1b]8;;\x07"
EVIL = f"{MARKUP}{LINK}\u202e"
SHOWN = "[bold red]x[/]\\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07\\u202e"
RAW = ("\x1b", "\x07", "\u202e", "\r")


def assert_shown_not_obeyed(text: str) -> None:
    assert not [character for character in RAW if character in text]
    assert SHOWN in text


def test_csv_output_never_writes_a_cell_a_spreadsheet_would_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = optouts(capsys, "--format", "csv", "check", "--from", SENDER, US, "=1+1", "@SUM(A1)")
    assert [row[1] for row in ran.csv()[1:]] == [US, "'=1+1", "'@SUM(A1)"]
    optouts(capsys, "--set", "source=-2+3", "add", "--from", SENDER, CA)
    _, *rows = optouts(capsys, "--format", "csv", "list").csv()
    assert [row[:5] for row in rows] == [[SENDER, CA, "opted-out", "CA", "'-2+3"]]


def test_sources_with_markup_and_escapes_are_shown_as_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert optouts(capsys, "--set", f"source={EVIL}", "add", "--from", SENDER, US).code == 0
    listing = tmp_path / "evil\x1b[2J.csv"  # a file name may hold escapes too
    listing.write_text(
        f"sender,recipient,status,source\n{SENDER},{CA},opted-out,{EVIL}\n{SENDER},{GB},{EVIL},\n",
        encoding="utf-8",
    )
    imported = optouts(capsys, "import", str(listing))
    assert imported.code == 1
    assert_shown_not_obeyed(imported.err)
    assert "evil\\x1b[2J.csv:3: status" in imported.err
    for argv in (["list"], ["audit", US], ["audit", CA]):
        ran = optouts(capsys, *argv)
        assert ran.code == 0
        assert_shown_not_obeyed(ran.out)


def test_vendor_text_in_results_and_errors_is_shown_as_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(self: object, operation: str, sender: str, recipients: Any) -> Any:
        for recipient in recipients:
            yield RecipientResult(recipient, ok=False, error=EVIL)

    monkeypatch.setattr("optouts._client.Client.stream", refused)
    ran = optouts(capsys, "check", "--from", SENDER, US, EVIL)
    assert ran.code == 1
    assert_shown_not_obeyed(ran.out)

    def broken(self: object, operation: str, sender: str, recipients: Any) -> Any:
        raise ProviderError(f"{EVIL}\r\noptouts: error: forged", provider="fakevendor")

    monkeypatch.setattr("optouts._client.Client.stream", broken)
    ran = optouts(capsys, "check", "--from", SENDER, US)
    assert ran.code == 1
    assert_one_error_line(ran.err)
    assert_shown_not_obeyed(ran.err)


def test_a_5_mb_argument_makes_a_short_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    huge = "5" * 5_000_000
    for argv in (["check", "--from", huge, US], ["--set", huge, "list"]):
        ran = optouts(capsys, *argv)
        assert ran.code == 2
        assert_one_error_line(ran.err)
        assert len(ran.err) < 300
        assert "(5,000,000 characters)" in ran.err
    ran = optouts(capsys, "check", "--from", SENDER, f"+{huge}")
    assert ran.code == 1
    assert len(ran.out) < 5_000
