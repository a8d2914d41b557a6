"""CSV rows to ledger changes, validated line by line, fast enough for millions of rows.

An import spends most of its Python time here, so a file is read a block of lines at a
time and checked column by column: each step is one pass of a C function over a block or a
column (``str.split``, ``map``, ``str.join``), not bytecode per row.

A block with no quote character in it (nor a NUL, a lone carriage return or a line as long
as the csv module's field limit) is cut with ``str.split``: each line is a record and its
cells are what lies between commas, which is all the csv module would read in it, and the
columns are slices of the cells. Any other block is read by ``csv.reader``, a record at a
time (a quoted cell may run on past the block's last line).

Cells that repeat (sender, status, source) are read once per distinct value; a recipient
passes when its first five characters are a prefix already learned and the rest are
digits, of a length that prefix allows; ISO 8601 times go straight to ``fromisoformat``.
A row that any column check does not pass (national formats, stray spaces, times without
an offset, bad values, short rows) is read alone by the exact path, which also words the
error for its line: the column checks only let through rows that the exact path reads the
same way.

No time in a file is taken on trust: a window's changes go through
``ChangeColumns.trusting_times`` with the time the window was read, as a sync's and an
inbound message's do through ``trusted_time``.

A cell a spreadsheet would run as a formula is written with a leading ``'`` (``guarded``)
and read back without it (``unguarded``): the two are each other's inverse, so a round
trip keeps every value.
"""

from __future__ import annotations

import contextlib
import csv
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from itertools import chain, compress, islice, repeat
from operator import attrgetter, floordiv, itemgetter, sub
from typing import Any, NamedTuple, Protocol, cast

from ._errors import quote_value
from ._numbers import (
    BY_NUMBER,
    countries_of,
    country_of,
    normalize,
    normalize_sender,
    prefix_facts,
)
from .ledger import Change
from .ledger._base import EPOCH, MICROSECOND, micros_of
from .ledger._columns import ChangeColumns

__all__ = ["HEADER", "Window", "columns_of", "guarded", "parse", "read_header", "unguarded"]

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
_LENGTHS = itemgetter(0)
_LAST = itemgetter(slice(-1, None))
_LINE_NUM = attrgetter("line_num")
_NEXT = (1).__add__
_BY_CSV = 16
"""The most blocks in a row the csv module reads before ``_split`` tries again."""
_BLOCK = 2000
"""Lines read and checked at a time: enough that a block's fixed costs vanish per row, few
enough that its lists stay in the CPU's caches (and, read by csv, die young: a window's
worth of record lists alive would make each garbage collection walk them all)."""


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


def read_header(lines: Iterator[str]) -> tuple[dict[str, int], int] | None:
    """The columns the header line of ``lines`` names, and the line it ends on; None for a
    file with no lines. Only the header's lines are taken from ``lines``."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return None
    return columns_of(header), reader.line_num


def parse(
    lines: Iterator[str],
    columns: dict[str, int],
    *,
    after: int,
    region: str | None,
    default_source: str,
    now: Callable[[], int],
    size: int,
    first: int | None = None,
    keep_lines: bool = False,
) -> Iterator[Window]:
    """Read the records of ``lines`` (past the header, which ends on line ``after``) in
    windows of ``size`` rows (the last may be short). With ``first``, the first window has
    that many and each next one twice as many as the one before, up to ``size``: whatever
    works on the windows in another thread starts sooner.

    Undated rows take the time ``now()`` gives when their window starts, and say so
    (``Change.dated`` is false); that is also the time a row dated ahead of it is taken
    at, as ``trusted_time`` says. Blank lines are skipped and not counted.
    """
    rows = _Rows(columns, region=region, default_source=default_source)
    records = _Records(lines, after, rows.width)
    rows_next = size if first is None else min(first, size)
    while not records.done:
        window = _window(records, rows, now(), rows_next, keep_lines)
        rows_next = min(2 * rows_next, size)
        if window.changes or window.bad:
            yield window
        del window  # gone while the next window is read, not once it is


def _window(records: _Records, rows: _Rows, stamp: int, size: int, keep_lines: bool) -> Window:
    """The next ``size`` rows of ``records`` (fewer at the end)."""
    columns: list[list[Any]] = [[] for _ in Change._fields]
    numbers: list[int] = []
    bad: list[tuple[int, str]] = []
    unreadable: list[tuple[int, str]] = []
    counted = 0
    while counted < size and not records.done:
        run = records.take(min(_BLOCK, size - counted), unreadable)
        part, part_lines, part_bad = rows.read(run, stamp, keep_lines)
        for column, cells in zip(columns, part.columns(), strict=True):
            column.extend(cells)
        numbers.extend(part_lines)
        bad.extend(part_bad)
        counted += run.counted
    changes = ChangeColumns.taking(*columns).trusting_times(stamp)
    return Window(changes, numbers, bad + unreadable)


class _Run(NamedTuple):
    """Consecutive records, and where each ends in the file (a cell may span lines)."""

    records: list[list[str]]
    """Read by csv: each record's cells (a short one has fewer)."""
    cells: list[list[str]] | None
    """Cut by ``str.split`` instead: the first cells of every record, a column each."""
    ends: Sequence[int]
    before: int
    """The line the record before the first (or the header) ends on."""
    shortest: int
    """The fewest cells a record of the run has."""
    counted: int
    """Records that are not blank."""

    def record(self, index: int) -> list[str]:
        """The cells of record ``index``, as the exact path reads them."""
        if self.cells is None:
            return self.records[index]
        return [column[index] for column in self.cells]

    def start(self, index: int) -> int:
        """The line record ``index`` starts on."""
        return (self.ends[index - 1] if index else self.before) + 1

    def starts(self) -> list[int]:
        return list(map(_NEXT, chain((self.before,), self.ends[:-1]))) if self.ends else []


