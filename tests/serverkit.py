"""What the tests of ``optouts serve`` share: a fake outbox, the app run with its lifespan
behind an httpx client, and vendor payloads as the vendors send them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

import optouts
from optouts.server import ServeSettings, create_app
from optouts.server import _app as app_module

OURS = "+18005550100"
CONSUMER = "+15555550123"
OTHER = "+15555550124"
API_KEY = "k3y-for-the-tests-0123456789"
RC_TOKEN = "rc-verification-token"
AZURE_TOKEN = "azure-delivery-secret"
ORIGIN = "eventgrid.azure.net"


class FakeOutbox:
    """The outbox interface, remembering what the service asked of it."""

    def __init__(self, ledger: optouts.Ledger, targets: Sequence[optouts.AsyncClient]) -> None:
        self.ledger = ledger
        self.targets = list(targets)
        self.wakes = 0
        self.ran = False
        self.stopped = asyncio.Event()
        self.finished = False

    def wake(self) -> None:
        self.wakes += 1

    async def run(self) -> None:
        self.ran = True
        await self.stopped.wait()
        self.finished = True

    def stop(self) -> None:
        self.stopped.set()

    def health(self) -> dict[str, dict[str, object]]:
        return {
            target.provider.name: {"last_success": None, "last_error": None, "pending": 0}
            for target in self.targets
        }


def fake_outboxes(monkeypatch: pytest.MonkeyPatch) -> list[FakeOutbox]:
    """Every outbox the apps of a test start from now on, fakes all."""
    made: list[FakeOutbox] = []

    def make(ledger: Any, targets: Any, metrics: Any, owner: str) -> FakeOutbox:
        assert owner
        made.append(FakeOutbox(ledger, targets))
        return made[-1]

    monkeypatch.setattr(app_module, "make_outbox", make)
    return made


def settings(
    *,
    api_keys: Sequence[str] | None = (API_KEY,),
    ringcentral: bool = True,
    azure: bool = True,
    origins: Sequence[str] | None = (ORIGIN,),
    **more: Any,
) -> ServeSettings:
    """Serve settings as a test wants them, read from nothing but these arguments."""
    webhooks: dict[str, dict[str, Any]] = {}
    installed = optouts.inbound.parsers()
    if ringcentral and "ringcentral" in installed:
        webhooks["ringcentral"] = {"verification_token": RC_TOKEN}
    if azure and "azure" in installed:
        webhooks["azure"] = {"token": AZURE_TOKEN, "allowed_origins": origins}
    return ServeSettings.from_settings(environ={}, api_keys=api_keys, webhooks={**webhooks, **more})


@asynccontextmanager
async def serving(
    ledger: optouts.Ledger, serve: ServeSettings | None = None, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ``ledger``, its lifespan running, behind an httpx client."""
    app = create_app(ledger, settings=serve if serve is not None else settings(), **options)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app, client=("203.0.113.9", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://optouts.test") as http:
            yield http


def opted_out(database: str, sender: str, recipients: list[str]) -> list[bool]:
    """What a second ledger, opened on the same file, reads."""
    with optouts.Ledger.open(database) as second:
        return second.opted_out(sender, recipients)


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value in Prometheus text, 0 when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def rc_v1(active: bool = True, to: str = CONSUMER) -> dict[str, Any]:
    """A RingCentral v1 opt-out notification."""
    return {
        "uuid": "5d1f3c0e-0000-4000-8000-000000000001",
        "event": "/restapi/v1.0/account/~/a2p-sms/opt-outs",
        "timestamp": "2024-06-03T18:35:12.000Z",
        "subscriptionId": "sub-1",
        "ownerId": "1",
        "body": {"from": OURS, "to": to, "active": active},
    }


def rc_v2(*records: dict[str, Any]) -> dict[str, Any]:
    """A RingCentral v2 consent event."""
    return {
        "uuid": "5d1f3c0e-0000-4000-8000-000000000002",
        "event": "/restapi/v2/accounts/~/sms/consents",
        "timestamp": "2024-06-03T18:36:00.000Z",
        "body": {"records": list(records)},
    }


def consent(to: str, status: str = "OptOut") -> dict[str, Any]:
    return {
        "from": OURS,
        "to": to,
        "optStatus": status,
        "source": "Recipient",
        "lastModifiedTime": "2024-06-03T18:35:50Z",
    }


def sms(text: str = "STOP", sender: str = CONSUMER) -> dict[str, Any]:
    """An Event Grid (schema) SMSReceived event."""
    return {
        "id": "Incoming_20240603183512",
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Communication/x",
        "subject": "/phonenumber/18005550100",
        "data": {
            "messageId": "Incoming_20240603183512",
            "from": sender,
            "to": OURS,
            "message": text,
            "receivedTimestamp": "2024-06-03T18:35:12.2855749Z",
        },
        "eventType": "Microsoft.Communication.SMSReceived",
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": "2024-06-03T18:35:12Z",
    }


def cloud_sms(text: str = "STOP") -> dict[str, Any]:
    """The same event as a CloudEvent 1.0."""
    grid = sms(text)
    return {
        "specversion": "1.0",
        "type": grid["eventType"],
        "source": grid["topic"],
        "id": "8d3b1c7e-5e0f-4d34-a0a8-21f9e4b6e6a1",
        "time": "2024-06-03T18:35:12Z",
        "datacontenttype": "application/json",
        "data": grid["data"],
    }


VALIDATION: dict[str, Any] = {
    "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
    "topic": "/subscriptions/x",
    "subject": "",
    "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
    "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
    "eventTime": "2024-06-03T18:00:00Z",
    "metadataVersion": "1",
    "dataVersion": "1",
}
