"""CSV rows to ledger changes, validated line by line, fast enough for millions of rows.

An import spends most of its Python time here, so a window of rows is checked column by
column: each check is one pass of a C function over a column (``map``, ``str.join``), not
bytecode per row. Cells that repeat (sender, status, source) are read once per distinct
value; a recipient passes when its first five characters are a prefix already learned and
the rest are digits, of a length that prefix allows; ISO 8601 times go straight to
``fromisoformat``. A row that any column check does not pass (national formats, stray
spaces, times without an offset, bad values, short rows) is read alone by the exact path,
which also words the error for its line: the column checks only let through rows that the
exact path reads the same way.

A cell a spreadsheet would run as a formula is written with a leading ``'`` (``guarded``)
and read back without it (``unguarded``): the two are each other's inverse, so a round
trip keeps every value.
"""

from __future__ import annotations

import contextlib
import csv
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from itertools import chain, compress, islice, repeat
from operator import attrgetter, floordiv, itemgetter, sub
from typing import NamedTuple, Protocol, cast

from ._errors import quote_value
from ._numbers import country_of, normalize, normalize_sender, prefix_facts
from .ledger import Change
from .ledger._base import EPOCH, MICROSECOND, micros_of
from .ledger._columns import ChangeColumns

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
_UNLEARNED: Facts = (frozenset(), None)
"""The facts of a prefix not learned yet: no length fits, so its rows take the exact path."""
_HEAD = itemgetter(slice(0, 5))
"""A recipient's first five characters: "+", the calling code and what follows."""
_DIGITS = itemgetter(slice(1, None))
_LENGTHS = itemgetter(0)
_COUNTRY = itemgetter(1)
_LINE_NUM = attrgetter("line_num")
_NEXT = (1).__add__
_RUN = 500
"""Records read and checked at a time: few enough that their lists die young (a window's
worth alive would make each garbage collection walk them all)."""


class Reader(Protocol):
    """What ``csv.reader`` returns: rows, and the number of the line last read."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


class Window(NamedTuple):
    """A run of consecutive rows: the good ones as changes, and the bad lines."""

    changes: ChangeColumns
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
    """Read ``reader`` (past its header) in windows of ``size`` rows (the last may be short).

    Undated rows take the time ``now()`` gives when their window starts, and say so
    (``Change.dated`` is false). Blank lines are skipped and not counted.
    """
    rows = _Rows(columns, region=region, default_source=default_source)
    records = _Records(reader, rows.width)
    while not records.done:
        stamp, latest = now(), _latest_allowed()
        parts: list[ChangeColumns] = []
        lines: list[int] = []
        bad: list[tuple[int, str]] = []
        unreadable: list[tuple[int, str]] = []
        counted = 0
        while counted < size and not records.done:
            run = records.take(min(_RUN, size - counted), unreadable)
            part, part_lines, part_bad = rows.read(run, stamp, latest, keep_lines)
            parts.append(part)
            lines.extend(part_lines)
            bad.extend(part_bad)
            counted += run.counted
        changes = ChangeColumns.joined(parts)
        if changes or bad or unreadable:
            yield Window(changes, lines, bad + unreadable)


class _Run(NamedTuple):
    """Consecutive records, and where each ends in the file (a cell may span lines)."""

    records: list[list[str]]
    ends: list[int]
    before: int
    """The line the record before the first (or the header) ends on."""
    shortest: int
    """The fewest cells a record of the run has."""
    counted: int
    """Records that are not blank."""

    def start(self, index: int) -> int:
        """The line record ``index`` starts on."""
        return (self.ends[index - 1] if index else self.before) + 1

    def starts(self) -> list[int]:
        return list(map(_NEXT, chain((self.before,), self.ends[:-1]))) if self.ends else []


class _Records:
    """A reader's records in runs, each record with the line it ends on.

    A run is read by C code alone: ``zip`` pairs each record with the reader's line count
    just after it. A record the csv module cannot read (a cell over its size limit, a NUL
    before Python 3.11) is set aside with its line and the records after it are read on;
    ``list.extend`` keeps what it took before the error.
    """

    def __init__(self, reader: Reader, width: int) -> None:
        self._reader = reader
        self._pairs = zip(reader, map(_LINE_NUM, repeat(reader)), strict=False)
        self._width = width
        self._end = reader.line_num
        """The line that the record last read (or the header) ends on."""
        self.done = False

    def take(self, size: int, unreadable: list[tuple[int, str]]) -> _Run:
        """Up to ``size`` records; a record that cannot be read ends the run, in
        ``unreadable`` with its line and reason."""
        # Record, line count, record, line count...: flattened, zip reuses its one tuple.
        flat: list[list[str] | int] = []
        failure: csv.Error | None = None
        try:
            flat.extend(islice(chain.from_iterable(self._pairs), 2 * size))
        except csv.Error as error:
            failure = error
        else:
            self.done = len(flat) < 2 * size
        records = cast("list[list[str]]", flat[0::2])
        ends = cast("list[int]", flat[1::2])
        shortest = min(map(len, records), default=self._width)
        counted = len(records)
        if shortest < self._width:
            counted -= sum(1 for record in records if _blank(record))
        run = _Run(records, ends, self._end, shortest, counted)
        if ends:
            self._end = ends[-1]
        if failure is not None:
            unreadable.append((self._end + 1, f"not readable as CSV: {failure}"))
            self._end = self._reader.line_num
        return run


def _blank(record: list[str]) -> bool:
    """A record with nothing in it: skipped and not counted (``,,,,`` is a short row)."""
    return len(record) <= 1 and not (record and record[0].strip())


class _Columns(NamedTuple):
    """A run's rows as the fields of ``Change``, one column each."""

    senders: Sequence[str]
    recipients: Sequence[str]
    states: Sequence[bool]
    sources: Sequence[str]
    times: Sequence[int]
    dated: Sequence[bool]
    facts: Sequence[Facts]
    """Of each recipient's prefix: its country is the row's."""


