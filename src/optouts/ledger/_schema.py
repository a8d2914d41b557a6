"""The ledger's tables. Numbers are stored as integers (E.164 digits) to keep keys small.

Current state lives in ``optouts``, one row per sender–recipient pair; ``history`` is
append-only and records every change of state with its source and time, because
compliance asks when an opt-out was received, not only whether it exists. The view
``optouts_readable`` shows the same state with numbers written as E.164.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

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
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (sender_id, recipient)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS history (
        id INTEGER PRIMARY KEY,
        sender_id INTEGER NOT NULL REFERENCES senders (id),
        recipient INTEGER NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('opt-out', 'opt-in')),
        source TEXT NOT NULL,
        at TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS history_by_recipient ON history (recipient, at)",
    """
    CREATE VIEW IF NOT EXISTS optouts_readable AS
    SELECT s.sender, '+' || o.recipient AS recipient,
           CASE o.opted_out WHEN 1 THEN 'opted-out' ELSE 'opted-in' END AS status,
           o.country, o.source, o.created_at, o.updated_at
    FROM optouts o JOIN senders s ON s.id = o.sender_id
    """,
)
