"""The vendors' inbound webhooks, turned into values optouts can act on.

Two kinds of news arrive:

- ``InboundMessage``: a text a consumer sent to one of our numbers (Azure Event Grid
  ``Microsoft.Communication.SMSReceived``). Nobody has decided anything yet: classify the
  text (``message.classify()``) and act on the verdict.
- ``ConsentEvent``: the vendor already applied an opt-out or opt-in (RingCentral's v1
  opt-out notification and v2 consent events); carry it to the ledger and the other vendors.

Both are named for the opt-out pair they concern, ``sender`` (our number, which sends the
campaigns) and ``recipient`` (the consumer). For a message that is the vendor's ``to`` and
``from`` swapped: the consumer *sent* the STOP, but in opt-out terms they are the recipient.

A payload that is not what the vendor documents raises ``InvalidPayload`` naming the field,
whatever is wrong with it: not JSON, not UTF-8, nested too deeply, or a field of the wrong
type. A number that is no phone number raises ``InvalidNumberInPayload``, which is both an
``InvalidPayload`` and an ``InvalidNumber``. Optional fields that only describe a delivery
(ids, ``source``) are ignored when unusable rather than refuse an opt-out. Events of other
types are skipped, so one webhook endpoint can subscribe to more than it handles.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from ._errors import InvalidNumber, InvalidPayload, OptOutError
from ._models import OptOut, Status, _frozen_mapping
from ._numbers import WILDCARD, country_of, normalize
from .keywords import Classification, Keywords, classify

__all__ = [
    "AZURE",
    "RINGCENTRAL",
    "SMS_RECEIVED",
    "SUBSCRIPTION_VALIDATION",
    "ConsentEvent",
    "InboundMessage",
    "InvalidNumberInPayload",
    "InvalidPayload",
    "azure_handshake_headers",
    "azure_validation_response",
    "parse_azure_event_grid",
    "parse_ringcentral_notification",
    "ringcentral_validation_headers",
]

AZURE = "azure"
RINGCENTRAL = "ringcentral"
SMS_RECEIVED = "Microsoft.Communication.SMSReceived"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

Payload = bytes | bytearray | str | Mapping[str, Any] | list[Any]
"""A webhook body as received (JSON bytes or text) or already decoded."""


def _utc(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {value!r}")
    return value.astimezone(timezone.utc)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


@attrs.frozen
class InboundMessage:
    """A text a consumer sent to one of our numbers, not yet acted on.

    The pair is named as opt-outs name it, which is the message's own direction reversed:
    a text from consumer +15555550123 to our +18005550100 is ``sender="+18005550100"``
    (ours: it received the text and sends our campaigns) and ``recipient="+15555550123"``
    (theirs: they wrote it and receive our campaigns). ``sender`` may be a short code.
    """

    sender: str
    recipient: str
    text: str
    received_at: datetime = attrs.field(converter=_utc)
    provider: str
    message_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, eq=False)

    def classify(self, keywords: Keywords | None = None) -> Classification:
        """What the text asks for (see ``optouts.keywords.classify``)."""
        return classify(self.text, keywords)


@attrs.frozen
class ConsentEvent:
    """An opt-out or opt-in the vendor already applied, for carrying elsewhere.

    ``sender`` is our number, or ``"*"`` when the consent covers every number of the
    account; ``recipient`` is the consumer. ``at`` is when the vendor says the change
    happened (None when the payload does not say). ``source`` is who made it, in the
    common vocabulary ("recipient", "api", "upstream", "carrier"), None when unknown.
    ``notification_id`` is the vendor's id of the delivery, for spotting redeliveries.
    """

    sender: str
    recipient: str
    opted_out: bool
    at: datetime | None = attrs.field(converter=_utc_or_none)
    provider: str
    source: str | None = None
    notification_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, eq=False)

    @property
    def status(self) -> Status:
        return Status.OPTED_OUT if self.opted_out else Status.OPTED_IN

    def as_opt_out(self) -> OptOut:
        """The same news as the record a provider would list."""
        return OptOut(
            sender=self.sender,
            recipient=self.recipient,
            status=self.status,
            country=country_of(self.recipient),
            source=self.source,
            updated_at=self.at,
            provider=self.provider,
            raw=self.raw,
        )


# -- shared parsing --------------------------------------------------------------------------

_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = 60
_SHORT_REPR.maxother = 60


def _shown(value: object) -> str:
    """``value`` for a message, kept short: a hostile body may be huge or nested 100,000 deep."""
    if isinstance(value, (str, bool, float)) or value is None:
        return _SHORT_REPR.repr(value)
    if isinstance(value, int):  # repr refuses past 4,300 digits
        return _SHORT_REPR.repr(value) if value.bit_length() <= 64 else "a very long number"
    return type(value).__name__


class InvalidNumberInPayload(InvalidNumber, InvalidPayload):
    """A webhook field that should hold a phone number and does not.

    An ``InvalidPayload`` like every other fault of a body, and an ``InvalidNumber`` as it
    always was, so either ``except`` catches it; ``value`` is what the field held.
    """

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        # Not InvalidNumber's message: its repr of a deep or huge value could itself fail.
        OptOutError.__init__(self, f"{_shown(value)}: {reason}")


def _load(payload: Payload) -> Any:
    if isinstance(payload, (bytes, bytearray, str)):
        try:
            return json.loads(payload)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise InvalidPayload(f"the webhook body is not JSON: {exc}") from None
        except RecursionError:
            raise InvalidPayload("the webhook body is JSON nested too deeply to read") from None
    return payload


def _items(payload: Payload, what: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each object of a body that holds one or a list of them, with its place for messages."""
    data = _load(payload)
    if isinstance(data, Mapping):
        yield what, data
        return
    if not isinstance(data, list):
        raise InvalidPayload(f"expected a {what} or a list of them, got {type(data).__name__}")
    for index, item in enumerate(data):
        where = f"{what}s[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidPayload(f"{where} is {type(item).__name__}, not an object")
        yield where, item


