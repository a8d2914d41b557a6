"""The WAL of the service's SQLite ledger: never checkpointed by a webhook's commit, always
by the service's own thread, and never left to grow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import optouts
from optouts.ledger import Change, SQLiteLedger
from optouts.ledger._sqlite_open import checkpoint, ledger_file, open_for_checkpoints
from optouts.server import _app
from optouts.server._checkpoints import Checkpointer, WalTiming
from serverkit import fake_outboxes, serving, settings

SENDER = "+18005550100"
PAGE = 16 * 1024
"""The ledger's page size: a WAL of more than 1,000 of them is one SQLite would have
checkpointed by itself."""


def commits(ledger: optouts.Ledger, count: int, start: int = 0) -> None:
    """``count`` commits of one STOP each, as a quiet webhook endpoint makes them."""
    for k in range(start, start + count):
        ledger.record([Change(SENDER, 15555500000 + k * 7919 % 99991, True, "test", k + 1)])


def wal_size(database: str) -> int:
    path = Path(database + "-wal")
    return path.stat().st_size if path.exists() else 0


@pytest.fixture
def ledger(database: str) -> Iterator[optouts.Ledger]:
    with optouts.Ledger.open(database) as opened:
        opened.require(write=True)
        yield opened


def test_the_webhook_writer_leaves_checkpoints_to_the_service(
    ledger: optouts.Ledger, database: str
) -> None:
    writer = _app._writer_of(ledger)
    assert writer is not ledger  # a connection of its own
    try:
        commits(writer, 700)
    finally:
        writer.close()
    db = open_for_checkpoints(Path(database), 1.0)
    try:
        assert checkpoint(db).frames > 1_000  # never checkpointed, never started over
    finally:
        db.close()


def test_any_other_connection_still_checkpoints_by_itself(
    ledger: optouts.Ledger, database: str
) -> None:
    commits(ledger, 700)
    assert wal_size(database) < 1_100 * (PAGE + 24)


def test_an_in_memory_ledger_is_its_own_writer() -> None:
    with optouts.Ledger(SQLiteLedger(":memory:")) as ledger:
        assert _app._writer_of(ledger) is ledger
        assert ledger_file(ledger.location) is None


def test_only_a_sqlite_file_has_a_wal_to_checkpoint(tmp_path: Path, ledger: optouts.Ledger) -> None:
    assert ledger_file(ledger.location) == Path(ledger.location)
    other = tmp_path / "notes.txt"
    other.write_text("SQLite format 2, nearly")
    assert ledger_file(str(other)) is None
    assert ledger_file(str(tmp_path / "missing.db")) is None
    assert ledger_file("postgresql://user@host/db") is None


def test_the_checkpointer_keeps_the_wal_small_and_empties_it_when_idle(
    ledger: optouts.Ledger, database: str
) -> None:
    timing = WalTiming(interval=0.05, idle=0.3, limit=2 * 1024 * 1024, busy=0.1)
    writer = _app._writer_of(ledger)
    checkpointer = Checkpointer(Path(database), timing)
    checkpointer.start()
    largest = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal largest
        while not stop.wait(0.005):
            largest = max(largest, wal_size(database))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        started, written = time.monotonic(), 0
        while time.monotonic() - started < 1.5:  # back to back, as a busy webhook writer
            with checkpointer.pause:
                commits(writer, 20, written)
            written += 20
        for _ in range(200):
            if wal_size(database) == 0:
                break
            time.sleep(0.02)
        assert wal_size(database) == 0  # idle: emptied
    finally:
        stop.set()
        watcher.join()
        checkpointer.stop()
        writer.close()
    # Each commit adds two pages at least: unchecked, the WAL would hold them all (over
    # 100 MiB here); checked, it holds the limit and an interval's writes.
    unchecked = written * 2 * PAGE
    assert unchecked > 20 * timing.limit
    assert largest < unchecked / 5
    assert checkpointer.counts["RESTART"] > 0
    assert checkpointer.counts["PASSIVE"] > 0
    assert checkpointer.counts["TRUNCATE"] >= 1
    with optouts.Ledger.open(database) as again:  # nothing lost on the way
        assert again.change_mark() == written


def test_a_truncate_the_writer_is_in_the_way_of_is_tried_again(
    ledger: optouts.Ledger, database: str
) -> None:
    timing = WalTiming(interval=0.02, idle=0.05, limit=64 * 1024 * 1024, busy=0.01)
    commits(ledger, 5)
    checkpointer = Checkpointer(Path(database), timing)
    checkpointer.start()
    try:
        with ledger.rehearsal() as scratch:  # a writer holding the write lock, for 0.5 s
            commits(scratch, 1, 100)
            time.sleep(0.5)
            assert wal_size(database) > 0
            assert checkpointer.last is not None
            assert checkpointer.last.busy
        for _ in range(100):
            if wal_size(database) == 0:
                break
            time.sleep(0.02)
        assert wal_size(database) == 0
    finally:
        checkpointer.stop()
    assert checkpointer.counts["TRUNCATE"] > 1


async def test_the_service_checkpoints_a_sqlite_ledger_from_a_thread_while_it_runs(
    ledger: optouts.Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_outboxes(monkeypatch)

    def running() -> bool:
        return any(thread.name == "optouts-checkpoints" for thread in threading.enumerate())

    async with serving(ledger, settings()):
        assert running()
    assert not running()
    with optouts.Ledger(SQLiteLedger(":memory:")) as memory:
        async with serving(memory, settings()):
            assert not running()
