"""The outbox spaces RingCentral rounds by the API requests they sent, not by the login.

A round that sent *n* requests is followed by the next at least *n* × ``spacing`` later, to
stay under the Light group's 50 a minute. The login the first round needed is counted by
RingCentral in its Auth group, so it must not double the wait before the second round: the
service's first STOP after start once waited 2.5 s instead of 1.25 s for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs
import httpx

import optouts
from optouts import RetryPolicy
from optouts.ledger import Change
from optouts.server._courier import Timing
from optouts.server._metrics import Metrics
from optouts.server._outbox import Outbox
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import make_provider

SENDER = "+16505550100"
SPACING = 1.2
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Arrivals:
    """The emulator, noting when each bulk-assign arrives."""

    def __init__(self, app: Emulator) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/bulk-assign"):
            self.times.append(time.monotonic())
        await self.app(scope, receive, send)


def stop(ledger: optouts.Ledger, number: str) -> None:
    ledger.record([Change(SENDER, int(number[1:]), True, "inbound:test", optouts.Ledger.now())])


async def test_the_round_after_a_login_waits_one_requests_spacing(database: str) -> None:
    emulator = Emulator(rate_limit=RateLimit(1000, 60.0), auth_rate_limit=RateLimit(5, 60.0))
    arrivals = Arrivals(emulator)
    timing = attrs.evolve(
        Timing(), rescan=0.05, full_scan=30.0, lease=3.0, lookback=0.5, gap=0.01,
        spacing={"ringcentral": SPACING},
    )  # fmt: skip
    http = httpx.AsyncClient(transport=httpx.ASGITransport(arrivals))
    client = optouts.AsyncClient(make_provider(), http_client=http, retry=RetryPolicy(attempts=1))
    with optouts.Ledger.open(database) as ledger:
        outbox = Outbox(ledger, [client], metrics=Metrics(), owner="one", timing=timing)
        task = asyncio.ensure_future(outbox.run())
        try:
            stop(ledger, "+12025550100")
            outbox.wake()
            while not arrivals.times:
                await asyncio.sleep(0.01)
            stop(ledger, "+12025550101")
            outbox.wake()
            while len(arrivals.times) < 2:
                await asyncio.sleep(0.01)
        finally:
            outbox.stop()
            await asyncio.wait_for(task, 10)
            await client.aclose()
            await http.aclose()
    assert emulator.counts["getToken"] == 1
    gap = arrivals.times[1] - arrivals.times[0]
    assert SPACING * 0.9 <= gap < SPACING * 1.6  # a login counted too would make it 2.4 s
