"""What a write batch already did, kept for the client's retry of that same batch.

An add or remove of 5 numbers over N lists is 5 × N requests, one after another. When
one of them fails in a way the client retries (a throttle, a 5xx, a dropped connection),
the client's policy starts the whole exchange again: without this, every request that
had succeeded would be sent again too, and at AWS's 1 ``PutOptedOutNumber`` a second
that costs seconds and draws more throttles. The core re-sends recipients alone only
when their outcome is a 5xx, and a throttle fails a single (number, list) pair, which is
finer than a recipient; so the provider keeps, per batch that failed that way, the
outcome of each pair it finished, and the retry sends only the others.

A retry is recognised by the batch itself: the client hands the retry the very sequence
object it handed the first try (``retry_items`` calls ``send(recipients)`` again), so an
entry matches only that object, holding the same numbers, for the same operation and
sender, within ``KEEP`` seconds; it is taken once. A new call, even with equal numbers,
brings a new object and sends everything. Whatever goes wrong here costs requests,
never a wrong answer: a missed entry only means the finished pairs are sent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import attrs

from optouts import Outcome

from ._model import Operation

__all__ = ["KEEP", "Done", "Unfinished"]

KEEP = 300.0
"""Seconds an unfinished batch waits for its retry (the default retry deadline)."""

Done = dict[tuple[str, str], Outcome]
"""(number, list) → the outcome of its request."""


@attrs.define
class _Entry:
    recipients: Sequence[str]
    """The client's own sequence: held, so its ``id`` names no other object meanwhile."""
    numbers: tuple[str, ...]
    operation: Operation
    sender: str
    done: Done
    at: float


class Unfinished:
    """Unfinished write batches, by the identity of their recipients. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[int, _Entry] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, operation: Operation, sender: str, recipients: Sequence[str]) -> Done:
        """The pairs an earlier try of this very batch finished (empty for a new batch)."""
        with self._lock:
            entry = self._entries.get(id(recipients))
            if entry is None or entry.recipients is not recipients:
                return {}
            del self._entries[id(recipients)]
        fresh = self._clock() - entry.at <= KEEP
        same = (entry.operation, entry.sender, entry.numbers) == (
            operation,
            sender,
            tuple(recipients),
        )
        return entry.done if fresh and same else {}

    def keep(
        self, operation: Operation, sender: str, recipients: Sequence[str], done: Done
    ) -> None:
        """Remember what a batch finished before failing, for its retry."""
        now = self._clock()
        with self._lock:
            for key in [k for k, e in self._entries.items() if now - e.at > KEEP]:
                del self._entries[key]
            self._entries[id(recipients)] = _Entry(
                recipients, tuple(recipients), operation, sender, dict(done), now
            )
