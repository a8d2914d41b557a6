"""CSV import and export: round trips, bad lines reported by number, vendors as targets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import cast

import attrs
import httpx
import pytest

import optouts
from optouts import Status
from optouts._csvio import HEADER, export_csv, import_csv
from optouts.cli import run
from optouts.ledger import micros_of
from optouts.testing import BlockingASGITransport
from optouts_azure import AzureEmulator

S = "+18005550100"


@pytest.fixture
def ledger(database: str) -> Iterator[optouts.Ledger]:
    with optouts.Ledger.open(database) as opened:
        yield opened


@pytest.fixture
def client(ledger: optouts.Ledger) -> Iterator[optouts.Client]:
    """The same ledger through the client interface (add, remove, list)."""
    with ledger.client() as through:
        yield through


def csv_lines(*rows: str, header: str = ",".join(HEADER)) -> list[str]:
    return [header + "\n", *(row + "\n" for row in rows)]


def test_export_then_import_reproduces_the_ledger(
    ledger: optouts.Ledger, client: optouts.Client, tmp_path: Path
) -> None:
    client.add(S, ["+12025550101", "+12025550102"])
    client.remove(S, ["+12025550102"])
    client.add("*", ["+442079460000"])
    out = io.StringIO()
    assert export_csv(ledger, out) == 3
    lines = out.getvalue().splitlines()
    assert lines[0] == "sender,recipient,status,source,updated_at"
    assert lines[1].startswith("+18005550100,+12025550101,opted-out,api,20")
    assert lines[1].endswith("Z")

    with optouts.Ledger.open(tmp_path / "copy.db") as copy:
        report = import_csv(copy, io.StringIO(out.getvalue()))
        assert (report.rows, report.applied, report.failed) == (3, 3, 0)
        original = {
            (r.sender, r.recipient, r.status, r.source, r.updated_at)
            for r in client.list(status="all")
        }
        with copy.client() as copied_client:
            copied = {
                (r.sender, r.recipient, r.status, r.source, r.updated_at)
                for r in copied_client.list(status="all")
            }
        assert copied == original


def test_a_client_of_the_ledger_exports_what_the_ledger_does(
    ledger: optouts.Ledger, client: optouts.Client
) -> None:
    client.add(S, ["+12025550101", "+12025550102"])
    client.remove(S, ["+12025550102"])
    client.add("*", ["+442079460000"])
    direct, through = io.StringIO(), io.StringIO()
    assert export_csv(ledger, direct) == 3
    assert export_csv(client, through) == 3
    assert through.getvalue() == direct.getvalue()
    direct, through = io.StringIO(), io.StringIO()
    assert export_csv(ledger, direct, sender=S, status="opted-in") == 1
    assert export_csv(client, through, sender=S, status="opted-in") == 1
    assert through.getvalue() == direct.getvalue()


def test_into_a_client_of_the_ledger_rows_are_adds_and_removes_keeping_no_times(
    ledger: optouts.Ledger, client: optouts.Client
) -> None:
    """A client, even one of the ledger, takes add and remove calls: the file's times and
    sources are the ledger's to keep, by an import into the Ledger itself."""
    rows = csv_lines(
        "+18005550100,+12025550101,opted-out,web form,2026-01-02T03:04:05Z",
        "+18005550100,+12025550102,opted-out,web form,2026-01-02T03:04:05Z",
    )
    before = optouts.Ledger.now()
    report = import_csv(client, rows[:2])
    assert (report.applied, report.failed) == (1, 0)
    (through,) = client.list(S)
    assert through.source == "api"  # the client's source, not the file's
    assert through.updated_at is not None
    assert micros_of(through.updated_at) >= before  # when it was added
    assert import_csv(ledger, [rows[0], rows[2]]).applied == 1
    kept = {r.recipient: r for r in client.list(S)}["+12025550102"]
    assert (kept.source, kept.updated_at) == (
        "web form",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )


