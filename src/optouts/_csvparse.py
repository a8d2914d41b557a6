"""CSV rows to ledger changes, validated line by line, fast enough for millions of rows.

An import spends most of its Python time here, so a file is read a block of lines at a
time and checked column by column: each step is one pass of a C function over a block or a
column (``str.split``, ``map``, ``str.join``), not bytecode per row.

A block with no quote character in it (nor a NUL, a lone carriage return or a line as long
as the csv module's field limit) is cut with ``str.split``: each line is a record and its
cells are what lies between commas, which is all the csv module would read in it, and the
columns are slices of the cells. Any other block is read by ``csv.reader``, a record at a
time (a quoted cell may run on past the block's last line).

Every line of the file is part of a row taken, a blank line, or part of a bad record
reported at the line it starts on. The rule that resynchronises after a stray quote: a
quoted cell may span lines, but a record that spans lines must close within ``_SPAN``
(100) lines and be well formed (each quote that closes a cell followed by a comma or the
line's end, as the csv module's strict reading wants). A record that does not, that is
still open at the end of the input, or that the csv module cannot read (a cell over its
field limit) is reported as bad at its first line ("unclosed quote (...)" when it spans
lines), and reading resumes at its second line, so the rows after an unclosed quote are
read as rows. What the rule cannot tell from a real cell: a quote left open and closed,
within 100 lines, by a later quote that ends a line or comes before a comma; the lines
between are that one record's (mostly short, so reported). After a bad record csv reads
on a few lines at a time, growing back to whole blocks: a file of bad records costs a few
readings of each line, not one of the rest of its block a record.

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
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from itertools import chain, compress, islice, repeat
from operator import attrgetter, floordiv, itemgetter, sub
from typing import Any, NamedTuple, cast

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
_SPAN = 100
"""The most lines a record may span: a quoted cell still open after them never closed."""
_BREAK = ("\n",)
"""A line read after a block's: a blank record, unless the block ends in a quoted cell."""
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
    """Position of each known column; a header without the required ones, or naming one
    twice, is refused."""
    names = [name.strip().lower() for name in header]
    missing = [name for name in _REQUIRED if name not in names]
    if missing:
        raise ValueError(
            f"the header names no {', '.join(missing)} column; expected {','.join(HEADER)}"
        )
    for name in HEADER:  # which of two would be meant is a guess: refused, not guessed
        places = [at + 1 for at, named in enumerate(names) if named == name]
        if len(places) > 1:
            where = ", ".join(map(str, places[:-1])) + f" and {places[-1]}"
            raise ValueError(f"the header names the {name} column twice (columns {where})")
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
    """Consecutive records, and the line each starts on (a cell may span lines)."""

    records: list[list[str]]
    """Read by csv: each record's cells (a short one has fewer)."""
    cells: list[list[str]] | None
    """Cut by ``str.split`` instead: the first cells of every record, a column each."""
    starts: Sequence[int]
    """The line each record starts on."""
    shortest: int
    """The fewest cells a record of the run has."""
    counted: int
    """Rows it accounts for: records that are not blank, and those it set aside as
    unreadable."""

    def record(self, index: int) -> list[str]:
        """The cells of record ``index``, as the exact path reads them."""
        if self.cells is None:
            return self.records[index]
        return [column[index] for column in self.cells]


class _Bad(NamedTuple):
    """Where the records of a stretch of lines stop being read as they are."""

    kept: int
    """Records before it, which stand."""
    start: int
    """The line (of the stretch, from 1) its record starts on; 0 when none is bad."""
    reason: str | None
    """Why the record is bad; None for one that may close on lines not read yet."""


_FINE = _Bad(-1, 0, None)


