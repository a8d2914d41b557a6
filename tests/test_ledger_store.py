"""The ``LedgerStore`` contract, run against every backend: SQLite and PostgreSQL.

The PostgreSQL runs use ``OPTOUTS_TEST_POSTGRESQL_URL`` (a database the tests may create
schemas in), each test in a fresh schema dropped afterwards. Without a reachable server
they skip, saying so, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from optouts import Client
from optouts.ledger import Change, Ledger, LedgerStore, SQLiteLedger
from optouts.ledger._base import Held, iso_utc, takes
from optouts.ledger._columns import ChangeColumns
from optouts.ledger._open import open_store
from pgserver import fresh_schema

SENDER = "+18005550100"
OTHER = "+18005550111"
US_1, US_2, US_3, US_4 = 12025550101, 12025550102, 12025550103, 12025550104
GB_1 = 442079460000


@attrs.define
class Backend:
    name: str
    store: LedgerStore
    query: Callable[[str], list[tuple[Any, ...]]]
    """Rows of a SQL statement run on a separate connection, as an auditor would."""
    database: str
    """The ``database`` setting that opens this ledger from another process."""


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = str(tmp_path / "ledger.db")

        def query_sqlite(sql: str) -> list[tuple[Any, ...]]:
            with contextlib.closing(sqlite3.connect(path)) as db:
                return db.execute(sql).fetchall()

        sqlite_store = SQLiteLedger(path)
        sqlite_store.open(write=True)  # the tests read first: reads need a ledger
        try:
            yield Backend("sqlite", sqlite_store, query_sqlite, path)
        finally:
            sqlite_store.close()
        return

    with fresh_schema() as (url, _):
        import psycopg

        def query_postgresql(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(url, autocommit=True) as db:
                return db.execute(sql).fetchall()

        store = open_store(url)
        store.open(write=True)
        try:
            yield Backend("postgresql", store, query_postgresql, url)
        finally:
            store.close()


@pytest.fixture
def store(backend: Backend) -> LedgerStore:
    return backend.store


def history_count(backend: Backend) -> int:
    return int(backend.query("SELECT count(*) FROM history")[0][0])


def states(store: LedgerStore) -> dict[tuple[str, int], tuple[int, str, int]]:
    """(sender, recipient) -> (opted_out, source, updated_at) of every pair."""
    rows = store.page(sender=None, opted_out=None, after=None, limit=10_000)
    return {(row[0], row[1]): (row[2], row[4], row[5]) for row in rows}


# set_state, opted_out, page


def test_set_state_round_trips_through_page_and_opted_out(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_2, US_1], "GB": [GB_1]}, opted_out=True, source="api", at=10)
    store.set_state(SENDER, {"US": [US_3]}, opted_out=False, source="csv", at=20)
    rows = store.page(sender=None, opted_out=None, after=None, limit=100)
    sender_id = rows[0][6]
    assert rows == [
        (SENDER, US_1, 1, "US", "api", 10, sender_id),
        (SENDER, US_2, 1, "US", "api", 10, sender_id),
        (SENDER, US_3, 0, "US", "csv", 20, sender_id),
        (SENDER, GB_1, 1, "GB", "api", 10, sender_id),
    ]
    assert store.opted_out([SENDER], [US_1, US_2, US_3, US_4, GB_1]) == {US_1, US_2, GB_1}
    assert store.opted_out([OTHER], [US_1]) == set()
    assert store.opted_out([], [US_1]) == set()
    assert store.opted_out([SENDER], []) == set()


def test_opted_out_of_any_of_several_senders(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=1)
    store.set_state("*", {"US": [US_2]}, opted_out=True, source="api", at=1)
    store.set_state(OTHER, {"US": [US_3]}, opted_out=True, source="api", at=1)
    assert store.opted_out([SENDER, "*"], [US_1, US_2, US_3, US_4]) == {US_1, US_2}
    assert store.opted_out(["+18005550199", "*"], [US_1, US_2]) == {US_2}


def test_duplicate_recipients_in_one_call_are_one_pair(
    backend: Backend, store: LedgerStore
) -> None:
    store.set_state(SENDER, {"US": [US_1, US_1, US_2]}, opted_out=True, source="api", at=1)
    assert store.opted_out([SENDER], [US_1, US_1, US_2]) == {US_1, US_2}
    assert len(store.page(sender=None, opted_out=None, after=None, limit=10)) == 2
    assert history_count(backend) == 2


def test_set_state_changes_only_pairs_whose_state_differs(
    backend: Backend, store: LedgerStore
) -> None:
    store.set_state(SENDER, {"US": [US_1, US_2]}, opted_out=True, source="api", at=10)
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="csv", at=20)
    store.set_state(SENDER, {"US": [US_2]}, opted_out=False, source="csv", at=30)
    assert states(store) == {(SENDER, US_1): (1, "api", 10), (SENDER, US_2): (0, "csv", 30)}
    assert history_count(backend) == 3
    # creation time and country stay those of the first insert
    (current,) = store.audit(US_2).current
    assert current == (SENDER, False, "US", "csv", 10, 30)


_FLIP_FLOP = """
import sys
import optouts