def test_bad_lines_are_reported_by_number_and_the_rest_go_in(
    ledger: optouts.Ledger, client: optouts.Client
) -> None:
    report = import_csv(
        ledger,
        csv_lines(
            "+18005550100,+12025550101,opted-out,Recipient,2026-01-02T03:04:05Z",
            "+18005550100,not-a-number,opted-out,,",
            "+18005550100,+12025550102,sideways,,",
            "nobody,+12025550103,opted-out,,",
            "+18005550100,+12025550104,opted-out,,yesterday",
            "",
            "+18005550100,+12025550105",
            "+18005550100,+12025550106,OptOut,,",
        ),
    )
    assert report.rows == 7
    assert report.applied == 2
    assert [line for line, _ in report.errors] == [3, 4, 5, 6, 8]
    reasons = dict(report.errors)
    assert "not a phone number" in reasons[3]
    assert "sideways" in reasons[4]
    assert "not a sender" in reasons[5]
    assert "ISO 8601" in reasons[6]
    assert "fields" in reasons[8]
    records = {r.recipient: r for r in client.list(S)}
    assert set(records) == {"+12025550101", "+12025550106"}
    assert records["+12025550101"].source == "Recipient"
    assert records["+12025550106"].source == "import"


def test_importing_twice_changes_nothing(ledger: optouts.Ledger) -> None:
    rows = csv_lines("+18005550100,+12025550101,opted-out,,2026-01-01T00:00:00Z")
    assert import_csv(ledger, rows).applied == 1
    assert import_csv(ledger, rows).applied == 0


def test_newer_rows_win_older_rows_do_not(ledger: optouts.Ledger, client: optouts.Client) -> None:
    import_csv(ledger, csv_lines("+18005550100,+12025550101,opted-out,,2026-02-01T00:00:00Z"))
    older = csv_lines("+18005550100,+12025550101,opted-in,,2026-01-01T00:00:00Z")
    assert import_csv(ledger, older).applied == 0
    newer = csv_lines("+18005550100,+12025550101,opted-in,,2026-03-01T00:00:00Z")
    assert import_csv(ledger, newer).applied == 1
    assert [r.status for r in client.list(S, status="all")] == [Status.OPTED_IN]


def test_columns_may_come_in_any_order_and_optional_ones_may_be_missing(
    ledger: optouts.Ledger,
) -> None:
    report = import_csv(
        ledger, csv_lines("opted-out,+12025550101,+18005550100", header="status,recipient,sender")
    )
    assert (report.applied, report.failed) == (1, 0)


def test_a_header_without_required_columns_is_refused(ledger: optouts.Ledger) -> None:
    with pytest.raises(ValueError, match="no status column"):
        import_csv(ledger, csv_lines("+1,+2", header="sender,recipient"))


def test_import_into_a_vendor_adds_and_removes(database: str) -> None:
    emulator = AzureEmulator()
    http = httpx.Client(transport=BlockingASGITransport(emulator))
    with optouts.Client(
        "azure",
        connection_string=emulator.connection_string("https://azure.test"),
        http_client=http,
    ) as azure:
        azure.add(S, ["+12025550109"])
        report = import_csv(
            azure,
            csv_lines(
                "+18005550100,+12025550101,opted-out,,",
                "+18005550100,+12025550109,opted-in,,",
                "*,+12025550102,opted-out,,",
            ),
        )
    assert emulator.opted_out(S) == {"+12025550101"}
    assert (report.applied, report.failed) == (2, 1)
    assert "per sender" in report.errors[0][1]


def test_export_from_a_provider_that_cannot_list_says_why(database: str) -> None:
    emulator = AzureEmulator()
    http = httpx.Client(transport=BlockingASGITransport(emulator))
    with (
        optouts.Client(
            "azure",
            connection_string=emulator.connection_string("https://azure.test"),
            http_client=http,
        ) as azure,
        pytest.raises(optouts.UnsupportedOperation, match="keep a local ledger"),
    ):
        export_csv(azure, io.StringIO())


