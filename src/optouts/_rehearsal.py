"""A sync's dry run: the ledger as the real run would leave it, worked out without writing.

The real run records each listed change where the merge rule takes it (``ledger.takes``,
the Python twin of the stores' SQL), confirms the listed states at the source, then sends
each target the states it has not confirmed. The rehearsal reads the ledger's current
states and confirmations, applies the same rule to the pairs the source listed, and plans
the sends from the result, so the plan matches what a real run would send.

What the run would change is kept in a private scratch database (SQLite's temporary file,
deleted on close), not in memory: a first dry run over millions of records then needs
about as much memory as the real run, which holds one page at a time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence

from .ledger import Change, LedgerStore
from .ledger._base import Held, takes

__all__ = ["Rehearsal"]

_PENDING_PAGE = 10_000
_LOOKUP = 10_000

Pair = tuple[str, int]

_SCHEMA = (
    """
    CREATE TABLE changed (
        sender TEXT, recipient INTEGER, opted_out INTEGER, source TEXT, at INTEGER,
        PRIMARY KEY (sender, recipient)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE listed (
        sender TEXT, recipient INTEGER, opted_out INTEGER, PRIMARY KEY (sender, recipient)
    ) WITHOUT ROWID
    """,
)
_CHANGED_AMONG = """
SELECT c.recipient, c.opted_out, c.source, c.at FROM json_each(?2) AS j
CROSS JOIN changed AS c ON c.sender = ?1 AND c.recipient = j.value
"""
_LISTED_AMONG = """
SELECT l.recipient, l.opted_out FROM json_each(?2) AS j
CROSS JOIN listed AS l ON l.sender = ?1 AND l.recipient = j.value
"""
_TOUCHED_AMONG = """
SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') FROM json_each(?1) AS j
WHERE EXISTS (SELECT 1 FROM changed AS c WHERE c.sender = json_extract(j.value, '$[0]')
                                          AND c.recipient = json_extract(j.value, '$[1]'))
   OR (?2 AND EXISTS (SELECT 1 FROM listed AS l WHERE l.sender = json_extract(j.value, '$[0]')
                                                 AND l.recipient = json_extract(j.value, '$[1]')))
"""
_TOUCHED = """
SELECT sender, recipient FROM changed
UNION SELECT sender, recipient FROM listed WHERE ?1
ORDER BY sender, recipient
"""


class Rehearsal:
    """Listed changes taken aside; the pending states of each target planned from them."""

    def __init__(self, store: LedgerStore, *, source: str, keep_listed: bool) -> None:
        self.store = store
        self.source = source
        self.keep_listed = keep_listed
        """Whether the source is also a target, so what it listed must be remembered."""
        self.recorded_out = self.recorded_in = 0
        self._scratch = sqlite3.connect("", isolation_level=None)  # a private temp file
        for statement in _SCHEMA:
            self._scratch.execute(statement)

    def close(self) -> None:
        self._scratch.close()

    def take(self, changes: Sequence[Change]) -> None:
        """One page of listed changes, in the order the real run applies them: opt-outs,
        then opt-ins, each dated before undated (two ``apply`` calls, two statements each)."""
        ordered = [
            c
            for opted_out, dated in ((True, True), (True, False), (False, True), (False, False))
            for c in changes
            if bool(c.opted_out) is opted_out and bool(c.dated) is dated
        ]
        by_sender: dict[str, list[Change]] = {}
        for change in ordered:
            by_sender.setdefault(change.sender, []).append(change)
        for sender, group in by_sender.items():
            recipients = [c.recipient for c in group]
            held = self.store.held(sender, recipients)
            known = self._changed(sender, recipients)
            taken: dict[int, Held] = {}
            for change in group:
                r = change.recipient
                if takes(taken.get(r) or known.get(r) or held.get(r), change):
                    taken[r] = (int(change.opted_out), change.source, change.at)
                    if change.opted_out:
                        self.recorded_out += 1
                    else:
                        self.recorded_in += 1
            self._scratch.executemany(
                "INSERT OR REPLACE INTO changed VALUES (?, ?, ?, ?, ?)",
                [(sender, r, *state) for r, state in taken.items()],
            )
        if self.keep_listed:  # the last listing of a pair is what the source holds
            self._scratch.executemany(
                "INSERT OR REPLACE INTO listed VALUES (?, ?, ?)",
                [(c.sender, c.recipient, int(c.opted_out)) for c in changes],
            )

    def pending(self, target: str) -> Iterator[tuple[str, bool, list[int]]]:
        """Groups (sender, state, recipients) the real run would send ``target``."""
        # The source is told what it listed (a real run confirms it there): only the pairs
        # where the ledger keeps a different state go back to it.
        to_source = self.keep_listed and target == self.source
        after: tuple[int, int] | None = None
        while rows := self.store.pending(target, after=after, limit=_PENDING_PAGE):
            keys = json.dumps([(sender, recipient) for _, sender, recipient, _ in rows])
            touched = set(self._scratch.execute(_TOUCHED_AMONG, (keys, to_source)).fetchall())
            groups: dict[tuple[str, bool], list[int]] = {}
            for _, sender, recipient, opted_out in rows:
                if (sender, recipient) not in touched:
                    groups.setdefault((sender, bool(opted_out)), []).append(recipient)
            for (sender, opted_out), recipients in groups.items():
                yield sender, opted_out, recipients
            after = (rows[-1][0], rows[-1][2])
        yield from self._pending_among_touched(target, to_source)

    def _pending_among_touched(
        self, target: str, to_source: bool
    ) -> Iterator[tuple[str, bool, list[int]]]:
        """Of the pairs the run touches: those whose final state the target does not hold."""
        pairs = self._scratch.execute(_TOUCHED, (to_source,))
        while batch := pairs.fetchmany(_LOOKUP):
            by_sender: dict[str, list[int]] = {}
            for sender, recipient in batch:
                by_sender.setdefault(sender, []).append(recipient)
            for sender, recipients in by_sender.items():
                yield from self._pending_of(target, sender, recipients, to_source)

    def _pending_of(
        self, target: str, sender: str, recipients: list[int], to_source: bool
    ) -> Iterator[tuple[str, bool, list[int]]]:
        held = self.store.held(sender, recipients)
        changed = self._changed(sender, recipients)
        told: dict[int, int] = (
            self._listed(sender, recipients)
            if to_source
            else self.store.confirmed(target, sender, recipients)
        )
        groups: dict[bool, list[int]] = {}
        for recipient in recipients:
            state = changed.get(recipient) or held.get(recipient)
            if state is None:
                continue
            final, confirmed = state[0], told.get(recipient)
            if (confirmed is None and final == 1) or (confirmed is not None and confirmed != final):
                groups.setdefault(bool(final), []).append(recipient)
        for opted_out, group in groups.items():
            yield sender, opted_out, group

    def _changed(self, sender: str, recipients: Sequence[int]) -> dict[int, Held]:
        rows = self._scratch.execute(_CHANGED_AMONG, (sender, json.dumps(list(recipients))))
        return {r: (o, src, at) for r, o, src, at in rows}

    def _listed(self, sender: str, recipients: Sequence[int]) -> dict[int, int]:
        rows = self._scratch.execute(_LISTED_AMONG, (sender, json.dumps(list(recipients))))
        return dict(rows.fetchall())
