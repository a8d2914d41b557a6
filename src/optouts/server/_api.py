"""The business's own API over the ledger: check before sending, add and remove from other
systems. ``Authorization: Bearer <api key>``; with no key configured it is not served.

Answers are the ledger client's, one per recipient in input order, as ``Client.check``
gives them: an invalid number fails alone and the others are answered. The client runs
the ledger's work in a thread, so the event loop never waits on the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._errors import InvalidNumber, InvalidPayload, OptOutError
from .._models import BatchResult
from ..inbound import bearer_token, load_json, secret_matches, shown
from ._service import Service, error

__all__ = ["MAX_RECIPIENTS", "api_routes"]

MAX_RECIPIENTS = 10_000
"""Recipients one request may name."""

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def api_routes(service: Service) -> list[Route]:
    """The check and opt-out routes, or none when no API key is configured."""
    if not service.settings.api_keys:
        return []
    api = _Api(service)
    return [
        Route("/v1/check", api.guarded(api.check), methods=["GET", "POST"]),
        Route("/v1/optouts", api.guarded(api.change), methods=["POST", "DELETE"]),
    ]


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


class _Api:
    def __init__(self, service: Service) -> None:
        self.service = service

    def authorized(self, request: Request) -> bool:
        given = bearer_token(request.headers)
        matched = False
        for key in self.service.settings.api_keys:  # every key compared: no timing tells which
            matched |= secret_matches(given, key)
        return matched

    def guarded(self, handler: Handler) -> Handler:
        async def guard(request: Request) -> Response:
            if not self.authorized(request):
                return error(401, "not authenticated", {"WWW-Authenticate": "Bearer"})
            try:
                return await handler(request)
            except _Refused as refused:
                return error(400, refused.message)
            except InvalidNumber as exc:  # the sender; recipients fail one by one instead
                return error(400, str(exc))
            except OptOutError as exc:
                return error(503, f"the ledger did not answer: {exc}")

        return guard

    async def check(self, request: Request) -> Response:
        if request.method == "GET":
            sender, recipients = _query(request)
        else:
            sender, recipients = await _body(request)
        opened = self.service.running()
        started = time.perf_counter()
        result = await opened.client.check(sender, recipients)
        self.service.metrics.check_latency.observe(time.perf_counter() - started)
        self.service.metrics.check_requests.inc()
        return _answer(sender, result)

    async def change(self, request: Request) -> Response:
        sender, recipients = await _body(request)
        opened = self.service.running()
        call = opened.client.add if request.method == "POST" else opened.client.remove
        result = await call(sender, recipients)
        if any(item.ok for item in result):
            opened.outbox.wake()
        return _answer(sender, result)


def _query(request: Request) -> tuple[str, list[str]]:
    """``?from=<sender>&to=<recipient>&to=…``, or a 400 saying what is missing."""
    sender = request.query_params.get("from")
    if sender is None:
        raise _Refused("from is missing: ?from=<E.164>&to=<E.164>&to=…")
    return sender, _counted(request.query_params.getlist("to"))


async def _body(request: Request) -> tuple[str, list[str]]:
    """``{"from": sender, "to": [recipients]}``, or a 400 saying what is wrong."""
    try:
        data = load_json(await request.body())
    except InvalidPayload as exc:
        raise _Refused(str(exc)) from None
    if not isinstance(data, dict):
        raise _Refused('expected a JSON object {"from": …, "to": […]}')
    sender, recipients = data.get("from"), data.get("to")
    if not isinstance(sender, str):
        raise _Refused(f"from is {shown(sender)}, not a phone number as text")
    if not isinstance(recipients, list):
        raise _Refused(f"to is {shown(recipients)}, not a list")
    for index, item in enumerate(_counted(recipients)):
        if not isinstance(item, str):
            raise _Refused(f"to[{index}] is {shown(item)}, not text")
    return sender, recipients


def _counted(recipients: list[str]) -> list[str]:
    if not recipients:
        raise _Refused(f"to is missing: name 1 to {MAX_RECIPIENTS:,} recipients")
    if len(recipients) > MAX_RECIPIENTS:
        raise _Refused(
            f"to names {len(recipients):,} recipients; at most {MAX_RECIPIENTS:,} a request"
        )
    return recipients


def _answer(sender: str, result: BatchResult) -> JSONResponse:
    return JSONResponse(
        {
            "from": sender,
            "results": [
                {
                    "recipient": item.recipient,
                    "opted_out": item.opted_out,
                    "ok": item.ok,
                    "error": item.error,
                }
                for item in result
            ],
        }
    )
