"""``optouts serve``: the check and opt-out API, the OpenAPI document, health, metrics and
the lifespan that opens and closes what the service uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import optouts
from optouts import ConfigurationError
from optouts.ledger import LocalProvider, SQLiteLedger
from optouts.server import ServeSettings, create_app
from serverkit import (
    API_KEY,
    CONSUMER,
    OTHER,
    OURS,
    FakeOutbox,
    fake_outboxes,
    metric,
    opted_out,
    serving,
    settings,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def outboxes(monkeypatch: pytest.MonkeyPatch) -> list[FakeOutbox]:
    return fake_outboxes(monkeypatch)


@pytest.fixture
async def ledger(database: str) -> AsyncIterator[optouts.Ledger]:
    with optouts.Ledger.open(database) as opened:
        with opened.client() as client:
            client.add(OURS, [CONSUMER])
        yield opened


@pytest.fixture
async def http(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox]
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(ledger) as client:
        yield client


def rows(answer: httpx.Response) -> list[tuple[str, Any, bool, Any]]:
    assert answer.status_code == 200, answer.text
    return [
        (item["recipient"], item["opted_out"], item["ok"], item["error"])
        for item in answer.json()["results"]
    ]


# -- check ---------------------------------------------------------------------------------


async def test_get_check_answers_each_recipient_in_input_order(http: httpx.AsyncClient) -> None:
    answer = await http.get(
        "/v1/check",
        params={"from": OURS, "to": [OTHER, CONSUMER, "not-a-number", CONSUMER]},
        headers=AUTH,
    )
    found = rows(answer)
    assert answer.json()["from"] == OURS
    assert [(r, o, ok) for r, o, ok, _ in found] == [
        (OTHER, False, True),
        (CONSUMER, True, True),
        ("not-a-number", None, False),
        (CONSUMER, True, True),
    ]
    assert "not a phone number" in found[2][3]


async def test_post_check_takes_up_to_10000_recipients(http: httpx.AsyncClient) -> None:
    numbers = [f"+1202555{n:04d}" for n in range(9_999)] + [CONSUMER]
    found = rows(await http.post("/v1/check", json={"from": OURS, "to": numbers}, headers=AUTH))
    assert [r for r, *_ in found] == numbers
    assert [o for _, o, *_ in found] == [False] * 9_999 + [True]
    too_many = await http.post(
        "/v1/check", json={"from": OURS, "to": [*numbers, OTHER]}, headers=AUTH
    )
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "to names 10,001 recipients; at most 10,000 a request"}


async def test_a_star_opt_out_counts_for_every_sender(
    http: httpx.AsyncClient, ledger: optouts.Ledger
) -> None:
    with ledger.client() as client:
        client.add("*", [OTHER])
    found = rows(await http.post("/v1/check", json={"from": "12345", "to": [OTHER]}, headers=AUTH))
    assert found == [(OTHER, True, True, None)]


@pytest.mark.parametrize(
    ("request_args", "message"),
    [
        ({"content": b"{not json"}, "not JSON"),
        ({"json": [OURS]}, "expected a JSON object"),
        ({"json": {"to": [CONSUMER]}}, "from is None"),
        ({"json": {"from": OURS}}, "to is None, not a list"),
        ({"json": {"from": OURS, "to": CONSUMER}}, "not a list"),
        ({"json": {"from": OURS, "to": []}}, "to is missing"),
        ({"json": {"from": OURS, "to": [CONSUMER, 15555550124]}}, "to[1] is 15555550124"),
        ({"json": {"from": "nobody", "to": [CONSUMER]}}, "not a sender"),
    ],
    ids=["not-json", "list", "no-from", "no-to", "to-text", "empty", "number", "bad-sender"],
)
async def test_a_malformed_check_is_400_with_a_json_error(
    http: httpx.AsyncClient, request_args: dict[str, Any], message: str
) -> None:
    answer = await http.post("/v1/check", headers=AUTH, **request_args)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


async def test_get_check_needs_from_and_to(http: httpx.AsyncClient) -> None:
    answer = await http.get("/v1/check", params={"to": CONSUMER}, headers=AUTH)
    assert answer.status_code == 400
    assert "from is missing" in answer.json()["error"]
    answer = await http.get("/v1/check", params={"from": OURS}, headers=AUTH)
    assert "to is missing" in answer.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-wrong-key"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": API_KEY},
        {"Authorization": f"Bearer {API_KEY}x"},
    ],
    ids=["none", "wrong", "basic", "bare", "longer"],
)
async def test_the_api_needs_a_configured_key(
    http: httpx.AsyncClient, database: str, headers: dict[str, str]
) -> None:
    for method, url in (("GET", f"/v1/check?from={OURS}&to={CONSUMER}"), ("POST", "/v1/optouts")):
        answer = await http.request(
            method, url, json={"from": OURS, "to": [OTHER]}, headers=headers
        )
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json() == {"error": "not authenticated"}
    assert opted_out(database, OURS, [OTHER]) == [False]


async def test_any_configured_key_opens_the_api(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox]
) -> None:
    keys = ["first-key-0123456789", "second-key-0123456789"]
    async with serving(ledger, settings(api_keys=keys)) as http:
        for key in keys:
            answer = await http.get(
                "/v1/check",
                params={"from": OURS, "to": CONSUMER},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 200


async def test_without_api_keys_the_api_is_not_served(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox]
) -> None:
    async with serving(ledger, settings(api_keys=None)) as http:
        for method, url in (("GET", "/v1/check"), ("POST", "/v1/check"), ("POST", "/v1/optouts")):
            answer = await http.request(method, url, headers=AUTH)
            assert answer.status_code == 404


# -- add and remove --------------------------------------------------------------------------


async def test_add_and_remove_from_other_systems_wake_the_outbox(
    http: httpx.AsyncClient, database: str, outboxes: list[FakeOutbox]
) -> None:
    body = {"from": OURS, "to": [OTHER, "bad", OTHER]}
    added = rows(await http.post("/v1/optouts", json=body, headers=AUTH))
    assert [(r, ok) for r, _, ok, _ in added] == [(OTHER, True), ("bad", False), (OTHER, True)]
    assert opted_out(database, OURS, [OTHER]) == [True]
    assert outboxes[0].wakes == 1
    with optouts.Ledger.open(database) as second:
        trail = second.audit(OTHER)
    assert [source for _, _, source, _ in trail.history] == ["api"]
    removed = rows(
        await http.request(
            "DELETE", "/v1/optouts", json={"from": OURS, "to": [OTHER]}, headers=AUTH
        )
    )
    assert [(r, ok) for r, _, ok, _ in removed] == [(OTHER, True)]
    assert opted_out(database, OURS, [OTHER]) == [False]
    assert outboxes[0].wakes == 2


async def test_nothing_accepted_wakes_no_one(
    http: httpx.AsyncClient, outboxes: list[FakeOutbox]
) -> None:
    answer = await http.post("/v1/optouts", json={"from": OURS, "to": ["bad"]}, headers=AUTH)
    assert rows(answer)[0][2] is False
    assert outboxes[0].wakes == 0


# -- OpenAPI, health, metrics --------------------------------------------------------------------


async def test_the_openapi_document_is_valid_openapi_3_1(http: httpx.AsyncClient) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.1")
    validator.validate(document)
    assert {"/v1/check", "/v1/optouts", "/webhooks/{format}", "/healthz", "/metrics"} <= set(
        document["paths"]
    )


async def test_health_reports_the_ledger_and_each_target(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox]
) -> None:
    other = optouts.AsyncClient(LocalProvider(SQLiteLedger(":memory:")))
    async with other, serving(ledger, targets=[other]) as http:
        answer = await http.get("/healthz")
        assert answer.status_code == 200
        assert answer.json() == {
            "status": "ok",
            "ledger": {"reachable": True},
            "outbox": "running",
            "targets": {"local": {"last_success": None, "last_error": None, "pending": 0}},
        }
        ledger.close()  # the ledger gone: no longer healthy
        answer = await http.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "unavailable"
        assert answer.json()["ledger"]["reachable"] is False
        assert "closed" in answer.json()["ledger"]["error"]


async def test_routes_answer_503_outside_the_lifespan(ledger: optouts.Ledger) -> None:
    app = create_app(ledger, settings=settings())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://optouts.test") as http:
        assert (await http.get("/healthz")).status_code == 503
        answer = await http.get("/v1/check", params={"from": OURS, "to": CONSUMER}, headers=AUTH)
        assert answer.status_code == 503
        assert "not running" in answer.json()["error"]


async def test_metrics_count_checks_and_their_latency(http: httpx.AsyncClient) -> None:
    for _ in range(3):
        await http.get("/v1/check", params={"from": OURS, "to": CONSUMER}, headers=AUTH)
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert metric(text, "optouts_check_requests_total") == 3
    assert metric(text, "optouts_check_seconds_count") == 3
    assert 'optouts_check_seconds_bucket{le="+Inf"} 3.0' in text
    for name in ("optouts_outbox_pending", "optouts_outbox_sent", "optouts_outbox_failed"):
        assert f"# TYPE {name}" in text


async def test_two_apps_in_one_process_keep_their_own_counts(
    ledger: optouts.Ledger, outboxes: list[FakeOutbox]
) -> None:
    async with serving(ledger) as first, serving(ledger) as second:
        await first.get("/v1/check", params={"from": OURS, "to": CONSUMER}, headers=AUTH)
        assert metric((await first.get("/metrics")).text, "optouts_check_requests_total") == 1
        assert metric((await second.get("/metrics")).text, "optouts_check_requests_total") == 0


# -- the lifespan ------------------------------------------------------------------------------


async def test_the_lifespan_opens_and_closes_what_it_opened(
    database: str, outboxes: list[FakeOutbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", database)
    other = optouts.AsyncClient(LocalProvider(SQLiteLedger(":memory:")))
    app = create_app(targets=[other], settings=settings())
    async with app.router.lifespan_context(app):
        [outbox] = outboxes
        await asyncio.sleep(0)  # the worker's first step
        assert outbox.ran
        assert outbox.targets == [other]
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answer = await http.post(
                "/v1/optouts", json={"from": OURS, "to": [CONSUMER]}, headers=AUTH
            )
            assert answer.status_code == 200
    assert outbox.finished  # stopped, and its run() awaited
    assert opted_out(database, OURS, [CONSUMER]) == [True]  # written, then closed
    assert (await other.check(OURS, [CONSUMER]))[0].ok  # a given client stays open
    await other.aclose()


async def test_named_targets_are_opened_for_the_outbox_and_closed_after(
    database: str, outboxes: list[FakeOutbox], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", database)
    opened: list[optouts.AsyncClient] = []
    closed: list[optouts.AsyncClient] = []
    real_aclose = optouts.AsyncClient.aclose

    async def aclose(self: optouts.AsyncClient) -> None:
        closed.append(self)
        await real_aclose(self)

    monkeypatch.setattr(optouts.AsyncClient, "aclose", aclose)
    monkeypatch.setattr(
        "optouts.server._app.open_async",
        lambda name, config: _opened(name, opened),
    )
    app = create_app(targets=["acme-vendor"], settings=settings())
    async with app.router.lifespan_context(app):
        assert [t.provider.name for t in outboxes[0].targets] == ["local"]
    assert opened
    assert opened[0] in closed


async def _opened(name: str, opened: list[optouts.AsyncClient]) -> optouts.AsyncClient:
    assert name == "acme-vendor"
    opened.append(optouts.AsyncClient(LocalProvider(SQLiteLedger(":memory:"))))
    return opened[-1]


def test_the_ledger_is_no_target() -> None:
    with pytest.raises(ConfigurationError, match="'local' is the ledger"):
        create_app(targets=["local"], settings=settings())


async def test_targets_default_to_the_settings(
    database: str, outboxes: list[FakeOutbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", database)
    monkeypatch.setattr(
        "optouts.server._app.open_async",
        lambda name, config: _opened(name, []),
    )
    serve = ServeSettings.from_settings(environ={}, targets="acme-vendor")
    app = create_app(settings=serve)
    async with app.router.lifespan_context(app):
        assert len(outboxes[0].targets) == 1


async def test_a_service_without_targets_runs_an_idle_outbox(ledger: optouts.Ledger) -> None:
    from optouts.server import _app
    from optouts.server._metrics import Metrics

    idle = _app.make_outbox(ledger, [], Metrics(), "me")
    worker = asyncio.create_task(idle.run())
    idle.wake()
    await asyncio.sleep(0)
    assert not worker.done()
    idle.stop()
    await asyncio.wait_for(worker, 1)
    assert idle.health() == {}
