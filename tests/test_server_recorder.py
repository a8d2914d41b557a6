"""Group commit: webhooks that arrive while a commit runs are recorded together, in one.

Through the app: requests queued behind a commit share the next one, each answered only
once its own events are in the ledger, with what became of its own events; a commit that
fails fails exactly the requests in it, and the next is tried afresh. The recorder's
account of which changes a commit took is checked against the ledger's own count, on
both stores.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

import optouts
from optouts import ProviderError
from optouts.ledger import Change
from optouts.server import _recorder
from optouts.server._recorder import Recorder, _taken
from serverkit import CONSUMER, OURS, RC_TOKEN, FakeOutbox, fake_outboxes, opted_out, rc_v1, serving

pytestmark = pytest.mark.skipif(
    "ringcentral" not in optouts.inbound.parsers(), reason="optouts-ringcentral is not installed"
)
HEADERS = {"Verification-Token": RC_TOKEN}


def number(k: int) -> str:
    return f"+1555555{k:04d}"


class Commits:
    """``Ledger.record`` watched: the changes of each call, and the first call held back
    until ``release()``, so the requests that arrive meanwhile queue for the next commit.
    ``fail_at`` is the call (1-based) that raises instead."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> None:
        self.calls: list[list[Change]] = []
        self.entered = threading.Event()
        self._gate = threading.Event()
        real = optouts.Ledger.record

        def record(ledger: optouts.Ledger, changes: Any) -> int:
            self.calls.append(list(changes))
            if len(self.calls) == 1:
                self.entered.set()
                assert self._gate.wait(10)
            if len(self.calls) == fail_at:
                raise ProviderError("the disk is full", provider="local")
            return real(ledger, changes)

        monkeypatch.setattr(optouts.Ledger, "record", record)
        self.queued = 0
        real_queue = Recorder.record

        async def counting(recorder: Recorder, changes: Any) -> list[bool]:
            self.queued += 1
            return await real_queue(recorder, changes)

        monkeypatch.setattr(Recorder, "record", counting)

    def release(self) -> None:
        self._gate.set()


@pytest.fixture
def outboxes(monkeypatch: pytest.MonkeyPatch) -> list[FakeOutbox]:
    return fake_outboxes(monkeypatch)


@pytest.fixture
async def ledger(database: str) -> AsyncIterator[optouts.Ledger]:
    with optouts.Ledger.open(database) as opened:
        yield opened


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still not so after {timeout}s")


