"""Pacing under the rate limits, on a fake clock: no test here sleeps."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optouts import RateLimited, RetryPolicy, Sleep, Status
from optouts.plugin import with_retry
from optouts_ringcentral import Emulator, Pacer, RateLimit
from optouts_ringcentral.testing import (
    FakeClock,
    SyncASGITransport,
    drive,
    fake_clock_provider,
    numbers,
)

SENDER = "+16505550100"
LIST_URL = "http://rc.test/restapi/v1.0/account/~/a2p-sms/opt-outs"


def headers(group: str, limit: int, remaining: int, window: int) -> dict[str, str]:
    return {
        "X-Rate-Limit-Group": group,
        "X-Rate-Limit-Limit": str(limit),
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Window": str(window),
    }


def answer(status: int = 200, extra: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=extra or {}, request=httpx.Request("GET", LIST_URL))


@pytest.mark.parametrize("api", ["a2p-sms", "consents"])
def test_steady_work_never_draws_a_429(clock: FakeClock, api: str) -> None:
    emulator = Emulator(clock=clock, rate_limit=RateLimit(5, 10), auth_rate_limit=RateLimit(2, 60))
    emulator.put_many((SENDER, number) for number in numbers(60))
    provider = fake_clock_provider(clock, api)
    http = httpx.Client(transport=SyncASGITransport(emulator))
    started = clock()
    cursor = None
    listed = 0
    for _ in range(40):
        page = drive(
            provider.list_page(SENDER, Status.OPTED_OUT, 1, cursor), http, provider.auth, clock
        )
        listed += len(page.items)
        cursor = page.next_cursor
    results = drive(provider.check(SENDER, numbers(12)), http, provider.auth, clock)
    assert listed == 40
    assert all(result.ok for result in results.values())
    assert emulator.throttled == {}
    elapsed = clock() - started
    sent = sum(count for name, count in emulator.counts.items() if name != "getToken")
    # 5 per 10 s allows `sent` requests in about (sent / 5 - 1) windows; we stay within 10 %.
    assert (sent / 5 - 1) * 10 <= elapsed <= (sent / 5) * 10 * 1.1


def test_learns_the_limits_from_the_headers(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock, margin=0, slack=0)
    pacer.observe("v1 list", answer(200, headers("Light", 2, 2, 30)))
    assert pacer.group_of("v1 list") == "Light"
    assert [pacer.reserve("Light") for _ in range(3)] == [0, 0, 30]


def test_sends_by_others_count_against_the_budget(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock, margin=0, slack=0)
    assert pacer.reserve("Light") == 0
    # The server has counted 4 of 5 although we sent one: someone else sent three.
    pacer.observe("v1 list", answer(200, headers("Light", 5, 1, 60)))
    assert pacer.reserve("Light") == 0
    assert pacer.reserve("Light") == 60


def test_a_reservation_refused_as_too_long_takes_no_slot(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock, margin=0, slack=0)
    pacer.observe("token", answer(200, headers("Auth", 1, 1, 60)), "Auth")
    assert pacer.reserve("Auth", within=10) == 0
    assert pacer.reserve("Auth", within=10) == 60  # refused: the caller will not wait
    assert pacer.reserve("Auth", within=10) == 60  # so the slot is still free
    assert pacer.reserve("Auth") == 60
    assert pacer.reserve("Auth") == 120


def test_many_phantom_sends_are_recorded_at_once(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock, margin=0, slack=0)
    pacer.observe("v1 list", answer(200, headers("Light", 1_000_000, 0, 60)))
    assert pacer.reserve("Light") == 60


def test_a_429_blocks_the_group_for_retry_after(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock)
    pacer.observe("v1 list", answer(429, {**headers("Light", 50, 0, 60), "Retry-After": "42"}))
    assert pacer.penalties == 1
    assert pacer.blocked_for("Light") == 42
    assert pacer.reserve("Light") == 42
    assert pacer.reserve("Auth") == 0  # the Auth group is paced separately
    pacer.observe("v1 list", answer(429, headers("Light", 50, 0, 60)))
    assert pacer.blocked_for("Light") == 60  # no Retry-After: 60 s


def test_after_a_429_the_provider_waits_out_the_penalty(clock: FakeClock) -> None:
    emulator = Emulator(clock=clock, rate_limit=RateLimit(3, 10))
    provider = fake_clock_provider(clock)
    http = httpx.Client(transport=SyncASGITransport(emulator))
    drive(provider.list_page(SENDER, None, 10, None), http, provider.auth, clock)
    token = emulator.issue_token()
    for _ in range(2):  # another client with the same credentials spends the budget
        http.get(LIST_URL, headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(RateLimited) as raised:
        drive(provider.list_page(SENDER, None, 10, None), http, provider.auth, clock)
    assert raised.value.retry_after == 10
    assert provider.pacer.blocked_for("Light") == pytest.approx(10)

    job = provider.list_page(SENDER, None, 10, None)
    first = next(job)
    assert isinstance(first, Sleep)
    assert first.seconds == pytest.approx(10)
    job.close()
    before = emulator.throttled["Light"]
    drive(
        with_retry(lambda: provider.list_page(SENDER, None, 10, None), RetryPolicy()),
        http,
        provider.auth,
        clock,
    )
    assert emulator.throttled["Light"] == before


def test_a_request_during_the_penalty_restarts_it(clock: FakeClock) -> None:
    emulator = Emulator(clock=clock, rate_limit=RateLimit(1, 10))
    token = emulator.issue_token()
    http = httpx.Client(transport=SyncASGITransport(emulator))
    auth = {"Authorization": f"Bearer {token}"}
    assert http.get(LIST_URL, headers=auth).status_code == 200
    refused = http.get(LIST_URL, headers=auth)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "10"
    assert refused.headers["X-Rate-Limit-Remaining"] == "0"
    clock.advance(8)
    assert http.get(LIST_URL, headers=auth).status_code == 429  # restarts the 10 s
    clock.advance(8)
    assert http.get(LIST_URL, headers=auth).status_code == 429
    clock.advance(10.5)
    ok = http.get(LIST_URL, headers=auth)
    assert ok.status_code == 200
    assert ok.headers["X-Rate-Limit-Group"] == "Light"
    assert emulator.throttled["Light"] == 3


@pytest.mark.parametrize("spelling", ["light", "LIGHT", " Light "])
def test_group_names_are_compared_without_case(clock: FakeClock, spelling: str) -> None:
    pacer = Pacer(clock=clock, margin=0, slack=0)
    pacer.observe("v1 list", answer(200, headers(spelling, 2, 2, 30)))
    assert pacer.group_of("v1 list") == "Light"
    assert [pacer.reserve("Light") for _ in range(3)] == [0, 0, 30]
    pacer.observe("token", answer(429, {"X-Rate-Limit-Group": "auth", "Retry-After": "20"}))
    assert pacer.blocked_for("Auth") == 20
    assert pacer.blocked_for("AUTH") == 20


def test_an_oauth_answer_without_a_group_header_counts_in_auth(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock)
    pacer.observe("/restapi/oauth/token", answer(429, {"Retry-After": "15"}), "Auth")
    assert pacer.blocked_for("Auth") == 15
    assert pacer.blocked_for("Light") == 0


ABSURD = ["inf", "-inf", "nan", "1e999", "99999999999999999999", "-5", "-1e20", "abc", ""]


@pytest.mark.parametrize("value", ABSURD)
@pytest.mark.parametrize(
    "header", ["X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Window"]
)
def test_absurd_budget_headers_are_ignored(clock: FakeClock, header: str, value: str) -> None:
    sane = headers("Light", 2, 2, 30)
    told, untold = Pacer(clock=clock, margin=0, slack=0), Pacer(clock=clock, margin=0, slack=0)
    told.observe("v1 list", answer(200, {**sane, header: value}))
    untold.observe("v1 list", answer(200, {k: v for k, v in sane.items() if k != header}))
    delays = [told.reserve("Light") for _ in range(3)]
    assert delays == [untold.reserve("Light") for _ in range(3)]  # as if never sent
    assert delays[-1] in (30, 60)


@pytest.mark.parametrize("value", ABSURD)
def test_an_absurd_penalty_is_the_default_one(clock: FakeClock, value: str) -> None:
    pacer = Pacer(clock=clock)
    pacer.observe("v1 list", answer(429, {**headers("Light", 50, 0, 60), "Retry-After": value}))
    assert pacer.blocked_for("Light") == 60
    assert pacer.reserve("Light") == 60


HEADER_VALUES = st.one_of(
    st.floats().map(repr),
    st.integers().map(str),
    st.integers().map(lambda n: f"{n}s"),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
)


@settings(max_examples=300)
@given(
    values=st.dictionaries(
        st.sampled_from(
            [
                "X-Rate-Limit-Group",
                "X-Rate-Limit-Limit",
                "X-Rate-Limit-Remaining",
                "X-Rate-Limit-Window",
                "Retry-After",
            ]
        ),
        HEADER_VALUES,
    ),
    status=st.sampled_from([200, 429]),
)
def test_no_header_value_crashes_the_pacer_or_makes_a_wait_insane(
    values: dict[str, str], status: int
) -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    pacer.observe("v1 list", answer(status, values))
    group = pacer.group_of("v1 list")
    for _ in range(3):
        assert 0 <= pacer.reserve(group) <= 2 * 86_400
    assert 0 <= pacer.blocked_for(group) <= 86_400
