"""``optouts serve``: the vendors' webhooks, through the app with its lifespan running.

What a vendor is told is what the ledger holds: a 200 only once every event is in the
ledger (read back through a second ledger on the same file), a 401 and nothing recorded
for a request without the configured secret, 404 for an endpoint whose secret is not
configured, and a body cut off at 1 MiB however it is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import pytest

import optouts
from optouts import ProviderError, _plugins
from optouts.inbound import (
    ConsentEvent,
    InboundParser,
    Payload,
    get_header,
    load_json,
    read_number,
    secret_matches,
)
from serverkit import (
    AZURE_TOKEN,
    CONSUMER,
    ORIGIN,
    OTHER,
    OURS,
    RC_TOKEN,
    VALIDATION,
    FakeOutbox,
    cloud_sms,
    consent,
    fake_outboxes,
    metric,
    opted_out,
    rc_v1,
    rc_v2,
    serving,
    settings,
    sms,
)

installed = optouts.inbound.parsers()
needs_ringcentral = pytest.mark.skipif(
    "ringcentral" not in installed, reason="optouts-ringcentral is not installed"
)
needs_azure = pytest.mark.skipif("azure" not in installed, reason="optouts-azure is not installed")
MiB = 1024 * 1024


@pytest.fixture
def outboxes(monkeypatch: pytest.MonkeyPatch) -> list[FakeOutbox]:
    return fake_outboxes(monkeypatch)


@pytest.fixture
async def ledger(database: str) -> AsyncIterator[optouts.Ledger]:
    with optouts.Ledger.open(database) as opened:
        yield opened


@pytest.fixture
async def http(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox]
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(ledger) as client:
        yield client


async def metrics_text(http: httpx.AsyncClient) -> str:
    return (await http.get("/metrics")).text


# -- RingCentral ---------------------------------------------------------------------------


@needs_ringcentral
async def test_ringcentral_handshake_echoes_the_validation_token_and_records_nothing(
    http: httpx.AsyncClient, database: str
) -> None:
    answer = await http.post("/webhooks/ringcentral", headers={"Validation-Token": "v-123"})
    assert answer.status_code == 200
    assert answer.headers["Validation-Token"] == "v-123"
    assert opted_out(database, OURS, [CONSUMER]) == [False]


@needs_ringcentral
async def test_a_ringcentral_opt_out_is_in_the_ledger_when_the_200_comes(
    http: httpx.AsyncClient, database: str, outboxes: list[FakeOutbox]
) -> None:
    answer = await http.post(
        "/webhooks/ringcentral", json=rc_v1(), headers={"Verification-Token": RC_TOKEN}
    )
    assert answer.status_code == 200
    assert answer.json() == {"events": 1, "recorded": 1}
    assert opted_out(database, OURS, [CONSUMER]) == [True]
    assert outboxes[0].wakes == 1
    assert (
        metric(
            await metrics_text(http), "optouts_webhook_events_received_total", vendor="ringcentral"
        )
        == 1
    )


@needs_ringcentral
async def test_v2_consent_events_each_recorded(http: httpx.AsyncClient, database: str) -> None:
    body = rc_v2(consent(CONSUMER), consent(OTHER, "OptIn"))
    answer = await http.post(
        "/webhooks/ringcentral", json=body, headers={"verification-token": RC_TOKEN}
    )
    assert answer.json() == {"events": 2, "recorded": 2}
    assert opted_out(database, OURS, [CONSUMER, OTHER]) == [True, False]
    with optouts.Ledger.open(database) as second:
        sources = {row[3] for page in second.rows(opted_out=None) for row in page}
    assert sources == {"ringcentral:recipient"}


@needs_ringcentral
async def test_a_redelivery_is_accepted_and_wakes_no_one(
    http: httpx.AsyncClient, outboxes: list[FakeOutbox]
) -> None:
    for _ in range(2):
        answer = await http.post(
            "/webhooks/ringcentral", json=rc_v1(), headers={"Verification-Token": RC_TOKEN}
        )
        assert answer.status_code == 200
    assert answer.json() == {"events": 1, "recorded": 0}
    assert outboxes[0].wakes == 1


@needs_ringcentral
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Verification-Token": "wrong"},
        {"Verification-Token": RC_TOKEN[:-1]},
        {"Authorization": f"Bearer {RC_TOKEN}"},
        {"Verification-Token": ""},
    ],
    ids=["none", "wrong", "prefix", "bearer", "empty"],
)
async def test_a_ringcentral_notification_without_the_token_is_401_and_not_recorded(
    http: httpx.AsyncClient, database: str, outboxes: list[FakeOutbox], headers: dict[str, str]
) -> None:
    answer = await http.post("/webhooks/ringcentral", json=rc_v1(), headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": "not authenticated"}
    assert opted_out(database, OURS, [CONSUMER]) == [False]
    assert outboxes[0].wakes == 0
    text = await metrics_text(http)
    assert (
        metric(
            text,
            "optouts_webhook_requests_refused_total",
            reason="unauthenticated",
            vendor="ringcentral",
        )
        == 1
    )


@needs_ringcentral
async def test_an_unauthenticated_body_is_not_even_read_as_a_delivery(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post("/webhooks/ringcentral", content=b"\xff not json")
    assert answer.status_code == 401


@needs_ringcentral
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (json.dumps({"body": {"from": OURS, "to": "nope", "active": True}}).encode(), "to"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["not-json", "bad-number", "deep"],
)
async def test_a_malformed_delivery_is_400_with_a_json_error(
    http: httpx.AsyncClient, database: str, body: bytes, message: str
) -> None:
    answer = await http.post(
        "/webhooks/ringcentral", content=body, headers={"Verification-Token": RC_TOKEN}
    )
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert len(answer.json()["error"]) < 600
    assert opted_out(database, OURS, [CONSUMER]) == [False]
    text = await metrics_text(http)
    assert (
        metric(
            text, "optouts_webhook_requests_refused_total", reason="malformed", vendor="ringcentral"
        )
        == 1
    )


@needs_ringcentral
async def test_one_bad_event_fails_the_whole_delivery(
    http: httpx.AsyncClient, database: str
) -> None:
    body = rc_v2(consent(CONSUMER), consent("not-a-number"))
    answer = await http.post(
        "/webhooks/ringcentral", json=body, headers={"Verification-Token": RC_TOKEN}
    )
    assert answer.status_code == 400
    assert opted_out(database, OURS, [CONSUMER]) == [False]


@needs_ringcentral
async def test_only_post_and_options_reach_a_webhook(http: httpx.AsyncClient) -> None:
    answer = await http.get("/webhooks/ringcentral")
    assert answer.status_code == 405
    assert "error" in answer.json()
    answer = await http.request("OPTIONS", "/webhooks/ringcentral")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"


# -- Azure Event Grid ------------------------------------------------------------------------


@needs_azure
async def test_event_grid_subscription_validation_is_answered(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post("/webhooks/azure", json=[VALIDATION])
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": VALIDATION["data"]["validationCode"]}


@needs_azure
async def test_cloudevents_handshake_only_for_configured_origins(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.request(
        "OPTIONS", "/webhooks/azure", headers={"WebHook-Request-Origin": ORIGIN}
    )
    assert answer.status_code == 200
    assert answer.headers["WebHook-Allowed-Origin"] == ORIGIN
    answer = await http.request(
        "OPTIONS", "/webhooks/azure", headers={"WebHook-Request-Origin": "evil.example"}
    )
    assert answer.status_code == 403
    assert "WebHook-Allowed-Origin" not in answer.headers
    assert "not in allowed_origins" in answer.json()["error"]
    text = await metrics_text(http)
    assert (
        metric(text, "optouts_webhook_requests_refused_total", reason="handshake", vendor="azure")
        == 1
    )


@needs_azure
async def test_without_allowed_origins_no_cloudevents_handshake_succeeds(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox]
) -> None:
    async with serving(ledger, settings(origins=None)) as http:
        answer = await http.request(
            "OPTIONS", "/webhooks/azure", headers={"WebHook-Request-Origin": ORIGIN}
        )
    assert answer.status_code == 403


@needs_azure
@pytest.mark.parametrize(
    ("url", "headers"),
    [
        (f"/webhooks/azure?token={AZURE_TOKEN}", {}),
        ("/webhooks/azure", {"Authorization": f"Bearer {AZURE_TOKEN}"}),
        ("/webhooks/azure?token=wrong", {"authorization": f"bearer {AZURE_TOKEN}"}),
    ],
    ids=["query", "bearer", "bearer-any-case"],
)
async def test_an_azure_stop_with_the_token_is_recorded(
    http: httpx.AsyncClient, database: str, url: str, headers: dict[str, str]
) -> None:
    answer = await http.post(url, json=[sms("Stop."), cloud_sms("HELLO")], headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"events": 2, "recorded": 1}
    assert opted_out(database, OURS, [CONSUMER]) == [True]
    with optouts.Ledger.open(database) as second:
        [page] = list(second.rows())
    assert [(row[0], row[1], row[3]) for row in page] == [(OURS, CONSUMER, "inbound:azure")]


@needs_azure
@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/webhooks/azure", {}),
        ("/webhooks/azure?token=wrong", {}),
        ("/webhooks/azure?token=", {"Authorization": "Bearer "}),
        ("/webhooks/azure", {"Authorization": f"Basic {AZURE_TOKEN}"}),
        (f"/webhooks/azure?tok={AZURE_TOKEN}", {"Authorization": AZURE_TOKEN}),
    ],
    ids=["none", "wrong", "empty", "basic", "misnamed"],
)
async def test_an_azure_delivery_without_the_token_is_401(
    http: httpx.AsyncClient, database: str, url: str, headers: dict[str, str]
) -> None:
    answer = await http.post(url, json=[sms()], headers=headers)
    assert answer.status_code == 401
    assert opted_out(database, OURS, [CONSUMER]) == [False]


@needs_azure
async def test_a_likely_revocation_is_logged_for_review_not_recorded(
    http: httpx.AsyncClient, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="optouts.serve")
    answer = await http.post(
        f"/webhooks/azure?token={AZURE_TOKEN}", json=[sms("please stop texting me")]
    )
    assert answer.json() == {"events": 1, "recorded": 0}
    assert opted_out(database, OURS, [CONSUMER]) == [False]
    assert any("review" in record.getMessage() for record in caplog.records)


# -- what every endpoint shares ----------------------------------------------------------------


async def test_an_endpoint_whose_secret_is_not_configured_is_not_served(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox], database: str
) -> None:
    async with serving(ledger, settings(ringcentral=False, azure=False)) as http:
        for name in ("ringcentral", "azure", "acme"):
            answer = await http.post(
                f"/webhooks/{name}",
                json=rc_v1(),
                headers={"Verification-Token": RC_TOKEN, "Validation-Token": "v"},
            )
            assert answer.status_code == 404
            assert answer.json() == {"error": "Not Found"}
            assert "Validation-Token" not in answer.headers
    assert opted_out(database, OURS, [CONSUMER]) == [False]


@needs_ringcentral
async def test_200_waits_for_the_ledger_and_a_failing_ledger_is_503(
    http: httpx.AsyncClient, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ProviderError("the disk is full", provider="local")

    monkeypatch.setattr(optouts.Ledger, "record", broken)
    answer = await http.post(
        "/webhooks/ringcentral", json=rc_v1(), headers={"Verification-Token": RC_TOKEN}
    )
    assert answer.status_code == 503
    assert "deliver again" in answer.json()["error"]
    assert "disk" not in answer.text  # the ledger's own words stay in the log
    text = await metrics_text(http)
    assert (
        metric(
            text, "optouts_webhook_requests_refused_total", reason="ledger", vendor="ringcentral"
        )
        == 1
    )
    monkeypatch.undo()  # the ledger is back: the vendor's next delivery is recorded
    answer = await http.post(
        "/webhooks/ringcentral", json=rc_v1(), headers={"Verification-Token": RC_TOKEN}
    )
    assert answer.json() == {"events": 1, "recorded": 1}
    assert opted_out(database, OURS, [CONSUMER]) == [True]


@needs_ringcentral
async def test_recording_runs_off_the_event_loop(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    loop_thread = threading.get_ident()
    threads: list[int] = []
    real = optouts.Ledger.record

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
        return real(*args, **kwargs)

    monkeypatch.setattr(optouts.Ledger, "record", watched)
    answer = await http.post(
        "/webhooks/ringcentral", json=rc_v1(), headers={"Verification-Token": RC_TOKEN}
    )
    assert answer.status_code == 200
    assert threads
    assert loop_thread not in threads


async def chunks(size: int, count: int, pulled: list[int]) -> AsyncIterator[bytes]:
    for _ in range(count):
        pulled.append(size)
        yield b" " * size


@needs_ringcentral
@pytest.mark.parametrize("declared", [None, "10"], ids=["chunked", "lying-length"])
async def test_a_body_over_1_mib_is_413_while_it_streams(
    http: httpx.AsyncClient, database: str, declared: str | None
) -> None:
    pulled: list[int] = []
    headers = {"Verification-Token": RC_TOKEN}
    if declared is not None:
        headers["Content-Length"] = declared
    answer = await http.post(
        "/webhooks/ringcentral", content=chunks(64 * 1024, 1024, pulled), headers=headers
    )
    assert answer.status_code == 413
    assert "over 1,048,576 bytes" in answer.json()["error"]
    assert sum(pulled) <= MiB + 64 * 1024  # 64 MiB offered; the service stopped at 1 MiB
    text = await metrics_text(http)
    assert (
        metric(
            text, "optouts_webhook_requests_refused_total", reason="too_large", vendor="ringcentral"
        )
        == 1
    )


@needs_ringcentral
async def test_a_declared_length_over_1_mib_is_refused_before_reading(
    http: httpx.AsyncClient,
) -> None:
    pulled: list[int] = []
    answer = await http.post(
        "/webhooks/ringcentral",
        content=chunks(1024, 4, pulled),
        headers={"Verification-Token": RC_TOKEN, "Content-Length": str(MiB + 1)},
    )
    assert answer.status_code == 413
    assert pulled == []


@needs_ringcentral
async def test_a_body_of_exactly_1_mib_is_read(http: httpx.AsyncClient) -> None:
    body = json.dumps(rc_v1()).encode()
    body += b" " * (MiB - len(body))
    answer = await http.post(
        "/webhooks/ringcentral", content=body, headers={"Verification-Token": RC_TOKEN}
    )
    assert answer.status_code == 200


@needs_azure
async def test_one_log_line_per_request_without_the_query_or_secrets(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="optouts.serve")
    await http.post(f"/webhooks/azure?token={AZURE_TOKEN}", json=[sms()])
    await http.post("/webhooks/azure", json=[sms()], headers={"Authorization": "Bearer nope"})
    await http.get("/no/such/page")
    lines = [r.getMessage() for r in caplog.records if r.name == "optouts.serve"]
    assert len(lines) == 3
    assert lines[0].startswith("203.0.113.9:4321 POST /webhooks/azure 200 ")
    assert lines[0].endswith(" ms")
    assert " 401 " in lines[1]
    assert "GET /no/such/page 404" in lines[2]
    assert all(AZURE_TOKEN not in line and "token" not in line for line in lines)


async def test_secrets_never_show_in_the_settings_repr() -> None:
    shown = repr(settings())
    assert "Secret('********')" in shown
    for secret in (RC_TOKEN, AZURE_TOKEN, "k3y-for-the-tests"):
        assert secret not in shown


# -- a third party's format is served the same way ---------------------------------------------


def acme_parse(payload: Payload, headers: Mapping[str, str]) -> list[ConsentEvent]:
    data = load_json(payload)
    return [
        ConsentEvent(
            read_number(data.get("line"), "line", ours=True),
            read_number(data.get("phone"), "phone", ours=False),
            True,
            None,
            "acme",
        )
    ]


def acme_authenticate(
    headers: Mapping[str, str], query: Mapping[str, str], settings: Mapping[str, Any]
) -> bool:
    return secret_matches(get_header(headers, "X-Acme-Key"), settings.get("key"))


ACME = InboundParser(
    "acme",
    acme_parse,
    authenticate=acme_authenticate,
    settings=(optouts.Setting("key", "the shared key", required=True, secret=True),),
)


class AcmePlugin:
    def __init__(self, parser: InboundParser) -> None:
        self.parser = parser

    @optouts.hookimpl
    def register_inbound_parsers(self, register: Any) -> None:
        register(self.parser)


@pytest.fixture
def acme() -> Iterator[None]:
    manager = _plugins.get_plugin_manager()
    manager.register(AcmePlugin(ACME), name="acme-serve")
    try:
        yield
    finally:
        manager.unregister(name="acme-serve")


async def test_a_plugin_format_is_served_from_its_own_settings(
    acme: None,
    ledger: optouts.Ledger,
    database: str,
    outboxes: list[FakeOutbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTOUTS_SERVE_ACME_KEY", "acme-secret")
    serve = optouts.server.ServeSettings.from_settings()
    assert set(serve.webhooks) == {"acme"}
    body = {"line": OURS, "phone": CONSUMER}
    async with serving(ledger, serve) as http:
        refused = await http.post("/webhooks/acme", json=body, headers={"X-Acme-Key": "guess"})
        accepted = await http.post(
            "/webhooks/acme", json=body, headers={"X-Acme-Key": "acme-secret"}
        )
    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert opted_out(database, OURS, [CONSUMER]) == [True]


async def test_a_format_that_cannot_authenticate_is_never_served(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox]
) -> None:
    open_door = InboundParser("opendoor", acme_parse)
    manager = _plugins.get_plugin_manager()
    manager.register(AcmePlugin(open_door), name="opendoor-serve")
    try:
        serve = optouts.server.ServeSettings.from_settings(environ={})
        assert "opendoor" not in serve.webhooks
        assert "cannot authenticate" in serve.not_served["opendoor"]
        async with serving(ledger, serve) as http:
            answer = await http.post("/webhooks/opendoor", json={"line": OURS, "phone": CONSUMER})
        assert answer.status_code == 404
    finally:
        manager.unregister(name="opendoor-serve")


# -- end to end: webhook, ledger, outbox, vendor -----------------------------------------------


@needs_ringcentral
@needs_azure
async def test_a_ringcentral_stop_reaches_azure_through_the_outbox(
    ledger: optouts.Ledger, database: str
) -> None:
    """With the real outbox (``optouts.server._outbox``), no fake."""
    from optouts_azure._emulator import AzureEmulator

    emulator = AzureEmulator()
    azure = optouts.AsyncClient(
        "azure",
        connection_string=emulator.connection_string("https://azure.test"),
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(emulator)),
    )
    async with azure, serving(ledger, targets=[azure]) as http:
        answer = await http.post(
            "/webhooks/ringcentral", json=rc_v1(), headers={"Verification-Token": RC_TOKEN}
        )
        assert answer.status_code == 200
        for _ in range(200):
            if emulator.opted_out(OURS) == {CONSUMER}:
                break
            await asyncio.sleep(0.05)
        assert emulator.opted_out(OURS) == {CONSUMER}
        for _ in range(200):
            health = (await http.get("/healthz")).json()
            if health["targets"]["azure"].get("last_success"):
                break
            await asyncio.sleep(0.05)
        assert health["outbox"] == "running"
        assert health["targets"]["azure"]["last_success"]
        text = await metrics_text(http)
        assert metric(text, "optouts_outbox_sent_total", target="azure") == 1
    with optouts.Ledger.open(database) as second:
        confirmed = second.audit(CONSUMER).confirmations
    assert [(target, state) for _, target, state, _ in confirmed] == [("azure", True)]
