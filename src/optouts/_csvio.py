"""CSV import and export of opt-out records, streamed, for moving lists between systems.

The format is one header line, ``sender,recipient,status,source,updated_at``, then one
record a line: ``status`` is ``opted-out`` or ``opted-in``; ``source`` and ``updated_at``
(ISO 8601, UTC when no offset is given) may be empty. A bad line is reported with its
number and reason and never stops the good ones: a quote left open is reported at its line
and the lines after it are read as rows (``_csvparse`` says by what rule).

A cell that a spreadsheet would run as a formula (one starting ``=``, ``+``, ``-``, ``@``,
tab or carriage return) is written with a leading ``'``, and read back without it; numbers
in E.164 (``+`` and digits) are left as they are.

Into a ``Ledger``, records keep their source and time and the newer state wins, so
importing the same file twice changes nothing. A time is never taken on trust, as a sync's
is not (``trusted_time``): one further ahead of the clock than it may run fast is taken as
the time of the import, undated, and an opt-in never counts from later than that. Into a
vendor's ``Client`` (any client, ``ledger.client()`` too), they become add and remove
calls, which keep no times.
"""

from __future__ import annotations

import csv
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import TextIO

import attrs

from ._client import Client
from ._csvparse import HEADER, Window, guarded, parse, read_header
from ._errors import OptOutError
from ._models import Capability, Status
from ._numbers import normalize_sender
from .ledger import Change, Ledger
from .ledger._base import TextRow, iso_utc_of

__all__ = ["HEADER", "ImportReport", "export_csv", "import_csv"]

_LEDGER_WINDOW = 150_000
"""Rows a ledger transaction takes: big enough that each B-tree page is written few times."""
_LEDGER_FIRST = 20_000
"""Rows of the first: the store starts writing while the rest of the window is read."""
_VENDOR_WINDOW = 50_000
_EXPORT_PAGE = 10_000
_KEPT_ERRORS = 1_000
_DEFAULT_SOURCE = "import"
_SOURCE = itemgetter(3)


@attrs.frozen
class ImportReport:
    """What an import did: rows read, changes taken, and the bad lines."""

    rows: int
    applied: int
    """Records the provider took: new pairs or changed states (the ledger), or ok results."""
    failed: int
    errors: tuple[tuple[int, str], ...]
    """(line number, reason) of the first bad lines."""

    @property
    def ok(self) -> bool:
        return self.failed == 0


@attrs.define
class _Tally:
    rows: int = 0
    applied: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = attrs.Factory(list)

    def read(self, window: Window) -> int:
        """Count a window's rows and refuse its bad lines; returns how many rows it held."""
        rows = len(window.changes) + len(window.bad)
        self.rows += rows
        self.refuse(window.bad)
        return rows

    def refuse(self, lines: list[tuple[int, str]]) -> None:
        self.failed += len(lines)
        self.errors.extend(lines[: max(0, _KEPT_ERRORS - len(self.errors))])

    def report(self) -> ImportReport:
        return ImportReport(self.rows, self.applied, self.failed, tuple(sorted(self.errors)))


def export_csv(
    source: Ledger | Client, out: TextIO, *, sender: str | None = None, status: str = "all"
) -> int:
    """Write every record (of ``sender``) as CSV; returns how many were written.

    A ledger hands over rows already as text (no model object per row); a client goes
    through ``client.list``.
    """
    writer = csv.writer(out, lineterminator="\n")
    count = 0
    if isinstance(source, Ledger):
        wanted = None if sender is None else normalize_sender(sender)
        # asked for before the header is written: a ledger that is not there writes nothing
        pages = source.rows(sender=wanted, opted_out=_opted_out(status))
        writer.writerow(HEADER)
        for rows in pages:
            writer.writerows(_guarded_sources(rows))
            count += len(rows)
        return count
    records = iter(source.list(sender, status=status))
    first = next(records, None)  # asked for before the header: a refusal writes nothing
    writer.writerow(HEADER)
    for record in itertools.chain([first] if first is not None else [], records):
        when = record.updated_at
        writer.writerow(
            (
                guarded(record.sender, number=True),
                guarded(record.recipient, number=True),
                record.status.value,
                guarded(record.source or ""),
                iso_utc_of(when) if when else "",
            )
        )
        count += 1
    return count


def _opted_out(status: str) -> bool | None:
    """The ledger's filter for an export's ``status``: all, opted-out or opted-in."""
    if status == "all":
        return None
    try:
        return Status(status) is Status.OPTED_OUT
    except ValueError:
        raise ValueError(f"status must be opted-out, opted-in or all, not {status!r}") from None