async def post_all(http: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[Any]:
    return list(
        await asyncio.gather(
            *(http.post("/webhooks/ringcentral", json=body, headers=HEADERS) for body in bodies)
        )
    )


async def test_requests_that_arrive_during_a_commit_share_the_next(
    ledger: optouts.Ledger,
    database: str,
    outboxes: list[FakeOutbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commits = Commits(monkeypatch)
    async with serving(ledger) as http:
        first = asyncio.ensure_future(
            http.post("/webhooks/ringcentral", json=rc_v1(to=number(0)), headers=HEADERS)
        )
        await until(commits.entered.is_set)
        rest = asyncio.ensure_future(post_all(http, [rc_v1(to=number(k)) for k in range(1, 20)]))
        await until(lambda: commits.queued == 20)
        assert not first.done()  # held until its own commit is done
        commits.release()
        answers = [await first, *await rest]
    assert [answer.json() for answer in answers] == [{"events": 1, "recorded": 1}] * 20
    assert [len(call) for call in commits.calls] == [1, 19]  # two commits for twenty requests
    assert opted_out(database, OURS, [number(k) for k in range(20)]) == [True] * 20
    assert outboxes[0].wakes == 2  # once a commit


async def test_each_request_of_a_group_hears_what_became_of_its_own_events(
    ledger: optouts.Ledger,
    database: str,
    outboxes: list[FakeOutbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(ledger) as http:
        answer = await http.post("/webhooks/ringcentral", json=rc_v1(), headers=HEADERS)
        assert answer.json() == {"events": 1, "recorded": 1}
        commits = Commits(monkeypatch)
        first = asyncio.ensure_future(
            http.post("/webhooks/ringcentral", json=rc_v1(to=number(0)), headers=HEADERS)
        )
        await until(commits.entered.is_set)
        # in one group: a redelivery (the ledger has it), a new STOP, and the same new STOP
        # delivered twice at once (the first of the two takes it)
        bodies = [rc_v1(), rc_v1(to=number(1)), rc_v1(to=number(2)), rc_v1(to=number(2))]
        rest = asyncio.ensure_future(post_all(http, bodies))
        await until(lambda: commits.queued == 5)
        commits.release()
        answers = [await first, *await rest]
    assert [len(call) for call in commits.calls] == [1, 4]
    recorded = [answer.json()["recorded"] for answer in answers]
    assert recorded[:3] == [1, 0, 1]
    assert sorted(recorded[3:]) == [0, 1]  # whichever of the two came first
    assert opted_out(database, OURS, [CONSUMER, number(1), number(2)]) == [True] * 3


async def test_a_failed_commit_fails_exactly_the_requests_in_it(
    ledger: optouts.Ledger,
    database: str,
    outboxes: list[FakeOutbox],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="optouts.serve")
    commits = Commits(monkeypatch, fail_at=2)
    async with serving(ledger) as http:
        first = asyncio.ensure_future(
            http.post("/webhooks/ringcentral", json=rc_v1(to=number(0)), headers=HEADERS)
        )
        await until(commits.entered.is_set)
        failing = asyncio.ensure_future(post_all(http, [rc_v1(to=number(k)) for k in (1, 2, 3)]))
        await until(lambda: commits.queued == 4)
        commits.release()
        assert (await first).json() == {"events": 1, "recorded": 1}
        refused = await failing
        after = await http.post("/webhooks/ringcentral", json=rc_v1(to=number(4)), headers=HEADERS)
        metrics = (await http.get("/metrics")).text
    assert [answer.status_code for answer in refused] == [503] * 3
    for answer in refused:
        assert answer.json() == {"error": "the ledger is unavailable; deliver again later"}
    assert after.json() == {"events": 1, "recorded": 1}  # the next commit is tried afresh
    assert opted_out(database, OURS, [number(k) for k in range(5)]) == [
        True,
        False,
        False,
        False,
        True,
    ]
    failures = [r.getMessage() for r in caplog.records if "did not record" in r.getMessage()]
    assert len(failures) == 1  # once for the group, not once a request
    assert failures[0].startswith("the ledger did not record 3 webhook requests (3 changes)")
    assert "the disk is full" in failures[0]
    assert (
        'optouts_webhook_requests_refused_total{reason="ledger",vendor="ringcentral"} 3.0'
        in metrics
    )


async def test_a_bug_in_a_commit_is_a_503_and_logged_with_its_traceback(
    ledger: optouts.Ledger,
    outboxes: list[FakeOutbox],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(optouts.Ledger, "held", broken)
    async with serving(ledger) as http:
        answer = await http.post("/webhooks/ringcentral", json=rc_v1(), headers=HEADERS)
    assert answer.status_code == 503
    assert answer.json() == {"error": "the delivery was not recorded; deliver again later"}
    [logged] = [r for r in caplog.records if "recording 1 webhook requests" in r.getMessage()]
    assert logged.exc_info is not None


async def test_closing_commits_what_is_queued_then_refuses(ledger: optouts.Ledger) -> None:
    ledger.require(write=True)  # as the service opens it
    woken: list[int] = []
    recorder = Recorder(ledger, on_recorded=lambda: woken.append(1))
    recorder.start()
    now = optouts.Ledger.now()
    changes = [Change(OURS, 15555550000 + k, True, "test", now) for k in range(3)]
    pending = [asyncio.ensure_future(recorder.record([change])) for change in changes]
    await asyncio.sleep(0)  # all three queued
    await recorder.close()
    assert [await each for each in pending] == [[True]] * 3
    assert woken
    with pytest.raises(_recorder.NotRecorded, match="not recording"):
        await recorder.record(changes)


# Which changes a commit takes: the recorder's account, against the ledger's


def changes_for(rng: random.Random, count: int) -> list[Change]:
    """Changes as webhooks bring them, over few pairs so that they collide: opt-outs and
    opt-ins, dated and not, two sources, times close together (some equal)."""
    base = optouts.Ledger.now()
    return [
        Change(
            rng.choice([OURS, "+18005550111"]),
            15555550000 + rng.randrange(6),
            rng.random() < 0.6,
            rng.choice(["ringcentral", "inbound:azure"]),
            base + rng.randrange(5) * 1_000_000,
            "US",
            rng.random() < 0.7,
        )
        for _ in range(count)
    ]


@pytest.fixture
def twin_ledgers(ledger_database: str) -> Iterator[optouts.Ledger]:
    with optouts.Ledger.open(ledger_database) as opened:
        opened.require(write=True)
        yield opened


@pytest.mark.parametrize("seed", range(8))
def test_the_changes_a_commit_takes_are_those_the_ledger_takes(
    twin_ledgers: optouts.Ledger, seed: int
) -> None:
    """Groups of colliding changes: the account says the ledger's count of each group, and
    change by change what the ledger takes one at a time in the order ``record`` applies
    them (dated first)."""
    rng = random.Random(seed)
    ledger = twin_ledgers
    for _ in range(6):
        group = changes_for(rng, rng.randrange(1, 12))
        before = {
            (change.sender, change.recipient): state
            for change in group
            for recipient, state in ledger.held(change.sender, [change.recipient]).items()
        }
        flags = _taken(group, before)
        order = [c for c in group if c.dated] + [c for c in group if not c.dated]
        with ledger.rehearsal() as scratch:  # one at a time, rolled back afterwards
            one_by_one = {id(c): scratch.record([c]) == 1 for c in order}
        assert flags == [one_by_one[id(c)] for c in group]
        assert ledger.record(group) == sum(flags)
