"""The rules for telling a target the states it has not confirmed, whoever does the telling.

A sync's push (``optouts.sync``) and the service's outbox (``optouts serve``) send the same
pending states through the same clients, and must read a target's answer the same way:
what it can never hold is skipped (it stays pending in the ledger, and is never sent again
and again), refused credentials stop the target, any other refusal fails only the states
of that call, and only the recipients the target accepted are confirmed in the ledger. The
rules live here, free of I/O, so the blocking sync and the asyncio outbox cannot drift.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

from ._errors import AuthenticationError, InvalidNumber, OptOutError, UnsupportedOperation
from ._models import BatchResult, Capability
from ._provider import Provider

__all__ = [
    "Accepted",
    "Verdict",
    "accepted",
    "action_of",
    "cannot_hold",
    "e164",
    "lacks",
    "refused",
    "verdict",
]

Action = Literal["add", "remove"]


def action_of(opted_out: bool) -> Action:
    """The call that gives a target this state: add an opt-out, remove it."""
    return "add" if opted_out else "remove"


def e164(recipients: Iterable[int]) -> list[str]:
    """The ledger's recipient digits as the numbers a client takes."""
    return [f"+{recipient}" for recipient in recipients]


def cannot_hold(provider: Provider, sender: str, opted_out: bool) -> str | None:
    """Why ``provider`` can never hold this state of ``sender``'s pairs, or None: it lacks
    the operation, or refuses the sender outright (``lacks``, then ``refused``)."""
    return lacks(provider, opted_out) or refused(provider, sender, opted_out)


def lacks(provider: Provider, opted_out: bool) -> str | None:
    """Why ``provider`` cannot take this state at all (a target that cannot remove), or None."""
    capability = Capability.ADD if opted_out else Capability.REMOVE
    if capability not in provider.capabilities:
        return f"{provider.name} cannot {action_of(opted_out)}"
    return None


def refused(provider: Provider, sender: str, opted_out: bool) -> str | None:
    """Why ``provider`` refuses this state for ``sender`` before sending anything (Azure has
    no account-wide ``*``), or None. The operation raises the same refusal, so asking first
    gives the answer sending would, without the request."""
    refusal = provider.refuses(action_of(opted_out), sender)
    return None if refusal is None else str(refusal)


class Verdict(enum.Enum):
    """What a whole-call error means for the states of that call."""

    SKIP = "skip"
    """The target cannot hold them: they stay pending, and are not sent again this run."""
    STOP = "stop"
    """Nothing will get through to this target (refused credentials): stop telling it."""
    FAIL = "fail"
    """Refused this time: they stay pending and are sent again later."""


def verdict(error: OptOutError) -> Verdict:
    """How to take a whole-call error from a target (per-recipient failures are ``accepted``'s)."""
    if isinstance(error, (InvalidNumber, UnsupportedOperation)):
        return Verdict.SKIP
    if isinstance(error, AuthenticationError):
        return Verdict.STOP
    return Verdict.FAIL


@attrs.frozen
class Accepted:
    """What a target accepted of one call: confirm ``recipients`` in the ledger, no others."""

    recipients: list[int]
    failed: int
    note: str | None = None
    """The first failure, for a summary or a health report: ``3 failed, e.g. +1…: why``."""


def accepted(recipients: Sequence[int], result: BatchResult) -> Accepted:
    """The recipients (ledger digits, in the order sent) whose state ``result`` accepted."""
    taken = [r for r, item in zip(recipients, result, strict=True) if item.ok]
    failed = len(recipients) - len(taken)
    note = None
    if failed:
        first = next(item for item in result if not item.ok)
        note = f"{failed} failed, e.g. {first.recipient}: {first.error}"
    return Accepted(taken, failed, note)
