"""The ``azure`` webhook format: Event Grid SMSReceived in both schemas, and its handshakes."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import optouts.inbound
from optouts import InvalidNumber, InvalidPayload, OptOutError, Secret
from optouts.inbound import HandshakeReply, InboundMessage, InvalidNumberInPayload
from optouts.keywords import Intent
from optouts.testing.payloads import (
    MISSING,
    Parser,
    any_json,
    deeply_nested_bodies,
    each_parser_on,
    nested,
    parses_or_refuses,
    with_field,
)
from optouts_azure._inbound import (
    FORMAT,
    SETTINGS,
    authenticate,
    handshake,
    handshake_headers,
    parse_event_grid,
    validation_response,
)

OURS = "+18005550100"
CONSUMER = "+15555550123"
UTC = timezone.utc
TOPIC = (
    "/subscriptions/6f1c2a9e-0000-4000-8000-000000000000/resourceGroups/messaging"
    "/providers/Microsoft.Communication/communicationServices/acme-sms"
)


def sms_event(text: str = "STOP", **data: Any) -> dict[str, Any]:
    """An SMSReceived event in the Event Grid schema, as ACS delivers it to a webhook."""
    return {
        "id": "Incoming_20240603183512d29ebbea-3341-4466-9690-0a03af35228e",
        "topic": TOPIC,
        "subject": "/phonenumber/18005550100",
        "data": {
            "messageId": "Incoming_20240603183512d29ebbea-3341-4466-9690-0a03af35228e",
            "from": CONSUMER,
            "to": OURS,
            "message": text,
            "receivedTimestamp": "2024-06-03T18:35:12.2855749Z",
            "segmentCount": 1,
            **data,
        },
        "eventType": "Microsoft.Communication.SMSReceived",
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": "2024-06-03T18:35:12Z",
    }


def cloud_event(text: str = "STOP") -> dict[str, Any]:
    """The same event in the CloudEvents 1.0 schema."""
    grid = sms_event(text)
    return {
        "specversion": "1.0",
        "type": grid["eventType"],
        "source": TOPIC,
        "subject": grid["subject"],
        "id": "8d3b1c7e-5e0f-4d34-a0a8-21f9e4b6e6a1",
        "time": "2024-06-03T18:35:12.2855749Z",
        "datacontenttype": "application/json",
        "data": grid["data"],
    }


VALIDATION = {
    "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
    "topic": TOPIC,
    "subject": "",
    "data": {
        "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
        "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x/validate",
    },
    "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
    "eventTime": "2024-06-03T18:00:00.4556811Z",
    "metadataVersion": "1",
    "dataVersion": "1",
}

DELIVERY_REPORT = {
    "id": "Outgoing_202406031830138813a09b-0cbf-4304-9b03-1546683bb910",
    "topic": TOPIC,
    "subject": "/phonenumber/18005550100",
    "data": {
        "messageId": "Outgoing_202406031830138813a09b-0cbf-4304-9b03-1546683bb910",
        "from": OURS,
        "to": CONSUMER,
        "deliveryStatus": "Delivered",
        "deliveryStatusDetails": "No error.",
        "receivedTimestamp": "2024-06-03T18:30:20.2855749Z",
    },
    "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
    "dataVersion": "1.0",
    "metadataVersion": "1",
    "eventTime": "2024-06-03T18:30:20Z",
}


# -- SMS received --------------------------------------------------------------------------


def test_an_inbound_sms_swaps_from_and_to_into_the_opt_out_pair() -> None:
    [message] = parse_event_grid([sms_event("Stop.")])
    # The consumer sent the STOP *from* +1555…, *to* our +1800…: in opt-out terms our
    # number is the sender of the campaigns, the consumer their recipient.
    assert message.sender == OURS
    assert message.recipient == CONSUMER
    assert message.text == "Stop."
    assert message.provider == "azure"
    assert message.message_id == "Incoming_20240603183512d29ebbea-3341-4466-9690-0a03af35228e"
    assert message.received_at == datetime(2024, 6, 3, 18, 35, 12, 285574, tzinfo=UTC)
    assert message.raw["topic"] == TOPIC
    assert message.classify().intent is Intent.OPT_OUT


@pytest.mark.parametrize("encode", [json.dumps, lambda x: json.dumps(x).encode(), lambda x: x])
def test_bytes_text_or_decoded_json_all_parse(encode: Any) -> None:
    assert parse_event_grid(encode([sms_event()])) == parse_event_grid(sms_event())
    assert len(parse_event_grid(encode(sms_event()))) == 1


def test_cloudevents_single_and_batch() -> None:
    [grid] = parse_event_grid([sms_event("START")])
    [single] = parse_event_grid(cloud_event("START"))
    batch = parse_event_grid(json.dumps([cloud_event("START"), cloud_event("HELP")]))
    assert (single.sender, single.recipient, single.text) == (OURS, CONSUMER, "START")
    assert single.received_at == grid.received_at
    assert [m.classify().intent for m in batch] == [Intent.OPT_IN, Intent.HELP]


def test_cloudevent_data_given_as_a_json_string() -> None:
    event = cloud_event()
    event["data"] = json.dumps(event["data"])
    [message] = parse_event_grid(event)
    assert message.recipient == CONSUMER


def test_other_event_types_are_skipped_in_order() -> None:
    batch = [VALIDATION, sms_event("first"), DELIVERY_REPORT, sms_event("second")]
    assert [m.text for m in parse_event_grid(batch)] == ["first", "second"]
    assert parse_event_grid([DELIVERY_REPORT, VALIDATION]) == []
    assert parse_event_grid([]) == []


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-06-03T18:35:12Z", datetime(2024, 6, 3, 18, 35, 12, tzinfo=UTC)),
        ("2024-06-03T18:35:12.5Z", datetime(2024, 6, 3, 18, 35, 12, 500000, tzinfo=UTC)),
        ("2024-06-03T20:35:12.123+02:00", datetime(2024, 6, 3, 18, 35, 12, 123000, tzinfo=UTC)),
        ("2024-06-03T11:35:12-0700", datetime(2024, 6, 3, 18, 35, 12, tzinfo=UTC)),
        ("2024-06-03 18:35:12", datetime(2024, 6, 3, 18, 35, 12, tzinfo=UTC)),
        ("2024-06-03T18:35+00", datetime(2024, 6, 3, 18, 35, tzinfo=UTC)),
    ],
)
def test_timestamps_become_utc(stamp: str, expected: datetime) -> None:
    [message] = parse_event_grid(sms_event(receivedTimestamp=stamp))
    assert message.received_at == expected
    assert message.received_at.tzinfo is UTC


def test_without_received_timestamp_the_event_time_is_used() -> None:
    grid = sms_event()
    del grid["data"]["receivedTimestamp"]
    assert parse_event_grid(grid)[0].received_at == datetime(2024, 6, 3, 18, 35, 12, tzinfo=UTC)
    cloud = cloud_event()
    del cloud["data"]["receivedTimestamp"]
    assert parse_event_grid(cloud)[0].received_at.microsecond == 285574
    del grid["eventTime"]
    with pytest.raises(InvalidPayload, match="when it was received"):
        parse_event_grid(grid)


def test_numbers_are_normalised_and_short_codes_kept() -> None:
    # Azure's published sample writes "from" without its "+".
    [message] = parse_event_grid(sms_event(**{"from": "15555550123", "to": " 12345 "}))
    assert (message.sender, message.recipient) == ("12345", CONSUMER)
    [formatted] = parse_event_grid(sms_event(**{"from": "+1 (555) 555-0123"}))
    assert formatted.recipient == CONSUMER


def test_older_pascal_case_data_keys_are_read() -> None:
    event = sms_event()
    event["data"] = {key[0].upper() + key[1:]: value for key, value in event["data"].items()}
    [message] = parse_event_grid(event)
    assert (message.sender, message.recipient, message.text) == (OURS, CONSUMER, "STOP")


def test_message_id_falls_back_to_the_event_id() -> None:
    event = sms_event()
    del event["data"]["messageId"]
    assert parse_event_grid(event)[0].message_id == event["id"]


def test_an_empty_or_missing_text_is_an_empty_message() -> None:
    event = sms_event()
    del event["data"]["message"]
    [message] = parse_event_grid(event)
    assert message.text == ""
    assert message.classify().intent is Intent.NONE


def _mutated(path: str, value: Any) -> dict[str, Any]:
    event = sms_event()
    target = event
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return event


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        ("42", "got int"),
        (json.dumps([sms_event(), "STOP"]), r"events\[1\] is str, not an object"),
        ({"data": {}}, "neither an Event Grid event"),
        (_mutated("eventType", None), "eventType is None, not a string"),
        (_mutated("data", KeyError), "event.data is NoneType, not an object"),
        (_mutated("data", "{oops"), "event.data is a string but not JSON"),
        (_mutated("data.from", KeyError), "event.data.from is missing"),
        (_mutated("data.to", None), "event.data.to is missing"),
        (_mutated("data.message", 7), "event.data.message is int, not a string"),
        (_mutated("data.receivedTimestamp", "yesterday"), "not an ISO 8601 time"),
        (_mutated("data.receivedTimestamp", "2024-13-03T18:35:12Z"), "not a valid time"),
        (_mutated("data.receivedTimestamp", "0001-01-01T00:00:00+05:00"), "not a valid time"),
        (
            _mutated("data.receivedTimestamp", "\u0662\u0660\u0662\u0664-06-03T18:35:12Z"),
            "not an ISO 8601 time",
        ),
    ],
)
def test_malformed_azure_payloads_say_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message) as raised:
        parse_event_grid(payload)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, OptOutError)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("from", "not-a-number", "events[1].data.from: not a phone number"),
        ("to", "+1555", "events[1].data.to: too short"),
        ("from", 15555550123, "events[1].data.from: expected a string"),
        ("to", "*", "events[1].data.to: not a phone number"),
    ],
)
def test_a_bad_number_names_its_field(field: str, value: Any, reason: str) -> None:
    with pytest.raises(InvalidNumber) as raised:
        parse_event_grid([sms_event(), sms_event(**{field: value})])
    assert raised.value.reason.startswith(reason)
    assert raised.value.value == value


def test_validation_handshake() -> None:
    expected = {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert validation_response([VALIDATION]) == expected
    assert validation_response(json.dumps(VALIDATION).encode()) == expected
    assert validation_response([sms_event()]) is None
    assert validation_response(cloud_event()) is None
    broken: dict[str, Any] = copy.deepcopy(VALIDATION)
    del broken["data"]["validationCode"]
    with pytest.raises(InvalidPayload, match="validationCode is missing"):
        validation_response([broken])


def test_cloudevents_handshake_headers() -> None:
    assert handshake_headers({"webhook-request-origin": "eventgrid.azure.net"}) == {
        "WebHook-Allowed-Origin": "eventgrid.azure.net"
    }
    assert handshake_headers({"Content-Type": "application/json"}) is None


def test_the_handshake_answers_either_schema_and_nothing_else() -> None:
    origin = {"WebHook-Request-Origin": "eventgrid.azure.net"}
    assert handshake("OPTIONS", b"", origin) == HandshakeReply(
        headers={"WebHook-Allowed-Origin": "eventgrid.azure.net"}
    )
    assert handshake("OPTIONS", b"", {}) is None
    assert handshake("POST", json.dumps([VALIDATION]).encode(), {}) == HandshakeReply(
        body={"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    )
    # A delivery is no handshake, even with the origin header; an empty POST is not either.
    assert handshake("POST", json.dumps([sms_event()]), origin) is None
    assert handshake("POST", b"", {}) is None


# -- registered with optouts --------------------------------------------------------------------


def test_the_format_is_registered_as_azure() -> None:
    assert optouts.inbound.parsers()["azure"] == FORMAT
    assert FORMAT.module == "optouts_azure._inbound"


def test_a_webhook_endpoint_gets_events_or_a_handshake_reply() -> None:
    body = json.dumps([VALIDATION]).encode()
    assert optouts.inbound.receive("azure", body) == HandshakeReply(
        body={"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    )
    origin = {"webhook-request-origin": "eventgrid.azure.net"}
    reply = optouts.inbound.receive("azure", b"", origin, method="options")
    assert reply == HandshakeReply(headers={"WebHook-Allowed-Origin": "eventgrid.azure.net"})
    events = optouts.inbound.receive("azure", json.dumps([sms_event(), cloud_event("START")]))
    assert events == parse_event_grid([sms_event(), cloud_event("START")])
    assert [type(event) for event in events] == [InboundMessage, InboundMessage]
    with pytest.raises(InvalidPayload, match="not JSON"):
        optouts.inbound.receive("azure", b"", {"Content-Type": "application/json"})


def test_the_functions_of_optouts_0_2_still_answer() -> None:
    batch = [VALIDATION, sms_event("first"), DELIVERY_REPORT]
    assert optouts.inbound.parse_azure_event_grid(batch) == parse_event_grid(batch)
    assert optouts.inbound.parse("azure", batch) == parse_event_grid(batch)
    assert optouts.inbound.azure_validation_response([VALIDATION]) == validation_response(
        [VALIDATION]
    )
    assert optouts.inbound.azure_validation_response([sms_event()]) is None
    origin = {"WebHook-Request-Origin": "eventgrid.azure.net"}
    assert optouts.inbound.azure_handshake_headers(origin) == handshake_headers(origin)
    assert optouts.inbound.azure_handshake_headers({}) is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@given(st.sampled_from(["from", "to", "message", "receivedTimestamp", "messageId"]), JSON)
def test_any_field_value_parses_or_fails_cleanly(field: str, value: Any) -> None:
    with contextlib.suppress(InvalidPayload, InvalidNumber):
        parse_event_grid(sms_event(**{field: value}))


@given(JSON)
def test_any_json_parses_or_fails_cleanly(payload: Any) -> None:
    with contextlib.suppress(InvalidPayload):
        parse_event_grid(payload)
    with contextlib.suppress(InvalidPayload):
        validation_response(payload)


# -- every malformed body is InvalidPayload ----------------------------------------------------

PARSERS: list[Parser] = [parse_event_grid, validation_response]


def without_received_timestamp(event: dict[str, Any]) -> Any:
    return with_field(event, "data.receivedTimestamp", MISSING)


BASES: dict[str, Any] = {
    "grid": sms_event(),
    "grid-late": without_received_timestamp(sms_event()),
    "cloud": without_received_timestamp(cloud_event()),
    "validation": VALIDATION,
}
FIELDS = [
    *(
        ("grid", path)
        for path in (
            *("eventType", "data", "data.from", "data.to", "data.message"),
            *("data.receivedTimestamp", "data.messageId", "id", "eventTime"),
        )
    ),
    *(("grid-late", path) for path in ("eventTime", "data.messageId")),
    *(("cloud", path) for path in ("type", "specversion", "data", "data.from", "time", "id")),
    *(("validation", path) for path in ("eventType", "data", "data.validationCode")),
]


SMS_EVENT = "Microsoft.Communication.SMSReceived"
PLAUSIBLE = [
    *(OURS, CONSUMER, "15555550123", "12345", "*", "", "2024-06-03T18:35:12Z"),
    *(SMS_EVENT, "Microsoft.EventGrid.SubscriptionValidationEvent", "1.0"),
    *("eventType", "type", "specversion", "data", "from", "to", "validationCode"),
]
ANY_JSON = any_json(PLAUSIBLE)


@given(st.sampled_from(FIELDS), ANY_JSON | st.just(MISSING))
def test_any_value_in_any_field_parses_or_is_invalid_payload(
    place: tuple[str, str], value: Any
) -> None:
    base, path = place
    each_parser_on(PARSERS, with_field(BASES[base], path, value))


@given(ANY_JSON)
def test_any_json_body_parses_or_is_invalid_payload(payload: Any) -> None:
    each_parser_on(PARSERS, payload)
    each_parser_on(PARSERS, [payload])
    each_parser_on(PARSERS, {"eventType": SMS_EVENT, "data": payload})
    each_parser_on(PARSERS, {"specversion": "1.0", "type": SMS_EVENT, "data": payload})


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_are_invalid_payload(payload: bytes) -> None:
    for parse in PARSERS:
        parses_or_refuses(parse, payload)


DEEP = deeply_nested_bodies(sms_event())


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("payload", DEEP.values(), ids=DEEP.keys())
def test_a_body_nested_100000_deep_is_invalid_payload(parse: Parser, payload: Any) -> None:
    with pytest.raises(InvalidPayload, match="nested too deeply"):
        parse(payload)


def test_cloudevent_data_as_a_string_nested_100000_deep() -> None:
    event = cloud_event()
    event["data"] = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidPayload, match=r"event\.data is a string of JSON nested too deeply"):
        parse_event_grid(event)


@pytest.mark.parametrize("place", FIELDS, ids=["/".join(place) for place in FIELDS])
def test_a_decoded_value_nested_100000_deep_in_any_field(place: tuple[str, str]) -> None:
    base, path = place
    document = with_field(BASES[base], path, nested(100_000))
    for parse in PARSERS:
        parses_or_refuses(parse, document)


@pytest.mark.parametrize(
    ("parse", "payload", "message"),
    [
        (parse_event_grid, sms_event(to=[OURS]), r"event.data.to: expected a string"),
        (parse_event_grid, _mutated("data.from", {"n": 1}), "data.from: expected a string"),
        (parse_event_grid, _mutated("data.from", 15555550123), "data.from: expected"),
        (parse_event_grid, sms_event(to=nested(100_000)), "data.to: expected a string"),
        (
            parse_event_grid,
            sms_event(receivedTimestamp=10**5000),
            "receivedTimestamp: a very long number is not",
        ),
        (parse_event_grid, _mutated("eventType", nested(100_000)), "eventType is list"),
        (parse_event_grid, _mutated("eventType", 10**5000), "eventType is a very long"),
        (parse_event_grid, b'{"eventType": "\xff"}', "not JSON"),
        (parse_event_grid, "\ud800", "not JSON"),
        (parse_event_grid, "[1.5]", r"events\[0\] is float"),
        (validation_response, "3.5", "got float"),
    ],
)
def test_malformed_shapes_are_invalid_payload(parse: Parser, payload: Any, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message) as raised:
        parse(payload)
    assert len(str(raised.value)) < 300


def test_a_bad_number_is_both_invalid_payload_and_invalid_number() -> None:
    with pytest.raises(InvalidNumberInPayload) as raised:
        parse_event_grid(sms_event(to="+1555"))
    assert isinstance(raised.value, InvalidPayload)
    assert isinstance(raised.value, InvalidNumber)
    assert raised.value.value == "+1555"
    assert raised.value.reason.startswith("event.data.to: too short")
    huge = "+1" + "5" * 100_000
    with pytest.raises(InvalidNumberInPayload) as long_one:
        parse_event_grid(sms_event(**{"from": huge}))
    assert long_one.value.value == huge
    assert len(str(long_one.value)) < 300


def test_unusable_ids_are_left_out_not_refused() -> None:
    [message] = parse_event_grid(sms_event(messageId=["x"]))
    assert message.message_id == "Incoming_20240603183512d29ebbea-3341-4466-9690-0a03af35228e"
    event = sms_event(messageId=10**5000)
    event["id"] = True
    assert parse_event_grid(event)[0].message_id is None
    assert parse_event_grid(sms_event(messageId=42))[0].message_id == "42"


# -- what the endpoint needs: the token, and the origins its CloudEvents handshake allows ------

ENDPOINT = {"token": Secret("s3cret-token"), "allowed_origins": ("eventgrid.azure.net",)}


def test_the_format_declares_its_endpoint_settings() -> None:
    assert FORMAT.authenticate is authenticate
    assert FORMAT.settings == SETTINGS
    token, origins = SETTINGS
    assert (token.name, token.required, token.secret) == ("token", True, True)
    assert (origins.name, origins.required, origins.secret) == ("allowed_origins", False, False)
    assert origins.parse is not None
    assert origins.parse(" EventGrid.Azure.net, other.example ,") == (
        "eventgrid.azure.net",
        "other.example",
    )
    assert origins.parse(["eventgrid.azure.net"]) == ("eventgrid.azure.net",)
    with pytest.raises(ValueError, match="host names"):
        origins.parse(3)


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({}, {"token": "s3cret-token"}, True),
        ({"Authorization": "Bearer s3cret-token"}, {}, True),
        ({"authorization": "bearer s3cret-token"}, {"token": "wrong"}, True),
        ({}, {}, False),
        ({}, {"token": "wrong"}, False),
        ({}, {"token": "s3cret-token "}, False),
        ({"Authorization": "Basic s3cret-token"}, {}, False),
        ({"Authorization": "s3cret-token"}, {}, False),
        ({"Aeg-Delivery-Token": "s3cret-token"}, {"tok": "s3cret-token"}, False),
    ],
)
def test_a_delivery_is_authentic_with_the_token_in_the_query_or_as_bearer(
    headers: dict[str, str], query: dict[str, str], expected: bool
) -> None:
    assert authenticate(headers, query, ENDPOINT) is expected


def test_without_a_token_configured_nothing_is_authentic() -> None:
    assert not authenticate({}, {"token": ""}, {"token": None})
    assert not authenticate({"Authorization": "Bearer x"}, {"token": "x"}, {})


def test_with_settings_the_cloudevents_handshake_allows_only_their_origins() -> None:
    allowed = handshake("OPTIONS", b"", {"WebHook-Request-Origin": "EventGrid.Azure.net"}, ENDPOINT)
    assert allowed == HandshakeReply(headers={"WebHook-Allowed-Origin": "EventGrid.Azure.net"})
    refused = handshake("OPTIONS", b"", {"WebHook-Request-Origin": "evil.example"}, ENDPOINT)
    assert refused is not None
    assert refused.status == 403
    assert refused.headers == {}
    assert refused.body == {"error": "origin 'evil.example' is not in allowed_origins"}
    none_allowed = {"token": Secret("t"), "allowed_origins": None}
    refused = handshake(
        "OPTIONS", b"", {"WebHook-Request-Origin": "eventgrid.azure.net"}, none_allowed
    )
    assert refused is not None
    assert refused.status == 403
    # the Event Grid schema's validation needs no setting: it proves nothing but presence
    assert handshake("POST", json.dumps([VALIDATION]), {}, ENDPOINT) == HandshakeReply(
        body={"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    )


def test_receive_hands_the_endpoint_settings_to_the_handshake() -> None:
    origin = {"WebHook-Request-Origin": "evil.example"}
    refused = optouts.inbound.receive("azure", b"", origin, method="OPTIONS", settings=ENDPOINT)
    assert isinstance(refused, HandshakeReply)
    assert refused.status == 403
    echoed = optouts.inbound.receive("azure", b"", origin, method="OPTIONS")
    assert echoed == HandshakeReply(headers={"WebHook-Allowed-Origin": "evil.example"})
