"""One vendor's side of the outbox: a loop that tells it, round after round, every state the
ledger holds and it has not confirmed.

**Rounds.** A round reads what is pending for the target (in a thread: the ledger blocks),
sends it as add and remove calls of at most ``CALL_SIZE`` recipients per sender and state,
and confirms in the ledger what each call accepted before the next call goes. A process
killed at any moment has lost at most the calls in flight: their states are still pending
and are sent again after a restart (add and remove set a state, so a second send changes
nothing). A state the target confirmed is never read as pending again, so it is never sent
twice.

**Reading.** A round reads either everything pending (``Ledger.pending``: at start, on
taking a target over, every ``full_scan`` seconds, and to retry refusals) or only the pairs
changed since an earlier round (``Ledger.pending_since``: after a wake, and every ``rescan``
seconds for what other processes wrote). An incremental read costs what changed, under a
millisecond; a full read of a million pairs takes one to two seconds, holding the ledger
object it reads through, so they are rare. Incremental reads start from the mark of a
round at least ``lookback`` seconds old, because a PostgreSQL writer may commit a change
under a mark already read; the full reads catch what even that misses, and states that
become pending without a change (a sync confirming its source's older state).

**Pacing.** A round takes everything pending, so wakes coalesce: ten STOPs a second are one
call a round, not ten. A target's rounds start at least ``gap`` apart and, after a round
that sent *n* requests, *n* × the target's ``spacing`` apart: RingCentral allows 50 requests
a minute, and rounds that spent a minute's budget in a burst would leave the next STOP
waiting for the window to turn (the client's pacer waits rather than draw a 429, but the
wait is the STOP's latency).

**Failures.** The client retries within a call. Between rounds, a target that took nothing
(down, or refusing the credentials) is left alone for an exponential backoff with jitter,
longer after an ``AuthenticationError``; wakes do not cut it short. Then what it did not
take is read again: from the mark before the failed round (no full read, however long the
outage), or by a full round if that round was one. States refused while others went
through are read again by a full round after a backoff of their own, so one number a
vendor refuses does not slow down the next STOP. States the target can never hold
(``cannot_hold``: a missing operation, Azure's account-wide ``*``) stay pending in the
ledger, as a sync leaves them, but are never sent: they are logged once and counted in the
health report's ``skipped``.

**Claims.** Instances sharing a ledger take turns per target through a lease in the ledger
(``Ledger.lease``): only the holder sends to the target. It renews the lease every third of
its length, while a call is in flight too, and cancels the round if it finds the lease
lost. A killed holder's lease runs out, and another instance takes over with a full round;
the killed one restarted has the same owner (``_identity``), so it takes its leases back at
once, with a full round too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timezone
from types import MappingProxyType

import attrs

from .._client import AsyncClient
from .._errors import OptOutError
from .._push import Verdict, accepted, cannot_hold, e164, verdict
from ..ledger import Ledger
from ._metrics import Metrics

__all__ = ["CALL_SIZE", "SPACING", "Backoff", "Courier", "Timing"]

logger = logging.getLogger("optouts.outbox")

CALL_SIZE = 1_000
"""Recipients per add or remove call, each call confirmed before the next: one RingCentral
bulk request, ten Azure requests (sent four at a time)."""
ROUND_SIZE = 100_000
"""Most states a round reads; a round that reads this many is followed by another at once."""
SPACING: Mapping[str, float] = MappingProxyType({"ringcentral": 60 / 48})
"""Seconds per request a round of a target spends before the next may start: RingCentral's
published 50 requests a minute, less two for whatever else uses the credentials (a sync, a
check). Its client's pacer still keeps to the limit the vendor's headers state."""

Group = tuple[str, bool, list[int]]
_jitter = random.Random()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC, as the ledger writes times: ``2026-11-25T10:00:00.125Z``."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@attrs.frozen
class Backoff:
    """How long a failing target is left alone: doubling from ``base`` with each round in a
    row that failed, up to ``cap``, drawn from the upper half (jitter, so instances that
    failed together do not come back together). Refused credentials need a person, and
    RingCentral allows five logins a minute: they wait from ``auth_base`` to ``auth_cap``."""

    base: float = 1.0
    cap: float = 300.0
    auth_base: float = 30.0
    auth_cap: float = 1800.0

    def after(
        self, failures: int, *, auth: bool = False, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after the ``failures``-th failed round in a row."""
        base, cap = (self.auth_base, self.auth_cap) if auth else (self.base, self.cap)
        ceiling = min(cap, base * 2.0 ** min(max(failures, 1) - 1, 64))
        return (rng or _jitter).uniform(ceiling / 2, ceiling)


