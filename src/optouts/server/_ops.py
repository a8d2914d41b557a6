"""What operators ask of the service: is it healthy (``/healthz``), what has it done
(``/metrics``, Prometheus text).

Health is the ledger's: 200 when it answers a read, 503 when not (a load balancer then
sends webhooks elsewhere, and vendors deliver again). Each target's last success and last
error are reported from the outbox, but a vendor's outage is no reason to refuse
webhooks: the ledger keeps what the vendor has not confirmed.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._errors import clip
from ._service import Service

__all__ = ["LEDGER_TIMEOUT", "ops_routes"]

LEDGER_TIMEOUT = 5.0
"""Seconds the ledger has to answer the health check's read."""
_PROBE = "serve:healthz"
"""A checkpoint key nobody writes: reading it is a real query, and cheap."""


def ops_routes(service: Service) -> list[Route]:
    async def healthz(_request: Request) -> Response:
        opened = service.opened
        if opened is None:
            return JSONResponse({"status": "starting or stopping"}, status_code=503)
        ledger: dict[str, object] = {"reachable": True}
        try:
            read = asyncio.to_thread(opened.ledger.checkpoint, _PROBE)
            await asyncio.wait_for(read, timeout=LEDGER_TIMEOUT)
        except asyncio.TimeoutError:
            ledger = {"reachable": False, "error": f"no answer in {LEDGER_TIMEOUT:g} s"}
        except Exception as exc:
            ledger = {"reachable": False, "error": clip(f"{type(exc).__name__}: {exc}", 300)}
        healthy = ledger["reachable"] is True
        return JSONResponse(
            {
                "status": "ok" if healthy else "unavailable",
                "ledger": ledger,
                "outbox": clip(opened.outbox_state(), 300),
                "targets": opened.outbox.health(),
            },
            status_code=200 if healthy else 503,
        )

    async def metrics(_request: Request) -> Response:
        return Response(
            generate_latest(service.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
