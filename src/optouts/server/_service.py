"""What every route of the service shares: its settings and metrics from the start, and the
ledger, the ledger's client, the webhooks' recorder and the outbox while the app's lifespan
has them open.

Routes ask ``running()``: before startup or after shutdown it answers 503, so a request
never reaches a closed ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import attrs
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from .._client import AsyncClient
from ..keywords import Keywords
from ..ledger import Ledger
from ._metrics import Metrics
from ._recorder import Recorder
from ._settings import ServeSettings

__all__ = ["Opened", "OutboxLike", "Service", "error"]


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Every refusal of the service: ``{"error": message}`` with its status."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class OutboxLike(Protocol):
    """What the service asks of the outbox worker (``_outbox.Outbox``)."""

    def wake(self) -> None: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> dict[str, dict[str, object]]: ...


@attrs.frozen
class Opened:
    """What the lifespan opened, for the routes to use."""

    ledger: Ledger
    client: AsyncClient
    """A client over the ledger: validation, deduplication and per-recipient results."""
    recorder: Recorder
    """Where webhooks record their events, many requests a commit."""
    outbox: OutboxLike
    worker: asyncio.Task[None]
    """The outbox's ``run()``."""
    keywords: Keywords

    def outbox_state(self) -> str:
        """ "running", or why the outbox worker stopped before the service did."""
        if not self.worker.done():
            return "running"
        if self.worker.cancelled():
            return "cancelled"
        failure = self.worker.exception()
        if failure is not None:
            return f"failed: {type(failure).__name__}: {failure}"
        return "stopped" if self.outbox.health() else "idle: no targets"


@attrs.define
class Service:
    settings: ServeSettings
    metrics: Metrics
    opened: Opened | None = None

    def running(self) -> Opened:
        if self.opened is None:
            raise HTTPException(503, "the service is not running (starting or stopping)")
        return self.opened

    def refused(self, vendor: str, reason: str) -> None:
        self.metrics.events_refused.labels(vendor=vendor, reason=reason).inc()
