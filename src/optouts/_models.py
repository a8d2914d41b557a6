"""The value types every provider speaks: immutable, so results can be shared and cached."""

from __future__ import annotations

import collections
import enum
import itertools
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, cast, overload

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

    @classmethod
    def _from_rows(cls, rows: Iterable[Row]) -> Iterator[RecipientResult]:
        """``RecipientResult(*row)`` for each row, in order, made a block at a time.

        A million-recipient check is read a result at a time, and calling the class per
        row spent more than the ledger's lookup. Where making an instance is nothing but
        storing its fields (``_plain_setters`` checks that), each block's instances get
        each field from C, a column at a time; otherwise, and for any row not of one value
        per field, the class is called as usual.
        """
        setters = _plain_setters(cls)
        if setters is None:
            return itertools.starmap(cls, rows)
        return itertools.chain.from_iterable(_made(cls, setters, rows))


Row = tuple[str, bool, "bool | None", "str | None", "int | None"]
"""A RecipientResult's fields as a plain tuple (how BatchResult stores them)."""

_BLOCK = 256
"""Results made at a time: few enough that a block's objects are still in the CPU cache."""
_sink: collections.deque[object] = collections.deque(maxlen=0)
_drain = _sink.extend
"""Runs an iterator to its end, from C, keeping nothing."""
_Setter = Callable[[object, object], None]
_setters: dict[type[Any], tuple[_Setter, ...] | None] = {}


def _plain_setters(cls: type[Any]) -> tuple[_Setter, ...] | None:
    """Each field's slot setter, in field order, when calling ``cls`` does nothing else:
    its ``__init__`` is the one attrs wrote, no field validates, converts or hooks a set,
    there is no ``__attrs_pre_init__``/``__attrs_post_init__``, and its slots are its
    fields (no cached hash to fill in). None otherwise: then the class is called."""
    if cls not in _setters:
        _setters[cls] = _find_plain_setters(cls)
    return _setters[cls]


def _find_plain_setters(cls: type[Any]) -> tuple[_Setter, ...] | None:
    init = getattr(cls.__init__, "__code__", None)
    if init is None or not init.co_filename.startswith("<attrs generated"):
        return None
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        return None
    fields = attrs.fields(cls)
    if any(f.validator or f.converter or f.on_setattr or not f.init for f in fields):
        return None
    own = set(cls.__dict__.get("__slots__", ())) - {"__weakref__"}
    if own != {f.name for f in fields}:
        return None
    slots = [cls.__dict__[f.name] for f in fields]
    if not all(type(slot) is types.MemberDescriptorType for slot in slots):
        return None
    return tuple(cast("_Setter", slot.__set__) for slot in slots)


def _made(cls: type[Any], setters: tuple[_Setter, ...], rows: Iterable[Row]) -> Iterator[list[Any]]:
    """Blocks of instances of ``cls``, each made with no Python code run per instance."""
    make = object.__new__
    source = iter(rows)
    while block := list(itertools.islice(source, _BLOCK)):
        try:
            columns = list(zip(*block, strict=True))
        except ValueError:  # rows of different lengths: let the class say what it makes of them
            columns = []
        if len(columns) != len(setters):
            yield list(itertools.starmap(cls, block))
            continue
        made = list(map(make, itertools.repeat(cls, len(block))))
        for setter, column in zip(setters, columns, strict=True):
            _drain(map(setter, made, column))
        yield made


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
    auth_requests: int = 0
    """The part of ``requests`` sent to log in (token fetches): vendors count them apart
    from API calls, so ``requests - auth_requests`` is what the API's rate limit saw."""

    @classmethod
    def of(cls, results: Iterable[RecipientResult], **details: Any) -> BatchResult:
        return cls([result.as_row() for result in results], **details)

    @overload
    def __getitem__(self, index: int) -> RecipientResult: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RecipientResult]: ...
    def __getitem__(self, index: int | slice) -> RecipientResult | Sequence[RecipientResult]:
        if isinstance(index, slice):
            return list(RecipientResult._from_rows(self.rows[index]))
        return RecipientResult(*self.rows[index])

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[RecipientResult]:
        return RecipientResult._from_rows(self.rows)

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
