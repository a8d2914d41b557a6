"""A stray quote in an import costs its own record, never the rows after it.

Every physical line is a row recorded, one unchanged, a blank line, or a bad line reported
by number; a record left open is reported at the line it starts on and reading resumes on
the next line (a quoted cell may span lines, up to 100 of them, when it closes well).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optouts
from optouts._csvio import HEADER, import_csv
from optouts._csvparse import parse, read_header
from optouts.cli import run

S = "+18005550100"
TITLE = ",".join(HEADER) + "\n"
NOW = 1_800_000_000_000_000
OPEN_AT_END = "not readable as CSV: unclosed quote (still open at the end of the file)"
OPEN_100 = "not readable as CSV: unclosed quote (not closed within 100 lines)"


@pytest.fixture
def ledger(database: str) -> Iterator[optouts.Ledger]:
    with optouts.Ledger.open(database) as opened:
        yield opened


def good(n: int, *, source: str = "ok") -> str:
    return f"{S},+1303555{n:04d},opted-out,{source},\n"


def outcomes(text: str, *, size: int = 150_000, first: int | None = None) -> dict[int, int | str]:
    """Each line's outcome through the parser: the recipient taken, or why it was not."""
    lines = iter(io.StringIO(text, newline=""))
    header = read_header(lines)
    assert header is not None
    columns, after = header
    got: dict[int, int | str] = {}
    for window in parse(
        lines,
        columns,
        after=after,
        region=None,
        default_source="import",
        now=lambda: NOW,
        size=size,
        first=first,
        keep_lines=True,
    ):
        assert len(window.changes) + len(window.bad) <= size
        for line, change in zip(window.lines, window.changes, strict=True):
            assert line not in got
            got[line] = change.recipient
        for line, reason in window.bad:
            assert line not in got
            got[line] = reason
    return got


def test_the_reviews_small_file_keeps_the_rows_after_an_unclosed_quote(
    ledger: optouts.Ledger,
) -> None:
    text = (
        TITLE
        + good(0, source="ok1")
        + f'{S},+12025550112,opted-out,"unterminated,\n'
        + "".join(good(n) for n in range(1, 6))
    )
    report = import_csv(ledger, io.StringIO(text, newline=""))
    assert report.errors == ((3, OPEN_AT_END),)
    assert (report.rows, report.applied, report.failed) == (7, 6, 1)
    assert ledger.opted_out(S, ["+13035550005"]) == [True]


def test_the_reviews_long_file_keeps_all_10000_rows_after_an_unclosed_quote(
    ledger: optouts.Ledger,
) -> None:
    text = (
        TITLE
        + f'{S},+12025550111,opted-out,"oops,\n'
        + "".join(good(n) for n in range(10_000))
        + f"{S},bad,opted-out,ok,\n"
    )
    report = import_csv(ledger, io.StringIO(text, newline=""))
    assert report.errors == (
        (2, OPEN_100),
        (10_003, "'bad': not a phone number (no digits in the right places)"),
    )
    assert (report.rows, report.applied, report.failed) == (10_002, 10_000, 2)
    physical = text.count("\n") - 1
    assert report.applied + report.failed == physical
    again = import_csv(ledger, io.StringIO(text, newline=""))  # all unchanged
    assert (again.rows, again.applied, again.failed) == (10_002, 0, 2)


@pytest.mark.parametrize(("size", "first"), [(150_000, 20_000), (2000, None), (7, 3), (1, None)])
def test_every_line_has_an_outcome_however_the_file_is_cut(size: int, first: int | None) -> None:
    """Unclosed quotes near block ends and at the end of the file, quoted cells that close on
    a later line (within a block and across blocks), and rows the column checks pass or
    leave to the exact path: each line is taken, or reported, once."""
    text = TITLE
    want: dict[int, int | str] = {}
    at: dict[int, int] = {}
    line = 1
    for n in range(6000):
        line += 1
        at[n] = line
        if n in (5, 1995, 1999, 3000):  # a quote never closed (1999: a block's last line)
            text += f'{S},+1202555{n:04d},opted-out,"oops {n},\n'
        elif n in (10, 1997, 4000):  # a cell that spans three lines, closed well
            text += f'{S},+1202555{n:04d},opted-out,"one\ntwo\nthree",\n'
            want[line] = 12025550000 + n
            line += 2
        elif n % 7 == 0:  # the exact path: spaced, a naive time
            text += f"{S},+1 303 555 {n:04d},opted-in,x,2026-01-01T00:00:00\n"
            want[line] = 13035550000 + n
        elif n % 11 == 0:
            text += f"{S},+1303555{n:04d},maybe,x,\n"
            want[line] = "status 'maybe' is not opted-out or opted-in"
        else:
            text += good(n)
            want[line] = 13035550000 + n
    # The quote that opens the next multi-line cell closes 5's and 1995's, then a letter
    # follows it; 1999's and 3000's run on past 100 lines.
    closed_badly = "not readable as CSV: unclosed quote (line {}: ',' expected after '\"')"
    want[at[5]] = closed_badly.format(at[10])
    want[at[1995]] = closed_badly.format(at[1997])
    want[at[1999]] = want[at[3000]] = OPEN_100
    text += f'{S},+12025559999,opted-out,"never closed\n'  # the last line, open to the end
    want[line + 1] = OPEN_AT_END
    assert outcomes(text, size=size, first=first) == want


