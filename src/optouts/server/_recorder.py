"""Webhook events into the ledger, many requests a commit (group commit).

A request hands the changes its events ask for to ``Recorder.record`` and waits. One task
takes every request queued, records all their changes with one ``Ledger.record`` (one
transaction, one commit) on the recorder's own thread, and answers each request with what
became of its own changes; requests that arrive meanwhile are the next group. Nothing waits
to fill a group: a request alone is committed at once, and under load a group is whatever
came in during the commit before it, so commits a second stay about level while events a
second grow. Each request hears back only once its own changes are committed.

A commit that fails fails its group's requests, every one, with ``NotRecorded`` (the
vendor delivers again); the failure is logged once, with the group's size, and the next
group is tried afresh.

Which changes a commit took is read from the ledger just before it (``Ledger.held``) with
the rule ``record`` applies (``takes``), in the order it applies them. Another writer that
changes one of the same pairs in between can make a request's count of what it recorded
wrong, never what the ledger holds; the commit's own count, which is exact, is what wakes
the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import attrs

from .._errors import OptOutError
from ..ledger import Change, Ledger
from ..ledger._base import takes

__all__ = ["GROUP_EVENTS", "NotRecorded", "Recorder"]

logger = logging.getLogger("optouts.serve")

GROUP_EVENTS = 2_000
"""Changes a commit takes at most (a request with more is a group of its own): enough for
every request a busy second brings, few enough that a commit stays a few milliseconds."""

Pair = tuple[str, int]
State = tuple[bool, str, int]


class NotRecorded(Exception):
    """The commit that held a request's changes failed: nothing of its group was recorded.

    ``ledger`` says the ledger refused or was out of reach (an ``OptOutError``), rather
    than a bug."""

    def __init__(self, message: str, *, ledger: bool) -> None:
        super().__init__(message)
        self.ledger = ledger


@attrs.define
class _Waiting:
    changes: Sequence[Change]
    answer: asyncio.Future[list[bool]]


class Recorder:
    """Records the changes of concurrent requests a group per commit, in ``ledger``.

    ``on_recorded()`` is called on the event loop after each commit that changed the ledger
    (the outbox's ``wake``). Each commit holds ``pause`` (the WAL checkpointer's, which a
    checkpoint that must start the WAL over takes first). Start it with ``start()`` on the
    loop that will call ``record``; ``close()`` commits what is queued, then stops it.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        on_recorded: Callable[[], None],
        pause: AbstractContextManager[object] | None = None,
        group_events: int = GROUP_EVENTS,
    ) -> None:
        if group_events < 1:
            raise ValueError("a group holds at least one change")
        self._ledger = ledger
        self._on_recorded = on_recorded
        self._pause = pause if pause is not None else contextlib.nullcontext()
        self._group_events = group_events
        self._queue: asyncio.Queue[_Waiting | None] = asyncio.Queue()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="optouts-recorder")
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the recorder starts once")
        self._task = asyncio.create_task(self._run(), name="optouts recorder")

    async def record(self, changes: Sequence[Change]) -> list[bool]:
        """Commit ``changes`` (with whatever else is queued); whether each was taken: False
        when the ledger knew it already, or knew something newer. ``NotRecorded`` when the
        commit failed, or the recorder is not running (stopping)."""
        if self._closed or self._task is None:
            raise NotRecorded("the service is not recording (starting or stopping)", ledger=False)
        if not changes:
            return []
        waiting = _Waiting(changes, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(waiting)
        return await waiting.answer

    async def close(self) -> None:
        """Take no more; commit what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await asyncio.wait([self._task])
        self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        group: list[_Waiting] = []
        try:
            last = False
            while not last:
                first = await self._queue.get()
                if first is None:
                    return
                group = [first]
                count = len(first.changes)
                while count < self._group_events and not self._queue.empty():
                    more = self._queue.get_nowait()
                    if more is None:
                        last = True
                        break
                    group.append(more)
                    count += len(more.changes)
                await self._commit(loop, [w for w in group if not w.answer.cancelled()])
        finally:  # cancelled: no request is left waiting for an answer that never comes
            while not self._queue.empty():
                queued = self._queue.get_nowait()
                if queued is not None:
                    group.append(queued)
            for waiting in group:
                if not waiting.answer.done():
                    waiting.answer.set_exception(
                        NotRecorded("the service stopped before the commit", ledger=False)
                    )

    async def _commit(self, loop: asyncio.AbstractEventLoop, group: list[_Waiting]) -> None:
        if not group:
            return
        try:
            taken, applied = await loop.run_in_executor(
                self._thread, self._write, [w.changes for w in group]
            )
        except Exception as exc:  # the whole group failed; the next one is tried afresh
            ledger = isinstance(exc, OptOutError)
            changes = sum(len(w.changes) for w in group)
            what = f"{len(group)} webhook requests ({changes} changes)"
            if ledger:
                logger.error("the ledger did not record %s: %s", what, exc)
            else:
                logger.exception("recording %s failed", what)
            for waiting in group:
                if not waiting.answer.done():
                    failure = NotRecorded(
                        f"the commit of this request's group failed: {type(exc).__name__}",
                        ledger=ledger,
                    )
                    waiting.answer.set_exception(failure)
            return
        for waiting, flags in zip(group, taken, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(flags)
        if applied:
            self._on_recorded()

    def _write(self, batches: list[Sequence[Change]]) -> tuple[list[list[bool]], int]:
        """On the recorder's thread: one commit for every batch's changes; which of each
        batch it took, and how many it took in all."""
        changes = [change for batch in batches for change in batch]
        flags = _taken(changes, self._held(changes))
        with self._pause:
            applied = self._ledger.record(changes)
        if applied != sum(flags):
            logger.debug("another writer changed pairs of a group while it was recorded")
        taken: list[list[bool]] = []
        start = 0
        for batch in batches:
            taken.append(flags[start : start + len(batch)])
            start += len(batch)
        return taken, applied

    def _held(self, changes: Sequence[Change]) -> dict[Pair, State]:
        by_sender: dict[str, set[int]] = {}
        for change in changes:
            by_sender.setdefault(change.sender, set()).add(change.recipient)
        return {
            (sender, recipient): state
            for sender, recipients in by_sender.items()
            for recipient, state in self._ledger.held(sender, sorted(recipients)).items()
        }


def _taken(changes: Sequence[Change], held: dict[Pair, State]) -> list[bool]:
    """Whether ``record`` takes each of ``changes`` over ``held``: dated changes first, then
    undated ones, the changes of one pair in the order given, as ``record`` applies them."""
    state: dict[Pair, State] = dict(held)
    flags = [False] * len(changes)
    dated = [n for n, change in enumerate(changes) if change.dated]
    undated = [n for n, change in enumerate(changes) if not change.dated]
    for n in dated + undated:
        change = changes[n]
        pair = (change.sender, change.recipient)
        if takes(state.get(pair), change):
            flags[n] = True
            state[pair] = (change.opted_out, change.source, change.at)
    return flags
