"""``optouts.Ledger``: the business's own record of every opt-out, as one object.

A ledger is opened once (``Ledger.open(database)`` or ``Ledger.from_settings()``) and
handed to whatever works on it: ``optouts.sync``, ``handle_event``, ``import_csv`` and
``export_csv``, or ``ledger.client()`` for the same add/remove/check/list interface every
vendor has. It owns its store (SQLite or PostgreSQL); nothing outside this package touches
the store, so the rules the store writes in SQL (the newer state wins; what a target has
not confirmed yet) exist once per backend.

Numbers in the methods below are E.164 digits as integers (``Change.recipient``), as the
ledger stores them: they are what a sync or an import has already checked, a million at a
time. Methods that take a person's input (``audit``, ``opted_out``) take E.164 text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._config import load_config_file, resolve_settings
from .._errors import ConfigurationError
from .._numbers import WILDCARD, normalize
from ._base import AuditTrail, Change, LedgerStore, TextRow, now_micros
from ._open import open_store
from ._provider import LocalProvider
from ._settings import LEDGER_SETTINGS, database_of

if TYPE_CHECKING:
    from .._client import AsyncClient, Client
    from .._retry import RetryPolicy

__all__ = ["Ledger"]

_PENDING_PAGE = 10_000
"""Pairs a target's pending states are read in at a time."""
_CHANGES_PAGE = 10_000
"""History rows (changes) ``pending_since`` reads the pairs of at a time."""


