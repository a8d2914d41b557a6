"""What a provider is: a description of a vendor's API that never does its own I/O loop.

Each operation is an *exchange*: a generator that yields the ``httpx.Request`` objects to
send and receives each ``httpx.Response`` back, then returns the parsed answer. It may also
yield ``Sleep`` to pace itself under a vendor's rate limit (the runner waits), and ``Note``
to report how it worked (it ends up in ``BatchResult.info``). The client
drives exchanges over ``httpx.Client`` or ``httpx.AsyncClient``, so one provider serves
both, and retrying, pacing, paging and batching are written once, in the client.

A provider that works in-process (the local ledger) yields nothing and sets
``blocking = True``; the async client runs its exchanges in a worker thread.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import ClassVar, TypeVar

import attrs
import httpx

from ._config import Setting, Settings
from ._errors import OptOutError, UnsupportedOperation
from ._models import Capability, Outcome, Page, Status

__all__ = ["Exchange", "Note", "Provider", "Results", "Sleep", "StatusFilter"]

T = TypeVar("T")


@attrs.frozen
class Sleep:
    """A pause an exchange or the retry policy asks the runner for."""

    seconds: float
    reason: str = "pace"
    """"pace" (keeping under a rate limit), "retry" (backoff) or "rate-limited" (Retry-After)."""


@attrs.frozen
class Note:
    """A fact an exchange reports about how it worked (e.g. which plan answered a check).

    The client gathers notes into ``BatchResult.info``; later notes of one name win.
    """

    name: str
    value: object


Exchange = Generator["httpx.Request | Sleep | Note", "httpx.Response | None", T]
"""Yields requests (and pauses), receives each request's response, returns the answer."""

Results = Mapping[str, Outcome]
"""Per-recipient answers of one batch, keyed by the E.164 recipient that was sent."""

StatusFilter = Status | None
"""Which records a listing returns: one status, or None for both."""


class Provider:
    """Base class of providers. Subclasses set the class attributes and the operations they offer.

    The client guarantees what each operation receives: a normalised sender, and 1 to
    ``max_batch`` distinct E.164 recipients. An operation returns a result for each
    recipient it has an answer for; the client reports the rest as failed, never as ok.
    """

    name: ClassVar[str]
    """The name users choose it by, in config and on the command line."""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    max_batch: ClassVar[int] = 100
    """Most recipients one add/remove/check request may carry."""
    max_page_size: ClassVar[int] = 1000
    default_page_size: ClassVar[int] = 100
    settings: ClassVar[tuple[Setting, ...]] = ()
    default_concurrency: ClassVar[int] = 4
    """Batches in flight at once unless the user sets max_concurrency."""
    blocking: ClassVar[bool] = False
    """True when operations do blocking work in-process instead of yielding requests."""
    hints: ClassVar[Mapping[Capability, str]] = {}
    """For each missing capability, the way around it (shown in UnsupportedOperation)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Provider:
        """Build the provider from resolved settings."""
        raise NotImplementedError

    @property
    def auth(self) -> httpx.Auth | None:
        """Signs or authorises each request the exchanges yield."""
        return None

    def add(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        """Opt the recipients out of messages from ``sender``."""
        raise self.unsupported(Capability.ADD)

    def remove(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        """Opt the recipients back in (undo an opt-out)."""
        raise self.unsupported(Capability.REMOVE)

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        """Tell, per recipient, whether it opted out of ``sender``."""
        raise self.unsupported(Capability.CHECK)

    def list_page(
        self, sender: str | None, status: StatusFilter, page_size: int, cursor: str | None
    ) -> Exchange[Page]:
        """One page of records; ``cursor`` is None for the first page."""
        raise self.unsupported(Capability.LIST)

    def close(self) -> Exchange[None]:
        """Release what the provider holds (revoke tokens, close databases)."""
        return
        yield  # pragma: no cover - makes this a generator

    def refuses(self, operation: str, sender: str) -> OptOutError | None:
        """The error ``operation`` raises for ``sender`` before sending anything, or None.

        For senders a vendor cannot take at all (Azure has no account-wide ``*``). A sync's
        dry run asks this rather than running the operation; raise the same object from
        the operation, so the two cannot disagree.
        """
        return None

    def unsupported(self, capability: Capability) -> UnsupportedOperation:
        return UnsupportedOperation(self.name, capability.value, self.hints.get(capability, ""))
