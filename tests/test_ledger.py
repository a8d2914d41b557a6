"""The local ledger: storage facts, history, wildcard, country, paging, concurrency and bulk."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import optouts.ledger._provider as ledger_provider
from optouts import AsyncClient, Client, InvalidCursor, OptOut, OptOutError, Status
from optouts.ledger import SQLiteLedger
from optouts.ledger._schema import SCHEMA_VERSION

SENDER = "+18005550100"
OTHER_SENDER = "+18005550111"
US = "+12025550123"
CA = "+14165550123"
GB = "+442079460000"


@pytest.fixture
def client(empty_ledger: str) -> Iterator[Client]:
    with Client("local", database=empty_ledger) as client:
        yield client


def query(database: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows from a separate raw connection, as an auditor with the sqlite3 shell would see."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return db.execute(sql, params).fetchall()


def history(database: str) -> list[tuple[Any, ...]]:
    """(sender, recipient, opted_out, source) of every history row, oldest first."""
    return query(
        database,
        "SELECT s.sender, h.recipient, h.opted_out, h.source FROM history AS h "
        "JOIN senders AS s ON s.id = h.sender_id ORDER BY h.id",
    )


def numbers(start: int, count: int, area: str = "202") -> list[str]:
    """``count`` distinct possible US numbers from ``+1<area><start>`` upwards."""
    return [f"+1{area}{start + i:07d}" for i in range(count)]


# Storage


def test_database_is_in_wal_mode(client: Client, database: str) -> None:
    client.add(SENDER, [US])
    assert query(database, "PRAGMA journal_mode") == [("wal",)]


def test_reopening_the_file_keeps_the_data(database: str) -> None:
    with Client("local", database=database) as first:
        first.add(SENDER, [US, CA])
        first.remove(SENDER, [CA])
    with Client("local", database=database) as second:
        assert [r.opted_out for r in second.check(SENDER, [US, CA])] == [True, False]
        assert [r.recipient for r in second.list(status="all")] == [US, CA]


def test_default_database_is_under_xdg_data_home_in_a_fresh_process(tmp_path: Path) -> None:
    """A process started with XDG_DATA_HOME keeps its ledger at $XDG_DATA_HOME/optouts."""
    data_home = tmp_path / "xdg"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}
    environ.update(XDG_DATA_HOME=str(data_home), HOME=str(tmp_path / "home"))
    script = (
        "import optouts\n"
        "with optouts.Client('local') as client:\n"
        f"    assert client.add({SENDER!r}, [{US!r}]).ok\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    ledger = data_home / "optouts" / "ledger.db"
    assert query(str(ledger), "SELECT recipient FROM optouts_readable") == [(US,)]


def test_default_database_follows_xdg_data_home_set_after_import(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The default is found when a client is made, not frozen when optouts is imported."""
    opened: list[str] = []

    class NotOpened(Exception):
        pass

    def record(path: str, **_: object) -> SQLiteLedger:
        opened.append(str(path))
        raise NotOpened  # never touch the file, wherever it is

    monkeypatch.setattr(ledger_provider, "open_store", record)
    with pytest.raises(NotOpened):
        Client("local")
    # conftest sets XDG_DATA_HOME to tmp_path / "data" before every test
    assert opened == [str(tmp_path / "data" / "optouts" / "ledger.db")]


def test_newer_schema_version_asks_to_upgrade(database: str) -> None:
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(OptOutError, match="upgrade optouts"):
        SQLiteLedger(database)
    with pytest.raises(OptOutError, match="upgrade optouts"):
        Client("local", database=database)
    # refusing leaves the newer file as it was
    assert query(database, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]


