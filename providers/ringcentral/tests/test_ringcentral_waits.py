"""Logins are not API requests, and RingCentral's waits say why they happen.

The Auth group (logins, refreshes, revokes: five a minute) and the API's groups (Light: 50
a minute) are separate budgets on the server, so they are in the pacer and in what a call
reports it cost. Every pause the provider takes is announced on ``optouts.wait``: at INFO
with RingCentral's reason when it lasts over two seconds. Fake clocks: nothing sleeps.
"""

from __future__ import annotations

import logging

import httpx
import pytest

import optouts
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral._ratelimit import AUTH_GROUP
from optouts_ringcentral.testing import (
    FakeClock,
    SyncASGITransport,
    drive,
    fake_clock_provider,
    make_provider,
    numbers,
)

SENDER = "+16505550100"


def waits(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "optouts.wait" and record.levelno == level
    ]


@pytest.fixture(autouse=True)
def wait_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="optouts.wait")


def test_a_login_is_reported_apart_from_the_api_requests(emulator: Emulator) -> None:
    http = httpx.Client(transport=SyncASGITransport(emulator))
    with optouts.Client(make_provider(), http_client=http) as client:
        first = client.add(SENDER, numbers(2))
        again = client.add(SENDER, numbers(2))
        emulator.end_sessions()  # the next request draws a 401, a login, and goes again
        renewed = client.add(SENDER, numbers(2))
    assert (first.requests, first.auth_requests) == (2, 1)
    assert (again.requests, again.auth_requests) == (1, 0)
    assert (renewed.requests, renewed.auth_requests) == (3, 1)
    # What the Light group saw: one request per call, the refused one counted too.
    light = emulator.counts["addA2PSMSOptOuts"]
    spent = [r.requests - r.auth_requests for r in (first, again, renewed)]
    assert sum(spent) == light == 4


def test_a_login_takes_no_slot_of_the_api_group(clock: FakeClock) -> None:
    """With a Light budget of two, the login and two API calls go at once; a third waits."""
    emulator = Emulator(clock=clock, rate_limit=RateLimit(2, 60.0), auth_rate_limit=None)
    provider = fake_clock_provider(clock)
    http = httpx.Client(transport=SyncASGITransport(emulator))
    started = clock()
    for _ in range(2):
        drive(provider.add(SENDER, numbers(1)), http, provider.auth, clock)
    assert clock() == started
    assert provider.auth.token_requests == 1
    drive(provider.add(SENDER, numbers(1)), http, provider.auth, clock)
    assert clock() - started == pytest.approx(60 * 1.02 + 0.05, abs=0.01)
    assert emulator.throttled == {}


def test_pacing_over_two_seconds_says_ringcentrals_limit(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = Emulator(clock=clock, rate_limit=RateLimit(2, 60.0), auth_rate_limit=None)
    provider = fake_clock_provider(clock)
    http = httpx.Client(transport=SyncASGITransport(emulator))
    for _ in range(3):
        drive(provider.add(SENDER, numbers(1)), http, provider.auth, clock)
    assert waits(caplog) == [
        "waiting 61 s: RingCentral allows 2 requests a minute in its Light group"
    ]


def test_a_login_waiting_for_the_auth_group_says_so(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = Emulator(clock=clock, auth_rate_limit=RateLimit(5, 60.0))
    provider = fake_clock_provider(clock)
    for _ in range(5):  # five logins this minute, by earlier runs of this process
        provider.pacer.reserve(AUTH_GROUP)
    http = httpx.Client(transport=SyncASGITransport(emulator))
    drive(provider.add(SENDER, numbers(1)), http, provider.auth, clock)
    assert waits(caplog) == ["waiting 61 s: RingCentral allows 5 logins a minute"]
    assert emulator.throttled == {}


def test_a_short_wait_is_in_the_debug_log_only(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = Emulator(clock=clock, rate_limit=RateLimit(1, 1.0), auth_rate_limit=None)
    provider = fake_clock_provider(clock)
    http = httpx.Client(transport=SyncASGITransport(emulator))
    for _ in range(2):
        drive(provider.add(SENDER, numbers(1)), http, provider.auth, clock)
    assert waits(caplog) == []
    assert waits(caplog, logging.DEBUG) == [
        "waiting 1 s: RingCentral allows 1 request a second in its Light group"
    ]


def test_a_penalty_says_ringcentral_refused_more(clock: FakeClock) -> None:
    provider = fake_clock_provider(clock)
    answer = httpx.Response(
        429,
        headers={"Retry-After": "30", "X-Rate-Limit-Group": "Light"},
        request=httpx.Request("GET", "http://127.0.0.1:9/x"),
    )
    provider.pacer.observe("v1 list", answer)
    assert provider.pacer.why("Light") == (
        "RingCentral refused more requests in its Light group for a while (HTTP 429)"
    )
    clock.advance(31)
    assert (
        provider.pacer.why("light") == "RingCentral allows 50 requests a minute in its Light group"
    )