def _guarded_sources(rows: list[TextRow]) -> list[TextRow]:
    """The ledger's rows with their sources guarded; the other cells are its own (E.164, a
    short code or ``*``, a state, a time). A page holds few distinct sources, so each is
    checked once, not each row: a percent or two of an export's time."""
    risky = {source for source in set(map(_SOURCE, rows)) if guarded(source) != source}
    if not risky:
        return rows
    return [row if row[3] not in risky else (*row[:3], guarded(row[3]), row[4]) for row in rows]


def import_csv(
    target: Ledger | Client,
    lines: Iterable[str],
    *,
    source: str = _DEFAULT_SOURCE,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Read CSV ``lines`` and record every good row in ``target``; bad lines are reported.

    ``source`` is recorded for rows whose source column is empty; name the file, so that an
    undated opt-in of one file cannot undo an opt-out that another file reported. Numbers
    without a country code are read in the client's ``default_region`` (a ledger has none).
    A header that lacks a required column or names one twice raises ValueError, before
    anything is recorded.
    """
    remaining = iter(lines)
    header = read_header(remaining)
    if header is None:
        return ImportReport(0, 0, 0, ())  # an empty file: no rows, so none failed
    columns, after = header
    ledger = target if isinstance(target, Ledger) else None
    windows = parse(
        remaining,
        columns,
        after=after,
        region=None if isinstance(target, Ledger) else target.default_region,
        default_source=source,
        now=Ledger.now,
        size=_LEDGER_WINDOW if ledger is not None else _VENDOR_WINDOW,
        first=_LEDGER_FIRST if ledger is not None else None,
        keep_lines=ledger is None,
    )
    if isinstance(target, Ledger):
        return _into_ledger(target, windows, progress)
    tally = _Tally()
    for window in windows:
        rows = tally.read(window)
        took, refused = _into_vendor(target, window)
        tally.applied += took
        tally.refuse(refused)
        if progress:
            progress(rows)
    return tally.report()


def _into_ledger(
    ledger: Ledger, windows: Iterator[Window], progress: Callable[[int], None] | None
) -> ImportReport:
    """Each window is one transaction; the store may write one while the next is parsed."""
    tally = _Tally()
    sizes: deque[int] = deque()

    def changes() -> Iterator[Sequence[Change]]:
        for window in windows:
            sizes.append(tally.read(window))
            yield window.changes
            del window  # gone while the next window is read, not once it is

    for applied in ledger.record_batches(changes()):
        tally.applied += applied
        rows = sizes.popleft()
        if progress:
            progress(rows)
    return tally.report()


def _latest(window: Window) -> list[tuple[int, Change]]:
    """One change per pair: the newest (by updated_at, else by line), an opt-out on a tie.

    Vendors keep no times, and adds and removes go out in groups, so without this a file's
    older opt-in could land after its newer opt-out.
    """
    best: dict[tuple[str, int], tuple[int, Change]] = {}
    for line, change in zip(window.lines, window.changes, strict=True):
        key = (change.sender, change.recipient)
        held = best.get(key)
        if held is None or _rank(change) >= _rank(held[1]):
            best[key] = (line, change)
    return list(best.values())


def _rank(change: Change) -> tuple[int, bool]:
    return (change.at if change.dated else -1, change.opted_out)


def _into_vendor(client: Client, window: Window) -> tuple[int, list[tuple[int, str]]]:
    groups: dict[tuple[str, bool], list[tuple[int, Change]]] = {}
    for line, change in _latest(window):
        groups.setdefault((change.sender, change.opted_out), []).append((line, change))
    took = 0
    refused: list[tuple[int, str]] = []
    for (sender, opted_out), records in groups.items():
        capability = Capability.ADD if opted_out else Capability.REMOVE
        if capability not in client.provider.capabilities:
            why = str(client.provider.unsupported(capability))
            refused.extend((line, why) for line, _ in records)
            continue
        call = client.add if opted_out else client.remove
        try:
            result = call(sender, [f"+{change.recipient}" for _, change in records])
        except OptOutError as exc:
            # This group is refused as a whole (a sender the vendor does not know, say);
            # its lines are reported and the other groups still go in.
            refused.extend((line, str(exc)) for line, _ in records)
            continue
        for (line, _), item in zip(records, result, strict=True):
            if item.ok:
                took += 1
            else:
                refused.append((line, item.error or "refused"))
    return took, refused
