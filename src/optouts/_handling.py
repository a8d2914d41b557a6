"""Acting on what recipients send: record the opt-out in the ledger, then tell every vendor.

A STOP that reaches one vendor binds the business on all of them (US rule: within 10
business days), so an inbound keyword or a vendor's consent notification is recorded in
the ledger first (the proof of when it was received) and then carried to each target,
whose acceptance is confirmed in the ledger like a sync's.

Targets are open clients or provider names. A long-running process passes open clients,
so that every event shares one vendor session and one rate-limit pacer; a name opens a
client for this one event (configured from the ledger's optouts.toml) and closes it after.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from contextlib import AsyncExitStack, ExitStack
from datetime import datetime, timezone

import attrs

from ._client import AsyncClient, Client
from ._config import core_setting, load_config_file
from ._errors import OptOutError
from ._models import BatchResult
from ._numbers import country_of, normalize, normalize_sender
from ._push import lacks
from ._sync import LEDGER, TargetSummary
from .inbound import ConsentEvent, InboundMessage
from .keywords import Classification, Intent, Keywords
from .ledger import Change, Ledger, micros_of, trusted_time

__all__ = [
    "Handled",
    "handle_event",
    "handle_event_async",
    "handle_inbound",
    "handle_inbound_async",
]


@attrs.frozen
class Handled:
    """What became of one inbound message or consent event."""

    opted_out: bool | None
    """The ledger's state for the pair afterwards; None when the text asked for nothing."""
    recorded: bool
    """False when the ledger already knew, or knew of something newer (then nothing is sent)."""
    classification: Classification | None = None
    """For a text: what it asked for; ``likely_revocation`` asks a person to review it."""
    targets: tuple[TargetSummary, ...] = ()


def handle_event(
    ledger: Ledger,
    event: InboundMessage | ConsentEvent,
    *,
    targets: Sequence[Client | str] = (),
    keywords: Keywords | None = None,
) -> Handled:
    """Record ``event`` in ``ledger`` and carry it to ``targets`` (open clients or names)."""
    handled = _receive(_checked(ledger), event, keywords)
    if not handled.recorded or handled.opted_out is None:
        # The ledger knew it already, or knew of something newer: vendors hear nothing from
        # this event (a sync carries whatever they have not confirmed).
        return handled
    with ExitStack() as opened:
        summaries = [
            _recorded(handled.opted_out)
            if target == LEDGER
            else _carry(ledger, _client(target, ledger, opened), event, handled.opted_out)
            for target in targets
        ]
    return attrs.evolve(handled, targets=tuple(summaries))


