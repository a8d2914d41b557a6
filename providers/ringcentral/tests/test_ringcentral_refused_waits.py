"""A pacing wait that never ends in a request gives its slot back, and the window stays exact.

The retry policy refuses a ``Sleep`` longer than what is left of its deadline (it closes the
exchange at that ``Sleep``), and a call can be cancelled during one. A slot kept then stayed
in the window's count: a burst of refused batches pushed the schedule windows ahead of the
clock, later batches were refused too, and the next call on the same client started in that
backlog. Given back, a slot must still never let a window hold more than the group's limit:
RingCentral answers 429 beyond it and restarts the penalty on every request during one.

Steps are driven by hand on a fake clock first, as the client's runner would drive them;
then the same story runs on the emulator in real time, which enforces the limit itself.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optouts
from optouts import Sleep
from optouts.plugin import with_retry
from optouts_ringcentral import Emulator, Pacer, RateLimit, RingCentralProvider
from optouts_ringcentral._ratelimit import AUTH_GROUP, Slot
from optouts_ringcentral.testing import (
    BASE_URL,
    CREDENTIALS,
    FakeClock,
    SyncASGITransport,
    fake_clock_provider,
    numbers,
)

SENDER = "+16505550100"
LIST_URL = "http://rc.test/restapi/v1.0/account/~/a2p-sms/opt-outs"
LIMIT, WINDOW = 2, 30  # two requests every 30 s, learned from the headers


def learned(clock: FakeClock, limit: int = LIMIT, window: int = WINDOW) -> Pacer:
    """A pacer that has seen the Light group's budget, with no margin: exact arithmetic."""
    pacer = Pacer(clock=clock, margin=0, slack=0)
    headers = {
        "X-Rate-Limit-Group": "Light",
        "X-Rate-Limit-Limit": str(limit),
        "X-Rate-Limit-Remaining": str(limit),
        "X-Rate-Limit-Window": str(window),
    }
    pacer.observe("v1 list", httpx.Response(200, headers=headers, request=_request()))
    return pacer


def _request() -> httpx.Request:
    return httpx.Request("GET", LIST_URL)


def first_step(provider: RingCentralProvider, clock: FakeClock, deadline: float) -> Any:
    """Start a one-number check as the client does; the job and its first step (a request or
    a pause), or the error the retry policy raises at once for a pause past the deadline."""
    policy = optouts.RetryPolicy(backoff=0.001, cap=0.01, deadline=deadline)
    job = with_retry(lambda: provider.check(SENDER, ["+12125550100"]), policy, clock)
    try:
        return job, next(job)
    except optouts.RateLimited as refused:
        return job, refused


def pauses(started: list[Any]) -> list[float | str]:
    """Each first step as the seconds of its pause, "send" or "refused"."""
    shown: list[float | str] = []
    for _, step in started:
        if isinstance(step, Sleep):
            shown.append(step.seconds)
        else:
            shown.append("send" if isinstance(step, httpx.Request) else "refused")
    return shown


def test_refused_waits_leave_the_schedule_where_it_was(clock: FakeClock) -> None:
    provider = fake_clock_provider(clock, pacer=learned(clock))
    started = [first_step(provider, clock, deadline=45) for _ in range(12)]
    assert pauses(started) == ["send", "send", 30, 30] + ["refused"] * 8
    assert all(isinstance(step, optouts.RateLimited) for _, step in started[4:])
    # Five seconds on, the next batch waits for the window after the four accepted (60 s
    # from the start), not behind eight slots no one will use (four windows more).
    clock.advance(5)
    _, step = first_step(provider, clock, deadline=120)
    assert isinstance(step, Sleep)
    assert step.seconds == pytest.approx(55)


def test_a_cancelled_wait_gives_its_slot_to_the_next_request(clock: FakeClock) -> None:
    provider = fake_clock_provider(clock, pacer=learned(clock))
    held = [first_step(provider, clock, deadline=600) for _ in range(6)]
    assert pauses(held) == ["send", "send", 30, 30, 60, 60]
    held[2][0].close()  # as when an async call is cancelled during its pause
    held += [first_step(provider, clock, deadline=600) for _ in range(2)]
    # The slot at 30 s is taken again; the one after waits for the window after 60 s.
    assert pauses(held[6:]) == [30, 90]
    held[-1][0].close()  # the last slot given back shortens the schedule
    assert pauses([first_step(provider, clock, deadline=600)]) == [90]


