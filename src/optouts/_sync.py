"""Carry opt-outs from a vendor that can list them to every other vendor, through the ledger.

The ledger is the hub. A sync first *pulls*: it lists every record of the source and
records each change in the ledger, newer state winning (see ``ledger.Change``), and notes
that the source holds those states. Then it *pushes*: each target gets the states it has
not confirmed yet, and each batch the target accepts is confirmed in the ledger. Targets
that cannot list (Azure) are therefore told exactly what changed since their last sync.

Both phases keep their progress in the ledger, so an interrupted sync (a killed process,
a vendor outage) is finished by the next run: the pull resumes from its last page, and
the push re-sends only what no target confirmed. A second run with nothing new sends
nothing but the source's list pages.

A sync writes, so it creates a ledger that does not exist yet; a dry run only reads, so
without a ledger it fails like any read, before the source is asked for anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from datetime import timezone
from typing import Any

import attrs

from ._client import Client
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidCursor,
    InvalidNumber,
    OptOutError,
    ProviderError,
    UnsupportedOperation,
)
from ._models import Capability, OptOut
from ._numbers import country_of, normalize, normalize_sender
from ._rehearsal import Rehearsal
from .ledger import Change, LedgerStore, LocalProvider
from .ledger._base import micros_of

__all__ = ["SyncSummary", "TargetSummary", "sync"]

logger = logging.getLogger("optouts")

_PENDING_PAGE = 10_000
_SHOWN = 5
"""Rows a dry run shows per target."""


@attrs.frozen
class TargetSummary:
    """What one target got (or, in a dry run, would get)."""

    target: str
    added: int = 0
    removed: int = 0
    skipped: int = 0
    """States the target cannot hold (e.g. an account-wide ``*`` opt-out on Azure)."""
    failed: int = 0
    """States the target refused this time; they stay pending for the next run."""
    requests: int = 0
    first: tuple[tuple[str, str, str], ...] = ()
    """A dry run's first few planned rows: action, sender, recipient."""
    notes: tuple[str, ...] = ()


@attrs.frozen
class SyncSummary:
    """The outcome of one sync."""

    source: str
    listed: int
    """Records the source listed."""
    recorded: int
    """Of those, changes the ledger took (new pairs or newer states)."""
    source_requests: int
    targets: tuple[TargetSummary, ...]
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(target.failed == 0 for target in self.targets)


def _micros(record: OptOut) -> int | None:
    when = record.updated_at
    if when is None:
        return None
    if when.tzinfo is None:  # a vendor time without an offset is UTC, never local time
        when = when.replace(tzinfo=timezone.utc)
    return micros_of(when)


def _change(record: OptOut, source: str, now: int) -> Change:
    """The ledger's form of a listed record; vendors' numbers are checked like anyone's."""
    at = _micros(record)
    if at is not None and at > now:
        at = now  # a vendor clock ahead of ours must not outrank every later report
    recipient = normalize(record.recipient)
    return Change(
        sender=normalize_sender(record.sender),
        recipient=int(recipient[1:]),
        opted_out=record.opted_out,
        source=source,
        at=now if at is None else at,
        country=record.country or country_of(recipient),
        dated=at is not None,
    )


def _store(ledger: Client) -> LedgerStore:
    if not isinstance(ledger.provider, LocalProvider):
        raise ConfigurationError(
            f"sync needs the local ledger as its hub, not provider {ledger.provider.name!r}"
        )
    return ledger.provider.ledger


