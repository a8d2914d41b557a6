"""Opening a SQLite ledger file: read-only for a read, read-write (creating it) for a write.

A read opens the file with SQLite's ``mode=ro`` and runs nothing that writes: no WAL switch,
no page size, no migration. So a mistyped path is an error instead of a new, empty ledger,
and a ledger the user may only read (a file or folder without write permission) can still
be checked, listed, exported and audited.

A WAL database needs its ``-wal`` and ``-shm`` files to be read; SQLite creates them when
they are missing (a read-only connection leaves them behind, for the next writer to
remove). In a folder the user cannot write they cannot be created, and SQLite's answer
(https://www.sqlite.org/wal.html, "Read-Only Databases") is the ``immutable`` parameter,
which reads the file alone and takes no locks. That is right only when nothing waits to
be replayed into the file, so it is used only when there is no ``-wal`` or ``-journal``
file with content; otherwise the read fails, saying so, rather than answer from a stale file.
Such a connection never sees a later change, so its file's ``stamp`` is kept: a store
opens it again when the file changed, or when a writer's ``-wal`` appeared (with its
``-shm``, which then lets an ordinary read-only connection follow the writer).

A write opens the file read-write, creating its folder (0700) and the file (0600) if
missing, switches it to WAL and creates or upgrades the tables.

By default a write connection checkpoints the WAL itself, in the commit that takes it past
1,000 pages: that commit waits for the copy into the file and its fsync (tens of
milliseconds). A process that checkpoints from a thread of its own (``optouts serve``)
opens its writer inside ``leaving_checkpoints()``; that connection never checkpoints, and
the process runs ``checkpoint`` on a connection of its own (``open_for_checkpoints``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from stat import S_ISDIR
from typing import NamedTuple

from .._errors import ConfigurationError, ProviderError
from ._schema import SCHEMA_VERSION, STATEMENTS

__all__ = [
    "Checkpoint",
    "Stamp",
    "busy_error",
    "checkpoint",
    "is_busy",
    "leaving_checkpoints",
    "ledger_file",
    "open_for_checkpoints",
    "open_for_reading",
    "open_for_writing",
    "stamp",
]

Stamp = tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]
"""A ledger file and its -wal as they are now: inode, size and modification time (ns) of
each (None for one that is not there)."""

_UNSEEN: Stamp = ((-1, -1, -1), None)
"""The stamp of a file that could not be seen: it never matches, so the file is reopened."""
_SETTING = "(setting database, OPTOUTS_LOCAL_DATABASE)"
_READONLY, _CANTOPEN = 8, 14
"""SQLite's primary result codes for "attempt to write a readonly database" and "unable to
open database file": what a read-only connection meets when it cannot create -wal or -shm."""
_BUSY, _LOCKED = 5, 6
"""SQLite's primary result codes for "database is locked" (another connection held a lock
longer than the busy timeout) and "database table is locked"."""
_MESSAGES = {
    "attempt to write a readonly database": _READONLY,
    "unable to open database file": _CANTOPEN,
    "database is locked": _BUSY,
    "database table is locked": _LOCKED,
}
"""The same codes by SQLite's text, for Python 3.10 (no ``sqlite_errorcode``)."""
WAL_KEPT = 64 * 1024 * 1024
"""Bytes of -wal file a connection that leaves checkpoints to another keeps when the WAL
starts over: a burst's WAL is not kept on disk once it has been copied into the file."""
_SQLITE_HEADER = b"SQLite format 3\x00"
_leaving = ContextVar("optouts_leaving_checkpoints", default=False)


