"""Received changes into a SQLite ledger: a batch of 150,000 in one statement.

An import parses in one thread while SQLite merges the previous batch in another, without
the GIL. Each statement the merging thread runs hands it back to Python, where it waits
for the parsing thread to let go of the GIL (up to the switch interval, 5 ms, each time),
so a batch is one statement, not thousands of rows of bound parameters.

That statement reads the batch from one BLOB of fixed-width text, a row of (recipient,
kind, time) every ``width`` bytes: ``substr`` of a BLOB is a pointer, ``CAST`` reads the
number there (spaces, then an optional sign, then digits: a recipient goes in as its E.164
text), and ``json_each`` over ``[0,0,…]`` counts the rows. That is half of what a JSON
array of arrays costs SQLite (a parse of the array, then of each row again), and the text
is put together by a few joins, with no formatting call a row where the values of a field
are all as wide.

Rows are sorted here by recipient, so a batch walks the B-tree in order and each page is
read and dirtied once: random order costs several times more on a large ledger, and
Python sorts a row's text faster than SQLite sorts whole rows. The text is made in the
order the changes came (each field read from its column in order: in sorted order, each
value would be a pointer into a different place in memory), then sorted; changes of one
pair keep their order. The few kinds (sender, state, country, source) go in a temporary
table, by code.

The upsert's WHERE is the merge rule that ``takes`` writes in Python; the schema's
triggers write a history row for each insert and each update, so the rows the statement
changed are the changes applied.
"""

from __future__ import annotations

import itertools
import operator
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import itemgetter
from typing import NamedTuple

from ._base import Change
from ._columns import ChangeColumns

__all__ = ["Batch", "merge"]