def test_the_first_write_stamps_the_schema_version(database: str) -> None:
    store = SQLiteLedger(database)
    assert not Path(database).exists()  # making the store creates nothing
    store.put_state("k", None)
    store.close()
    assert query(database, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


# History


def test_add_writes_one_opt_out_history_row(client: Client, database: str) -> None:
    client.add(SENDER, [US])
    assert history(database) == [(SENDER, int(US[1:]), 1, "api")]


def test_re_adding_an_opted_out_pair_writes_no_history_and_keeps_first_time(
    client: Client, database: str
) -> None:
    client.add(SENDER, [US])
    (first,) = client.list()
    assert client.add(SENDER, [US, US]).ok
    assert len(history(database)) == 1
    (again,) = client.list()
    assert again.updated_at == first.updated_at


def test_remove_writes_one_opt_in_row_and_removing_again_writes_none(
    client: Client, database: str
) -> None:
    client.add(SENDER, [US])
    client.remove(SENDER, [US])
    client.remove(SENDER, [US])
    assert [row[2] for row in history(database)] == [1, 0]


def test_history_is_append_only_across_changes(client: Client, database: str) -> None:
    client.add(SENDER, [US])
    before = query(database, "SELECT * FROM history")
    client.remove(SENDER, [US])
    client.add(SENDER, [US])
    after = query(database, "SELECT * FROM history ORDER BY id")
    assert after[:1] == before
    assert [row[3] for row in after] == [1, 0, 1]
    assert [row[0] for row in after] == sorted({row[0] for row in after})


def test_source_setting_is_recorded_in_history_and_records(database: str) -> None:
    with Client("local", database=database, source="import") as importer:
        importer.add(SENDER, [US])
    with Client("local", database=database) as api:
        api.add(SENDER, [CA])
        api.remove(SENDER, [US])
        assert {r.recipient: r.source for r in api.list(status="all")} == {
            US: "api",
            CA: "api",
        }
    assert [(row[1], row[3]) for row in history(database)] == [
        (int(US[1:]), "import"),
        (int(CA[1:]), "api"),
        (int(US[1:]), "api"),
    ]


# Wildcard sender


def test_wildcard_opt_out_applies_to_every_sender(client: Client) -> None:
    client.add("*", [US])
    for sender in (SENDER, OTHER_SENDER, "12345", "*"):
        assert [r.opted_out for r in client.check(sender, [US, CA])] == [True, False]


def test_pair_specific_remove_does_not_hide_a_wildcard_opt_out(client: Client) -> None:
    client.add("*", [US])
    client.add(SENDER, [US])
    client.remove(SENDER, [US])
    assert client.check(SENDER, [US])[0].opted_out is True
    client.remove("*", [US])
    assert client.check(SENDER, [US])[0].opted_out is False


def test_wildcard_records_are_listed_under_the_wildcard_sender(client: Client) -> None:
    client.add("*", [US])
    client.add(SENDER, [CA])
    assert [(r.sender, r.recipient) for r in client.list(sender="*")] == [("*", US)]


# Country


def test_country_is_stored_per_recipient_and_shown_on_records(
    client: Client, database: str
) -> None:
    client.add(SENDER, [US, CA, GB])
    assert {r.recipient: r.country for r in client.list()} == {US: "US", CA: "CA", GB: "GB"}
    assert sorted(query(database, "SELECT recipient, country FROM optouts")) == [
        (int(US[1:]), "US"),
        (int(CA[1:]), "CA"),
        (int(GB[1:]), "GB"),
    ]


def test_country_of_a_canadian_number_is_not_poisoned_by_an_unplaceable_one(
    client: Client,
) -> None:
    """An unassigned exchange must not decide the country of its whole area code."""
    # +1 867 is used by no other test, so the process-wide cache starts empty for it
    unplaceable, canadian = "+18670000000", "+18676671234"
    client.add(SENDER, [unplaceable])
    client.add(SENDER, [canadian])
    assert {r.recipient: r.country for r in client.list()}[canadian] == "CA"


# Paging


@pytest.fixture
def populated(client: Client) -> list[OptOut]:
    """Three senders with a mix of opt-outs and opt-ins; every record, in list order."""
    for index, sender in enumerate((SENDER, OTHER_SENDER, "*")):
        recipients = numbers(5_550_000 + index * 100, 40)
        client.add(sender, recipients)
        client.remove(sender, recipients[::3])
    return list(client.list(status="all"))


def collect_pages(
    client: Client, page_size: int, cursor: str | None = None, **filters: Any
) -> list[OptOut]:
    """Every record from ``cursor`` on, one list_page call after another."""
    records: list[OptOut] = []
    while True:
        page = client.list_page(page_size=page_size, cursor=cursor, **filters)
        assert len(page.items) <= page_size
        records.extend(page.items)
        if page.next_cursor is None:
            return records
        cursor = page.next_cursor


@pytest.mark.parametrize("page_size", [1, 7, 40, 119, 120, 121, 10_000])
def test_pages_return_every_record_once_in_a_stable_order(
    client: Client, populated: list[OptOut], page_size: int
) -> None:
    paged = collect_pages(client, page_size, status="all")
    assert len(populated) == 120
    assert paged == populated
    assert len({(r.sender, r.recipient) for r in paged}) == 120


def test_records_added_while_paging_are_neither_duplicated_nor_lost(
    client: Client, populated: list[OptOut]
) -> None:
    first = client.list_page(status="all", page_size=50)
    assert first.next_cursor is not None
    (before_cursor,) = numbers(5_549_000, 1)  # sorts before every record already seen
    (after_cursor,) = numbers(5_560_000, 1)  # sorts after every record
    client.add(SENDER, [before_cursor])
    client.add("*", [after_cursor])
    rest = collect_pages(client, 50, cursor=first.next_cursor, status="all")
    keys = [(r.sender, r.recipient) for r in (*first.items, *rest)]
    assert len(keys) == len(set(keys))
    assert keys == [(r.sender, r.recipient) for r in populated] + [("*", after_cursor)]


def test_records_are_ordered_by_sender_then_recipient(populated: list[OptOut]) -> None:
    senders = [r.sender for r in populated]
    assert senders == [SENDER] * 40 + [OTHER_SENDER] * 40 + ["*"] * 40
    for start in (0, 40, 80):
        recipients = [int(r.recipient[1:]) for r in populated[start : start + 40]]
        assert recipients == sorted(recipients)


def test_last_page_has_no_cursor(client: Client, populated: list[OptOut]) -> None:
    page = client.list_page(status="all", page_size=len(populated))
    assert len(page.items) == len(populated)
    assert page.next_cursor is None


def test_status_filter(client: Client, populated: list[OptOut]) -> None:
    out = collect_pages(client, 9, status="opted-out")
    opted_in = collect_pages(client, 9, status=Status.OPTED_IN)
    assert len(out) == 3 * 26
    assert len(opted_in) == 3 * 14
    assert all(r.status is Status.OPTED_OUT for r in out)
    assert all(r.status is Status.OPTED_IN for r in opted_in)
    assert sorted(out + opted_in, key=populated.index) == populated
    assert list(client.list()) == out  # the default is opted-out


def test_sender_filter(client: Client, populated: list[OptOut]) -> None:
    mine = collect_pages(client, 6, sender=OTHER_SENDER, status="all")
    assert mine == [r for r in populated if r.sender == OTHER_SENDER]


def test_unknown_sender_lists_nothing(client: Client, populated: list[OptOut]) -> None:
    page = client.list_page(sender="+18005550199", status="all")
    assert page.items == ()
    assert page.next_cursor is None
    assert list(client.list(sender="+18005550199", status="all")) == []


def test_empty_ledger_lists_nothing(client: Client) -> None:
    page = client.list_page(status="all")
    assert (page.items, page.next_cursor) == ((), None)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "l1:1:2",  # the right content, but not encoded
        "bDE6eDoy",  # base64 of "l1:x:2"
        "eHg6MToy",  # base64 of "xx:1:2"
        "bDE6MToyOjM",  # base64 of "l1:1:2:3"
        "//79",  # base64 of bytes that are not UTF-8
    ],
)
def test_garbled_cursor_raises_invalid_cursor(
    client: Client, populated: list[OptOut], cursor: str
) -> None:
    with pytest.raises(InvalidCursor):
        client.list_page(status="all", cursor=cursor)


