"""SQLite storage for the ledger: set-based statements, WAL, safe with several processes.

Each batch is one statement over a JSON array (``json_each``), or for received changes
over fixed-width text (``_sqlite_merge``), never a query per number; the schema's triggers
write the history rows inside the same statement. Keys are sorted before they go in, so a
batch walks the B-tree in order and each page is read and dirtied once per transaction:
random order costs several times more on a large ledger.

Writes take the write lock up front (``BEGIN IMMEDIATE``) and wait for other writers up
to ``busy_timeout``, so two processes adding at once both succeed.

Reads never create a ledger: they open an existing file read-only, and only the first
write opens it read-write, creating it if missing (``_sqlite_open`` says how).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import cast

from .._errors import ConfigurationError, ProviderError
from ._base import AuditTrail, Change, Held, PendingRow, Row, TextRow, now_micros
from ._sqlite_merge import Batch, merge
from ._sqlite_open import (
    Stamp,
    busy_error,
    is_busy,
    open_for_reading,
    open_for_writing,
    stamp,
)

__all__ = ["SQLiteLedger"]

_UPSERT = """
INSERT INTO optouts (sender_id, recipient, opted_out, country, source, created_at, updated_at)
SELECT ?1, value, ?5, ?6, ?3, ?4, ?4
FROM json_each(?2) WHERE true
ON CONFLICT (sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, source = excluded.source,
    updated_at = max(excluded.updated_at, updated_at)
WHERE opted_out IS NOT excluded.opted_out
"""
"""An explicit add or remove; its time never goes before the pair's last (a clock stepped
back, or on PostgreSQL a writer that read the time before another's commit)."""
_PENDING = """
SELECT o.sender_id, s.sender, o.recipient, o.opted_out
FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id
LEFT JOIN confirmations AS c
  ON c.target = ?1 AND c.sender_id = o.sender_id AND c.recipient = o.recipient
WHERE (o.sender_id, o.recipient) > (?2, ?3)
  AND CASE WHEN c.opted_out IS NULL THEN o.opted_out = 1 ELSE c.opted_out != o.opted_out END
ORDER BY o.sender_id, o.recipient
LIMIT ?4
"""
_CONFIRM = """
INSERT INTO confirmations (target, sender_id, recipient, opted_out, confirmed_at)
SELECT ?1, ?2, value, ?3, ?4 FROM json_each(?5) WHERE true
ON CONFLICT (target, sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, confirmed_at = excluded.confirmed_at
"""
_ROW = "s.sender, o.recipient, o.opted_out, o.country, o.source, o.updated_at, o.sender_id"
_FRACTION = "((o.updated_at % 1000000 + 1000000) % 1000000)"
_TEXT_ROW = f"""
s.sender, '+' || o.recipient, CASE o.opted_out WHEN 1 THEN 'opted-out' ELSE 'opted-in' END,
o.source,
strftime('%Y-%m-%dT%H:%M:%S', (o.updated_at - {_FRACTION}) / 1000000, 'unixepoch')
|| CASE {_FRACTION} WHEN 0 THEN '' ELSE printf('.%06d', {_FRACTION}) END || 'Z'
"""
"""A row as text, as ``iso_utc`` writes times (whole seconds floored, for times before 1970)."""
_HELD = """
SELECT o.recipient, o.opted_out, o.source, o.updated_at FROM json_each(?1) AS j
CROSS JOIN optouts AS o ON o.sender_id = ?2 AND o.recipient = j.value
"""
_CONFIRMED = """
SELECT c.recipient, c.opted_out FROM json_each(?1) AS j
CROSS JOIN confirmations AS c ON c.target = ?3 AND c.sender_id = ?2 AND c.recipient = j.value
"""
_OPTED_OUT = """
SELECT o.recipient FROM json_each(?1) AS j
CROSS JOIN optouts AS o ON o.sender_id IN ({senders}) AND o.recipient = j.value
WHERE o.opted_out = 1
"""
"""One pass over the numbers for all the senders asked about (a sender and ``*``)."""


_COMMITTED = ("BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",))
_REHEARSED = ("SAVEPOINT write", "RELEASE write", ("ROLLBACK TO write", "RELEASE write"))
"""How a write starts, ends and is undone: its own transaction, or a savepoint of a
rehearsal's transaction (which is rolled back as a whole at the end)."""


