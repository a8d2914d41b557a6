"""OAuth: one login for many requests, renewal ahead of expiry, one renewal at a time, revoke."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import httpx
import pytest

import optouts
from optouts import AuthenticationError
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral._emulator import ACCESS_PREFIX, DEFAULT_CLIENT_SECRET, DEFAULT_JWT
from optouts_ringcentral.testing import (
    BASE_URL,
    FakeClock,
    SyncASGITransport,
    fake_clock_provider,
    make_provider,
    numbers,
)

SENDER = "+16505550100"


def grants(transport: SyncASGITransport) -> list[str]:
    """The grant type of every token request, in order."""
    found = []
    for request, _ in transport.exchanges:
        if request.url.path.endswith("/oauth/token"):
            found.append(parse_qs(request.content.decode())["grant_type"][0].split(":")[-1])
    return found


def fake_emulator(clock: FakeClock, **kwargs: object) -> Emulator:
    options: dict[str, object] = {
        "clock": clock,
        "rate_limit": RateLimit(100_000, 60),
        "auth_rate_limit": RateLimit(1000, 60),
        **kwargs,
    }
    return Emulator(**options)  # type: ignore[arg-type]


def test_one_login_serves_many_requests(clock: FakeClock) -> None:
    emulator = fake_emulator(clock)
    transport = SyncASGITransport(emulator)
    with optouts.Client(
        fake_clock_provider(clock), http_client=httpx.Client(transport=transport)
    ) as client:
        for _ in range(10):
            client.list_page(SENDER)
        client.check(SENDER, numbers(3))
    assert emulator.counts["getToken"] == 1
    assert grants(transport) == ["jwt-bearer"]


def test_renews_ahead_of_expiry_with_the_refresh_token(clock: FakeClock) -> None:
    emulator = fake_emulator(clock, token_lifetime=600)
    transport = SyncASGITransport(emulator)
    with optouts.Client(
        fake_clock_provider(clock), http_client=httpx.Client(transport=transport)
    ) as client:
        client.list_page(SENDER)
        clock.advance(545)  # inside the last minute: still valid, due for renewal
        client.list_page(SENDER)
        clock.advance(545)
        client.list_page(SENDER)
    assert grants(transport) == ["jwt-bearer", "refresh_token", "refresh_token"]
    assert 401 not in transport.statuses()


def test_refresh_tokens_are_single_use(clock: FakeClock) -> None:
    emulator = fake_emulator(clock, token_lifetime=600)
    transport = SyncASGITransport(emulator)
    http = httpx.Client(transport=transport)
    with optouts.Client(fake_clock_provider(clock), http_client=http) as client:
        client.list_page(SENDER)
        first = transport.exchanges[0][1].json()["refresh_token"]
        clock.advance(590)
        client.list_page(SENDER)
        # The rotated-out refresh token is dead now.
        reused = http.post(
            f"{BASE_URL}/restapi/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": first},
            auth=(emulator.client_id, DEFAULT_CLIENT_SECRET),
        )
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"


def test_presents_the_jwt_again_without_refresh_tokens(clock: FakeClock) -> None:
    emulator = fake_emulator(clock, token_lifetime=600, refresh_tokens=False)
    transport = SyncASGITransport(emulator)
    with optouts.Client(
        fake_clock_provider(clock), http_client=httpx.Client(transport=transport)
    ) as client:
        client.list_page(SENDER)
        clock.advance(590)
        client.list_page(SENDER)
    assert grants(transport) == ["jwt-bearer", "jwt-bearer"]


def test_a_refused_refresh_falls_back_to_the_jwt(clock: FakeClock) -> None:
    emulator = fake_emulator(clock, token_lifetime=600, refresh_token_lifetime=10_000)
    transport = SyncASGITransport(emulator)
    with optouts.Client(
        fake_clock_provider(clock), http_client=httpx.Client(transport=transport)
    ) as client:
        client.list_page(SENDER)
        emulator._refresh.clear()  # the session's refresh token was revoked elsewhere
        clock.advance(590)
        client.list_page(SENDER)
    assert grants(transport) == ["jwt-bearer", "refresh_token", "jwt-bearer"]


def test_an_expired_token_is_renewed_once_and_the_request_sent_again(clock: FakeClock) -> None:
    emulator = fake_emulator(clock)
    transport = SyncASGITransport(emulator)
    with optouts.Client(
        fake_clock_provider(clock), http_client=httpx.Client(transport=transport)
    ) as client:
        client.list_page(SENDER)
        emulator.expire_tokens()  # the server says expired; our clock says fine
        page = client.list_page(SENDER)
    assert page.items == ()
    assert transport.statuses("/a2p-sms/") == [200, 401, 200]
    assert len(grants(transport)) == 2


def test_a_token_refused_twice_is_an_authentication_error() -> None:
    token_requests = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_requests
        if request.url.path == "/restapi/oauth/token":
            token_requests += 1
            return httpx.Response(
                200, json={"access_token": f"t{token_requests}", "expires_in": 3600}
            )
        body = {"errorCode": "OAU-128", "message": "Access token expired", "errors": []}
        return httpx.Response(401, json=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with (
        optouts.Client(make_provider(), http_client=http) as client,
        pytest.raises(AuthenticationError) as raised,
    ):
        client.list_page(SENDER)
    assert raised.value.code == "OAU-128"
    assert token_requests == 2


def test_bad_credentials_are_an_authentication_error(emulator: Emulator) -> None:
    http = httpx.Client(transport=SyncASGITransport(emulator))
    provider = make_provider(client_secret="wrong-secret")
    with optouts.Client(provider, http_client=http) as client:
        with pytest.raises(AuthenticationError) as raised:
            client.list_page(SENDER)
        assert raised.value.code == "OAU-146"
        assert raised.value.status_code == 400
    assert "wrong-secret" not in str(raised.value)


def test_concurrent_threads_share_one_login_and_one_renewal(clock: FakeClock) -> None:
    emulator = fake_emulator(clock, token_lifetime=600)
    transport = SyncASGITransport(emulator, token_delay=0.05)
    client = optouts.Client(
        fake_clock_provider(clock), http_client=httpx.Client(transport=transport)
    )
    barrier = threading.Barrier(16)

    def work(_: int) -> bool:
        barrier.wait()
        return client.check(SENDER, numbers(2)).ok

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(work, range(16)))
    assert emulator.counts["getToken"] == 1
    clock.advance(590)
    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(work, range(16)))
    assert emulator.counts["getToken"] == 2
    assert 401 not in transport.statuses()
    client.close()


async def test_concurrent_tasks_share_one_login_and_one_renewal(clock: FakeClock) -> None:
    emulator = fake_emulator(clock, token_lifetime=600)
    emulator.latency = 0.01  # every request yields to the loop, so tasks really interleave
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))
    client = optouts.AsyncClient(fake_clock_provider(clock), http_client=http)
    results = await asyncio.gather(*(client.check(SENDER, numbers(2)) for _ in range(20)))
    assert all(result.ok for result in results)
    assert emulator.counts["getToken"] == 1
    clock.advance(590)
    pages = await asyncio.gather(*(client.list_page(SENDER) for _ in range(20)))
    assert len(pages) == 20
    assert emulator.counts["getToken"] == 2
    await client.aclose()
    await http.aclose()


def test_close_revokes_the_session(emulator: Emulator) -> None:
    with optouts.Client(
        make_provider(), http_client=httpx.Client(transport=SyncASGITransport(emulator))
    ) as client:
        client.list_page(SENDER)
        assert emulator.live_sessions == 1
    assert emulator.counts["revokeToken"] == 1
    assert emulator.live_sessions == 0


def test_close_without_a_session_sends_nothing(emulator: Emulator) -> None:
    with optouts.Client(
        make_provider(), http_client=httpx.Client(transport=SyncASGITransport(emulator))
    ):
        pass
    assert emulator.counts == {}


@pytest.mark.parametrize("failure", ["500", "drop"])
def test_revoke_errors_are_ignored(failure: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, json={"access_token": "t1", "expires_in": 3600})
        if request.url.path == "/restapi/oauth/revoke":
            if failure == "drop":
                raise httpx.ConnectError("gone", request=request)
            return httpx.Response(500, json={"errorCode": "CMN-203", "message": "boom"})
        return httpx.Response(200, json={"records": [], "paging": {"perPage": 1000}})

    client = optouts.Client(
        make_provider(), http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    client.list_page(SENDER)
    client.close()


def test_secrets_never_show(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    transport = SyncASGITransport(emulator)
    provider = make_provider()
    client = optouts.Client(provider, http_client=httpx.Client(transport=transport))
    client.check(SENDER, numbers(3))
    emulator.expire_tokens()
    client.list_page(SENDER)
    emulator.fail_next("503", 1)
    client.add(SENDER, numbers(2))
    texts = [
        repr(provider),
        repr(provider.auth),
        repr(client),
        repr(provider.auth._token),
        caplog.text,
    ]
    with optouts.Client(
        make_provider(jwt="eyJbogus"), http_client=httpx.Client(transport=transport)
    ) as bad:
        with pytest.raises(AuthenticationError) as raised:
            bad.list_page()
        texts += [str(raised.value), repr(raised.value)]
    client.close()
    tokens = [
        response.json()["access_token"]
        for request, response in transport.exchanges
        if request.url.path.endswith("/token") and response.status_code == 200
    ]
    assert tokens
    assert all(token.startswith(ACCESS_PREFIX) for token in tokens)
    for text in texts:
        for secret in (
            DEFAULT_CLIENT_SECRET,
            DEFAULT_JWT,
            "eyJbogus",
            ACCESS_PREFIX,
            "Bearer",
            "Basic",
        ):
            assert secret not in text, f"{secret!r} leaked into {text[:80]!r}"


def test_settings_mask_secrets() -> None:
    from optouts._config import ConfigFile, resolve_settings
    from optouts_ringcentral import RingCentralProvider

    settings = resolve_settings(
        "ringcentral",
        RingCentralProvider.settings,
        {},
        ConfigFile(),
        environ={"RC_CLIENT_ID": "id", "RC_CLIENT_SECRET": "s3cret", "RC_JWT": DEFAULT_JWT},
    )
    assert "s3cret" not in repr(settings)
    assert DEFAULT_JWT not in repr(settings)
    provider = RingCentralProvider.from_settings(settings)
    assert provider.server_url == "https://platform.ringcentral.com"
    assert provider.api == "a2p-sms"
    assert "s3cret" not in repr(provider)
