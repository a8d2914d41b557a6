"""RingCentral webhooks: the opt-outs and opt-ins RingCentral applied, and its handshake.

Registered with optouts as the webhook format ``"ringcentral"``
(``optouts.inbound.parse("ringcentral", body)``). Two event filters carry consent: the
v1 opt-out notification (``.../a2p-sms/opt-outs``, one change a notification) and the v2
consent event (``.../sms/consents``, a change per record). A new subscription is proven by
a POST with a ``Validation-Token`` header, which the endpoint echoes. Every notification
then carries the subscription's ``verificationToken`` as a ``Verification-Token`` header:
the only proof it comes from RingCentral, and the endpoint's one setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from optouts import InvalidPayload, Setting
from optouts.inbound import (
    ConsentEvent,
    HandshakeReply,
    InboundParser,
    Payload,
    each_object,
    get_header,
    read_number,
    read_timestamp,
    secret_matches,
    shown,
)
from optouts.plugin import WILDCARD

__all__ = [
    "FORMAT",
    "NAME",
    "SETTINGS",
    "authenticate",
    "handshake",
    "parse_notification",
    "validation_headers",
]

NAME = "ringcentral"

_V1_EVENT = re.compile(r"/restapi/v1\.0/account/[^/]+/a2p-sms/opt-outs(?:\?.*)?")
_V2_EVENT = re.compile(r"/restapi/v2/accounts/[^/]+/sms/consents(?:\?.*)?")
_SOURCES = {
    "Recipient": "recipient",
    "Account": "api",
    "Api": "api",
    "Upstream": "upstream",
    "Carrier": "carrier",
}
"""RingCentral's sources in the common vocabulary (v1 ``Account`` is v2 ``Api``)."""
_OPT_STATUS = {"OptOut": True, "OptIn": False}
_SENDER_COVERAGES = frozenset({"PhoneNumber", None})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _v1_events(
    body: Mapping[str, Any], where: str, at: datetime | None, uuid: str | None
) -> list[ConsentEvent]:
    """``{from, to, active}``: ``from`` is our number, ``to`` the consumer, active = opted out."""
    active = body.get("active")
    if not isinstance(active, bool):
        raise InvalidPayload(f"{where}.active is {shown(active)}, not true or false")
    return [
        ConsentEvent(
            sender=read_number(body.get("from"), f"{where}.from", ours=True, wildcard=True),
            recipient=read_number(body.get("to"), f"{where}.to", ours=False),
            opted_out=active,
            at=at,
            provider=NAME,
            notification_id=uuid,
            raw=body,
        )
    ]


def _v2_events(
    body: Mapping[str, Any], where: str, at: datetime | None, uuid: str | None
) -> list[ConsentEvent]:
    """``records[{from, to, optStatus, source, lastModifiedTime, coverage?}]``, one event each.

    Coverage "Account" means every number of the account: sender ``*``, as the provider
    reports it. Other coverages (a campaign type) do not fit the sender–recipient model:
    their opt-outs are taken account-wide, since suppressing too much is the safe side,
    and their opt-ins are skipped, since a narrow consent must not lift a broad opt-out.
    """
    records = body.get("records")
    if not isinstance(records, list):
        raise InvalidPayload(f"{where}.records is {type(records).__name__}, not a list")
    events = []
    for index, record in enumerate(records):
        place = f"{where}.records[{index}]"
        if not isinstance(record, Mapping):
            raise InvalidPayload(f"{place} is {type(record).__name__}, not an object")
        status = record.get("optStatus")
        opted_out = _OPT_STATUS.get(status) if isinstance(status, str) else None
        if opted_out is None:
            raise InvalidPayload(f"{place}.optStatus is {shown(status)}, not OptOut or OptIn")
        coverage = record.get("coverage")
        if coverage is not None and not isinstance(coverage, str):
            raise InvalidPayload(f"{place}.coverage is {shown(coverage)}, not a string")
        if coverage == "Account":
            sender = WILDCARD
        elif coverage in _SENDER_COVERAGES:
            sender = read_number(record.get("from"), f"{place}.from", ours=True, wildcard=True)
        elif opted_out:
            sender = WILDCARD
        else:
            continue
        modified = record.get("lastModifiedTime")
        changed = (
            at
            if modified is None or modified == ""  # not said: the notification's time
            else read_timestamp(modified, f"{place}.lastModifiedTime")
        )
        source = _text(record.get("source"))
        events.append(
            ConsentEvent(
                sender=sender,
                recipient=read_number(record.get("to"), f"{place}.to", ours=False),
                opted_out=opted_out,
                at=changed,
                provider=NAME,
                source=_SOURCES.get(source, source.lower()) if source else None,
                notification_id=uuid,
                raw=record,
            )
        )
    return events


