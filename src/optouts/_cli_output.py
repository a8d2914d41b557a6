"""How results and records are written: JSON, CSV or a table, each as they arrive.

Nothing is written until the first row (or a successful end): a command that fails before
any result (a ledger that is not there, refused credentials) leaves stdout empty, and one
that had nothing to show prints no empty table.

The table streams too: aligned columns of plain text, the widths fixed in advance so that
a row is printed the moment it is known, in constant memory, at the speed of CSV (a table
drawn at the end held every row, and took 30 times as long).

Text that came from a vendor or a file is shown, never obeyed: table cells are escaped by
``printable``, and CSV cells a spreadsheet would run as formulas get a leading ``'``.
Times, wherever a person reads them, are ISO 8601 UTC with ``Z`` to the microsecond (the
fraction left out when it is zero), as ``optouts export`` writes them.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from rich.console import Console

from ._csvparse import guarded
from ._errors import printable
from ._models import OptOut, RecipientResult
from .ledger._base import iso_utc, iso_utc_of

__all__ = ["RecordWriter", "ResultWriter", "console", "when", "when_micros"]

_FLAGS = {None: "", True: "true", False: "false"}
"""How CSV writes a flag that may be unknown."""
_YES_NO = {None: "unknown", True: "yes", False: "no"}
_RESULT_FIELDS = ("sender", "recipient", "opted_out", "ok", "error")
_RECORD_FIELDS = ("sender", "recipient", "status", "country", "source", "updated_at")
_NUMBERS = frozenset({"sender", "recipient"})
_E164 = 16
"""Characters of the longest E.164 number, the width of a number column."""
_TIME = len("2026-01-01T00:00:00.000000Z")


def when(moment: datetime | None) -> str | None:
    """``moment`` as a person reads it everywhere: ISO 8601 UTC, ``Z``, microseconds."""
    return None if moment is None else iso_utc_of(moment)


def when_micros(micros: int) -> str:
    """The ledger's microseconds since the epoch, as ``when`` writes a time."""
    return iso_utc(micros)


def console() -> Console:
    """Tables are cut to 80 columns when piped unless told otherwise; keep them whole."""
    return Console() if sys.stdout.isatty() else Console(width=200)


class _Columns:
    """Left-aligned columns two spaces apart; the last one takes what it needs."""

    def __init__(self, out: IO[str], headers: Sequence[str], widths: Sequence[int]) -> None:
        self._out = out
        self._widths = widths
        self._header = self._line([h.upper() for h in headers])

    def _line(self, cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, self._widths, strict=False)]
        return "  ".join([*padded, *cells[len(padded) :]]).rstrip() + "\n"

    def header(self) -> None:
        self._out.write(self._header)

    def row(self, cells: Sequence[str]) -> None:
        self._out.write(self._line(cells))


class _Stream:
    """The start and end of a streamed output, common to results and records."""

    def __init__(self, output: str, fields: Sequence[str], columns: _Columns) -> None:
        self.output = output
        self.out = sys.stdout
        self._fields = fields
        self._columns = columns
        self._csv = csv.writer(self.out, lineterminator="\n")
        self._started = False
        self._rows = 0

    def _begin(self) -> None:
        """Before the first row: a CSV header, JSON's bracket, a table's header."""
        self._started = True
        if self.output == "csv":
            self._csv.writerow(self._fields)
        elif self.output == "json":
            self.out.write("[")
        else:
            self._columns.header()

    def _json(self, row: dict[str, Any]) -> None:
        self.out.write(("\n" if self._rows == 0 else ",\n") + json.dumps(row))

    def finish(self, kind: type[BaseException] | None, *_: object) -> None:
        """At the command's end (an ExitStack callback): complete the output, unless it
        failed before any row."""
        if kind is None or self._started:
            self.close()

    def close(self) -> None:
        if self.output == "json":
            self.out.write(("" if self._started else "[") + ("\n]\n" if self._rows else "]\n"))
        elif self.output == "csv" and not self._started:
            self._csv.writerow(self._fields)
        self.out.flush()


class ResultWriter(_Stream):
    """One row per recipient result, as they come."""

    def __init__(self, output: str, sender: str) -> None:
        columns = _Columns(sys.stdout, ("recipient", "opted out", "ok", "error"), (_E164, 9, 3))
        super().__init__(output, _RESULT_FIELDS, columns)
        self.sender = sender
        self._sender_cell = guarded(sender, number=True)

    def write(self, item: RecipientResult) -> None:
        if not self._started:
            self._begin()
        if self.output == "csv":
            self._csv.writerow(
                (
                    self._sender_cell,
                    guarded(item.recipient, number=True),
                    _FLAGS[item.opted_out],
                    _FLAGS[item.ok],
                    "" if item.error is None else guarded(item.error),
                )
            )
        elif self.output == "json":
            self._json(
                {
                    "sender": self.sender,
                    "recipient": item.recipient,
                    "opted_out": item.opted_out,
                    "ok": item.ok,
                    "error": item.error,
                }
            )
        else:
            self._columns.row(
                (
                    printable(item.recipient),
                    _YES_NO[item.opted_out],
                    _YES_NO[item.ok],
                    "" if item.error is None else printable(item.error),
                )
            )
        self._rows += 1


def record_row(record: OptOut) -> dict[str, Any]:
    """A record as JSON shows it."""
    return {
        "sender": record.sender,
        "recipient": record.recipient,
        "status": record.status.value,
        "country": record.country,
        "source": record.source,
        "updated_at": when(record.updated_at),
    }


class RecordWriter(_Stream):
    """One row per listed record, as pages come. The table puts the source, the one column
    of any length, last."""

    def __init__(self, output: str) -> None:
        headers = ("sender", "recipient", "status", "country", "updated at", "source")
        columns = _Columns(sys.stdout, headers, (_E164, _E164, 9, 7, _TIME))
        super().__init__(output, _RECORD_FIELDS, columns)

    def write(self, record: OptOut) -> None:
        if not self._started:
            self._begin()
        row = record_row(record)
        if self.output == "csv":
            self._csv.writerow(
                ["" if v is None else guarded(v, number=k in _NUMBERS) for k, v in row.items()]
            )
        elif self.output == "json":
            self._json(row)
        else:
            self._columns.row(
                [
                    printable(row[name] or "")
                    for name in ("sender", "recipient", "status", "country", "updated_at", "source")
                ]
            )
        self._rows += 1
