"""Keeping each operation under its requests-per-second quota, for every batch in flight.

AWS meters each operation of the API separately, per account and Region, and answers a
request over the quota with ThrottlingException. Sending at the quota costs nothing;
meeting it costs a failed request and a backoff. So every request first takes the next
free slot of its operation (slots at least ``1 / rate`` seconds apart, shared by all the
threads or tasks of one provider) and the exchange yields ``Sleep`` until then; the runner
does the waiting, so the same code paces the blocking and the async client.

A wait that never ends in a request gives its slot back: the retry policy refuses a wait
longer than what is left of its deadline (it closes the exchange at the ``Sleep``), and a
cancelled call abandons one. A slot kept then would push every later request back by one
interval, so a burst of refused batches would leave the schedule seconds ahead of the
clock, refusing later batches and the next call too.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable

from optouts import Exchange, Sleep

from ._model import Operation
from ._settings import Rates

__all__ = ["Pacer"]


class Pacer:
    """Slots per operation; an operation without a rate is never paced."""

    def __init__(self, rates: Rates, clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = dict(rates)
        self._interval = {op: 1.0 / rate for op, rate in rates.items() if rate}
        self._next: dict[Operation, float] = {}
        """The start of the slot after the last one taken, per operation."""
        self._free: dict[Operation, list[float]] = {}
        """Slots given back before others taken after them: reused first, in order."""
        self._clock = clock
        # Re-entrant: the garbage collector may close an abandoned wait, which gives its
        # slot back, on a thread that holds the lock already.
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        paced = ", ".join(f"{op}={rate:g}/s" for op, rate in self.rates.items() if rate)
        return f"Pacer({paced or 'off'})"

    def wait(self, operation: Operation) -> Exchange[None]:
        """Take ``operation``'s next slot and yield the ``Sleep`` until it (none when free now).

        If the exchange is closed or interrupted at that ``Sleep`` (a wait the retry
        deadline refuses, a cancelled call), the slot is given back.
        """
        taken = self.take(operation)
        if taken is None:
            return
        start, delay = taken
        if delay <= 0:
            return
        try:
            yield Sleep(delay, "pace")
        except BaseException:
            self.give_back(operation, start)
            raise

    def take(self, operation: Operation) -> tuple[float, float] | None:
        """The start of the slot taken for ``operation`` and the seconds until it, on the
        pacer's clock; None when the operation is not paced."""
        interval = self._interval.get(operation)
        if interval is None:
            return None
        with self._lock:
            now = self._clock()
            free = self._free.get(operation)
            if free:
                # A slot given back whose moment has passed is gone: sending now would come
                # closer than one interval to the slot taken after it.
                del free[: bisect.bisect_left(free, now)]
                if free:
                    start = free.pop(0)
                    return start, start - now
            start = max(now, self._next.get(operation, now))
            self._next[operation] = start + interval
            return start, start - now

    def give_back(self, operation: Operation, start: float) -> None:
        """Return the slot at ``start`` (from ``take``), unused, to the schedule."""
        interval = self._interval.get(operation)
        if interval is None:
            return
        with self._lock:
            free = self._free.setdefault(operation, [])
            bisect.insort(free, start)
            # Slots given back at the end of the schedule shorten it; the others wait in
            # ``free`` for the next requests. Slots are at least one interval apart, so the
            # last one taken is the one a hair short of one interval before ``_next``.
            while free and free[-1] + interval * (1 + 1e-9) >= self._next[operation]:
                self._next[operation] = free.pop()