@attrs.frozen
class Timing:
    """The outbox's clockwork, in seconds; the defaults are the service's."""

    rescan: float = 1.0
    """Between looks at what changed when nothing woke the outbox: another instance or a
    command line wrote it. Such a look costs two indexed queries."""
    full_scan: float = 900.0
    """Between full reads of what a target has not confirmed (see "Reading" above)."""
    lease: float = 30.0
    """How long a target's lease lasts unless renewed: a killed instance's is taken over
    this long after its last renewal."""
    lookback: float = 10.0
    """How far behind the newest mark incremental reads start (PostgreSQL commit order)."""
    gap: float = 0.05
    """Least time between the starts of two rounds of one target."""
    spacing: Mapping[str, float] = SPACING
    """Per target name: seconds per request a round spent before the next may start."""
    backoff: Backoff = Backoff()


@attrs.define
class _Tally:
    """What one round did."""

    accepted: int = 0
    failed: int = 0
    """Refused, or not sent because the target refused the credentials."""
    skipped: int = 0
    unsent: int = 0
    """Not sent because the service is stopping."""
    requests: int = 0
    more: bool = False
    """The round read ``ROUND_SIZE`` states and left the rest for the next."""
    auth: bool = False
    error: str | None = None


class Courier:
    """Carries the ledger's pending states to one target; ``Outbox`` runs one per target."""

    def __init__(
        self,
        ledger: Ledger,
        client: AsyncClient,
        *,
        metrics: Metrics,
        owner: str,
        timing: Timing,
    ) -> None:
        self.client = client
        self.name = client.provider.name
        self._ledger = ledger
        self._metrics = metrics
        self._owner = owner
        self._timing = timing
        self._spacing = timing.spacing.get(self.name, 0.0)
        self._lease = f"outbox:{self.name}"
        self._rng = random.Random()
        self._signal = asyncio.Event()
        self._woken = True  # the first round goes at once
        self._stopping = False
        self._held = False
        self._lease_checked = -math.inf
        self._marks: deque[tuple[float, int]] = deque()
        """(loop time a round started, the ledger's change mark read then), oldest first."""
        self._full_due = -math.inf
        self._hold_until = -math.inf
        self._next_round = -math.inf
        self._last_round = -math.inf
        self._down = 0
        """Rounds in a row the target took nothing of."""
        self._retries = 0
        """Full rounds in a row that left refused states."""
        self._retrying = False
        self._failing = 0
        self._told_skipped: set[tuple[str, bool]] = set()
        self._backlog: int | None = None
        self._skipped = 0
        self._counted = (0, 0)
        """(pending, skipped) as of the last full read, plus what windows since left."""
        self._window = (0, 0)
        """(pending, skipped) the latest window of changes left, while it is read again."""
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None

    # What the outbox asks of it (on the event loop's thread)

    def wake(self) -> None:
        self._woken = True
        self._signal.set()

    def stop(self) -> None:
        self._stopping = True
        self._signal.set()

    def health(self) -> dict[str, object]:
        return {
            "last_success": _iso(self._last_success),
            "last_error": self._last_error,
            "last_error_at": _iso(self._last_error_at),
            "pending": self._backlog if self._held else None,
            "skipped": self._skipped if self._held else None,
            "failures": self._failing,
            "leased": self._held,
        }

    async def run(self) -> None:
        """Rounds until ``stop()``; a clean stop gives up the lease for another instance."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await self._until_due(loop)
            if self._stopping:
                break
            if await self._keep_lease(loop) and self._round_due(loop.time()):
                await self._guarded_round(loop)
        if self._held:
            await self._release()

    # When

    async def _until_due(self, loop: asyncio.AbstractEventLoop) -> None:
        while not self._stopping:
            self._signal.clear()
            delay = self._due() - loop.time()
            if delay <= 0:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._signal.wait(), delay)

    def _due(self) -> float:
        """When there is something to do: renew (or try for) the lease, or a round."""
        renew = self._lease_checked + self._timing.lease / 3
        if not self._held:
            return renew
        allowed = max(self._hold_until, self._next_round)
        if self._woken:
            return min(renew, allowed)
        return min(renew, max(allowed, min(self._last_round + self._timing.rescan, self._full_due)))

    def _round_due(self, now: float) -> bool:
        if now < max(self._hold_until, self._next_round):
            return False
        return self._woken or now >= min(self._last_round + self._timing.rescan, self._full_due)

    # Who

    async def _keep_lease(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether this instance holds the target's lease, renewing it when a third is gone."""
        now = loop.time()
        if self._held and now < self._lease_checked + self._timing.lease / 3:
            return True
        try:
            held = await asyncio.to_thread(
                self._ledger.lease, self._lease, self._owner, self._timing.lease
            )
        except Exception as error:  # the ledger out of reach: nothing can be sent or confirmed
            logger.warning("outbox %s: cannot renew its lease: %s", self.name, error)
            self._failed(f"the ledger: {error}")
            held = False
        self._lease_checked = now
        if held and not self._held:
            logger.info("outbox %s: sending from this instance (%s)", self.name, self._owner)
            self._marks.clear()  # what happened while another held it is unknown: read all
            self._full_due = now
        elif self._held and not held:
            logger.warning("outbox %s: lost its lease; another instance sends now", self.name)
            self._forget_pending()
        self._held = held
        return held

    async def _release(self) -> None:
        try:
            await asyncio.to_thread(self._ledger.release, self._lease, self._owner)
        except Exception as error:  # it runs out by itself
            logger.warning("outbox %s: cannot give up its lease: %s", self.name, error)
        self._held = False
        self._forget_pending()

    def _forget_pending(self) -> None:
        """Only the holder's count is reported: summed over instances, the gauge is right."""
        with contextlib.suppress(KeyError):
            self._metrics.pending.remove(self.name)

    async def _guarded_round(self, loop: asyncio.AbstractEventLoop) -> None:
        """A round, renewing the lease while it runs; cancelled if the lease is lost."""
        work = asyncio.ensure_future(self._round(loop))
        try:
            while not work.done():
                renew = self._lease_checked + self._timing.lease / 3 - loop.time()
                await asyncio.wait({work}, timeout=max(renew, 0.0))
                if not work.done() and not await self._keep_lease(loop):
                    work.cancel()
        finally:
            if not work.done():
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work

    # What

    async def _round(self, loop: asyncio.AbstractEventLoop) -> None:
        started = loop.time()
        full = not self._marks or started >= self._full_due
        since = None if full else self._since(started)
        self._woken = False
        tally = _Tally()
        mark: int | None = None
        broken = True
        try:
            mark = await asyncio.to_thread(self._ledger.change_mark)
            groups = await asyncio.to_thread(self._read, since, tally)
            for sender, opted_out, recipients in groups:
                await self._send_group(sender, opted_out, recipients, tally)
            broken = False
        except asyncio.CancelledError:
            tally.error = tally.error or "cancelled while sending"
            raise
        except Exception as error:  # a bug or the ledger: reported, backed off, never fatal
            logger.exception("outbox %s: the round failed", self.name)
            tally.error = f"{type(error).__name__}: {error}"
        finally:
            # Everything read was tried: what failed is the retry's (see ``_settle``).
            whole = not broken and not tally.more and not tally.unsent
            self._settle(loop.time(), started, full, mark if whole else None, tally)

    def _read(self, since: int | None, tally: _Tally) -> list[Group]:
        """Up to ``ROUND_SIZE`` states to send, grouped by (sender, state); in a thread. States
        the target cannot hold are counted and left out."""
        if since is None:
            reading = self._ledger.pending(self.name)
        else:
            reading = self._ledger.pending_since(self.name, since)
        groups: list[Group] = []
        count = 0
        # Left unfinished, the reading holds nothing: the ledger reads a page at a time.
        for sender, opted_out, recipients in reading:
            why = cannot_hold(self.client.provider, sender, opted_out)
            if why is not None:
                self._skip(sender, opted_out, len(recipients), why, tally)
                continue
            groups.append((sender, opted_out, recipients))
            count += len(recipients)
            if count >= ROUND_SIZE:
                tally.more = True
                break
        return groups

    async def _send_group(
        self, sender: str, opted_out: bool, recipients: list[int], tally: _Tally
    ) -> None:
        for start in range(0, len(recipients), CALL_SIZE):
            rest = len(recipients) - start
            if tally.auth:  # nothing will get through: the rest waits for the next round
                tally.failed += rest
                return
            if self._stopping:
                tally.unsent += rest
                return
            chunk = recipients[start : start + CALL_SIZE]
            refused = await self._call(sender, opted_out, chunk, tally)
            if refused is Verdict.SKIP:
                tally.skipped += rest - len(chunk)
                return
            if refused is not None:  # the same sender's other calls would be refused too
                tally.failed += rest - len(chunk)
                return

    async def _call(
        self, sender: str, opted_out: bool, chunk: list[int], tally: _Tally
    ) -> Verdict | None:
        """Send one call and confirm what it accepted; the verdict when it was refused whole."""
        send = self.client.add if opted_out else self.client.remove
        try:
            result = await send(sender, e164(chunk))
        except OptOutError as error:
            taken = verdict(error)
            if taken is Verdict.SKIP:
                self._skip(sender, opted_out, len(chunk), str(error), tally)
            else:
                tally.failed += len(chunk)
                tally.auth = tally.auth or taken is Verdict.STOP
                tally.error = f"{sender}: {error}"
            return taken
        tally.requests += result.requests - result.auth_requests  # logins: a budget of their own
        sent = accepted(chunk, result)
        if sent.recipients:
            await asyncio.to_thread(
                self._ledger.confirm, self.name, sender, sent.recipients, opted_out=opted_out
            )
            tally.accepted += len(sent.recipients)
            self._metrics.sends.labels(self.name).inc(len(sent.recipients))
        if sent.failed:
            tally.failed += sent.failed
            tally.error = sent.note
        return None

    def _skip(self, sender: str, opted_out: bool, count: int, why: str, tally: _Tally) -> None:
        tally.skipped += count
        if (sender, opted_out) not in self._told_skipped:
            self._told_skipped.add((sender, opted_out))
            logger.warning(
                "outbox %s: skipping what it cannot hold (they stay pending in the ledger): %s",
                self.name,
                why,
            )

    # Afterwards

    def _since(self, now: float) -> int:
        """The mark of the newest round at least ``lookback`` old (else the oldest known)."""
        horizon = now - self._timing.lookback
        while len(self._marks) > 1 and self._marks[1][0] <= horizon:
            self._marks.popleft()
        return self._marks[0][1]

    def _settle(
        self, now: float, started: float, full: bool, mark: int | None, tally: _Tally
    ) -> None:
        """Book a round: metrics, health, and when the next may start and what it reads.

        ``mark`` is None when the round did not try all it read (stopped, broken, or more
        to read). A target that took nothing of an incremental round is read again from the
        mark before it, so an outage costs no full read, however long it lasts.
        """
        timing = self._timing
        self._last_round = started
        self._next_round = started + max(timing.gap, tally.requests * self._spacing)
        troubled = tally.error is not None or tally.failed > 0
        took_nothing = troubled and (tally.accepted == 0 or tally.auth)
        moved_on = False
        if mark is not None and (full or not took_nothing):
            self._marks.append((started, mark))
            moved_on = True
        if tally.more:
            self._full_due = now  # the rest of what is pending, at once
        self._count(tally, exact=full and mark is not None, moved_on=moved_on)
        if tally.failed:
            self._metrics.send_failures.labels(self.name).inc(tally.failed)
        if not troubled:
            if tally.accepted or (full and mark is not None):  # it works, or owes nothing
                self._down = self._failing = 0
            if full and mark is not None:
                self._retries, self._retrying = 0, False
                self._full_due = max(self._full_due, now + timing.full_scan)
            if not tally.unsent and (tally.accepted or not self._retrying):
                self._last_success = _utcnow()
            return
        self._failed(tally.error or f"{tally.failed} not accepted")
        if took_nothing:  # down, or refusing the credentials: leave it alone for a while
            self._down += 1
            wait = timing.backoff.after(self._down, auth=tally.auth, rng=self._rng)
            self._hold_until = now + wait
            if full:  # nothing older to read again from: read it all
                self._full_due, self._retrying = self._hold_until, True
            logger.warning(
                "outbox %s: %s; trying again in %.1fs", self.name, self._last_error, wait
            )
        else:  # it took the rest: what it refused is read again after a backoff of its own
            self._down = 0
            if full or not self._retrying:
                self._retries += 1
                self._retrying = True
                self._full_due = now + timing.backoff.after(self._retries, rng=self._rng)

    def _count(self, tally: _Tally, *, exact: bool, moved_on: bool) -> None:
        """The pending count: exact after a whole full round; then what each incremental
        round left, once per window of changes (a window read again replaces its count)."""
        left = tally.failed + tally.unsent
        if exact:
            self._counted, self._window = (left, tally.skipped), (0, 0)
        elif moved_on:  # the window moves on: what it left stays counted
            counted = self._counted
            self._counted = (counted[0] + left, counted[1] + tally.skipped)
            self._window = (0, 0)
        else:  # the same window is read again next time
            self._window = (left, tally.skipped)
        self._backlog = self._counted[0] + self._window[0]
        self._skipped = self._counted[1] + self._window[1]
        self._metrics.pending.labels(self.name).set(self._backlog)

    def _failed(self, error: str) -> None:
        self._failing += 1
        self._last_error = error
        self._last_error_at = _utcnow()
