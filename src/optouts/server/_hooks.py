"""``/webhooks/<format>``: one endpoint per served webhook format, all vendor knowledge in
the format (``optouts.inbound.InboundParser``).

A request is, in this order: a handshake the format answers (nothing recorded, nothing
needed but what the format's settings allow); else refused unless a POST that the format
authenticates (401, read no further); else parsed and every event recorded in the ledger
before the 200, so a vendor that hears 200 can forget the delivery. The outbox carries what
was recorded to the targets afterwards.

A delivery is parsed on the event loop when small (a vendor's usual: one notification, a
few hundred bytes, parsed in less than a thread hop costs), in a thread when large. Its
changes are recorded by the ``Recorder``, with those of the requests that arrive at the same
time, in one commit (``_recorder``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._config import Settings
from .._errors import InvalidPayload
from .._handling import change_of
from ..inbound import ConsentEvent, InboundMessage, InboundParser, Payload, get_parser
from ..keywords import Classification, Keywords
from ..ledger import Change
from ._body import BodyTooLarge
from ._recorder import NotRecorded
from ._service import Service, error

__all__ = ["webhook_routes"]

logger = logging.getLogger("optouts.serve")


def webhook_routes(service: Service) -> list[Route]:
    """A route for each format whose endpoint is configured; the others are not served."""
    return [
        Route(
            f"/webhooks/{name}",
            _Endpoint(service, get_parser(name), settings).handle,
            methods=["POST", "OPTIONS"],
        )
        for name, settings in service.settings.webhooks.items()
    ]


class _Endpoint:
    def __init__(self, service: Service, parser: InboundParser, settings: Settings) -> None:
        self.service = service
        self.parser = parser
        self.settings = settings
        self.name = parser.name

    async def handle(self, request: Request) -> Response:
        try:
            body = await request.body()
        except BodyTooLarge:
            self.service.refused(self.name, "too_large")
            raise
        headers = dict(request.headers)
        try:
            reply = self.parser.answer_handshake(request.method, body, headers, self.settings)
        except InvalidPayload:
            reply = None  # unreadable as a handshake: judged as a delivery below
        if reply is not None:
            if reply.status != 200:
                self.service.refused(self.name, "handshake")
            content = None if reply.body is None else dict(reply.body)
            if content is None:
                return Response(status_code=reply.status, headers=dict(reply.headers))
            return JSONResponse(content, status_code=reply.status, headers=dict(reply.headers))
        if request.method != "POST":
            self.service.refused(self.name, "method")
            return error(
                405, f"a {request.method} request is no handshake of {self.name}", {"Allow": "POST"}
            )
        authentic = self.parser.authenticate
        if authentic is None or not authentic(headers, dict(request.query_params), self.settings):
            self.service.refused(self.name, "unauthenticated")
            return error(401, "not authenticated")
        opened = self.service.running()
        try:
            if len(body) <= INLINE_BODY:
                parsed = _parse(self.parser, body, headers, opened.keywords)
            else:
                parsed = await asyncio.to_thread(
                    _parse, self.parser, body, headers, opened.keywords
                )
        except InvalidPayload as exc:
            self.service.refused(self.name, "malformed")
            return error(400, str(exc))
        except Exception:  # a bug in the format: the vendor delivers again later
            self.service.refused(self.name, "error")
            logger.exception("webhook %s: the delivery could not be read", self.name)
            return error(503, "the delivery was not recorded; deliver again later")
        changes = [change for _, change, _ in parsed if change is not None]
        try:
            taken = await opened.recorder.record(changes)
        except NotRecorded as exc:  # logged once for its group by the recorder
            self.service.refused(self.name, "ledger" if exc.ledger else "error")
            if exc.ledger:
                return error(503, "the ledger is unavailable; deliver again later")
            return error(503, "the delivery was not recorded; deliver again later")
        self.service.metrics.events_received.labels(vendor=self.name).inc(len(parsed))
        for event, _, classification in parsed:
            if classification is not None and classification.likely_revocation:
                logger.warning(
                    "webhook %s: a text from %s to %s reads like an opt-out: review it",
                    self.name,
                    event.recipient,
                    event.sender,
                )
        return JSONResponse({"events": len(parsed), "recorded": sum(taken)})


INLINE_BODY = 64 * 1024
"""Bytes of body parsed on the event loop; a larger one is parsed in a thread."""


def _parse(
    parser: InboundParser, body: Payload, headers: Mapping[str, str], keywords: Keywords
) -> list[tuple[InboundMessage | ConsentEvent, Change | None, Classification | None]]:
    """The delivery's events, each with the change it asks the ledger for (None: a text
    that asks for nothing) and, for a text, what it asked for."""
    return [(event, *change_of(event, keywords)) for event in parser.parse(body, headers)]
