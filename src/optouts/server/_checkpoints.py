"""The WAL of the service's SQLite ledger, checkpointed off the request path.

SQLite's own way is for the commit that takes the WAL past 1,000 pages to checkpoint it: to
copy the WAL into the database file and fsync it, which held a webhook 50 to 70 ms every
few hundred events. The service's webhook writer never checkpoints (it is opened inside
``leaving_checkpoints``); a thread of its own, on a connection of its own, does instead:

- every ``interval`` that the WAL changed, a PASSIVE checkpoint: it copies what no reader
  still needs and takes no lock a request waits for. A WAL copied whole starts over at the
  writer's next commit, so under steady load it stays the size of an interval's writes;
- when the WAL holds more than ``limit`` bytes all the same (a writer that never pauses,
  or readers that always overlap, keep it from starting over), a RESTART checkpoint: it
  copies the rest and has the next commit start the WAL over. Writers wait for it (a few
  milliseconds, once per ``limit`` bytes written); it waits for readers at most ``busy``
  seconds, and tries again at the next interval if they are still there;
- once nothing was written for ``idle`` seconds, a TRUNCATE checkpoint empties the -wal
  file, so a burst's WAL does not stay on disk.

A writer that commits back to back would starve a RESTART of the write lock (SQLite's busy
handler polls; the writer takes the lock again first), so the service's webhook writer
commits inside ``pause`` (a ``Pause``), where a RESTART or TRUNCATE that asks goes next.

A checkpoint that fails is logged (once while it keeps failing the same way) and tried
again at the next interval: the WAL only grows meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from ..ledger._sqlite_open import Checkpoint, checkpoint, open_for_checkpoints

__all__ = ["Checkpointer", "Pause", "WalTiming"]

logger = logging.getLogger("optouts.serve")


@attrs.frozen
class WalTiming:
    """When the checkpointer acts; the defaults are the service's."""

    interval: float = 0.5
    """Seconds between looks at the WAL."""
    idle: float = 2.0
    """Seconds without a write before the -wal file is emptied."""
    limit: int = 64 * 1024 * 1024
    """Bytes of WAL past which readers are waited for (RESTART)."""
    busy: float = 0.1
    """Seconds a RESTART or TRUNCATE waits for the writer and readers (and they for it)."""


class Pause:
    """Turns between a writer's commits (``with pause:``) and the checkpoints that must stop
    it (``pause.checkpointing()``): a checkpoint that asks goes next, even when the writer
    commits back to back. It waits at the door for the commit under way; the writer's next
    commit waits at the door for it."""

    def __init__(self) -> None:
        self._door = threading.Lock()
        self._room = threading.Lock()

    def __enter__(self) -> Pause:
        with self._door:
            self._room.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self._room.release()

    @contextlib.contextmanager
    def checkpointing(self) -> Iterator[None]:
        with self._door, self._room:
            yield


class Checkpointer:
    """Checkpoints the WAL of the SQLite ledger at ``path`` from a thread, until ``stop()``."""

    def __init__(self, path: Path, timing: WalTiming | None = None) -> None:
        self.path = path
        self.timing = timing or WalTiming()
        self._wal = path.with_name(path.name + "-wal")
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._told: str | None = None
        self.pause = Pause()
        """The webhook writer commits inside it; a RESTART or TRUNCATE stops it."""
        self.last: Checkpoint | None = None
        """What the latest checkpoint did."""
        self.counts: dict[str, int] = {"PASSIVE": 0, "RESTART": 0, "TRUNCATE": 0}
        """Checkpoints run, by mode."""

    def start(self) -> None:
        """Open its connection (a failure raises here) and start the thread."""
        if self._thread is not None:
            raise RuntimeError("the checkpointer starts once")
        self._db = open_for_checkpoints(self.path, self.timing.busy)
        self._thread = threading.Thread(target=self._run, name="optouts-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the checkpoint under way) and close its connection."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        if self._db is not None:
            self._db.close()

    def _run(self) -> None:
        db = self._db
        assert db is not None
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
        seen = _stamp(self._wal)
        changed = time.monotonic()
        while not self._stopping.wait(self.timing.interval):
            now = time.monotonic()
            stamp = _stamp(self._wal)
            try:
                if stamp != seen:
                    changed = now
                    done = self._checkpoint(db, "PASSIVE")
                    if done.frames * page > self.timing.limit:
                        self._checkpoint(db, "RESTART")
                elif stamp[0] > 0 and now - changed >= self.timing.idle:
                    self._checkpoint(db, "TRUNCATE")
                self._told = None
            except sqlite3.Error as error:
                message = f"{type(error).__name__}: {error}"
                if message != self._told:
                    logger.warning("cannot checkpoint the ledger's WAL: %s", message)
                    self._told = message
            seen = _stamp(self._wal)  # a checkpoint may have changed it

    def _checkpoint(self, db: sqlite3.Connection, mode: str) -> Checkpoint:
        started = time.perf_counter()
        if mode == "PASSIVE":
            done = checkpoint(db, mode)
        else:
            with self.pause.checkpointing():
                done = checkpoint(db, mode)
        logger.debug(
            "WAL checkpoint %s: %d pages, %d in the file, %.1f ms%s",
            mode,
            done.frames,
            done.copied,
            (time.perf_counter() - started) * 1000,
            " (busy)" if done.busy else "",
        )
        self.last = done
        self.counts[mode] += 1
        return done


def _stamp(wal: Path) -> tuple[int, int]:
    """The -wal file's size and modification time (0, 0 when there is none)."""
    with contextlib.suppress(OSError):
        found = os.stat(wal)
        return found.st_size, found.st_mtime_ns
    return 0, 0
