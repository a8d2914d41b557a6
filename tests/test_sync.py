"""Sync from RingCentral to Azure and the ledger, against both emulators in-process."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest

import optouts
from optouts import RetryPolicy
from optouts.testing import BlockingASGITransport
from optouts_azure import AzureEmulator
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import make_provider

S1 = "+16505550100"
S2 = "+16505550111"
ONCE = RetryPolicy(attempts=1)


def numbers(count: int, exchange: int = 555) -> list[str]:
    return [f"+1202{exchange}{i:04d}" for i in range(count)]


class Vendors:
    """Both emulators and a client on each, plus the ledger."""

    def __init__(self, database: str) -> None:
        self.rc = Emulator(rate_limit=RateLimit(100_000, 60.0), auth_rate_limit=None)
        self.azure = AzureEmulator(seed=1)
        self.source = optouts.Client(
            make_provider("a2p-sms"),
            http_client=httpx.Client(transport=BlockingASGITransport(self.rc)),
        )
        self.target = optouts.Client(
            "azure",
            connection_string=self.azure.connection_string("https://azure.test"),
            http_client=httpx.Client(transport=BlockingASGITransport(self.azure)),
            retry=ONCE,
            max_concurrency=1,
        )
        self.ledger = optouts.Ledger.open(database)

    def sync(self, **options: object) -> optouts.SyncSummary:
        return optouts.sync(
            self.source,
            [self.target, "local"],
            ledger=self.ledger,
            **options,  # type: ignore[arg-type]
        )

    def ledger_opted_out(self, sender: str, recipients: list[str]) -> list[bool | None]:
        with self.ledger.client() as client:
            return [item.opted_out for item in client.check(sender, recipients)]

    def close(self) -> None:
        for client in (self.source, self.target, self.ledger):
            client.close()


@pytest.fixture
def vendors(database: str) -> Iterator[Vendors]:
    setup = Vendors(database)
    yield setup
    setup.close()


def by_target(summary: optouts.SyncSummary) -> dict[str, optouts.TargetSummary]:
    return {t.target: t for t in summary.targets}


def test_opt_outs_reach_every_target(vendors: Vendors) -> None:
    opted = numbers(250)
    for n in opted:
        vendors.rc.put(S1, n)
    vendors.rc.put(S2, opted[0])
    vendors.rc.put(S1, "+12025559999", "OptIn")
    summary = vendors.sync()
    assert summary.listed == 252
    assert vendors.azure.opted_out(S1) == set(opted)
    assert vendors.azure.opted_out(S2) == {opted[0]}
    assert all(vendors.ledger_opted_out(S1, opted))
    azure, ledger = by_target(summary)["azure"], by_target(summary)["local"]
    assert (azure.added, azure.removed, azure.failed) == (251, 0, 0)
    assert (ledger.added, ledger.removed) == (251, 1)
    assert summary.ok


def test_a_second_run_sends_nothing_but_list_pages(vendors: Vendors) -> None:
    for n in numbers(1500):
        vendors.rc.put(S1, n)
    vendors.sync()
    requests_before = vendors.azure.requests
    listed_before = vendors.rc.counts["readA2PSMSOptOuts"]
    again = vendors.sync()
    assert vendors.azure.requests == requests_before
    assert vendors.rc.counts["readA2PSMSOptOuts"] - listed_before == 2  # 1500 at 1000 a page
    assert again.recorded == 0
    assert by_target(again)["azure"].added == 0


def test_an_opt_in_reported_later_is_carried_too(vendors: Vendors) -> None:
    opted = numbers(3)
    for n in opted:
        vendors.rc.put(S1, n)
    vendors.sync()
    vendors.rc.put(S1, opted[1], "OptIn")
    summary = vendors.sync()
    assert vendors.azure.opted_out(S1) == {opted[0], opted[2]}
    assert vendors.ledger_opted_out(S1, opted) == [True, False, True]
    assert by_target(summary)["azure"].removed == 1


def test_an_undated_opt_in_never_undoes_another_sources_opt_out(vendors: Vendors) -> None:
    (number,) = numbers(1)
    vendors.ledger.client().add(S1, [number])  # received another way, e.g. STOP to another vendor
    vendors.rc.put(S1, number, "OptIn")
    vendors.sync()
    assert vendors.ledger_opted_out(S1, [number]) == [True]
    assert vendors.azure.opted_out(S1) == {number}


def test_refused_states_are_sent_again_and_only_they(vendors: Vendors) -> None:
    opted = numbers(300)
    for n in opted:
        vendors.rc.put(S1, n)
    vendors.azure.inject("unavailable")  # the first two of three batches fail (no retries here)
    vendors.azure.inject("error")
    first = vendors.sync()
    failed = by_target(first)["azure"].failed
    assert failed == 200
    assert len(vendors.azure.opted_out(S1)) == 100
    assert not first.ok
    sent_before = vendors.azure.requests
    second = vendors.sync()
    assert by_target(second)["azure"].added == 200
    assert vendors.azure.requests - sent_before == 2  # only the two refused batches
    assert vendors.azure.opted_out(S1) == set(opted)


class Interrupted(Exception):
    pass


def test_a_sync_killed_while_listing_resumes_from_its_checkpoint(vendors: Vendors) -> None:
    opted = numbers(2500)
    for n in opted:
        vendors.rc.put(S1, n)

    def stop_after_first_page(phase: str, count: int) -> None:
        if phase == "listed":
            raise Interrupted

    with pytest.raises(Interrupted):
        vendors.sync(progress=stop_after_first_page)
    assert vendors.azure.requests == 0
    listed_before = vendors.rc.counts["readA2PSMSOptOuts"]
    summary = vendors.sync()
    assert vendors.rc.counts["readA2PSMSOptOuts"] - listed_before == 2  # pages 2 and 3
    assert summary.listed == 1500
    assert vendors.azure.opted_out(S1) == set(opted)
    assert all(vendors.ledger_opted_out(S1, opted))


def test_a_sync_killed_while_pushing_finishes_next_time(vendors: Vendors) -> None:
    opted = numbers(120)
    for n in opted:
        vendors.rc.put(S1, n)
        vendors.rc.put(S2, n)

    def stop_after_first_target_batch(phase: str, count: int) -> None:
        if phase == "azure":
            raise Interrupted

    with pytest.raises(Interrupted):
        vendors.sync(progress=stop_after_first_target_batch)
    done_before = {S1: vendors.azure.opted_out(S1), S2: vendors.azure.opted_out(S2)}
    assert sum(len(v) for v in done_before.values()) == 120  # one sender's states went out
    sent_before = vendors.azure.requests
    vendors.sync()
    assert vendors.azure.requests - sent_before == 2  # the other sender's 120, in two batches
    assert vendors.azure.opted_out(S1) == vendors.azure.opted_out(S2) == set(opted)


def test_a_dry_run_changes_nothing_and_shows_the_plan(vendors: Vendors) -> None:
    vendors.ledger.require(write=True)  # a plan needs a ledger: an empty one
    opted = numbers(7)
    for n in opted:
        vendors.rc.put(S1, n)
    plan = vendors.sync(dry_run=True)
    assert plan.dry_run
    azure = by_target(plan)["azure"]
    assert azure.added == 7
    assert azure.first[0] == ("add", S1, opted[0])
    assert len(azure.first) == 5
    assert by_target(plan)["local"].added == 7
    assert vendors.azure.requests == 0
    assert vendors.ledger_opted_out(S1, opted) == [False] * 7
    assert list(vendors.ledger.client().list(status="all")) == []


def test_account_wide_opt_outs_are_skipped_where_a_target_cannot_hold_them(
    vendors: Vendors,
) -> None:
    (number,) = numbers(1)
    vendors.rc.put("*", number)
    summary = vendors.sync()
    azure = by_target(summary)["azure"]
    assert (azure.added, azure.skipped) == (0, 1)
    assert any("per sender" in note for note in azure.notes)
    assert vendors.azure.requests == 0
    assert vendors.ledger_opted_out(S2, [number]) == [True]  # '*' covers every sender


def test_the_ledger_remembers_when_each_vendor_confirmed(vendors: Vendors) -> None:
    (number,) = numbers(1)
    vendors.rc.put(S1, number)
    vendors.sync()
    trail = vendors.ledger.audit(number)
    assert [(s, t, out) for s, t, out, _ in trail.confirmations] == [
        (S1, "azure", True),
        (S1, "ringcentral", True),
    ]
    assert [(s, out, src) for s, out, src, _ in trail.history] == [(S1, True, "ringcentral")]


def test_the_command_line_prints_the_summary(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from optouts.cli import run

    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", str(tmp_path) + "/cli.db")
    assert run(["add", "--from", S1, "+12025550101"]) == 0
    capsys.readouterr()
    assert (
        run(["--format", "json", "sync", "--source", "local", "--target", "local", "--dry-run"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["dry_run"] is True
    assert summary["source"] == "local"
    assert run(["sync", "--source", "local", "--target", "nope"]) == 2
    assert "unknown provider 'nope'" in capsys.readouterr().err


def summary_counts(summary: optouts.SyncSummary) -> dict[str, tuple[int, int, int, int]]:
    return {t.target: (t.added, t.removed, t.skipped, t.failed) for t in summary.targets}


@pytest.mark.parametrize("seed", range(25))
def test_a_dry_run_plans_exactly_what_the_real_run_does(database: str, seed: int) -> None:
    """Random ledgers, confirmations and listings: the plan's counts are the run's."""
    rng = random.Random(seed)
    base = datetime(2026, 6, 1, tzinfo=timezone.utc)
    vendors = Vendors(database)
    try:
        ledger = vendors.ledger
        pool = [(sender, n) for sender in (S1, S2, "*") for n in numbers(6)]
        for sender, number in rng.sample(pool, 10):  # what the source lists
            when = base + timedelta(minutes=rng.randrange(5))
            vendors.rc.now = lambda when=when: when  # type: ignore[misc]
            vendors.rc.put(sender, number, rng.choice(["OptOut", "OptIn"]))
        for sender, number in rng.sample(pool, 10):  # what the ledger already knows
            at = base + timedelta(minutes=rng.randrange(5))
            micros = (at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
            change = optouts.ledger.Change(
                sender,
                int(number[1:]),
                rng.random() < 0.6,
                rng.choice(["ringcentral", "api"]),
                micros,
                "US",
                rng.random() < 0.7,
            )
            ledger.record([change])
            if rng.random() < 0.5:  # and what Azure or RingCentral were told
                target = rng.choice(["azure", "ringcentral"])
                state = rng.random() < 0.5
                ledger.confirm(target, sender, [change.recipient], opted_out=state)
        targets: list[optouts.Client | str] = [vendors.target, "local"]
        if seed % 3 == 0:  # the source as a target too: it is told only what it lacks
            targets.insert(0, vendors.source)

        def sync(dry_run: bool) -> optouts.SyncSummary:
            return optouts.sync(vendors.source, targets, ledger=vendors.ledger, dry_run=dry_run)

        plan = sync(dry_run=True)
        assert vendors.azure.requests == 0
        done = sync(dry_run=False)
        assert (plan.listed, plan.recorded) == (done.listed, done.recorded)
        assert summary_counts(plan) == summary_counts(done)
    finally:
        vendors.close()
