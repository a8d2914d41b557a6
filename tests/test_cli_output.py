"""What the command line writes: a table that streams, and one way of writing a time.

The table once was drawn at the end from every row held in memory (200,000 checks: 103 s
and 582 MB, against 3.3 s and 105 MB as CSV); now each row is printed as its result
arrives. ``benchmarks/bench_cli.py`` measures the two side by side.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from optouts import RecipientResult
from optouts.cli import run

SENDER = "+18005550100"
US = "+12025550123"
CA = "+14165550123"
EXACT = "2024-03-01T12:00:05.250000Z"
WHOLE = "2024-03-02T08:30:00Z"
BAR_CHARACTERS = "━█▏▎▍▌▋▊▉╸╺"


@pytest.fixture(autouse=True)
def ledger(monkeypatch: pytest.MonkeyPatch, empty_ledger: str) -> str:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", empty_ledger)
    return empty_ledger


def optouts(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert run(list(argv)) == 0
    return capsys.readouterr().out


# The table streams


def test_each_row_is_printed_before_the_next_result_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    seen: list[str] = []

    def stream(self: object, operation: str, sender: str, recipients: Iterable[str]) -> Any:
        for recipient in recipients:
            if seen:  # the row of the previous result is on stdout already
                assert seen[-1] in out.getvalue()
            seen.append(recipient)
            yield RecipientResult(recipient, ok=True, opted_out=False)

    monkeypatch.setattr("optouts._client.Client.stream", stream)
    numbers = [f"+1202555{i:04d}" for i in range(50)]
    assert run(["check", "--from", SENDER, *numbers]) == 0
    assert seen == numbers
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["RECIPIENT", "OPTED", "OUT", "OK", "ERROR"]
    assert [line.split() for line in lines[1:]] == [[n, "no", "yes"] for n in numbers]


def test_table_columns_line_up_and_errors_come_last(capsys: pytest.CaptureFixture[str]) -> None:
    optouts(capsys, "add", "--from", SENDER, US)
    assert run(["check", "--from", SENDER, US, "not-a-number", CA]) == 1
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.index("OPTED OUT") == rows[0].index("yes")
    assert rows[0].split() == [US, "yes", "yes"]
    assert rows[1].split()[:3] == ["not-a-number", "unknown", "no"]
    assert rows[1].endswith("not a phone number (no digits in the right places)")
    assert rows[2].split() == [CA, "no", "yes"]


def test_list_table_streams_the_records_source_last(capsys: pytest.CaptureFixture[str]) -> None:
    optouts(capsys, "-s", "source=the spring campaign", "add", "--from", SENDER, US, CA)
    header, *rows = optouts(capsys, "list").splitlines()
    assert header.split() == ["SENDER", "RECIPIENT", "STATUS", "COUNTRY", "UPDATED", "AT", "SOURCE"]
    assert [row.split()[:4] for row in rows] == [
        [SENDER, US, "opted-out", "US"],
        [SENDER, CA, "opted-out", "CA"],
    ]
    assert all(row.endswith("the spring campaign") for row in rows)


def test_an_empty_list_prints_no_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert optouts(capsys, "list") == ""
    assert optouts(capsys, "--format", "json", "list") == "[]\n"


def test_on_a_terminal_rows_show_and_no_bar_tears_them(tmp_path: Path, ledger: str) -> None:
    """stdout and stderr both a terminal: the rows are the progress, and no bar is drawn."""
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("".join(f"+1202555{i:04d}\n" for i in range(3000)), encoding="utf-8")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "optouts.cli", "check", "--from", SENDER, "-f", str(numbers)],
        stdout=follower,
        stderr=follower,
        env={**os.environ, "OPTOUTS_LOCAL_DATABASE": ledger, "TERM": "xterm"},
        cwd=tmp_path,
    )
    os.close(follower)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # the terminal hung up: the process is done writing
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    text = seen.decode()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].split() == ["RECIPIENT", "OPTED", "OUT", "OK", "ERROR"]
    assert len(lines) == 3001
    assert not set(BAR_CHARACTERS) & set(text)
    assert "\x1b" not in text


# One way of writing a time


@pytest.fixture
def dated(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Two records with known times: one with a fraction of a second, one without."""
    listing = tmp_path / "dated.csv"
    listing.write_text(
        "sender,recipient,status,source,updated_at\n"
        f"{SENDER},{US},opted-out,import,2024-03-01T13:00:05.250+01:00\n"
        f"{SENDER},{CA},opted-out,import,{WHOLE}\n",
        encoding="utf-8",
    )
    assert run(["import", str(listing)]) == 0
    capsys.readouterr()


def times_in(text: str) -> list[str]:
    return re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)", text)


@pytest.mark.usefixtures("dated")
def test_every_output_writes_times_alike(capsys: pytest.CaptureFixture[str]) -> None:
    exported = optouts(capsys, "export")
    assert times_in(exported) == [EXACT, WHOLE]
    assert times_in(optouts(capsys, "list")) == [EXACT, WHOLE]
    assert times_in(optouts(capsys, "--format", "csv", "list")) == [EXACT, WHOLE]
    listed = json.loads(optouts(capsys, "--format", "json", "list"))
    assert [row["updated_at"] for row in listed] == [EXACT, WHOLE]
    audit = json.loads(optouts(capsys, "--format", "json", "audit", US))
    assert [row["updated_at"] for row in audit["current"]] == [EXACT]
    assert [row["first_received"] for row in audit["current"]] == [EXACT]
    assert [row["at"] for row in audit["history"]] == [EXACT]
    assert set(times_in(optouts(capsys, "audit", CA))) == {WHOLE}