with optouts.Client("local", database=sys.argv[1], source=sys.argv[2]) as client:
    for _ in range(int(sys.argv[3])):
        client.add("+18005550100", ["+12025550101", "+12025550102"])
        client.remove("+18005550100", ["+12025550101"])
"""


def test_history_never_goes_backwards_when_two_processes_write(backend: Backend) -> None:
    """Each add/remove reads its time inside the write transaction, not before waiting."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _FLIP_FLOP, backend.database, name, "150"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors
    rows = backend.query("SELECT recipient, at FROM history ORDER BY id")
    assert len(rows) > 150
    for recipient in (US_1, US_2):
        times = [at for who, at in rows if who == recipient]
        assert times == sorted(times), f"history of {recipient} goes backwards"
    if backend.name == "sqlite":  # one writer at a time: the whole history is in order
        assert [at for _, at in rows] == sorted(at for _, at in rows)


@contextlib.contextmanager
def another_writer(backend: Backend) -> Iterator[Callable[[str], None]]:
    """A second connection holding the write lock (SQLite) or the pair's row lock (PostgreSQL)
    until the block ends; the callable runs SQL in its transaction, which then commits."""
    if backend.name == "sqlite":
        with contextlib.closing(sqlite3.connect(backend.database, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")

            def run_sqlite(sql: str) -> None:
                db.execute(sql)

            yield run_sqlite
            db.execute("COMMIT")
        return
    import psycopg

    with psycopg.connect(backend.database) as pg:
        pg.execute(f"SELECT 1 FROM optouts WHERE recipient = {US_1} FOR UPDATE")

        def run_postgresql(sql: str) -> None:
            pg.execute(sql.encode())  # bytes: psycopg's type for a query built at run time

        yield run_postgresql
        pg.commit()


def test_an_add_waiting_for_another_writer_is_timed_after_it(backend: Backend) -> None:
    """The time of an add or remove is read once it may write: never before another's."""
    backend.store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="csv", at=1_000)
    with Ledger(backend.store).client() as client:
        with ThreadPoolExecutor(1) as pool, another_writer(backend) as execute:
            removed = pool.submit(client.remove, SENDER, ["+12025550101"])
            time.sleep(0.3)  # the remove is waiting for the lock by now
            assert not removed.done()
            later = time.time_ns() // 1000 + 1_000_000
            execute(f"UPDATE optouts SET updated_at = {later} WHERE recipient = {US_1}")
        assert removed.result(timeout=30).ok
    rows = backend.query(f"SELECT at, opted_out FROM history WHERE recipient = {US_1} ORDER BY id")
    assert [state for _, state in rows] == [1, 1, 0]
    times = [at for at, _ in rows]
    assert times == sorted(times), "the remove was timed before the write it waited for"


def test_pages_walk_every_pair_once_in_key_order(store: LedgerStore) -> None:
    for offset, sender in enumerate([SENDER, OTHER, "*"]):
        recipients = [US_1 + offset * 100 + i for i in range(7)]
        store.set_state(sender, {"US": recipients}, opted_out=True, source="api", at=1)
    store.set_state(OTHER, {"US": [US_1 + 100]}, opted_out=False, source="api", at=2)
    everything = store.page(sender=None, opted_out=None, after=None, limit=1_000)
    assert len(everything) == 21
    keys = [(row[6], row[1]) for row in everything]
    assert keys == sorted(keys)
    walked: list[tuple[Any, ...]] = []
    after: tuple[int, int] | None = None
    while True:
        rows = store.page(sender=None, opted_out=None, after=after, limit=4)
        if not rows:
            break
        assert len(rows) <= 4
        walked.extend(rows)
        after = (rows[-1][6], rows[-1][1])
    assert walked == everything


def test_page_filters_by_sender_and_state(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1, US_2]}, opted_out=True, source="api", at=1)
    store.set_state(SENDER, {"US": [US_3]}, opted_out=False, source="api", at=1)
    store.set_state(OTHER, {"US": [US_4]}, opted_out=True, source="api", at=1)
    by_sender = store.page(sender=SENDER, opted_out=None, after=None, limit=10)
    assert [row[1] for row in by_sender] == [US_1, US_2, US_3]
    outs = store.page(sender=SENDER, opted_out=True, after=None, limit=10)
    assert [row[1] for row in outs] == [US_1, US_2]
    ins = store.page(sender=None, opted_out=False, after=None, limit=10)
    assert [row[1] for row in ins] == [US_3]
    after_first = store.page(sender=SENDER, opted_out=True, after=(outs[0][6], US_1), limit=10)
    assert [row[1] for row in after_first] == [US_2]
    assert store.page(sender="+18005550199", opted_out=None, after=None, limit=10) == []


