"""CSV rows to ledger changes, validated line by line, fast enough for millions of rows.

The loop in ``parse`` runs once per row of an import, so it is written for speed: fields
are picked in one C call, well-formed E.164 numbers are checked against a table of what
each five-character prefix allows, and ISO 8601 times go straight to ``fromisoformat``.
Anything unusual (national formats, stray spaces, times without an offset, bad values)
falls to the slow, exact path, which also words the error for the line.

A cell a spreadsheet would run as a formula is written with a leading ``'`` (``guarded``)
and read back without it (``unguarded``): the two are each other's inverse, so a round
trip keeps every value.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from operator import itemgetter
from typing import NamedTuple, Protocol

from ._errors import InvalidNumber, quote_value
from ._numbers import country_of, normalize, normalize_sender, prefix_facts
from .ledger import Change
from .ledger._base import EPOCH, MICROSECOND, micros_of

__all__ = ["HEADER", "Reader", "Window", "columns_of", "guarded", "parse", "unguarded"]

HEADER = ("sender", "recipient", "status", "source", "updated_at")
_REQUIRED = ("sender", "recipient", "status")
_STATUSES = {
    "opted-out": True,
    "optout": True,
    "opt-out": True,
    "opted-in": False,
    "optin": False,
    "opt-in": False,
}
_FUTURE_ALLOWANCE = 24 * 3600 * 1_000_000
"""Clock skew tolerated in updated_at, in microseconds."""
_EARLIEST = micros_of(datetime(1, 1, 1, tzinfo=timezone.utc))
"""Times before this (0001-01-01 with an offset east of UTC) cannot be written back out."""
_E164_DIGITS = re.compile(r"\+[1-9][0-9]*").fullmatch
_FORMULA = frozenset("=+-@\t\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list)."""
_PLUS_DIGITS = re.compile(r"\+[0-9]+").fullmatch

Facts = tuple[frozenset[int], "str | None"]


class Reader(Protocol):
    """What ``csv.reader`` returns: rows, and the number of the line last read."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


class Window(NamedTuple):
    """A run of consecutive rows: the good ones as changes, and the bad lines."""

    changes: list[Change]
    lines: list[int]
    """Line number of each change (kept only when asked for)."""
    bad: list[tuple[int, str]]


def columns_of(header: list[str]) -> dict[str, int]:
    """Position of each known column; a header without the required ones is refused."""
    names = [name.strip().lower() for name in header]
    missing = [name for name in _REQUIRED if name not in names]
    if missing:
        raise ValueError(
            f"the header names no {', '.join(missing)} column; expected {','.join(HEADER)}"
        )
    return {name: names.index(name) for name in HEADER if name in names}


def parse(
    reader: Reader,
    columns: dict[str, int],
    *,
    region: str | None,
    default_source: str,
    now: Callable[[], int],
    size: int,
    keep_lines: bool = False,
) -> Iterator[Window]:
    """Read ``reader`` (past its header) in windows of about ``size`` rows.

    Undated rows take the time ``now()`` gives when their window starts, and say so
    (``Change.dated`` is false). Blank lines are skipped and not counted.
    """
    width = max(columns.values()) + 1
    absent = [name for name in HEADER if name not in columns]
    positions = [columns[n] if n in columns else width + absent.index(n) for n in HEADER]
    unreadable: list[tuple[int, str]] = []
    records = _records(reader, width, len(absent), unreadable)
    pick = itemgetter(*positions)
    senders: dict[str, str] = {}  # a file names few senders: normalise each once
    prefixes: dict[str, Facts] = {}
    fromiso = _fromisoformat
    make = tuple.__new__  # builds the named tuple without its Python-level __new__: 3x faster
    changes: list[Change] = []
    lines: list[int] = []
    bad: list[tuple[int, str]] = []
    stamp, latest = now(), _latest_allowed()
    for line, row in records:
        try:
            sender, recipient, status, source, when = pick(row)
            opted_out = _STATUSES.get(status)
            if opted_out is None:
                opted_out = _status(status)
            normal = senders.get(sender)
            if normal is None:
                normal = senders[sender] = normalize_sender(unguarded(sender), region)
            facts = prefixes.get(recipient[:5])
            if facts is None or not _E164_DIGITS(recipient) or len(recipient) not in facts[0]:
                recipient, facts = _recipient(recipient, region, prefixes)
            try:
                at: int | None = (fromiso(when) - EPOCH) // MICROSECOND
            except (ValueError, TypeError):
                at = _micros(when)
            source = source.strip() or default_source
            if source[:1] == "'":
                source = unguarded(source)
            if not source.isascii():
                _check_text(source)
            if at is None:
                fields = (normal, int(recipient), opted_out, source, stamp, facts[1], False)
            elif not _EARLIEST <= at <= latest:
                raise ValueError(f"updated_at {quote_value(when)} is {_out_of_range(at, latest)}")
            else:
                fields = (normal, int(recipient), opted_out, source, at, facts[1], True)
            changes.append(make(Change, fields))
            if keep_lines:
                lines.append(line)
        except InvalidNumber as exc:
            bad.append((line, str(exc)))
        except ValueError as exc:
            bad.append((line, str(exc)))
        except IndexError:
            if len(row) > 1 or (row and row[0].strip()):
                bad.append((line, f"{len(row)} fields, expected {width}"))
        if len(changes) + len(bad) >= size:
            yield Window(changes, lines, _with(bad, unreadable))
            changes, lines, bad = [], [], []
            stamp, latest = now(), _latest_allowed()
    if changes or bad or unreadable:
        yield Window(changes, lines, _with(bad, unreadable))


def _records(
    reader: Reader, width: int, absent: int, unreadable: list[tuple[int, str]]
) -> Iterator[tuple[int, list[str]]]:
    """(first line, row) of each record. A record the csv module cannot read (a cell over
    its size limit, a NUL before Python 3.11) goes to ``unreadable`` and the rest go on.

    With ``absent`` columns, cells past the known ones are dropped and the absent ones
    added, empty; a short row stays short, so its missing cells are reported.
    """
    pad = [""] * absent
    end = reader.line_num
    while True:
        try:
            for row in reader:
                line, end = end + 1, reader.line_num  # a cell may span lines: the first
                yield line, (row[:width] + pad if pad and len(row) >= width else row)
            return
        except csv.Error as error:
            unreadable.append((end + 1, f"not readable as CSV: {error}"))
            end = reader.line_num


def _with(bad: list[tuple[int, str]], unreadable: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The window's bad lines and any the csv module could not read (then forgotten)."""
    if unreadable:
        bad = bad + unreadable
        unreadable.clear()
    return bad


