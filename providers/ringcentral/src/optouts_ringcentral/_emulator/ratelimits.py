"""Rate limits: RingCentral's groups (Light for the APIs, Auth for OAuth), each a budget per
window; over it, 429s with ``Retry-After`` for a penalty that a request during it restarts."""

from __future__ import annotations

import collections
import re
from collections.abc import Callable

import attrs

from .routes import _Route
from .wire import _error, _Reply


@attrs.frozen
class RateLimit:
    """``limit`` requests per ``window`` seconds; ``penalty`` seconds of 429s beyond it."""

    limit: int
    window: float = 60.0
    penalty: float | None = None

    @property
    def penalty_seconds(self) -> float:
        return self.window if self.penalty is None else self.penalty


def parse_rate_limit(text: str) -> RateLimit:
    """``"50/60s"`` (or ``"50/60"``) as a RateLimit."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*", text)
    if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
        raise ValueError(f"expected LIMIT/WINDOWs such as 50/60s, not {text!r}")
    return RateLimit(int(match.group(1)), float(match.group(2)))


@attrs.define
class _Group:
    limit: RateLimit
    arrivals: collections.deque[float] = attrs.field(factory=collections.deque)
    penalty_until: float = 0.0


class _RateLimits:
    """Counts requests per group and throttles; ``Emulator.__init__`` sets the attributes."""

    clock: Callable[[], float]
    _groups: dict[str, _Group]
    throttled: collections.Counter[str]

    def _throttle(self, route: _Route, extra: dict[str, str]) -> None:
        group = self._groups.get(route.group)
        if group is None:
            return
        now = self.clock()
        limit = group.limit
        extra.update(
            {
                "X-Rate-Limit-Group": route.group,
                "X-Rate-Limit-Limit": str(limit.limit),
                "X-Rate-Limit-Window": str(int(limit.window)),
            }
        )
        while group.arrivals and group.arrivals[0] <= now - limit.window:
            group.arrivals.popleft()
        if now < group.penalty_until or len(group.arrivals) >= limit.limit:
            # A request during the penalty restarts it, as RingCentral documents.
            group.penalty_until = now + limit.penalty_seconds
            group.arrivals.clear()
            self.throttled[route.group] += 1
            extra["X-Rate-Limit-Remaining"] = "0"
            retry = (
                str(int(limit.penalty_seconds))
                if limit.penalty_seconds >= 1
                else str(limit.penalty_seconds)
            )
            raise _Reply(
                429,
                _error(route.style, "CMN-301", "Request rate exceeded"),
                {"Retry-After": retry},
            )
        group.arrivals.append(now)
        extra["X-Rate-Limit-Remaining"] = str(limit.limit - len(group.arrivals))
