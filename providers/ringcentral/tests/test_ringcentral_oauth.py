"""OAuth: one login for many requests, renewal ahead of expiry, one renewal at a time, revoke."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

import optouts
from optouts import AuthenticationError, Secret
from optouts.plugin import with_retry
from optouts_ringcentral import Emulator, RateLimit, RingCentralAuth, RingCentralProvider
from optouts_ringcentral._emulator import ACCESS_PREFIX, DEFAULT_CLIENT_SECRET, DEFAULT_JWT
from optouts_ringcentral._oauth import TokenState, basic_authorization
from optouts_ringcentral.testing import (
    BASE_URL,
    FakeClock,
    SyncASGITransport,
    drive,
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
    from optouts.plugin import settings_for
    from optouts_ringcentral import RingCentralProvider

    settings = settings_for(
        RingCentralProvider,
        environ={"RC_CLIENT_ID": "id", "RC_CLIENT_SECRET": "s3cret", "RC_JWT": DEFAULT_JWT},
    )
    assert "s3cret" not in repr(settings)
    assert DEFAULT_JWT not in repr(settings)
    provider = RingCentralProvider.from_settings(settings)
    assert provider.server_url == "https://platform.ringcentral.com"
    assert provider.api == "a2p-sms"
    assert "s3cret" not in repr(provider)


# --- a token endpoint success without a token ----------------------------------------------


def token_answer_handler(answer: httpx.Response) -> tuple[httpx.MockTransport, list[str]]:
    """The token endpoint gives ``answer``; API paths answer a normal, empty page."""
    api_calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        api_calls.append(request.url.path)
        return httpx.Response(200, json={"records": [], "paging": {"perPage": 1000}})

    return httpx.MockTransport(handler), api_calls


TOKENLESS = [
    httpx.Response(200, json={}),
    httpx.Response(200, json={"token_type": "bearer", "expires_in": 3600}),
    httpx.Response(200, json={"access_token": None}),
    httpx.Response(200, json={"access_token": ""}),
    httpx.Response(200, json=["access_token"]),
    httpx.Response(200, text="<html>maintenance</html>"),
    httpx.Response(204),
]


@pytest.mark.parametrize("answer", TOKENLESS, ids=lambda r: f"{r.status_code}:{r.content[:20]!r}")
def test_a_token_answer_without_an_access_token_is_an_authentication_error(
    answer: httpx.Response,
) -> None:
    transport, api_calls = token_answer_handler(answer)
    with optouts.Client(make_provider(), http_client=httpx.Client(transport=transport)) as client:
        with pytest.raises(AuthenticationError) as raised:
            client.list_page(SENDER)  # read as the API's answer, it was an empty page
        assert "without an access token" in str(raised.value)
        with pytest.raises(AuthenticationError):
            client.check(SENDER, numbers(2))
    assert api_calls == []


async def test_a_token_answer_without_an_access_token_fails_async_callers_too() -> None:
    transport, api_calls = token_answer_handler(httpx.Response(200, json={"token_type": "bearer"}))
    http = httpx.AsyncClient(transport=transport)
    client = optouts.AsyncClient(make_provider("consents"), http_client=http)
    with pytest.raises(AuthenticationError):
        await client.list_page(SENDER)
    await client.aclose()
    await http.aclose()
    assert api_calls == []


@pytest.mark.parametrize("lifetime", ["abc", None, -5, 0, "NaN", "Infinity", 1e300])
def test_absurd_token_lifetimes_never_crash(lifetime: object) -> None:
    body = json.dumps({"access_token": "t1", "expires_in": lifetime})
    body = body.replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
        if request.url.path == "/restapi/oauth/revoke":
            return httpx.Response(200)
        assert request.headers["Authorization"] == "Bearer t1"
        return httpx.Response(200, json={"records": [], "paging": {"perPage": 1000}})

    transport = httpx.MockTransport(handler)
    with optouts.Client(make_provider(), http_client=httpx.Client(transport=transport)) as client:
        assert client.list_page(SENDER).items == ()
        assert client.list_page(SENDER).items == ()
        provider = client.provider
        assert isinstance(provider, RingCentralProvider)
        token = provider.auth._token
        assert token is not None
        assert math.isfinite(token.renew_at)
        assert math.isfinite(token.expires_at)


# --- any 401 means the token is dead: one new login, one more try ---------------------------


def test_a_session_ended_on_the_server_logs_in_again_once(clock: FakeClock) -> None:
    emulator = fake_emulator(clock)
    transport = SyncASGITransport(emulator)
    with optouts.Client(
        fake_clock_provider(clock), http_client=httpx.Client(transport=transport)
    ) as client:
        client.list_page(SENDER)
        emulator.end_sessions()  # 401 OAU-149 from now on; our clock says the token is fine
        page = client.list_page(SENDER)
        client.list_page(SENDER)
    assert page.items == ()
    assert transport.statuses("/a2p-sms/") == [200, 401, 200, 200]
    assert transport.exchanges[2][1].json()["errorCode"] == "OAU-149"
    # The session's refresh token died with it: the new login presents the JWT.
    assert grants(transport) == ["jwt-bearer", "jwt-bearer"]


@pytest.mark.parametrize("code", ["OAU-128", "OAU-149", "OAU-123", None])
def test_a_401_after_a_fresh_login_is_an_authentication_error(code: str | None) -> None:
    token_requests = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_requests
        if request.url.path == "/restapi/oauth/token":
            token_requests += 1
            token = {"access_token": f"t{token_requests}", "refresh_token": f"r{token_requests}"}
            return httpx.Response(200, json=token)
        body = {"errorCode": code, "message": "no", "errors": []} if code else {}
        return httpx.Response(401, json=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with (
        optouts.Client(make_provider(), http_client=http) as client,
        pytest.raises(AuthenticationError) as raised,
    ):
        client.list_page(SENDER)
    assert raised.value.status_code == 401
    assert raised.value.code == code
    assert token_requests == 2


class HoldingTransport(SyncASGITransport):
    """Holds the first ``hold`` API requests until all of them are in flight together."""

    def __init__(self, app: Emulator, hold: int) -> None:
        super().__init__(app, token_delay=0.05)
        self._barrier = threading.Barrier(hold, timeout=10)
        self._held = 0
        self._count_lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "/oauth/" not in request.url.path:
            with self._count_lock:
                wait = self._held < self._barrier.parties
                self._held += 1
            if wait:
                self._barrier.wait()
        return super().handle_request(request)


def test_threads_meeting_a_dead_session_at_once_share_one_login(clock: FakeClock) -> None:
    emulator = fake_emulator(clock)
    provider = fake_clock_provider(clock)
    http = httpx.Client(transport=SyncASGITransport(emulator))
    with optouts.Client(provider, http_client=http) as first:
        first.list_page(SENDER)  # logged in
        emulator.end_sessions()
        transport = HoldingTransport(emulator, hold=8)
        client = optouts.Client(provider, http_client=httpx.Client(transport=transport))
        with ThreadPoolExecutor(8) as pool:
            pages = list(pool.map(lambda _: client.list_page(SENDER), range(8)))
    assert [page.items for page in pages] == [()] * 8
    assert transport.statuses("/a2p-sms/").count(401) == 8  # all eight met the dead token
    assert emulator.counts["getToken"] == 2  # and one login answered them all


async def test_tasks_meeting_a_dead_session_at_once_share_one_login(clock: FakeClock) -> None:
    emulator = fake_emulator(clock)
    emulator.latency = 0.01  # every request yields to the loop: all ten are in flight at once
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))
    client = optouts.AsyncClient(fake_clock_provider(clock), http_client=http)
    await client.list_page(SENDER)
    emulator.end_sessions()
    pages = await asyncio.gather(*(client.list_page(SENDER) for _ in range(10)))
    assert [page.items for page in pages] == [()] * 10
    assert emulator.counts["readA2PSMSOptOuts"] == 1 + 10 + 10
    assert emulator.counts["getToken"] == 2
    await client.aclose()
    await http.aclose()


# --- revoke on close ------------------------------------------------------------------------


def test_close_takes_its_place_in_the_auth_group(clock: FakeClock) -> None:
    emulator = fake_emulator(clock, auth_rate_limit=RateLimit(2, 60))
    provider = fake_clock_provider(clock)
    with optouts.Client(
        provider, http_client=httpx.Client(transport=SyncASGITransport(emulator))
    ) as client:
        client.list_page(SENDER)
    assert emulator.counts["revokeToken"] == 1
    # The login and the revoke spent the window: the next login waits for it.
    assert provider.pacer.reserve("Auth") > 55


def test_close_skips_the_revoke_when_the_auth_group_is_spent(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="optouts.ringcentral")
    emulator = fake_emulator(clock, auth_rate_limit=RateLimit(1, 60))
    with optouts.Client(
        fake_clock_provider(clock), http_client=httpx.Client(transport=SyncASGITransport(emulator))
    ) as client:
        client.list_page(SENDER)  # the login took the Auth group's only request
    assert emulator.counts["revokeToken"] == 0
    assert emulator.throttled["Auth"] == 0  # nothing was sent into a 429
    assert "revoke skipped" in caplog.text


def test_close_ignores_errors_thrown_into_the_revoke() -> None:
    provider = make_provider()
    provider.auth._token = TokenState("t1", renew_at=1e12, expires_at=1e12)
    job = provider.close()
    request = next(job)
    assert isinstance(request, httpx.Request)
    assert request.url.path == "/restapi/oauth/revoke"
    with pytest.raises(StopIteration):
        job.throw(AuthenticationError("refused", provider="ringcentral"))


# --- HTTPS only, and HTTP Basic built here --------------------------------------------------


def test_the_auth_refuses_plain_http_off_this_machine() -> None:
    with pytest.raises(ValueError, match="https://"):
        RingCentralAuth("http://platform.ringcentral.com", "id", Secret("s"), Secret("j"))
    auth = RingCentralAuth("http://localhost:8080/", "id", Secret("s"), Secret("j"))
    assert auth.server_url == "http://localhost:8080"


@pytest.mark.parametrize(
    ("user", "password", "header"),
    [
        ("Aladdin", "open sesame", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),  # RFC 7617 section 2
        ("test", "123\u00a3", "Basic dGVzdDoxMjPCow=="),  # section 2.1: UTF-8
    ],
)
def test_basic_authorization_is_rfc_7617(user: str, password: str, header: str) -> None:
    assert basic_authorization(user, password) == header


def test_the_token_request_carries_the_client_credentials(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Private(httpx.Auth):  # httpx's BasicAuth, minus the private ``_auth_header``
        def __init__(self, *_: object) -> None:
            pass

    monkeypatch.setattr(httpx, "BasicAuth", Private)
    transport = SyncASGITransport(emulator)
    with optouts.Client(make_provider(), http_client=httpx.Client(transport=transport)) as client:
        client.list_page(SENDER)
    sent = [q.headers["Authorization"] for q, _ in transport.exchanges if "/oauth/" in q.url.path]
    expected = basic_authorization(emulator.client_id, DEFAULT_CLIENT_SECRET)
    assert sent == [expected, expected]  # the login and the revoke


# --- waits inside the auth flow stay within what the caller allows ---------------------------


class Penalised:
    """A token endpoint that answers its first login with a 429 asking for ``retry_after``
    seconds, then logs in; every API call answers an empty page."""

    def __init__(self, retry_after: str) -> None:
        self.retry_after = retry_after
        self.logins = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            self.logins += 1
            if self.logins == 1:
                headers = {"Retry-After": self.retry_after, "X-Rate-Limit-Group": "Auth"}
                return httpx.Response(429, headers=headers, json={"errorCode": "CMN-301"})
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.url.path == "/restapi/oauth/revoke":
            return httpx.Response(200)
        return httpx.Response(200, json={"records": [], "paging": {"perPage": 1000}})


class Sleeps:
    """The auth flow's sleeps, on a fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seconds: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self.clock.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def penalised_provider(clock: FakeClock, sleeps: Sleeps, **kwargs: Any) -> RingCentralProvider:
    return make_provider(clock=clock, sleep=sleeps.sleep, async_sleep=sleeps.async_sleep, **kwargs)