class _Reader(Protocol):
    """What ``csv.reader`` returns: records, and the number of the line last read."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


class _Reading(NamedTuple):
    """A block being read by ``csv.reader``: its records with the line each ends on."""

    reader: _Reader
    pairs: Iterator[tuple[list[str], int]]
    base: int
    """The line before the block's first."""
    lines: int
    """Lines it reads (the block's, and maybe more after): then its records are all read."""


class _Records:
    """The records of a file's lines in runs, each record with the line it ends on.

    A block that ``_split`` cannot cut is read by ``csv.reader``, by C code alone: ``zip``
    pairs each record with the reader's line count just after it. A record the csv module
    cannot read (a cell over its size limit, a NUL before Python 3.11) is set aside with
    its line and the records after it are read on; ``list.extend`` keeps what it took
    before the error.
    """

    def __init__(self, lines: Iterator[str], after: int, width: int) -> None:
        self._lines = lines
        self._width = width
        self._end = after
        """The line that the record last read (or the header) ends on."""
        self._reading: _Reading | None = None
        self._more = True
        """Whether ``lines`` may hold more."""
        self._by_csv = 0
        """Blocks the csv module reads before ``_split`` tries again."""
        self.done = False

    def take(self, size: int, unreadable: list[tuple[int, str]]) -> _Run:
        """Up to ``size`` records; a record that cannot be read ends the run, in
        ``unreadable`` with its line and reason."""
        if self._reading is None:
            block = list(islice(self._lines, size))
            self._more = len(block) == size
            cells = _split(block, self._width)
            if cells is not None:
                self._by_csv = 0
                before, self._end = self._end, self._end + len(block)
                self.done = not self._more
                ends = range(before + 1, self._end + 1)
                return _Run([], cells, ends, before, self._width, len(block))
            # A file that needs csv in one block mostly does in the next (quoted cells):
            # csv reads on for more blocks, each time twice as many, before the next try.
            self._by_csv = min(2 * self._by_csv, _BY_CSV) if self._by_csv else 1
            reader = csv.reader(chain(block, self._lines))
            pairs = zip(reader, map(_LINE_NUM, repeat(reader)), strict=False)
            self._reading = _Reading(reader, pairs, self._end, size * self._by_csv)
        return self._read(self._reading, size, unreadable)

    def _read(self, reading: _Reading, size: int, unreadable: list[tuple[int, str]]) -> _Run:
        """Records of the block being read by csv: no more than it has lines left (each
        record takes one at least), and those of a record running on past it."""
        wanted = min(size, reading.lines - reading.reader.line_num)
        # Record, line count, record, line count...: flattened, zip reuses its one tuple.
        flat: list[list[str] | int] = []
        failure: csv.Error | None = None
        try:
            flat.extend(islice(chain.from_iterable(reading.pairs), 2 * wanted))
        except csv.Error as error:
            failure = error
        records = cast("list[list[str]]", flat[0::2])
        ends = list(map(reading.base.__add__, cast("list[int]", flat[1::2])))
        shortest = min(map(len, records), default=self._width)
        counted = len(records)
        if shortest < self._width:
            counted -= sum(1 for record in records if _blank(record))
        run = _Run(records, None, ends, self._end, shortest, counted)
        if ends:
            self._end = ends[-1]
        if failure is not None:
            unreadable.append((self._end + 1, f"not readable as CSV: {failure}"))
            self._end = reading.base + reading.reader.line_num
        ended = failure is None and len(flat) < 2 * wanted  # the lines ran out
        taken = reading.reader.line_num >= reading.lines
        if ended or taken:
            self._reading = None
            self._end = reading.base + reading.reader.line_num
            self.done = ended or not self._more
        return run


