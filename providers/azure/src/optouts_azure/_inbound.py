"""Azure Event Grid webhooks: the SMS consumers send to our numbers, and the handshakes.

Registered with optouts as the webhook format ``"azure"`` (``optouts.inbound.parse("azure",
body)``). Event Grid delivers in one of two schemas, chosen per subscription: its own
(``eventType``, ``eventTime``; proven with a ``SubscriptionValidationEvent`` POST) or
CloudEvents 1.0 (``type``, ``time``; proven with an ``OPTIONS`` request). Both are read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optouts import InvalidPayload
from optouts.inbound import (
    HandshakeReply,
    InboundMessage,
    InboundParser,
    Payload,
    each_object,
    get_header,
    read_number,
    read_timestamp,
    shown,
)

__all__ = [
    "FORMAT",
    "NAME",
    "SMS_RECEIVED",
    "SUBSCRIPTION_VALIDATION",
    "handshake",
    "handshake_headers",
    "parse_event_grid",
    "validation_response",
]

NAME = "azure"
SMS_RECEIVED = "Microsoft.Communication.SMSReceived"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"


def _event_type(event: Mapping[str, Any], where: str) -> str:
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
        raise InvalidPayload(f"{where}.{field} is {shown(kind)}, not a string")
    return kind


def _data(event: Mapping[str, Any], where: str) -> dict[str, Any]:
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


def _identifier(value: object) -> str | None:
    """An id as text; anything else (a list, true, a 5,000-digit number) is no id."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 64:
        return str(value)
    return None


def _sms_received(event: Mapping[str, Any], where: str) -> InboundMessage:
    data = _data(event, where)
    # Azure's own sample writes "from" without its "+": bare digits are taken as E.164.
    consumer = read_number(data.get("from"), f"{where}.data.from", ours=False, bare_digits=True)
    ours = read_number(data.get("to"), f"{where}.data.to", ours=True, bare_digits=True)
    text = data.get("message", "")
    if not isinstance(text, str):
        raise InvalidPayload(f"{where}.data.message is {type(text).__name__}, not a string")
    for field, value in (
        ("data.receivedTimestamp", data.get("receivedtimestamp")),
        ("eventTime", event.get("eventTime")),  # Event Grid schema
        ("time", event.get("time")),  # CloudEvents
    ):
        if value is not None:
            received_at = read_timestamp(value, f"{where}.{field}")
            break
    else:
        raise InvalidPayload(f"{where} says nowhere when it was received (data.receivedTimestamp)")
    return InboundMessage(
        sender=ours,
        recipient=consumer,
        text=text,
        received_at=received_at,
        provider=NAME,
        message_id=_identifier(data.get("messageid")) or _identifier(event.get("id")),
        raw=event,
    )


def parse_event_grid(
    payload: Payload, _headers: Mapping[str, str] | None = None
) -> list[InboundMessage]:
    """The received SMS in an Event Grid delivery, in order; other event types are skipped.

    Takes the request body as bytes, text or decoded JSON: one event or an array, in either
    schema. The validation event is skipped here (``handshake`` answers it). One malformed
    SMS event fails the whole delivery (InvalidPayload or InvalidNumber, naming the event
    and field), so that Event Grid retries and dead-letters it rather than an opt-out being
    dropped.
    """
    return [
        _sms_received(event, where)
        for where, event in each_object(payload, "event")
        if _event_type(event, where) == SMS_RECEIVED
    ]


def validation_response(payload: Payload) -> dict[str, str] | None:
    """The body that completes an Event Grid schema handshake, or None if not one.

    Event Grid proves a webhook wants its events by posting a ``SubscriptionValidationEvent``;
    answering 200 with ``{"validationResponse": <data.validationCode>}`` activates the
    subscription.
    """
    for where, event in each_object(payload, "event"):
        if event.get("eventType") != SUBSCRIPTION_VALIDATION:
            continue
        data = event.get("data")
        code = data.get("validationCode") if isinstance(data, Mapping) else None
        if not isinstance(code, str) or not code:
            raise InvalidPayload(f"{where}.data.validationCode is missing")
        return {"validationResponse": code}
    return None


def handshake_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """Response headers for the CloudEvents abuse-protection handshake, or None if not one.

    With the CloudEvents schema, Event Grid first sends ``OPTIONS`` with a
    ``WebHook-Request-Origin`` header; a 200 echoing it as ``WebHook-Allowed-Origin`` lets
    deliveries start.
    """
    origin = get_header(headers, "WebHook-Request-Origin")
    return None if origin is None else {"WebHook-Allowed-Origin": origin}


def handshake(method: str, payload: Payload, headers: Mapping[str, str]) -> HandshakeReply | None:
    """Either schema's handshake: CloudEvents by ``OPTIONS``, Event Grid's by a POSTed event."""
    if method == "OPTIONS":
        allowed = handshake_headers(headers)
        return None if allowed is None else HandshakeReply(headers=allowed)
    if not payload:  # nothing posted: no validation event, and not for this to refuse
        return None
    answer = validation_response(payload)
    return None if answer is None else HandshakeReply(body=answer)


FORMAT = InboundParser(NAME, parse_event_grid, handshake)
"""What the plugin registers: Event Grid deliveries under the name ``"azure"``."""
