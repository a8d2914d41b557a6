"""SQLite storage for the ledger: set-based statements, WAL, safe with several processes.

Each batch is one statement over a JSON array (``json_each``), never a query per number;
the schema's triggers write the history rows inside the same statement. Keys are sorted
before they go in, so a batch walks the B-tree in order and each page is read and dirtied
once per transaction: random order costs several times more on a large ledger.

Writes take the write lock up front (``BEGIN IMMEDIATE``) and wait for other writers up
to ``busy_timeout``, so two processes adding at once both succeed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .._errors import ConfigurationError
from ._schema import SCHEMA_VERSION, STATEMENTS

__all__ = ["Row", "SQLiteLedger"]

Row = tuple[str, int, int, "str | None", str, int, int]
"""sender, recipient digits, opted_out, country, source, updated_at, sender id."""

_UPSERT = """
INSERT INTO optouts (sender_id, recipient, opted_out, country, source, created_at, updated_at)
SELECT ?1, value, ?5, ?6, ?3, ?4, ?4
FROM json_each(?2) WHERE true
ON CONFLICT (sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, source = excluded.source, updated_at = excluded.updated_at
WHERE opted_out IS NOT excluded.opted_out
"""
_OPTED_OUT = """
SELECT o.recipient FROM json_each(?1) AS j
CROSS JOIN optouts AS o ON o.sender_id = ?2 AND o.recipient = j.value
WHERE o.opted_out = 1
"""


class SQLiteLedger:
    """One SQLite database file holding the ledger; thread-safe, one connection."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._sender_ids: dict[str, int] = {}
        try:
            if self.path != ":memory:":
                Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._enable_wal(busy_timeout)
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA cache_size = -16384")
            self._db.execute("PRAGMA temp_store = MEMORY")
            self._migrate()
        except (sqlite3.Error, OSError, ConfigurationError) as exc:
            if hasattr(self, "_db"):
                self._db.close()
            if isinstance(exc, ConfigurationError):
                raise
            raise ConfigurationError(
                f"cannot open the ledger at {self.path}: {exc} "
                "(setting database, OPTOUTS_LOCAL_DATABASE)"
            ) from None

    def _enable_wal(self, busy_timeout: float) -> None:
        """Switch to WAL, waiting for other connections: SQLite's busy handler does not."""
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self) -> None:
        with self._write():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"ledger {self.path} has schema version {version}, newer than this "
                    f"optouts understands ({SCHEMA_VERSION}); upgrade optouts"
                )
            for statement in STATEMENTS:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _sender_id(self, sender: str, create: bool) -> int | None:
        known = self._sender_ids.get(sender)
        if known is not None:
            return known
        if create:
            self._db.execute("INSERT OR IGNORE INTO senders (sender) VALUES (?)", (sender,))
        row = self._db.execute("SELECT id FROM senders WHERE sender = ?", (sender,)).fetchone()
        if row is None:
            return None
        self._sender_ids[sender] = row[0]
        return int(row[0])

    def set_state(
        self,
        sender: str,
        by_country: Mapping[str | None, Sequence[int]],
        *,
        opted_out: bool,
        source: str,
        at: int,
    ) -> None:
        """Set recipients (digits, grouped by country) to one state at ``at`` (µs since epoch)."""
        state = 1 if opted_out else 0
        with self._lock, self._write():
            sender_id = self._sender_id(sender, create=True)
            for country, recipients in by_country.items():
                payload = json.dumps(sorted(recipients))
                self._db.execute(_UPSERT, (sender_id, payload, source, at, state, country))

    def opted_out(self, senders: Sequence[str], recipients: Sequence[int]) -> set[int]:
        """Those of ``recipients`` opted out of any of ``senders``."""
        payload: str | None = None
        found: set[int] = set()
        with self._lock:
            for sender in senders:
                sender_id = self._sender_id(sender, create=False)
                if sender_id is None:
                    continue
                payload = payload or json.dumps(sorted(recipients))
                found.update(row[0] for row in self._db.execute(_OPTED_OUT, (payload, sender_id)))
        return found

    def page(
        self,
        *,
        sender: str | None,
        opted_out: bool | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` rows in key order, strictly after the key ``after``."""
        where = ["(o.sender_id, o.recipient) > (?, ?)"]
        params: list[object] = list(after or (-1, -1))
        if sender is not None:
            with self._lock:
                sender_id = self._sender_id(sender, create=False)
            if sender_id is None:
                return []
            where.append("o.sender_id = ?")
            params.append(sender_id)
        if opted_out is not None:
            where.append("o.opted_out = ?")
            params.append(1 if opted_out else 0)
        params.append(limit)
        query = (
            "SELECT s.sender, o.recipient, o.opted_out, o.country, o.source, o.updated_at, "
            "o.sender_id FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id "
            f"WHERE {' AND '.join(where)} ORDER BY o.sender_id, o.recipient LIMIT ?"
        )
        with self._lock:
            return self._db.execute(query, params).fetchall()
