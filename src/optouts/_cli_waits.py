"""Waits a person can see: on a terminal, each pause over two seconds is a line on stderr.

Whatever decides a pause announces it on the logger ``optouts.wait`` (``_retry`` for
backoff and Retry-After, a provider for its own pacing): an INFO record when it lasts over
``SHOWN_WAIT`` seconds, DEBUG otherwise, so a debug log has them all. Without this, a run
that waits a minute for a rate limit looks hung.

When stderr is a terminal, ``show`` adds a handler for the length of the command that
writes the INFO ones as ``optouts: waiting 58 s: RingCentral allows 5 logins a minute``.
The line first clears the one the cursor is on, so a progress bar drawn there by rich is
replaced rather than mangled, and is redrawn under it. A root handler already writing to
stderr (``optouts serve``'s log) shows the record itself, so it is not written twice.
When stderr is not a terminal nothing is added: the application's logging decides.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from ._errors import printable
from ._retry import wait_logger

__all__ = ["show"]

_CLEAR_LINE = "\r\x1b[2K"


class _WaitLines(logging.Handler):
    """Writes each wait record as one ``optouts:`` line on the current ``sys.stderr``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        if _written_by_root(record):
            return
        try:
            clear = "" if os.environ.get("TERM") == "dumb" else _CLEAR_LINE
            sys.stderr.write(f"{clear}optouts: {printable(record.getMessage())}\n")
            sys.stderr.flush()
        except Exception:  # a log line must never end the command
            self.handleError(record)


def _written_by_root(record: logging.LogRecord) -> bool:
    """Whether a root handler writes ``record`` to stderr already (the service's log)."""
    return any(
        isinstance(handler, logging.StreamHandler)
        and getattr(handler, "stream", None) in (sys.stderr, sys.__stderr__)
        and record.levelno >= handler.level
        for handler in logging.getLogger().handlers
    )


def show(ctx: click.Context) -> None:
    """Show waits over two seconds on stderr for this command, if stderr is a terminal."""
    if not sys.stderr.isatty():
        return
    handler = _WaitLines()
    level = wait_logger.level
    wait_logger.addHandler(handler)
    if wait_logger.getEffectiveLevel() > logging.INFO:
        wait_logger.setLevel(logging.INFO)

    def undo() -> None:
        wait_logger.removeHandler(handler)
        wait_logger.setLevel(level)

    ctx.call_on_close(undo)
