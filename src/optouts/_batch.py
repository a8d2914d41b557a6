"""Turn what a caller passed into provider-sized batches, and the answers back into input order.

Everything here is pure: no I/O, so the sync and async clients share it whole.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from ._errors import InvalidNumber
from ._models import Outcome, RecipientResult, Row
from ._numbers import is_e164, normalize

if TYPE_CHECKING:
    from ._http import Stats

__all__ = ["Answered", "Batch", "as_rows", "failed", "windows"]

Answered = tuple[dict[str, Row], "Stats"]
"""A chunk's result rows keyed by recipient, and what getting them cost."""

_NO_ANSWER = Outcome.failure("the provider returned no result for this recipient")


@attrs.define
class Batch:
    """One window of input: its normalised recipients, split into chunks for the provider."""

    positions: list[str | RecipientResult]
    """Per input position: the E.164 number to ask about, or the failed result of bad input."""
    unique: list[str]
    """Valid recipients, each once, in first-seen order."""
    chunk_size: int

    @classmethod
    def prepare(
        cls, recipients: Iterable[object], chunk_size: int, default_region: str | None
    ) -> Batch:
        """Normalise every recipient; invalid ones become failed results, duplicates one entry."""
        batch = cls([], [], chunk_size)
        batch.extend(recipients, default_region)
        return batch.seal()

    def extend(self, recipients: Iterable[object], default_region: str | None) -> None:
        """Normalise more input into this window (an async client does it in slices)."""
        append = self.positions.append
        for raw in recipients:
            if type(raw) is str and is_e164(raw):  # the fast path for well-formed input
                append(raw)
                continue
            try:
                append(normalize(raw, default_region))
            except InvalidNumber as exc:
                append(RecipientResult(str(raw), ok=False, error=exc.reason))

    def seal(self) -> Batch:
        """Done extending: list each valid recipient once, in first-seen order."""
        self.unique = list(dict.fromkeys(p for p in self.positions if type(p) is str))
        return self

    def chunks(self) -> list[Sequence[str]]:
        size = self.chunk_size
        return [self.unique[i : i + size] for i in range(0, len(self.unique), size)]

    def assemble(self, rows: Mapping[str, Row]) -> list[Row]:
        """One row per input position; a recipient the provider skipped fails, never passes."""
        return [
            rows.get(position) or _NO_ANSWER.for_recipient(position)
            if type(position) is str
            else position.as_row()  # type: ignore[union-attr]
            for position in self.positions
        ]


def as_rows(results: Mapping[str, Outcome]) -> dict[str, Row]:
    """A chunk's answers as result rows, keyed by recipient."""
    return {number: outcome.for_recipient(number) for number, outcome in results.items()}


def windows(items: Iterable[object], size: int) -> Iterator[list[object]]:
    """Consecutive lists of at most ``size`` items, so an endless input never sits in memory."""
    if isinstance(items, (str, bytes)):
        raise TypeError("recipients must be an iterable of numbers, not a single string")
    iterator = iter(items)
    while window := list(itertools.islice(iterator, size)):
        yield window


def failed(recipients: Sequence[str], error: Exception) -> dict[str, Outcome]:
    """The same failure for every recipient of a chunk whose request could not be completed."""
    outcome = Outcome.failure(str(error), getattr(error, "status_code", None))
    return dict.fromkeys(recipients, outcome)