def test_command_line_import_and_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", str(tmp_path / "cli.db"))
    source = tmp_path / "in.csv"
    source.write_text(
        "".join(csv_lines("+18005550100,+12025550101,opted-out,,", "+18005550100,bad,opted-out,,")),
        encoding="utf-8",
    )
    assert run(["import", str(source)]) == 1
    captured = capsys.readouterr()
    assert f"{source}:3: 'bad'" in captured.err
    assert "read 2 rows: 1 recorded" in captured.err
    assert run(["export"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ",".join(HEADER)
    assert out[1].startswith("+18005550100,+12025550101,opted-out,import:in.csv,")


def test_command_line_audit_shows_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", str(tmp_path / "cli.db"))
    assert run(["add", "--from", S, "+12025550101"]) == 0
    assert run(["remove", "--from", S, "+12025550101"]) == 0
    capsys.readouterr()
    assert run(["--default-region", "US", "--format", "json", "audit", "(202) 555-0101"]) == 0
    trail = json.loads(capsys.readouterr().out)
    assert trail["recipient"] == "+12025550101"
    assert [h["action"] for h in trail["history"]] == ["opt-out", "opt-in"]
    assert trail["current"][0]["status"] == "opted-in"
    assert run(["audit", "+12025550199"]) == 0
    assert "no record" in capsys.readouterr().out


def test_into_a_vendor_the_newest_row_of_a_pair_wins() -> None:
    emulator = AzureEmulator()
    http = httpx.Client(transport=BlockingASGITransport(emulator))
    with optouts.Client(
        "azure",
        connection_string=emulator.connection_string("https://azure.test"),
        http_client=http,
    ) as azure:
        report = import_csv(
            azure,
            csv_lines(
                "+18005550100,+12025550109,opted-out,,",
                "+18005550100,+12025550101,opted-in,,2026-01-02T00:00:00Z",
                "+18005550100,+12025550101,opted-out,,2026-01-03T00:00:00Z",
                "+18005550100,+12025550102,opted-out,,2026-01-05T00:00:00Z",
                "+18005550100,+12025550102,opted-in,,2026-01-04T00:00:00Z",
            ),
        )
    assert emulator.opted_out(S) == {"+12025550109", "+12025550101", "+12025550102"}
    assert report.failed == 0


def test_columns_the_format_does_not_name_are_ignored(
    ledger: optouts.Ledger, client: optouts.Client
) -> None:
    report = import_csv(
        ledger,
        csv_lines(
            "+18005550100,+12025550101,opted-out,web form,a@example.com",
            "+18005550100,+12025550102,opted-out,,,2001-01-01T00:00:00Z",
            header="sender,recipient,status,notes,email",
        ),
    )
    assert (report.applied, report.failed) == (2, 0)
    assert {r.source for r in client.list(S)} == {"import"}


def test_a_time_before_the_year_1_is_a_bad_line(ledger: optouts.Ledger) -> None:
    report = import_csv(
        ledger, csv_lines("+18005550100,+12025550101,opted-in,,0001-01-01T00:00:00+01:00")
    )
    assert report.errors == (
        (2, "updated_at '0001-01-01T00:00:00+01:00' is before the year 1 in UTC"),
    )


def test_command_line_import_reports_bytes_that_are_not_utf8_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", str(tmp_path / "cli.db"))
    body = (
        b"sender,recipient,status,source\n"
        b"+18005550100,+12025550101,opted-out,\n"
        b"+18005550100,+1202\xff5550102,opted-out,\n"
        b"+18005550100,+12025550103,opted-out,caf\xe9\n"
        b"+18005550100,+12025550104,opted-out,caf\xc3\xa9\n"
    )
    source = tmp_path / "latin1.csv"
    source.write_bytes(body)
    assert run(["import", str(source)]) == 1
    err = capsys.readouterr().err
    assert f"{source}:3: recipient '+1202\\udcff5550102' is not valid UTF-8" in err
    assert f"{source}:4: source 'caf\\udce9' is not valid UTF-8" in err
    assert "read 4 rows: 2 recorded" in err

    stdin = io.TextIOWrapper(io.BytesIO(body.replace(b"0101", b"0105")))
    monkeypatch.setattr("sys.stdin", stdin)
    assert run(["import", "-"]) == 1
    assert "-:3: recipient '+1202\\udcff5550102' is not valid UTF-8" in capsys.readouterr().err
    assert not stdin.closed  # stdin is left open
    with optouts.Ledger.open(tmp_path / "cli.db") as ledger:
        sources = {row[1]: row[3] for rows in ledger.rows(sender=S) for row in rows}
    assert sources["+12025550104"] == "café"
    assert sources["+12025550105"] == "import:stdin"


FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "'=already guarded",
    "''+twice",
    "+15555550123",
    "'plain",
    "plain",
]


def test_export_never_writes_a_formula_and_import_reads_each_source_back(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "formulas.db")
    for n, source in enumerate(FORMULAS):
        with optouts.Ledger.open(database, source=source) as ledger, ledger.client() as client:
            client.add(S, [f"+1202555{n:04d}"])
    with optouts.Ledger.open(database) as ledger:
        out = io.StringIO()
        assert export_csv(ledger, out) == len(FORMULAS)
    rows = list(csv.reader(io.StringIO(out.getvalue())))[1:]
    assert [row[3] for row in rows] == [
        "'" + source if source.lstrip("'")[:1] in "=+-@" else source for source in FORMULAS
    ]
    assert {row[0] for row in rows} == {S}  # E.164, as it is
    assert [row[1] for row in rows] == [f"+1202555{n:04d}" for n in range(len(FORMULAS))]

    with optouts.Ledger.open(tmp_path / "copy.db") as copy:
        report = import_csv(copy, io.StringIO(out.getvalue()))
        assert (report.applied, report.failed) == (len(FORMULAS), 0)
        assert [row[3] for rows in copy.rows(sender=S) for row in rows] == FORMULAS


@attrs.frozen
class Listing:
    """Just enough of a Client for export: a provider that is no ledger, and its records."""

    records: list[optouts.OptOut]
    provider: object = None
    default_region: None = None

    def list(self, sender: str | None, *, status: str) -> Iterator[optouts.OptOut]:
        yield from self.records


def test_export_from_a_vendor_guards_whatever_text_it_sent() -> None:
    listing = Listing(
        [
            optouts.OptOut(S, "+12025550101", Status.OPTED_OUT, source="=cmd()"),
            optouts.OptOut("=1+1", "@SUM(A1)", Status.OPTED_IN, source="-1"),
            optouts.OptOut("12345", "+1 202 555 0102", Status.OPTED_OUT),
        ]
    )
    out = io.StringIO()
    assert export_csv(cast(optouts.Client, listing), out) == 3
    assert list(csv.reader(io.StringIO(out.getvalue())))[1:] == [
        [S, "+12025550101", "opted-out", "'=cmd()", ""],
        ["'=1+1", "'@SUM(A1)", "opted-in", "'-1", ""],
        ["12345", "'+1 202 555 0102", "opted-out", "", ""],
    ]


def test_export_from_a_vendor_writes_its_times_in_utc() -> None:
    """A vendor's time with an offset, or none (taken as UTC), is written as every time is."""
    paris = timezone(timedelta(hours=2))
    listing = Listing(
        [
            optouts.OptOut(
                S,
                "+12025550101",
                Status.OPTED_OUT,
                updated_at=datetime(2026, 6, 1, 14, 0, 5, 250_000, tzinfo=paris),
            ),
            optouts.OptOut(
                S, "+12025550102", Status.OPTED_OUT, updated_at=datetime(2026, 6, 1, 12, 0, 0)
            ),
        ]
    )
    out = io.StringIO()
    assert export_csv(cast(optouts.Client, listing), out) == 2
    assert [row[4] for row in csv.reader(io.StringIO(out.getvalue()))][1:] == [
        "2026-06-01T12:00:05.250000Z",
        "2026-06-01T12:00:00Z",
    ]
