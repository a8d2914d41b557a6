"""The CSV row parser: its fast path must agree with the exact one on every input."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optouts._csvparse import HEADER, Window, guarded, parse, read_header, unguarded
from optouts._errors import InvalidNumber, quote_value
from optouts._numbers import country_of, normalize, normalize_sender
from optouts.ledger import Change

NOW = 1_800_000_000_000_000
SKEW = 300_000_000
"""Five minutes: how far ahead of the import's clock a file's time is believed."""
SOURCE = "import:test.csv"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def run(
    text: str,
    *,
    region: str | None = None,
    size: int = 1000,
    first: int | None = None,
    keep_lines: bool = True,
) -> list[Window]:
    lines = iter(io.StringIO(text, newline=""))
    header = read_header(lines)
    assert header is not None
    columns, after = header
    return list(
        parse(
            lines,
            columns,
            after=after,
            region=region,
            default_source=SOURCE,
            now=lambda: NOW,
            size=size,
            first=first,
            keep_lines=keep_lines,
        )
    )


def unquoted(cell: str) -> str:
    """A cell without the ``'`` a spreadsheet guard put before a formula's first character."""
    text = cell.strip()
    return text[1:] if re.match("''*[-=+@\t\r]", text) else cell


def expected(row: list[str], region: str | None) -> Change | str:
    """The row as the exact path reads it: a change, or the reason it is refused."""
    sender, recipient, status, source, when = row
    states = {"opted-out": True, "optout": True, "opt-out": True}
    states |= {"opted-in": False, "optin": False, "opt-in": False}
    state = states.get(unquoted(status).strip().lower())
    if state is None:
        return f"status {quote_value(status)} is not opted-out or opted-in"
    try:
        sender = normalize_sender(unquoted(sender), region)
        number = normalize(unquoted(recipient).strip(), region)
    except InvalidNumber as exc:
        return f"{quote_value(exc.value)}: {exc.reason}"
    text = unquoted(when).strip()
    at: int | None = None
    if text:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return f"updated_at {quote_value(text)} is not an ISO 8601 time"
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        at = (moment - EPOCH) // timedelta(microseconds=1)
        if moment < datetime(1, 1, 1, tzinfo=timezone.utc):
            return f"updated_at {quote_value(when)} is before the year 1 in UTC"
    dated = at is not None
    if at is not None and at > NOW + SKEW:  # not believed: taken when it was read
        at, dated = None, False
    elif at is not None and not state and at > NOW:  # an opt-in counts from when it was read
        at = NOW
    return Change(
        sender,
        int(number[1:]),
        state,
        unquoted(source.strip() or SOURCE),
        NOW if at is None else at,
        country_of(number),
        dated,
    )


digits = st.text(alphabet="0123456789", min_size=1, max_size=16)
recipients = st.one_of(
    digits.map(lambda d: "+" + d),
    st.sampled_from(["1", "44", "33", "7", "86", "61", "49", "1242", "1905"]).flatmap(
        lambda code: st.text(alphabet="0123456789", min_size=4, max_size=12).map(
            lambda rest: f"+{code}{rest}"
        )
    ),
    st.sampled_from(
        [
            "+12025550101",
            " +12025550101 ",
            "+1 202-555-0101",
            "(202) 555-0101",
            "2025550101",
            "+" + "".join(chr(0xFF10 + int(d)) for d in "12025550101"),  # fullwidth digits
            "+02025550101",
            "+447911123456",
            "+79161234567",
            "+442079460000",
            "+",
            "",
            "twelve",
            "'+12025550101",  # as a spreadsheet guard writes it
            " '+12025550101 ",
            "''+12025550101",
            "'12025550101",
            "'=1+1",
        ]
    ),
    st.text(st.characters(blacklist_characters="\x00"), max_size=14),  # 3.10 csv: no NUL
)
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.one_of(st.none(), offsets),
)
near_now = st.integers(min_value=-SKEW - 2, max_value=SKEW + 2).map(
    lambda ahead: (EPOCH + timedelta(microseconds=NOW + ahead)).isoformat()
)
"""Times about the import's clock, where the clock-skew allowance starts and ends."""
times = st.one_of(
    near_now,
    st.sampled_from(["9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999-23:59"]),
    moments.map(lambda m: m.isoformat()),
    moments.map(lambda m: m.isoformat().replace("+00:00", "Z")),
    moments.map(lambda m: f" {m.isoformat()} "),
    moments.map(lambda m: m.date().isoformat()),
    st.sampled_from(["", " ", "yesterday", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00ZZ"]),
    st.sampled_from(["'2026-01-01T00:00:00Z", "'-2026-01-01", "'+1", "'@", "'"]),
)
statuses = st.sampled_from(
    ["opted-out", "opted-in", "OptOut", " opt-in ", "sideways", "", "'opted-out", "'-opt-in"]
)
senders = st.sampled_from(
    ["+18005550100", "12345", "*", " +18005550111", "nobody", "'+18005550100", "''+18005550100"]
)
formulas = st.tuples(
    st.sampled_from(["", "'", "''", " '"]),
    st.sampled_from("=+-@\t\r"),
    st.sampled_from(["", "SUM(A1)", "cmd|' /C calc'!A0", "15555550123", " x "]),
).map("".join)
sources = st.one_of(
    st.sampled_from(["", "api", " ringcentral ", "Recipient", "'", "'api", "''"]), formulas
)
trailing = st.sampled_from(["x", "", "2026-01-01"])
"""Cells past the header's columns: ignored, whatever they hold."""
records_ = st.lists(st.tuples(senders, recipients, statuses, sources, times), max_size=30)


@st.composite
def layouts(draw: st.DrawFn) -> list[str]:
    """A header: the known columns in any order, optional ones maybe absent, others mixed in."""
    names = list(HEADER[:3]) + [n for n in HEADER[3:] if draw(st.booleans())]
    names += draw(st.lists(st.sampled_from(["notes", "email", "created_at", ""]), max_size=3))
    return draw(st.permutations(names))


def row_for(record: tuple[str, ...], header: list[str], extra: list[str], cut: int) -> list[str]:
    """``record`` laid out under ``header``, unknown columns filled, then ragged at the end."""
    values = dict(zip(HEADER, record, strict=True))
    row = [values.get(name, f"<{name}>") for name in header] + extra
    return row[: len(row) - cut] if cut else row


def expected_row(row: list[str], header: list[str], region: str | None) -> Change | str | None:
    """The exact path for a laid-out row; None for a line the parser skips as blank."""
    if not row or (len(row) == 1 and not row[0].strip()):
        return None
    width = max(header.index(name) for name in HEADER if name in header) + 1
    if len(row) < width:
        return f"{len(row)} fields, expected {width}"
    cells = [row[header.index(name)] if name in header else "" for name in HEADER]
    return expected(cells, region)


@settings(max_examples=300, deadline=None)
@given(
    records_,
    layouts(),
    st.lists(st.tuples(st.lists(trailing, max_size=2), st.integers(0, 6))),
    st.sampled_from([None, "US"]),
    st.integers(min_value=1, max_value=7),
    st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
    st.sampled_from(["\n", "\r\n"]),
)
def test_the_parser_reads_every_row_as_the_exact_path_does(
    records: list[tuple[str, ...]],
    header: list[str],
    ragged: list[tuple[list[str], int]],
    region: str | None,
    size: int,
    first: int | None,
    terminator: str,
) -> None:
    out = io.StringIO()

    def write(row: list[str]) -> None:
        """One row, ending with ``terminator``; a cell holding a line break is quoted either way."""
        line = io.StringIO()
        csv.writer(line, lineterminator="\r\n").writerow(row)
        out.write(line.getvalue().removesuffix("\r\n") + terminator)

    write(header)
    starts, rows = [], []
    for n, record in enumerate(records):
        extra, cut = ragged[n] if n < len(ragged) else ([], 0)
        rows.append(row_for(record, header, extra, cut))
        starts.append(len(io.StringIO(out.getvalue(), newline="").readlines()) + 1)
        write(rows[-1])
    windows = run(out.getvalue(), region=region, size=size, first=first)

    got: dict[int, Change | str] = {}
    for window in windows:
        assert len(window.changes) + len(window.bad) <= size
        got.update(zip(window.lines, window.changes, strict=True))
        got.update(window.bad)
    want = {
        line: answer
        for line, row in zip(starts, rows, strict=True)
        if (answer := expected_row(row, header, region)) is not None
    }
    assert got == want
    for change in got.values():
        if isinstance(change, Change):  # the exact types the stores expect
            assert (type(change.recipient), type(change.at)) == (int, int)
            assert (type(change.opted_out), type(change.dated)) == (bool, bool)


@pytest.mark.parametrize(("size", "first"), [(100_000, None), (3000, 500), (2000, None)])
def test_a_long_file_reads_the_same_however_its_lines_are_cut_into_blocks(
    size: int, first: int | None
) -> None:
    """Blocks of thousands of lines: cut by ``str.split``, or read by csv where a quoted
    cell (one running on past a block's last line, a run of them), a blank line or a short
    row is; every row as the exact path reads it, on the line it starts on."""
    rows = [
        [
            "+18005550100",
            f"+1202555{n % 10_000:04d}",
            "opted-out" if n % 3 else "opted-in",
            "api",
            f"2026-01-01T00:{n % 60:02d}:00Z",
        ]
        for n in range(9000)
    ]
    rows[1998][3] = "two\nlines"  # starts on the last line of the first block
    for n in range(4000, 4300):
        rows[n][3] = "a, b"
    rows[6000][1] = "not a number"
    rows[7000] = rows[7000][:3]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows[:5000])
    out.write("\n")
    writer.writerows(rows[5000:])
    text = out.getvalue()

    want: dict[int, Change | str] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    start = reader.line_num + 1
    for row in reader:
        answer = expected_row(row, list(HEADER), None)
        if answer is not None:
            want[start] = answer
        start = reader.line_num + 1
    got: dict[int, Change | str] = {}
    for window in run(text, size=size, first=first):
        got.update(zip(window.lines, window.changes, strict=True))
        got.update(window.bad)
    assert len(want) == 9000
    assert got == want


def test_lines_are_numbered_as_the_file_has_them() -> None:
    text = (
        "sender,recipient,status,source,updated_at\n"
        '+18005550100,+12025550101,opted-out,"two\nlines",\n'
        "\n"
        "+18005550100,bad,opted-out,,\n"
    )
    (window,) = run(text)
    assert window.lines == [2]
    assert window.changes[0].source == "two\nlines"
    assert window.bad == [(5, "'bad': not a phone number (no digits in the right places)")]


def test_absent_optional_columns_read_as_empty_and_short_rows_are_reported() -> None:
    text = "recipient,status,sender\n+12025550101,opted-out,+18005550100\n+12025550102,opted-in\n"
    (window,) = run(text)
    assert [(c.recipient, c.source, c.at, c.dated) for c in window.changes] == [
        (12025550101, SOURCE, NOW, False)
    ]
    assert window.bad == [(3, "2 fields, expected 3")]


def test_lines_are_kept_only_when_asked_for() -> None:
    text = "sender,recipient,status\n+18005550100,+12025550101,opted-out\n"
    (window,) = run(text, keep_lines=False)
    assert window.lines == []
    assert len(window.changes) == 1


@pytest.mark.parametrize("blank", ["", "   ", ",,,,"])
def test_blank_lines_are_skipped_or_reported_but_never_stop_the_rest(blank: str) -> None:
    text = f"{','.join(HEADER)}\n{blank}\n+18005550100,+12025550101,optout,,\n"
    (window,) = run(text)
    assert len(window.changes) == 1
    assert len(window.bad) == (1 if blank == ",,,," else 0)


def test_a_record_the_csv_module_cannot_read_is_reported_and_the_rest_go_on() -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    text = (
        "sender,recipient,status,source\n"
        "+18005550100,+12025550101,opted-out,\n"
        f"+18005550100,+12025550102,opted-out,{huge}\n"
        "+18005550100,+12025550103,opted-out,\n"
    )
    windows = run(text, size=1)
    changes = [c.recipient for w in windows for c in w.changes]
    lines = [line for w in windows for line in w.lines]
    bad = [b for w in windows for b in w.bad]
    assert changes == [12025550101, 12025550103]
    assert lines == [2, 4]
    limit = csv.field_size_limit()
    assert bad == [(3, f"not readable as CSV: field larger than field limit ({limit})")]


def test_a_guarded_cell_is_read_back_without_its_quote() -> None:
    text = (
        "sender,recipient,status,source,updated_at\n"
        "'+18005550100,'+12025550101,opted-out,'=HYPERLINK(\"http://x\"),\n"
        "+18005550100,+12025550102,opted-out,''@SUM(A1),\n"
        "+18005550100,+12025550103,opted-out,'-1,'2026-01-01T00:00:00Z\n"
        "+18005550100,+12025550104,opted-out,'plain,\n"
        '+18005550100,+12025550105,opted-out,"\'\t=tab",\n'
    )
    (window,) = run(text)
    assert [(c.sender, c.recipient, c.source) for c in window.changes] == [
        ("+18005550100", 12025550101, '=HYPERLINK("http://x")'),
        ("+18005550100", 12025550102, "'@SUM(A1)"),
        ("+18005550100", 12025550104, "'plain"),  # not a formula: the quote is its own
        ("+18005550100", 12025550105, "\t=tab"),
    ]
    assert window.bad == [(4, 'updated_at "\'2026-01-01T00:00:00Z" is not an ISO 8601 time')]


@given(st.text(st.characters(blacklist_categories=["Cs"])))
def test_guarded_cells_never_start_a_formula_and_read_back_whole(text: str) -> None:
    cell = guarded(text)
    assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")
    if text == text.strip():  # a reader drops surrounding blanks in any case
        assert unguarded(cell) == text
    assert guarded(text, number=True) == (text if re.fullmatch(r"\+[0-9]+", text) else cell)


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=1+1", "''=1+1"),
        ("'x", "'x"),
        ("x=1", "x=1"),
        ("", ""),
        ("+15555550123", "'+15555550123"),
    ],
)
def test_what_a_guard_writes(text: str, cell: str) -> None:
    assert guarded(text) == cell
    assert guarded("+15555550123", number=True) == "+15555550123"
    assert guarded("+1 555 555 0123", number=True) == "'+1 555 555 0123"


def test_a_huge_cell_makes_a_short_reason() -> None:
    huge = "9" * (csv.field_size_limit() - 10)  # the largest cells the csv module reads
    rows = [
        f"+18005550100,+1{huge},opted-out,,",
        f"{huge},+12025550101,opted-out,,",
        f"+18005550100,+12025550101,{huge},,",
        f"+18005550100,+12025550101,opted-out,,{huge}",
        f"+18005550100,+12025550101,opted-out,\udcff{huge},",
    ]
    (window,) = run(f"{','.join(HEADER)}\n" + "\n".join(rows) + "\n")
    assert [line for line, _ in window.bad] == [2, 3, 4, 5, 6]
    for _, reason in window.bad:
        assert len(reason) < 300, reason[:400]
        assert "characters)" in reason  # says how long the value was
