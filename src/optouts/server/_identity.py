"""Who this instance of the service is, in the ledger's leases: the same after a restart.

The outbox sends to a target only while it holds the target's lease in the ledger, and a
lease names its owner. An owner made up afresh at each start (host, pid, random) meant that
a service killed with ``kill -9`` and started again waited for its own lease to run out
(30 s) before it sent anything. Here the owner is stable: the host, the configured
``instance`` name and a slot number, so a restarted service holds its leases at once.

Two live processes must never share an owner: each would take the other's lease for its
own, and both would send. So an owner is held through an exclusive lock on a file in the
user's data folder, named after the ledger and the instance: the first process on a host
takes slot 0, a second one running beside it slot 1, and so on. The operating system drops
the lock when the process dies, however it dies, so the restarted process finds slot 0
free and is, in the ledger, the one that was killed. Instances on other hosts differ by
host name. Where no lock can be taken (no writable data folder), the owner is made up
afresh, as before, and a restart waits for the lease.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import IO

from .._paths import user_data_dir

__all__ = ["DEFAULT_INSTANCE", "Identity"]

logger = logging.getLogger("optouts.serve")

DEFAULT_INSTANCE = "serve"
SLOTS = 64
"""Processes of one instance name on one host over one ledger, at most, before the owner
is made up afresh."""


class Identity:
    """This process's owner name for the leases of the ledger at ``location``; ``close()``
    (or the process ending) frees it for the next process."""

    def __init__(self, owner: str, lock: IO[bytes] | None) -> None:
        self.owner = owner
        self._lock = lock

    @property
    def stable(self) -> bool:
        """Whether a restarted process gets the same owner (it holds a slot's lock)."""
        return self._lock is not None

    @classmethod
    def claim(
        cls,
        location: str,
        instance: str = DEFAULT_INSTANCE,
        *,
        folder: Path | None = None,
        host: str | None = None,
    ) -> Identity:
        """The first free slot of ``instance`` on this host for the ledger at ``location``."""
        host = host or socket.gethostname() or "localhost"
        folder = folder if folder is not None else user_data_dir() / "serve"
        key = hashlib.sha256(f"{location}\0{instance}".encode()).hexdigest()[:20]
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            for slot in range(SLOTS):
                lock = _try_lock(folder / f"{key}.{slot}.lock")
                if lock is not None:
                    return cls(f"{host}/{instance}/{slot}", lock)
            why = f"all {SLOTS} slots of instance {instance!r} are taken"
        except OSError as exc:
            why = f"cannot lock a file in {folder}: {exc.strerror or exc}"
        owner = f"{host}/{instance}/{os.getpid()}-{secrets.token_hex(4)}"
        logger.warning(
            "the outbox's leases are owned by %s, a name of this process alone (%s): "
            "after a restart it waits for them to run out",
            owner,
            why,
        )
        return cls(owner, None)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the lock
            self._lock = None

    def __repr__(self) -> str:
        return f"<Identity {self.owner}>"


def _try_lock(path: Path) -> IO[bytes] | None:
    """The file at ``path``, opened and locked by this process alone; None if another holds
    it. The lock is the open file's: it goes when the file is closed or the process ends."""
    file = path.open("a+b")
    try:
        if sys.platform == "win32":
            import msvcrt

            file.seek(0)
            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        file.close()
        return None
    except BaseException:
        with contextlib.suppress(OSError):
            file.close()
        raise
    return file
