"""Fault injection on the API routes: 5xx answers and dropped connections, drawn at a rate
(``fault_rate``, ``drop_rate``) or scheduled with ``fail_next``. Latency is the app's."""

from __future__ import annotations

import collections
import random

import httpx

from .wire import Send


class _Faults:
    """Decides each request's fault; ``Emulator.__init__`` sets the attributes."""

    fault_rate: float
    drop_rate: float
    _random: random.Random
    _scheduled: collections.deque[str]

    def fail_next(self, kind: str = "503", count: int = 1) -> None:
        """Answer the next ``count`` API requests with a fault: "500", "503" or "drop"."""
        if kind not in ("500", "503", "drop"):
            raise ValueError("kind must be '500', '503' or 'drop'")
        self._scheduled.extend([kind] * count)

    def _fault(self) -> str | None:
        if self._scheduled:
            return self._scheduled.popleft()
        if self.drop_rate and self._random.random() < self.drop_rate:
            return "drop"
        if self.fault_rate and self._random.random() < self.fault_rate:
            return self._random.choice(("500", "503"))
        return None

    async def _drop(self, send: Send) -> None:
        """Start an answer and break off: the client sees a connection that died mid-response."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        raise httpx.RemoteProtocolError("emulated dropped connection")
