"""A progress bar on stderr, for output that goes somewhere a person cannot watch.

It shows rate and ETA (no ETA for stdin) when stderr is a terminal and stdout is not: when
both are the terminal, the rows themselves show the progress, and a bar redrawn between
them would tear them apart.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["Bar", "wanted"]

_STEP = 1_000
"""Results counted before the bar hears of them: rich takes about a millisecond an update."""


def wanted() -> bool:
    """Whether a bar would help: stderr is a terminal, and the results go elsewhere."""
    return sys.stderr.isatty() and not sys.stdout.isatty()


class _Rate(ProgressColumn):
    """Recipients a second, once there is enough to measure."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class Bar:
    """The bar while the command runs (a context manager), or nothing when not ``wanted``."""

    def __init__(self, label: str, total: int | None) -> None:
        self._bar: Progress | None = None
        self._pending = 0
        if wanted():
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                _Rate(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
                # Results go to stdout as they come; through rich they crawl (1,000 rows/s).
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(label, total=total)

    def __enter__(self) -> Bar:
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._flush()
            self._bar.stop()

    def advance(self) -> None:
        if self._bar:
            self._pending += 1
            if self._pending >= _STEP:
                self._flush()

    def _flush(self) -> None:
        if self._bar and self._pending:
            self._bar.advance(self._task, self._pending)
            self._pending = 0
