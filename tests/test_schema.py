"""Both databases hold the same ledger: the same tables, columns and views, in order.

A fresh SQLite ledger and a fresh PostgreSQL one are read back from their catalogs, not
from the statements that made them, and compared with each other and with ``_tables``.
The PostgreSQL half uses ``OPTOUTS_TEST_POSTGRESQL_URL`` (see ``pgserver``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from optouts.ledger import SQLiteLedger
from optouts.ledger._open import open_store
from optouts.ledger._tables import TABLES, VIEWS
from pgserver import admin_execute, fresh_schema

Shape = dict[str, list[str]]
"""Table or view name -> its column names, in order."""


def sqlite_shape(path: Path) -> tuple[Shape, Shape]:
    store = SQLiteLedger(path)
    store.open(write=True)
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        objects = db.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite%'"
        ).fetchall()
        shapes: dict[str, Shape] = {"table": {}, "view": {}}
        for kind, name in objects:
            shapes[kind][name] = [row[1] for row in db.execute(f"PRAGMA table_info({name})")]
    return shapes["table"], shapes["view"]


def postgresql_shape() -> tuple[Shape, Shape]:
    with fresh_schema() as (url, schema):
        store = open_store(url)
        store.open(write=True)
        store.close()
        rows = admin_execute(
            "SELECT c.table_name, t.table_type, c.column_name "
            "FROM information_schema.columns AS c JOIN information_schema.tables AS t "
            "USING (table_schema, table_name) WHERE c.table_schema = %s "
            "ORDER BY c.table_name, c.ordinal_position",
            schema,
        )
    tables: Shape = {}
    views: Shape = {}
    for name, kind, column in rows:
        (views if kind == "VIEW" else tables).setdefault(name, []).append(column)
    return tables, views


def test_both_databases_define_the_same_tables_columns_and_views(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    sqlite_tables, sqlite_views = sqlite_shape(tmp_path / "ledger.db")
    pg_tables, pg_views = postgresql_shape()
    pg_tables.pop("schema_version")  # PostgreSQL's place for SQLite's user_version
    assert pg_tables == sqlite_tables
    assert pg_views == sqlite_views
    assert sqlite_tables == {table.name: [c.name for c in table.columns] for table in TABLES}
    assert set(sqlite_views) == set(VIEWS)


def test_the_readable_views_read_the_same_in_both(tmp_path: Path) -> None:
    """The views' SQL differs only in how a time is written: their rows are the same (for
    whole milliseconds: SQLite rounds a fraction of one, PostgreSQL drops it)."""
    pytest.importorskip("psycopg")
    path = tmp_path / "ledger.db"
    with fresh_schema() as (url, _):
        texts = []
        for store in (SQLiteLedger(path), open_store(url)):
            store.set_state(
                "+18005550100", {"US": [12025550101]}, opted_out=True, source="api", at=1_000
            )
            store.set_state(
                "+18005550100", {"US": [12025550101]}, opted_out=False, source="api", at=2_000_000
            )
            store.close()
        with contextlib.closing(sqlite3.connect(path)) as db:
            texts.append(
                (
                    db.execute("SELECT * FROM optouts_readable").fetchall(),
                    db.execute(
                        "SELECT sender, recipient, action, source, at FROM history_readable"
                    ).fetchall(),
                )
            )
        texts.append(
            (
                [tuple(r) for r in admin_execute("SELECT * FROM optouts_readable", url=url)],
                [
                    tuple(r)
                    for r in admin_execute(
                        "SELECT sender, recipient, action, source, at FROM history_readable "
                        "ORDER BY id",
                        url=url,
                    )
                ],
            )
        )
    assert texts[0] == texts[1]
    assert texts[0][0] == [
        (
            "+18005550100",
            "+12025550101",
            "opted-in",
            "US",
            "api",
            "1970-01-01T00:00:00.001Z",
            "1970-01-01T00:00:02.000Z",
        )
    ]