_SHORT_CODE = re.compile(r"[0-9]{3,8}")


def _number(
    value: object, field: str, *, ours: bool, wildcard: bool = False, bare_digits: bool = False
) -> str:
    """E.164 (or, on our side, a short code or "*"), or InvalidNumberInPayload naming ``field``."""
    if value is None:
        raise InvalidPayload(f"{field} is missing")
    if not isinstance(value, str):
        raise InvalidNumberInPayload(value, f"{field}: expected a string, got {_shown(value)}")
    text = value.strip()
    if ours and (_SHORT_CODE.fullmatch(text) or (wildcard and text == WILDCARD)):
        return text
    if bare_digits and text.isascii() and text.isdigit():
        text = "+" + text
    try:
        return normalize(text)
    except InvalidNumber as exc:
        raise InvalidNumberInPayload(value, f"{field}: {exc.reason}") from None


_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


def _timestamp(value: object, field: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime.

    Written out because vendors send what ``datetime.fromisoformat`` refuses before
    Python 3.11: a "Z", and seven fractional digits (Event Grid's .NET ticks). A time
    without an offset is taken as UTC, which every documented payload uses.
    """
    match = _TIMESTAMP.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise InvalidPayload(f"{field}: {_shown(value)} is not an ISO 8601 time")
    date, clock, fraction, zone = match.groups()
    if len(clock) == 5:
        clock += ":00"
    micro = (fraction or "")[:6].ljust(6, "0")
    if zone is None or zone in "Zz":
        zone = "+00:00"
    elif len(zone) == 3:
        zone += ":00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        return datetime.fromisoformat(f"{date}T{clock}.{micro}{zone}").astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:  # month 13; year 1 less an offset
        raise InvalidPayload(f"{field}: {_shown(value)} is not a valid time ({exc})") from None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and value:
            return value
    return None


# -- Azure Event Grid ------------------------------------------------------------------------


def _azure_type(event: Mapping[str, Any], where: str) -> str:
    """The type of an Event Grid schema event (``eventType``) or a CloudEvent (``type``)."""
    if "eventType" in event:
        kind, field = event["eventType"], "eventType"
    elif "type" in event or "specversion" in event:
        kind, field = event.get("type"), "type"
    else:
        raise InvalidPayload(
            f"{where} is neither an Event Grid event (no eventType) nor a CloudEvent (no type)"
        )
    if not isinstance(kind, str):
        raise InvalidPayload(f"{where}.{field} is {_shown(kind)}, not a string")
    return kind


def _azure_data(event: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``data`` with lower-cased keys: older samples of these events spell them "From", "To"."""
    data = event.get("data")
    if isinstance(data, str):  # a CloudEvent may carry its JSON data as a string
        try:
            data = json.loads(data)
        except ValueError:
            raise InvalidPayload(f"{where}.data is a string but not JSON") from None
        except RecursionError:
            raise InvalidPayload(f"{where}.data is a string of JSON nested too deeply") from None
    if not isinstance(data, Mapping):
        raise InvalidPayload(f"{where}.data is {type(data).__name__}, not an object")
    return {key.lower(): value for key, value in data.items() if isinstance(key, str)}


def _sms_received(event: Mapping[str, Any], where: str) -> InboundMessage:
    data = _azure_data(event, where)
    # Azure's own sample writes "from" without its "+": bare digits are taken as E.164.
    consumer = _number(data.get("from"), f"{where}.data.from", ours=False, bare_digits=True)
    ours = _number(data.get("to"), f"{where}.data.to", ours=True, bare_digits=True)
    text = data.get("message", "")
    if not isinstance(text, str):
        raise InvalidPayload(f"{where}.data.message is {type(text).__name__}, not a string")
    for field, value in (
        ("data.receivedTimestamp", data.get("receivedtimestamp")),
        ("eventTime", event.get("eventTime")),  # Event Grid schema
        ("time", event.get("time")),  # CloudEvents
    ):
        if value is not None:
            received_at = _timestamp(value, f"{where}.{field}")
            break
    else:
        raise InvalidPayload(f"{where} says nowhere when it was received (data.receivedTimestamp)")
    message_id = _identifier(data.get("messageid")) or _identifier(event.get("id"))
    return InboundMessage(
        sender=ours,
        recipient=consumer,
        text=text,
        received_at=received_at,
        provider=AZURE,
        message_id=message_id,
        raw=event,
    )


def _identifier(value: object) -> str | None:
    """An id as text; anything else (a list, true, a 5,000-digit number) is no id."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 64:
        return str(value)
    return None


def parse_azure_event_grid(payload: Payload) -> list[InboundMessage]:
    """The received SMS in an Event Grid delivery, in order; other event types are skipped.

    Takes the request body as bytes, text or decoded JSON: one event or an array, in the
    Event Grid schema or the CloudEvents 1.0 schema. The subscription validation event is
    skipped here: answer it with ``azure_validation_response``. One malformed SMS event
    fails the whole delivery (InvalidPayload or InvalidNumber, naming the event and field),
    so that Event Grid retries and dead-letters it rather than an opt-out being dropped.
    """
    messages = []
    for where, event in _items(payload, "event"):
        if _azure_type(event, where) == SMS_RECEIVED:
            messages.append(_sms_received(event, where))
    return messages


def azure_validation_response(payload: Payload) -> dict[str, str] | None:
    """The body that completes an Event Grid subscription handshake, or None if not one.

    Event Grid proves a webhook wants its events by posting a
    ``Microsoft.EventGrid.SubscriptionValidationEvent``; answering 200 with
    ``{"validationResponse": <data.validationCode>}`` activates the subscription.
    (CloudEvents subscriptions shake hands with an OPTIONS request instead; see
    ``azure_handshake_headers``.)
    """
    for where, event in _items(payload, "event"):
        if event.get("eventType") != SUBSCRIPTION_VALIDATION:
            continue
        data = event.get("data")
        code = data.get("validationCode") if isinstance(data, Mapping) else None
        if not isinstance(code, str) or not code:
            raise InvalidPayload(f"{where}.data.validationCode is missing")
        return {"validationResponse": code}
    return None


def azure_handshake_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """Response headers for the CloudEvents abuse-protection handshake, or None if not one.

    With the CloudEvents schema, Event Grid first sends ``OPTIONS`` with a
    ``WebHook-Request-Origin`` header; a 200 echoing it as ``WebHook-Allowed-Origin``
    lets deliveries start.
    """
    origin = _header(headers, "WebHook-Request-Origin")
    return None if origin is None else {"WebHook-Allowed-Origin": origin}


# -- RingCentral -----------------------------------------------------------------------------

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


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _v1_events(
    body: Mapping[str, Any], where: str, at: datetime | None, uuid: str | None
) -> list[ConsentEvent]:
    """``{from, to, active}``: ``from`` is our number, ``to`` the consumer, active = opted out."""
    active = body.get("active")
    if not isinstance(active, bool):
        raise InvalidPayload(f"{where}.active is {_shown(active)}, not true or false")
    return [
        ConsentEvent(
            sender=_number(body.get("from"), f"{where}.from", ours=True, wildcard=True),
            recipient=_number(body.get("to"), f"{where}.to", ours=False),
            opted_out=active,
            at=at,
            provider=RINGCENTRAL,
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
            raise InvalidPayload(f"{place}.optStatus is {_shown(status)}, not OptOut or OptIn")
        coverage = record.get("coverage")
        if coverage is not None and not isinstance(coverage, str):
            raise InvalidPayload(f"{place}.coverage is {_shown(coverage)}, not a string")
        if coverage == "Account":
            sender = WILDCARD
        elif coverage in _SENDER_COVERAGES:
            sender = _number(record.get("from"), f"{place}.from", ours=True, wildcard=True)
        elif opted_out:
            sender = WILDCARD
        else:
            continue
        modified = record.get("lastModifiedTime")
        changed = (
            at
            if modified is None or modified == ""  # not said: the notification's time
            else _timestamp(modified, f"{place}.lastModifiedTime")
        )
        source = _string(record.get("source"))
        events.append(
            ConsentEvent(
                sender=sender,
                recipient=_number(record.get("to"), f"{place}.to", ours=False),
                opted_out=opted_out,
                at=changed,
                provider=RINGCENTRAL,
                source=_SOURCES.get(source, source.lower()) if source else None,
                notification_id=uuid,
                raw=record,
            )
        )
    return events


def parse_ringcentral_notification(payload: Payload) -> list[ConsentEvent]:
    """The consent changes in a RingCentral notification; other event filters give [].

    Takes the webhook body (bytes, text or decoded JSON): the envelope
    ``{uuid, event, timestamp, subscriptionId, ownerId, body}``, a list of them, or a bare
    ``body``. The ``event`` path tells the kind: ``.../a2p-sms/opt-outs`` (v1, body
    ``{from, to, active}``, one change) or ``.../sms/consents`` (v2, ``body.records``,
    one change per record). A bare body is recognised by its fields.
    """
    events: list[ConsentEvent] = []
    for where, notification in _items(payload, "notification"):
        if "body" in notification:
            body, place = notification["body"], f"{where}.body"
            kind = notification.get("event")
            stamp = notification.get("timestamp")
            at = _timestamp(stamp, f"{where}.timestamp") if stamp is not None else None
            uuid = _string(notification.get("uuid"))
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
            raise InvalidPayload(f"{where}.event is {_shown(kind)}, not a string")
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


def ringcentral_validation_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """Response headers that confirm a new RingCentral webhook, or None if not one.

    When a webhook subscription is created, RingCentral posts to it with a
    ``Validation-Token`` header and expects the same header back on a 200.
    """
    token = _header(headers, "Validation-Token")
    return None if token is None else {"Validation-Token": token}
