"""Acting on what recipients send: record the opt-out in the ledger, then tell every vendor.

A STOP that reaches one vendor binds the business on all of them (US rule: within 10
business days), so an inbound keyword or a vendor's consent notification is recorded in
the ledger first (the proof of when it was received) and then carried to each target,
whose acceptance is confirmed in the ledger like a sync's.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime

import attrs

from ._client import Client
from ._errors import ConfigurationError, OptOutError
from ._models import Capability
from ._numbers import country_of
from ._sync import TargetSummary
from .inbound import ConsentEvent, InboundMessage
from .keywords import Classification, Intent, Keywords
from .ledger import Change, LedgerStore, LocalProvider

__all__ = ["Handled", "handle_event"]


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
    ledger: Client,
    event: InboundMessage | ConsentEvent,
    *,
    targets: Sequence[Client | str] = (),
    keywords: Keywords | None = None,
) -> Handled:
    """Record ``event`` in ``ledger`` and carry it to ``targets`` (clients or provider names)."""
    if not isinstance(ledger.provider, LocalProvider):
        raise ConfigurationError(
            "inbound handling records in the local ledger, the record of proof"
        )
    classification = None
    at: datetime | None
    if isinstance(event, InboundMessage):
        classification = event.classify(keywords)
        wanted = {Intent.OPT_OUT: True, Intent.OPT_IN: False}.get(classification.intent)
        if wanted is None:
            return Handled(None, False, classification)
        at, source = event.received_at, f"inbound:{event.provider}"
    else:
        wanted = event.opted_out
        at = event.at
        source = event.provider if event.source is None else f"{event.provider}:{event.source}"
    micros = int(at.timestamp() * 1_000_000) if at else ledger.provider.now()
    change = Change(
        event.sender,
        int(event.recipient[1:]),
        wanted,
        source,
        micros,
        country_of(event.recipient),
        at is not None,
    )
    store = ledger.provider.ledger
    recorded = store.apply([change]) > 0
    held = bool(store.opted_out([event.sender], [change.recipient]))
    if not recorded:
        # The ledger knew it already, or knew of something newer: vendors hear nothing from
        # this event (a sync carries whatever they have not confirmed).
        return Handled(held, False, classification)
    with ExitStack() as opened:
        summaries = [
            _carry(store, _client(target, ledger, opened), event.sender, event.recipient, held)
            for target in targets
        ]
    return Handled(held, True, classification, tuple(summaries))


def _client(target: Client | str, ledger: Client, opened: ExitStack) -> Client:
    if isinstance(target, Client):
        return target
    return opened.enter_context(Client(target, config=ledger.config_path))


def _carry(
    store: LedgerStore, target: Client, sender: str, recipient: str, opted_out: bool
) -> TargetSummary:
    name = target.provider.name
    capability = Capability.ADD if opted_out else Capability.REMOVE
    if capability not in target.provider.capabilities:
        return TargetSummary(name, skipped=1, notes=(f"{name} cannot {capability.value}",))
    try:
        result = (target.add if opted_out else target.remove)(sender, [recipient])
    except OptOutError as error:
        return TargetSummary(name, failed=1, notes=(str(error),))
    (item,) = result
    if not item.ok:
        return TargetSummary(name, failed=1, requests=result.requests, notes=(item.error or "",))
    store.confirm(name, sender, [int(recipient[1:])], opted_out=opted_out, at=LocalProvider.now())
    return TargetSummary(
        name, added=int(opted_out), removed=int(not opted_out), requests=result.requests
    )
