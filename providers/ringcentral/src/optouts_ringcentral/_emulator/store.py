"""The shared state: the opt-out records, kept in (sender, recipient) order for keyset paging
and indexed by recipient, the history of every change (in the v2 shape), and the helpers tests
fill and read it with."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import attrs

WILDCARD = "*"

Key = tuple[str, str]


@attrs.define
class _Record:
    status: str
    source: str
    modified: datetime
    coverage: str = "PhoneNumber"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Store:
    """The records and the queries over them; ``Emulator.__init__`` sets the attributes."""

    account_number: str
    now: Callable[[], datetime]
    rejected: set[str]
    _records: dict[Key, _Record]
    _keys: list[Key]
    _by_recipient: dict[str, set[str]]
    _history: list[tuple[str, dict[str, Any]]]

    def put(
        self,
        sender: str,
        recipient: str,
        status: str = "OptOut",
        source: str = "Recipient",
        *,
        coverage: str | None = None,
    ) -> None:
        """Store a record directly (as a recipient's STOP would), bypassing the API."""
        self._upsert(sender, recipient, status, source, coverage)

    def put_many(self, pairs: Iterable[tuple[str, str]], status: str = "OptOut") -> None:
        """Store many records at once (sorting once), for large fixtures and benchmarks."""
        moment = self.now()
        for sender, recipient in pairs:
            key = (sender, recipient)
            if key not in self._records:
                self._keys.append(key)
                self._by_recipient[recipient].add(sender)
            coverage = "Account" if sender == WILDCARD else "PhoneNumber"
            self._records[key] = _Record(status, "Recipient", moment, coverage)
        self._keys.sort()

    def records(self) -> dict[Key, str]:
        """Every stored pair with its status, for assertions."""
        return {key: record.status for key, record in self._records.items()}

    def _upsert(
        self, sender: str, recipient: str, status: str, source: str, coverage: str | None
    ) -> None:
        account_wide = sender == WILDCARD or coverage == "Account"
        key = (WILDCARD if account_wide else sender, recipient)
        if key not in self._records:
            bisect.insort(self._keys, key)
            self._by_recipient[recipient].add(key[0])
        record = _Record(status, source, self.now(), "Account" if account_wide else "PhoneNumber")
        self._records[key] = record
        self._history.append((recipient, self._v2_record(key, record)))

    def _select(
        self,
        *,
        senders: set[str] | None,
        recipients: set[str] | None,
        statuses: set[str],
        coverages: set[str] | None,
        after: Key | None,
        limit: int,
    ) -> tuple[list[tuple[Key, _Record]], bool]:
        """Up to ``limit`` matching records after ``after`` in key order, and whether more match."""
        found: list[tuple[Key, _Record]] = []
        for key in self._candidates(senders, recipients, after):
            record = self._records[key]
            if record.status not in statuses:
                continue
            if senders is not None and key[0] not in senders:
                continue
            if recipients is not None and key[1] not in recipients:
                continue
            if coverages is not None and record.coverage not in coverages:
                continue
            if len(found) == limit:
                return found, True
            found.append((key, record))
        return found, False

    def _candidates(
        self, senders: set[str] | None, recipients: set[str] | None, after: Key | None
    ) -> Iterator[Key]:
        if recipients is not None:
            keys = sorted(
                (sender, to) for to in recipients for sender in self._by_recipient.get(to, ())
            )
            start = bisect.bisect_right(keys, after) if after else 0
            yield from keys[start:]
            return
        if senders is not None:
            for sender in sorted(senders):
                if after is not None and sender < after[0]:
                    continue
                low = (sender, "")
                start = (
                    bisect.bisect_right(self._keys, after)
                    if after and after[0] == sender
                    else bisect.bisect_left(self._keys, low)
                )
                for index in range(start, len(self._keys)):
                    key = self._keys[index]
                    if key[0] != sender:
                        break
                    yield key
            return
        start = bisect.bisect_right(self._keys, after) if after else 0
        yield from itertools.islice(self._keys, start, None)

    def _v2_record(self, key: Key, record: _Record) -> dict[str, Any]:
        sender = self.account_number if key[0] == WILDCARD else key[0]
        return {
            "from": sender,
            "to": key[1],
            "optStatus": record.status,
            "source": record.source,
            "coverage": record.coverage,
            "lastModifiedTime": _iso(record.modified),
        }
