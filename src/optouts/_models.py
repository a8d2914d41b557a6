"""The value types every provider speaks: immutable, so results can be shared and cached."""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, overload

import attrs

from ._errors import OptOutError, clip

__all__ = [
    "BatchResult",
    "Capability",
    "OptOut",
    "Outcome",
    "Page",
    "RecipientResult",
    "RecipientsFailed",
    "Row",
    "Status",
]


_REASON = 200
"""Characters of a vendor's reason an error message keeps."""


class RecipientsFailed(OptOutError):
    """Some recipients of a batch failed; ``failed`` holds their results."""

    def __init__(self, failed: Sequence[RecipientResult]) -> None:
        self.failed = tuple(failed)
        first = self.failed[0] if self.failed else None
        detail = (
            f"; first: {clip(first.recipient)}: {clip(str(first.error), _REASON)}" if first else ""
        )
        super().__init__(f"{len(self.failed)} recipient(s) failed{detail}")


class Status(str, enum.Enum):
    """Where a sender–recipient pair stands."""

    OPTED_OUT = "opted-out"
    OPTED_IN = "opted-in"

    def __str__(self) -> str:
        return self.value


class Capability(str, enum.Enum):
    """An operation a provider may offer."""

    ADD = "add"
    REMOVE = "remove"
    CHECK = "check"
    LIST = "list"

    def __str__(self) -> str:
        return self.value


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value) if value else {}


@attrs.frozen
class OptOut:
    """One sender–recipient pair as a provider stores it.

    ``sender`` is E.164, a short code, or ``"*"`` (every number of the account).
    ``raw`` keeps the vendor's own fields, for whatever the common model leaves out.
    """

    sender: str
    recipient: str
    status: Status = attrs.field(converter=Status)
    country: str | None = None
    source: str | None = None
    updated_at: datetime | None = None
    provider: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, eq=False)

    @property
    def opted_out(self) -> bool:
        return self.status is Status.OPTED_OUT


@attrs.frozen
class RecipientResult:
    """The outcome for one input recipient.

    ``opted_out`` is True or False when the provider answered for this recipient, and None
    when it is unknown (the recipient failed, or the vendor left the flag out). It is never
    a guess.
    """

    recipient: str
    ok: bool
    opted_out: bool | None = None
    error: str | None = None
    status_code: int | None = None

    def as_row(self) -> Row:
        return (self.recipient, self.ok, self.opted_out, self.error, self.status_code)


Row = tuple[str, bool, "bool | None", "str | None", "int | None"]
"""A RecipientResult's fields as a plain tuple (how BatchResult stores them)."""


@attrs.frozen
class Outcome:
    """A provider's answer for one recipient, keyed by that recipient in ``Results``.

    Apart from the recipient it is a RecipientResult; keeping the recipient out lets a
    provider share one instance for many recipients (``Outcome.OPTED_OUT``), which is what
    makes a million-recipient ledger check cheap.
    """

    ok: bool
    opted_out: bool | None = None
    error: str | None = None
    status_code: int | None = None

    OPTED_OUT: ClassVar[Outcome]
    NOT_OPTED_OUT: ClassVar[Outcome]

    @classmethod
    def failure(cls, error: str, status_code: int | None = None) -> Outcome:
        """A recipient the provider could not answer for: unknown, never a guess."""
        return cls(False, None, error, status_code)

    def for_recipient(self, recipient: str) -> Row:
        return (recipient, self.ok, self.opted_out, self.error, self.status_code)


Outcome.OPTED_OUT = Outcome(True, True)
Outcome.NOT_OPTED_OUT = Outcome(True, False)


@attrs.frozen
class BatchResult(Sequence[RecipientResult]):
    """One result per input recipient, in input order.

    Results are kept as plain tuples and made into RecipientResult objects as you read
    them: a million-recipient check then holds no million tracked objects for the garbage
    collector to walk, which made bulk calls markedly slower.
    """

    rows: Sequence[Row] = attrs.field(repr=lambda rows: f"<{len(rows)} results>")
    operation: str = ""
    sender: str = ""
    provider: str = ""
    requests: int = 0
    """How many vendor requests the call sent (retries and token fetches included)."""
    retries: int = 0
    """How many times a request or a recipient was sent again."""
    waited: float = 0.0
    """Seconds spent waiting, summed over batches: backoff, rate-limit penalties, pacing."""
    rate_limit_wait: float = 0.0
    """The part of ``waited`` spent on rate limits (pacing and Retry-After)."""
    info: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    """What the provider reported about how it answered, e.g. ``info["check_plan"]``."""

    @classmethod
    def of(cls, results: Iterable[RecipientResult], **details: Any) -> BatchResult:
        return cls([result.as_row() for result in results], **details)

    @overload
    def __getitem__(self, index: int) -> RecipientResult: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RecipientResult]: ...
    def __getitem__(self, index: int | slice) -> RecipientResult | Sequence[RecipientResult]:
        if isinstance(index, slice):
            return [RecipientResult(*row) for row in self.rows[index]]
        return RecipientResult(*self.rows[index])

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[RecipientResult]:
        return itertools.starmap(RecipientResult, self.rows)

    @property
    def ok(self) -> bool:
        """True when every recipient succeeded."""
        return all(row[1] for row in self.rows)

    @property
    def failed(self) -> tuple[RecipientResult, ...]:
        """The failed results, in input order."""
        return tuple(RecipientResult(*row) for row in self.rows if not row[1])

    def raise_for_failures(self) -> BatchResult:
        """Raise RecipientsFailed if any recipient failed; return self otherwise."""
        failed = self.failed
        if failed:
            raise RecipientsFailed(failed)
        return self


def _records(items: Iterable[OptOut]) -> tuple[OptOut, ...]:
    return tuple(items)


@attrs.frozen
class Page:
    """One page of a listing. ``next_cursor`` is opaque; None means this was the last page."""

    items: tuple[OptOut, ...] = attrs.field(converter=_records)
    next_cursor: str | None = None