def test_empty_ledger_pages_nothing(store: LedgerStore) -> None:
    assert store.page(sender=None, opted_out=None, after=None, limit=10) == []
    assert store.pending("azure", after=None, limit=10) == []


# apply


def out(recipient: int, at: int, source: str = "rc", *, dated: bool = True) -> Change:
    return Change(SENDER, recipient, True, source, at, "US", dated)


def in_(recipient: int, at: int, source: str = "rc", *, dated: bool = True) -> Change:
    return Change(SENDER, recipient, False, source, at, "US", dated)


def test_apply_inserts_new_pairs_and_counts_them(backend: Backend, store: LedgerStore) -> None:
    applied = store.apply([out(US_1, 10), in_(US_2, 10, dated=False), out(GB_1, 5, "csv")])
    assert applied == 3
    assert states(store) == {
        (SENDER, US_1): (1, "rc", 10),
        (SENDER, US_2): (0, "rc", 10),
        (SENDER, GB_1): (1, "csv", 5),
    }
    assert history_count(backend) == 3
    assert store.apply([]) == 0


def test_apply_newer_wins_in_both_directions(backend: Backend, store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=100)
    store.set_state(SENDER, {"US": [US_2]}, opted_out=False, source="api", at=100)
    assert store.apply([in_(US_1, 200), out(US_2, 200)]) == 2
    assert states(store) == {(SENDER, US_1): (0, "rc", 200), (SENDER, US_2): (1, "rc", 200)}
    # older changes lose, whichever way they point
    assert store.apply([out(US_1, 150, "csv"), in_(US_2, 150, "csv")]) == 0
    assert states(store) == {(SENDER, US_1): (0, "rc", 200), (SENDER, US_2): (1, "rc", 200)}
    assert history_count(backend) == 4


def test_apply_at_an_equal_time_an_opt_out_wins(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1, US_3]}, opted_out=True, source="api", at=100)
    store.set_state(SENDER, {"US": [US_2]}, opted_out=False, source="api", at=100)
    # an opt-in no newer than the opt-out loses; an opt-out as old as the opt-in wins
    assert store.apply([in_(US_1, 100), out(US_2, 100), out(US_3, 100)]) == 1
    assert states(store) == {
        (SENDER, US_1): (1, "api", 100),
        (SENDER, US_2): (1, "rc", 100),
        (SENDER, US_3): (1, "api", 100),  # already opted out
    }


