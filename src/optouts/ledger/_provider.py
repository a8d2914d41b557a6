"""Provider ``local``: a ``Ledger`` behind the same interface as any vendor.

It needs no account and answers from its own records, so its ``check`` is always definite:
a pair it has no opt-out for is not opted out. A ``*`` sender's opt-out counts for every
sender, as RingCentral's account-wide opt-outs do: a ``remove`` for one sender reports a
recipient a ``*`` opt-out still holds as opted out, as the next ``check`` would.

That is only true of a ledger that exists: ``check`` and ``list`` on a ledger that is not
there raise ``ConfigurationError`` instead of answering from an empty one, while ``add``
and ``remove`` create it. The store applies that rule (see ``_base``), since the provider
is made before the operation is known.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Sequence
from typing import ClassVar

from .._config import Setting, Settings
from .._errors import InvalidCursor
from .._models import Capability, OptOut, Outcome, Page, Status
from .._numbers import WILDCARD, country_of
from .._provider import Exchange, Provider, Results, StatusFilter
from ._base import LedgerStore, Row, datetime_of
from ._open import open_store
from ._settings import LEDGER_SETTINGS, database_of

__all__ = ["LocalProvider"]

_CURSOR_PREFIX = "l1:"
_INT64 = 2**63


class LocalProvider(Provider):
    """The ledger: SQLite by default, PostgreSQL for many hosts."""

    name: ClassVar[str] = "local"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    max_batch: ClassVar[int] = 100_000
    """Large, because SQLite writes each touched page once per transaction."""
    max_page_size: ClassVar[int] = 10_000
    default_page_size: ClassVar[int] = 100
    blocking: ClassVar[bool] = True
    default_concurrency: ClassVar[int] = 1
    settings: ClassVar[tuple[Setting, ...]] = LEDGER_SETTINGS

    def __init__(self, store: LedgerStore, *, source: str = "api", owned: bool = True) -> None:
        self._store = store
        self.source = source
        self._owned = owned
        """Whether closing the client closes the store (not when a ``Ledger`` lends it)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalProvider:
        given = settings["database"]
        database = database_of(given.reveal() if given else None)
        return cls(open_store(database), source=settings["source"])

    def __repr__(self) -> str:
        return f"<LocalProvider database={self._store.location!r}>"

    def add(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._set(sender, recipients, opted_out=True)
        yield  # pragma: no cover - makes this an exchange

    def remove(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._set(sender, recipients, opted_out=False)
        yield  # pragma: no cover - makes this an exchange

    def _set(self, sender: str, recipients: Sequence[str], *, opted_out: bool) -> Results:
        by_country: dict[str | None, list[int]] = {}
        for r in recipients:
            country = country_of(r)
            group = by_country.get(country)
            if group is None:
                group = by_country[country] = []
            group.append(int(r[1:]))
        self._store.set_state(sender, by_country, opted_out=opted_out, source=self.source)
        if opted_out or sender == WILDCARD:
            return dict.fromkeys(
                recipients, Outcome.OPTED_OUT if opted_out else Outcome.NOT_OPTED_OUT
            )
        # A remove for one sender leaves a "*" opt-out standing: the recipient stays opted
        # out of this sender too, as the next check says. The remove itself succeeded.
        digits = [int(r[1:]) for r in recipients]
        still = self._store.opted_out([WILDCARD], digits)
        return {
            r: Outcome.OPTED_OUT if d in still else Outcome.NOT_OPTED_OUT
            for r, d in zip(recipients, digits, strict=True)
        }

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        digits = list(map(int, recipients))  # E.164: int() reads the "+" as a sign
        senders = [sender] if sender == WILDCARD else [sender, WILDCARD]
        found = self._store.opted_out(senders, digits)
        # every recipient not opted out, then the few that are: built from C, in input order
        answers = dict.fromkeys(recipients, Outcome.NOT_OPTED_OUT)
        if found:
            for recipient in itertools.compress(recipients, map(found.__contains__, digits)):
                answers[recipient] = Outcome.OPTED_OUT
        return answers
        yield  # pragma: no cover - makes this an exchange

    def list_page(
        self, sender: str | None, status: StatusFilter, page_size: int, cursor: str | None
    ) -> Exchange[Page]:
        rows = self._store.page(
            sender=sender,
            opted_out=None if status is None else status is Status.OPTED_OUT,
            after=_decode_cursor(cursor) if cursor else None,
            limit=page_size + 1,
        )
        more = len(rows) > page_size
        rows = rows[:page_size]
        next_cursor = _encode_cursor(rows[-1][6], rows[-1][1]) if more else None
        return Page(tuple(_record(row) for row in rows), next_cursor)
        yield  # pragma: no cover - makes this an exchange

    def close(self) -> Exchange[None]:
        if self._owned:
            self._store.close()
        return
        yield  # pragma: no cover - makes this an exchange


def _record(row: Row) -> OptOut:
    sender, recipient, opted_out, country, source, updated_at, _ = row
    return OptOut(
        sender=sender,
        recipient=f"+{recipient}",
        status=Status.OPTED_OUT if opted_out else Status.OPTED_IN,
        country=country,
        source=source,
        updated_at=datetime_of(updated_at),
        provider=LocalProvider.name,
    )


def _encode_cursor(sender_id: int, recipient: int) -> str:
    raw = f"{_CURSOR_PREFIX}{sender_id}:{recipient}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        sender_id, recipient = (int(part) for part in raw[len(_CURSOR_PREFIX) :].split(":"))
        if not (0 <= sender_id < _INT64 and 0 <= recipient < _INT64):
            raise ValueError(raw)
        return sender_id, recipient
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidCursor(f"{cursor!r} is not a cursor of the local ledger") from None
