"""CSV import and export of opt-out records, streamed, for moving lists between systems.

The format is one header line, ``sender,recipient,status,source,updated_at``, then one
record a line: ``status`` is ``opted-out`` or ``opted-in``; ``source`` and ``updated_at``
(ISO 8601, UTC when no offset is given) may be empty. A bad line is reported with its
number and reason and never stops the good ones.

Into the ledger, records keep their source and time and the newer state wins, so
importing the same file twice changes nothing. Into a vendor, they become add and
remove calls (the vendor keeps its own times).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import NamedTuple, TextIO

import attrs

from ._client import Client
from ._errors import InvalidNumber, OptOutError
from ._models import Capability
from ._numbers import country_of, is_e164, normalize, normalize_sender
from .ledger import Change, LocalProvider

__all__ = ["HEADER", "ImportReport", "export_csv", "import_csv"]

HEADER = ("sender", "recipient", "status", "source", "updated_at")
_REQUIRED = ("sender", "recipient", "status")
_STATUSES = {
    "opted-out": True,
    "optout": True,
    "opt-out": True,
    "opted-in": False,
    "optin": False,
    "opt-in": False,
}
_WINDOW = 50_000
_KEPT_ERRORS = 1_000
_DEFAULT_SOURCE = "import"
_FUTURE_ALLOWANCE = 24 * 3600 * 1_000_000
"""Clock skew tolerated in updated_at, in microseconds."""


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


class _Record(NamedTuple):
    line: int
    sender: str
    recipient: str
    opted_out: bool
    source: str
    at: int | None


def export_csv(
    client: Client, out: TextIO, *, sender: str | None = None, status: str = "all"
) -> int:
    """Write every record (of ``sender``) as CSV; returns how many were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for record in client.list(sender, status=status):
        when = record.updated_at
        writer.writerow(
            (
                record.sender,
                record.recipient,
                record.status.value,
                record.source or "",
                when.isoformat().replace("+00:00", "Z") if when else "",
            )
        )
        count += 1
    return count


