"""Inbound STOP/START and vendor consent events: recorded in the ledger, carried to vendors."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import optouts
from optouts.inbound import ConsentEvent, parse_azure_event_grid, parse_ringcentral_notification
from optouts.keywords import Intent, Keywords
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
        self.ledger = optouts.Ledger.open(database)

    def state(self) -> bool:
        (held,) = self.ledger.opted_out(OURS, [CONSUMER])
        return held

    def history(self) -> list[tuple[bool, str]]:
        trail = self.ledger.audit(CONSUMER)
        return [(out, source) for _, out, source, _ in trail.history]


@pytest.fixture
def setup(empty_ledger: str) -> Iterator[Setup]:
    s = Setup(empty_ledger)
    yield s
    s.azure.close()
    s.ledger.close()


def test_a_stop_is_recorded_and_carried(setup: Setup) -> None:
    handled = optouts.handle_inbound(setup.ledger, OURS, CONSUMER, " stop! ", targets=[setup.azure])
    assert handled.opted_out is True
    assert handled.recorded
    assert handled.classification is not None
    assert handled.classification.intent is Intent.OPT_OUT
    assert [(t.target, t.added, t.failed) for t in handled.targets] == [("azure", 1, 0)]
    assert setup.state() is True
    assert setup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert setup.history() == [(True, "inbound:api")]  # received through the API by default


def test_the_provider_a_text_came_through_is_its_source(setup: Setup) -> None:
    optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "STOP", via="azure")
    assert setup.history() == [(True, "inbound:azure")]


def test_start_after_stop_opts_back_in_everywhere(setup: Setup) -> None:
    optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "STOP", targets=[setup.azure])
    handled = optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "Start", targets=[setup.azure])
    assert handled.opted_out is False
    assert setup.state() is False
    assert setup.azure_emulator.opted_out(OURS) == set()
    assert [t.removed for t in handled.targets] == [1]


def test_a_likely_revocation_is_flagged_not_acted_on(setup: Setup) -> None:
    handled = optouts.handle_inbound(
        setup.ledger, OURS, CONSUMER, "please stop texting me", targets=[setup.azure]
    )
    assert handled.opted_out is None
    assert not handled.recorded
    assert handled.classification is not None
    assert handled.classification.likely_revocation
    assert handled.targets == ()
    assert setup.state() is False
    assert setup.azure_emulator.requests == 0


def test_help_records_nothing(setup: Setup) -> None:
    handled = optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "HELP")
    assert handled.opted_out is None
    assert setup.history() == []


def test_every_stop_is_a_receipt_but_a_redelivery_is_not(setup: Setup) -> None:
    first = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    later = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
    optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "STOP", received_at=first)
    again = optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "STOP", received_at=first)
    assert not again.recorded  # the same message delivered twice
    newer = optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "STOP", received_at=later)
    assert newer.recorded  # a second STOP is evidence too
    assert setup.history() == [(True, "inbound:api"), (True, "inbound:api")]


def test_an_older_start_never_undoes_a_newer_stop(setup: Setup) -> None:
    stop = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
    start = datetime(2026, 11, 25, 10, 55, tzinfo=timezone.utc)
    optouts.handle_inbound(
        setup.ledger, OURS, CONSUMER, "STOP", received_at=stop, targets=[setup.azure]
    )
    late = optouts.handle_inbound(
        setup.ledger, OURS, CONSUMER, "START", received_at=start, targets=[setup.azure]
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
    trail = setup.ledger.audit(CONSUMER)
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
    with pytest.raises(TypeError, match=r"optouts\.Ledger, not Client"):
        optouts.handle_event(setup.azure, message)  # type: ignore[arg-type]
    with setup.ledger.client() as through, pytest.raises(TypeError, match="optouts.Ledger"):
        optouts.handle_event(through, message)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="optouts.Ledger"):
        optouts.handle_inbound(setup.azure, OURS, CONSUMER, "STOP")  # type: ignore[arg-type]
    assert setup.history() == []  # nothing was recorded anywhere
    assert setup.azure_emulator.requests == 0


def test_custom_keywords_come_from_settings(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    monkeypatch.setenv("OPTOUTS_KEYWORDS_OPT_OUT", "baja, alto")
    monkeypatch.setenv("OPTOUTS_KEYWORDS_DROP", "YES")
    with optouts.Ledger.open(database) as ledger:
        assert optouts.handle_inbound(ledger, OURS, CONSUMER, "Baja").opted_out is True
        assert optouts.handle_inbound(ledger, OURS, CONSUMER, "yes").opted_out is None
        assert optouts.handle_inbound(ledger, OURS, CONSUMER, "START").opted_out is False


def test_keywords_come_from_the_config_file_the_ledger_was_opened_with(
    tmp_path: Path, database: str
) -> None:
    config = tmp_path / "elsewhere" / "optouts.toml"
    config.parent.mkdir()
    config.write_text(
        f'keywords_opt_out = ["alto"]\n\n[providers.local]\ndatabase = "{database}"\n',
        encoding="utf-8",
    )
    with optouts.Ledger.from_settings(config=config) as ledger:
        assert ledger.location == database
        assert optouts.handle_inbound(ledger, OURS, CONSUMER, "Alto").opted_out is True
        # keywords given win over the configured ones
        given = Keywords.default()
        handled = optouts.handle_inbound(ledger, OURS, CONSUMER, "alto", keywords=given)
        assert handled.opted_out is None
    with optouts.Ledger.open(database) as plain:  # no config file: the defaults only
        assert optouts.handle_inbound(plain, OURS, CONSUMER, "alto").opted_out is None


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
        self.ledger = optouts.Ledger.open(database)

    def confirmations(self) -> list[tuple[str, bool]]:
        trail = self.ledger.audit(CONSUMER)
        return [(target, out) for _, target, out, _ in trail.confirmations]


@pytest.fixture
async def asetup(database: str) -> AsyncIterator[AsyncSetup]:
    s = AsyncSetup(database)
    yield s
    await s.azure.aclose()
    s.ledger.close()


async def test_async_a_stop_is_recorded_carried_and_confirmed(asetup: AsyncSetup) -> None:
    handled = await optouts.handle_inbound_async(
        asetup.ledger, OURS, CONSUMER, "STOP", targets=[asetup.azure]
    )
    assert (handled.opted_out, handled.recorded) == (True, True)
    assert [(t.target, t.added, t.failed) for t in handled.targets] == [("azure", 1, 0)]
    assert asetup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert asetup.confirmations() == [("azure", True)]
    async with asetup.ledger.async_client() as ledger:
        (item,) = await ledger.check(OURS, [CONSUMER])
    assert item.opted_out is True


async def test_async_a_repeated_stop_sends_nothing(asetup: AsyncSetup) -> None:
    when = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    await optouts.handle_inbound_async(asetup.ledger, OURS, CONSUMER, "STOP", received_at=when)
    again = await optouts.handle_inbound_async(
        asetup.ledger, OURS, CONSUMER, "stop", received_at=when, targets=[asetup.azure]
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
        handled = await optouts.handle_inbound_async(
            asetup.ledger, OURS, CONSUMER, "STOP", targets=[failing, asetup.azure]
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
    with pytest.raises(TypeError, match="optouts.Ledger"):
        await optouts.handle_event_async(asetup.azure, event)  # type: ignore[arg-type]
    # a text that came through a vendor is recorded in the ledger the settings name
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", asetup.database)
    with optouts.Ledger.from_settings() as ledger:
        late = await optouts.handle_inbound_async(ledger, OURS, CONSUMER, "START", via="azure")
    assert (late.opted_out, late.recorded) == (False, True)
    trail = asetup.ledger.audit(CONSUMER)
    assert [(out, source) for _, out, source, _ in trail.history] == [
        (True, "ringcentral"),
        (False, "inbound:azure"),
    ]


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
    handled = await optouts.handle_inbound_async(
        asetup.ledger, OURS, CONSUMER, "STOP", targets=clients
    )
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
        await optouts.handle_inbound_async(
            asetup.ledger, OURS, CONSUMER, "STOP", targets=[failing, patient]
        )
    # the slow target was not abandoned: its answer is in, and confirmed
    assert asetup.azure_emulator.opted_out(OURS) == {CONSUMER}
    assert asetup.confirmations() == [("azure", True)]
    await failing.aclose()
    await patient.aclose()


async def test_async_a_ledger_waiting_for_a_lock_never_blocks_the_event_loop(
    asetup: AsyncSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", asetup.database)
    ledger = optouts.Ledger.from_settings()
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
    started = time.perf_counter()
    handled = await optouts.handle_inbound_async(ledger, OURS, CONSUMER, "STOP", via="azure")
    waited = time.perf_counter() - started
    ticking.cancel()
    writer.close()
    ledger.close()
    assert handled.recorded
    assert waited > 0.4  # the ledger did wait for the other writer
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
    handled = await optouts.handle_inbound_async(
        asetup.ledger, OURS, CONSUMER, "STOP", targets=[stopped, asetup.azure]
    )
    assert [(t.added, t.failed, t.notes) for t in handled.targets] == [
        (0, 1, ("cancelled",)),
        (1, 0, ()),
    ]
    await stopped.aclose()


# Time is never taken on trust


def consent(opted_out: bool, at: datetime | None, provider: str = "ringcentral") -> ConsentEvent:
    return ConsentEvent(
        sender=OURS, recipient=CONSUMER, opted_out=opted_out, at=at, provider=provider
    )


def test_a_forged_opt_in_dated_9999_never_blocks_a_later_stop(setup: Setup) -> None:
    forged = consent(False, datetime(9999, 1, 1, tzinfo=timezone.utc))
    optouts.handle_event(setup.ledger, consent(True, None, "azure"))
    assert optouts.handle_event(setup.ledger, forged).opted_out is True  # undated: no override
    ((_, _, _, _, _, last),) = setup.ledger.audit(CONSUMER).current
    assert last < optouts.ledger.micros_of(datetime(2100, 1, 1, tzinfo=timezone.utc))
    stop = optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "STOP")
    assert (stop.opted_out, stop.recorded) == (True, True)
    assert setup.state() is True


def test_a_future_dated_opt_in_counts_from_when_it_was_received(setup: Setup) -> None:
    """An opt-in dated a little ahead (a vendor clock running fast) is recorded as received,
    so a STOP received after it still wins."""
    ahead = datetime.now(timezone.utc) + timedelta(minutes=2)
    assert optouts.handle_event(setup.ledger, consent(False, ahead)).opted_out is False
    ((_, out, _, _, _, last),) = setup.ledger.audit(CONSUMER).current
    assert not out
    assert last <= optouts.Ledger.now()
    assert optouts.handle_inbound(setup.ledger, OURS, CONSUMER, "STOP").opted_out is True


def test_an_opt_out_dated_beyond_the_skew_is_recorded_when_received(setup: Setup) -> None:
    far = datetime.now(timezone.utc) + timedelta(days=3)
    before = optouts.Ledger.now()
    assert optouts.handle_event(setup.ledger, consent(True, far)).opted_out is True
    ((_, _, _, _, _, last),) = setup.ledger.audit(CONSUMER).current
    assert before <= last <= optouts.Ledger.now()