def sync(
    source: Client | str,
    targets: Sequence[Client | str],
    *,
    ledger: Client | None = None,
    dry_run: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> SyncSummary:
    """Pull every record of ``source`` into the ledger, then push unconfirmed states to ``targets``.

    Providers may be given by name (configured from the environment and optouts.toml) or as
    clients; ``ledger`` defaults to the configured ``local`` provider. ``progress(phase,
    count)`` is called as pages and batches complete. With ``dry_run`` nothing is changed
    anywhere: the summary says what would be sent, and a ledger that does not exist is a
    ``ConfigurationError`` (a plan against an empty one would be a guess).
    """
    with ExitStack() as opened:
        config = ledger.config_path if ledger is not None else None

        def client(value: Client | str) -> Client:
            if isinstance(value, Client):
                return value
            return opened.enter_context(Client(value, config=config))

        hub = ledger if ledger is not None else client("local")
        if isinstance(source, str) and source == hub.provider.name:
            source_client = hub
        else:
            source_client = client(source)
        target_clients = [
            hub if isinstance(t, str) and t == hub.provider.name else client(t) for t in targets
        ]
        return _sync(source_client, target_clients, hub, dry_run, progress)


def _sync(
    source: Client,
    targets: Sequence[Client],
    ledger: Client,
    dry_run: bool,
    progress: Callable[[str, int], None] | None,
) -> SyncSummary:
    started = time.perf_counter()
    store = _store(ledger)
    store.open(write=not dry_run)  # a plan needs the ledger; a sync creates it if missing
    hub = ledger.provider.name
    if (
        Capability.LIST not in source.provider.capabilities
        and source.provider is not ledger.provider
    ):
        raise source.provider.unsupported(Capability.LIST)
    rehearsal = None
    if dry_run:
        keep_listed = any(t.provider.name == source.provider.name for t in targets)
        rehearsal = Rehearsal(store, source=source.provider.name, keep_listed=keep_listed)
    try:
        pulled = _Pull(source, store, rehearsal, progress)
        if source.provider is not ledger.provider:
            pulled.run()
        summaries = []
        for target in targets:
            if target.provider is ledger.provider or target.provider.name == hub:
                summaries.append(pulled.ledger_summary(hub))
                continue
            summaries.append(_Push(target, store, rehearsal, progress).run())
    finally:
        if rehearsal is not None:
            rehearsal.close()
    return SyncSummary(
        source=source.provider.name,
        listed=pulled.listed,
        recorded=pulled.recorded,
        source_requests=pulled.requests,
        targets=tuple(summaries),
        dry_run=dry_run,
        seconds=time.perf_counter() - started,
    )


class _Pull:
    """Lists the source page by page into the ledger, checkpointing the cursor."""

    def __init__(
        self,
        client: Client,
        store: LedgerStore,
        rehearsal: Rehearsal | None,
        progress: Callable[[str, int], None] | None,
    ) -> None:
        self.client = client
        self.store = store
        self.rehearsal = rehearsal
        """Set in a dry run: changes are taken there, never written."""
        self.progress = progress
        self.name = client.provider.name
        self.key = f"pull:{self.name}:cursor"
        self.listed = self.requests = self.unusable = 0
        self.recorded_out = self.recorded_in = 0

    def run(self) -> None:
        cursor = self.store.get_state(self.key)  # a dry run resumes where the real run would
        seen: set[str] = set()
        if cursor:
            logger.info("resuming the listing of %s from its checkpoint", self.name)
        while True:
            try:
                page = self.client.list_page(
                    status="all", page_size=self.client.provider.max_page_size, cursor=cursor
                )
            except (InvalidCursor, OptOutError) as error:
                if cursor is None or not _cursor_refused(error):
                    raise
                logger.warning("the %s checkpoint is no longer valid; listing again", self.name)
                cursor = None
                continue
            self.requests += 1
            self._take(page.items)
            if page.next_cursor is not None and page.next_cursor in seen:
                raise ProviderError(
                    f"{self.name} returned a page cursor it had already returned",
                    provider=self.name,
                )
            seen.add(page.next_cursor or "")
            cursor = page.next_cursor
            if self.rehearsal is None:
                self.store.put_state(self.key, cursor)
            if self.progress:
                self.progress("listed", len(page.items))
            if cursor is None:
                return

    def _take(self, records: Sequence[OptOut]) -> None:
        self.listed += len(records)
        now = LocalProvider.now()
        changes = []
        for record in records:
            try:
                changes.append(_change(record, self.name, now))
            except InvalidNumber as error:
                self.unusable += 1
                logger.warning("skipping a record %s listed: %s", self.name, error)
        if self.rehearsal is not None:
            self.rehearsal.take(changes)
            self.recorded_out = self.rehearsal.recorded_out
            self.recorded_in = self.rehearsal.recorded_in
            return
        self.recorded_out += self.store.apply([c for c in changes if c.opted_out])
        self.recorded_in += self.store.apply([c for c in changes if not c.opted_out])
        # The source holds these states: it must not be sent them back as a target. A pair
        # listed twice holds the state listed last.
        held_by_source = {(c.sender, c.recipient): c.opted_out for c in changes}
        by_state: dict[tuple[str, bool], list[int]] = {}
        for (sender, recipient), opted_out in held_by_source.items():
            by_state.setdefault((sender, opted_out), []).append(recipient)
        for (sender, opted_out), recipients in by_state.items():
            self.store.confirm(self.name, sender, recipients, opted_out=opted_out, at=now)

    @property
    def recorded(self) -> int:
        return self.recorded_out + self.recorded_in

    def ledger_summary(self, hub: str) -> TargetSummary:
        """The ledger as a target: what the pull recorded in it."""
        return TargetSummary(hub, added=self.recorded_out, removed=self.recorded_in)


def _cursor_refused(error: Exception) -> bool:
    status = getattr(error, "status_code", None)
    return isinstance(error, InvalidCursor) or status in (400, 404, 410)


class _Push:
    """Sends a target every state it has not confirmed, confirming each accepted batch."""

    def __init__(
        self,
        client: Client,
        store: LedgerStore,
        rehearsal: Rehearsal | None,
        progress: Callable[[str, int], None] | None,
    ) -> None:
        self.client = client
        self.store = store
        self.rehearsal = rehearsal
        """Set in a dry run: the sends are planned from it and only counted."""
        self.progress = progress
        self.name = client.provider.name
        self.counts: dict[str, int] = {"added": 0, "removed": 0, "skipped": 0, "failed": 0}
        self.requests = 0
        self.stopped = False
        self.first: list[tuple[str, str, str]] = []
        self.notes: list[str] = []

    def run(self) -> TargetSummary:
        if self.rehearsal is not None:
            for sender, opted_out, recipients in self.rehearsal.pending(self.name):
                self._send(sender, opted_out, recipients)
        else:
            after: tuple[int, int] | None = None
            while rows := self.store.pending(self.name, after=after, limit=_PENDING_PAGE):
                groups: dict[tuple[str, bool], list[int]] = {}
                for _, sender, recipient, state in rows:
                    groups.setdefault((sender, bool(state)), []).append(recipient)
                for (sender, wanted), recipients in groups.items():
                    self._send(sender, wanted, recipients)
                after = (rows[-1][0], rows[-1][2])
        return TargetSummary(
            self.name,
            added=self.counts["added"],
            removed=self.counts["removed"],
            skipped=self.counts["skipped"],
            failed=self.counts["failed"],
            requests=self.requests,
            first=tuple(self.first),
            notes=tuple(dict.fromkeys(self.notes)),
        )

    def _send(self, sender: str, opted_out: bool, recipients: list[int]) -> None:
        action = "add" if opted_out else "remove"
        numbers = [f"+{r}" for r in recipients]
        capability = Capability.ADD if opted_out else Capability.REMOVE
        if capability not in self.client.provider.capabilities:
            self._skip(recipients, f"{self.name} cannot {action}")
            return
        if self.rehearsal is not None:
            refusal = self.client.provider.refuses(action, sender)
            if refusal is not None:
                self._skip(recipients, str(refusal))
                return
            self.counts["added" if opted_out else "removed"] += len(recipients)
            room = _SHOWN - len(self.first)
            self.first.extend((action, sender, n) for n in numbers[: max(room, 0)])
            return
        if self.stopped:
            self.counts["failed"] += len(recipients)
            return
        try:
            result = self._call(action, sender, numbers)
        except (InvalidNumber, UnsupportedOperation) as error:
            self._skip(recipients, str(error))
            return
        except AuthenticationError as error:
            # Nothing else will get through to this target: stop it, keep the others going.
            self.stopped = True
            self.counts["failed"] += len(recipients)
            self.notes.append(f"stopped: {error}")
            return
        except OptOutError as error:
            # One sender the target refuses must not hold up every other sender and target.
            self.counts["failed"] += len(recipients)
            self.notes.append(f"{sender}: {error}")
            return
        self.requests += result.requests
        accepted = [r for r, item in zip(recipients, result, strict=True) if item.ok]
        failed = len(recipients) - len(accepted)
        if accepted:
            now = LocalProvider.now()
            self.store.confirm(self.name, sender, accepted, opted_out=opted_out, at=now)
        self.counts["added" if opted_out else "removed"] += len(accepted)
        self.counts["failed"] += failed
        if failed:
            first = next(item for item in result if not item.ok)
            self.notes.append(f"{failed} failed, e.g. {first.recipient}: {first.error}")
        if self.progress:
            self.progress(self.name, len(recipients))

    def _call(self, action: str, sender: str, numbers: Iterable[str]) -> Any:
        if action == "add":
            return self.client.add(sender, numbers)
        return self.client.remove(sender, numbers)

    def _skip(self, recipients: Sequence[int], why: str) -> None:
        self.counts["skipped"] += len(recipients)
        self.notes.append(why)
