"""Listing in the common model: AWS's records as sender–recipient pairs, and a cursor over lists.

A listing may read several lists (every list in use, for a listing of all senders), and
one AWS record becomes one ``OptOut`` per sender that uses its list, so one AWS page may
hold more pairs than a page of the listing may. The cursor says where the next page
starts: which list of the plan, AWS's ``NextToken`` for the page being read, how many of
that page's pairs were already handed out, and the ``MaxResults`` that page was asked with
(so it is asked for again with the same size). It also carries a fingerprint of the plan:
a cursor made under another ``sender_lists`` is refused with ``InvalidCursor``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence

import attrs

from optouts import InvalidCursor, OptOut, Status
from optouts.plugin import country_of

from ._wire import Record

__all__ = ["Position", "fingerprint", "to_opt_outs"]

PROVIDER = "aws"
_PREFIX = "aws1."

Plan = Sequence[tuple[str, Sequence[str]]]


def fingerprint(plan: Plan) -> str:
    text = json.dumps([[name, list(senders)] for name, senders in plan], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@attrs.frozen
class Position:
    """Where a page of a listing starts."""

    index: int = 0
    """Which list of the plan."""
    token: str | None = None
    """AWS's NextToken for the page of that list being read (None: its first page)."""
    skip: int = 0
    """Pairs of that AWS page already handed out."""
    size: int | None = None
    """The MaxResults that AWS page was asked with, once part of it was handed out."""

    def encode(self, plan: Plan) -> str:
        data = [fingerprint(plan), self.index, self.token, self.skip, self.size]
        raw = json.dumps(data, separators=(",", ":")).encode()
        return _PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, cursor: str | None, plan: Plan) -> Position:
        if cursor is None:
            return cls()
        if not cursor.startswith(_PREFIX):
            raise InvalidCursor(f"not a cursor of provider 'aws': {cursor[:40]!r}")
        data = cursor[len(_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            mark, index, token, skip, size = json.loads(raw)
        except (binascii.Error, ValueError, TypeError, RecursionError):
            raise InvalidCursor(f"not a cursor of provider 'aws': {cursor[:40]!r}") from None
        if mark != fingerprint(plan):
            raise InvalidCursor(
                "this cursor was made for another listing (another sender, or other "
                "sender_lists); start again without it"
            )
        valid = (
            type(index) is int
            and 0 <= index < len(plan)
            and (token is None or isinstance(token, str))
            and type(skip) is int
            and skip >= 0
            and (size is None or (type(size) is int and size >= 1))
        )
        if not valid:
            raise InvalidCursor(f"not a cursor of provider 'aws': {cursor[:40]!r}")
        return cls(index, token, skip, size)


def to_opt_outs(record: Record, senders: Sequence[str], list_name: str) -> list[OptOut]:
    """One record of ``list_name`` as the pairs it stands for, one per sender."""
    raw = {**record.raw, "OptOutListName": list_name}
    source = None if record.end_user is None else ("recipient" if record.end_user else "api")
    country = country_of(record.number)
    return [
        OptOut(
            sender=sender,
            recipient=record.number,
            status=Status.OPTED_OUT,
            country=country,
            source=source,
            updated_at=record.timestamp,
            provider=PROVIDER,
            raw=raw,
        )
        for sender in senders
    ]