class Ledger:
    """The ledger: SQLite by default, PostgreSQL for many hosts; thread-safe.

    Reads never invent a ledger: ``opted_out``, ``audit``, ``rows`` and a dry run on a
    database that does not exist raise ``ConfigurationError`` naming it and the setting;
    the first write creates it (and calls ``on_create``, which the command line uses to
    say so once).
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        source: str = "api",
        config: str | os.PathLike[str] | None = None,
    ) -> None:
        self._store = store
        self.source = source
        """What add and remove through ``client()`` record as the source of a change."""
        self.config_path = config
        """The optouts.toml the ledger was configured from: vendors named as targets (and
        inbound keywords) are configured from it too."""
        self._database: str | None = None
        """What it was opened from, for ``reopen`` (None: made from a store)."""

    @classmethod
    def open(
        cls,
        database: str | os.PathLike[str] | None = None,
        *,
        source: str = "api",
        config: str | os.PathLike[str] | None = None,
    ) -> Ledger:
        """The ledger at ``database``: a file path or a ``postgresql://`` URL; the default
        file in the user data folder when None. An in-memory database (``:memory:``) is
        refused: what it records would be lost when it closes."""
        text = None if database is None else os.fspath(database)
        ledger = cls(open_store(database_of(text)), source=source, config=config)
        ledger._database = database_of(text)
        return ledger

    @classmethod
    def from_settings(
        cls, *, config: str | os.PathLike[str] | None = None, **settings: Any
    ) -> Ledger:
        """The ledger the configuration names, as ``Client("local")`` would open it.

        ``database`` and ``source`` come from the arguments, else ``OPTOUTS_LOCAL_DATABASE``
        and ``OPTOUTS_LOCAL_SOURCE``, else the ``[local]`` table of optouts.toml.
        """
        resolved = resolve_settings("local", LEDGER_SETTINGS, settings, load_config_file(config))
        given = resolved["database"]
        database = given.reveal() if given else None
        return cls.open(database, source=resolved["source"], config=config)

    # Lifetime

    @property
    def location(self) -> str:
        """Where the ledger lives, without credentials."""
        return self._store.location

    @property
    def on_create(self) -> Callable[[str], None] | None:
        """Called with where, when a write creates the ledger."""
        return self._store.on_create

    @on_create.setter
    def on_create(self, callback: Callable[[str], None] | None) -> None:
        self._store.on_create = callback

    def require(self, *, write: bool = False) -> None:
        """Fail now (``ConfigurationError``) if a read would find no ledger; with ``write``,
        create it if missing. Every method does this itself; call it to fail before work."""
        self._store.open(write=write)

    def close(self) -> None:
        self._store.close()

    def reopen(self) -> Ledger:
        """The same ledger on a connection of its own, for work that must not wait behind
        this one's (a long read of what a target has not confirmed, say); close it after.

        A ledger made from a store has no second connection: that is a
        ``ConfigurationError``.
        """
        if self._database is None:
            raise ConfigurationError(f"the ledger at {self.location} cannot be opened twice")
        again = Ledger.open(self._database, source=self.source, config=self.config_path)
        again.on_create = self.on_create
        return again

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ledger {self.location}>"

    # The one interface

    def client(
        self,
        *,
        default_region: str | None = None,
        retry: RetryPolicy | None = None,
        config: str | os.PathLike[str] | None = None,
        closes_ledger: bool = False,
    ) -> Client:
        """A ``Client`` over this ledger. Closing it leaves the ledger open, unless
        ``closes_ledger`` (a client made for one job). ``config`` gives its core settings
        (retry, default region) when not passed here; the ledger's own by default."""
        from .._client import Client

        provider = LocalProvider(self._store, source=self.source, owned=closes_ledger)
        return Client(
            provider,
            config=config if config is not None else self.config_path,
            default_region=default_region,
            retry=retry,
        )

    def async_client(
        self,
        *,
        default_region: str | None = None,
        retry: RetryPolicy | None = None,
        config: str | os.PathLike[str] | None = None,
        closes_ledger: bool = False,
    ) -> AsyncClient:
        """An ``AsyncClient`` over this ledger (its work runs in a thread); as ``client``."""
        from .._client import AsyncClient

        provider = LocalProvider(self._store, source=self.source, owned=closes_ledger)
        return AsyncClient(
            provider,
            config=config if config is not None else self.config_path,
            default_region=default_region,
            retry=retry,
        )

    # What the ledger knows

    def opted_out(self, sender: str, recipients: Sequence[str]) -> list[bool]:
        """Whether each of ``recipients`` (E.164) is opted out of ``sender``, in input order.

        An opt-out of the ``*`` sender (every number of the account) counts for every sender.
        """
        digits = [int(normalize(r)[1:]) for r in recipients]
        senders = [sender] if sender == WILDCARD else [sender, WILDCARD]
        found = self._store.opted_out(senders, digits)
        return [d in found for d in digits]

    def audit(self, recipient: str) -> AuditTrail:
        """Everything the ledger knows of ``recipient``: state per sender, every change
        received (oldest first) and what each vendor confirmed."""
        return self._store.audit(int(normalize(recipient)[1:]))

    def rows(
        self, *, sender: str | None = None, opted_out: bool | None = None, size: int = 10_000
    ) -> Iterator[list[TextRow]]:
        """Every pair (of ``sender``; opted out or in, or both when None) in key order,
        ``size`` at a time, as text: sender, E.164 recipient, status, source, ISO 8601 time.

        The ledger is opened before the first page is asked for: a missing one fails here.
        """
        return self._store.text_pages(sender=sender, opted_out=opted_out, size=size)

    # What sync, inbound handling and imports do with it

    def record(self, changes: Sequence[Change]) -> int:
        """Record received changes where they are newer than what the ledger holds (see
        ``Change`` for the rule); returns how many it took."""
        return self._store.apply(changes)

    def record_batches(self, batches: Iterable[Sequence[Change]]) -> Iterator[int]:
        """``record`` each batch in order, one transaction each, yielding each count once
        committed; the next batch may be prepared while one is written."""
        return self._store.apply_all(batches)

    def pending(self, target: str) -> Iterator[tuple[str, bool, list[int]]]:
        """What ``target`` has not confirmed, as (sender, opted out, recipient digits): opt-outs
        it never heard of, and pairs changed since it confirmed them. Read a page at a time,
        so confirming while iterating is safe."""
        after: tuple[int, int] | None = None
        while rows := self._store.pending(target, after=after, limit=_PENDING_PAGE):
            groups: dict[tuple[str, bool], list[int]] = {}
            for _, sender, recipient, state in rows:
                groups.setdefault((sender, bool(state)), []).append(recipient)
            for (sender, opted_out), recipients in groups.items():
                yield sender, opted_out, recipients
            after = (rows[-1][0], rows[-1][2])

    def confirm(
        self, target: str, sender: str, recipients: Sequence[int], *, opted_out: bool
    ) -> None:
        """Record that ``target`` now holds this state for these pairs."""
        self._store.confirm(target, sender, recipients, opted_out=opted_out, at=now_micros())

    def checkpoint(self, key: str) -> str | None:
        """A saved value, such as where a sync's listing of a source got to."""
        return self._store.get_state(key)

    def set_checkpoint(self, key: str, value: str | None) -> None:
        """Save (or, with None, clear) a value ``checkpoint`` reads back."""
        self._store.put_state(key, value)

    @contextmanager
    def rehearsal(self) -> Iterator[Ledger]:
        """A ledger over the same data whose every write is rolled back when the block ends.

        A dry run runs the real code against it, so what it plans is what a real run would
        do, by the same SQL. It holds the ledger's write lock (SQLite) or its row locks
        (PostgreSQL) while the block runs: keep slow work, such as listing a vendor, outside.
        """
        self.require()
        with self._store.rehearse() as scratch:
            yield Ledger(scratch, source=self.source, config=self.config_path)

    @staticmethod
    def now() -> int:
        """The ledger's clock: microseconds since the Unix epoch."""
        return now_micros()

    # What the service's outbox does with it

    def change_mark(self) -> int:
        """How far the ledger's record of changes goes now: a mark for ``pending_since``."""
        return self._store.last_change()

    def pending_since(self, target: str, mark: int) -> Iterator[tuple[str, bool, list[int]]]:
        """``pending``, among the pairs changed after ``mark`` (from ``change_mark``) only.

        Its cost follows how much changed, not how big the ledger is, so a service can ask
        after every STOP. It sees changes, not every way a state becomes pending: a sync
        confirms what its source listed, which may be older than the ledger's state, and on
        PostgreSQL a writer may commit a change below a mark already read. A caller reads
        back over a margin, and reads ``pending`` whole now and then.
        """
        upto = self._store.last_change()
        after = mark
        while after < upto:
            end = min(upto, after + _CHANGES_PAGE)
            groups: dict[tuple[str, bool], list[int]] = {}
            for _, sender, recipient, state in self._store.pending_changed(
                target, after=after, upto=end
            ):
                groups.setdefault((sender, bool(state)), []).append(recipient)
            for (sender, opted_out), recipients in groups.items():
                yield sender, opted_out, recipients
            after = end

    def lease(self, name: str, owner: str, seconds: float) -> bool:
        """Hold the lease ``name`` for ``seconds`` from now; whether ``owner`` holds it.

        One atomic statement, by the database's clock: the lease is taken when free or run
        out, renewed when ``owner`` holds it already, and left alone otherwise. Processes
        sharing a ledger take turns at a job this way (the outbox of each vendor), and the
        lease of one that was killed runs out by itself.
        """
        if not owner:
            raise ValueError("a lease needs an owner")
        if not seconds > 0:
            raise ValueError(f"a lease lasts a positive number of seconds, not {seconds}")
        return self._store.lease(f"lease:{name}", owner, seconds)

    def release(self, name: str, owner: str) -> None:
        """Give up the lease ``name`` now if ``owner`` holds it, so another takes over at once."""
        self._store.release(f"lease:{name}", owner)

    # What the service's webhooks do with it

    def held(self, sender: str, recipients: Sequence[int]) -> dict[int, tuple[bool, str, int]]:
        """The state the ledger holds for those of ``recipients`` it has a pair for:
        (opted out, source, when it changed). Read before ``record``, with the rule
        ``record`` applies, it tells which of a batch the ledger will take: the service
        records many webhooks in one commit and answers each with what became of its own."""
        return {
            recipient: (bool(opted_out), source, at)
            for recipient, (opted_out, source, at) in self._store.held(sender, recipients).items()
        }
