"""The emulator's account: opt-out lists, their numbers, and page tokens that stay true.

Each list keeps its numbers in sorted order, so a page token is a key (the last number
handed out) bound to the query that made it: paging over a list that changes between
pages loses and repeats nothing that stayed, and a token used with another query, list
or filter is refused (``INVALID_NEXT_TOKEN``), as AWS refuses a foreign one.
AWS's rule that a number may be deleted from a list once in 30 days is kept too, and a
create sent again with its ``ClientToken`` (the model's idempotency token) is answered as
the first was, as AWS answers a retried idempotent request.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import attrs

from .._model import DEFAULT_LIST
from .wire import Reply, model_error

__all__ = ["DELETE_COOLDOWN", "Entry", "OptOutList", "Store"]

DELETE_COOLDOWN = 30 * 24 * 3600.0
"""Seconds before a number deleted from a list may be deleted from it again."""


@attrs.define
class Entry:
    timestamp: float
    end_user: bool


@attrs.define
class OptOutList:
    name: str
    arn: str
    created: float
    numbers: dict[str, Entry] = attrs.Factory(dict)
    ordered: list[str] = attrs.Factory(list)
    """The numbers, sorted: the keys of keyset paging."""
    deleted: dict[str, float] = attrs.Factory(dict)
    """When each number was last deleted (for the 30-day rule)."""

    def info(self) -> dict[str, Any]:
        return {
            "OptOutListArn": self.arn,
            "OptOutListName": self.name,
            "CreatedTimestamp": self.created,
        }

    def record(self, number: str) -> dict[str, Any]:
        entry = self.numbers[number]
        return {
            "OptedOutNumber": number,
            "OptedOutTimestamp": entry.timestamp,
            "EndUserOptedOut": entry.end_user,
        }


def not_found_error(kind: str, resource: str, message: str) -> Reply:
    return model_error(
        400, "ResourceNotFoundException", message, ResourceType=kind, ResourceId=resource
    )


def invalid(message: str, reason: str, fields: Sequence[tuple[str, str]] = ()) -> Reply:
    listed = [{"Name": name, "Message": why} for name, why in fields] or None
    return model_error(400, "ValidationException", message, Reason=reason, Fields=listed)


class Store:
    """Every opt-out list of one account in one Region. Thread-safe."""

    def __init__(
        self,
        region: str,
        account: str,
        *,
        clock: Callable[[], float] = time.time,
        delete_cooldown: float = DELETE_COOLDOWN,
        max_lists: int = 100,
    ) -> None:
        self.region = region
        self.account = account
        self.delete_cooldown = delete_cooldown
        self.max_lists = max_lists
        self._clock = clock
        self._lock = threading.Lock()
        self._lists: dict[str, OptOutList] = {}
        self._created: dict[str, tuple[str, dict[str, Any]]] = {}
        """ClientToken → the name it created and the answer given."""
        self._create(DEFAULT_LIST)

    def arn(self, name: str) -> str:
        return f"arn:aws:sms-voice:{self.region}:{self.account}:opt-out-list/{name}"

    def _create(self, name: str) -> OptOutList:
        created = OptOutList(name, self.arn(name), self._clock())
        self._lists[name] = created
        return created

    def _find(self, name_or_arn: str) -> OptOutList:
        name = name_or_arn
        if name_or_arn.startswith("arn:"):
            prefix = self.arn("")
            name = name_or_arn[len(prefix) :] if name_or_arn.startswith(prefix) else ""
        found = self._lists.get(name)
        if found is None:
            raise not_found_error(
                "opt-out-list", name_or_arn, f"The opt-out list {name_or_arn} does not exist."
            )
        return found

    # --- lists ---------------------------------------------------------------------------

    def create(self, name: str, client_token: str | None = None) -> dict[str, Any]:
        with self._lock:
            earlier = self._created.get(client_token) if client_token else None
            if earlier is not None and earlier[0] == name:
                return earlier[1]  # the same create, sent again: the same answer
            if name in self._lists:
                raise model_error(
                    400,
                    "ConflictException",
                    f"The opt-out list {name} already exists.",
                    Reason="RESOURCE_ALREADY_EXISTS",
                    ResourceType="opt-out-list",
                    ResourceId=name,
                )
            if len(self._lists) >= self.max_lists:
                raise model_error(
                    400,
                    "ServiceQuotaExceededException",
                    f"The account has {self.max_lists} opt-out lists, its quota.",
                    Reason="OPT_OUT_LISTS_PER_ACCOUNT",
                )
            info = self._create(name).info()
            if client_token:
                self._created[client_token] = (name, info)
            return info

    def describe_lists(
        self, names: Sequence[str] | None, token: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        query = ["lists", sorted(names) if names is not None else None]
        with self._lock:
            chosen = (
                sorted({self._find(name).name for name in names})
                if names is not None
                else sorted(self._lists)
            )
            after = _read_token(token, query)
            start = bisect.bisect_right(chosen, after) if after is not None else 0
            page = chosen[start : start + limit]
            more = start + limit < len(chosen)
            infos = [self._lists[name].info() for name in page]
        return infos, (_make_token(query, page[-1]) if more and page else None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._lists)

    # --- numbers ---------------------------------------------------------------------------

    def put(
        self, list_name: str, number: str, *, end_user: bool = False, at: float | None = None
    ) -> dict[str, Any]:
        """Opt ``number`` out; one already there keeps its first time and origin."""
        with self._lock:
            found = self._find(list_name)
            if number not in found.numbers:
                found.numbers[number] = Entry(self._clock() if at is None else at, end_user)
                bisect.insort(found.ordered, number)
            return {
                **found.record(number),
                "OptOutListArn": found.arn,
                "OptOutListName": found.name,
            }

    def delete(self, list_name: str, number: str) -> dict[str, Any]:
        with self._lock:
            found = self._find(list_name)
            if number not in found.numbers:
                raise not_found_error(
                    "opted-out-number",
                    number,
                    f"The number {number} is not in the opt-out list {found.name}.",
                )
            now = self._clock()
            last = found.deleted.get(number)
            if last is not None and now - last < self.delete_cooldown:
                raise invalid(
                    f"The number {number} was deleted from {found.name} less than 30 days ago; "
                    "it can be deleted once every 30 days.",
                    "PHONE_NUMBER_CANNOT_BE_OPTED_IN",
                    [("OptedOutNumber", "deleted from this list less than 30 days ago")],
                )
            answer = {
                **found.record(number),
                "OptOutListArn": found.arn,
                "OptOutListName": found.name,
            }
            del found.numbers[number]
            found.ordered.pop(bisect.bisect_left(found.ordered, number))
            found.deleted[number] = now
            return answer

    def describe_numbers(
        self,
        list_name: str,
        numbers: Collection[str] | None,
        end_user: Collection[bool] | None,
        token: str | None,
        limit: int,
        *,
        not_found: bool = False,
    ) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
        """The list's info, one page of its records (only ``numbers``, if given), the next token.

        ``not_found``: a number asked that the list does not hold is a
        ResourceNotFoundException (the first such, in the order asked), not left out.
        """
        with self._lock:
            found = self._find(list_name)
            missing = [n for n in numbers or () if n not in found.numbers] if not_found else []
            if missing:
                raise not_found_error(
                    "opted-out-number",
                    missing[0],
                    f"The number {missing[0]} is not in the opt-out list {found.name}.",
                )
            query = [
                "numbers",
                found.name,
                sorted(set(numbers)) if numbers is not None else None,
                sorted(end_user) if end_user is not None else None,
            ]
            after = _read_token(token, query)
            if numbers is not None:
                keys: Sequence[str] = sorted(n for n in set(numbers) if n in found.numbers)
            else:
                keys = found.ordered
            start = bisect.bisect_right(keys, after) if after is not None else 0
            page: list[dict[str, Any]] = []
            index = start
            while index < len(keys) and len(page) < limit:
                number = keys[index]
                index += 1
                if end_user is None or found.numbers[number].end_user in end_user:
                    page.append(found.record(number))
            # A filter may leave the last page short; a token then says where to go on.
            more = index < len(keys)
            next_token = _make_token(query, keys[index - 1]) if more else None
            return found.info(), page, next_token

    def contents(self, list_name: str) -> dict[str, Entry]:
        with self._lock:
            return dict(self._find(list_name).numbers)

    def load(self, list_name: str, numbers: Iterable[str], *, end_user: bool = False) -> int:
        """Put many numbers at once (a benchmark's or a test's starting state)."""
        with self._lock:
            found = self._lists.get(list_name) or self._create(list_name)
            now = self._clock()
            added = 0
            for number in numbers:
                if number not in found.numbers:
                    found.numbers[number] = Entry(now, end_user)
                    added += 1
            found.ordered = sorted(found.numbers)
            return added


def _digest(query: list[Any]) -> str:
    return hashlib.sha256(json.dumps(query, separators=(",", ":")).encode()).hexdigest()[:16]


def _make_token(query: list[Any], after: str) -> str:
    raw = json.dumps([_digest(query), after], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _read_token(token: str | None, query: list[Any]) -> str | None:
    if token is None:
        return None
    try:
        digest, after = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, ValueError, TypeError, UnicodeEncodeError):
        digest, after = None, None
    if digest != _digest(query) or not isinstance(after, str):
        raise invalid(
            "The NextToken is not one this request can continue from.",
            "INVALID_NEXT_TOKEN",
            [("NextToken", "not a token of this query")],
        )
    return after