def open_for_reading(
    path: Path, busy_timeout: float
) -> tuple[sqlite3.Connection, Stamp | None] | None:
    """A read-only connection to the ledger at ``path``, with the file's stamp if it reads
    the file alone (immutable); None if the file holds no ledger yet (empty, or another
    program's database). A missing file is a ``ConfigurationError``."""
    try:
        found = path.stat()
    except FileNotFoundError:
        raise ConfigurationError(
            f"there is no ledger at {path}: a read never creates one, so check the path; "
            f"a write (add, remove, import, sync) creates it {_SETTING}"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the ledger at {path}: {exc.strerror} {_SETTING}"
        ) from None
    if S_ISDIR(found.st_mode):
        raise _a_directory(path)
    uri = path.absolute().as_uri()
    alone: Stamp | None = None
    try:
        db, version = _read_only(f"{uri}?mode=ro", busy_timeout)
    except sqlite3.Error as exc:
        if is_busy(exc):
            raise busy_error(path, busy_timeout) from None
        if _code(exc) not in (_READONLY, _CANTOPEN):
            raise _cannot_read(path, exc) from None
        waiting = _waiting(path)
        if waiting is not None:
            raise ConfigurationError(
                f"cannot read the ledger at {path}: its {waiting.name} file holds changes "
                f"that only a process allowed to write in {path.parent} can replay {_SETTING}"
            ) from None
        try:  # -wal or -shm cannot be created, and there is nothing to replay
            # stamped before reading, so a change meanwhile shows at the next read
            alone = stamp(path) or _UNSEEN
            db, version = _read_only(f"{uri}?mode=ro&immutable=1", busy_timeout)
        except sqlite3.Error as again:
            if is_busy(again):
                raise busy_error(path, busy_timeout) from None
            raise _cannot_read(path, exc) from None
    if version > SCHEMA_VERSION:
        db.close()
        raise _newer(path, version)
    if version == 0:  # the tables and the version are written in one transaction
        db.close()
        return None
    return db, alone


def stamp(path: Path) -> Stamp | None:
    """``path`` and its -wal as they are now; None if the file cannot be seen."""
    file = _identity(path)
    return None if file is None else (file, _identity(path.with_name(path.name + "-wal")))


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


def open_for_writing(path: str, busy_timeout: float) -> tuple[sqlite3.Connection, bool]:
    """A read-write connection to the ledger at ``path`` (a file, or ``:memory:``), the file
    and tables created if missing; and whether this created the ledger."""
    if path != ":memory:" and _is_dir(Path(path)):
        raise _a_directory(Path(path))
    try:
        if path != ":memory:":
            _create_private(Path(path))
        db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except (sqlite3.Error, OSError) as exc:
        raise _cannot_write(path, exc, busy_timeout) from None
    try:
        # Bigger pages for a new file: bulk writes into random keys split and rebalance
        # fewer pages (about 10 % faster imports); an existing file keeps its size.
        db.execute("PRAGMA page_size = 16384")
        _enable_wal(db, busy_timeout)
        db.execute("PRAGMA synchronous = NORMAL")
        _tune(db)
        if _leaving.get():
            db.execute("PRAGMA wal_autocheckpoint = 0")
            db.execute(f"PRAGMA journal_size_limit = {WAL_KEPT}")
        created = _migrate(db, path)
    except BaseException as exc:
        db.close()
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise _cannot_write(path, exc, busy_timeout) from None
        raise
    return db, created


@contextmanager
def leaving_checkpoints() -> Iterator[None]:
    """Write connections opened in this block (in this thread or task) never checkpoint the
    WAL: the caller does it elsewhere, with ``checkpoint``, or the WAL grows without end."""
    token = _leaving.set(True)
    try:
        yield
    finally:
        _leaving.reset(token)


class Checkpoint(NamedTuple):
    """What ``PRAGMA wal_checkpoint`` did."""

    busy: bool
    """It could not do all it was asked (a writer or reader was in the way)."""
    frames: int
    """Pages the WAL holds now (-1: the file is not in WAL mode)."""
    copied: int
    """Of those, pages in the database file now."""


def ledger_file(location: str) -> Path | None:
    """The SQLite database file a ledger's ``location`` names; None for an in-memory ledger,
    a PostgreSQL one, or a path that holds no SQLite database."""
    if location == ":memory:" or "://" in location:
        return None
    path = Path(location)
    try:
        with path.open("rb") as file:
            header = file.read(len(_SQLITE_HEADER))
    except OSError:
        return None
    return path if header == _SQLITE_HEADER else None