def test_cursor_with_an_out_of_range_number_raises_invalid_cursor(
    client: Client, populated: list[OptOut]
) -> None:
    """A well-formed cursor whose numbers SQLite cannot hold is still just invalid."""
    cursor = base64.urlsafe_b64encode(f"l1:1:{10**30}".encode()).decode().rstrip("=")
    with pytest.raises(InvalidCursor):
        client.list_page(status="all", cursor=cursor)


@pytest.mark.parametrize("page_size", [0, -1, 10_001])
def test_page_size_out_of_range_raises_value_error(client: Client, page_size: int) -> None:
    assert client.provider.max_page_size == 10_000
    with pytest.raises(ValueError, match="page_size"):
        client.list_page(page_size=page_size)


def test_list_rejects_page_size_zero_like_list_page(client: Client) -> None:
    """0 is not taken to mean "the default page size"."""
    with pytest.raises(ValueError, match="page_size"):
        client.list(page_size=0)


# Concurrency

_WORKER = """
import optouts
barrier.wait()
with optouts.Client("local", database=database) as client:
    for chunk in chunks:
        result = client.add(sender, chunk)
        if not result.ok:
            raise SystemExit(f"failed: {result.failed[0]}")
"""
"""Run by exec in a spawned process, so it needs no importable test module."""


