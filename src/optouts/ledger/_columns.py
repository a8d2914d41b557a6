"""A batch of changes held by field: the shape an import makes them in, by the million.

One column per field of ``Change`` instead of one tuple per change. A window of 100,000
imported rows is then seven columns, not 100,000 objects that the garbage collector walks
at every collection (a named tuple is never untracked) and that the SQLite store would only
take apart again (the collector walks a column as one object, and seldom: a column holds
no containers, so making one allocates none). Recipients are kept as
the E.164 text a CSV file has them in (``+`` and digits), which is also what SQLite's
``CAST`` reads: converting each to an int and back would cost an import more than any
other step of its own. To everyone else it is a sequence of ``Change``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, repeat
from typing import Any, overload

from ._base import Change, trusted_time

__all__ = ["ChangeColumns"]

_MAKE = tuple.__new__
"""Builds a ``Change`` from a tuple without its Python-level ``__new__``."""
_E164 = "+%d".__mod__


class ChangeColumns(Sequence[Change]):
    """Changes by field: ``senders[i]``, ``recipients[i]``… are the fields of change ``i``;
    ``recipients[i]`` is the recipient in E.164 (``int()`` of it is ``Change.recipient``)."""

    __slots__ = ("countries", "dated", "opted_out", "recipients", "senders", "sources", "times")

    senders: Sequence[str]
    recipients: Sequence[str]
    opted_out: Sequence[bool]
    sources: Sequence[str]
    times: Sequence[int]
    countries: Sequence[str | None]
    dated: Sequence[bool]

    def __init__(
        self,
        senders: Iterable[str] = (),
        recipients: Iterable[str] = (),
        opted_out: Iterable[bool] = (),
        sources: Iterable[str] = (),
        times: Iterable[int] = (),
        countries: Iterable[str | None] = (),
        dated: Iterable[bool] = (),
    ) -> None:
        self.senders = tuple(senders)
        self.recipients = tuple(recipients)
        self.opted_out = tuple(opted_out)
        self.sources = tuple(sources)
        self.times = tuple(times)
        self.countries = tuple(countries)
        self.dated = tuple(dated)

    @classmethod
    def of(cls, changes: Iterable[Change]) -> ChangeColumns:
        """``changes`` by field (the same object if it already is)."""
        if isinstance(changes, ChangeColumns):
            return changes
        fields = list(zip(*changes, strict=True))
        if fields:
            fields[1] = tuple(map(_E164, fields[1]))
        return cls(*fields)

    @classmethod
    def taking(cls, *columns: Sequence[Any]) -> ChangeColumns:
        """The changes of seven columns (in the order of ``Change``'s fields) as they are,
        not copied: whoever made them gives them up."""
        changes = cls.__new__(cls)
        (
            changes.senders,
            changes.recipients,
            changes.opted_out,
            changes.sources,
            changes.times,
            changes.countries,
            changes.dated,
        ) = columns
        return changes

    @classmethod
    def joined(cls, parts: Sequence[ChangeColumns]) -> ChangeColumns:
        """The changes of ``parts``, one after the other."""
        if len(parts) == 1:
            return parts[0]
        return cls(
            *(
                itertools.chain.from_iterable(column)
                for column in zip(*map(_columns, parts), strict=True)
            )
        )

    def columns(self) -> tuple[Sequence[Any], ...]:
        """The seven columns, in the order of ``Change``'s fields."""
        return _columns(self)

    def trusting_times(self, received: int) -> ChangeColumns:
        """These changes, each time as ``trusted_time`` takes it from changes ``received``
        then: none dated ahead of ``received`` (one pass of ``max``), or else those that are
        recorded at ``received`` (further ahead than the clock skew allows: undated; an
        opt-in: dated). A file's time is never taken on trust, any more than a vendor's."""
        if not self.times or max(self.times) <= received:
            return self
        times, dated = list(self.times), list(self.dated)
        for i in compress(itertools.count(), map(received.__lt__, self.times)):
            at = times[i] if dated[i] else None
            times[i], dated[i] = trusted_time(at, opted_out=self.opted_out[i], received=received)
        return ChangeColumns.taking(
            self.senders,
            self.recipients,
            self.opted_out,
            self.sources,
            times,
            self.countries,
            dated,
        )

    def __len__(self) -> int:
        return len(self.recipients)

    @overload
    def __getitem__(self, index: int) -> Change: ...

    @overload
    def __getitem__(self, index: slice) -> ChangeColumns: ...

    def __getitem__(self, index: int | slice) -> Change | ChangeColumns:
        if isinstance(index, slice):
            return ChangeColumns(*(column[index] for column in self.columns()))
        fields = [column[index] for column in self.columns()]
        fields[1] = int(fields[1])
        return _MAKE(Change, fields)

    def __iter__(self) -> Iterator[Change]:
        rows = zip(
            self.senders,
            map(int, self.recipients),
            self.opted_out,
            self.sources,
            self.times,
            self.countries,
            self.dated,
            strict=True,
        )
        return map(_MAKE, repeat(Change), rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChangeColumns({list(self)!r})"


def _columns(changes: ChangeColumns) -> tuple[Sequence[Any], ...]:
    return (
        changes.senders,
        changes.recipients,
        changes.opted_out,
        changes.sources,
        changes.times,
        changes.countries,
        changes.dated,
    )