if sys.version_info >= (3, 11):
    _fromisoformat = datetime.fromisoformat
else:  # pragma: no cover - exercised by CI's Python 3.10 run

    def _fromisoformat(text: str) -> datetime:
        """Python 3.10 reads no "Z": spell it as an offset, exactly as the exact path does."""
        return datetime.fromisoformat(text.replace("Z", "+00:00"))


def guarded(cell: str, *, number: bool = False) -> str:
    """``cell`` as a spreadsheet may show but never run: a leading ``'`` before a formula's
    first character, and before one already guarded (so ``unguarded`` gives it back whole).

    A ``number`` cell that is ``+`` and digits only stays as it is: a spreadsheet reads it
    as a number, never a call, and E.164 is what the columns of numbers hold.
    """
    if cell.lstrip("'")[:1] not in _FORMULA or (number and _PLUS_DIGITS(cell)):
        return cell
    return "'" + cell


def unguarded(cell: str) -> str:
    """``cell`` without the ``'`` that ``guarded`` (or a spreadsheet) put before a formula's
    first character; leading and trailing blanks are dropped with it. Any other cell is
    returned as it is."""
    text = cell.strip()
    if text[:1] == "'" and text.lstrip("'")[:1] in _FORMULA:
        return text[1:]
    return cell


def _check_text(cell: str) -> None:
    """Refuse a cell holding bytes that were not UTF-8 (read with ``surrogateescape``)."""
    try:
        cell.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"source {quote_value(cell)} is not valid UTF-8") from None


def _status(cell: str) -> bool:
    state = _STATUSES.get(unguarded(cell).strip().lower())
    if state is None:
        raise ValueError(f"status {quote_value(cell)} is not opted-out or opted-in")
    return state


def _recipient(value: str, region: str | None, prefixes: dict[str, Facts]) -> tuple[str, Facts]:
    """The exact path: any format phonenumbers reads; learns the prefix for the fast path."""
    number = normalize(unguarded(value).strip(), region)
    facts = prefix_facts(number)
    if facts is None:  # the country depends on more than the prefix: ask each time
        return number, (frozenset(), country_of(number))
    prefixes[number[:5]] = facts
    return number, facts


def _out_of_range(at: int, latest: int) -> str:
    return "in the future" if at > latest else "before the year 1 in UTC"


def _latest_allowed() -> int:
    # A future time would beat every real report after it: such rows are refused.
    return time.time_ns() // 1000 + _FUTURE_ALLOWANCE


def _micros(text: str) -> int | None:
    text = unguarded(text).strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"updated_at {quote_value(text)} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return micros_of(moment)