def test_two_processes_adding_at_once_lose_nothing(database: str) -> None:
    """Both processes also create the (fresh) ledger file at the same moment."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    expected: set[tuple[str, int]] = set()
    workers = []
    for index in range(2):
        recipients = numbers(2_000_000 + index * 1_000_000, 3_000)
        expected.update((SENDER, int(r[1:])) for r in recipients)
        chunks = [recipients[i : i + 250] for i in range(0, len(recipients), 250)]
        scope = {"database": database, "barrier": barrier, "chunks": chunks, "sender": SENDER}
        workers.append(context.Process(target=exec, args=(_WORKER, scope)))
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert [worker.exitcode for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join()

    stored = query(
        database,
        "SELECT s.sender, o.recipient, o.opted_out FROM optouts AS o "
        "JOIN senders AS s ON s.id = o.sender_id",
    )
    assert {(sender, recipient) for sender, recipient, _ in stored} == expected
    assert {state for *_, state in stored} == {1}
    logged = [(row[0], row[1]) for row in history(database)]
    assert len(logged) == len(expected) == 6_000
    assert set(logged) == expected


def test_opening_a_fresh_ledger_waits_for_another_writer(database: str) -> None:
    """Switching a fresh file to WAL waits out another writer's lock (busy_timeout).

    SQLite does not call the busy handler for a journal mode change; without the ledger's
    own wait this fails at once with "database is locked", and two processes creating one
    ledger together failed that way about one run in ten.
    """
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other_app (x)")
    release = threading.Timer(0.3, holder.execute, ("COMMIT",))
    release.start()
    try:
        store = SQLiteLedger(database, busy_timeout=10)
        store.open(write=True)
        store.close()
    finally:
        release.join()
        holder.close()
    assert query(database, "PRAGMA journal_mode") == [("wal",)]


async def test_async_client_gathers_concurrent_adds_and_checks(database: str) -> None:
    groups = [numbers(3_000_000 + g * 1_000, 500) for g in range(6)]
    async with AsyncClient("local", database=database) as client:
        added = await asyncio.gather(*(client.add(SENDER, group) for group in groups))
        assert [[r.recipient for r in result] for result in added] == groups
        assert all(result.ok for result in added)

        removes = groups[::2]
        checks = await asyncio.gather(
            *(client.remove(SENDER, group) for group in removes),
            *(client.check(SENDER, group) for group in groups[1::2]),
            client.check(OTHER_SENDER, groups[1]),
        )
        for result in checks[len(removes) : -1]:
            assert [r.opted_out for r in result] == [True] * 500
        assert [r.opted_out for r in checks[-1]] == [False] * 500

        final = await asyncio.gather(*(client.check(SENDER, group) for group in groups))
        assert [{r.opted_out for r in result} for result in final] == [{False}, {True}] * 3
        listed = [record async for record in client.list(page_size=700)]
    assert len(listed) == 1_500
    assert len(history(database)) == 3_000 + 1_500


# Bulk


def test_fifty_thousand_recipients_in_one_call(client: Client, database: str) -> None:
    recipients = numbers(1_000_000, 50_000)
    shuffled = [recipients[(i * 7_919) % 50_000] for i in range(50_000)]
    assert len(set(shuffled)) == 50_000
    result = client.add(SENDER, shuffled)
    assert len(result) == 50_000
    assert result.ok
    assert [r.recipient for r in result] == shuffled
    assert {r.opted_out for r in result} == {True}
    assert query(database, "SELECT count(*) FROM optouts") == [(50_000,)]
    assert query(database, "SELECT count(*) FROM history") == [(50_000,)]
    checked = client.check(SENDER, shuffled[:1_000] + numbers(9_000_000, 10))
    assert [r.opted_out for r in checked] == [True] * 1_000 + [False] * 10


def test_apply_all_stops_at_a_failed_write_and_keeps_what_was_committed(database: str) -> None:
    from optouts.ledger import Change

    store = SQLiteLedger(database)
    merge = store._merge
    calls: list[int] = []

    def failing_second(batch: Any) -> int:
        calls.append(1)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return merge(batch)

    store._merge = failing_second  # type: ignore[method-assign]
    batches = [[Change("+18005550100", 12025550100 + n, True, "csv", 1, "US")] for n in range(4)]
    counts = store.apply_all(iter(batches))
    assert next(counts) == 1
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        next(counts)
    store._merge = merge  # type: ignore[method-assign]
    held = store.held("+18005550100", [12025550100 + n for n in range(4)])
    assert set(held) == {12025550100}  # the first batch only: nothing after the failure
    assert len(calls) == 2
    store.close()