def test_a_slot_given_back_after_its_moment_is_not_reused(clock: FakeClock) -> None:
    pacer = learned(clock)
    taken = [pacer.take("Light") for _ in range(5)]
    assert [slot.delay for slot in taken] == [0, 0, 30, 30, 60]
    pacer.give_back(taken[2])  # 30 s, before the slot at 60 s
    clock.advance(31)
    # Sending now (31 s) would put three requests within 30 s (at 30, 31 and 60 s): the
    # first free slot is the one at 60 s, beside the one taken there.
    assert pacer.take("Light").delay == pytest.approx(29)


def test_a_refused_reservation_takes_no_slot_and_gives_none_back(clock: FakeClock) -> None:
    pacer = learned(clock, limit=1)
    assert pacer.take("Light", within=10).taken
    refused = pacer.take("Light", within=10)
    assert not refused.taken
    pacer.give_back(refused)  # nothing to give back
    assert pacer.reserve("Light") == 30
    assert pacer.reserve("Light") == 60


def test_the_last_wait_given_back_before_a_penalty_leaves_it_alone(clock: FakeClock) -> None:
    pacer = learned(clock)
    penalty = {"X-Rate-Limit-Group": "Light", "Retry-After": "42"}
    pacer.observe("v1 list", httpx.Response(429, headers=penalty, request=_request()))
    slots = [pacer.take("Light") for _ in range(3)]
    assert [slot.delay for slot in slots] == [42, 42, 72]
    pacer.give_back(slots[2])
    pacer.give_back(slots[1])
    # The penalty still holds, and a slot given back is the first one after it again.
    assert pacer.blocked_for("Light") == 42
    assert [pacer.take("Light").delay for _ in range(3)] == [42, 72, 72]


def test_a_slot_from_before_a_penalty_is_not_given_back_into_it(clock: FakeClock) -> None:
    pacer = learned(clock)
    slots = [pacer.take("Light") for _ in range(4)]
    penalty = {"X-Rate-Limit-Group": "Light", "Retry-After": "45"}
    pacer.observe("v1 list", httpx.Response(429, headers=penalty, request=_request()))
    after = [pacer.take("Light") for _ in range(2)]
    assert [slot.delay for slot in after] == [45, 45]
    # The 429 started the count afresh: a slot from before it is no longer in it.
    pacer.give_back(slots[3])
    assert pacer.take("Light").delay == 75


def test_a_login_closed_during_its_wait_gives_back_its_auth_slot(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock, margin=0, slack=0)
    provider = fake_clock_provider(clock, pacer=pacer)
    for _ in range(5):  # the Auth group's five a minute, spent
        pacer.reserve(AUTH_GROUP)
    login = provider.auth._token_exchange()
    assert next(login) == 60  # the auth flow sleeps this itself
    login.close()  # as when the call that needed the token is cancelled
    assert pacer.reserve(AUTH_GROUP) == 60
    assert provider.auth.token_requests == 0


def test_a_cancelled_wait_in_the_auth_group_gives_its_slot_back(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock, margin=0, slack=0)
    for _ in range(5):  # the Auth group's five a minute, spent
        pacer.reserve(AUTH_GROUP)
    waiting = pacer.wait(AUTH_GROUP)
    step = next(waiting)
    assert isinstance(step, Sleep)
    assert step.seconds == 60
    assert step.reason == "pace"
    waiting.close()
    assert pacer.reserve(AUTH_GROUP) == 60


def test_no_wait_when_a_slot_is_free_now(clock: FakeClock) -> None:
    pacer = learned(clock)
    assert list(pacer.wait("Light")) == []
    assert pacer.reserve("Light") == 0
    assert pacer.reserve("Light") == 30


# --- the window stays exact, whatever is taken and given back -------------------------------

Action = tuple[str, Any]
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.sampled_from([None, None, 0.0, 5.0, 40.0, 90.0])),
        st.tuples(st.just("give"), st.integers(0, 50)),
        st.tuples(st.just("give"), st.integers(0, 50)),
        st.tuples(st.just("wait"), st.floats(0, 10)),
    ),
    min_size=10,
    max_size=80,
)


