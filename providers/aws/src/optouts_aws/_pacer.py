"""Keeping each operation under its requests-per-second quota, for every batch in flight.

AWS meters each operation of the API separately, per account and Region, and answers a
request over the quota with ThrottlingException. Sending at the quota costs nothing;
meeting it costs a failed request and a backoff. So every request first reserves the next
free slot of its operation (slots ``1 / rate`` seconds apart, shared by all the threads or
tasks of one provider) and the exchange yields ``Sleep`` until then; the runner does the
waiting, so the same code paces the blocking and the async client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._model import Operation
from ._settings import Rates

__all__ = ["Pacer"]


class Pacer:
    """Slots per operation; an operation without a rate is never paced."""

    def __init__(self, rates: Rates, clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = dict(rates)
        self._interval = {op: 1.0 / rate for op, rate in rates.items() if rate}
        self._next: dict[Operation, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        paced = ", ".join(f"{op}={rate:g}/s" for op, rate in self.rates.items() if rate)
        return f"Pacer({paced or 'off'})"

    def reserve(self, operation: Operation) -> float:
        """Seconds to wait before sending ``operation`` (0 when a slot is free now)."""
        interval = self._interval.get(operation)
        if interval is None:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._next.get(operation, now))
            self._next[operation] = start + interval
            return start - now
