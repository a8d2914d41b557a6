"""Turn what a caller passed into provider-sized batches, and the answers back into input order.

Everything here is pure: no I/O, so the sync and async clients share it whole.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, cast

import attrs
import httpx

from ._errors import InvalidNumber
from ._models import Outcome, RecipientResult, Row
from ._numbers import all_e164, e164_flags, is_e164, normalize

if TYPE_CHECKING:
    from ._http import Stats

__all__ = ["Answered", "Batch", "failed", "rows_for", "windows"]

Answered = tuple[list[Row], "Stats"]
"""A chunk's result rows, one per recipient in the chunk's order, and what getting them cost."""

_NO_ANSWER = Outcome.failure("the provider returned no result for this recipient")
_ALL_STR = frozenset({str})


@attrs.define
class Batch:
    """One window of input: its normalised recipients, split into chunks for the provider."""

    positions: list[str | RecipientResult]
    """Per input position: the E.164 number to ask about, or the failed result of bad input."""
    unique: list[str]
    """Valid recipients, each once, in first-seen order."""
    chunk_size: int
    _clean: bool = attrs.field(default=True, init=False)
    """Whether every position is a number (no input failed), so rows may need no lookup."""
    _normalized: dict[str, str | RecipientResult] = attrs.field(factory=dict, init=False)
    """What input outside the fast path became, so a repeated one is normalised once."""

    @classmethod
    def prepare(
        cls, recipients: Iterable[object], chunk_size: int, default_region: str | None
    ) -> Batch:
        """Normalise every recipient; invalid ones become failed results, duplicates one entry."""
        batch = cls([], [], chunk_size)
        batch.extend(recipients, default_region)
        return batch.seal()

    def extend(self, recipients: Iterable[object], default_region: str | None) -> None:
        """Normalise more input into this window (an async client does it in slices).

        Strings already in E.164 are checked all at once (``all_e164``) and kept as they
        are; only the others go through phonenumbers, each distinct one once per window.
        """
        items = recipients if type(recipients) is list else list(recipients)
        if set(map(type, items)) <= _ALL_STR:
            if all_e164(cast("list[str]", items)):
                self.positions.extend(cast("list[str]", items))
                return
            canonical = e164_flags(cast("list[str]", items))
        else:
            canonical = [type(raw) is str and is_e164(raw) for raw in items]
        append = self.positions.append
        for raw, fine in zip(items, canonical, strict=True):
            append(cast("str", raw) if fine else self._normalize(raw, default_region))

    def _normalize(self, raw: object, default_region: str | None) -> str | RecipientResult:
        known = self._normalized.get(raw) if type(raw) is str else None
        if known is None:
            try:
                known = normalize(raw, default_region)
            except InvalidNumber as exc:
                known = RecipientResult(str(raw), ok=False, error=exc.reason)
            if type(raw) is str:
                self._normalized[raw] = known
        if type(known) is not str:
            self._clean = False
        return known

    def seal(self) -> Batch:
        """Done extending: list each valid recipient once, in first-seen order."""
        valid = (
            cast("list[str]", self.positions)
            if self._clean
            else [p for p in self.positions if isinstance(p, str)]
        )
        # a set is the cheaper test for the common case of no repeats; a dict keeps order
        self.unique = valid[:] if len(set(valid)) == len(valid) else list(dict.fromkeys(valid))
        self._normalized = {}
        return self

    def chunks(self) -> list[Sequence[str]]:
        size = self.chunk_size
        return [self.unique[i : i + size] for i in range(0, len(self.unique), size)]

    def assemble(self, answered: Iterable[list[Row]]) -> list[Row]:
        """One row per input position, from the rows of each chunk (in chunk order).

        When no input failed and none repeated, the positions are the chunks laid end to
        end, and so are the rows; otherwise each position looks its row up.
        """
        rows = list(itertools.chain.from_iterable(answered))
        if self._clean and len(self.unique) == len(self.positions):
            return rows
        by_recipient = dict(zip(self.unique, rows, strict=True))
        return [
            position.as_row() if isinstance(position, RecipientResult) else by_recipient[position]
            for position in self.positions
        ]


def rows_for(chunk: Sequence[str], results: Mapping[str, Outcome]) -> list[Row]:
    """A chunk's answers as result rows, in the chunk's order; a recipient the provider
    skipped fails, never passes."""
    if len(results) == len(chunk) and list(results) == chunk:  # answered in order: no lookups
        pairs: Iterable[tuple[str, Outcome]] = results.items()
    else:
        pairs = zip(chunk, map(results.get, chunk, itertools.repeat(_NO_ANSWER)), strict=True)
    return [(r, o.ok, o.opted_out, o.error, o.status_code) for r, o in pairs]


def windows(items: Iterable[object], size: int) -> Iterator[list[object]]:
    """Consecutive lists of at most ``size`` items, so an endless input never sits in memory."""
    if isinstance(items, (str, bytes)):
        raise TypeError("recipients must be an iterable of numbers, not a single string")
    iterator = iter(items)
    while window := list(itertools.islice(iterator, size)):
        yield window


def failed(recipients: Sequence[str], error: Exception) -> dict[str, Outcome]:
    """The same failure for every recipient of a chunk whose request could not be completed."""
    outcome = Outcome.failure(_reason(error), getattr(error, "status_code", None))
    return dict.fromkeys(recipients, outcome)


def _reason(error: Exception) -> str:
    """What a recipient's result says: a transport error by its kind too (an async read
    timeout's own text is empty), any error by its kind when it has no text."""
    text = str(error)
    if isinstance(error, httpx.TransportError):
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text or type(error).__name__
