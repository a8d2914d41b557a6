"""A batch of changes held by field: the shape an import makes them in, by the million.

One column per field of ``Change`` instead of one tuple per change. A window of 100,000
imported rows is then seven columns, not 100,000 objects that the garbage collector walks
at every collection (a named tuple is never untracked) and that the SQLite store would only
take apart again. Columns are tuples, which the collector stops walking once it has seen
that they hold no containers (a list it walks at every collection). Recipients are kept as
their digits, the text a CSV file has them in and SQLite's JSON wants: converting each to
an int and back would cost an import more than any other step of its own. To everyone else
it is a sequence of ``Change``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from typing import Any, overload

from ._base import Change

__all__ = ["ChangeColumns"]

_MAKE = tuple.__new__
"""Builds a ``Change`` from a tuple without its Python-level ``__new__``."""


class ChangeColumns(Sequence[Change]):
    """Changes by field: ``senders[i]``, ``recipients[i]``… are the fields of change ``i``;
    ``recipients[i]`` is the recipient's E.164 digits as text (``int()`` of it is
    ``Change.recipient``)."""

    __slots__ = ("countries", "dated", "opted_out", "recipients", "senders", "sources", "times")

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
            fields[1] = tuple(map(str, fields[1]))
        return cls(*fields)

    @classmethod
    def joined(cls, parts: Sequence[ChangeColumns]) -> ChangeColumns:
        """The changes of ``parts``, one after the other."""
        if len(parts) == 1:
            return parts[0]
        return cls(
            itertools.chain.from_iterable(part.senders for part in parts),
            itertools.chain.from_iterable(part.recipients for part in parts),
            itertools.chain.from_iterable(part.opted_out for part in parts),
            itertools.chain.from_iterable(part.sources for part in parts),
            itertools.chain.from_iterable(part.times for part in parts),
            itertools.chain.from_iterable(part.countries for part in parts),
            itertools.chain.from_iterable(part.dated for part in parts),
        )

    def columns(self) -> tuple[Sequence[Any], ...]:
        """The seven columns, in the order of ``Change``'s fields."""
        return (
            self.senders,
            self.recipients,
            self.opted_out,
            self.sources,
            self.times,
            self.countries,
            self.dated,
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