def test_a_quoted_cell_spanning_lines_still_reads_whole(ledger: optouts.Ledger) -> None:
    rows = [
        [S, "+12025550101", "opted-out", "first\nsecond", ""],
        [S, "+12025550102", "opted-out", 'say "STOP",\r\nthen\n' + "more\n" * 90, ""],
        [S, "+12025550103", "opted-out", "plain", ""],
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    assert outcomes(out.getvalue()) == {2: 12025550101, 4: 12025550102, 97: 12025550103}
    report = import_csv(ledger, io.StringIO(out.getvalue(), newline=""))
    assert (report.rows, report.applied, report.failed) == (3, 3, 0)
    sources = {row[1]: row[3] for page in ledger.rows(sender=S) for row in page}
    assert sources["+12025550101"] == "first\nsecond"
    assert sources["+12025550102"] == rows[1][3].strip()  # a source is stripped, as ever


def test_a_quoted_cell_may_span_100_lines_and_no_more() -> None:
    fits = f'{S},+12025550101,opted-out,"' + "x\n" * 99 + 'x",\n'
    over = f'{S},+12025550102,opted-out,"' + "x\n" * 100 + 'x",\n'
    assert outcomes(TITLE + fits + good(1)) == {2: 12025550101, 102: 13035550001}
    got = outcomes(TITLE + over + good(1))  # lines 2 to 102, then a row
    assert got[2] == OPEN_100
    assert all(got[line] == "1 fields, expected 5" for line in range(3, 102))  # each x
    assert (got[102], got[103]) == ("2 fields, expected 5", 13035550001)
    assert len(got) == 102


def test_a_quote_open_to_the_end_of_the_file_is_reported_and_nothing_after_it_is_lost() -> None:
    assert outcomes(TITLE + good(1) + f'{S},+12025550102,opted-out,"no end') == {
        2: 13035550001,
        3: OPEN_AT_END,
    }
    text = TITLE + f'{S},+12025550102,opted-out,"no end\n' + good(1) + good(2).rstrip("\n")
    assert outcomes(text) == {2: OPEN_AT_END, 3: 13035550001, 4: 13035550002}


def test_a_quote_closed_badly_on_a_later_line_is_an_unclosed_quote() -> None:
    """The next line's quoted cell closes the open one, then runs on: not well formed."""
    text = (
        TITLE
        + f'{S},+12025550101,opted-out,"oops,\n'
        + good(1)
        + f'{S},+12025550103,opted-out,"a, b",\n'
        + good(4)
    )
    assert outcomes(text) == {
        2: "not readable as CSV: unclosed quote (line 4: ',' expected after '\"')",
        3: 13035550001,
        4: 12025550103,
        5: 13035550004,
    }


def test_an_open_quote_over_the_field_limit_is_reported_at_its_first_line() -> None:
    limit = csv.field_size_limit()
    long = "y" * (limit // 3)
    text = TITLE + f'{S},+12025550101,opted-out,"{long}\n'
    text += "".join(good(n, source=long) for n in range(1, 6))
    got = outcomes(text)
    reason = f"field larger than field limit ({limit}))"
    assert str(got[2]).startswith("not readable as CSV: unclosed quote (line ")
    assert str(got[2]).endswith(reason)
    assert [got[line] for line in range(3, 8)] == [13035550000 + n for n in range(1, 6)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["good", "open", "blank"]),
            st.text(alphabet="ab\n", min_size=1, max_size=4).filter(lambda t: t[0] != "\n"),
        ),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=9),
)
def test_the_counts_add_up_for_any_mix_of_lines(kinds: list[str], size: int) -> None:
    """Every line that is not blank, or inside a quoted cell that closes well, is a row taken
    or a row reported: an open quote at its own line, whatever follows it."""
    text = TITLE
    want: dict[int, bool] = {}
    """Each row's first line, and whether it is taken."""
    line = 1
    for n, kind in enumerate(kinds):
        line += 1
        if kind == "good":
            text += good(n)
            want[line] = True
        elif kind == "open":
            text += f'{S},+1202555{n:04d},opted-out,"oops,\n'
            want[line] = False
        elif kind == "blank":
            text += "\n"
        else:  # a quoted cell, over lines when it holds line breaks
            text += f'{S},+1202555{n:04d},opted-out,"{kind}",\n'
            want[line] = True
            line += kind.count("\n")
    got = outcomes(text, size=size)
    assert {at: isinstance(answer, int) for at, answer in got.items()} == want
    assert all(
        str(answer).startswith("not readable as CSV: unclosed quote (")
        for answer in got.values()
        if not isinstance(answer, int)
    )