class _Records:
    """The records of a file's lines in runs, each record with the line it starts on.

    A block that ``_split`` cannot cut is read by ``csv.reader``, by C code alone: ``zip``
    pairs each record with the reader's line count just after it, and a last line that is
    only a line break, after the block's, shows whether its last record closed (then that
    line is a blank record of its own) or is still in a quoted cell (then it swallows it).

    Resynchronising, so that one bad record never takes its neighbours with it: a record
    that spans lines must close within ``_SPAN`` lines and be well formed (every quote
    that ends a quoted cell followed by a comma or the line's end: the csv module's strict
    reading); a record that does not, or that the csv module cannot read (a cell over its
    size limit, a NUL before Python 3.11), is reported at the line it starts on and reading
    resumes at the line after that one. A record still open where a reader's lines end is
    read again with twice as many (at the end of the input, it never closed).
    """

    def __init__(self, lines: Iterator[str], after: int, width: int) -> None:
        self._lines = lines
        self._width = width
        self._end = after
        """The line that the record last taken (or the header) ends on."""
        self._pending: list[str] = []
        """Lines read from ``lines`` and not taken yet: they follow line ``_end``."""
        self._more = True
        """Whether ``lines`` may hold more."""
        self._streak = 0
        self._by_csv = 0
        """Blocks the csv module reads before ``_split`` tries again."""
        self.done = False

    def take(self, size: int, unreadable: list[tuple[int, str]]) -> _Run:
        """Up to ``size`` records and unreadable ones (those go in ``unreadable``, with
        their lines and reasons)."""
        block = self._further(size)
        before = self._end
        if not block:
            self.done = True
            return _Run([], None, (), self._width, 0)
        if not self._by_csv:
            cells = _split(block, self._width)
            if cells is not None:
                self._streak = 0
                self._end += len(block)
                self.done = not (self._more or self._pending)
                starts = range(before + 1, self._end + 1)
                return _Run([], cells, starts, self._width, len(block))
            # A file that needs csv in one block mostly does in the next (quoted cells):
            # csv reads on for more blocks, each time twice as many, before the next try.
            self._streak = min(2 * self._streak, _BY_CSV) if self._streak else 1
            self._by_csv = self._streak
        self._by_csv -= 1
        run = self._read(block, size, unreadable)
        self.done = not (self._more or self._pending)
        return run

    def _further(self, count: int) -> list[str]:
        """The next ``count`` lines (fewer at the end): those set back, then new ones."""
        lines = self._pending[:count]
        del self._pending[:count]
        if len(lines) < count and self._more:
            wanted = count - len(lines)
            read = list(islice(self._lines, wanted))
            self._more = len(read) == wanted
            lines = lines + read if lines else read
        return lines

    def _read(self, block: list[str], size: int, unreadable: list[tuple[int, str]]) -> _Run:
        """The block's records by csv: ``size`` at most (unreadable ones too), those after
        them set back; a record still open at its end is read on past it.

        One reader takes the whole block, until a record is bad: what it read after that
        record is read again from the record's second line, so the next reader takes two
        lines, and each one after it twice as many as the last (so a file of bad records
        costs a few readings of each line, not one of the rest of its block a record)."""
        records: list[list[str]] = []
        starts: list[int] = []
        failed = 0
        at = 0
        """Lines of the block taken."""
        span = len(block)
        """Lines the next reader takes."""
        while at < len(block) and len(records) + failed < size:
            lines = block[at : at + span] if at or span < len(block) else block
            final = at + len(lines) == len(block) and not (self._more or self._pending)
            base = self._end + at
            got, ends, failure = _csv_records(lines, size - len(records) - failed)
            still_open = False
            if ends and ends[-1] > len(lines):  # the record read the line after the lines
                if (ends[-2] if len(ends) > 1 else 0) == len(lines):
                    del got[-1], ends[-1]  # that line alone: a blank record, not the file's
                else:
                    still_open = True
            if still_open or failure is not None or (ends and ends[-1] != len(ends)):
                # A record spans lines (each takes one at least), or csv failed on one.
                bad = self._bad(lines, base, ends, failure, still_open=still_open, final=final)
            else:
                bad = _FINE
            kept = len(ends) if bad is _FINE else bad.kept
            records.extend(got[:kept])
            starts.extend(map((base + 1).__add__, chain((0,), ends[: kept - 1])) if kept else ())
            if bad is _FINE:
                if not kept:
                    break
                at += ends[kept - 1]
                span *= 2
            elif bad.reason is None:  # still open where the lines end: read on, with more
                at += bad.start - 1
                span = 2 * (len(lines) - bad.start + 1)
                if at + span > len(block):
                    block = block + self._further(at + span - len(block))
            else:
                unreadable.append((base + bad.start, f"not readable as CSV: {bad.reason}"))
                failed += 1
                at += bad.start  # resume at its second line
                span = 2
        self._end += at
        if at < len(block):
            self._pending[:0] = block[at:]
        shortest = min(map(len, records), default=self._width)
        counted = len(records) + failed
        if shortest < self._width:
            counted -= sum(1 for record in records if _blank(record))
        return _Run(records, None, starts, shortest, counted)

    def _bad(
        self,
        lines: list[str],
        base: int,
        ends: list[int],
        failure: tuple[str, int] | None,
        *,
        still_open: bool,
        final: bool,
    ) -> _Bad:
        """The first record of ``lines`` (which follow line ``base``) that is bad, or
        still open at their end (the last one, if ``still_open``; ``final`` if no line
        follows them): of those spanning lines, and the one csv failed on."""
        count = len(ends)
        starts = [1, *map(_NEXT, ends[:-1])]
        if still_open:
            ends = [*ends[:-1], len(lines)]  # its lines so far
        spans = list(map(sub, ends, starts))
        """Lines after its first of each record: 0 for a record on one line."""
        found = count - 1 if still_open else count
        """The first record that is over long or still open; ``count`` for none."""
        if max(spans, default=0) >= _SPAN:
            found = min(found, next(compress(range(count), map(_SPAN.__le__, spans))))
        ill = _ill_formed(lines, ends[found - 1] if found else 0, ends, spans)
        if ill is not None and ill[0] < found:
            index, why, line = ill
            return _Bad(index, starts[index], f"unclosed quote (line {base + line}: {why})")
        if found < count:
            start = starts[found]
            if spans[found] >= _SPAN:
                return _Bad(found, start, f"unclosed quote (not closed within {_SPAN} lines)")
            if not final:  # the record still open: it may close on the lines after
                return _Bad(found, start, None)
            return _Bad(found, start, "unclosed quote (still open at the end of the file)")
        if failure is None:
            return _FINE
        why, line = failure
        start = (ends[-1] if ends else 0) + 1
        if line - start >= _SPAN:
            return _Bad(count, start, f"unclosed quote (not closed within {_SPAN} lines)")
        if line > start:
            return _Bad(count, start, f"unclosed quote (line {base + line}: {why})")
        return _Bad(count, start, why)


