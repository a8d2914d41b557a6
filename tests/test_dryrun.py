"""A sync's dry run against the real run: the same counts, and nothing written or sent.

In-process providers script the listing page by page (duplicates within and across
pages, undated records, account-wide ``*``), and record every add or remove they get.
The dry run is the real sync inside a rolled-back rehearsal of the ledger, on SQLite and
on PostgreSQL alike.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

import optouts
from optouts import (
    Capability,
    Exchange,
    InvalidNumber,
    OptOut,
    OptOutError,
    Outcome,
    Page,
    Provider,
    Results,
    Status,
    StatusFilter,
)
from optouts.ledger import Change

S1, S2 = "+16505550100", "+16505550111"
BASE = datetime(2026, 6, 1, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Recording(Provider):
    """Adds and removes in memory and notes each call; a sync's dry run must make none."""

    name: ClassVar[str] = "target"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.ADD, Capability.REMOVE})
    blocking: ClassVar[bool] = True  # its work happens in the operation itself: no probing

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []

    def refuses(self, operation: str, sender: str) -> OptOutError | None:
        return InvalidNumber(sender, "no account-wide list here") if sender == "*" else None

    def add(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._change("add", sender, recipients)
        yield  # pragma: no cover - makes this an exchange

    def remove(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._change("remove", sender, recipients)
        yield  # pragma: no cover - makes this an exchange

    def _change(self, operation: str, sender: str, recipients: Sequence[str]) -> Results:
        refusal = self.refuses(operation, sender)
        if refusal is not None:
            raise refusal
        self.calls.append((operation, sender, tuple(recipients)))
        outcome = Outcome.OPTED_OUT if operation == "add" else Outcome.NOT_OPTED_OUT
        return dict.fromkeys(recipients, outcome)


class Scripted(Recording):
    """A source whose listing is given page by page; it can be a target too."""

    name: ClassVar[str] = "scripted"
    capabilities: ClassVar[frozenset[Capability]] = Recording.capabilities | {Capability.LIST}
    max_page_size: ClassVar[int] = 100

    def __init__(self, pages: list[list[OptOut]]) -> None:
        super().__init__()
        self.pages = pages

    def refuses(self, operation: str, sender: str) -> OptOutError | None:
        return None

    def list_page(
        self, sender: str | None, status: StatusFilter, page_size: int, cursor: str | None
    ) -> Exchange[Page]:
        index = int(cursor or 0)
        following = str(index + 1) if index + 1 < len(self.pages) else None
        return Page(tuple(self.pages[index]), following)
        yield  # pragma: no cover - makes this an exchange


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def tables(database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, in an order that does not depend on the plan."""
    names = ("senders", "optouts", "history", "confirmations", "sync_state")
    if database.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database, autocommit=True) as db:
            rows = {name: db.execute(f"SELECT * FROM {name}").fetchall() for name in names}
    else:
        with contextlib.closing(sqlite3.connect(database)) as db:
            rows = {name: db.execute(f"SELECT * FROM {name}").fetchall() for name in names}
    return {name: sorted(found, key=repr) for name, found in rows.items()}


def counts(summary: optouts.SyncSummary) -> dict[str, tuple[int, int, int, int]]:
    return {t.target: (t.added, t.removed, t.skipped, t.failed) for t in summary.targets}


@pytest.mark.parametrize("seed", range(40))
def test_a_dry_run_counts_what_the_real_run_does_and_changes_nothing(
    ledger_database: str, seed: int
) -> None:
    rng = random.Random(seed)
    pool = [(sender, f"+1202555{n:04d}") for sender in (S1, S2, "*") for n in range(5)]

    def record() -> OptOut:
        sender, number = rng.choice(pool)
        when = None if rng.random() < 0.3 else BASE + timedelta(minutes=rng.randrange(6))
        status = rng.choice([Status.OPTED_OUT, Status.OPTED_IN])
        return OptOut(sender, number, status, updated_at=when, provider="scripted")

    pages = [[record() for _ in range(rng.randrange(7))] for _ in range(rng.randint(1, 3))]
    source, target = Scripted(pages), Recording()
    database = ledger_database
    with optouts.Ledger.open(database) as ledger:
        for sender, number in rng.sample(pool, 8):  # what the ledger knew before
            change = Change(
                sender,
                int(number[1:]),
                rng.random() < 0.6,
                rng.choice(["scripted", "api"]),
                micros(BASE + timedelta(minutes=rng.randrange(6))),
                "US",
                rng.random() < 0.7,
            )
            ledger.record([change])
            for name in ("target", "scripted"):
                if rng.random() < 0.4:
                    state = rng.random() < 0.5
                    ledger.confirm(name, sender, [change.recipient], opted_out=state)
        if len(pages) > 1 and rng.random() < 0.3:  # an interrupted run left a checkpoint
            ledger.set_checkpoint("pull:scripted:cursor", "1")
        with optouts.Client(source) as source_client, optouts.Client(target) as target_client:
            targets: list[optouts.Client | str] = [target_client, "local"]
            if seed % 3 == 0:
                targets.insert(0, source_client)
            before = tables(database)
            plan = optouts.sync(source_client, targets, ledger=ledger, dry_run=True)
            assert tables(database) == before
            assert source.calls == target.calls == []
            done = optouts.sync(source_client, targets, ledger=ledger)
    assert (plan.listed, plan.recorded) == (done.listed, done.recorded)
    assert counts(plan) == counts(done)
    sent = sum(len(recipients) for _, _, recipients in target.calls)
    assert sent == counts(done)["target"][0] + counts(done)["target"][1]


def test_a_dry_run_without_a_ledger_fails_like_any_read_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan against an empty ledger would be a guess: a mistyped path must not make one."""
    from optouts.cli import run

    missing = tmp_path / "not-yet" / "ledger.db"
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", str(missing))
    code = run(["sync", "--source", "local", "--target", "local", "--dry-run"])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.startswith("optouts: error: ")
    assert captured.err.count("\n") == 1
    assert str(missing) in captured.err
    assert "OPTOUTS_LOCAL_DATABASE" in captured.err
    source = Scripted([[OptOut(S1, "+12025550001", Status.OPTED_OUT, provider="scripted")]])
    refused = pytest.raises(optouts.ConfigurationError, match="OPTOUTS_LOCAL_DATABASE")
    with optouts.Client(source) as source_client, refused as raised:
        optouts.sync(source_client, ["local"], dry_run=True)
    assert str(missing) in str(raised.value)
    assert not missing.exists()
    assert not missing.parent.exists()
    assert source.calls == []


def test_a_sync_creates_the_ledger_it_records_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "not-yet" / "ledger.db"
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", str(missing))
    source = Scripted([[OptOut(S1, "+12025550001", Status.OPTED_OUT, provider="scripted")]])
    with optouts.Client(source) as source_client:
        done = optouts.sync(source_client, ["local"])
        assert done.recorded == 1
        plan = optouts.sync(source_client, ["local"], dry_run=True)  # now there is a ledger
    assert plan.recorded == 0
    with optouts.Ledger.from_settings() as ledger:
        assert ledger.opted_out(S1, ["+12025550001"]) == [True]


def test_a_rehearsal_sees_its_own_writes_and_leaves_none(ledger_database: str) -> None:
    """Inside, reads see the rehearsal's writes; other readers never do; after, nothing is kept."""
    number = "+12025550001"
    with optouts.Ledger.open(ledger_database) as ledger, ledger.client() as client:
        client.add(S1, ["+12025550002"])
        with optouts.Ledger.open(ledger_database) as onlooker, ledger.rehearsal() as scratch:
            scratch.record([Change(S1, int(number[1:]), True, "test", micros(BASE))])
            scratch.confirm("target", S1, [int(number[1:])], opted_out=True)
            scratch.set_checkpoint("pull:x:cursor", "7")
            assert scratch.opted_out(S1, [number]) == [True]
            assert scratch.checkpoint("pull:x:cursor") == "7"
            assert onlooker.opted_out(S1, [number]) == [False]
        assert ledger.opted_out(S1, [number, "+12025550002"]) == [False, True]
        assert ledger.checkpoint("pull:x:cursor") is None
        assert [t for s, t, *_ in ledger.audit(number).confirmations] == []
        client.add(S1, [number])  # the ledger takes writes as before
        assert ledger.opted_out(S1, [number]) == [True]


class WritingWhileListed(Scripted):
    """A source that, while it is listed, has another process write to the ledger."""

    def __init__(self, pages: list[list[OptOut]], write: Callable[[], None]) -> None:
        super().__init__(pages)
        self.write = write

    def list_page(
        self, sender: str | None, status: StatusFilter, page_size: int, cursor: str | None
    ) -> Exchange[Page]:
        self.write()
        return (yield from super().list_page(sender, status, page_size, cursor))


def test_a_dry_run_holds_no_lock_while_the_source_is_listed(tmp_path: Path) -> None:
    """Listing a vendor can take minutes (RingCentral's 50 requests a minute): meanwhile an
    inbound STOP must still be recorded, so the rehearsal's lock waits for the listing."""
    database = str(tmp_path / "ledger.db")
    written: list[str] = []

    def write() -> None:
        number = f"+120255590{len(written):02d}"
        with contextlib.closing(sqlite3.connect(database, timeout=0.1)) as db:
            db.execute("INSERT INTO sync_state (key, value) VALUES (?, 'x')", (number,))
            db.commit()
        written.append(number)

    pages = [
        [OptOut(S1, f"+1202555000{i}", Status.OPTED_OUT, provider="scripted")] for i in range(3)
    ]
    source = WritingWhileListed(pages, write)
    with optouts.Ledger.open(database) as ledger, optouts.Client(source) as source_client:
        ledger.require(write=True)
        plan = optouts.sync(source_client, ["local"], ledger=ledger, dry_run=True)
        assert (plan.listed, plan.recorded) == (3, 3)
        assert len(written) == 3
        assert ledger.opted_out(S1, ["+12025550000"]) == [False]


def test_a_ledger_this_process_cannot_write_is_rehearsed_on_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only ledger can still be planned against; its file is never opened to write."""
    from optouts.ledger import _sqlite

    database = str(tmp_path / "ledger.db")
    with optouts.Ledger.open(database) as ledger, ledger.client() as client:
        client.add(S1, ["+12025550001"])
    before = tables(database)
    monkeypatch.setattr(_sqlite, "_writable", lambda path: False)
    source = Scripted([[OptOut(S1, "+12025550002", Status.OPTED_OUT, provider="scripted")]])
    target = Recording()
    with (
        optouts.Ledger.open(database) as ledger,
        optouts.Client(source) as source_client,
        optouts.Client(target) as target_client,
    ):
        plan = optouts.sync(source_client, [target_client], ledger=ledger, dry_run=True)
    assert counts(plan) == {"target": (2, 0, 0, 0)}
    assert tables(database) == before
    assert target.calls == []