def play(actions: list[Action], limit: int) -> int:
    """Requests are sent at their slots unless given back first: no window of 30 s may hold
    more than ``limit`` of them, a slot is never handed out before it is asked for, and once
    every wait is given back the next slot is the first the sends alone leave free.

    Returns how many slots were handed out earlier than one handed out before them: the
    schedule moved back by a slot given back (taken again, or dropped at the end)."""
    clock = FakeClock()
    pacer = learned(clock, limit=limit)
    pending: list[Slot] = []
    sent: list[float] = []
    latest, reused = 0.0, 0
    for action, value in actions:
        if action == "take":
            slot = pacer.take("Light", within=value)
            assert slot.start >= clock()
            if slot.taken:
                pending.append(slot)
                reused += slot.start < latest
                latest = max(latest, slot.start)
        elif action == "give" and pending:
            pacer.give_back(pending.pop(value % len(pending)))
        elif action == "wait":
            clock.advance(value)
        for due in [slot for slot in pending if slot.start <= clock()]:
            pending.remove(due)
            sent.append(due.start)
    # Every wait still to come is given back: the schedule is then the sends alone.
    for slot in pending:  # the earliest first: each is kept, then all dropped with the last
        pacer.give_back(slot)
    sent.sort()
    assert all(later - sent[i] >= WINDOW - 1e-9 for i, later in enumerate(sent[limit:]))
    earliest = max(clock(), sent[-limit] + WINDOW) if len(sent) >= limit else clock()
    assert pacer.take("Light").start == pytest.approx(earliest)
    return reused


@settings(max_examples=300, deadline=None)
@given(actions=ACTIONS, limit=st.integers(1, 4))
def test_giving_slots_back_never_puts_more_than_the_limit_in_a_window(
    actions: list[Action], limit: int
) -> None:
    play(actions, limit)


def test_slots_given_back_and_taken_again_keep_the_window_exact() -> None:
    """The same on long random runs, where slots given back are often taken again."""
    reused = 0
    for seed in range(300):
        rng = random.Random(seed)
        actions: list[Action] = []
        for _ in range(150):
            draw = rng.random()
            if draw < 0.5:
                actions.append(("take", rng.choice([None, None, 5.0, 40.0, 90.0])))
            elif draw < 0.8:
                actions.append(("give", rng.randrange(50)))
            else:
                actions.append(("wait", rng.uniform(0, 8)))
        reused += play(actions, limit=rng.randint(1, 5))
    assert reused > 1000


# --- the client, on the emulator, in real time -------------------------------------------

BURST_LIMIT = 10  # requests a window of one second (1.07 s with the pacer's margins)
BURST_DEADLINE = 1.5  # so of a burst, the first two windows are worth waiting for


class OneAtATime(RingCentralProvider):
    """One number a batch: a check of N numbers is N batches, each one lookup request."""

    max_batch: ClassVar[int] = 1


@pytest.fixture
def tight() -> Emulator:
    return Emulator(rate_limit=RateLimit(BURST_LIMIT, 1.0), auth_rate_limit=RateLimit(100, 60.0))


def one_at_a_time() -> OneAtATime:
    return OneAtATime(
        client_id=CREDENTIALS["client_id"],
        client_secret=CREDENTIALS["client_secret"],
        jwt=CREDENTIALS["jwt"],
        server_url=BASE_URL,
    )


def policy() -> optouts.RetryPolicy:
    return optouts.RetryPolicy(backoff=0.001, cap=0.01, deadline=BURST_DEADLINE)


@pytest.fixture
def sync_tight_client(tight: Emulator) -> Iterator[optouts.Client]:
    http = httpx.Client(transport=SyncASGITransport(tight))
    client = optouts.Client(one_at_a_time(), http_client=http, max_concurrency=20, retry=policy())
    yield client
    client.close()
    http.close()


def test_the_next_call_does_not_start_in_a_backlog(
    sync_tight_client: optouts.Client, tight: Emulator
) -> None:
    client = sync_tight_client
    assert client.check(SENDER, numbers(1)).ok  # the pacer learns the group's budget
    burst = client.check(SENDER, numbers(100, "+1303555"))
    follow_up = client.check(SENDER, numbers(5, "+1303556"))
    assert not burst.ok  # the refusals themselves are the retry deadline's to make
    assert follow_up.ok, follow_up.failed[0].error
    assert tight.throttled == {}


async def test_the_next_async_call_does_not_start_in_a_backlog(tight: Emulator) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=tight))
    client = optouts.AsyncClient(
        one_at_a_time(), http_client=http, max_concurrency=20, retry=policy()
    )
    try:
        assert (await client.check(SENDER, numbers(1))).ok
        burst = await client.check(SENDER, numbers(100, "+1303555"))
        follow_up = await client.check(SENDER, numbers(5, "+1303556"))
    finally:
        await client.aclose()
        await http.aclose()
    assert not burst.ok
    assert follow_up.ok, follow_up.failed[0].error
    assert tight.throttled == {}