def test_a_login_wait_past_the_bound_fails_at_once(clock: FakeClock) -> None:
    """A day's penalty on the Auth group: the next batch fails, it does not sleep a day."""
    sleeps = Sleeps(clock)
    vendor = Penalised("86000")
    http = httpx.Client(transport=httpx.MockTransport(vendor))
    retry = optouts.RetryPolicy(deadline=60)
    with optouts.Client(penalised_provider(clock, sleeps), http_client=http, retry=retry) as rc:
        first = rc.check(SENDER, numbers(1))
        second = rc.check(SENDER, numbers(1))
    assert [(item.ok, item.status_code) for item in first] == [(False, 429)]
    assert [(item.ok, item.opted_out) for item in second] == [(False, None)]
    assert "must wait 86000s" in (second[0].error or "")
    assert "retry deadline of 60s" in (second[0].error or "")
    assert sleeps.seconds == []
    assert vendor.logins == 1


async def test_a_login_wait_past_the_bound_fails_async_callers_at_once(clock: FakeClock) -> None:
    sleeps = Sleeps(clock)
    vendor = Penalised("86000")
    http = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    retry = optouts.RetryPolicy(deadline=60)
    client = optouts.AsyncClient(
        penalised_provider(clock, sleeps, api="consents"), http_client=http, retry=retry
    )
    first = await client.check(SENDER, numbers(1))
    second = await client.check(SENDER, numbers(1))
    await client.aclose()
    await http.aclose()
    assert [item.ok for item in first] == [False]
    assert [(item.ok, item.opted_out) for item in second] == [(False, None)]
    assert "must wait 86000s" in (second[0].error or "")
    assert sleeps.seconds == []


