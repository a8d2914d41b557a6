"""A pacing wait that never ends in a request gives its slot back.

The retry policy refuses a ``Sleep`` longer than what is left of its deadline, and a call
can be cancelled during one; a slot kept then pushed every later request back, so a burst
of refused batches left the schedule seconds ahead of the clock and the next call on the
same client was refused too. Steps are driven by hand on a fake clock, as the client's
runner would drive them, then the same story runs on the emulator in real time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import httpx
import pytest
from botocore.credentials import Credentials  # type: ignore[import-untyped]

import optouts
from optouts.plugin import with_retry
from optouts_aws import AwsEmulator, AwsProvider, Pacer
from optouts_aws.testing import BASE_URL, SENDER

RATE = 4.0  # slots 0.25 s apart: exact in binary, so the arithmetic below is too
DEADLINE = 2.0
OPERATION: Final = "DescribeOptedOutNumbers"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def paced_provider(clock: FakeClock) -> AwsProvider:
    return AwsProvider(
        region="us-east-1",
        credentials=Credentials("AKIAOPTOUTSTEST00000", "test/secret"),
        endpoint_url=BASE_URL,
        rates=RATE,
        clock=clock,
    )


def first_step(provider: AwsProvider, clock: FakeClock, deadline: float = DEADLINE) -> Any:
    """Start a one-number check as the client does; its first step (a request or a pause),
    or the error the retry policy raises at once for a pause past the deadline."""
    policy = optouts.RetryPolicy(backoff=0.001, cap=0.01, deadline=deadline)
    job = with_retry(lambda: provider.check(SENDER, ["+13035550100"]), policy, clock)
    try:
        return job, next(job)
    except optouts.RateLimited as refused:
        return job, refused


def test_refused_waits_leave_the_schedule_where_it_was() -> None:
    clock = FakeClock()
    provider = paced_provider(clock)
    started = [first_step(provider, clock) for _ in range(20)]
    steps = [step for _, step in started]
    assert isinstance(steps[0], httpx.Request)  # the first slot is free now
    assert [s.seconds for s in steps[1:9]] == [0.25 * i for i in range(1, 9)]  # up to 2 s
    refused = steps[9:]
    assert len(refused) == 11
    assert all(isinstance(error, optouts.RateLimited) for error in refused)
    # Half a second on, the next batch waits for the slot after the nine accepted (2.25 s
    # from the start), not behind eleven slots that no one will use (5 s).
    clock.now += 0.5
    _, step = first_step(provider, clock)
    assert isinstance(step, optouts.Sleep)
    assert step.seconds == pytest.approx(1.75)


def test_a_cancelled_wait_gives_its_slot_to_the_next_request() -> None:
    clock = FakeClock()
    provider = paced_provider(clock)
    # Every job is held: one dropped is closed, and gives its slot back.
    held = [first_step(provider, clock, deadline=60) for _ in range(5)]
    assert [step.seconds for _, step in held[1:]] == [0.25, 0.5, 0.75, 1.0]
    held[3][0].close()  # as when an async call is cancelled during its pause
    held += [first_step(provider, clock, deadline=60) for _ in range(2)]
    assert [step.seconds for _, step in held[5:]] == [0.75, 1.25]


def test_a_slot_given_back_after_its_moment_is_not_reused() -> None:
    clock = FakeClock()
    pacer = Pacer({OPERATION: RATE}, clock)
    pacer.take(OPERATION)
    first = pacer.take(OPERATION)
    assert first is not None
    pacer.take(OPERATION)  # 0.5 s
    pacer.give_back(OPERATION, first[0])  # 0.25 s, before the slot at 0.5 s
    clock.now += 0.3
    taken = pacer.take(OPERATION)
    assert taken is not None
    # Sending at once would come within 0.2 s of the request at 0.5 s.
    assert taken[1] == pytest.approx(0.45)


def test_an_unpaced_operation_takes_no_slot() -> None:
    pacer = Pacer({OPERATION: None})
    assert pacer.take(OPERATION) is None
    assert list(pacer.wait(OPERATION)) == []


# --- the client, on the emulator --------------------------------------------------------------

BURST_RATE = 20.0  # slots 0.05 s apart
BURST_DEADLINE = 0.25  # so about five batches of twenty in flight can wait for theirs


def burst_then_one(make: Callable[..., Any]) -> tuple[Any, Any]:
    """Twenty batches at once (most refused: their slots are past the deadline), then one
    more batch as soon as the call returns."""
    client = make(
        requests_per_second=BURST_RATE,
        max_concurrency=20,
        retry=optouts.RetryPolicy(backoff=0.001, cap=0.01, deadline=BURST_DEADLINE),
    )
    burst = client.check(SENDER, [f"+1303555{i:04d}" for i in range(100)])
    follow_up = client.check(SENDER, [f"+1303556{i:04d}" for i in range(5)])
    return burst, follow_up


def test_the_next_call_does_not_start_in_a_backlog(client_for: Callable[..., Any]) -> None:
    burst, follow_up = burst_then_one(client_for)
    assert not burst.ok  # the refusals themselves are the retry deadline's to make
    assert follow_up.ok, follow_up.failed[0].error


def test_the_next_async_call_does_not_start_in_a_backlog(
    async_client_for: Callable[..., Any], emulator: AwsEmulator
) -> None:
    burst, follow_up = burst_then_one(async_client_for)
    assert not burst.ok
    assert follow_up.ok, follow_up.failed[0].error


def test_a_refused_pacing_wait_says_it_is_the_clients_own() -> None:
    clock = FakeClock()
    provider = paced_provider(clock)
    started = [first_step(provider, clock) for _ in range(10)]
    error = started[9][1]
    assert isinstance(error, optouts.RateLimited)
    assert "vendor asked" not in str(error)
    assert "keeping under the vendor's rate limit" in str(error)
    assert error.status_code is None