def test_a_newer_dated_opt_out_of_a_held_opt_out_is_a_new_receipt(
    backend: Backend, store: LedgerStore
) -> None:
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=100)
    assert store.apply([out(US_1, 500)]) == 1
    assert states(store) == {(SENDER, US_1): (1, "rc", 500)}
    assert history_count(backend) == 2
    # the same report again, an older one, or an undated one change nothing
    assert store.apply([out(US_1, 500), out(US_1, 300), out(US_1, 900, dated=False)]) == 0
    assert history_count(backend) == 2


def test_an_opt_in_older_than_the_latest_stop_loses(store: LedgerStore) -> None:
    store.apply([out(US_1, 100, "ringcentral")])
    store.apply([out(US_1, 300, "inbound:azure")])
    assert store.apply([in_(US_1, 200, "ringcentral")]) == 0
    assert states(store) == {(SENDER, US_1): (1, "inbound:azure", 300)}


def test_the_state_already_held_changes_nothing_when_not_newer(
    backend: Backend, store: LedgerStore
) -> None:
    store.set_state(SENDER, {"US": [US_1]}, opted_out=False, source="api", at=100)
    assert store.apply([in_(US_1, 500)]) == 0
    assert states(store) == {(SENDER, US_1): (0, "api", 100)}
    assert history_count(backend) == 1


def test_undated_opt_in_does_not_override_another_sources_opt_out(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=100)
    assert store.apply([in_(US_1, 200, "csv", dated=False)]) == 0
    assert states(store) == {(SENDER, US_1): (1, "api", 100)}
    # a dated one from that source does
    assert store.apply([in_(US_1, 200, "csv")]) == 1
    assert states(store) == {(SENDER, US_1): (0, "csv", 200)}


def test_undated_opt_in_overrides_the_same_sources_opt_out(store: LedgerStore) -> None:
    store.apply([out(US_1, 100, "csv")])
    assert store.apply([in_(US_1, 200, "csv", dated=False)]) == 1
    assert states(store) == {(SENDER, US_1): (0, "csv", 200)}


def test_undated_opt_out_overrides_an_older_opt_in(store: LedgerStore) -> None:
    store.apply([in_(US_1, 100, "api")])
    assert store.apply([out(US_1, 200, "csv", dated=False)]) == 1
    assert states(store) == {(SENDER, US_1): (1, "csv", 200)}


def test_apply_writes_one_history_row_per_applied_change(
    backend: Backend, store: LedgerStore
) -> None:
    store.set_state(SENDER, {"US": [US_1, US_2, US_3]}, opted_out=True, source="api", at=100)
    changes = [
        in_(US_1, 200),  # applied
        in_(US_2, 50),  # older: skipped
        in_(US_3, 200, "csv", dated=False),  # undated opt-in over api's opt-out: skipped
        out(US_4, 300),  # new: applied
    ]
    assert store.apply(changes) == 2
    assert history_count(backend) == 3 + 2
    assert [h[1:] for h in store.audit(US_1).history] == [(True, "api", 100), (False, "rc", 200)]
    assert [h[1:] for h in store.audit(US_2).history] == [(True, "api", 100)]
    assert [h[1:] for h in store.audit(US_4).history] == [(True, "rc", 300)]


def test_several_changes_of_one_pair_apply_in_the_order_given(
    backend: Backend, store: LedgerStore
) -> None:
    changes = [
        out(US_1, 10),
        in_(US_2, 30),
        in_(US_1, 20),
        out(US_2, 20),  # older than the opt-in just applied: skipped
        out(US_1, 30),
    ]
    assert store.apply(changes) == 4
    assert states(store) == {(SENDER, US_1): (1, "rc", 30), (SENDER, US_2): (0, "rc", 30)}
    assert [(h[1], h[3]) for h in store.audit(US_1).history] == [
        (True, 10),
        (False, 20),
        (True, 30),
    ]
    assert history_count(backend) == 4


