"""Azure Event Grid webhooks: the SMS consumers send to our numbers, and the handshakes.

Registered with optouts as the webhook format ``"azure"`` (``optouts.inbound.parse("azure",
body)``). Event Grid delivers in one of two schemas, chosen per subscription: its own
(``eventType``, ``eventTime``; proven with a ``SubscriptionValidationEvent`` POST) or
CloudEvents 1.0 (``type``, ``time``; proven with an ``OPTIONS`` request). Both are read.

Event Grid signs nothing: a subscription proves itself with a secret the business gives
it, either in the endpoint URL (``?token=…``) or as a static delivery header
(``Authorization: Bearer …``). The endpoint's settings are that ``token`` and the
``allowed_origins`` whose CloudEvents handshake it answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optouts import InvalidPayload, Setting
from optouts.inbound import (
    HandshakeReply,
    InboundMessage,
    InboundParser,
    Payload,
    bearer_token,
    each_object,
    get_header,
    read_number,
    read_timestamp,
    secret_matches,
    shown,
)

__all__ = [
    "FORMAT",
    "NAME",
    "SETTINGS",
    "SMS_RECEIVED",
    "SUBSCRIPTION_VALIDATION",
    "authenticate",
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


def _origins(value: Any) -> tuple[str, ...]:
    """Host names, as a list in optouts.toml or comma-separated in the environment."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of host names, or comma-separated host names")
    return tuple(item.strip().lower() for item in items if item.strip())


SETTINGS = (
    Setting(
        "token",
        "the secret each delivery carries, as ?token=... in the endpoint URL or as an "
        "Authorization: Bearer delivery header",
        required=True,
        secret=True,
    ),
    Setting(
        "allowed_origins",
        "WebHook-Request-Origin values whose CloudEvents handshake is answered "
        "(e.g. eventgrid.azure.net); none: the handshake is refused",
        parse=_origins,
    ),
)
"""What the endpoint reads: ``[serve.azure]`` or ``OPTOUTS_SERVE_AZURE_<SETTING>``."""


def authenticate(
    headers: Mapping[str, str], query: Mapping[str, str], settings: Mapping[str, Any]
) -> bool:
    """A delivery carries the token as query parameter ``token`` or as a bearer token."""
    token = settings.get("token")
    # Both compared every time, so which one was tried takes no different time.
    in_query = secret_matches(query.get("token"), token)
    in_header = secret_matches(bearer_token(headers), token)
    return in_query or in_header


def handshake(
    method: str,
    payload: Payload,
    headers: Mapping[str, str],
    settings: Mapping[str, Any] | None = None,
) -> HandshakeReply | None:
    """Either schema's handshake: CloudEvents by ``OPTIONS``, Event Grid's by a POSTed event.

    With the endpoint's ``settings``, a CloudEvents handshake is answered only for an
    origin in ``allowed_origins`` (403 for any other); without them (None) the caller
    vets the origin itself, as in optouts 0.3.
    """
    if method == "OPTIONS":
        allowed = handshake_headers(headers)
        if allowed is None:
            return None
        origin = allowed["WebHook-Allowed-Origin"]
        if settings is not None and origin.strip().lower() not in (
            settings.get("allowed_origins") or ()
        ):
            return HandshakeReply(
                status=403,
                body={"error": f"origin {shown(origin)} is not in allowed_origins"},
            )
        return HandshakeReply(headers=allowed)
    if not payload:  # nothing posted: no validation event, and not for this to refuse
        return None
    answer = validation_response(payload)
    return None if answer is None else HandshakeReply(body=answer)


FORMAT = InboundParser(
    NAME, parse_event_grid, handshake, authenticate=authenticate, settings=SETTINGS
)
"""What the plugin registers: Event Grid deliveries under the name ``"azure"``."""