def parse_notification(
    payload: Payload, _headers: Mapping[str, str] | None = None
) -> list[ConsentEvent]:
    """The consent changes in a RingCentral notification; other event filters give [].

    Takes the webhook body (bytes, text or decoded JSON): the envelope
    ``{uuid, event, timestamp, subscriptionId, ownerId, body}``, a list of them, or a bare
    ``body``. The ``event`` path tells the kind: ``.../a2p-sms/opt-outs`` (v1, body
    ``{from, to, active}``, one change) or ``.../sms/consents`` (v2, ``body.records``,
    one change per record). A bare body is recognised by its fields.
    """
    events: list[ConsentEvent] = []
    for where, notification in each_object(payload, "notification"):
        if "body" in notification:
            body, place = notification["body"], f"{where}.body"
            kind = notification.get("event")
            stamp = notification.get("timestamp")
            at = read_timestamp(stamp, f"{where}.timestamp") if stamp is not None else None
            uuid = _text(notification.get("uuid"))
        else:
            body, place, kind, at, uuid = notification, where, None, None, None
        if not isinstance(body, Mapping):
            raise InvalidPayload(f"{place} is {type(body).__name__}, not an object")
        if isinstance(kind, str):
            if _V1_EVENT.fullmatch(kind):
                events.extend(_v1_events(body, place, at, uuid))
            elif _V2_EVENT.fullmatch(kind):
                events.extend(_v2_events(body, place, at, uuid))
            continue  # a notification for some other event filter
        if kind is not None:
            raise InvalidPayload(f"{where}.event is {shown(kind)}, not a string")
        if "records" in body:
            events.extend(_v2_events(body, place, at, uuid))
        elif "active" in body:
            events.extend(_v1_events(body, place, at, uuid))
        else:
            raise InvalidPayload(
                f"{place} is neither an opt-out notification ({{from, to, active}}) "
                "nor a consent event ({records: [...]})"
            )
    return events


def validation_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """Response headers that confirm a new RingCentral webhook, or None if not one.

    When a webhook subscription is created, RingCentral posts to it with a
    ``Validation-Token`` header and expects the same header back on a 200.
    """
    token = get_header(headers, "Validation-Token")
    return None if token is None else {"Validation-Token": token}


def handshake(
    _method: str,
    _payload: Payload,
    headers: Mapping[str, str],
    _settings: Mapping[str, Any] | None = None,
) -> HandshakeReply | None:
    """The validation request, known by its header alone (its body is empty).

    Echoing the header proves only that the endpoint is there, so it needs no setting.
    """
    echoed = validation_headers(headers)
    return None if echoed is None else HandshakeReply(headers=echoed)


SETTINGS = (
    Setting(
        "verification_token",
        "the verificationToken of the webhook subscription, which RingCentral sends as the "
        "Verification-Token header of every notification",
        required=True,
        secret=True,
    ),
)
"""What the endpoint reads: ``[serve.ringcentral]`` or ``OPTOUTS_SERVE_RINGCENTRAL_<SETTING>``."""


def authenticate(
    headers: Mapping[str, str], _query: Mapping[str, str], settings: Mapping[str, Any]
) -> bool:
    """A notification carries the subscription's token as ``Verification-Token``."""
    return secret_matches(
        get_header(headers, "Verification-Token"), settings.get("verification_token")
    )


FORMAT = InboundParser(
    NAME, parse_notification, handshake, authenticate=authenticate, settings=SETTINGS
)
"""What the plugin registers: v1 and v2 consent notifications under ``"ringcentral"``."""
