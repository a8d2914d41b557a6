"""Received changes into a SQLite ledger: a batch of 100,000 in one statement.

An import parses in one thread while SQLite merges the previous batch in another, without
the GIL. Each statement the merging thread runs hands it back to Python, where it waits
for the parsing thread to let go of the GIL (up to the switch interval, 5 ms, each time),
so a batch is one statement, not thousands of rows of bound parameters.

That statement reads the batch from one BLOB of fixed-width decimal text, a row of (kind,
recipient, time) every ``width`` bytes: ``substr`` of a BLOB is a pointer, ``CAST`` parses
the digits, and ``json_each`` over ``[0,0,…]`` counts the rows. That is half of what a
JSON array of arrays costs SQLite (a parse of the array, then of each row again), and the
text is put together by a few joins rather than a formatting call per row.

Rows are sorted here by recipient (their digits), so a batch walks the B-tree in order and
each page is read and dirtied once: random order costs several times more on a large
ledger, and Python sorts a key a row faster than SQLite sorts whole rows. The sort is
stable, so the changes of one pair keep their order. The few kinds (sender, state,
country, source) go in a temporary table, by code.

The upsert's WHERE is the merge rule that ``takes`` writes in Python; the schema's
triggers write a history row for each insert and each update, so the rows the statement
changed are the changes applied.
"""

from __future__ import annotations

import itertools
import operator
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    SELECT CAST(substr(?3, j.key * ?4 + 1, ?5) AS INTEGER) AS code,
           CAST(substr(?3, j.key * ?4 + 1 + ?5, ?6) AS INTEGER) AS recipient,
           CAST(substr(?3, j.key * ?4 + 1 + ?5 + ?6, ?4 - ?5 - ?6) AS INTEGER) AS at
    FROM json_each(?2) AS j
) AS r
CROSS JOIN temp.change_codes AS c ON c.code = r.code
WHERE true
ON CONFLICT (sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, source = excluded.source, updated_at = excluded.updated_at
WHERE excluded.updated_at >= optouts.updated_at
  AND (optouts.opted_out IS NOT excluded.opted_out
       OR (?1 AND excluded.opted_out = 1 AND excluded.updated_at > optouts.updated_at))
  AND (?1 OR excluded.opted_out = 1 OR optouts.source = excluded.source)
"""
"""?1 whether the changes are dated, ?2 ``[0,0,…]`` a row, ?3 the rows, ?4 a row's width,
?5 and ?6 those of its kind and recipient (the time takes the rest). Rows go in in the
order of the text: ``json_each`` is the outer loop."""

Kind = tuple[str, bool, "str | None", str]
"""What many changes of a batch share: sender, opted_out, country, source."""


class Rows(NamedTuple):
    """Changes as the merge statement reads them."""

    rows: int
    text: bytes
    widths: tuple[int, int, int]
    """Of a row's kind, recipient and time, in bytes."""


class Batch(NamedTuple):
    """A batch of changes as the merge statements read them: the kinds by code, then the
    dated changes and the undated ones (dated first, as ``apply`` promises)."""

    kinds: dict[Kind, int]
    dated: Rows | None
    undated: Rows | None

    @classmethod
    def of(cls, changes: Sequence[Change]) -> Batch:
        columns = ChangeColumns.of(changes)
        kinds: dict[Kind, int] = {}
        shared = zip(
            columns.senders, columns.opted_out, columns.countries, columns.sources, strict=True
        )
        codes = list(map(kinds.setdefault, shared, itertools.count()))  # a kind's first row
        everyone = range(len(columns))
        dated: Iterable[int] = everyone
        undated: Iterable[int] = ()
        if not all(columns.dated):
            dated = itertools.compress(everyone, columns.dated)
            undated = itertools.compress(everyone, map(operator.not_, columns.dated))
        return cls(kinds, _rows(dated, codes, columns), _rows(undated, codes, columns))


def _rows(which: Iterable[int], codes: Sequence[int], columns: ChangeColumns) -> Rows | None:
    """Rows ``which`` of ``columns``, sorted by recipient, as fixed-width text."""
    digits, times = columns.recipients, columns.times
    order = sorted(which, key=digits.__getitem__)  # as numbers, for numbers of one length
    if not order:
        return None
    widths = (
        len(str(len(columns))),
        max(map(len, digits)),
        max(len(str(min(times))), len(str(max(times)))),
    )
    code_texts = {code: str(code).rjust(widths[0]) for code in set(codes)}
    pieces = zip(
        map(code_texts.__getitem__, map(codes.__getitem__, order)),
        map(str.rjust, map(digits.__getitem__, order), itertools.repeat(widths[1])),
        map(f"%{widths[2]}d".__mod__, map(times.__getitem__, order)),
        strict=False,
    )
    text = "".join(itertools.chain.from_iterable(pieces)).encode("ascii")
    return Rows(len(order), text, widths)


def merge(db: sqlite3.Connection, batch: Batch, sender_ids: Mapping[str, int]) -> int:
    """Merge ``batch`` inside the caller's transaction; how many changes were applied."""
    db.execute(_KINDS_TABLE)
    for statement, parameters in _kind_statements(batch.kinds, sender_ids):
        db.execute(statement, parameters)
    applied = 0
    for dated, rows in ((1, batch.dated), (0, batch.undated)):
        if rows is not None:
            counter = "[0" + ",0" * (rows.rows - 1) + "]"
            kind, recipient, time = rows.widths
            width = kind + recipient + time
            read = (dated, counter, rows.text, width, kind, recipient)
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
