"""The ledger's tables in SQLite (written once, for both databases, in ``_tables``).

Current state lives in ``optouts``, one row per sender–recipient pair. ``history`` is
append-only: triggers add a row for every insert, every change of state and every newer
report of an opt-out already held (a second STOP, through another vendor), whatever writes
to the table, because compliance asks when an opt-out was received, not only whether it
exists; and the latest report is what an older opt-in must not override.
``confirmations`` records, per vendor (a sync target), the state it was last told and when
it accepted it; ``sync_state`` holds sync checkpoints.

Storage is compact because bulk speed depends on row size: numbers are integers (the
E.164 digits), times are integers (microseconds since the Unix epoch, UTC), states are
0/1. The views ``optouts_readable`` and ``history_readable`` show the same data with
numbers in E.164, states as words and times in ISO 8601 for people and ad-hoc SQL.

Foreign keys are declared for readers but not enforced (the ledger only writes sender ids
it has just looked up; enforcement costs a lookup per row). ``history`` has no index on
recipient: it would halve bulk import speed, and an audit of one recipient is a scan.
Tables keyed by their own columns are ``WITHOUT ROWID``: one B-tree each, not two. The
version is the file's ``user_version``.
"""

from __future__ import annotations

from ._tables import TABLES, Dialect, create_table, create_view

SCHEMA_VERSION = 1

SQLITE = Dialect(
    types={
        "id": "INTEGER PRIMARY KEY",
        "sender": "INTEGER NOT NULL REFERENCES senders (id)",
        "number": "INTEGER",
        "state": "INTEGER",
        "text": "TEXT",
    },
    keyed_table=" WITHOUT ROWID",
    create_view="CREATE VIEW IF NOT EXISTS",
    iso=lambda micros: f"strftime('%Y-%m-%dT%H:%M:%fZ', {micros} / 1000000.0, 'unixepoch')",
)

_TRIGGERS = (
    """
    CREATE TRIGGER IF NOT EXISTS history_on_insert AFTER INSERT ON optouts
    BEGIN
        INSERT INTO history (sender_id, recipient, opted_out, source, at)
        VALUES (NEW.sender_id, NEW.recipient, NEW.opted_out, NEW.source, NEW.updated_at);
    END
    """,
    "DROP TRIGGER IF EXISTS history_on_change",
    """
    CREATE TRIGGER history_on_change AFTER UPDATE ON optouts
    WHEN OLD.opted_out IS NOT NEW.opted_out OR OLD.updated_at IS NOT NEW.updated_at
    BEGIN
        INSERT INTO history (sender_id, recipient, opted_out, source, at)
        VALUES (NEW.sender_id, NEW.recipient, NEW.opted_out, NEW.source, NEW.updated_at);
    END
    """,
)

STATEMENTS = (
    *(create_table(table, SQLITE) for table in TABLES),
    *_TRIGGERS,
    create_view("optouts_readable", SQLITE),
    create_view("history_readable", SQLITE),
)
"""Run in order, in one transaction, when the file has no (or an older) schema version."""
