"""Inbound STOP/START and vendor consent events: recorded in the ledger, carried to vendors."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

import optouts
from optouts.inbound import parse_azure_event_grid, parse_ringcentral_notification
from optouts.keywords import Intent
from optouts.ledger import LocalProvider
from optouts.testing import BlockingASGITransport
from optouts_azure import AzureEmulator

OURS = "+18005550100"
CONSUMER = "+12025550123"


class Setup:
    def __init__(self, database: str) -> None:
        self.azure_emulator = AzureEmulator()
        self.azure = optouts.Client(
            "azure",
            connection_string=self.azure_emulator.connection_string("https://azure.test"),
            http_client=httpx.Client(transport=BlockingASGITransport(self.azure_emulator)),
        )
        self.ledger = optouts.Client("local", database=database)

    def state(self) -> bool | None:
        (item,) = self.ledger.check(OURS, [CONSUMER])
        return item.opted_out

    def history(self) -> list[tuple[bool, str]]:
        assert isinstance(self.ledger.provider, LocalProvider)
        trail = self.ledger.provider.ledger.audit(int(CONSUMER[1:]))
        return [(out, source) for _, out, source, _ in trail.history]


@pytest.fixture
def setup(empty_ledger: str) -> Iterator[Setup]:
    s = Setup(empty_ledger)
    yield s
    s.azure.close()
    s.ledger.close()


def test_a_stop_is_recorded_and_carried(setup: Setup) -> None:
    handled = setup.ledger.handle_inbound(OURS, CONSUMER, " stop! ", targets=[setup.azure])
    assert handled.opted_out is True
    assert handled.recorded
    assert handled.classification is not None
    assert handled.classification.intent is Intent.OPT_OUT
    assert [(t.target, t.added, t.failed) for t in handled.targets] == [("azure", 1, 0)]
    assert setup.state() is True
    assert setup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert setup.history() == [(True, "inbound:local")]


def test_start_after_stop_opts_back_in_everywhere(setup: Setup) -> None:
    setup.ledger.handle_inbound(OURS, CONSUMER, "STOP", targets=[setup.azure])
    handled = setup.ledger.handle_inbound(OURS, CONSUMER, "Start", targets=[setup.azure])
    assert handled.opted_out is False
    assert setup.state() is False
    assert setup.azure_emulator.opted_out(OURS) == set()
    assert [t.removed for t in handled.targets] == [1]


def test_a_likely_revocation_is_flagged_not_acted_on(setup: Setup) -> None:
    handled = setup.ledger.handle_inbound(
        OURS, CONSUMER, "please stop texting me", targets=[setup.azure]
    )
    assert handled.opted_out is None
    assert not handled.recorded
    assert handled.classification is not None
    assert handled.classification.likely_revocation
    assert handled.targets == ()
    assert setup.state() is False
    assert setup.azure_emulator.requests == 0


def test_help_records_nothing(setup: Setup) -> None:
    handled = setup.ledger.handle_inbound(OURS, CONSUMER, "HELP")
    assert handled.opted_out is None
    assert setup.history() == []


def test_every_stop_is_a_receipt_but_a_redelivery_is_not(setup: Setup) -> None:
    first = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    later = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
    setup.ledger.handle_inbound(OURS, CONSUMER, "STOP", received_at=first)
    again = setup.ledger.handle_inbound(OURS, CONSUMER, "STOP", received_at=first)
    assert not again.recorded  # the same message delivered twice
    newer = setup.ledger.handle_inbound(OURS, CONSUMER, "STOP", received_at=later)
    assert newer.recorded  # a second STOP is evidence too
    assert setup.history() == [(True, "inbound:local"), (True, "inbound:local")]


def test_an_older_start_never_undoes_a_newer_stop(setup: Setup) -> None:
    stop = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
    start = datetime(2026, 11, 25, 10, 55, tzinfo=timezone.utc)
    setup.ledger.handle_inbound(OURS, CONSUMER, "STOP", received_at=stop, targets=[setup.azure])
    late = setup.ledger.handle_inbound(
        OURS, CONSUMER, "START", received_at=start, targets=[setup.azure]
    )
    assert not late.recorded
    assert late.opted_out is True  # what the ledger holds, not what was asked
    assert setup.state() is True
    assert setup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert late.targets == ()  # nothing was recorded, so nothing is carried


def test_an_azure_webhook_becomes_a_ledger_record(setup: Setup) -> None:
    payload = [
        {
            "id": "e1",
            "topic": "/subscriptions/x/providers/Microsoft.Communication/CommunicationServices/z",
            "subject": f"/phonenumber/{OURS[1:]}",
            "eventType": "Microsoft.Communication.SMSReceived",
            "eventTime": "2026-11-25T10:00:00.1234567Z",
            "dataVersion": "1.0",
            "data": {
                "MessageId": "m1",
                "From": CONSUMER,
                "To": OURS,
                "Message": "UNSUBSCRIBE",
                "ReceivedTimestamp": "2026-11-25T10:00:00.1234567Z",
            },
        }
    ]
    (message,) = parse_azure_event_grid(payload)
    handled = optouts.handle_event(setup.ledger, message, targets=[setup.azure])
    assert handled.opted_out is True
    assert setup.state() is True
    assert setup.history() == [(True, "inbound:azure")]
    assert setup.azure_emulator.opted_out(OURS) == {CONSUMER}


def test_a_ringcentral_opt_out_notification_reaches_azure(setup: Setup) -> None:
    notification = {
        "uuid": "n1",
        "event": "/restapi/v1.0/account/~/a2p-sms/opt-outs",
        "timestamp": "2026-11-25T10:00:00.000Z",
        "subscriptionId": "s1",
        "ownerId": "1",
        "body": {"from": OURS, "to": CONSUMER, "active": True},
    }
    (event,) = parse_ringcentral_notification(notification)
    handled = optouts.handle_event(setup.ledger, event, targets=[setup.azure])
    assert handled.recorded
    assert setup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert setup.history() == [(True, "ringcentral")]
    assert isinstance(setup.ledger.provider, LocalProvider)
    trail = setup.ledger.provider.ledger.audit(int(CONSUMER[1:]))
    assert [(t, out) for _, t, out, _ in trail.confirmations] == [("azure", True)]
    received = datetime.fromtimestamp(trail.history[0][3] / 1e6, tz=timezone.utc)
    assert received == datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)


def test_handling_needs_the_ledger(setup: Setup) -> None:
    (message,) = parse_azure_event_grid(
        {
            "id": "e1",
            "eventType": "Microsoft.Communication.SMSReceived",
            "eventTime": "2026-11-25T10:00:00Z",
            "subject": "x",
            "dataVersion": "1.0",
            "data": {"From": CONSUMER, "To": OURS, "Message": "STOP", "MessageId": "m"},
        }
    )
    with pytest.raises(optouts.ConfigurationError, match="local ledger"):
        optouts.handle_event(setup.azure, message)


def test_custom_keywords_come_from_settings(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    monkeypatch.setenv("OPTOUTS_KEYWORDS_OPT_OUT", "baja, alto")
    monkeypatch.setenv("OPTOUTS_KEYWORDS_DROP", "YES")
    with optouts.Client("local", database=database) as ledger:
        assert ledger.handle_inbound(OURS, CONSUMER, "Baja").opted_out is True
        assert ledger.handle_inbound(OURS, CONSUMER, "yes").opted_out is None
        assert ledger.handle_inbound(OURS, CONSUMER, "START").opted_out is False


# asyncio


class AsyncSetup:
    def __init__(self, database: str) -> None:
        self.database = database
        self.azure_emulator = AzureEmulator()
        self.azure = optouts.AsyncClient(
            "azure",
            connection_string=self.azure_emulator.connection_string("https://azure.test"),
            http_client=httpx.AsyncClient(transport=httpx.ASGITransport(self.azure_emulator)),
        )
        self.ledger = optouts.AsyncClient("local", database=database)

    def confirmations(self) -> list[tuple[str, bool]]:
        assert isinstance(self.ledger.provider, LocalProvider)
        trail = self.ledger.provider.ledger.audit(int(CONSUMER[1:]))
        return [(target, out) for _, target, out, _ in trail.confirmations]


@pytest.fixture
async def asetup(database: str) -> AsyncIterator[AsyncSetup]:
    s = AsyncSetup(database)
    yield s
    await s.azure.aclose()
    await s.ledger.aclose()


async def test_async_a_stop_is_recorded_carried_and_confirmed(asetup: AsyncSetup) -> None:
    handled = await asetup.ledger.handle_inbound(OURS, CONSUMER, "STOP", targets=[asetup.azure])
    assert (handled.opted_out, handled.recorded) == (True, True)
    assert [(t.target, t.added, t.failed) for t in handled.targets] == [("azure", 1, 0)]
    assert asetup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert asetup.confirmations() == [("azure", True)]
    (item,) = await asetup.ledger.check(OURS, [CONSUMER])
    assert item.opted_out is True


async def test_async_a_repeated_stop_sends_nothing(asetup: AsyncSetup) -> None:
    when = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    await asetup.ledger.handle_inbound(OURS, CONSUMER, "STOP", received_at=when)
    again = await asetup.ledger.handle_inbound(
        OURS, CONSUMER, "stop", received_at=when, targets=[asetup.azure]
    )
    assert (again.opted_out, again.recorded, again.targets) == (True, False, ())
    assert asetup.azure_emulator.opted_out(OURS) == set()


async def test_async_a_failing_target_is_reported_and_the_others_still_hear(
    asetup: AsyncSetup,
) -> None:
    broken = AzureEmulator()
    broken.inject("unavailable")
    async with optouts.AsyncClient(
        "azure",
        connection_string=broken.connection_string("https://azure.test"),
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(broken)),
        retry=optouts.RetryPolicy(attempts=1),
    ) as failing:
        handled = await asetup.ledger.handle_inbound(
            OURS, CONSUMER, "STOP", targets=[failing, asetup.azure]
        )
    assert [(t.added, t.failed) for t in handled.targets] == [(0, 1), (1, 0)]
    assert broken.opted_out(OURS) == set()
    assert asetup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert asetup.confirmations() == [("azure", True)]  # from the healthy one only


async def test_async_a_consent_event_and_a_ledger_opened_from_settings(
    asetup: AsyncSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    notification = {
        "uuid": "n1",
        "event": "/restapi/v1.0/account/~/a2p-sms/opt-outs",
        "timestamp": "2026-11-25T10:00:00.000Z",
        "body": {"from": OURS, "to": CONSUMER, "active": True},
    }
    (event,) = parse_ringcentral_notification(notification)
    handled = await optouts.handle_event_async(asetup.ledger, event, targets=[asetup.azure])
    assert handled.recorded
    assert asetup.azure_emulator.opted_out(OURS) == {CONSUMER}
    with pytest.raises(optouts.ConfigurationError, match="local ledger"):
        await optouts.handle_event_async(asetup.azure, event)
    # a client of a vendor records in the ledger the settings name
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", asetup.database)
    late = await asetup.azure.handle_inbound(OURS, CONSUMER, "START")
    assert (late.opted_out, late.recorded) == (False, True)


def barrier(app: Any, arrived: list[int], both: asyncio.Event) -> Any:
    """An ASGI app that answers only once two requests are in flight across its copies."""

    async def gated(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            arrived.append(1)
            if len(arrived) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), timeout=2)
        await app(scope, receive, send)

    return gated


async def test_async_targets_are_told_concurrently(asetup: AsyncSetup) -> None:
    arrived: list[int] = []
    both = asyncio.Event()
    emulators = [AzureEmulator(), AzureEmulator()]
    clients = [
        optouts.AsyncClient(
            "azure",
            connection_string=e.connection_string("https://azure.test"),
            http_client=httpx.AsyncClient(transport=httpx.ASGITransport(barrier(e, arrived, both))),
            retry=optouts.RetryPolicy(attempts=1),
        )
        for e in emulators
    ]
    # one after the other, the first request would wait for a second that never comes
    handled = await asetup.ledger.handle_inbound(OURS, CONSUMER, "STOP", targets=clients)
    assert [(t.added, t.failed) for t in handled.targets] == [(1, 0), (1, 0)]
    for client in clients:
        await client.aclose()


async def test_async_an_unexpected_error_is_raised_after_every_target_finished(
    asetup: AsyncSetup,
) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug in a plugin")

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.2)
        await asetup.azure_emulator(scope, receive, send)

    failing = optouts.AsyncClient(
        "azure",
        connection_string=asetup.azure_emulator.connection_string("https://azure.test"),
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(broken)),
    )
    patient = optouts.AsyncClient(
        "azure",
        connection_string=asetup.azure_emulator.connection_string("https://azure.test"),
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(slow)),
    )
    with pytest.raises(RuntimeError, match="bug in a plugin"):
        await asetup.ledger.handle_inbound(OURS, CONSUMER, "STOP", targets=[failing, patient])
    # the slow target was not abandoned: its answer is in, and confirmed
    assert asetup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert asetup.confirmations() == [("azure", True)]
    await failing.aclose()
    await patient.aclose()


async def test_async_opening_the_ledger_never_blocks_the_event_loop(
    asetup: AsyncSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", asetup.database)
    writer = sqlite3.connect(asetup.database, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # another process writing, for a while
    threading.Timer(0.6, writer.rollback).start()
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while len(gaps) < 1000:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)  # ticking
    handled = await asetup.azure.handle_inbound(OURS, CONSUMER, "STOP")
    ticking.cancel()
    writer.close()
    assert handled.recorded
    assert max(gaps) < 0.3  # the loop kept running while the ledger waited for the lock


async def test_async_a_client_opened_for_a_cancelled_call_is_closed(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optouts import _handling

    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", database)
    writer = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE IF NOT EXISTS held (x)")
    writer.execute("BEGIN EXCLUSIVE")  # opening (reading) the ledger waits on this lock
    closed: list[optouts.AsyncClient] = []
    real_aclose = optouts.AsyncClient.aclose

    async def tracked_aclose(self: optouts.AsyncClient) -> None:
        closed.append(self)
        await real_aclose(self)

    monkeypatch.setattr(optouts.AsyncClient, "aclose", tracked_aclose)
    opening = asyncio.ensure_future(_handling.open_async("local", None))
    await asyncio.sleep(0.1)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    writer.rollback()  # the thread now finishes opening the client nobody will use
    for _ in range(200):
        if closed:
            break
        await asyncio.sleep(0.01)
    writer.close()
    assert len(closed) == 1


async def test_async_a_target_cancelled_on_its_own_is_reported_failed(
    asetup: AsyncSetup,
) -> None:
    async def cancelled(scope: Any, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError  # as if something cancelled this target's task

    stopped = optouts.AsyncClient(
        "azure",
        connection_string=asetup.azure_emulator.connection_string("https://azure.test"),
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(cancelled)),
    )
    handled = await asetup.ledger.handle_inbound(
        OURS, CONSUMER, "STOP", targets=[stopped, asetup.azure]
    )
    assert [(t.added, t.failed, t.notes) for t in handled.targets] == [
        (0, 1, ("cancelled",)),
        (1, 0, ()),
    ]
    await stopped.aclose()
