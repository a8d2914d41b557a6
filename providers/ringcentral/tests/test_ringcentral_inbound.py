"""The ``ringcentral`` webhook format: v1 opt-out notifications, v2 consent events, and the
``Validation-Token`` handshake."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import optouts.inbound
from optouts import InvalidNumber, InvalidPayload, Secret, Status
from optouts.inbound import ConsentEvent, HandshakeReply, InvalidNumberInPayload
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
from optouts_ringcentral._inbound import (
    FORMAT,
    SETTINGS,
    authenticate,
    handshake,
    parse_notification,
    validation_headers,
)

OURS = "+18005550100"
CONSUMER = "+15555550123"
UTC = timezone.utc


def v1_notification(active: Any = True, **body: Any) -> dict[str, Any]:
    return {
        "uuid": "5184271839120493071",
        "event": "/restapi/v1.0/account/37439510/a2p-sms/opt-outs",
        "timestamp": "2024-06-03T18:35:14.120Z",
        "subscriptionId": "11112222-3333-4444-5555-666677778888",
        "ownerId": "37439510",
        "body": {"from": OURS, "to": CONSUMER, "active": active, **body},
    }


def v2_notification(*records: Any) -> dict[str, Any]:
    return {
        "uuid": "7730946250263212113",
        "event": "/restapi/v2/accounts/37439510/sms/consents",
        "timestamp": "2024-06-03T18:40:00.000Z",
        "subscriptionId": "11112222-3333-4444-5555-666677778888",
        "ownerId": "37439510",
        "body": {"records": list(records)},
    }


def record(to: str = CONSUMER, status: str = "OptOut", **fields: Any) -> dict[str, Any]:
    return {
        "from": OURS,
        "to": to,
        "optStatus": status,
        "source": "Recipient",
        "lastModifiedTime": "2024-06-03T18:35:13.500Z",
        **fields,
    }


def test_v1_from_is_our_number_to_is_the_consumer_active_is_opted_out() -> None:
    [event] = parse_notification(v1_notification(active=True))
    assert event == ConsentEvent(
        sender=OURS,
        recipient=CONSUMER,
        opted_out=True,
        at=datetime(2024, 6, 3, 18, 35, 14, 120000, tzinfo=UTC),
        provider="ringcentral",
        source=None,
        notification_id="5184271839120493071",
    )
    assert event.status is Status.OPTED_OUT
    assert event.raw == {"from": OURS, "to": CONSUMER, "active": True}
    [back_in] = parse_notification(json.dumps(v1_notification(active=False)))
    assert not back_in.opted_out
    assert back_in.status is Status.OPTED_IN


def test_v1_event_filter_with_a_sender_query() -> None:
    notification = v1_notification()
    notification["event"] = "/restapi/v1.0/account/~/a2p-sms/opt-outs?from=%2B18005550100"
    assert len(parse_notification(notification)) == 1


def test_v2_records_each_become_an_event() -> None:
    notification = v2_notification(
        record(),
        record("+15555550124", "OptIn", source="Api", lastModifiedTime="2024-06-03T11:35:13-07:00"),
        record("+15555550125", source="Carrier", lastModifiedTime=None),
    )
    events = parse_notification(notification)
    assert [(e.sender, e.recipient, e.opted_out, e.source) for e in events] == [
        (OURS, CONSUMER, True, "recipient"),
        (OURS, "+15555550124", False, "api"),
        (OURS, "+15555550125", True, "carrier"),
    ]
    assert events[0].at == datetime(2024, 6, 3, 18, 35, 13, 500000, tzinfo=UTC)
    assert events[1].at == datetime(2024, 6, 3, 18, 35, 13, tzinfo=UTC)
    assert events[2].at == datetime(2024, 6, 3, 18, 40, tzinfo=UTC)  # the envelope's time
    assert {e.notification_id for e in events} == {"7730946250263212113"}
    assert events[1].raw["source"] == "Api"


def test_v2_account_coverage_is_every_sender() -> None:
    events = parse_notification(
        v2_notification(record(coverage="Account"), record(coverage="PhoneNumber"))
    )
    assert [e.sender for e in events] == ["*", OURS]


def test_v2_campaign_type_opt_outs_widen_and_opt_ins_are_skipped() -> None:
    campaign = {"coverage": "CampaignType", "campaignType": "Promotional"}
    out, skipped = record(**campaign), record("+15555550124", "OptIn", **campaign)
    [event] = parse_notification(v2_notification(out, skipped))
    assert (event.sender, event.recipient, event.opted_out) == ("*", CONSUMER, True)


def test_an_opt_out_record_as_the_common_model() -> None:
    [event] = parse_notification(v2_notification(record()))
    opt_out = event.as_opt_out()
    assert (opt_out.sender, opt_out.recipient, opt_out.status) == (OURS, CONSUMER, "opted-out")
    assert opt_out.country == "US"
    assert opt_out.updated_at == event.at
    assert opt_out.provider == "ringcentral"
    assert opt_out.source == "recipient"


def test_bare_bodies_and_lists_of_notifications() -> None:
    [bare] = parse_notification({"from": OURS, "to": CONSUMER, "active": True})
    assert bare.at is None
    assert len(parse_notification({"records": [record(), record()]})) == 2
    both = parse_notification([v1_notification(), v2_notification(record())])
    assert len(both) == 2


def test_other_event_filters_are_skipped() -> None:
    notification = v1_notification()
    notification["event"] = "/restapi/v1.0/account/~/a2p-sms/messages?direction=Inbound"
    notification["body"] = {"id": "1", "direction": "Inbound", "text": "STOP"}
    assert parse_notification(notification) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"nope", "not JSON"),
        ("true", "got bool"),
        ({"body": []}, "notification.body is list, not an object"),
        ({"event": 3, "body": {}}, "notification.event is 3, not a string"),
        ({"body": {"hello": 1}}, "neither an opt-out notification"),
        (v1_notification(active="true"), "notification.body.active is 'true', not true or false"),
        (v1_notification(to=None), "notification.body.to is missing"),
        ({**v1_notification(), "timestamp": "soon"}, "notification.timestamp: 'soon'"),
        ({**v2_notification(), "body": {"records": {}}}, "body.records is dict, not a list"),
        (v2_notification(record(), "x"), r"body.records\[1\] is str"),
        (v2_notification(record(), record(status="Opt-Out")), r"records\[1\].optStatus is"),
        (v2_notification(record(lastModifiedTime="2024")), r"records\[0\].lastModifiedTime"),
    ],
)
def test_malformed_ringcentral_payloads_say_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        parse_notification(payload)


def test_a_bad_ringcentral_number_names_its_field() -> None:
    with pytest.raises(InvalidNumber) as raised:
        parse_notification(v2_notification(record(), record(to="5555550123")))
    assert raised.value.reason.startswith("notification.body.records[1].to: no country code")
    with pytest.raises(InvalidNumber, match=r"body.from"):
        parse_notification(v1_notification(**{"from": "+1"}))


def test_ringcentral_webhook_validation_headers() -> None:
    assert validation_headers({"validation-token": "abc123"}) == {"Validation-Token": "abc123"}
    assert validation_headers({"Validation-Token": ""}) is None
    assert validation_headers({}) is None


def test_the_handshake_is_known_by_its_header() -> None:
    token = {"Validation-Token": "abc123"}
    assert handshake("POST", b"", token) == HandshakeReply(headers=token)
    assert handshake("POST", json.dumps(v1_notification()), {}) is None


# -- registered with optouts --------------------------------------------------------------------


def test_the_format_is_registered_as_ringcentral() -> None:
    assert optouts.inbound.parsers()["ringcentral"] == FORMAT
    assert FORMAT.module == "optouts_ringcentral._inbound"


def test_a_webhook_endpoint_gets_events_or_a_handshake_reply() -> None:
    token = {"validation-token": "abc123"}
    reply = optouts.inbound.receive("ringcentral", b"", token)
    assert reply == HandshakeReply(headers={"Validation-Token": "abc123"})
    body = json.dumps([v1_notification(), v2_notification(record())]).encode()
    events = optouts.inbound.receive("ringcentral", body, {"Content-Type": "application/json"})
    assert events == parse_notification(body)
    assert [type(event) for event in events] == [ConsentEvent, ConsentEvent]
    with pytest.raises(InvalidPayload, match="neither a handshake of webhook format 'ringcentral'"):
        optouts.inbound.receive("ringcentral", b"", method="GET")


def test_the_functions_of_optouts_0_2_still_answer() -> None:
    notification = v2_notification(record(), record(coverage="Account"))
    assert optouts.inbound.parse_ringcentral_notification(notification) == parse_notification(
        notification
    )
    assert optouts.inbound.parse("ringcentral", notification) == parse_notification(notification)
    token = {"Validation-Token": "abc123"}
    assert optouts.inbound.ringcentral_validation_headers(token) == token
    assert optouts.inbound.ringcentral_validation_headers({}) is None


# -- every malformed body is InvalidPayload ----------------------------------------------------

PARSERS: list[Parser] = [parse_notification]


BASES: dict[str, Any] = {
    "v1": v1_notification(),
    "v2": v2_notification(record(), record("+15555550124", "OptIn", coverage="PhoneNumber")),
    "bare-v2": {"records": [record()]},
}
FIELDS = [
    *(("v1", path) for path in ("uuid", "event", "timestamp", "body")),
    *(("v1", f"body.{field}") for field in ("from", "to", "active")),
    *(("v2", path) for path in ("body", "body.records", "body.records.1")),
    *(
        ("v2", f"body.records.{index}.{field}")
        for index in (0, 1)
        for field in ("from", "to", "optStatus", "source", "lastModifiedTime", "coverage")
    ),
    *(("bare-v2", f"records.0.{field}") for field in ("from", "coverage", "lastModifiedTime")),
]


PLAUSIBLE = [
    *(OURS, CONSUMER, "15555550123", "12345", "*", "", "Account", "PhoneNumber"),
    *("CampaignType", "OptOut", "OptIn", "2024-06-03T18:35:12Z"),
    *("/restapi/v1.0/account/~/a2p-sms/opt-outs", "/restapi/v2/accounts/~/sms/consents"),
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
    each_parser_on(PARSERS, {"body": payload, "event": "/restapi/v2/accounts/~/sms/consents"})


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_are_invalid_payload(payload: bytes) -> None:
    for parse in PARSERS:
        parses_or_refuses(parse, payload)


DEEP = deeply_nested_bodies(v1_notification())


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("payload", DEEP.values(), ids=DEEP.keys())
def test_a_body_nested_100000_deep_is_invalid_payload(parse: Parser, payload: Any) -> None:
    with pytest.raises(InvalidPayload, match="nested too deeply"):
        parse(payload)


@pytest.mark.parametrize("place", FIELDS, ids=["/".join(place) for place in FIELDS])
def test_a_decoded_value_nested_100000_deep_in_any_field(place: tuple[str, str]) -> None:
    base, path = place
    document = with_field(BASES[base], path, nested(100_000))
    for parse in PARSERS:
        parses_or_refuses(parse, document)


@pytest.mark.parametrize(
    ("parse", "payload", "message"),
    [
        (
            parse_notification,
            v2_notification(record(coverage=["Account"])),
            r"records\[0\].coverage is list, not a string",
        ),
        (
            parse_notification,
            v2_notification(record(coverage={"type": "Account"})),
            r"records\[0\].coverage is dict, not a string",
        ),
        (
            parse_notification,
            {"records": [record(coverage=7)]},
            r"records\[0\].coverage is 7, not a string",
        ),
        (parse_notification, v1_notification(to=[CONSUMER]), "body.to: expected"),
        (parse_notification, v1_notification(to=10**5000), "a very long number"),
        (
            parse_notification,
            {**v1_notification(), "timestamp": nested(100_000)},
            "timestamp: list is not an ISO 8601 time",
        ),
        (
            parse_notification,
            v2_notification(record(lastModifiedTime=0)),
            r"records\[0\].lastModifiedTime: 0 is not",
        ),
        (
            parse_notification,
            v2_notification(record(lastModifiedTime=[])),
            r"records\[0\].lastModifiedTime: list is not",
        ),
        (parse_notification, b"\xef\xbb\xbf\xff", "not JSON"),
        (parse_notification, "null", "got NoneType"),
    ],
)
def test_malformed_shapes_are_invalid_payload(parse: Parser, payload: Any, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message) as raised:
        parse(payload)
    assert len(str(raised.value)) < 300


def test_a_bad_number_is_both_invalid_payload_and_invalid_number() -> None:
    with pytest.raises(InvalidNumberInPayload) as raised:
        parse_notification(v1_notification(to="+1555"))
    assert isinstance(raised.value, InvalidPayload)
    assert isinstance(raised.value, InvalidNumber)
    assert raised.value.value == "+1555"
    assert raised.value.reason.startswith("notification.body.to: too short")
    huge = "+1" + "5" * 100_000
    with pytest.raises(InvalidNumberInPayload) as long_one:
        parse_notification(v1_notification(to=huge))
    assert long_one.value.value == huge
    assert len(str(long_one.value)) < 300


# -- what the endpoint needs: the subscription's verification token ----------------------------

ENDPOINT = {"verification_token": Secret("rc-verification")}


def test_the_format_declares_its_endpoint_settings() -> None:
    assert FORMAT.authenticate is authenticate
    assert FORMAT.settings == SETTINGS
    [token] = SETTINGS
    assert (token.name, token.required, token.secret) == ("verification_token", True, True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Verification-Token": "rc-verification"}, True),
        ({"verification-token": "rc-verification"}, True),
        ({}, False),
        ({"Verification-Token": "rc-verificatio"}, False),
        ({"Verification-Token": "rc-verification-and-more"}, False),
        ({"Validation-Token": "rc-verification"}, False),
        ({"Authorization": "Bearer rc-verification"}, False),
    ],
)
def test_a_notification_is_authentic_with_the_verification_token(
    headers: dict[str, str], expected: bool
) -> None:
    assert authenticate(headers, {}, ENDPOINT) is expected


def test_the_query_never_authenticates_and_no_token_configured_admits_nothing() -> None:
    assert not authenticate({}, {"verification_token": "rc-verification"}, ENDPOINT)
    assert not authenticate({"Verification-Token": "x"}, {}, {"verification_token": None})
    assert not authenticate({"Verification-Token": ""}, {}, {})


def test_the_handshake_needs_no_setting() -> None:
    token = {"Validation-Token": "abc123"}
    assert handshake("POST", b"", token, ENDPOINT) == HandshakeReply(headers=token)
    assert optouts.inbound.receive("ringcentral", b"", token, settings=ENDPOINT) == (
        HandshakeReply(headers=token)
    )