def _writable(path: Path) -> bool:
    """Whether this process may write the ledger file and its folder (for the -wal)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


class SQLiteLedger:
    """One SQLite database file holding the ledger; thread-safe, one connection at a time.

    The one rule, kept in ``_connection``: a read needs the ledger to exist and opens it
    read-only; the first write opens it read-write, creating it if missing (see
    ``_sqlite_open``). A file that exists is opened when the store is made, so a ledger
    newer than this optouts is refused at once.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        # absolute now: a ledger created later must not follow the working folder
        self._file = Path(self.path).expanduser().absolute()
        self.location = self.path if self.path == ":memory:" else str(self._file)
        self.on_create: Callable[[str], None] | None = None
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._sender_ids: dict[str, int] = {}
        self._uncommitted: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None
        self._writable = False
        self._alone: Stamp | None = None
        """For a connection reading the file alone (immutable): the file it read."""
        self._closed = False
        self._rehearsing = False
        """Inside ``rehearse``: each write is a savepoint of the one outer transaction."""
        if self.path == ":memory:":  # nothing on disk to invent: ready to write at once
            self._connection(write=True)
        elif os.path.exists(self._file):  # False, not an error, where it cannot be seen
            reading = open_for_reading(self._file, busy_timeout)
            if reading is not None:
                self._db, self._alone = reading

    def open(self, *, write: bool = False) -> None:
        with self._lock:
            self._connection(write=write)

    def _connection(self, *, write: bool) -> sqlite3.Connection:
        """The connection for a read or a write; the caller holds the lock."""
        if self._closed:
            raise ProviderError(f"the ledger at {self.location} is closed", provider="local")
        if self._db is not None and (self._writable or (not write and self._sees_changes())):
            return self._db
        if self._db is not None:
            self._db.close()
            self._db, self._alone = None, None
        if write:
            target = self.path if self.path == ":memory:" else str(self._file)
            self._db, created = open_for_writing(target, self._busy_timeout)
            self._writable = True
            if created and self.on_create is not None and self.path != ":memory:":
                self.on_create(self.location)
            return self._db
        reading = open_for_reading(self._file, self._busy_timeout)
        if reading is None:
            raise ConfigurationError(
                f"{self.location} holds no ledger yet (no optouts tables): a read never "
                "creates one; a write (add, remove, import, sync) does "
                "(setting database, OPTOUTS_LOCAL_DATABASE)"
            )
        self._db, self._alone = reading
        return self._db

    def _sees_changes(self) -> bool:
        """Whether the read connection still shows the ledger as it is: one reading the file
        alone (immutable) does only while the file and its -wal are as they were."""
        return self._alone is None or stamp(self._file) == self._alone

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._waits():
            yield self._connection(write=False)

    @contextmanager
    def _waits(self) -> Iterator[None]:
        """A lock another process held past the busy timeout is that process's doing, not
        the setting's or the ledger's: said so, as an error worth trying again."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise busy_error(self.location, self._busy_timeout) from None
            raise

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; sender ids it created are remembered only once committed."""
        with self._lock, self._waits():
            db = self._connection(write=True)
            begin, commit, undo = _REHEARSED if self._rehearsing else _COMMITTED
            db.execute(begin)
            self._uncommitted = {}
            try:
                yield db
                db.execute(commit)
            except BaseException:
                if db.in_transaction:
                    for statement in undo:
                        db.execute(statement)
                raise
            finally:
                created, self._uncommitted = self._uncommitted, {}
            self._sender_ids.update(created)

    @contextmanager
    def rehearse(self) -> Iterator[SQLiteLedger]:
        """A second store on its own connection, in a transaction rolled back at the end.

        It holds the write lock from start to end (``BEGIN IMMEDIATE``): other writers
        wait, readers do not. A ledger this process may not write (a read-only file or
        folder) and an in-memory one are rehearsed on a private copy instead.
        """
        self.open()  # a rehearsal needs the ledger: a missing one fails as any read does
        with ExitStack() as cleanup:
            if self.path == ":memory:" or not _writable(self._file):
                path = cleanup.enter_context(self._private_copy())
            else:
                path = str(self._file)
            twin = SQLiteLedger(path, busy_timeout=self._busy_timeout)
            cleanup.callback(twin.close)
            with twin._lock, twin._waits():
                db = twin._connection(write=True)
                db.execute("BEGIN IMMEDIATE")
                twin._rehearsing = True
            try:
                yield twin
            finally:
                with twin._lock:
                    if db.in_transaction:
                        db.execute("ROLLBACK")

    @contextmanager
    def _private_copy(self) -> Iterator[str]:
        """A copy of the ledger in a private temporary file, deleted at the end."""
        with tempfile.TemporaryDirectory(prefix="optouts-rehearsal-") as folder:
            path = str(Path(folder) / "ledger.db")
            copy = sqlite3.connect(path)
            try:
                with self._reading() as db:
                    db.backup(copy)
            finally:
                copy.close()
            yield path

    def _sender_id(self, db: sqlite3.Connection, sender: str, create: bool) -> int | None:
        known = self._sender_ids.get(sender)
        if known is not None:
            return known
        if create:
            db.execute("INSERT OR IGNORE INTO senders (sender) VALUES (?)", (sender,))
        row = db.execute("SELECT id FROM senders WHERE sender = ?", (sender,)).fetchone()
        if row is None:
            return None
        if db.in_transaction:
            self._uncommitted[sender] = int(row[0])  # a rollback must not leave it cached
        else:
            self._sender_ids[sender] = int(row[0])
        return int(row[0])

    def set_state(
        self,
        sender: str,
        by_country: Mapping[str | None, Sequence[int]],
        *,
        opted_out: bool,
        source: str,
        at: int | None = None,
    ) -> None:
        """Set recipients (digits, grouped by country) to one state at ``at`` (µs since epoch).

        Without ``at``, the time is read once the write lock is held: a writer that waited
        for another records a later time than it, never an earlier one.
        """
        state = 1 if opted_out else 0
        with self._writing() as db:
            if at is None:
                at = now_micros()
            sender_id = self._sender_id(db, sender, create=True)
            for country, recipients in by_country.items():
                payload = json.dumps(sorted(recipients))
                db.execute(_UPSERT, (sender_id, payload, source, at, state, country))

    def opted_out(self, senders: Sequence[str], recipients: Sequence[int]) -> set[int]:
        """Those of ``recipients`` opted out of any of ``senders``."""
        with self._reading() as db:
            found = {self._sender_id(db, sender, create=False) for sender in senders}
            known = sorted(sender_id for sender_id in found if sender_id is not None)
            if not known or not recipients:
                return set()
            query = _OPTED_OUT.format(senders=",".join(["?"] * len(known)))
            rows = db.execute(query, (json.dumps(sorted(recipients)), *known))
            return set(itertools.chain.from_iterable(rows))

    def page(
        self,
        *,
        sender: str | None,
        opted_out: bool | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` rows in key order, strictly after the key ``after``."""
        with self._reading() as db:
            query, params = self._page_query(db, _ROW, sender, opted_out, after, limit)
            return [] if query is None else db.execute(query, params).fetchall()

    def text_pages(
        self, *, sender: str | None, opted_out: bool | None, size: int
    ) -> Iterator[list[TextRow]]:
        """Formatted by SQLite, one page a read, so an export of millions never holds the lock.

        The ledger is opened before the first page is asked for: a missing one fails here.
        """
        self.open()
        return self._text_pages(sender, opted_out, size)

    def _text_pages(
        self, sender: str | None, opted_out: bool | None, size: int
    ) -> Iterator[list[TextRow]]:
        after: tuple[int, int] | None = None
        while True:
            with self._reading() as db:
                query, params = self._page_query(db, _TEXT_ROW, sender, opted_out, after, size)
                rows = [] if query is None else db.execute(query, params).fetchall()
                if len(rows) == size:
                    sender_id = self._sender_id(db, rows[-1][0], create=False)
                    after = (sender_id or 0, int(rows[-1][1][1:]))
            if rows:
                yield rows
            if len(rows) < size:
                return

    def _page_query(
        self,
        db: sqlite3.Connection,
        columns: str,
        sender: str | None,
        opted_out: bool | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> tuple[str | None, list[object]]:
        """The query for one page in key order; no query when the sender is unknown."""
        where = ["(o.sender_id, o.recipient) > (?, ?)"]
        params: list[object] = list(after or (-1, -1))
        if sender is not None:
            sender_id = self._sender_id(db, sender, create=False)
            if sender_id is None:
                return None, []
            where.append("o.sender_id = ?")
            params.append(sender_id)
        if opted_out is not None:
            where.append("o.opted_out = ?")
            params.append(1 if opted_out else 0)
        params.append(limit)
        query = (
            f"SELECT {columns} FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id "
            f"WHERE {' AND '.join(where)} ORDER BY o.sender_id, o.recipient LIMIT ?"
        )
        return query, params

    def apply(self, changes: Sequence[Change]) -> int:
        """Record received changes where they are newer than what is known; count those applied.

        Dated and undated changes are merged in one statement each (``_sqlite_merge`` says
        how); the changes of one pair keep their order.
        """
        return self._merge(Batch.of(changes)) if changes else 0

    def apply_all(self, batches: Iterable[Sequence[Change]]) -> Iterator[int]:
        """Batches are encoded in the caller's thread and merged in a second one.

        SQLite runs a merge without holding the GIL, so encoding (and whatever produces
        the batches, such as parsing a CSV file) overlaps with writing. The Python part of
        a merge stays in the caller's thread: two threads both running Python would only
        take turns.
        """
        in_flight: Future[int] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="optouts-ledger") as writer:
            for changes in batches:
                batch = Batch.of(changes)
                del changes  # gone while the next batch is made, not once it is
                if in_flight is not None:
                    yield in_flight.result()
                in_flight = writer.submit(self._merge, batch)
            if in_flight is not None:
                yield in_flight.result()

    def _merge(self, batch: Batch) -> int:
        if not batch.kinds:
            return 0
        with self._writing() as db:
            senders = dict.fromkeys(sender for sender, *_ in batch.kinds)
            ids = {sender: self._sender_id(db, sender, create=True) for sender in senders}
            return merge(db, batch, cast("dict[str, int]", ids))  # created: never None

    def pending(
        self, target: str, *, after: tuple[int, int] | None, limit: int
    ) -> list[PendingRow]:
        key = after or (-1, -1)
        with self._reading() as db:
            return db.execute(_PENDING, (target, key[0], key[1], limit)).fetchall()

    def confirm(
        self, target: str, sender: str, recipients: Sequence[int], *, opted_out: bool, at: int
    ) -> None:
        payload = json.dumps(sorted(recipients))
        with self._writing() as db:
            sender_id = self._sender_id(db, sender, create=True)
            db.execute(_CONFIRM, (target, sender_id, int(opted_out), at, payload))

    def held(self, sender: str, recipients: Sequence[int]) -> dict[int, Held]:
        with self._reading() as db:
            sender_id = self._sender_id(db, sender, create=False)
            if sender_id is None or not recipients:
                return {}
            rows = db.execute(_HELD, (json.dumps(sorted(set(recipients))), sender_id))
            return {r: (o, src, at) for r, o, src, at in rows}

    def confirmed(self, target: str, sender: str, recipients: Sequence[int]) -> dict[int, int]:
        with self._reading() as db:
            sender_id = self._sender_id(db, sender, create=False)
            if sender_id is None or not recipients:
                return {}
            payload = json.dumps(sorted(set(recipients)))
            return dict(db.execute(_CONFIRMED, (payload, sender_id, target)).fetchall())

    def get_state(self, key: str) -> str | None:
        with self._reading() as db:
            row = db.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_state(self, key: str, value: str | None) -> None:
        with self._writing() as db:
            if value is None:
                db.execute("DELETE FROM sync_state WHERE key = ?", (key,))
            else:
                db.execute(
                    "INSERT INTO sync_state (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def audit(self, recipient: int) -> AuditTrail:
        with self._reading() as db:
            current = db.execute(
                "SELECT s.sender, o.opted_out, o.country, o.source, o.created_at, o.updated_at "
                "FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id "
                "WHERE o.recipient = ? ORDER BY s.sender",
                (recipient,),
            ).fetchall()
            history = db.execute(
                "SELECT s.sender, h.opted_out, h.source, h.at "
                "FROM history AS h JOIN senders AS s ON s.id = h.sender_id "
                "WHERE h.recipient = ? ORDER BY h.at, h.id",
                (recipient,),
            ).fetchall()
            confirmations = db.execute(
                "SELECT s.sender, c.target, c.opted_out, c.confirmed_at "
                "FROM confirmations AS c JOIN senders AS s ON s.id = c.sender_id "
                "WHERE c.recipient = ? ORDER BY s.sender, c.target",
                (recipient,),
            ).fetchall()
        return AuditTrail(
            current=[(s, bool(o), c, src, cr, up) for s, o, c, src, cr, up in current],
            history=[(s, bool(o), src, at) for s, o, src, at in history],
            confirmations=[(s, t, bool(o), at) for s, t, o, at in confirmations],
        )

    # The outbox of ``optouts serve``: what changed since a mark, and leases per target

    def last_change(self) -> int:
        with self._reading() as db:
            return int(db.execute("SELECT coalesce(max(id), 0) FROM history").fetchone()[0])

    def pending_changed(self, target: str, *, after: int, upto: int) -> list[PendingRow]:
        """The history rows' ids walk a range of the rowid, and each pair they name is looked
        up by key (``CROSS JOIN`` keeps that order), so the size of the ledger costs nothing."""
        query = """
            SELECT o.sender_id, s.sender, o.recipient, o.opted_out
            FROM (SELECT DISTINCT sender_id, recipient FROM history WHERE id > ?2 AND id <= ?3)
                AS h
            CROSS JOIN optouts AS o ON o.sender_id = h.sender_id AND o.recipient = h.recipient
            JOIN senders AS s ON s.id = o.sender_id
            LEFT JOIN confirmations AS c
              ON c.target = ?1 AND c.sender_id = o.sender_id AND c.recipient = o.recipient
            WHERE CASE WHEN c.opted_out IS NULL THEN o.opted_out = 1
                       ELSE c.opted_out != o.opted_out END
            ORDER BY o.sender_id, o.recipient
        """
        with self._reading() as db:
            return db.execute(query, (target, after, upto)).fetchall()

    def lease(self, key: str, owner: str, seconds: float) -> bool:
        """The row's value is ``"<expiry µs> <owner>"``; one upsert takes or renews it. The
        clock is this host's: every process writing a SQLite ledger runs on it."""
        query = """
            INSERT INTO sync_state (key, value) VALUES (?1, ?3 || ' ' || ?2)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value
            WHERE substr(sync_state.value, instr(sync_state.value, ' ') + 1) = ?2
               OR CAST(substr(sync_state.value, 1, instr(sync_state.value, ' ') - 1) AS INTEGER)
                  <= ?4
        """
        with self._writing() as db:
            now = now_micros()
            taken = db.execute(query, (key, owner, now + round(seconds * 1_000_000), now))
            return taken.rowcount > 0

    def release(self, key: str, owner: str) -> None:
        with self._writing() as db:
            db.execute(
                "DELETE FROM sync_state WHERE key = ?1 "
                "AND substr(value, instr(value, ' ') + 1) = ?2",
                (key, owner),
            )
