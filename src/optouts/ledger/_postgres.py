"""PostgreSQL storage for the ledger, for businesses that write to it from many hosts.

The same tables, triggers and behaviour as the SQLite ledger. Every batch is one statement
over arrays (``unnest(%b::bigint[])``, sent in binary), never a query per number, and the
schema's statement-level triggers write the history rows inside the same statement. Writes
are transactions of ``INSERT … ON CONFLICT`` upserts under READ COMMITTED: PostgreSQL locks
each conflicting row and re-checks the ``WHERE`` against its latest version, so processes
on several hosts can write the same pairs at once. Keys go in sorted, which keeps lock
order consistent between writers; a deadlock or serialization failure is retried.

One connection per ledger, guarded by a lock: the async client calls the ledger from
worker threads. ``location`` is the URL with its password masked; no message carries it.

Reads never create the tables: a read of a schema without them is a ``ConfigurationError``
(a mistyped database or search_path must not look like an empty ledger). The first write
creates them, under an advisory lock so that two processes creating them at once do not race.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.numeric import Int8BinaryDumper, Int8Dumper

from .._errors import ConfigurationError, ProviderError
from ._base import AuditTrail, Change, Held, PendingRow, Row, TextRow, text_pages_of
from ._postgres_schema import SCHEMA_VERSION, STATEMENTS
from ._redact import passwords_in, scrub

__all__ = ["PostgresLedger", "mask_url"]

T = TypeVar("T")
Cursor = psycopg.Cursor[tuple[Any, ...]]

_SETTING = "(setting database, OPTOUTS_LOCAL_DATABASE)"
_ATTEMPTS = 5
"""Tries of a write transaction that lost a deadlock or a serialization check."""

_UPSERT = """
INSERT INTO optouts AS o
    (sender_id, recipient, opted_out, country, source, created_at, updated_at)
