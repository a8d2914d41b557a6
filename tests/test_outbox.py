"""The outbox of ``optouts serve``: what the ledger holds, carried to Azure and RingCentral.

The emulators run in-process (``httpx.ASGITransport``) behind a ``Recorder`` that counts, per
instance, every (sender, recipient) an add or remove carried; the ledger is real SQLite, and
PostgreSQL for two instances sharing it. Timings are short so the tests stay fast.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

import optouts
from optouts import RetryPolicy
from optouts.emulators import read_body
from optouts.ledger import Change
from optouts.server import _courier
from optouts.server._courier import Backoff, Timing
from optouts.server._metrics import Metrics
from optouts.server._outbox import Outbox
from optouts_azure import AzureEmulator
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import FakeClock, fake_clock_provider, make_provider
from pgserver import fresh_schema

S1 = "+16505550100"
S2 = "+16505550111"
ONCE = RetryPolicy(attempts=1)
FAST = Timing(
    rescan=0.05,
    full_scan=30.0,
    lease=3.0,
    lookback=0.5,
    gap=0.01,
    spacing={},
    backoff=Backoff(base=0.05, cap=0.2, auth_base=0.5, auth_cap=1.0),
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def numbers(count: int, exchange: int = 555) -> list[str]:
    return [f"+1202{exchange}{i:04d}" for i in range(count)]


class Recorder:
    """An emulator seen through one client: counts the pairs each add or remove carried."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.sent: Counter[tuple[str, str]] = Counter()
        self.requests = 0
        """Add and remove requests (logins and revokes aside)."""
        self.times: list[float] = []
        """When each add or remove arrived (``time.monotonic()``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        self._note(scope["path"], body)
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _note(self, path: str, body: bytes) -> None:
        if not path.endswith((":add", ":remove", "/bulk-assign")):
            return
        data = json.loads(body)
        carried = [item["to"] for item in data.get("recipients", [])]
        carried += data.get("optOuts") or []
        carried += data.get("optIns") or []
        self.requests += 1
        self.times.append(time.monotonic())
        self.sent.update((data["from"], number) for number in carried)


class Vendors:
    """The two emulators every instance of a test talks to."""

    def __init__(self, *, rc_limit: RateLimit | None = None, **azure: Any) -> None:
        self.clock = FakeClock()
        self.rc = Emulator(rate_limit=rc_limit, auth_rate_limit=None, clock=self.clock)
        self.azure = AzureEmulator(seed=1, **azure)


class Instance:
    """One service's outbox: its own clients (one session each), recorders and metrics."""

    def __init__(
        self,
        vendors: Vendors,
        ledger: optouts.Ledger,
        owner: str,
        *,
        timing: Timing = FAST,
        azure_key: str | None = None,
        real_clock: bool = False,
    ) -> None:
        self.ledger = ledger
        self.azure_seen = Recorder(vendors.azure)
        self.rc_seen = Recorder(vendors.rc)
        connection = vendors.azure.connection_string("https://azure.test")
        if azure_key is not None:
            connection = f"endpoint=https://azure.test/;accesskey={azure_key}"
        self.http = [
            httpx.AsyncClient(transport=httpx.ASGITransport(seen))
            for seen in (self.azure_seen, self.rc_seen)
        ]
        self.azure = optouts.AsyncClient(
            "azure", connection_string=connection, http_client=self.http[0], retry=ONCE
        )
        provider = make_provider() if real_clock else fake_clock_provider(vendors.clock)
        self.ringcentral = optouts.AsyncClient(provider, http_client=self.http[1], retry=ONCE)
        self.metrics = Metrics()
        self.outbox = Outbox(
            ledger, [self.azure, self.ringcentral], metrics=self.metrics, owner=owner, timing=timing
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Instance:
        self.task = asyncio.ensure_future(self.outbox.run())
        return self

    async def stop(self) -> None:
        assert self.task is not None
        self.outbox.stop()
        await asyncio.wait_for(self.task, 10)

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        for client in (self.azure, self.ringcentral):
            await client.aclose()
        for http in self.http:
            await http.aclose()

    def sent(self, name: str) -> float | None:
        return self.metrics.registry.get_sample_value("optouts_outbox_sent_total", {"target": name})

    def failed(self, name: str) -> float | None:
        return self.metrics.registry.get_sample_value(
            "optouts_outbox_failed_total", {"target": name}
        )


@pytest.fixture
def ledger(database: str) -> Iterator[optouts.Ledger]:
    with optouts.Ledger.open(database) as opened:
        yield opened


@pytest.fixture
async def opened() -> AsyncIterator[list[Instance]]:
    """Instances a test made; whatever is left running is cancelled and closed after it."""
    made: list[Instance] = []
    yield made
    for instance in made:
        await instance.close()


def stops(
    ledger: optouts.Ledger, sender: str, recipients: list[str], opted_out: bool = True
) -> None:
    now = optouts.Ledger.now()
    ledger.record([Change(sender, int(n[1:]), opted_out, "inbound:test", now) for n in recipients])


def owed(ledger: optouts.Ledger, target: str) -> int:
    return sum(len(recipients) for _, _, recipients in ledger.pending(target))


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds until ``condition()`` holds (polled), or fail after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"still not so after {timeout}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def all_told(ledger: optouts.Ledger) -> Callable[[], bool]:
    return lambda: owed(ledger, "azure") == 0 and owed(ledger, "ringcentral") == 0


# Carrying


async def test_stops_reach_every_target_and_are_confirmed(
    ledger: optouts.Ledger, opened: list[Instance]
) -> None:
    vendors = Vendors()
    first, second = numbers(200), numbers(50, 556)
    stops(ledger, S1, first)
    stops(ledger, S2, second)
    one = Instance(vendors, ledger, "one").start()
    opened.append(one)
    await until(all_told(ledger))
    await until(lambda: all(h["pending"] == 0 for h in one.outbox.health().values()))
    assert vendors.azure.opted_out(S1) == set(first)
    assert vendors.azure.opted_out(S2) == set(second)
    assert vendors.rc.records() == {
        **{(S1, n): "OptOut" for n in first},
        **{(S2, n): "OptOut" for n in second},
    }
    assert one.azure_seen.requests == 3  # 100 recipients a request
    assert one.rc_seen.requests == 2  # one bulk-assign per sender
    assert set(one.azure_seen.sent.values()) == set(one.rc_seen.sent.values()) == {1}
    assert one.sent("azure") == one.sent("ringcentral") == 250
    health = one.outbox.health()
    for name in ("azure", "ringcentral"):
        assert health[name]["pending"] == 0
        assert health[name]["last_success"] is not None
        assert str(health[name]["last_success"]).endswith("Z")
        assert health[name]["last_error"] is None
        assert health[name]["leased"] is True
    await one.stop()
    assert ledger.checkpoint("lease:outbox:azure") is None  # given up for another instance


async def test_many_wakes_make_few_requests(ledger: optouts.Ledger, opened: list[Instance]) -> None:
    vendors = Vendors(rc_limit=RateLimit(50, 60.0))
    timing = attrs.evolve(FAST, gap=0.05, spacing={"ringcentral": 0.1})
    one = Instance(vendors, ledger, "one", timing=timing).start()
    opened.append(one)
    stopped = numbers(200)
    for number in stopped:  # one STOP at a time, as webhooks bring them
        stops(ledger, S1, [number])
        one.outbox.wake()
        await asyncio.sleep(0.002)
    await until(all_told(ledger))
    assert vendors.azure.opted_out(S1) == set(stopped)
    assert one.rc_seen.requests <= 15
    assert one.azure_seen.requests <= 30
    assert set(one.azure_seen.sent.values()) == set(one.rc_seen.sent.values()) == {1}
    assert sum(vendors.rc.throttled.values()) == 0


async def test_twice_ringcentrals_budget_of_stops_draws_no_429_and_waits_little(
    ledger: optouts.Ledger, opened: list[Instance]
) -> None:
    """RingCentral's 50 requests a minute and 100 STOPs a minute, at 30 times the speed:
    10 requests per 2 s, 40 STOPs in 2 s, real clocks on both sides."""
    vendors = Vendors(rc_limit=RateLimit(10, 2.0))
    timing = attrs.evolve(FAST, spacing={"ringcentral": 2.0 / 9})
    one = Instance(vendors, ledger, "one", timing=timing, real_clock=True).start()
    opened.append(one)
    stopped = numbers(40)
    for number in stopped:
        stops(ledger, S1, [number])
        one.outbox.wake()
        await asyncio.sleep(0.05)
    await until(all_told(ledger))
    assert sum(vendors.rc.throttled.values()) == 0
    assert one.rc_seen.requests <= 12
    assert set(one.rc_seen.sent.values()) == {1}
    waits = []
    for number in stopped:
        trail = ledger.audit(number)
        (received,) = [at for _, _, _, at in trail.history]
        confirmed = {target: at for _, target, _, at in trail.confirmations}
        waits.append((confirmed["ringcentral"] - received) / 1e6)
    assert max(waits) < 1.0  # a round every 2/9 s, never a window's wait


async def test_an_opt_in_after_a_stop_is_carried_as_a_remove(
    ledger: optouts.Ledger, opened: list[Instance]
) -> None:
    vendors = Vendors()
    one = Instance(vendors, ledger, "one").start()
    opened.append(one)
    (number,) = numbers(1)
    stops(ledger, S1, [number])
    one.outbox.wake()
    await until(all_told(ledger))
    stops(ledger, S1, [number], opted_out=False)
    one.outbox.wake()
    await until(all_told(ledger))
    assert vendors.azure.opted_out(S1) == set()
    assert vendors.rc.records() == {(S1, number): "OptIn"}


async def test_what_another_process_writes_is_sent_without_a_wake(
    ledger: optouts.Ledger, opened: list[Instance], database: str
) -> None:
    vendors = Vendors()
    one = Instance(vendors, ledger, "one").start()
    opened.append(one)
    await until(lambda: one.outbox.health()["azure"]["pending"] == 0)
    with optouts.Ledger.open(database) as elsewhere, elsewhere.client() as client:
        client.add(S1, numbers(3))  # as `optouts add` would, from another process
    await until(all_told(ledger), timeout=2)
    assert vendors.azure.opted_out(S1) == set(numbers(3))


async def test_what_a_target_cannot_hold_is_skipped_not_sent_again_and_again(
    ledger: optouts.Ledger, opened: list[Instance]
) -> None:
    vendors = Vendors()
    (number,) = numbers(1)
    stops(ledger, "*", [number])  # account-wide: RingCentral's a2p-sms takes it, Azure cannot
    one = Instance(vendors, ledger, "one").start()
    opened.append(one)
    await until(lambda: owed(ledger, "ringcentral") == 0)
    await asyncio.sleep(0.3)  # several rescans
    assert vendors.rc.records() == {("*", number): "OptOut"}
    assert one.azure_seen.requests == 0
    assert owed(ledger, "azure") == 1  # still pending in the ledger, as a sync leaves it
    health = one.outbox.health()["azure"]
    assert (health["skipped"], health["pending"], health["failures"]) == (1, 0, 0)
    assert health["last_success"] is not None


# Failures


async def test_a_failing_target_backs_off_then_catches_up_and_the_other_goes_on(
    ledger: optouts.Ledger, opened: list[Instance]
) -> None:
    vendors = Vendors(fault_rate=1.0, faults=("unavailable",))
    timing = attrs.evolve(FAST, backoff=Backoff(base=0.1, cap=0.4))
    stopped = numbers(10)
    stops(ledger, S1, stopped)
    one = Instance(vendors, ledger, "one", timing=timing).start()
    opened.append(one)
    await until(lambda: owed(ledger, "ringcentral") == 0)  # RingCentral does not wait for Azure
    await asyncio.sleep(0.6)
    health = one.outbox.health()["azure"]
    assert health["last_success"] is None
    assert "failed" in str(health["last_error"])
    assert health["pending"] == 10
    assert isinstance(health["failures"], int)
    assert health["failures"] >= 2
    assert 2 <= one.azure_seen.requests <= 7  # backing off: a rescan every 0.05s would be 13
    assert (one.failed("azure") or 0) >= 20
    vendors.azure.fault_rate = 0.0
    await until(lambda: one.outbox.health()["azure"]["pending"] == 0, timeout=5)
    assert owed(ledger, "azure") == 0
    assert vendors.azure.opted_out(S1) == set(stopped)
    health = one.outbox.health()["azure"]
    assert (health["pending"], health["failures"]) == (0, 0)
    assert health["last_success"] is not None
    assert health["last_error"] is not None  # kept, with when: what happened stays visible
    assert one.sent("azure") == 10


async def test_an_outage_after_start_is_caught_up_without_reading_everything(
    ledger: optouts.Ledger, opened: list[Instance], monkeypatch: pytest.MonkeyPatch
) -> None:
    vendors = Vendors()
    full_reads: list[str] = []
    reading = ledger.pending

    def counted(target: str) -> Iterator[tuple[str, bool, list[int]]]:
        full_reads.append(target)
        return reading(target)

    monkeypatch.setattr(ledger, "pending", counted)
    one = Instance(vendors, ledger, "one").start()
    opened.append(one)
    await until(lambda: one.outbox.health()["azure"]["last_success"] is not None)
    at_start = full_reads.count("azure")
    vendors.azure.fault_rate, vendors.azure.faults = 1.0, ("error",)
    down = numbers(30)
    for number in down:
        stops(ledger, S1, [number])
        one.outbox.wake()
        await asyncio.sleep(0.01)
    await until(lambda: int(str(one.outbox.health()["azure"]["failures"])) >= 3)
    vendors.azure.fault_rate = 0.0
    await until(lambda: vendors.azure.opted_out(S1) == set(down), timeout=5)
    await asyncio.sleep(0.1)
    assert full_reads.count("azure") == at_start  # read again from the mark before the outage
    assert not list(reading("azure"))
    assert one.outbox.health()["azure"]["pending"] == 0


async def test_a_round_reads_a_bounded_number_of_states_and_the_next_goes_on(
    ledger: optouts.Ledger, opened: list[Instance], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_courier, "ROUND_SIZE", 100)
    full_reads: list[str] = []
    reading = ledger.pending

    def counted(target: str) -> Iterator[tuple[str, bool, list[int]]]:
        full_reads.append(target)
        return reading(target)

    monkeypatch.setattr(ledger, "pending", counted)
    vendors = Vendors()
    senders = [f"+1650555{i:04d}" for i in range(3)]
    for sender in senders:
        stops(ledger, sender, numbers(100))
    one = Instance(vendors, ledger, "one").start()
    opened.append(one)

    def everywhere() -> bool:
        at_azure = sum(len(vendors.azure.opted_out(sender)) for sender in senders)
        return at_azure == len(vendors.rc.records()) == 300

    await until(everywhere)
    assert full_reads.count("azure") >= 3  # a sender's 100 a round, each round reading again
    assert vendors.rc.records() == {(s, n): "OptOut" for s in senders for n in numbers(100)}


async def test_refused_credentials_back_off_longer(
    ledger: optouts.Ledger, opened: list[Instance]
) -> None:
    vendors = Vendors()
    stops(ledger, S1, numbers(5))
    wrong = "d3Jvbmcga2V5IGZvciB0aGUgZW11bGF0b3IhISE="
    timing = attrs.evolve(FAST, backoff=Backoff(base=0.01, cap=0.02, auth_base=5.0))
    one = Instance(vendors, ledger, "one", timing=timing, azure_key=wrong).start()
    opened.append(one)
    await until(lambda: one.outbox.health()["azure"]["failures"] == 1)
    await asyncio.sleep(0.5)
    assert one.azure_seen.requests == 1  # another failure would have come after 0.02s
    health = one.outbox.health()["azure"]
    assert "401" in str(health["last_error"]) or "credentials" in str(health["last_error"]).lower()
    assert owed(ledger, "ringcentral") == 0


async def test_stop_lets_the_calls_in_flight_finish_and_confirm(
    ledger: optouts.Ledger, opened: list[Instance]
) -> None:
    vendors = Vendors(latency=0.3)
    stops(ledger, S1, numbers(5))
    one = Instance(vendors, ledger, "one").start()
    opened.append(one)
    await until(lambda: one.azure_seen.requests == 1)
    one.outbox.stop()
    assert one.task is not None
    assert not one.task.done()
    await asyncio.wait_for(one.task, 5)
    assert owed(ledger, "azure") == 0  # answered after stop(), and confirmed
    assert vendors.azure.opted_out(S1) == set(numbers(5))


async def test_without_targets_it_runs_until_stopped_from_any_thread(
    ledger: optouts.Ledger,
) -> None:
    outbox = Outbox(ledger, [], metrics=Metrics(), owner="one")
    running = asyncio.ensure_future(outbox.run())
    await asyncio.sleep(0.05)
    assert not running.done()
    assert outbox.health() == {}
    await asyncio.to_thread(outbox.wake)
    await asyncio.to_thread(outbox.stop)  # as a signal handler's thread might
    await asyncio.wait_for(running, 2)


def test_a_target_is_given_once_and_never_the_ledger(ledger: optouts.Ledger) -> None:
    azure = optouts.AsyncClient(
        "azure", connection_string=AzureEmulator().connection_string("https://a.test")
    )
    with pytest.raises(ValueError, match="given twice"):
        Outbox(ledger, [azure, azure], metrics=Metrics(), owner="one")
    with pytest.raises(ValueError, match="no outbox target"):
        Outbox(ledger, [ledger.async_client()], metrics=Metrics(), owner="one")
    with pytest.raises(ValueError, match="owner"):
        Outbox(ledger, [azure], metrics=Metrics(), owner="")


# The ledger's part: leases and what changed, on both stores


@pytest.fixture(params=["sqlite", "postgresql"])
def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[optouts.Ledger]:
    if request.param == "sqlite":
        with optouts.Ledger.open(tmp_path / "ledger.db") as sqlite:
            yield sqlite
        return
    with fresh_schema() as (url, _), optouts.Ledger.open(url) as postgresql:
        yield postgresql


def test_a_lease_is_one_owners_until_released_or_run_out(any_ledger: optouts.Ledger) -> None:
    assert any_ledger.lease("outbox:azure", "one", 0.5)
    assert not any_ledger.lease("outbox:azure", "two", 30)
    assert any_ledger.lease("outbox:azure", "one", 0.5)  # renewed by its owner
    assert any_ledger.lease("outbox:ringcentral", "two", 30)  # each name its own
    time.sleep(0.6)
    assert any_ledger.lease("outbox:azure", "two", 30)  # run out: taken over
    assert not any_ledger.lease("outbox:azure", "one", 30)
    any_ledger.release("outbox:azure", "one")  # not its own: nothing happens
    assert not any_ledger.lease("outbox:azure", "one", 30)
    any_ledger.release("outbox:azure", "two")
    assert any_ledger.lease("outbox:azure", "one with spaces", 30)
    assert not any_ledger.lease("outbox:azure", "one", 30)


def test_pending_since_reads_only_what_changed_after_the_mark(
    any_ledger: optouts.Ledger,
) -> None:
    before = numbers(3)
    stops(any_ledger, S1, before)
    mark = any_ledger.change_mark()
    assert list(any_ledger.pending_since("azure", mark)) == []
    stops(any_ledger, S2, numbers(1, 556))
    stops(any_ledger, S1, before[:1], opted_out=False)  # never confirmed opted out: not owed
    assert list(any_ledger.pending_since("azure", mark)) == [(S2, True, [12025560000])]
    assert sorted(s for s, _, _ in any_ledger.pending("azure")) == [S1, S2]
    any_ledger.confirm("azure", S2, [12025560000], opted_out=True)
    assert list(any_ledger.pending_since("azure", mark)) == []
    assert any_ledger.change_mark() > mark


# Two instances over one PostgreSQL ledger


@pytest.fixture
def postgresql() -> Iterator[str]:
    with fresh_schema() as (url, _):
        yield url


async def test_two_instances_send_each_state_once_and_take_over_in_turn(
    postgresql: str, opened: list[Instance]
) -> None:
    vendors = Vendors()
    timing = attrs.evolve(FAST, lease=1.0)
    with optouts.Ledger.open(postgresql) as ledger_a, optouts.Ledger.open(postgresql) as ledger_b:
        a = Instance(vendors, ledger_a, "host-a:1", timing=timing).start()
        opened.append(a)
        await until(lambda: all(h["leased"] for h in a.outbox.health().values()))
        b = Instance(vendors, ledger_b, "host-b:1", timing=timing).start()
        opened.append(b)
        first = numbers(300)
        stops(ledger_b, S1, first)  # received by b; a holds the targets and sends
        for instance in (a, b):
            instance.outbox.wake()
        await until(all_told(ledger_a))
        await asyncio.sleep(0.2)
        for seen in ("azure_seen", "rc_seen"):
            both = getattr(a, seen).sent + getattr(b, seen).sent
            assert both == Counter({(S1, n): 1 for n in first})  # each state sent once
        assert b.azure_seen.requests == b.rc_seen.requests == 0
        assert not any(h["leased"] for h in b.outbox.health().values())
        assert b.outbox.health()["azure"]["pending"] is None  # not this instance's to count

        # a is killed: nothing gives its leases up, they run out and b takes over
        assert a.task is not None
        a.task.cancel()
        await asyncio.gather(a.task, return_exceptions=True)
        killed = time.monotonic()
        second = numbers(100, 556)
        stops(ledger_b, S1, second)
        b.outbox.wake()
        took = await until(all_told(ledger_b), timeout=5)
        assert 0.5 < took < 3  # the lease (1s) ran out first, then b read it all
        assert time.monotonic() - killed > 0.5
        assert b.azure_seen.sent == Counter({(S1, n): 1 for n in second})
        assert b.rc_seen.sent == Counter({(S1, n): 1 for n in second})
        assert not (set(a.azure_seen.sent) & set(b.azure_seen.sent))

        # b stops cleanly and gives its leases up: a new instance takes over at once
        await b.stop()
        c = Instance(vendors, ledger_a, "host-c:1", timing=timing).start()
        opened.append(c)
        third = numbers(10, 557)
        stops(ledger_a, S2, third)
        c.outbox.wake()
        took = await until(all_told(ledger_a), timeout=5)
        assert took < 0.5
        assert c.azure_seen.sent == Counter({(S2, n): 1 for n in third})
        assert vendors.azure.opted_out(S1) == set(first) | set(second)
