"""The ledger's tables and views, written once for SQLite and PostgreSQL.

Both databases hold the same tables, columns and views; only how each is spelled differs:
types (SQLite's INTEGER and TEXT, PostgreSQL's bigint, smallint and text), the identity
column, ``WITHOUT ROWID``, how a view is replaced, and how a time is shown in ISO 8601. A
``Dialect`` says those; ``create_table`` and ``create_view`` write the statements. What
only one database has (SQLite's row triggers, PostgreSQL's statement triggers and its
``schema_version`` table) stays in ``_schema`` and ``_postgres_schema``.

``sender_id`` columns refer to ``senders (id)`` without the database checking it (that
would cost a lookup per row; the ledger only writes ids it has just looked up): SQLite
declares the reference for readers, PostgreSQL says so in a column comment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["TABLES", "VIEWS", "Column", "Dialect", "Table", "create_table", "create_view"]


class Column(NamedTuple):
    """One column: ``kind`` is one of ``Dialect.types``' keys."""

    name: str
    kind: str
    constraints: str = ""


class Table(NamedTuple):
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    """A primary key of several columns (a single-column one is a column's constraint)."""


class Dialect(NamedTuple):
    """How one database spells what the tables and views need."""

    types: dict[str, str]
    """Column kinds: ``id`` (an integer key the database assigns), ``sender`` (a reference
    to ``senders (id)``, never null), ``number`` (a 64-bit integer), ``state`` (0 or 1),
    ``text``."""
    keyed_table: str
    """After the closing parenthesis of a table keyed by its own columns (not an ``id``)."""
    create_view: str
    iso: Callable[[str], str]
    """The SQL showing microseconds since the epoch, given as SQL, as an ISO 8601 time."""


TABLES = (
    Table("senders", (Column("id", "id"), Column("sender", "text", "NOT NULL UNIQUE"))),
    Table(
        "optouts",
        (
            Column("sender_id", "sender"),
            Column("recipient", "number", "NOT NULL"),
            Column("opted_out", "state", "NOT NULL CHECK (opted_out IN (0, 1))"),
            Column("country", "text"),
            Column("source", "text", "NOT NULL"),
            Column("created_at", "number", "NOT NULL"),
            Column("updated_at", "number", "NOT NULL"),
        ),
        key=("sender_id", "recipient"),
    ),
    Table(
        "history",
        (
            Column("id", "id"),
            Column("sender_id", "sender"),
            Column("recipient", "number", "NOT NULL"),
            Column("opted_out", "state", "NOT NULL"),
            Column("source", "text", "NOT NULL"),
            Column("at", "number", "NOT NULL"),
        ),
    ),
    Table(
        "confirmations",
        (
            Column("target", "text", "NOT NULL"),
            Column("sender_id", "sender"),
            Column("recipient", "number", "NOT NULL"),
            Column("opted_out", "state", "NOT NULL"),
            Column("confirmed_at", "number", "NOT NULL"),
        ),
        key=("target", "sender_id", "recipient"),
    ),
    Table(
        "sync_state",
        (Column("key", "text", "PRIMARY KEY"), Column("value", "text", "NOT NULL")),
    ),
)
"""In the order they are created (``senders`` before the tables that refer to it)."""

VIEWS = {
    "optouts_readable": """
    SELECT s.sender, '+' || o.recipient AS recipient,
           CASE o.opted_out WHEN 1 THEN 'opted-out' ELSE 'opted-in' END AS status,
           o.country, o.source,
           {created_at} AS created_at,
           {updated_at} AS updated_at
    FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id
    """,
    "history_readable": """
    SELECT h.id, s.sender, '+' || h.recipient AS recipient,
           CASE h.opted_out WHEN 1 THEN 'opt-out' ELSE 'opt-in' END AS action,
           h.source, {at} AS at
    FROM history AS h JOIN senders AS s ON s.id = h.sender_id
    """,
}
"""The same data as people read it: E.164 numbers, states as words, ISO 8601 times."""
_VIEW_TIMES = {
    "optouts_readable": {"created_at": "o.created_at", "updated_at": "o.updated_at"},
    "history_readable": {"at": "h.at"},
}


def create_table(table: Table, dialect: Dialect) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``table`` in ``dialect``."""
    lines = [
        " ".join(filter(None, (column.name, dialect.types[column.kind], column.constraints)))
        for column in table.columns
    ]
    if table.key:
        lines.append(f"PRIMARY KEY ({', '.join(table.key)})")
    keyed = not any(column.kind == "id" for column in table.columns)
    body = ",\n    ".join(lines)
    tail = dialect.keyed_table if keyed else ""
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n    {body}\n){tail}"


def create_view(name: str, dialect: Dialect) -> str:
    """The statement creating view ``name`` in ``dialect`` (or replacing it, where the
    database cannot say "if not exists")."""
    times = {field: dialect.iso(column) for field, column in _VIEW_TIMES[name].items()}
    return f"{dialect.create_view} {name} AS{VIEWS[name].format(**times)}"