class _Rows:
    """Reads runs of records into changes: by columns where it can, else row by row."""

    def __init__(self, columns: dict[str, int], *, region: str | None, default_source: str) -> None:
        self.width = max(columns.values()) + 1
        absent = [name for name in HEADER if name not in columns]
        self._pad = [""] * len(absent)
        self._pick = itemgetter(
            *[columns[n] if n in columns else self.width + absent.index(n) for n in HEADER]
        )
        self._columns = columns
        self._region = region
        self._default_source = default_source
        self._senders: dict[str, str | None] = {}
        """Each sender cell met, normalised once (a file names few); None if not a sender."""
        self._prefixes: dict[str, Facts] = {}

    def read(
        self, run: _Run, stamp: int, latest: int, keep_lines: bool
    ) -> tuple[ChangeColumns, list[int], list[tuple[int, str]]]:
        """The run's changes (with their lines, if kept) and its bad lines, in file order."""
        records = run.records
        if not records:
            return ChangeColumns(), [], []
        aside: set[int] = set()
        """Rows that a column check did not pass: the exact path reads them."""
        cells = records
        if run.shortest < self.width:  # a short row reads as empty cells: set aside
            filler = [""] * self.width
            cells = [row if len(row) >= self.width else filler for row in records]
        by_column = list(zip(*cells, strict=False))  # as many as the shortest row has
        column = {name: by_column[at] for name, at in self._columns.items()}
        count = len(records)
        fields = _Columns(
            self._sender_column(column["sender"], aside),
            column["recipient"],
            _status_column(column["status"], aside),
            self._source_column(column.get("source"), count, aside),
            *self._time_column(column.get("updated_at"), count, stamp, latest, aside),
            self._recipient_column(column["recipient"], aside),
        )
        if not aside:
            return _changes(fields), run.starts() if keep_lines else [], []
        return self._with_exact(run, aside, fields, stamp, latest, keep_lines)

    def _sender_column(self, cells: Sequence[str], aside: set[int]) -> Sequence[str]:
        known = self._senders
        distinct = set(cells)
        for cell in distinct.difference(known):
            try:
                known[cell] = normalize_sender(unguarded(cell), self._region)
            except ValueError:  # InvalidNumber too: the exact path words it
                known[cell] = None
        senders = list(map(known.__getitem__, cells))
        if any(known[cell] is None for cell in distinct):
            aside.update(i for i, sender in enumerate(senders) if sender is None)
        return cast("list[str]", senders)  # those that are None are set aside

    def _recipient_column(self, cells: Sequence[str], aside: set[int]) -> list[Facts]:
        """The facts of each recipient's prefix; a cell not plainly E.164 of a length its
        prefix allows is set aside (the exact path also learns the prefixes it meets).

        Cells are checked as a whole where it can be: their lengths against every prefix's,
        and their characters joined (one "+" each, then digits)."""
        prefixes = self._prefixes
        heads = list(map(_HEAD, cells))
        distinct = set(heads)
        for head in distinct.difference(prefixes):
            self._learn(cells[heads.index(head)])
        facts = list(map(prefixes.get, heads, repeat(_UNLEARNED)))
        lengths = set(map(len, cells))
        fits = all(lengths <= prefixes.get(head, _UNLEARNED)[0] for head in distinct)
        if not fits:
            fits = all(map(frozenset.__contains__, map(_LENGTHS, facts), map(len, cells)))
        joined = "".join(cells)
        plain = joined.count("+") == len(cells) and joined.replace("+", "").isdigit()
        if not (fits and plain and joined.isascii()):
            aside.update(
                i
                for i, (cell, (allowed, _)) in enumerate(zip(cells, facts, strict=True))
                if len(cell) not in allowed or not _E164_DIGITS(cell)
            )
        return facts

    def _learn(self, cell: str) -> None:
        """Learn the facts of ``cell``'s prefix, if it is a number: as the exact path would."""
        with contextlib.suppress(ValueError):
            _recipient(cell, self._region, self._prefixes)

    def _time_column(
        self, cells: Sequence[str] | None, count: int, stamp: int, latest: int, aside: set[int]
    ) -> tuple[list[int], list[bool]]:
        """Each row's time and whether the file gave it; an empty cell is undated."""
        if cells is None or not any(cells):
            return [stamp] * count, [False] * count
        try:
            moments = map(_fromisoformat, cells)
            times = list(map(floordiv, map(sub, moments, repeat(EPOCH)), repeat(MICROSECOND)))
            dated = [True] * len(cells)
        except (ValueError, TypeError):  # empty, naive or not ISO 8601 somewhere
            times, dated = [], []
            for i, cell in enumerate(cells):
                try:
                    times.append((_fromisoformat(cell) - EPOCH) // MICROSECOND)
                    dated.append(True)
                except (ValueError, TypeError):
                    if cell:
                        aside.add(i)
                    times.append(stamp)
                    dated.append(False)
        if min(times) < _EARLIEST or max(times) > latest:
            aside.update(i for i, at in enumerate(times) if not _EARLIEST <= at <= latest)
        return times, dated

    def _source_column(
        self, cells: Sequence[str] | None, count: int, aside: set[int]
    ) -> Sequence[str]:
        if cells is None:
            cells = ("",) * count
        table = {cell: self._source(cell) for cell in set(cells)}
        sources = list(map(table.__getitem__, cells))
        if None in table.values():
            aside.update(i for i, source in enumerate(sources) if source is None)
        return cast("list[str]", sources)  # those that are None are set aside

    def _source(self, cell: str) -> str | None:
        """``cell`` as the ledger records it; None if it is not text (the exact path says why)."""
        source = cell.strip() or self._default_source
        if source[:1] == "'":
            source = unguarded(source)
        return source if source.isascii() or _is_text(source) else None

    def _with_exact(
        self,
        run: _Run,
        aside: set[int],
        fields: _Columns,
        stamp: int,
        latest: int,
        keep_lines: bool,
    ) -> tuple[ChangeColumns, list[int], list[tuple[int, str]]]:
        """The rows the columns passed, with those set aside read by the exact path."""
        records = run.records
        passed = [i not in aside for i in range(len(records))]
        kept = _Columns._make(list(compress(field, passed)) for field in fields)
        fast = iter(_changes(kept))
        changes: list[Change] = []
        lines: list[int] = []
        bad: list[tuple[int, str]] = []
        for i, row in enumerate(records):
            if passed[i]:
                change = next(fast)
            else:
                try:
                    change = self._exact(row, stamp, latest)
                except ValueError as exc:  # InvalidNumber too
                    bad.append((run.start(i), str(exc)))
                    continue
                except IndexError:
                    if not _blank(row):
                        bad.append((run.start(i), f"{len(row)} fields, expected {self.width}"))
                    continue
            changes.append(change)
            if keep_lines:
                lines.append(run.start(i))
        return ChangeColumns.of(changes), lines, bad

    def _exact(self, row: list[str], stamp: int, latest: int) -> Change:
        """One row read cell by cell, as it is written; a bad cell raises, saying why."""
        if self._pad and len(row) >= self.width:
            row = row[: self.width] + self._pad
        sender, recipient, status, source, when = self._pick(row)
        opted_out = _STATUSES.get(status)
        if opted_out is None:
            opted_out = _status(status)
        normal = self._senders.get(sender)
        if normal is None:
            normal = self._senders[sender] = normalize_sender(unguarded(sender), self._region)
        facts = self._prefixes.get(recipient[:5])
        if facts is None or not _E164_DIGITS(recipient) or len(recipient) not in facts[0]:
            recipient, facts = _recipient(recipient, self._region, self._prefixes)
        try:
            at: int | None = (_fromisoformat(when) - EPOCH) // MICROSECOND
        except (ValueError, TypeError):
            at = _micros(when)
        source = source.strip() or self._default_source
        if source[:1] == "'":
            source = unguarded(source)
        if not source.isascii():
            _check_text(source)
        if at is None:
            return Change(normal, int(recipient), opted_out, source, stamp, facts[1], False)
        if not _EARLIEST <= at <= latest:
            raise ValueError(f"updated_at {quote_value(when)} is {_out_of_range(at, latest)}")
        return Change(normal, int(recipient), opted_out, source, at, facts[1], True)


def _status_column(cells: Sequence[str], aside: set[int]) -> Sequence[bool]:
    if set(cells).issubset(_STATUSES):
        return list(map(_STATUSES.__getitem__, cells))
    states = list(map(_STATUSES.get, cells))
    aside.update(i for i, state in enumerate(states) if state is None)
    return cast("list[bool]", states)  # those that are None are set aside


def _changes(fields: _Columns) -> ChangeColumns:
    """The changes of rows whose every cell passed (as columns)."""
    return ChangeColumns(
        fields.senders,
        map(_DIGITS, fields.recipients),
        fields.states,
        fields.sources,
        fields.times,
        list(map(_COUNTRY, fields.facts)),
        fields.dated,
    )


def _is_text(cell: str) -> bool:
    try:
        _check_text(cell)
    except ValueError:
        return False
    return True


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
