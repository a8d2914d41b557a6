"""A sync's dry run: the ledger as the real run would leave it, worked out without writing.

The real run records each listed change where the merge rule takes it (``ledger.takes``,
the Python twin of the stores' SQL), confirms the listed states at the source, then sends
each target the states it has not confirmed. The rehearsal reads the ledger's current
states and confirmations, applies the same rule in memory to the pairs the source listed,
and plans the sends from the result, so the plan matches what a real run would send.
Memory grows with the pairs whose state would change, about 300 bytes each (and, when the
source is also a target, with every listed pair), where a real run holds one page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from .ledger import Change, LedgerStore
from .ledger._base import Held, takes

__all__ = ["Rehearsal"]

_PENDING_PAGE = 10_000
_LOOKUP = 10_000

Pair = tuple[str, int]


class Rehearsal:
    """Listed changes taken in memory; the pending states of each target planned from them."""

    def __init__(self, store: LedgerStore, *, source: str, keep_listed: bool) -> None:
        self.store = store
        self.source = source
        self.changed: dict[Pair, Held] = {}
        """Pairs whose held state the run would change, and to what."""
        self.listed: dict[Pair, bool] | None = {} if keep_listed else None
        """What the source listed per pair (kept only when the source is also a target)."""
        self.recorded_out = self.recorded_in = 0

    def take(self, changes: Sequence[Change]) -> None:
        """One page of listed changes, in the order the real run applies them: opt-outs,
        then opt-ins, each dated before undated (two ``apply`` calls, two statements each)."""
        ordered = [
            c
            for opted_out, dated in ((True, True), (True, False), (False, True), (False, False))
            for c in changes
            if c.opted_out is opted_out and bool(c.dated) is dated
        ]
        by_sender: dict[str, list[Change]] = {}
        for change in ordered:
            by_sender.setdefault(change.sender, []).append(change)
        for sender, group in by_sender.items():
            held = self.store.held(sender, [c.recipient for c in group])
            for change in group:
                pair = (sender, change.recipient)
                if takes(self.changed.get(pair) or held.get(change.recipient), change):
                    self.changed[pair] = (int(change.opted_out), change.source, change.at)
                    if change.opted_out:
                        self.recorded_out += 1
                    else:
                        self.recorded_in += 1
        if self.listed is not None:
            for change in changes:
                self.listed[(change.sender, change.recipient)] = change.opted_out

    def pending(self, target: str) -> Iterator[tuple[str, bool, list[int]]]:
        """Groups (sender, state, recipients) the real run would send ``target``."""
        # The source is told what it listed (a real run confirms it there): only the pairs
        # where the ledger keeps a different state go back to it.
        listed = self.listed if target == self.source else None
        touched: set[Pair] | dict[Pair, Held] = (
            self.changed if listed is None else set(self.changed) | set(listed)
        )
        after: tuple[int, int] | None = None
        while rows := self.store.pending(target, after=after, limit=_PENDING_PAGE):
            groups: dict[tuple[str, bool], list[int]] = {}
            for _, sender, recipient, opted_out in rows:
                pair = (sender, recipient)
                if pair not in touched:
                    groups.setdefault((sender, bool(opted_out)), []).append(recipient)
            for (sender, opted_out), recipients in groups.items():
                yield sender, opted_out, recipients
            after = (rows[-1][0], rows[-1][2])
        yield from self._pending_among(touched, target, listed)

    def _pending_among(
        self, pairs: Iterable[Pair], target: str, listed: dict[Pair, bool] | None
    ) -> Iterator[tuple[str, bool, list[int]]]:
        """Of the pairs the run touches: those whose final state the target does not hold."""
        by_sender: dict[str, list[int]] = {}
        for sender, recipient in pairs:
            by_sender.setdefault(sender, []).append(recipient)
        for sender, recipients in by_sender.items():
            for start in range(0, len(recipients), _LOOKUP):
                part = sorted(recipients[start : start + _LOOKUP])
                held = self.store.held(sender, part)
                confirmed: dict[int, int] = (
                    {r: int(listed[(sender, r)]) for r in part}
                    if listed is not None
                    else self.store.confirmed(target, sender, part)
                )
                groups: dict[bool, list[int]] = {}
                for recipient in part:
                    state = self.changed.get((sender, recipient)) or held.get(recipient)
                    if state is None:
                        continue
                    final = state[0]
                    told = confirmed.get(recipient)
                    if (told is None and final == 1) or (told is not None and told != final):
                        groups.setdefault(bool(final), []).append(recipient)
                for opted_out, group in groups.items():
                    yield sender, opted_out, group