def test_dated_changes_of_a_batch_go_before_undated_ones(store: LedgerStore) -> None:
    """An undated opt-in cannot slip in ahead of another source's dated opt-out."""
    assert store.apply([in_(US_1, 20, "csv", dated=False), out(US_1, 10)]) == 1
    assert states(store) == {(SENDER, US_1): (1, "rc", 10)}


def test_apply_creates_senders_and_keeps_them_apart(store: LedgerStore) -> None:
    changes = [Change(s, US_1, True, "rc", 10) for s in (SENDER, OTHER, "*")]
    assert store.apply(changes) == 3
    assert store.opted_out([OTHER], [US_1]) == {US_1}
    assert {row[0] for row in store.page(sender=None, opted_out=True, after=None, limit=9)} == {
        SENDER,
        OTHER,
        "*",
    }


# pending and confirm


def test_never_confirmed_opt_outs_are_pending_and_opt_ins_are_not(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_2, US_1]}, opted_out=True, source="api", at=1)
    store.set_state(SENDER, {"US": [US_3]}, opted_out=False, source="api", at=1)
    pending = store.pending("azure", after=None, limit=10)
    sender_id = pending[0][0]
    assert pending == [(sender_id, SENDER, US_1, 1), (sender_id, SENDER, US_2, 1)]


def test_a_confirmed_state_is_not_pending_until_it_changes(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1, US_2]}, opted_out=True, source="api", at=1)
    store.confirm("azure", SENDER, [US_1, US_2], opted_out=True, at=5)
    assert store.pending("azure", after=None, limit=10) == []
    # another target has confirmed nothing
    assert [row[2] for row in store.pending("ringcentral", after=None, limit=10)] == [US_1, US_2]

    store.set_state(SENDER, {"US": [US_1]}, opted_out=False, source="api", at=10)
    assert [row[2:] for row in store.pending("azure", after=None, limit=10)] == [(US_1, 0)]
    store.confirm("azure", SENDER, [US_1], opted_out=False, at=11)
    assert store.pending("azure", after=None, limit=10) == []

    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=20)
    assert [row[2:] for row in store.pending("azure", after=None, limit=10)] == [(US_1, 1)]


def test_confirming_a_different_state_leaves_the_pair_pending(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=1)
    store.confirm("azure", SENDER, [US_1], opted_out=False, at=2)
    assert [row[2:] for row in store.pending("azure", after=None, limit=10)] == [(US_1, 1)]


def test_pending_pages_in_key_order_after_a_key(store: LedgerStore) -> None:
    store.set_state(OTHER, {"US": [US_3, US_1]}, opted_out=True, source="api", at=1)
    store.set_state(SENDER, {"US": [US_2, US_4]}, opted_out=True, source="api", at=1)
    everything = store.pending("azure", after=None, limit=10)
    keys = [(row[0], row[2]) for row in everything]
    assert keys == sorted(keys)
    assert len(keys) == 4
    walked: list[tuple[int, str, int, int]] = []
    after: tuple[int, int] | None = None
    while page := store.pending("azure", after=after, limit=3):
        walked.extend(page)
        after = (page[-1][0], page[-1][2])
    assert walked == everything
    assert store.pending("azure", after=keys[1], limit=10) == everything[2:]


def test_confirm_of_a_duplicate_or_unknown_pair_is_harmless(store: LedgerStore) -> None:
    store.confirm("azure", SENDER, [US_1, US_1], opted_out=True, at=1)
    store.confirm("azure", SENDER, [], opted_out=True, at=1)
    assert store.pending("azure", after=None, limit=10) == []
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=2)
    assert store.pending("azure", after=None, limit=10) == []


# sync checkpoints


def test_get_and_put_state(store: LedgerStore) -> None:
    assert store.get_state("sync:rc->azure") is None
    store.put_state("sync:rc->azure", "cursor-1")
    store.put_state("other", "x")
    assert store.get_state("sync:rc->azure") == "cursor-1"
    store.put_state("sync:rc->azure", "cursor-2")
    assert store.get_state("sync:rc->azure") == "cursor-2"
    store.put_state("sync:rc->azure", None)
    assert store.get_state("sync:rc->azure") is None
    store.put_state("never-set", None)
    assert store.get_state("other") == "x"