_KINDS_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS change_codes (
    code INTEGER PRIMARY KEY, sender_id INTEGER, opted_out INTEGER, country TEXT, source TEXT
)
"""
_KINDS_ROWS = 128
"""Kinds a statement fills in at most (five parameters each, within SQLite's oldest limit
of 999): a batch of few kinds takes one statement."""
_MERGE = """
INSERT INTO optouts (sender_id, recipient, opted_out, country, source, created_at, updated_at)
SELECT c.sender_id, r.recipient, c.opted_out, c.country, c.source, r.at, r.at
FROM (
    SELECT CAST(substr(?3, j.key * ?4 + 1, ?5) AS INTEGER) AS recipient,
           CAST(substr(?3, j.key * ?4 + ?5 + 1, ?6) AS INTEGER) AS code,
           CAST(substr(?3, j.key * ?4 + ?5 + ?6 + 1, ?4 - ?5 - ?6) AS INTEGER) AS at
    FROM json_each(?2) AS j
) AS r
CROSS JOIN temp.change_codes AS c ON c.code = r.code
WHERE true
ON CONFLICT (sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, source = excluded.source, updated_at = excluded.updated_at
WHERE (excluded.updated_at > optouts.updated_at
       OR (excluded.opted_out = 1 AND excluded.updated_at = optouts.updated_at))
  AND (optouts.opted_out IS NOT excluded.opted_out
       OR (?1 AND excluded.opted_out = 1 AND excluded.updated_at > optouts.updated_at))
  AND (?1 OR excluded.opted_out = 1 OR optouts.source = excluded.source)
"""
"""?1 whether the changes are dated, ?2 ``[0,0,…]`` a row, ?3 the rows, ?4 a row's width,
?5 and ?6 those of its recipient and code (the time takes the rest). Rows go in in the
order of the text: ``json_each`` is the outer loop."""

Kind = tuple[str, bool, "str | None", str]
"""What many changes of a batch share: sender, opted_out, country, source."""


class Rows(NamedTuple):
    """Changes as the merge statement reads them."""

    rows: int
    text: bytes
    widths: tuple[int, int, int]
    """Of a row, and of its recipient and its code, in bytes."""


class Batch(NamedTuple):
    """A batch of changes as the merge statements read them: the kinds by code, then the
    dated changes and the undated ones (dated first, as ``apply`` promises)."""

    kinds: dict[Kind, int]
    dated: Rows | None
    undated: Rows | None

    @classmethod
    def of(cls, changes: Sequence[Change]) -> Batch:
        """Each change becomes a line of text, recipient, code, time, in the order of
        ``changes``; the lines are sorted after, by recipient."""
        columns = ChangeColumns.of(changes)
        if not columns:
            return cls({}, None, None)
        first: dict[Kind, int] = {}
        shared = zip(
            columns.senders, columns.opted_out, columns.countries, columns.sources, strict=True
        )
        rows_first = list(map(first.setdefault, shared, itertools.count()))  # a kind's first row
        kinds = {kind: code for code, kind in enumerate(first)}
        width = len(str(len(kinds) - 1))
        code_texts = {row: str(kinds[kind]).rjust(width) for kind, row in first.items()}
        numbers, number_width = _aligned(columns.recipients)
        times, time_width = _time_texts(columns.times)
        codes = map(code_texts.__getitem__, rows_first)
        lines = list(map("".join, zip(numbers, codes, times, strict=True)))
        widths = (number_width + width + time_width, number_width, width)
        unique = len(set(columns.recipients)) == len(columns)
        if all(columns.dated):
            return cls(kinds, _rows(lines, widths, unique), None)
        dated = list(itertools.compress(lines, columns.dated))
        undated = list(itertools.compress(lines, map(operator.not_, columns.dated)))
        return cls(kinds, _rows(dated, widths, unique), _rows(undated, widths, unique))


def _rows(lines: list[str], widths: tuple[int, int, int], unique: bool) -> Rows | None:
    """``lines`` sorted by recipient, as one text. The recipients are right-aligned, so
    they sort as the numbers they are. Where a recipient has several lines, the sort is by
    recipient alone, and stable: the changes of a pair keep their order."""
    if not lines:
        return None
    if unique:
        lines.sort()
    else:
        lines.sort(key=itemgetter(slice(0, widths[1])))
    return Rows(len(lines), "".join(lines).encode("ascii"), widths)


def _aligned(texts: Sequence[str]) -> tuple[Iterable[str], int]:
    """``texts``, each right-aligned to the widest (few differ, if any), and that width."""
    lengths = set(map(len, texts))
    widest = max(lengths)
    if len(lengths) > 1:
        return map(str.rjust, texts, repeat(widest)), widest
    return texts, widest


def _time_texts(times: Sequence[int]) -> tuple[Iterable[str], int]:
    """``times`` in decimal, right-aligned; ``str`` alone when all have as many digits."""
    low, high = str(min(times)), str(max(times))
    width = max(len(low), len(high))
    if low[0] != "-" and len(low) == width:
        return map(str, times), width
    return map(f"%{width}d".__mod__, times), width


def merge(db: sqlite3.Connection, batch: Batch, sender_ids: Mapping[str, int]) -> int:
    """Merge ``batch`` inside the caller's transaction; how many changes were applied."""
    db.execute(_KINDS_TABLE)
    for statement, parameters in _kind_statements(batch.kinds, sender_ids):
        db.execute(statement, parameters)
    applied = 0
    for dated, rows in ((1, batch.dated), (0, batch.undated)):
        if rows is not None:
            counter = "[0" + ",0" * (rows.rows - 1) + "]"
            read = (dated, counter, rows.text, *rows.widths)
            applied += db.execute(_MERGE, read).rowcount
    return applied


def _kind_statements(
    kinds: Mapping[Kind, int], sender_ids: Mapping[str, int]
) -> Iterator[tuple[str, list[object]]]:
    """Fill the kinds in (a code an earlier batch used is replaced)."""
    rows = [
        (code, sender_ids[sender], int(opted_out), country, source)
        for (sender, opted_out, country, source), code in kinds.items()
    ]
    for start in range(0, len(rows), _KINDS_ROWS):
        some = rows[start : start + _KINDS_ROWS]
        values = ",".join(["(?,?,?,?,?)"] * len(some))
        yield (
            f"INSERT OR REPLACE INTO temp.change_codes VALUES {values}",
            list(itertools.chain.from_iterable(some)),
        )
