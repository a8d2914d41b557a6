"""How results and records are written: JSON, CSV or a table, each as they arrive.

Nothing is written until the first row (or a successful end): a command that fails before
any result (a ledger that is not there, refused credentials) leaves stdout empty, and one
that had nothing to show prints no empty table.

The table streams too: aligned columns of plain text, the widths fixed in advance so that
a row is printed the moment it is known, in constant memory, at the speed of CSV (a table
drawn at the end held every row, and took 30 times as long).

Text that came from a vendor or a file is shown, never obeyed: table cells are escaped by
``printable``, CSV and JSON on a terminal by ``shown`` (into a pipe or a file they are
written as they are), and CSV cells a spreadsheet would run as formulas get a leading ``'``.
Times, wherever a person reads them, are ISO 8601 UTC with ``Z`` to the microsecond (the
fraction left out when it is zero), as ``optouts export`` writes them.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import IO, Any, NoReturn

from rich.console import Console

from ._csvparse import guarded
from ._errors import clip, printable
from ._models import OptOut, RecipientResult
from ._terminal import shown
from .ledger._base import iso_utc, iso_utc_of

__all__ = [
    "RecordWriter",
    "ResultWriter",
    "console",
    "drop_stdout",
    "environment_failure",
    "standard_streams",
    "when",
    "when_micros",
]

_FLAGS = {None: "", True: "true", False: "false"}
"""How CSV writes a flag that may be unknown."""
_YES_NO = {None: "unknown", True: "yes", False: "no"}
_RESULT_FIELDS = ("sender", "recipient", "opted_out", "ok", "error")
_RECORD_FIELDS = ("sender", "recipient", "status", "country", "source", "updated_at")
_NUMBERS = frozenset({"sender", "recipient"})
_E164 = 16
"""Characters of the longest E.164 number, the width of a number column."""
_TIME = len("2026-01-01T00:00:00.000000Z")
_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: what a byte that was not UTF-8 becomes in an argument or a file."""
_PATH_SHOWN = 300
"""Characters of a path an error shows."""


def when(moment: datetime | None) -> str | None:
    """``moment`` as a person reads it everywhere: ISO 8601 UTC, ``Z``, microseconds."""
    return None if moment is None else iso_utc_of(moment)


def when_micros(micros: int) -> str:
    """The ledger's microseconds since the epoch, as ``when`` writes a time."""
    return iso_utc(micros)


def dumps(row: dict[str, Any]) -> str:
    """``json.dumps``, never with a lone surrogate: strict parsers refuse ``"\\udcff"``, so
    a byte that was not UTF-8 is written ``\\xff``, as the table shows it."""
    text = json.dumps(row)
    if "\\ud" not in text:  # the common case: one search of the line, no rewrite
        return text
    return json.dumps({k: _no_surrogates(v) if isinstance(v, str) else v for k, v in row.items()})


def _no_surrogates(text: str) -> str:
    return _SURROGATE.sub(_surrogate_escape, text)


def _surrogate_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


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
        self.out = sys.stdout if output == "table" else shown(sys.stdout)
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
        self.out.write(("\n" if self._rows == 0 else ",\n") + dumps(row))

    def finish(self, kind: type[BaseException] | None, *_: object) -> None:
        """At the command's end (an ExitStack callback): complete the output, unless it
        failed before any row. Output cut short by an error still ends as it should (JSON's
        array closed), so what was printed parses; the error itself is on stderr."""
        if kind is None:
            self.close()
        elif self._started:
            with suppress(OSError, ValueError):  # stdout itself may be what failed
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


class _StreamClosed(OSError):
    """What using a closed standard stream raises."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.EBADF, "it is closed")
        self.verb = "read stdin" if name == "stdin" else f"write to {name}"


class _Closed(io.TextIOBase):
    """Stands in for a standard stream the shell closed (``>&-``): using it fails with an
    ``OSError`` saying so, as writing to a full disk does, not with a ``TypeError``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _fail(self, *_: object) -> NoReturn:
        raise _StreamClosed(self.name)

    write = writelines = read = readline = readlines = _fail

    def __iter__(self) -> NoReturn:
        self._fail()

    @property
    def buffer(self) -> NoReturn:
        self._fail()

    def flush(self) -> None:
        """Nothing is ever held, so flushing (as at exit) has nothing to fail on."""

    def isatty(self) -> bool:
        return False


@contextmanager
def standard_streams() -> Iterator[None]:
    """While a command runs, a closed stdin or stdout is a stand-in that fails in words."""
    saved = sys.stdin, sys.stdout
    if sys.stdin is None:
        sys.stdin = _Closed("stdin")
    if sys.stdout is None:
        sys.stdout = _Closed("stdout")
    try:
        yield
    finally:
        sys.stdin, sys.stdout = saved


def environment_failure(exc: BaseException) -> str | None:
    """One line for an error the machine caused (a full disk, a closed or broken stdout, a
    path that cannot be used, a database file that failed), or None for any other error.

    An ``OSError`` names its file when it has one; a write's has none, so stdout is named
    when the error came through a frame holding it."""
    if isinstance(exc, sqlite3.Error):
        return f"the ledger's database failed: {exc}"
    if not isinstance(exc, OSError):
        return None
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        named = exc.filename
        path = os.fsdecode(named) if isinstance(named, (str, bytes, os.PathLike)) else str(named)
        return f"{clip(path, _PATH_SHOWN)}: {reason}"
    if isinstance(exc, _StreamClosed):
        return f"cannot {exc.verb}: {reason}"
    if _from_stdout(exc):
        drop_stdout()
        return f"cannot write to stdout: {reason}"
    return reason


def _from_stdout(exc: BaseException) -> bool:
    """Whether ``exc`` came from writing stdout: a frame it passed through holds stdout, as a
    local (``click.echo``'s file, a function's stream argument) or in ``self`` (a writer's
    stream, a rich console's file). The error itself cannot say: a write's has no name."""
    streams = [sys.stdout, getattr(sys.stdout, "buffer", None)]
    tb = exc.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        owner = local.get("self")
        held = [*local.values(), *getattr(owner, "__dict__", {}).values()]
        if isinstance(owner, Console):  # its file is sys.stdout unless it was given one
            held.append(owner.file)
        if any(value is stream for value in held for stream in streams if stream is not None):
            return True
        tb = tb.tb_next
    return False


def drop_stdout() -> None:
    """Send what stdout still holds nowhere, once it failed, so the interpreter's last flush
    at exit does not fail again with a traceback (Python's advice for a broken pipe)."""
    out = sys.__stdout__
    if out is None or sys.stdout is not out:  # not the process's own: a test's stand-in
        return
    with suppress(OSError, ValueError, io.UnsupportedOperation):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, out.fileno())
        os.close(null)