# audit


def test_audit_shows_current_state_history_and_confirmations(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=10)
    store.set_state("*", {"US": [US_1]}, opted_out=True, source="csv", at=15)
    store.apply([in_(US_1, 20)])
    store.apply([out(US_1, 30, "csv")])
    store.set_state(SENDER, {"US": [US_2]}, opted_out=True, source="api", at=40)
    store.confirm("ringcentral", SENDER, [US_1], opted_out=True, at=35)
    store.confirm("azure", SENDER, [US_1], opted_out=True, at=36)
    store.confirm("azure", "*", [US_1], opted_out=True, at=37)

    trail = store.audit(US_1)
    assert list(trail.current) == [
        ("*", True, "US", "csv", 15, 15),
        (SENDER, True, "US", "csv", 10, 30),
    ]
    assert list(trail.history) == [
        (SENDER, True, "api", 10),
        ("*", True, "csv", 15),
        (SENDER, False, "rc", 20),
        (SENDER, True, "csv", 30),
    ]
    assert list(trail.confirmations) == [
        ("*", "azure", True, 37),
        (SENDER, "azure", True, 36),
        (SENDER, "ringcentral", True, 35),
    ]


def test_audit_of_an_unknown_recipient_is_empty(store: LedgerStore) -> None:
    trail = store.audit(US_4)
    assert (list(trail.current), list(trail.history), list(trail.confirmations)) == ([], [], [])


def test_location_names_the_database(backend: Backend) -> None:
    if backend.name == "sqlite":
        assert backend.store.location.endswith("ledger.db")
    else:
        assert backend.store.location.startswith(("postgresql://", "postgres://"))


def test_readable_views_show_e164_words_and_iso_times(backend: Backend) -> None:
    slack = timedelta(milliseconds=1)  # the views show milliseconds, rounded
    before = datetime.now(timezone.utc) - slack
    client = Ledger(backend.store).client()
    client.add(SENDER, ["+12025550101"])
    client.remove(SENDER, ["+12025550101"])
    client.add(SENDER, ["+442079460000"])
    after = datetime.now(timezone.utc) + slack

    def moment(text: str) -> datetime:
        assert text.endswith("Z")
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    rows = backend.query(
        "SELECT sender, recipient, action, source, at FROM history_readable ORDER BY id"
    )
    assert [tuple(row[:4]) for row in rows] == [
        (SENDER, "+12025550101", "opt-out", "api"),
        (SENDER, "+12025550101", "opt-in", "api"),
        (SENDER, "+442079460000", "opt-out", "api"),
    ]
    assert all(before <= moment(row[4]) <= after for row in rows)
    current = backend.query(
        "SELECT sender, recipient, status, country, source, created_at, updated_at "
        "FROM optouts_readable ORDER BY recipient"
    )
    assert [tuple(row[:5]) for row in current] == [
        (SENDER, "+12025550101", "opted-in", "US", "api"),
        (SENDER, "+442079460000", "opted-out", "GB", "api"),
    ]
    assert all(before <= moment(row[5]) <= moment(row[6]) <= after for row in current)


def test_changes_of_one_pair_in_one_batch_at_one_time_end_opted_out(store: LedgerStore) -> None:
    # equal times: an opt-out wins the tie, whichever line of a file comes first
    assert store.apply([out(US_1, 100), in_(US_1, 100), in_(US_2, 100), out(US_2, 100)]) == 3
    assert states(store) == {(SENDER, US_1): (1, "rc", 100), (SENDER, US_2): (1, "rc", 100)}
    many = [in_(US_3, 100, dated=False) if n % 2 else out(US_3, 100, dated=False) for n in range(9)]
    store.apply(many)
    assert states(store)[(SENDER, US_3)][0] == 1