def open_for_checkpoints(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A connection to the existing ledger at ``path`` that only checkpoints: read-write, as
    a checkpoint writes the file, and creating nothing."""
    try:
        db = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw",
            uri=True,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise _cannot_write(str(path), exc, busy_timeout) from None
    return db


def checkpoint(db: sqlite3.Connection, mode: str = "PASSIVE") -> Checkpoint:
    """Copy the WAL into the database file: ``PASSIVE`` takes no lock that a reader or a
    writer waits for, copying what it can; ``RESTART`` and ``TRUNCATE`` wait (the busy
    timeout) for the writer and the readers, copy everything, then start the WAL over
    (``TRUNCATE`` also empties the -wal file), so writers wait while they run."""
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(f"no checkpoint mode {mode!r}")
    busy, frames, copied = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return Checkpoint(bool(busy), int(frames), int(copied))


def _read_only(uri: str, busy_timeout: float) -> tuple[sqlite3.Connection, int]:
    """A read-only connection and the file's schema version: reading it opens the -wal and
    -shm, so a failure to create them shows here, not at a later read."""
    db = sqlite3.connect(
        uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        _tune(db)
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    except BaseException:
        db.close()
        raise
    return db, version


def _tune(db: sqlite3.Connection) -> None:
    """This connection's own settings: nothing written to the file."""
    db.execute("PRAGMA cache_size = -16384")
    db.execute("PRAGMA temp_store = MEMORY")


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else _MESSAGES.get(str(exc))


def _waiting(path: Path) -> Path | None:
    """A ``-wal`` or ``-journal`` file with content: changes the file alone does not hold."""
    for suffix in ("-wal", "-journal"):
        beside = path.with_name(path.name + suffix)
        with suppress(OSError):
            if beside.is_file() and beside.stat().st_size > 0:
                return beside
    return None


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite giving up on a lock another connection holds."""
    return isinstance(exc, sqlite3.Error) and _code(exc) in (_BUSY, _LOCKED)


def busy_error(location: Path | str, busy_timeout: float) -> ProviderError:
    """The ledger is fine and so is the setting: another process is writing to it (or
    stuck holding it), and the wait for it ran out. Worth another try, later."""
    return ProviderError(
        f"the ledger at {location} is busy: another process has held it locked for more "
        f"than {busy_timeout:g} s; try again when that process is done",
        provider="local",
        retryable=True,
    )


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a folder on the way that cannot be entered: opening says so
        return False


def _a_directory(path: Path) -> ConfigurationError:
    return ConfigurationError(
        f"the ledger path {path} is a directory, not a file: name the ledger file "
        f"(for example {path / 'ledger.db'}) {_SETTING}"
    )


def _cannot_read(path: Path, exc: sqlite3.Error) -> ConfigurationError:
    return ConfigurationError(f"cannot read the ledger at {path}: {exc} {_SETTING}")


def _cannot_write(
    path: str, exc: BaseException, busy_timeout: float
) -> ConfigurationError | ProviderError:
    if is_busy(exc):
        return busy_error(path, busy_timeout)
    if isinstance(exc, sqlite3.Error) and _code(exc) == _READONLY:
        return ConfigurationError(
            f"the ledger at {path} is read-only (the file or its folder cannot be written): "
            f"it can be read, not changed {_SETTING}"
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return ConfigurationError(f"cannot open the ledger at {path} to write: {reason} {_SETTING}")


def _newer(path: Path | str, version: int) -> ConfigurationError:
    return ConfigurationError(
        f"ledger {path} has schema version {version}, newer than this "
        f"optouts understands ({SCHEMA_VERSION}); upgrade optouts"
    )


def _create_private(path: Path) -> None:
    """Create the ledger's folder (0700) and file (0600) for the user alone, if missing.

    The ledger holds customers' numbers: others on the machine must not read it. SQLite
    gives its -wal and -shm files the database file's mode. Existing files and folders
    keep the mode their owner gave them.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _enable_wal(db: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch to WAL, waiting for other connections: SQLite's busy handler does not."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _migrate(db: sqlite3.Connection, path: str) -> bool:
    """Create or upgrade the tables in one transaction; whether there were none before.

    A ledger already at this version is left as it is: opening one to write (a dry run's
    rehearsal, say) must change nothing in the file.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        if version == SCHEMA_VERSION:
            # Nothing to do: a write that is rolled back proves the file may be written
            # (a read-only one fails here, clearly) and leaves nothing in it.
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("ROLLBACK")
            return False
        for statement in STATEMENTS:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return version == 0
