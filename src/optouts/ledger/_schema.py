"""The ledger's tables.

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
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_ISO = "strftime('%Y-%m-%dT%H:%M:%fZ', {} / 1000000.0, 'unixepoch')"

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS senders (
        id INTEGER PRIMARY KEY,
        sender TEXT NOT NULL UNIQUE
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS optouts (
        sender_id INTEGER NOT NULL REFERENCES senders (id),
        recipient INTEGER NOT NULL,
        opted_out INTEGER NOT NULL CHECK (opted_out IN (0, 1)),
        country TEXT,
        source TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (sender_id, recipient)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS history (
        id INTEGER PRIMARY KEY,
        sender_id INTEGER NOT NULL REFERENCES senders (id),
        recipient INTEGER NOT NULL,
        opted_out INTEGER NOT NULL,
        source TEXT NOT NULL,
        at INTEGER NOT NULL
    )
    """,
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
    """
    CREATE TABLE IF NOT EXISTS confirmations (
        target TEXT NOT NULL,
        sender_id INTEGER NOT NULL REFERENCES senders (id),
        recipient INTEGER NOT NULL,
        opted_out INTEGER NOT NULL,
        confirmed_at INTEGER NOT NULL,
        PRIMARY KEY (target, sender_id, recipient)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS sync_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    f"""
    CREATE VIEW IF NOT EXISTS optouts_readable AS
    SELECT s.sender, '+' || o.recipient AS recipient,
           CASE o.opted_out WHEN 1 THEN 'opted-out' ELSE 'opted-in' END AS status,
           o.country, o.source,
           {_ISO.format("o.created_at")} AS created_at,
           {_ISO.format("o.updated_at")} AS updated_at
    FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id
    """,
    f"""
    CREATE VIEW IF NOT EXISTS history_readable AS
    SELECT h.id, s.sender, '+' || h.recipient AS recipient,
           CASE h.opted_out WHEN 1 THEN 'opt-out' ELSE 'opt-in' END AS action,
           h.source, {_ISO.format("h.at")} AS at
    FROM history AS h JOIN senders AS s ON s.id = h.sender_id
    """,
)