def test_apply_all_equals_applying_each_batch_in_turn(backend: Backend, store: LedgerStore) -> None:
    batches = [
        [out(US_1, 100), out(US_2, 100)],
        [],
        [in_(US_1, 200), out(US_2, 50)],  # the older opt-out of US_2 changes nothing
        [out(US_3, 300, dated=False), in_(US_1, 400, "csv", dated=False)],
    ]
    assert list(store.apply_all(iter(batches))) == [2, 0, 1, 1]
    assert states(store) == {
        (SENDER, US_1): (0, "rc", 200),  # the undated opt-in repeats the state held
        (SENDER, US_2): (1, "rc", 100),
        (SENDER, US_3): (1, "rc", 300),
    }
    assert history_count(backend) == 4


def test_apply_all_keeps_the_batches_before_a_failure(store: LedgerStore) -> None:
    def batches() -> Iterator[list[Change]]:
        yield [out(US_1, 100)]
        yield [out(US_2, 100)]
        raise RuntimeError("the input broke")

    counts = store.apply_all(batches())
    with pytest.raises(RuntimeError, match="input broke"):
        list(counts)
    assert set(states(store)) == {(SENDER, US_1), (SENDER, US_2)}


# text pages (exports)

EDGE_TIMES = [0, 1, 999_999, 1_000_000, -1, -1_000_001, 1_767_225_600_123_456, 253402300799999999]


def test_text_pages_format_times_exactly_as_iso_utc(store: LedgerStore) -> None:
    for n, at in enumerate(EDGE_TIMES):
        store.apply([Change(SENDER, US_1 + n, n % 2 == 0, f"src{n}", at, "US")])
    pages = list(store.text_pages(sender=None, opted_out=None, size=3))
    assert [len(page) for page in pages] == [3, 3, 2]
    rows = [row for page in pages for row in page]
    assert rows == [
        (SENDER, f"+{US_1 + n}", "opted-out" if n % 2 == 0 else "opted-in", f"src{n}", iso_utc(at))
        for n, at in enumerate(EDGE_TIMES)
    ]
    assert rows[0][4] == "1970-01-01T00:00:00Z"
    assert rows[4][4] == "1969-12-31T23:59:59.999999Z"
    assert rows[7][4] == "9999-12-31T23:59:59.999999Z"


def test_text_pages_filter_by_sender_and_state(store: LedgerStore) -> None:
    store.set_state(SENDER, {"US": [US_1, US_2]}, opted_out=True, source="api", at=1)
    store.set_state(SENDER, {"US": [US_3]}, opted_out=False, source="api", at=1)
    store.set_state(OTHER, {"US": [US_4]}, opted_out=True, source="api", at=1)

    def recipients(**kwargs: Any) -> list[str]:
        return [row[1] for page in store.text_pages(size=2, **kwargs) for row in page]

    assert recipients(sender=SENDER, opted_out=None) == [f"+{US_1}", f"+{US_2}", f"+{US_3}"]
    assert recipients(sender=None, opted_out=True) == [f"+{US_1}", f"+{US_2}", f"+{US_4}"]
    assert recipients(sender=OTHER, opted_out=False) == []
    assert recipients(sender="+18005550199", opted_out=None) == []


# the merge rule in Python (for plans) against the stores' SQL


def simulate(state: dict[int, Held], changes: list[Change]) -> int:
    """What ``apply`` does, by ``takes``: dated changes first, then undated, in input order."""
    taken = 0
    for change in [c for c in changes if c.dated] + [c for c in changes if not c.dated]:
        if takes(state.get(change.recipient), change):
            state[change.recipient] = (int(change.opted_out), change.source, change.at)
            taken += 1
    return taken


def test_takes_predicts_every_apply(store: LedgerStore) -> None:
    rng = random.Random(6)
    for case in range(150):
        sender = f"+1800555{case:04d}"
        expected: dict[int, Held] = {}
        for _ in range(rng.randint(1, 4)):
            batch = [
                Change(
                    sender,
                    US_1 + rng.randrange(3),
                    rng.random() < 0.5,
                    rng.choice(["a", "b"]),
                    rng.randrange(4) * 10,
                    "US",
                    rng.random() < 0.6,
                )
                for _ in range(rng.randint(1, 5))
            ]
            assert store.apply(batch) == simulate(expected, batch), (case, batch)
            assert store.held(sender, [US_1, US_1 + 1, US_1 + 2, US_4]) == expected, case