async def handle_event_async(
    ledger: Ledger,
    event: InboundMessage | ConsentEvent,
    *,
    targets: Sequence[AsyncClient | str] = (),
    keywords: Keywords | None = None,
) -> Handled:
    """``handle_event`` for asyncio: the ledger's work runs in a thread, targets concurrently."""
    handled = await asyncio.to_thread(_receive, _checked(ledger), event, keywords)
    if not handled.recorded or handled.opted_out is None:
        return handled
    opted_out = handled.opted_out
    vendors = [target for target in targets if target != LEDGER]
    async with AsyncExitStack() as opened:
        clients = [await _async_client(target, ledger, opened) for target in vendors]
        # Every target finishes (none is left writing after an error is raised); then the
        # first unexpected error, if any, is raised.
        outcomes = await asyncio.gather(
            *(_carry_async(ledger, client, event, opted_out) for client in clients),
            return_exceptions=True,
        )
    summaries: list[TargetSummary] = [_recorded(opted_out) for t in targets if t == LEDGER]
    for client, outcome in zip(clients, outcomes, strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            # this target alone was cancelled (the caller's cancellation raises above)
            summaries.append(TargetSummary(client.provider.name, failed=1, notes=("cancelled",)))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            summaries.append(outcome)
    return attrs.evolve(handled, targets=tuple(summaries))


def handle_inbound(
    ledger: Ledger,
    sender: str,
    recipient: str,
    text: str,
    *,
    via: str = "api",
    targets: Sequence[Client | str] = (),
    received_at: datetime | None = None,
    keywords: Keywords | None = None,
    default_region: str | None = None,
) -> Handled:
    """Act on a text ``recipient`` sent to our number ``sender``, received through ``via``.

    A STOP (or START) is recorded in the ledger with when it was received, then carried to
    each of ``targets``; anything else is only classified (see
    ``Handled.classification.likely_revocation`` for texts a person should review).
    Keywords are the defaults plus the ``keywords_*`` settings unless given.
    """
    message = _message(sender, recipient, text, via, received_at, default_region)
    keywords = keywords or configured_keywords(ledger.config_path)
    return handle_event(ledger, message, targets=targets, keywords=keywords)


async def handle_inbound_async(
    ledger: Ledger,
    sender: str,
    recipient: str,
    text: str,
    *,
    via: str = "api",
    targets: Sequence[AsyncClient | str] = (),
    received_at: datetime | None = None,
    keywords: Keywords | None = None,
    default_region: str | None = None,
) -> Handled:
    """``handle_inbound`` for asyncio; the targets are told concurrently."""
    message = _message(sender, recipient, text, via, received_at, default_region)
    keywords = keywords or configured_keywords(ledger.config_path)
    return await handle_event_async(ledger, message, targets=targets, keywords=keywords)


def _message(
    sender: str,
    recipient: str,
    text: str,
    via: str,
    received_at: datetime | None,
    region: str | None,
) -> InboundMessage:
    """A text received on our number, numbers normalised, timed now if not."""
    return InboundMessage(
        sender=normalize_sender(sender, region),
        recipient=normalize(recipient, region),
        text=text,
        received_at=received_at or datetime.now(timezone.utc),
        provider=via,
    )


def configured_keywords(config: str | os.PathLike[str] | None) -> Keywords:
    """The default keywords with the ``keywords_*`` settings applied."""
    found = load_config_file(config)

    def words(kind: str) -> tuple[str, ...]:
        return core_setting(f"keywords_{kind}", None, found) or ()

    custom = Keywords.default().with_custom(
        opt_out=words("opt_out"), opt_in=words("opt_in"), help=words("help")
    )
    return custom.without(*words("drop"))


def _recorded(opted_out: bool) -> TargetSummary:
    """The ledger named as a target (``"local"``): it holds the change already."""
    return TargetSummary(LEDGER, added=int(opted_out), removed=int(not opted_out))


def _checked(ledger: Ledger) -> Ledger:
    if not isinstance(ledger, Ledger):
        raise TypeError(
            "inbound handling records in the ledger, the record of proof: pass an "
            f"optouts.Ledger, not {type(ledger).__name__}"
        )
    return ledger


def _receive(
    ledger: Ledger, event: InboundMessage | ConsentEvent, keywords: Keywords | None
) -> Handled:
    """Record the event in the ledger; ``recorded`` says whether vendors must hear of it."""
    change, classification = change_of(event, keywords)
    if change is None:
        return Handled(None, False, classification)
    recorded = ledger.record([change]) > 0
    (held,) = ledger.opted_out(event.sender, [event.recipient])
    return Handled(held, recorded, classification)


def change_of(
    event: InboundMessage | ConsentEvent, keywords: Keywords | None
) -> tuple[Change | None, Classification | None]:
    """The change ``event`` asks the ledger to record (None when a text asks for nothing)
    and, for a text, what it asked for. The service records many events' changes at once."""
    classification = None
    at: datetime | None
    if isinstance(event, InboundMessage):
        classification = event.classify(keywords)
        wanted = {Intent.OPT_OUT: True, Intent.OPT_IN: False}.get(classification.intent)
        if wanted is None:
            return None, classification
        at, source = event.received_at, f"inbound:{event.provider}"
    else:
        wanted = event.opted_out
        at = event.at
        source = event.provider if event.source is None else f"{event.provider}:{event.source}"
    micros, dated = trusted_time(
        micros_of(at) if at else None, opted_out=wanted, received=Ledger.now()
    )
    change = Change(
        event.sender,
        int(event.recipient[1:]),
        wanted,
        source,
        micros,
        country_of(event.recipient),
        dated,
    )
    return change, classification


def _client(target: Client | str, ledger: Ledger, opened: ExitStack) -> Client:
    if isinstance(target, Client):
        return target
    return opened.enter_context(Client(target, config=ledger.config_path))


async def _async_client(
    target: AsyncClient | str, ledger: Ledger, opened: AsyncExitStack
) -> AsyncClient:
    if isinstance(target, AsyncClient):
        return target
    return await opened.enter_async_context(await open_async(target, ledger.config_path))


async def open_async(provider: str, config: str | os.PathLike[str] | None) -> AsyncClient:
    """A client opened in a thread: opening the ledger may wait on another writer's lock.

    If the caller is cancelled meanwhile, the client the thread still opens is closed.
    """
    opening = asyncio.ensure_future(asyncio.to_thread(AsyncClient, provider, config=config))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_orphan)
        raise


_closing: set[asyncio.Task[None]] = set()


def _close_orphan(opening: asyncio.Future[AsyncClient]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    task = asyncio.ensure_future(opening.result().aclose())
    _closing.add(task)  # held until done: the loop keeps only weak references to tasks
    task.add_done_callback(_closing.discard)


def _carry(
    ledger: Ledger, target: Client, event: InboundMessage | ConsentEvent, opted_out: bool
) -> TargetSummary:
    skipped = _cannot(target, opted_out)
    if skipped is not None:
        return skipped
    try:
        result = (target.add if opted_out else target.remove)(event.sender, [event.recipient])
    except OptOutError as error:
        return TargetSummary(target.provider.name, failed=1, notes=(str(error),))
    return _confirmed(ledger, target, event, opted_out, result)


async def _carry_async(
    ledger: Ledger, target: AsyncClient, event: InboundMessage | ConsentEvent, opted_out: bool
) -> TargetSummary:
    skipped = _cannot(target, opted_out)
    if skipped is not None:
        return skipped
    call = target.add if opted_out else target.remove
    try:
        result = await call(event.sender, [event.recipient])
    except OptOutError as error:
        return TargetSummary(target.provider.name, failed=1, notes=(str(error),))
    return await asyncio.to_thread(_confirmed, ledger, target, event, opted_out, result)


def _cannot(target: Client | AsyncClient, opted_out: bool) -> TargetSummary | None:
    why = lacks(target.provider, opted_out)
    return None if why is None else TargetSummary(target.provider.name, skipped=1, notes=(why,))


def _confirmed(
    ledger: Ledger,
    target: Client | AsyncClient,
    event: InboundMessage | ConsentEvent,
    opted_out: bool,
    result: BatchResult,
) -> TargetSummary:
    """The vendor's answer; an accepted change is confirmed in the ledger, as a sync does."""
    name = target.provider.name
    (item,) = result
    if not item.ok:
        return TargetSummary(name, failed=1, requests=result.requests, notes=(item.error or "",))
    recipient = int(event.recipient[1:])
    ledger.confirm(name, event.sender, [recipient], opted_out=opted_out)
    return TargetSummary(
        name, added=int(opted_out), removed=int(not opted_out), requests=result.requests
    )