def test_a_header_naming_a_column_twice_is_refused_before_anything_is_recorded(
    ledger: optouts.Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["sender,recipient,status,Sender \n", f"{S},+12025550101,opted-out,+18005550199\n"]
    with pytest.raises(ValueError, match=r"names the sender column twice \(columns 1 and 4\)"):
        import_csv(ledger, lines)
    source = tmp_path / "dup.csv"
    source.write_text("".join(lines))
    assert run(["-s", f"database={tmp_path / 'dup.db'}", "import", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"optouts: error: {source}: the header names the sender column twice (columns 1 and 4)"
    ]
    assert not (tmp_path / "dup.db").exists()
    assert import_csv(ledger, ["sender,recipient,status,notes,notes\n"]).rows == 0  # others: fine


def test_a_sender_that_is_not_utf8_says_so(ledger: optouts.Ledger) -> None:
    body = TITLE.encode() + b"\xff\xfe,+12025550101,opted-out,,\n+1800555\xff0100,+1202,x,,\n"
    lines = io.TextIOWrapper(io.BytesIO(body), errors="surrogateescape", newline="")
    report = import_csv(ledger, lines)
    assert report.errors == (
        (2, "sender '\\udcff\\udcfe' is not valid UTF-8"),
        (3, "status 'x' is not opted-out or opted-in"),
    )
    lines = io.TextIOWrapper(
        io.BytesIO(TITLE.encode() + b"+1800555\xff0100,+12025550101,opted-out,,\n"),
        errors="surrogateescape",
        newline="",
    )
    assert import_csv(ledger, lines).errors == (
        (2, "sender '+1800555\\udcff0100' is not valid UTF-8"),
    )
    lines = io.TextIOWrapper(  # phonenumbers would read past the byte: refused all the same
        io.BytesIO(TITLE.encode() + b"+18005550100\xff,+12025550101,opted-out,,\n"),
        errors="surrogateescape",
        newline="",
    )
    assert import_csv(ledger, lines).errors == (
        (2, "sender '+18005550100\\udcff' is not valid UTF-8"),
    )


def test_command_line_import_from_stdin_keeps_the_rows_after_an_unclosed_quote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        TITLE
        + good(0)
        + f'{S},+12025550112,opted-out,"unterminated,\n'
        + "".join(good(n) for n in range(1, 6))
    ).encode()
    stdin = io.TextIOWrapper(io.BytesIO(body))
    monkeypatch.setattr("sys.stdin", stdin)
    database = tmp_path / "stdin.db"
    assert run(["-s", f"database={database}", "import", "-"]) == 1
    err = capsys.readouterr().err
    assert f"-:3: {OPEN_AT_END}" in err
    assert "read 7 rows: 6 recorded, 0 unchanged, 1 failed" in err
    with optouts.Ledger.open(database) as ledger:
        assert ledger.opted_out(S, [f"+1303555{n:04d}" for n in range(6)]) == [True] * 6


def test_into_a_vendor_lines_stay_right_after_an_unclosed_quote(ledger: optouts.Ledger) -> None:
    """A client's import keeps each row's line (for the vendor's refusals)."""
    text = (
        TITLE
        + f'{S},+12025550101,opted-out,"oops,\n'
        + good(1)
        + f"{S},+1 303 555 0002,opted-out,ok,\n"
    )
    with ledger.client() as client:
        report = import_csv(client, io.StringIO(text, newline=""))
    assert report.errors == ((2, OPEN_AT_END),)
    assert (report.rows, report.applied, report.failed) == (3, 2, 1)


def test_a_quote_mid_cell_on_one_line_reads_as_before_beside_cells_spanning_lines() -> None:
    """Only a record spanning lines must be well formed: ``"a"b`` on one line is ``ab``."""
    text = (
        TITLE
        + f'{S},+12025550101,opted-out,"a"b,\n'
        + f'{S},+12025550102,opted-out,"one\ntwo",\n'
        + f'{S},+12025550103,opted-out,"c"d,\n'
        + f'{S},+12025550104,opted-out,"three\nfour",\n'
    )
    assert outcomes(text) == {2: 12025550101, 3: 12025550102, 5: 12025550103, 6: 12025550104}


def test_a_recipient_with_a_stray_byte_is_refused_not_read_around() -> None:
    """phonenumbers skips a stray byte: ``+12025550102\\xff`` would become +12025550102,
    a number read out of a damaged line. It is refused, saying why."""
    ledger = optouts.Ledger(optouts.ledger.SQLiteLedger(":memory:"))
    body = b"sender,recipient,status\n+18005550100,+12025550102\xff,opted-out\n"
    text = body.decode("utf-8", "surrogateescape")
    report = import_csv(ledger, io.StringIO(text, newline=""))
    assert (report.applied, report.failed) == (0, 1)
    assert "is not valid UTF-8" in report.errors[0][1]