def test_a_login_wait_within_the_bound_is_slept(clock: FakeClock) -> None:
    sleeps = Sleeps(clock)
    http = httpx.Client(transport=httpx.MockTransport(Penalised("30")))
    retry = optouts.RetryPolicy(attempts=1)
    with optouts.Client(penalised_provider(clock, sleeps), http_client=http, retry=retry) as rc:
        assert [item.ok for item in rc.check(SENDER, numbers(1))] == [False]
        assert [item.opted_out for item in rc.check(SENDER, numbers(1))] == [False]
    assert sleeps.seconds == [pytest.approx(30, abs=1)]


def test_a_refused_login_wait_takes_no_slot_and_the_policy_waits_it(clock: FakeClock) -> None:
    """Under a tighter ``auth_max_wait`` the retry policy, on the same clock, does the waiting;
    the refused attempt held no Auth slot, so the retry logs in without waiting again."""
    sleeps = Sleeps(clock)
    vendor = Penalised("30")
    provider = penalised_provider(clock, sleeps, auth_max_wait=10)
    http = httpx.Client(transport=httpx.MockTransport(vendor))
    with pytest.raises(optouts.RateLimited):
        drive(provider.check(SENDER, numbers(1)), http, provider.auth, clock)
    policy = optouts.RetryPolicy(deadline=60)
    job = with_retry(lambda: provider.check(SENDER, numbers(1)), policy, clock)
    started = clock()
    results = drive(job, http, provider.auth, clock)
    assert results == {numbers(1)[0]: optouts.Outcome.NOT_OPTED_OUT}
    assert sleeps.seconds == []
    assert 29 <= clock() - started <= 31
    assert vendor.logins == 2


@pytest.mark.parametrize("bound", [-1.0, math.nan, math.inf])
def test_the_bound_on_login_waits_is_a_number_of_seconds(bound: float) -> None:
    with pytest.raises(ValueError, match="max_wait"):
        make_provider(auth_max_wait=bound)
