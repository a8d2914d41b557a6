"""``create_app``: the service as one Starlette app, and the lifespan that opens what it uses.

The app's lifespan opens the ledger (unless given one), a client per target named (open
clients given are used as they are, and left open), a client over the ledger for the
check API, a connection of the ledger's own for webhooks (``_recorder``) and for the outbox,
takes this instance's name in the ledger's leases (``_identity``), starts the thread that
checkpoints a SQLite ledger's WAL (``_checkpoints``) and the outbox worker; on shutdown it
commits the webhooks queued, stops the worker, waits for its sends in flight, and closes
what it opened, in reverse. Routes that need the ledger answer 503 outside the lifespan.

Every request is logged as one line on ``logging.getLogger("optouts.serve")``: client,
method, path, status, time. Never the query string, which may carry a webhook's token,
and never headers or bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._client import AsyncClient
from .._errors import ConfigurationError, printable
from .._handling import configured_keywords, open_async
from .._sync import LEDGER
from ..ledger import Ledger
from ..ledger._sqlite_open import leaving_checkpoints, ledger_file
from ._api import api_routes
from ._audit_page import audit_route
from ._body import BodyLimit
from ._checkpoints import Checkpointer
from ._hooks import webhook_routes
from ._identity import Identity
from ._metrics import Metrics
from ._openapi import openapi_route
from ._ops import ops_routes
from ._outbox import Outbox
from ._recorder import Recorder
from ._service import Opened, OutboxLike, Service, error
from ._settings import ServeSettings

__all__ = ["AccessLog", "create_app"]

logger = logging.getLogger("optouts.serve")


def create_app(
    ledger: Ledger | None = None,
    *,
    targets: Sequence[AsyncClient | str] | None = None,
    settings: ServeSettings | None = None,
    config: str | os.PathLike[str] | None = None,
) -> Starlette:
    """The service over ``ledger`` (else the one the configuration names, opened at startup).

    ``targets`` are the vendors the outbox carries every change to, as open ``AsyncClient``s
    or provider names (default: ``targets`` of the settings). ``settings`` default to
    ``ServeSettings.from_settings(config=config)``. Mounted in another ASGI app, run its
    lifespan too (``app.router.lifespan_context(app)``): without it, routes answer 503.
    """
    if config is None and ledger is not None:
        config = ledger.config_path
    settings = settings if settings is not None else ServeSettings.from_settings(config=config)
    chosen = list(settings.targets if targets is None else targets)
    for target in chosen:
        if target == LEDGER:
            raise ConfigurationError(
                "'local' is the ledger the service records in, not a target to carry to"
            )
        if not isinstance(target, (str, AsyncClient)):
            raise TypeError(f"a target is an AsyncClient or a provider name, not {target!r}")
    service = Service(settings, Metrics())
    return Starlette(
        routes=[
            *webhook_routes(service),
            *api_routes(service),
            *ops_routes(service),
            openapi_route(),
            audit_route(lambda: service.running().ledger, settings.api_keys),
        ],
        middleware=[Middleware(AccessLog), Middleware(BodyLimit)],
        exception_handlers={HTTPException: _http_error},
        lifespan=_lifespan(service, ledger, chosen, config),
    )


def _lifespan(
    service: Service,
    given: Ledger | None,
    targets: Sequence[AsyncClient | str],
    config: str | os.PathLike[str] | None,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as opened:
            ledger = given
            if ledger is None:
                ledger = await asyncio.to_thread(Ledger.from_settings, config=config)
                opened.callback(ledger.close)
            clients: list[AsyncClient] = []
            for target in targets:
                if isinstance(target, AsyncClient):
                    clients.append(target)
                    continue
                client = await open_async(target, config)
                opened.push_async_callback(client.aclose)
                clients.append(client)
            # The service writes (every webhook): create the ledger now, fail now if it can't;
            # once nothing else can keep the service from starting.
            await asyncio.to_thread(ledger.require, write=True)
            checker = ledger.async_client()
            opened.push_async_callback(checker.aclose)
            keywords = await asyncio.to_thread(configured_keywords, ledger.config_path)
            # Webhooks write on a connection of their own, which never checkpoints a SQLite
            # WAL: a thread of the service does, so no request waits for it.
            writer = await asyncio.to_thread(_writer_of, ledger)
            checkpointer = None
            if writer is not ledger:
                opened.callback(writer.close)
                wal = ledger_file(ledger.location)
                if wal is not None:
                    checkpointer = Checkpointer(wal)
                    await asyncio.to_thread(checkpointer.start)
                    opened.callback(checkpointer.stop)
            identity = await asyncio.to_thread(
                Identity.claim, ledger.location, service.settings.instance
            )
            opened.callback(identity.close)  # once the outbox has given its leases up
            # The outbox's long reads get a connection of their own, so webhooks never
            # wait behind them (an in-memory ledger has only the one).
            carrier = ledger
            with contextlib.suppress(ConfigurationError):
                carrier = await asyncio.to_thread(ledger.reopen)
                opened.callback(carrier.close)
            outbox = make_outbox(carrier, clients, service.metrics, identity.owner)
            worker = asyncio.create_task(outbox.run(), name="optouts outbox")
            opened.push_async_callback(_finish, outbox, worker)
            pause = checkpointer.pause if checkpointer is not None else None
            recorder = Recorder(writer, on_recorded=outbox.wake, pause=pause)
            recorder.start()
            opened.push_async_callback(recorder.close)  # what is queued, before the outbox stops
            service.opened = Opened(ledger, checker, recorder, outbox, worker, keywords)
            opened.callback(setattr, service, "opened", None)  # first undone: routes say 503
            yield

    return lifespan


def make_outbox(
    ledger: Ledger, targets: Sequence[AsyncClient], metrics: Metrics, owner: str
) -> OutboxLike:
    """The outbox worker over ``ledger``, carrying to ``targets`` (tests swap it for a fake)."""
    return Outbox(ledger, targets, metrics=metrics, owner=owner)


async def _finish(outbox: OutboxLike, worker: asyncio.Task[None]) -> None:
    """Stop the outbox and wait for its sends in flight; a failure is logged, not raised,
    so the rest still closes."""
    outbox.stop()
    await asyncio.wait([worker])
    if not worker.cancelled() and worker.exception() is not None:
        failure = worker.exception()
        logger.error("the outbox worker had stopped: %s: %s", type(failure).__name__, failure)


def _writer_of(ledger: Ledger) -> Ledger:
    """The ledger on a connection for webhooks alone, opened to write, that leaves WAL
    checkpoints to the service's thread; the ledger itself when it cannot be opened twice
    (in memory, or made from a store)."""
    try:
        writer = ledger.reopen()
    except ConfigurationError:
        return ledger
    try:
        with leaving_checkpoints():
            writer.require(write=True)
    except BaseException:
        writer.close()
        raise
    return writer


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's refusals (404, 405, 413, 503) as JSON, like every other."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for it alone
        raise exc
    return error(exc.status_code, exc.detail, exc.headers)


class AccessLog:
    """ASGI middleware: one line per request on the ``optouts.serve`` logger."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if an error escapes before an answer starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            logger.info(
                "%s %s %s %d %.1f ms",
                _client(scope),
                scope["method"],
                printable(scope.get("root_path", "") + scope["path"], 200),
                status,
                (time.perf_counter() - started) * 1000,
            )


def _client(scope: Scope) -> str:
    client: Any = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"