def test_a_batch_held_by_columns_applies_as_its_changes_do(store: LedgerStore) -> None:
    """What an import hands over: many kinds (more than one statement fills), repeated
    pairs, dated and undated, times on either side of 1970 and the widest numbers."""
    rng = random.Random(11)
    sender = "+18005550123"
    pairs = [US_1, US_2, GB_1, 999_999_999_999_999, 100]
    expected: dict[int, Held] = {}
    for round_ in range(12):
        batch = [
            Change(
                sender,
                rng.choice(pairs),
                rng.random() < 0.5,
                f"source {rng.randrange(300)}",
                rng.choice([-62_135_596_800_000_000, -1, 0, 10**6, 253402300799999999])
                + rng.randrange(3),
                "US",
                rng.random() < 0.7,
            )
            for _ in range(rng.randint(1, 400))
        ]
        columns = ChangeColumns.of(batch)
        assert list(columns) == batch
        assert store.apply(columns) == simulate(expected, batch), round_
        assert store.held(sender, pairs) == expected, round_


def test_change_columns_read_as_the_changes_they_hold() -> None:
    changes = [
        Change(SENDER, US_1, True, "api", 5, "US"),
        Change(OTHER, GB_1, False, "csv", -7, None, False),
    ]
    columns = ChangeColumns.of(changes)
    assert len(columns) == 2
    assert columns == changes
    assert columns[1] == changes[1]
    assert type(columns[1].recipient) is int
    assert columns[1:] == changes[1:]
    assert isinstance(columns[1:], ChangeColumns)
    assert ChangeColumns.joined([columns, columns[:1]]) == changes + changes[:1]
    assert ChangeColumns.of(columns) is columns
    assert ChangeColumns.of([]) == []
    assert not ChangeColumns()


def test_confirmed_reads_what_confirm_wrote(store: LedgerStore) -> None:
    store.confirm("azure", SENDER, [US_1, US_2], opted_out=True, at=5)
    store.confirm("azure", SENDER, [US_2], opted_out=False, at=6)
    store.confirm("rc", SENDER, [US_3], opted_out=True, at=6)
    assert store.confirmed("azure", SENDER, [US_1, US_2, US_3]) == {US_1: 1, US_2: 0}
    assert store.confirmed("azure", OTHER, [US_1]) == {}
    assert store.confirmed("azure", SENDER, []) == {}


# The SQLite file is private


def test_a_new_ledger_file_and_folder_are_private_to_the_user(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "ledger.db"
    with Client("local", database=str(path)) as client:
        client.add(SENDER, ["+12025550101"])
        modes = {p.name: p.stat().st_mode & 0o777 for p in path.parent.iterdir()}
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    assert modes["ledger.db"] == 0o600
    assert modes.get("ledger.db-wal", 0o600) == 0o600  # SQLite copies the file's mode
    assert modes.get("ledger.db-shm", 0o600) == 0o600


def test_an_existing_file_and_folder_keep_their_modes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    created = SQLiteLedger(path)
    created.open(write=True)
    created.close()
    path.chmod(0o640)
    tmp_path.chmod(0o750)
    reopened = SQLiteLedger(path)
    reopened.open(write=True)
    reopened.close()
    assert (path.stat().st_mode & 0o777, tmp_path.stat().st_mode & 0o777) == (0o640, 0o750)


def test_an_audit_lists_history_oldest_first_whatever_order_it_was_written(
    store: LedgerStore,
) -> None:
    """On PostgreSQL two writers may commit in another order than they read the clock."""
    store.set_state(OTHER, {"US": [US_1]}, opted_out=True, source="api", at=200)
    store.set_state(SENDER, {"US": [US_1]}, opted_out=True, source="api", at=100)
    assert [(sender, at) for sender, _, _, at in store.audit(US_1).history] == [
        (SENDER, 100),
        (OTHER, 200),
    ]