SELECT %(sender_id)s, r, %(state)s, %(country)s, %(source)s, %(at)s, %(at)s
FROM unnest(%(recipients)b::bigint[]) AS r
ON CONFLICT (sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, source = excluded.source,
    updated_at = GREATEST(excluded.updated_at, o.updated_at)
WHERE o.opted_out IS DISTINCT FROM excluded.opted_out
"""
"""An explicit add or remove; its time never goes before the pair's last, as in SQLite."""
_APPLY = """
INSERT INTO optouts AS o
    (sender_id, recipient, opted_out, country, source, created_at, updated_at)
SELECT s, r, st, c, src, at, at
FROM unnest(%b::bigint[], %b::bigint[], %b::smallint[], %b::text[], %b::text[], %b::bigint[])
    AS u (s, r, st, c, src, at)
ON CONFLICT (sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, source = excluded.source, updated_at = excluded.updated_at
WHERE (excluded.updated_at > o.updated_at
       OR (excluded.opted_out = 1 AND excluded.updated_at = o.updated_at))
  AND (o.opted_out IS DISTINCT FROM excluded.opted_out
       OR ({dated} AND excluded.opted_out = 1 AND excluded.updated_at > o.updated_at))
  AND ({dated} OR excluded.opted_out = 1 OR o.source = excluded.source)
"""
_APPLY_DATED = _APPLY.format(dated="true")
_APPLY_UNDATED = _APPLY.format(dated="false")
_PENDING = """
SELECT o.sender_id, s.sender, o.recipient, o.opted_out
FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id
LEFT JOIN confirmations AS c
  ON c.target = %s AND c.sender_id = o.sender_id AND c.recipient = o.recipient
WHERE (o.sender_id, o.recipient) > (%s, %s)
  AND CASE WHEN c.opted_out IS NULL THEN o.opted_out = 1 ELSE c.opted_out <> o.opted_out END
ORDER BY o.sender_id, o.recipient
LIMIT %s
"""
_CONFIRM = """
INSERT INTO confirmations AS c (target, sender_id, recipient, opted_out, confirmed_at)
SELECT %(target)s, %(sender_id)s, r, %(state)s, %(at)s
FROM unnest(%(recipients)b::bigint[]) AS r
ON CONFLICT (target, sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, confirmed_at = excluded.confirmed_at
"""
_OPTED_OUT = """
SELECT DISTINCT o.recipient FROM optouts AS o
WHERE o.sender_id = ANY(%b::bigint[]) AND o.recipient = ANY(%b::bigint[]) AND o.opted_out = 1
"""
_HELD = """
SELECT o.recipient, o.opted_out, o.source, o.updated_at FROM optouts AS o
WHERE o.sender_id = %s AND o.recipient = ANY(%b::bigint[])
"""
_CONFIRMED = """
SELECT c.recipient, c.opted_out FROM confirmations AS c
WHERE c.target = %s AND c.sender_id = %s AND c.recipient = ANY(%b::bigint[])
"""
_LOCK_SCHEMA = "SELECT pg_advisory_xact_lock(hashtext('optouts ledger ' || current_schema()))"
_SERVER_NOW = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"


def _secret_parameter(name: str) -> bool:
    """``password``, ``sslpassword`` and any other name ending in password, as libpq reads it
    (percent-decoded: ``pass%77ord`` is ``password``)."""
    return unquote(name).strip().lower().endswith("password")


def _parameters(query: str) -> list[tuple[str, str, str]]:
    """The query's ``name=value`` parts as (name, "=" or "", value), in order."""
    return [part.partition("=") for part in query.split("&")] if query else []


def mask_url(url: str) -> str:
    """``url`` with any password (in the user info or a ``…password=`` parameter) as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # too broken to take apart: what looks like a password goes
        return scrub(url, passwords_in(url))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hosts}"
    query = "&".join(
        f"{name}{eq}***" if eq and _secret_parameter(name) else f"{name}{eq}{value}"
        for name, eq, value in _parameters(parts.query)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(url: str) -> list[str]:
    """The passwords of ``url`` as written and decoded, longest first, for scrubbing."""
    return passwords_in(url)


class PostgresLedger:
    """A ledger in a PostgreSQL database (``postgresql://`` URL); thread-safe, one connection.

    The tables go in the connection's current schema (the first of its ``search_path``):
    add ``?options=-csearch_path%3Dname`` to the URL to keep a ledger in its own schema.
    """

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self.url = url
        self.location = mask_url(url)
        self.on_create: Callable[[str], None] | None = None
        self._secrets = _secrets(url)
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._sender_ids: dict[str, int] = {}
        self._fresh: dict[str, int] | None = None
        self._closed = False
        self._rehearsing = False
        """Inside ``rehearse``: a lost connection loses the rehearsal, never reconnects."""
        self._schema = ""
        self._version = 0
        """The schema version found (0: no tables yet), or SCHEMA_VERSION once migrated."""
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"cannot open the ledger at {self.location}: {self._scrub(exc)} {_SETTING}"
            ) from None
        try:
            self._version = self._inspect(self._conn)
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, psycopg.Error):
                raise ConfigurationError(
                    f"cannot open the ledger at {self.location}: {self._scrub(exc)} {_SETTING}"
                ) from None
            raise

    def __repr__(self) -> str:
        return f"<PostgresLedger {self.location}>"

    # Connection

    def _scrub(self, error: BaseException) -> str:
        text = str(error).strip() or type(error).__name__
        return " ".join(scrub(text, self._secrets).split())

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        given = conninfo_to_dict(self.url)
        extra: dict[str, Any] = {}
        if "connect_timeout" not in given:
            extra["connect_timeout"] = self._connect_timeout
        if "application_name" not in given:
            extra["application_name"] = "optouts"
        conn = psycopg.connect(self.url, autocommit=True, **extra)
        # Every integer the ledger sends is a bigint column's; binary arrays of them are cheap.
        conn.adapters.register_dumper(int, Int8BinaryDumper)
        conn.adapters.register_dumper(int, Int8Dumper)
        return conn

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._closed:
            raise ProviderError(f"the ledger at {self.location} is closed", provider="local")
        if self._conn.closed or self._conn.broken:
            if self._rehearsing:
                raise ProviderError(
                    f"ledger database {self.location}: the connection of a dry run was lost",
                    provider="local",
                    retryable=True,
                )
            self._conn.close()
            try:
                self._conn = self._connect()
            except psycopg.Error as exc:
                raise self._lost(exc) from None
        return self._conn

    def _lost(self, exc: psycopg.Error) -> ProviderError:
        return ProviderError(
            f"ledger database {self.location}: {self._scrub(exc)}",
            provider="local",
            retryable=isinstance(exc, psycopg.OperationalError),
        )

    def open(self, *, write: bool = False) -> None:
        self._run(lambda _: None, transaction=False, write=write)

    def _ready(self, conn: psycopg.Connection[tuple[Any, ...]], *, write: bool) -> None:
        """The one rule: a read needs the ledger's tables; the first write creates them.

        A read that finds none looks again first: another process may have created them.
        """
        if self._version == SCHEMA_VERSION or (self._version and not write):
            return
        self._version = self._inspect(conn)
        if not write and not self._version:
            raise ConfigurationError(
                f"no ledger tables in schema {self._schema} of {self.location}: a read never "
                "creates them, so check the database and its search_path; a write (add, "
                f"remove, import, sync) creates them {_SETTING}"
            )
        if write and self._version < SCHEMA_VERSION:
            created = self._migrate(conn)
            self._version = SCHEMA_VERSION
            if created and self.on_create is not None:
                self.on_create(f"{self.location} (schema {self._schema})")

    def _inspect(self, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
        """The schema version of the ledger in the current schema (0: no tables), read only."""
        with conn.cursor() as cur:
            row = cur.execute("SELECT current_schema()").fetchone()
            if row is None or row[0] is None:
                raise ConfigurationError(
                    f"the ledger at {self.location} has no schema to create its tables in "
                    f"(none of the search_path exists) {_SETTING}"
                )
            self._schema = str(row[0])
            return self._version_in(cur)

    def _version_in(self, cur: Cursor) -> int:
        row = cur.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        version = 0
        if row is not None and row[0]:
            found = cur.execute("SELECT max(version) FROM schema_version").fetchone()
            version = int(found[0]) if found is not None and found[0] is not None else 0
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"ledger {self.location} has schema version {version}, newer than this "
                f"optouts understands ({SCHEMA_VERSION}); upgrade optouts"
            )
        return version

    def _migrate(self, conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
        """Create or upgrade the tables; whether there were none before."""
        try:
            with conn.transaction(), conn.cursor() as cur:
                # Creating the tables from two processes at once must not race.
                cur.execute(_LOCK_SCHEMA)
                version = self._version_in(cur)
                if version == SCHEMA_VERSION:
                    return False
                for statement in STATEMENTS:
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_version (only_row, version) VALUES (true, %s) "
                    "ON CONFLICT (only_row) DO UPDATE SET version = excluded.version",
                    (SCHEMA_VERSION,),
                )
        except psycopg.Error as exc:
            if conn.broken:
                raise  # the caller reconnects and tries again
            raise ConfigurationError(
                f"cannot set up the ledger at {self.location}: {self._scrub(exc)} {_SETTING}"
            ) from None
        return version == 0

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()

    @contextlib.contextmanager
    def rehearse(self) -> Iterator[PostgresLedger]:
        """A second store on its own connection, inside one transaction rolled back at the end
        (each write in it becomes a savepoint). Rows it writes stay locked until then, so
        writers of the same pairs wait: keep the block short."""
        self.open()  # a rehearsal needs the ledger: missing tables fail as any read does
        twin = PostgresLedger(self.url, connect_timeout=self._connect_timeout)
        try:
            with twin._lock:
                conn = twin._connection()
                twin._ready(conn, write=False)
                outer = conn.transaction(force_rollback=True)
                outer.__enter__()
                twin._rehearsing = True
            try:
                yield twin
            finally:
                with twin._lock:
                    if not conn.closed:
                        outer.__exit__(None, None, None)
        finally:
            twin.close()

    def _read(self, work: Callable[[Cursor], T], *, snapshot: bool = False) -> T:
        """Run ``work`` outside a transaction (autocommit: each statement sees the latest), or
        with ``snapshot`` in one (which ``work`` makes read-only)."""
        return self._run(work, transaction=snapshot, write=False)

    def _write(self, work: Callable[[Cursor], T]) -> T:
        """Run ``work`` in one transaction."""
        return self._run(work, transaction=True, write=True)

    def _run(self, work: Callable[[Cursor], T], *, transaction: bool, write: bool) -> T:
        """Run ``work`` under the lock, again after a deadlock, a serialization failure or a
        dropped connection (a server restart, a failover).

        Running again is safe: every write is an upsert of a state that, applied twice,
        changes nothing the second time. A connection that cannot be reopened raises a
        retryable ``ProviderError``.
        """
        with self._lock:
            reconnected = False
            for attempt in range(1, _ATTEMPTS + 1):
                self._fresh = {} if transaction else None
                conn = self._connection()
                try:
                    self._ready(conn, write=write)
                    with contextlib.ExitStack() as stack:
                        if transaction:
                            stack.enter_context(conn.transaction())
                        result = work(stack.enter_context(conn.cursor()))
                    if self._fresh:
                        self._sender_ids.update(self._fresh)
                    return result
                except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
                    if attempt == _ATTEMPTS:
                        raise self._lost(exc) from None
                    time.sleep(0.01 * attempt)
                except psycopg.Error as exc:
                    if not conn.broken or reconnected:
                        raise self._lost(exc) from None
                    reconnected = True  # once: the next try opens a new connection
                finally:
                    self._fresh = None
        raise AssertionError("unreachable")  # pragma: no cover

    # Senders

    def _sender_id(self, cur: Cursor, sender: str, create: bool) -> int | None:
        return self._sender_id_map(cur, [sender], create).get(sender)

    def _sender_id_map(self, cur: Cursor, senders: Sequence[str], create: bool) -> dict[str, int]:
        """Ids of ``senders``; with ``create``, inserted first where missing (race-free).

        Ids created inside a write transaction are cached only once it commits.
        """
        found: dict[str, int] = {}
        missing: list[str] = []
        for sender in senders:
            known = self._sender_ids.get(sender)
            if known is None and self._fresh is not None:
                known = self._fresh.get(sender)
            if known is None:
                missing.append(sender)
            else:
                found[sender] = known
        if not missing:
            return found
        missing = sorted(set(missing))
        if create:
            cur.execute(
                "INSERT INTO senders (sender) SELECT unnest(%b::text[]) "
                "ON CONFLICT (sender) DO NOTHING",
                (missing,),
            )
        rows = cur.execute(
            "SELECT sender, id FROM senders WHERE sender = ANY(%b::text[])", (missing,)
        ).fetchall()
        looked_up = {str(sender): int(id_) for sender, id_ in rows}
        (self._fresh if self._fresh is not None else self._sender_ids).update(looked_up)
        found.update(looked_up)
        return found

    # Operations

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

        Without ``at``, the time is the server's, read inside the transaction: hosts whose
        clocks differ still record one pair's history in order.
        """
        groups = sorted(by_country.items(), key=lambda item: (item[0] is not None, item[0] or ""))
        batches = [(country, sorted(set(recipients))) for country, recipients in groups]

        def work(cur: Cursor) -> None:
            sender_id = self._sender_id(cur, sender, create=True)
            when = at
            if when is None:
                when = int(cur.execute(_SERVER_NOW).fetchone()[0])  # type: ignore[index]
            for country, recipients in batches:
                if recipients:
                    cur.execute(
                        _UPSERT,
                        {
                            "sender_id": sender_id,
                            "recipients": recipients,
                            "state": 1 if opted_out else 0,
                            "country": country,
                            "source": source,
                            "at": when,
                        },
                    )

        self._write(work)

    def opted_out(self, senders: Sequence[str], recipients: Sequence[int]) -> set[int]:
        """Those of ``recipients`` opted out of any of ``senders``."""
        if not senders or not recipients:
            return set()
        unique = sorted(set(recipients))

        def work(cur: Cursor) -> set[int]:
            ids = sorted(set(self._sender_id_map(cur, senders, create=False).values()))
            if not ids:
                return set()
            return set(itertools.chain.from_iterable(cur.execute(_OPTED_OUT, (ids, unique))))

        return self._read(work)

    def held(self, sender: str, recipients: Sequence[int]) -> dict[int, Held]:
        unique = sorted(set(recipients))

        def work(cur: Cursor) -> dict[int, Held]:
            sender_id = self._sender_id(cur, sender, create=False)
            if sender_id is None or not unique:
                return {}
            rows = cur.execute(_HELD, (sender_id, unique))
            return {int(r): (int(o), str(src), int(at)) for r, o, src, at in rows}

        return self._read(work)

    def confirmed(self, target: str, sender: str, recipients: Sequence[int]) -> dict[int, int]:
        unique = sorted(set(recipients))

        def work(cur: Cursor) -> dict[int, int]:
            sender_id = self._sender_id(cur, sender, create=False)
            if sender_id is None or not unique:
                return {}
            rows = cur.execute(_CONFIRMED, (target, sender_id, unique))
            return {int(r): int(o) for r, o in rows}

        return self._read(work)

    def page(
        self,
        *,
        sender: str | None,
        opted_out: bool | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` rows in key order, strictly after the key ``after``."""

        def work(cur: Cursor) -> list[Row]:
            where = ["(o.sender_id, o.recipient) > (%s, %s)"]
            params: list[object] = list(after or (-1, -1))
            if sender is not None:
                sender_id = self._sender_id(cur, sender, create=False)
                if sender_id is None:
                    return []
                where.append("o.sender_id = %s")
                params.append(sender_id)
            if opted_out is not None:
                where.append("o.opted_out = %s")
                params.append(1 if opted_out else 0)
            params.append(limit)
            query = (
                "SELECT s.sender, o.recipient, o.opted_out, o.country, o.source, o.updated_at, "
                "o.sender_id FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id "
                f"WHERE {' AND '.join(where)} ORDER BY o.sender_id, o.recipient LIMIT %s"
            )
            return [
                (str(s), int(r), int(o), c, str(src), int(u), int(i))
                for s, r, o, c, src, u, i in cur.execute(query, params)
            ]

        return self._read(work)

    def apply(self, changes: Sequence[Change]) -> int:
        """Record received changes where they are newer than what is known; count those applied.

        As in SQLite, dated changes go first, then undated ones, each set as if its changes
        came one at a time in key order (several changes of one pair in the order given).
        A statement cannot change a row twice, so each set goes in rounds: round *n* holds
        the *n*-th change of every pair, one statement per round (almost always just one).
        """
        if not changes:
            return 0

        def work(cur: Cursor) -> int:
            ids = self._sender_id_map(cur, list({c.sender for c in changes}), create=True)
            applied = 0
            for dated, statement in ((True, _APPLY_DATED), (False, _APPLY_UNDATED)):
                keyed = sorted(
                    (
                        (ids[c.sender], c.recipient, n, c)
                        for n, c in enumerate(changes)
                        if bool(c.dated) is dated
                    ),
                    key=lambda item: item[:3],
                )
                for batch in _rounds(keyed):
                    cur.execute(
                        statement,
                        (
                            [k[0] for k in batch],
                            [k[1] for k in batch],
                            [1 if k[3].opted_out else 0 for k in batch],
                            [k[3].country for k in batch],
                            [k[3].source for k in batch],
                            [k[3].at for k in batch],
                        ),
                    )
                    applied += max(cur.rowcount, 0)
            return applied

        return self._write(work)

    def text_pages(
        self, *, sender: str | None, opted_out: bool | None, size: int
    ) -> Iterator[list[TextRow]]:
        self.open()  # before the first page is asked for: a missing ledger fails here
        return text_pages_of(self, sender=sender, opted_out=opted_out, size=size)

    def apply_all(self, batches: Iterable[Sequence[Change]]) -> Iterator[int]:
        """One batch after another."""
        for changes in batches:
            yield self.apply(changes)

    def pending(
        self, target: str, *, after: tuple[int, int] | None, limit: int
    ) -> list[PendingRow]:
        key = after or (-1, -1)

        def work(cur: Cursor) -> list[PendingRow]:
            rows = cur.execute(_PENDING, (target, key[0], key[1], limit))
            return [(int(i), str(s), int(r), int(o)) for i, s, r, o in rows]

        return self._read(work)

    def confirm(
        self, target: str, sender: str, recipients: Sequence[int], *, opted_out: bool, at: int
    ) -> None:
        unique = sorted(set(recipients))

        def work(cur: Cursor) -> None:
            sender_id = self._sender_id(cur, sender, create=True)
            if unique:
                cur.execute(
                    _CONFIRM,
                    {
                        "target": target,
                        "sender_id": sender_id,
                        "state": 1 if opted_out else 0,
                        "at": at,
                        "recipients": unique,
                    },
                )

        self._write(work)

    def get_state(self, key: str) -> str | None:
        def work(cur: Cursor) -> str | None:
            row = cur.execute("SELECT value FROM sync_state WHERE key = %s", (key,)).fetchone()
            return None if row is None else str(row[0])

        return self._read(work)

    def put_state(self, key: str, value: str | None) -> None:
        def work(cur: Cursor) -> None:
            if value is None:
                cur.execute("DELETE FROM sync_state WHERE key = %s", (key,))
            else:
                cur.execute(
                    "INSERT INTO sync_state (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

        self._write(work)

    def audit(self, recipient: int) -> AuditTrail:
        def work(cur: Cursor) -> AuditTrail:
            # One snapshot for the three reads.
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            current = cur.execute(
                "SELECT s.sender, o.opted_out, o.country, o.source, o.created_at, o.updated_at "
                "FROM optouts AS o JOIN senders AS s ON s.id = o.sender_id "
                'WHERE o.recipient = %s ORDER BY s.sender COLLATE "C"',
                (recipient,),
            ).fetchall()
            history = cur.execute(
                "SELECT s.sender, h.opted_out, h.source, h.at "
                "FROM history AS h JOIN senders AS s ON s.id = h.sender_id "
                "WHERE h.recipient = %s ORDER BY h.at, h.id",
                (recipient,),
            ).fetchall()
            confirmations = cur.execute(
                "SELECT s.sender, c.target, c.opted_out, c.confirmed_at "
                "FROM confirmations AS c JOIN senders AS s ON s.id = c.sender_id "
                'WHERE c.recipient = %s ORDER BY s.sender COLLATE "C", c.target COLLATE "C"',
                (recipient,),
            ).fetchall()
            return AuditTrail(
                current=[
                    (str(s), bool(o), c, str(src), int(cr), int(up))
                    for s, o, c, src, cr, up in current
                ],
                history=[(str(s), bool(o), str(src), int(at)) for s, o, src, at in history],
                confirmations=[(str(s), str(t), bool(o), int(at)) for s, t, o, at in confirmations],
            )

        return self._read(work, snapshot=True)

    # The outbox of ``optouts serve``: what changed since a mark, and leases per target

    def last_change(self) -> int:
        def work(cur: Cursor) -> int:
            row = cur.execute("SELECT coalesce(max(id), 0) FROM history").fetchone()
            return 0 if row is None else int(row[0])

        return self._read(work)

    def pending_changed(self, target: str, *, after: int, upto: int) -> list[PendingRow]:
        """Ids are taken when rows are written, not when they commit: a writer may commit
        an id below one already read. The caller reads back over a margin for that."""
        query = """
            SELECT o.sender_id, s.sender, o.recipient, o.opted_out
            FROM (SELECT DISTINCT sender_id, recipient FROM history WHERE id > %s AND id <= %s)
                AS h
            JOIN optouts AS o ON o.sender_id = h.sender_id AND o.recipient = h.recipient
            JOIN senders AS s ON s.id = o.sender_id
            LEFT JOIN confirmations AS c
              ON c.target = %s AND c.sender_id = o.sender_id AND c.recipient = o.recipient
            WHERE CASE WHEN c.opted_out IS NULL THEN o.opted_out = 1
                       ELSE c.opted_out <> o.opted_out END
            ORDER BY o.sender_id, o.recipient
        """

        def work(cur: Cursor) -> list[PendingRow]:
            rows = cur.execute(query, (after, upto, target))
            return [(int(i), str(s), int(r), int(o)) for i, s, r, o in rows]

        return self._read(work)

    def lease(self, key: str, owner: str, seconds: float) -> bool:
        """The row's value is ``"<expiry µs> <owner>"``. Times are the server's, so hosts
        whose clocks differ agree on when a lease ends; two takers at once are serialised
        by the row lock ``ON CONFLICT`` takes, and the second sees the first's lease."""
        now = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
        query = f"""
            INSERT INTO sync_state AS s (key, value)
            VALUES (%(key)s, ({now} + %(micros)s)::text || ' ' || %(owner)s)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value
            WHERE substr(s.value, strpos(s.value, ' ') + 1) = %(owner)s
               OR split_part(s.value, ' ', 1)::bigint <= {now}
        """
        micros = round(seconds * 1_000_000)

        def work(cur: Cursor) -> bool:
            cur.execute(query, {"key": key, "owner": owner, "micros": micros})
            return cur.rowcount > 0

        return self._write(work)

    def release(self, key: str, owner: str) -> None:
        def work(cur: Cursor) -> None:
            cur.execute(
                "DELETE FROM sync_state "
                "WHERE key = %s AND substr(value, strpos(value, ' ') + 1) = %s",
                (key, owner),
            )

        self._write(work)


def _rounds(
    keyed: list[tuple[int, int, int, Change]],
) -> Iterator[list[tuple[int, int, int, Change]]]:
    """Split changes sorted by key into lists holding each (sender id, recipient) once."""
    rounds: list[list[tuple[int, int, int, Change]]] = []
    previous: tuple[int, int] | None = None
    depth = 0
    for item in keyed:
        depth = depth + 1 if item[:2] == previous else 0
        previous = item[:2]
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(item)
    yield from rounds