def _split(block: list[str], width: int) -> list[list[str]] | None:
    """The first ``width`` cells of each line of ``block``, a column each, if a line is
    exactly a record whose cells are what lies between its commas; else None.

    That holds for lines with no quote character, each ending with its line break
    (``\\n`` or ``\\r\\n``, and no other), all with as many commas, and none as long as
    the csv module's field limit (nor, for Python 3.10's, holding a NUL). Each line break
    is cut out as a cell of its own, so one slice of the cells shows whether every line has
    as many: there are as many breaks as lines, and each is where it would be."""
    if not block:
        return None
    text = "".join(block)
    if '"' in text or "\x00" in text:
        return None
    count = len(block)
    if "\r" in text:
        if text.count("\r\n") != text.count("\r"):
            return None
        text = text.replace("\r\n", "\n")
    if text.count("\n") != count or "".join(map(_LAST, block)) != "\n" * count:
        return None  # a line break within a line, or a last line without one
    cells_a_line = text.count(",", 0, text.index("\n")) + 1
    if cells_a_line < width:
        return None  # short rows: csv's reading words the error
    limit = csv.field_size_limit()
    if len(text) >= limit and max(map(len, block)) >= limit:
        return None  # a cell may be over the limit: csv's reading says so
    cells = text.replace("\n", ",\n,").split(",")
    cells.pop()  # what follows the last line break
    stride = cells_a_line + 1
    if len(cells) != count * stride or cells[cells_a_line::stride].count("\n") != count:
        return None  # lines with more or fewer cells than the first
    return [cells[at::stride] for at in range(width)]


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
    countries: Sequence[str | None]


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
        self, run: _Run, stamp: int, keep_lines: bool
    ) -> tuple[ChangeColumns, list[int], list[tuple[int, str]]]:
        """The run's changes (with their lines, if kept) and its bad lines, in file order."""
        count = len(run.ends)
        if not count:
            return ChangeColumns(), [], []
        aside: set[int] = set()
        """Rows that a column check did not pass: the exact path reads them."""
        if run.cells is not None:
            by_column: Sequence[Sequence[str]] = run.cells
        else:
            cells = run.records
            if run.shortest < self.width:  # a short row reads as empty cells: set aside
                filler = [""] * self.width
                cells = [row if len(row) >= self.width else filler for row in cells]
            by_column = list(zip(*cells, strict=False))  # as many as the shortest row has
        column = {name: by_column[at] for name, at in self._columns.items()}
        fields = _Columns(
            self._sender_column(column["sender"], aside),
            column["recipient"],
            _status_column(column["status"], aside),
            self._source_column(column.get("source"), count, aside),
            *self._time_column(column.get("updated_at"), count, stamp, aside),
            self._recipient_column(column["recipient"], aside),
        )
        if not aside:
            return _changes(fields), run.starts() if keep_lines else [], []
        return self._with_exact(run, aside, fields, stamp, keep_lines)

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

    def _recipient_column(self, cells: Sequence[str], aside: set[int]) -> Sequence[str | None]:
        """The country of each recipient (its prefix's); a cell not plainly E.164 of a
        length its prefix allows is set aside (the exact path also learns the prefixes it
        meets).

        Cells are checked as a whole where it can be: their lengths against every prefix's,
        and their characters joined (one "+" each, then digits)."""
        prefixes = self._prefixes
        heads = list(map(_HEAD, cells))
        distinct = set(heads)
        for head in distinct.difference(prefixes):
            self._learn(cells[heads.index(head)])
        known = {head: prefixes.get(head, _UNLEARNED) for head in distinct}
        lengths = set(map(len, cells))
        fits = all(lengths <= allowed for allowed, _ in known.values())
        if not fits:  # prefixes of several lengths: each cell against its own
            facts = list(map(known.__getitem__, heads))
            fits = all(map(frozenset.__contains__, map(_LENGTHS, facts), map(len, cells)))
        if fits:
            joined = "".join(cells)
            plain = joined.count("+") == len(cells) and joined.replace("+", "").isdigit()
            fits = plain and joined.isascii()
        if not fits:
            facts = list(map(known.__getitem__, heads))
            aside.update(
                i
                for i, (cell, (allowed, _)) in enumerate(zip(cells, facts, strict=True))
                if len(cell) not in allowed or not _E164_DIGITS(cell)
            )
        countries = {head: country for head, (_, country) in known.items()}
        if len(set(countries.values())) == 1 and BY_NUMBER not in countries.values():
            return (countries[heads[0]],) * len(cells)
        if set(countries.values()) == {BY_NUMBER}:  # +44, +7 …: the whole number decides
            return countries_of(list(cells))
        placed = list(map(countries.__getitem__, heads))
        if BY_NUMBER in countries.values():
            placed = [
                country_of(cell) if country == BY_NUMBER else country
                for cell, country in zip(cells, placed, strict=True)
            ]
        return placed

    def _learn(self, cell: str) -> None:
        """Learn the facts of ``cell``'s prefix, if it is a number: as the exact path would."""
        with contextlib.suppress(ValueError):
            _recipient(cell, self._region, self._prefixes)

    def _time_column(
        self, cells: Sequence[str] | None, count: int, stamp: int, aside: set[int]
    ) -> tuple[Sequence[int], Sequence[bool]]:
        """Each row's time and whether the file gave it; an empty cell is undated."""
        if cells is None or not any(cells):
            return (stamp,) * count, (False,) * count
        try:
            moments = map(_fromisoformat, cells)
            times = list(map(floordiv, map(sub, moments, repeat(EPOCH)), repeat(MICROSECOND)))
            dated: Sequence[bool] = (True,) * count
        except (ValueError, TypeError):  # empty, naive or not ISO 8601 somewhere
            times, flags = [], []
            for i, cell in enumerate(cells):
                try:
                    times.append((_fromisoformat(cell) - EPOCH) // MICROSECOND)
                    flags.append(True)
                except (ValueError, TypeError):
                    if cell:
                        aside.add(i)
                    times.append(stamp)
                    flags.append(False)
            dated = flags
        if min(times) < _EARLIEST:
            aside.update(i for i, at in enumerate(times) if at < _EARLIEST)
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
        keep_lines: bool,
    ) -> tuple[ChangeColumns, list[int], list[tuple[int, str]]]:
        """The rows the columns passed, with those set aside read by the exact path."""
        count = len(run.ends)
        passed = [i not in aside for i in range(count)]
        kept = _Columns._make(list(compress(field, passed)) for field in fields)
        fast = iter(_changes(kept))
        changes: list[Change] = []
        lines: list[int] = []
        bad: list[tuple[int, str]] = []
        for i in range(count):
            if passed[i]:
                change = next(fast)
            else:
                row = run.record(i)
                try:
                    change = self._exact(row, stamp)
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

    def _exact(self, row: list[str], stamp: int) -> Change:
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
        country = facts[1] if facts[1] != BY_NUMBER else country_of(recipient)
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
            return Change(normal, int(recipient), opted_out, source, stamp, country, False)
        if at < _EARLIEST:
            raise ValueError(f"updated_at {quote_value(when)} is before the year 1 in UTC")
        return Change(normal, int(recipient), opted_out, source, at, country, True)


def _status_column(cells: Sequence[str], aside: set[int]) -> Sequence[bool]:
    if set(cells).issubset(_STATUSES):
        return list(map(_STATUSES.__getitem__, cells))
    states = list(map(_STATUSES.get, cells))
    aside.update(i for i, state in enumerate(states) if state is None)
    return cast("list[bool]", states)  # those that are None are set aside


def _changes(fields: _Columns) -> ChangeColumns:
    """The changes of rows whose every cell passed (as columns)."""
    return ChangeColumns.taking(
        fields.senders,
        fields.recipients,
        fields.states,
        fields.sources,
        fields.times,
        fields.countries,
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
    facts = prefixes[number[:5]] = prefix_facts(number)
    return number, facts


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
