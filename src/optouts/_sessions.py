"""Whether a vendor session may outlive the client that opened it.

A person at the command line runs command after command, and a vendor that allows a
handful of logins a minute (RingCentral: five) would make every third quick run wait; an
application's clients, by contrast, should leave nothing behind unless asked. So the
command line says "keep sessions" for the length of its command (``keeping_sessions``),
and a provider that can keep one asks ``keeps_sessions()`` for its default when it is
built. A context variable, not a global: a thread or task that the command did not start
keeps the library's default.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["keeping_sessions", "keeps_sessions"]

_KEEP: contextvars.ContextVar[bool] = contextvars.ContextVar("optouts_keep_sessions", default=False)


def keeps_sessions() -> bool:
    """True while the ``optouts`` command line runs a command: sessions may be kept."""
    return _KEEP.get()


@contextlib.contextmanager
def keeping_sessions() -> Iterator[None]:
    """Let providers built inside the block keep their sessions."""
    token = _KEEP.set(True)
    try:
        yield
    finally:
        _KEEP.reset(token)
