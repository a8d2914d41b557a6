"""What a ledger store does, whatever database holds it (SQLite here, PostgreSQL for many hosts).

Numbers are E.164 digits as integers and times are microseconds since the Unix epoch
(UTC), as the schema stores them; the provider converts to and from the common model.

Reads never invent a ledger. A store is made before anyone knows whether it will be read
or written (``Client("local")``, then ``check`` or ``add``), so each store applies one rule
at every operation, in one place: a read needs the ledger to exist (a missing file, or a
database without the tables, is a ``ConfigurationError`` naming it and the setting) and
changes nothing; the first write creates it. An empty ledger invented by a mistyped path
would answer "not opted out" for a number the real ledger holds as opted out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Protocol

import attrs

__all__ = [
    "CLOCK_SKEW",
    "AuditTrail",
    "Change",
    "Held",
    "LedgerStore",
    "PendingRow",
    "Row",
    "TextRow",
    "datetime_of",
    "iso_utc",
    "micros_of",
    "now_micros",
    "takes",
    "text_pages_of",
    "trusted_time",
]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)

Row = tuple[str, int, int, "str | None", str, int, int]
"""A listed pair: sender, recipient, opted_out (0/1), country, source, updated_at, sender id."""

TextRow = tuple[str, str, str, str, str]
"""A pair as an export writes it: sender, E.164 recipient, status, source, ISO 8601 time."""

Held = tuple[int, str, int]
"""A pair's current state as a merge sees it: opted_out (0/1), source, updated_at."""

PendingRow = tuple[int, str, int, int]
"""A state a target has not confirmed: sender id, sender, recipient digits, opted_out (0/1)."""


class Change(NamedTuple):
    """One received opt-out or opt-in, as a sync or an import brings it.

    ``dated`` says whether ``at`` is when the recipient acted (the vendor said so) or only
    when we heard of it. The newer state wins, and an opt-out wins a tie: an opt-in replaces
    an opt-out only when strictly newer, whatever order the two came in. An undated opt-in
    never overrides an opt-out that another source reported, because a wrong opt-in can get
    someone texted who said STOP.
    A newer dated opt-out of a pair already opted out is recorded too (a second STOP is
    evidence, and it is what a later-listed older opt-in must lose to).
    (A named tuple, not an attrs class: imports build one per CSV row, a million at a time.)
    """

    sender: str
    recipient: int
    opted_out: bool
    source: str
    at: int
    country: str | None = None
    dated: bool = True


@attrs.frozen
class AuditTrail:
    """Everything the ledger knows about one recipient, for showing when an opt-out was honoured."""

    current: Sequence[tuple[str, bool, str | None, str, int, int]]
    """Per sender: sender, opted out, country, latest source, first received, last changed."""
    history: Sequence[tuple[str, bool, str, int]]
    """Every change, oldest first: sender, opted out, source, when."""
    confirmations: Sequence[tuple[str, str, bool, int]]
    """Per sender and vendor: sender, target, state confirmed, when it was confirmed."""