def _ill_formed(
    lines: list[str], upto: int, ends: list[int], spans: list[int]
) -> tuple[int, str, int] | None:
    """The first record spanning lines of ``lines[:upto]`` that the csv module's strict
    reading refuses (a quote that closes a cell followed by neither a comma nor the line's
    end): its index, why, and the line (from 1). A record on one line may be so, as ever.

    One strict reading of them all, in C; where it stops at a record on one line, it
    starts again after that record."""
    begin = 0
    while begin < upto:
        reader = csv.reader(islice(lines, begin, upto), strict=True)
        try:
            deque(reader, maxlen=0)
        except csv.Error as error:
            line = begin + reader.line_num
            index = bisect_left(ends, line)
            if spans[index]:
                return index, str(error), line
            begin = ends[index]
        else:
            return None
    return None


def _csv_records(
    lines: list[str], most: int
) -> tuple[list[list[str]], list[int], tuple[str, int] | None]:
    """Up to ``most`` records of ``lines`` read by csv, and the line each ends on (from 1;
    one past the last for a record still open there); and, if csv stopped at a record it
    cannot read, why and on which line."""
    reader = csv.reader(chain(lines, _BREAK))
    pairs = zip(reader, map(_LINE_NUM, repeat(reader)), strict=False)
    # Record, line count, record, line count...: flattened, zip reuses its one tuple.
    flat: list[list[str] | int] = []
    failure = None
    try:
        flat.extend(islice(chain.from_iterable(pairs), 2 * most))
    except csv.Error as error:
        failure = (str(error), min(reader.line_num, len(lines)))
    return cast("list[list[str]]", flat[0::2]), cast("list[int]", flat[1::2]), failure


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
        count = len(run.starts)
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
            return _changes(fields), list(run.starts) if keep_lines else [], []
        return self._with_exact(run, aside, fields, stamp, keep_lines)

    def _sender_column(self, cells: Sequence[str], aside: set[int]) -> Sequence[str]:
        known = self._senders
        distinct = set(cells)
        for cell in distinct.difference(known):
            try:
                known[cell] = _sender(cell, self._region)
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
        count = len(run.starts)
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
                    bad.append((run.starts[i], str(exc)))
                    continue
                except IndexError:
                    if not _blank(row):
                        bad.append((run.starts[i], f"{len(row)} fields, expected {self.width}"))
                    continue
            changes.append(change)
            if keep_lines:
                lines.append(run.starts[i])
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
            normal = self._senders[sender] = _sender(sender, self._region)
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
            _check_text(source, "source")
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
        _check_text(cell, "source")
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


def _check_text(cell: str, column: str) -> None:
    """Refuse a cell holding bytes that were not UTF-8 (read with ``surrogateescape``)."""
    try:
        cell.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{column} {quote_value(cell)} is not valid UTF-8") from None


def _sender(cell: str, region: str | None) -> str:
    """A sender cell as the ledger records it. Bytes that were not UTF-8 are refused as
    such, as in a source, even where phonenumbers would read past them."""
    if not cell.isascii():
        _check_text(cell, "sender")
    return normalize_sender(unguarded(cell), region)


def _status(cell: str) -> bool:
    state = _STATUSES.get(unguarded(cell).strip().lower())
    if state is None:
        raise ValueError(f"status {quote_value(cell)} is not opted-out or opted-in")
    return state


def _recipient(value: str, region: str | None, prefixes: dict[str, Facts]) -> tuple[str, Facts]:
    """The exact path: any format phonenumbers reads; learns the prefix for the fast path.
    A cell holding bytes that were not UTF-8 is refused first: phonenumbers would skip a
    stray byte and read a number out of a damaged line."""
    if not value.isascii():
        _check_text(value, "recipient")
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
