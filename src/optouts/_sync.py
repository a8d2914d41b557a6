from __future__ import annotations

import logging
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from datetime import timezone
from typing import IO, Any

import attrs

from ._client import Client
from ._errors import InvalidCursor, InvalidNumber, OptOutError, ProviderError
from ._models import Capability, OptOut
from ._numbers import country_of, normalize, normalize_sender
from ._push import Verdict, accepted, action_of, e164, lacks, refused, verdict
from .ledger import Change, Ledger, micros_of, trusted_time

__all__ = ["SyncSummary", "TargetSummary", "sync"]

logger = logging.getLogger("optouts")

LEDGER = "local"
"""The name that means the ledger itself, as a source or a target."""
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
    at, dated = trusted_time(_micros(record), opted_out=record.opted_out, received=now)
    recipient = normalize(record.recipient)
    return Change(
        sender=normalize_sender(record.sender),
        recipient=int(recipient[1:]),
        opted_out=record.opted_out,
        source=source,
        at=at,
        country=record.country or country_of(recipient),
        dated=dated,
    )


def sync(
    source: Client | str,
    targets: Sequence[Client | str],
    *,
    ledger: Ledger | None = None,
    dry_run: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> SyncSummary:
    """Pull every record of ``source`` into the ledger, then push unconfirmed states to ``targets``.

    Vendors may be given by name (opened for this sync, configured from the environment and
    the ledger's optouts.toml) or as open clients, which keep their session and pacing
    across calls; ``"local"`` names the ledger itself. ``ledger`` defaults to
    ``Ledger.from_settings()``. ``progress(phase, count)`` is called as pages and batches
    complete. With ``dry_run`` nothing is changed anywhere: the summary says what would be
    sent, and a ledger that does not exist is a ``ConfigurationError``.
    """
    if ledger is not None and not isinstance(ledger, Ledger):
        raise TypeError(f"ledger must be an optouts.Ledger, not {type(ledger).__name__}")
    with ExitStack() as opened:
        hub = ledger if ledger is not None else opened.enter_context(Ledger.from_settings())

        def client(value: Client | str) -> Client | None:
            if isinstance(value, Client):
                return value
            if value == LEDGER:
                return None
            return opened.enter_context(Client(value, config=hub.config_path))

        return _sync(client(source), [client(t) for t in targets], hub, dry_run, progress)


def _sync(
    source: Client | None,
    targets: Sequence[Client | None],
    ledger: Ledger,
    dry_run: bool,
    progress: Callable[[str, int], None] | None,
) -> SyncSummary:
    """``None`` as source or target is the ledger itself."""
    started = time.perf_counter()
    if source is not None and Capability.LIST not in source.provider.capabilities:
        raise source.provider.unsupported(Capability.LIST)
    pull = _Pull(source, progress) if source is not None else None

    def push(into: Ledger) -> list[TargetSummary]:
        summaries = []
        for target in targets:
            if target is None:  # the ledger as a target: what the pull recorded in it
                out, back = (pull.recorded_out, pull.recorded_in) if pull else (0, 0)
                summaries.append(TargetSummary(LEDGER, added=out, removed=back))
            else:
                summaries.append(_Push(target, into, dry_run, progress).run())
        return summaries

    if dry_run:
        ledger.require()  # a plan needs the ledger: an empty one would be a guess
        with _Spool() as spool:
            if pull is not None:
                spool.fill(pull.listing(ledger))  # the slow part, outside the rehearsal
            with ledger.rehearsal() as scratch:
                if pull is not None:
                    for changes, cursor in spool:
                        pull.take(scratch, changes, cursor)
                summaries = push(scratch)
    else:
        ledger.require(write=True)
        if pull is not None:
            for changes, cursor in pull.listing(ledger):
                pull.take(ledger, changes, cursor)
        summaries = push(ledger)
    return SyncSummary(
        source=LEDGER if source is None else source.provider.name,
        listed=0 if pull is None else pull.listed,
        recorded=0 if pull is None else pull.recorded,
        source_requests=0 if pull is None else pull.requests,
        targets=tuple(summaries),
        dry_run=dry_run,
        seconds=time.perf_counter() - started,
    )


class _Spool:
    """A dry run's listed pages in a private temporary file, read back in order: a first
    dry run over millions of records needs no more memory than one page."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="optouts-dry-run-")  # noqa: SIM115 - closed by __exit__
        self._pages = 0

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def fill(self, pages: Iterable[tuple[list[Change], str | None]]) -> None:
        for page in pages:
            pickle.dump(page, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._pages += 1

    def __iter__(self) -> Iterator[tuple[list[Change], str | None]]:
        self._file.seek(0)
        for _ in range(self._pages):
            changes, cursor = pickle.load(self._file)  # our own file, written above
            yield changes, cursor


class _Pull:
    """Lists the source page by page; each page is recorded in the ledger and checkpointed."""

    def __init__(self, client: Client, progress: Callable[[str, int], None] | None) -> None:
        self.client = client
        self.progress = progress
        self.name = client.provider.name
        self.key = f"pull:{self.name}:cursor"
        self.listed = self.requests = self.unusable = 0
        self.recorded_out = self.recorded_in = 0

    def listing(self, ledger: Ledger) -> Iterator[tuple[list[Change], str | None]]:
        """Each page's changes with the cursor after it, from the ledger's checkpoint on."""
        cursor = ledger.checkpoint(self.key)  # a dry run resumes where the real run would
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
            if page.next_cursor is not None and page.next_cursor in seen:
                raise ProviderError(
                    f"{self.name} returned a page cursor it had already returned",
                    provider=self.name,
                )
            seen.add(page.next_cursor or "")
            cursor = page.next_cursor
            yield self._changes(page.items), cursor
            if self.progress:
                self.progress("listed", len(page.items))
            if cursor is None:
                return

    def _changes(self, records: Sequence[OptOut]) -> list[Change]:
        self.listed += len(records)
        now = Ledger.now()
        changes = []
        for record in records:
            try:
                changes.append(_change(record, self.name, now))
            except InvalidNumber as error:
                self.unusable += 1
                logger.warning("skipping a record %s listed: %s", self.name, error)
        return changes

    def take(self, ledger: Ledger, changes: list[Change], cursor: str | None) -> None:
        """Record one page's changes, note that the source holds them, keep the cursor."""
        self.recorded_out += ledger.record([c for c in changes if c.opted_out])
        self.recorded_in += ledger.record([c for c in changes if not c.opted_out])
        # The source holds these states: it must not be sent them back as a target. A pair
        # listed twice holds the state listed last.
        held_by_source = {(c.sender, c.recipient): c.opted_out for c in changes}
        by_state: dict[tuple[str, bool], list[int]] = {}
        for (sender, recipient), opted_out in held_by_source.items():
            by_state.setdefault((sender, opted_out), []).append(recipient)
        for (sender, opted_out), recipients in by_state.items():
            ledger.confirm(self.name, sender, recipients, opted_out=opted_out)
        ledger.set_checkpoint(self.key, cursor)

    @property
    def recorded(self) -> int:
        return self.recorded_out + self.recorded_in


def _cursor_refused(error: Exception) -> bool:
    status = getattr(error, "status_code", None)
    return isinstance(error, InvalidCursor) or status in (400, 404, 410)


class _Push:
    """Sends a target every state it has not confirmed, confirming each accepted batch."""

    def __init__(
        self,
        client: Client,
        ledger: Ledger,
        dry_run: bool,
        progress: Callable[[str, int], None] | None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.dry_run = dry_run
        """In a dry run the sends are only counted (against a rehearsal of the ledger)."""
        self.progress = progress
        self.name = client.provider.name
        self.counts: dict[str, int] = {"added": 0, "removed": 0, "skipped": 0, "failed": 0}
        self.requests = 0
        self.stopped = False
        self.first: list[tuple[str, str, str]] = []
        self.notes: list[str] = []

    def run(self) -> TargetSummary:
        for sender, opted_out, recipients in self.ledger.pending(self.name):
            self._send(sender, opted_out, recipients)
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
        action = action_of(opted_out)
        numbers = e164(recipients)
        provider = self.client.provider
        why = lacks(provider, opted_out)
        if why is not None:
            self._skip(recipients, why)
            return
        if self.dry_run:
            why = refused(provider, sender, opted_out)
            if why is not None:
                self._skip(recipients, why)
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
        except OptOutError as error:
            taken = verdict(error)
            if taken is Verdict.SKIP:
                self._skip(recipients, str(error))
                return
            self.counts["failed"] += len(recipients)
            if taken is Verdict.STOP:
                # Nothing else will get through to this target: stop it, keep the others going.
                self.stopped = True
                self.notes.append(f"stopped: {error}")
            else:
                # One sender the target refuses must not hold up every other sender and target.
                self.notes.append(f"{sender}: {error}")
            return
        self.requests += result.requests
        sent = accepted(recipients, result)
        if sent.recipients:
            self.ledger.confirm(self.name, sender, sent.recipients, opted_out=opted_out)
        self.counts["added" if opted_out else "removed"] += len(sent.recipients)
        self.counts["failed"] += sent.failed
        if sent.note is not None:
            self.notes.append(sent.note)
        if self.progress:
            self.progress(self.name, len(recipients))

    def _call(self, action: str, sender: str, numbers: Iterable[str]) -> Any:
        if action == "add":
            return self.client.add(sender, numbers)
        return self.client.remove(sender, numbers)

    def _skip(self, recipients: Sequence[int], why: str) -> None:
        self.counts["skipped"] += len(recipients)
        self.notes.append(why)