class LedgerStore(Protocol):
    """The operations the ``local`` provider and sync need from a database."""

    location: str
    """Where the ledger lives, without credentials (for messages)."""
    on_create: Callable[[str], None] | None
    """Called with a description of where, when a write creates the ledger (the command line
    says so, so that a mistyped path shows)."""

    def open(self, *, write: bool = False) -> None:
        """What every operation does first: for a read, check the ledger exists (else
        ``ConfigurationError``); for a write, create it if missing. Call it to fail, or
        create, before work starts (a dry run, a sync)."""

    def close(self) -> None: ...

    def rehearse(self) -> AbstractContextManager[LedgerStore]:
        """A second store over the same ledger, its own connection, inside one transaction
        that is rolled back when the block ends: each write in it is a savepoint. A dry run
        runs the real code against it. The ledger must exist (else ``ConfigurationError``)."""

    def set_state(
        self,
        sender: str,
        by_country: Mapping[str | None, Sequence[int]],
        *,
        opted_out: bool,
        source: str,
        at: int | None = None,
    ) -> None:
        """Set recipients of one sender to one state now (an explicit add or remove).

        ``at`` None (as for every add and remove) means the time read inside the write
        transaction, so two writers never record history out of order.
        """

    def apply(self, changes: Sequence[Change]) -> int:
        """Record received changes where they are newer than what is known; count those applied."""

    def apply_all(self, batches: Iterable[Sequence[Change]]) -> Iterator[int]:
        """``apply`` each batch in order, one transaction each, yielding each count once
        committed; a store may prepare the next batch while one is being written."""

    def opted_out(self, senders: Sequence[str], recipients: Sequence[int]) -> set[int]:
        """Those of ``recipients`` opted out of any of ``senders``."""

    def page(
        self,
        *,
        sender: str | None,
        opted_out: bool | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` pairs in key order (sender id, recipient), strictly after ``after``."""

    def text_pages(
        self, *, sender: str | None, opted_out: bool | None, size: int
    ) -> Iterator[list[TextRow]]:
        """Every pair (of ``sender``, in ``opted_out``), in key order, ``size`` at a time, as
        text for an export: formatting in the database beats building a model per row."""

    def pending(
        self, target: str, *, after: tuple[int, int] | None, limit: int
    ) -> list[PendingRow]:
        """Pairs whose state ``target`` has not confirmed, in key order (sender id, recipient)
        strictly after ``after``: opt-outs it never saw, and changes since it confirmed."""

    def confirm(
        self, target: str, sender: str, recipients: Sequence[int], *, opted_out: bool, at: int
    ) -> None:
        """Record that ``target`` now holds this state for these pairs."""

    def held(self, sender: str, recipients: Sequence[int]) -> dict[int, Held]:
        """The current state of those of ``recipients`` the ledger has a pair for."""

    def confirmed(self, target: str, sender: str, recipients: Sequence[int]) -> dict[int, int]:
        """The state (0/1) ``target`` last confirmed, for those pairs it confirmed."""

    def get_state(self, key: str) -> str | None:
        """A sync checkpoint value (None when unset)."""

    def put_state(self, key: str, value: str | None) -> None:
        """Set or (with None) clear a sync checkpoint value."""

    def audit(self, recipient: int) -> AuditTrail:
        """The current state, history and vendor confirmations of one recipient."""

    def last_change(self) -> int:
        """The id of the newest history row (0 when none): where ``pending_changed`` starts."""

    def pending_changed(self, target: str, *, after: int, upto: int) -> list[PendingRow]:
        """``pending``, among the pairs with a history row whose id is after ``after`` and
        at most ``upto``, in key order: cheap when few pairs changed, however big the ledger."""

    def lease(self, key: str, owner: str, seconds: float) -> bool:
        """Hold the lease ``key`` (a ``sync_state`` row) for ``seconds`` from now, by the
        database's clock, in one atomic statement: taken when free or expired, renewed when
        ``owner`` holds it. Whether ``owner`` holds it now."""

    def release(self, key: str, owner: str) -> None:
        """Give up the lease ``key`` if ``owner`` holds it."""


CLOCK_SKEW = 300_000_000
"""How far ahead of ours (µs) a sender's clock may run before its times are not believed."""


def trusted_time(at: int | None, *, opted_out: bool, received: int) -> tuple[int, bool]:
    """The time to record a reported change at, and whether it counts as dated.

    A time from outside is never taken on trust. One further ahead than ``CLOCK_SKEW`` is
    false (a forged opt-in dated 9999 would outrank every later STOP): the change is
    recorded when it was received, undated. An opt-in never counts from later than it was
    received, so a STOP received after it always wins. An opt-out keeps a time slightly
    ahead: it can only make the opt-out stronger.
    """
    if at is None or at > received + CLOCK_SKEW:
        return received, False
    if not opted_out and at > received:
        return received, True
    return at, True


def now_micros() -> int:
    """The ledger's clock: microseconds since the epoch, now."""
    return time.time_ns() // 1000


def micros_of(moment: datetime) -> int:
    """An aware time as the ledger stores it: microseconds since the epoch, exact (no float)."""
    return (moment - EPOCH) // MICROSECOND


def datetime_of(micros: int) -> datetime:
    """The ledger's microseconds since the epoch as an aware UTC time."""
    return EPOCH + timedelta(microseconds=micros)


def iso_utc(micros: int) -> str:
    """Microseconds since the epoch as ISO 8601 UTC: ``Z``, and a fraction only when non-zero."""
    return datetime_of(micros).isoformat().replace("+00:00", "Z")


def iso_utc_of(moment: datetime) -> str:
    """``moment`` written as ``iso_utc`` writes a ledger time, whatever its offset (a vendor
    time without one is UTC): the one time format of every output."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def text_pages_of(
    store: LedgerStore, *, sender: str | None, opted_out: bool | None, size: int
) -> Iterator[list[TextRow]]:
    """``text_pages`` built on ``page``, formatted in Python: for stores without a faster way."""
    after: tuple[int, int] | None = None
    while True:
        rows = store.page(sender=sender, opted_out=opted_out, after=after, limit=size)
        if rows:
            yield [
                (s, f"+{r}", "opted-out" if o else "opted-in", src, iso_utc(at))
                for s, r, o, _, src, at, _ in rows
            ]
        if len(rows) < size:
            return
        after = (rows[-1][6], rows[-1][1])


def takes(current: Held | None, change: Change) -> bool:
    """Whether ``apply`` records ``change`` over ``current``: the rule its SQL writes, in
    Python, for plans that must not touch the ledger (a dry run). Tests hold the two equal."""
    if current is None:
        return True
    opted_out, source, at = current
    if change.at < at or (change.at == at and not change.opted_out):
        return False  # older, or an opt-in no newer: an opt-out wins a tie
    differs = opted_out != change.opted_out
    if change.dated:
        return differs or (change.opted_out and change.at > at)
    return differs and (change.opted_out or source == change.source)