def import_csv(
    client: Client,
    lines: Iterable[str],
    *,
    source: str = _DEFAULT_SOURCE,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Read CSV ``lines`` and record every good row through ``client``; bad lines are reported.

    ``source`` is recorded for rows whose source column is empty; name the file, so that an
    undated opt-in of one file cannot undo an opt-out that another file reported.
    """
    rows = csv.reader(lines)
    try:
        header = next(rows)
    except StopIteration:
        return ImportReport(0, 0, 1, ((1, "empty file: expected a header line"),))
    columns = _columns(header)
    errors: list[tuple[int, str]] = []
    failed = applied = total = 0
    ledger = client.provider if isinstance(client.provider, LocalProvider) else None
    for window, bad in _windows(rows, columns, client.default_region, source):
        total += len(window) + len(bad)
        failed += len(bad)
        errors.extend(bad[: max(0, _KEPT_ERRORS - len(errors))])
        if ledger is not None:
            applied += ledger.ledger.apply(_changes(ledger, window))
        else:
            took, refused = _into_vendor(client, window)
            applied += took
            failed += len(refused)
            errors.extend(refused[: max(0, _KEPT_ERRORS - len(errors))])
        if progress:
            progress(len(window) + len(bad))
    errors.sort()
    return ImportReport(total, applied, failed, tuple(errors))


def _columns(header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    missing = [name for name in _REQUIRED if name not in names]
    if missing:
        raise ValueError(
            f"the header names no {', '.join(missing)} column; expected {','.join(HEADER)}"
        )
    return {name: names.index(name) for name in HEADER if name in names}


def _windows(
    rows: Iterator[list[str]], columns: dict[str, int], region: str | None, default_source: str
) -> Iterator[tuple[list[_Record], list[tuple[int, str]]]]:
    window: list[_Record] = []
    bad: list[tuple[int, str]] = []
    width = max(columns.values()) + 1
    get_source, get_time = columns.get("source"), columns.get("updated_at")
    sender_at, recipient_at, status_at = columns["sender"], columns["recipient"], columns["status"]
    senders: dict[str, str] = {}  # a file names few senders: normalise each once
    times = _Times()
    for number, row in enumerate(rows, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            if len(row) < width:
                raise ValueError(f"{len(row)} fields, expected {width}")
            cell = row[status_at]
            state = _STATUSES.get(cell)
            if state is None:
                state = _STATUSES.get(cell.strip().lower())
            if state is None:
                raise ValueError(f"status {row[status_at]!r} is not opted-out or opted-in")
            raw_sender = row[sender_at]
            sender = senders.get(raw_sender)
            if sender is None:
                sender = senders[raw_sender] = normalize_sender(raw_sender, region)
            recipient = row[recipient_at]
            if not is_e164(recipient):
                recipient = normalize(recipient.strip(), region)
            source = row[get_source].strip() if get_source is not None else ""
            at = times.micros(row[get_time]) if get_time is not None else None
            window.append(_Record(number, sender, recipient, state, source or default_source, at))
        except InvalidNumber as exc:
            bad.append((number, f"{exc.value!r}: {exc.reason}"))
        except ValueError as exc:
            bad.append((number, str(exc)))
        if len(window) + len(bad) >= _WINDOW:
            yield window, bad
            window, bad = [], []
    if window or bad:
        yield window, bad


class _Times:
    """ISO 8601 text to microseconds, remembering recent answers (exports repeat times)."""

    def __init__(self) -> None:
        self._seen: dict[str, int | None] = {}

    def micros(self, text: str) -> int | None:
        known = self._seen.get(text, -1)
        if known != -1:
            return known
        value = _micros(text)
        if len(self._seen) > 100_000:
            self._seen.clear()
        self._seen[text] = value
        return value


def _micros(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"updated_at {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    micros = int(moment.timestamp() * 1_000_000)
    if micros > time.time_ns() // 1000 + _FUTURE_ALLOWANCE:
        # A future time would beat every real report after it: refuse the row instead.
        raise ValueError(f"updated_at {text!r} is in the future")
    return micros


def _changes(provider: LocalProvider, window: list[_Record]) -> list[Change]:
    now = provider.now()
    make = tuple.__new__  # builds the named tuple without its Python-level __new__: 3x faster
    return [
        make(
            Change,
            (
                sender,
                int(recipient[1:]),
                opted_out,
                source,
                now if at is None else at,
                country_of(recipient),
                at is not None,
            ),
        )
        for _, sender, recipient, opted_out, source, at in window
    ]


def _latest(window: list[_Record]) -> list[_Record]:
    """One record per pair: the newest (by updated_at, else by line), an opt-out on a tie.

    Vendors keep no times, and adds and removes go out in groups, so without this a file's
    older opt-in could land after its newer opt-out.
    """
    best: dict[tuple[str, str], _Record] = {}
    for record in window:
        key = (record.sender, record.recipient)
        held = best.get(key)
        if held is None or _rank(record) >= _rank(held):
            best[key] = record
    return list(best.values())


def _rank(record: _Record) -> tuple[int, bool]:
    return (record.at if record.at is not None else -1, record.opted_out)


def _into_vendor(client: Client, window: list[_Record]) -> tuple[int, list[tuple[int, str]]]:
    groups: dict[tuple[str, bool], list[_Record]] = {}
    for record in _latest(window):
        groups.setdefault((record.sender, record.opted_out), []).append(record)
    took = 0
    refused: list[tuple[int, str]] = []
    for (sender, opted_out), records in groups.items():
        capability = Capability.ADD if opted_out else Capability.REMOVE
        if capability not in client.provider.capabilities:
            why = str(client.provider.unsupported(capability))
            refused.extend((r.line, why) for r in records)
            continue
        call = client.add if opted_out else client.remove
        try:
            result = call(sender, [r.recipient for r in records])
        except OptOutError as exc:
            # This group is refused as a whole (a sender the vendor does not know, say);
            # its lines are reported and the other groups still go in.
            refused.extend((r.line, str(exc)) for r in records)
            continue
        for record, item in zip(records, result, strict=True):
            if item.ok:
                took += 1
            else:
                refused.append((record.line, item.error or "refused"))
    return took, refused
