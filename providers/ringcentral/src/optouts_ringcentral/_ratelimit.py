"""Pacing under RingCentral's per-group rate limits, learned from the response headers.

RingCentral counts requests per user, app and *group* (Light, Medium, Heavy, Auth) over a
window, advertises the budget in ``X-Rate-Limit-*`` headers and answers 429 beyond it; a
request sent during the penalty that follows restarts the penalty. So the cheapest request
is the one that is never refused: each exchange takes a *slot* from the pacer ("wait this
long, then send") before sending, and the pacer hands them out so that no window ever holds
more than the group's limit.

The pacer keeps, per group, the times of the sends it scheduled that can still share a
window with a new one (a sliding window, which is stricter than a fixed one, so it is safe
whichever the server uses) and a "blocked until" instant set by a 429. Sends that the
server counted but we did not make (another process with the same credentials) show up as
a lower ``Remaining`` than ours would give, and are recorded as phantom sends. It is
thread-safe and does no waiting itself: ``wait`` yields the ``Sleep`` for the runner.

A wait that never ends in a request gives its slot back: the retry policy refuses a wait
longer than what is left of its deadline (it closes the exchange at the ``Sleep``), and a
cancelled call abandons one. A slot kept then would count in its window for nothing, so a
burst of refused batches would push the schedule windows ahead of the clock, refusing
later batches and the next call too. Given back, a slot never lets a window overfill: the
last one of the schedule is dropped (the next request is scheduled as if it had never been
taken), and one before others is kept for the next request, at its own time, since every
slot taken after it was counted with it; once its moment has passed it is dropped too.

Group names are compared without regard to case (the docs write ``light``, the headers
``Light``), and header values outside what a server could mean (``inf``, ``nan``, negative,
absurdly large) are ignored rather than believed, so every delay handed out stays finite.
A group name is vendor text: log lines show it cut short.

A wait a person would notice (over ``SHOWN_WAIT`` seconds) is announced on the logger
``optouts.wait`` at INFO, saying why ("waiting 58 s: RingCentral allows 5 logins a
minute"); shorter ones at DEBUG. The command line shows the INFO ones on a terminal.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable

import attrs
import httpx

from optouts import Exchange, Sleep
from optouts.plugin import clip

from ._errors import LOGGED, retry_after

__all__ = [
    "AUTH_GROUP",
    "DEFAULT_LIMITS",
    "LIGHT_GROUP",
    "LONGEST_WINDOW",
    "MOST_REQUESTS",
    "SHOWN_WAIT",
    "GroupState",
    "Pacer",
    "Slot",
    "announce_wait",
]

logger = logging.getLogger("optouts.ringcentral")
wait_logger = logging.getLogger("optouts.wait")

SHOWN_WAIT = 2.0
"""Seconds beyond which a wait is announced at INFO: long enough for a person to wonder."""

AUTH_GROUP = "Auth"
LIGHT_GROUP = "Light"
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "Light": (50, 60.0),
    "Medium": (40, 60.0),
    "Heavy": (10, 60.0),
    "Auth": (5, 60.0),
}
"""Published limits per 60 s, used until a response tells the real ones."""
LONGEST_WINDOW = 86_400
"""Longest ``X-Rate-Limit-Window`` believed, in seconds (RingCentral's is 60)."""
MOST_REQUESTS = 1_000_000
"""Largest ``X-Rate-Limit-Limit`` or ``-Remaining`` believed (RingCentral's are at most 50)."""


def announce_wait(seconds: float, why: str) -> None:
    """Say on ``optouts.wait`` that a pause of ``seconds`` starts, and why."""
    level = logging.INFO if seconds > SHOWN_WAIT else logging.DEBUG
    if wait_logger.isEnabledFor(level):
        shown = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
        wait_logger.log(level, "waiting %s: %s", shown, why)


def _per(window: float) -> str:
    """``a minute`` for 60 s, else ``every N s``."""
    named = {1.0: "a second", 60.0: "a minute", 3600.0: "an hour"}
    return named.get(window, f"every {window:g} s")


@attrs.define
class GroupState:
    """What the pacer knows of one rate-limit group."""

    limit: int
    window: float
    sends: list[float] = attrs.field(factory=list)
    """Scheduled send times (ours and phantom), sorted; those a window old are dropped."""
    blocked_until: float = 0.0
    free: list[float] = attrs.field(factory=list)
    """Slots given back before others taken after them, sorted: handed out first."""
    era: int = 0
    """Bumped when a 429 clears ``sends``: a slot taken before is no longer in them."""


@attrs.frozen
class Slot:
    """A send time the pacer handed out (or refused to): ``delay`` seconds from the asking."""

    group: str
    start: float
    delay: float
    taken: bool
    """False when the wait was longer than the caller would wait: nothing to give back."""
    era: int


class Pacer:
    """Hands out send times per rate-limit group; shared by every exchange of a provider.

    ``margin`` widens the window a little so that network jitter between our send time and
    the server's arrival time cannot squeeze ``limit + 1`` requests into one server window.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 0.02,
        slack: float = 0.05,
    ) -> None:
        self._clock = clock
        self._margin = margin
        self._slack = slack
        # Re-entrant: the garbage collector may close an abandoned wait, which gives its
        # slot back, on a thread that holds the lock already.
        self._lock = threading.RLock()
        self._groups: dict[str, GroupState] = {}
        self._endpoint_groups: dict[str, str] = {}
        self.penalties = 0
        """How many 429s this pacer has seen (for tests and benchmarks)."""

    def group_of(self, endpoint: str, default: str = LIGHT_GROUP) -> str:
        """The group an endpoint was last seen in, else the spec's ``x-throttling-group``."""
        with self._lock:
            return self._endpoint_groups.get(endpoint, default)

    def _name(self, group: str) -> str:
        """The one spelling kept for a group, whatever case a header or caller uses."""
        wanted = group.strip().casefold()
        for known in (*DEFAULT_LIMITS, *self._groups):
            if known.casefold() == wanted:
                return known
        return group.strip()

    def _state(self, group: str) -> GroupState:
        state = self._groups.get(group)
        if state is None:
            limit, window = DEFAULT_LIMITS.get(group, DEFAULT_LIMITS[LIGHT_GROUP])
            state = self._groups[group] = GroupState(limit, window)
        return state

    def _effective_window(self, state: GroupState) -> float:
        return state.window * (1 + self._margin) + self._slack

    def _next(self, state: GroupState, now: float) -> tuple[float, bool]:
        """The earliest time one more request fits in ``state``'s group, and whether it is a
        slot given back (which comes before any new one)."""
        earliest = max(now, state.blocked_until)
        # A slot given back whose moment has passed is gone: sending later than it would
        # squeeze the window of the slots taken after it.
        del state.free[: bisect.bisect_left(state.free, earliest)]
        if state.free:
            return state.free[0], True
        start = max(earliest, state.sends[-1] if state.sends else earliest)
        if len(state.sends) >= state.limit:
            start = max(start, state.sends[-state.limit] + self._effective_window(state))
        return start, False

    def _take(self, state: GroupState, start: float, given_back: bool, now: float) -> None:
        if given_back:
            state.free.pop(0)
            bisect.insort(state.sends, start)
        else:
            state.sends.append(start)
        # A send a whole window before now shares no window with any send still to come.
        del state.sends[: bisect.bisect_right(state.sends, now - self._effective_window(state))]

    def take(self, group: str, within: float | None = None) -> Slot:
        """The next slot of ``group``, taken unless its wait is longer than ``within``: a
        caller that will not wait so long must not hold a slot it never uses."""
        with self._lock:
            name = self._name(group)
            state = self._state(name)
            now = self._clock()
            start, given_back = self._next(state, now)
            taken = within is None or start - now <= within
            if taken:
                self._take(state, start, given_back, now)
            return Slot(name, start, start - now, taken, state.era)

    def give_back(self, slot: Slot) -> None:
        """Return ``slot`` (from ``take``), unused, to its group's schedule."""
        if not slot.taken:
            return
        with self._lock:
            state = self._groups.get(slot.group)
            if state is None or state.era != slot.era:
                return  # a 429 cleared the count since: the slot is in it no more
            sends = state.sends
            at = bisect.bisect_left(sends, slot.start)
            if at == len(sends) or sends[at] != slot.start:
                return  # dropped already, a window old
            del sends[at]
            if sends and slot.start < sends[-1] and slot.start >= self._clock():
                bisect.insort(state.free, slot.start)
            # Slots given back at the end of the schedule shorten it: the next request is
            # scheduled from the sends that remain, exactly as if they had never been taken.
            while state.free and (not sends or state.free[-1] >= sends[-1]):
                state.free.pop()

    def wait(self, group: str, within: float | None = None) -> Exchange[Slot]:
        """Take a slot of ``group`` and yield the ``Sleep`` until it (none when it is now);
        returns the slot, not taken when its wait is longer than ``within`` (no ``Sleep``).

        If the exchange is closed or interrupted at that ``Sleep`` (a wait the retry
        deadline refuses, a cancelled call), the slot is given back.
        """
        slot = self.take(group, within)
        if slot.taken and slot.delay > 0:
            announce_wait(slot.delay, self.why(group))
            try:
                yield Sleep(slot.delay, "pace")
            except BaseException:
                self.give_back(slot)
                raise
        return slot

    def reserve(self, group: str, within: float | None = None) -> float:
        """Seconds to wait before sending one request to ``group``; the slot is then taken,
        unless the wait is longer than ``within`` (see ``take``)."""
        return self.take(group, within).delay

    def try_reserve(self, group: str) -> bool:
        """Take a slot in ``group`` only if one is free now; for requests worth sending only
        without waiting (the revoke on close), which a spent group would answer with a 429."""
        with self._lock:
            state = self._state(self._name(group))
            now = self._clock()
            start, given_back = self._next(state, now)
            if start > now:
                return False
            self._take(state, start, given_back, now)
            return True

    def why(self, group: str) -> str:
        """Why a request to ``group`` waits, for a person: its budget, or a 429 penalty."""
        with self._lock:
            name = self._name(group)
            state = self._state(name)
            penalised = state.blocked_until > self._clock()
            limit, window = state.limit, state.window
        noun = "login" if name == AUTH_GROUP else "request"
        where = "" if name == AUTH_GROUP else f" in its {clip(name, LOGGED)} group"
        if penalised:
            return f"RingCentral refused more {noun}s{where} for a while (HTTP 429)"
        count = f"{limit} {noun}{'' if limit == 1 else 's'}"
        return f"RingCentral allows {count} {_per(window)}{where}"

    def blocked_for(self, group: str) -> float:
        """Seconds left of a 429 penalty on ``group`` (0 when none)."""
        with self._lock:
            state = self._groups.get(self._name(group))
            return max(0.0, state.blocked_until - self._clock()) if state else 0.0

    def observe(self, endpoint: str, response: httpx.Response, default: str = LIGHT_GROUP) -> None:
        """Learn the group, its budget and any penalty from a response's headers.

        ``default`` is the endpoint's group when no response has named one yet (the OAuth
        endpoints are in Auth, every opt-out endpoint in Light).
        """
        headers = response.headers
        with self._lock:
            named = headers.get("X-Rate-Limit-Group", "").strip()
            group = self._name(named or self._endpoint_groups.get(endpoint, default))
            self._endpoint_groups[endpoint] = group
            state = self._state(group)
            now = self._clock()
            limit = _count(headers.get("X-Rate-Limit-Limit"), MOST_REQUESTS)
            window = _count(headers.get("X-Rate-Limit-Window"), LONGEST_WINDOW)
            if limit is not None and limit > 0 and limit != state.limit:
                state.limit = limit
                state.free.clear()  # counted with the old limit
            if window is not None and window > 0 and window != state.window:
                state.window = float(window)
                state.free.clear()
            if response.status_code == 429:
                wait = retry_after(response)
                self.penalties += 1
                state.blocked_until = max(state.blocked_until, now + wait)
                # The server's count starts afresh after a penalty; ours must not hold
                # the old sends against the first requests after it.
                state.sends.clear()
                state.free.clear()
                state.era += 1
                logger.info(
                    "rate limited in group %s: sending nothing for %.1fs", clip(group, LOGGED), wait
                )
                return
            remaining = _count(headers.get("X-Rate-Limit-Remaining"), MOST_REQUESTS)
            if remaining is not None:
                self._record_others(state, now, remaining)

    def _record_others(self, state: GroupState, now: float, remaining: int) -> None:
        """Count sends the server saw but we did not schedule, as phantoms at ``now``."""
        since = now - self._effective_window(state)
        ours = len(state.sends) - bisect.bisect_right(state.sends, since)
        others = min(state.limit - remaining - ours, state.limit)
        if others > 0:
            # In one slice, not one insort each: a limit of 10^6 took seconds that way.
            at = bisect.bisect_right(state.sends, now)
            state.sends[at:at] = [now] * others
            state.free.clear()  # counted without these


def _count(value: str | None, most: int) -> int | None:
    """A header such as ``60`` (the window may also come as ``60s``) as an int from 0 to
    ``most``; None when absent, unreadable or absurd (negative, ``nan``, ``inf``, huge), so
    the pacer keeps what it knew instead of believing a value no server means."""
    if value is None:
        return None
    try:
        number = float(value.strip().rstrip("sS"))
    except ValueError:
        return None
    # nan compares false, so it is refused too; int() of inf would raise OverflowError.
    return int(number) if 0 <= number <= most else None
