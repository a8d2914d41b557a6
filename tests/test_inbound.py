"""Inbound webhooks in core: the model, the helpers every parser uses, and the formats that
plugins register (the vendors' own parsers are tested with their plugins)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import optouts
from optouts import ConfigurationError, InvalidNumber, Secret, Setting, Status, _plugins
from optouts.inbound import (
    ConsentEvent,
    HandshakeReply,
    InboundMessage,
    InboundParser,
    InvalidNumberInPayload,
    InvalidPayload,
    Payload,
    bearer_token,
    each_object,
    get_header,
    load_json,
    parse,
    parsers,
    read_number,
    read_timestamp,
    receive,
    secret_matches,
    shown,
)
from optouts.keywords import Intent

OURS = "+18005550100"
CONSUMER = "+15555550123"
UTC = timezone.utc
WHEN = datetime(2024, 6, 3, 18, 35, tzinfo=UTC)


# -- the model --------------------------------------------------------------------------------


def test_an_inbound_message_holds_an_aware_utc_time() -> None:
    eastern = timezone(timedelta(hours=-4))
    message = InboundMessage(
        OURS, CONSUMER, "stop", datetime(2024, 6, 3, 14, 35, tzinfo=eastern), "azure"
    )
    assert message.received_at == datetime(2024, 6, 3, 18, 35, tzinfo=UTC)
    assert message.received_at.tzinfo is UTC
    with pytest.raises(ValueError, match="aware"):
        InboundMessage(OURS, CONSUMER, "stop", datetime(2024, 6, 3, 14, 35), "azure")


def test_an_inbound_message_classifies_its_text() -> None:
    assert InboundMessage(OURS, CONSUMER, "Stop.", WHEN, "acme").classify().intent is Intent.OPT_OUT
    assert InboundMessage(OURS, CONSUMER, "", WHEN, "acme").classify().intent is Intent.NONE


def test_a_consent_event_as_the_common_model() -> None:
    event = ConsentEvent(
        "*", CONSUMER, True, WHEN, "acme", source="recipient", raw={"vendor": "field"}
    )
    assert event.status is Status.OPTED_OUT
    opt_out = event.as_opt_out()
    assert (opt_out.sender, opt_out.recipient, opt_out.status) == ("*", CONSUMER, "opted-out")
    assert (opt_out.country, opt_out.updated_at, opt_out.source) == ("US", WHEN, "recipient")
    assert opt_out.raw == {"vendor": "field"}
    back_in = ConsentEvent(OURS, CONSUMER, False, None, "acme")
    assert back_in.status is Status.OPTED_IN
    assert back_in.as_opt_out().updated_at is None
    assert back_in == ConsentEvent(OURS, CONSUMER, False, None, "acme", raw={"other": 1})
    with pytest.raises(ValueError, match="aware"):
        ConsentEvent(OURS, CONSUMER, True, datetime(2024, 6, 3), "acme")


# -- helpers for every vendor's parser ----------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [b'{"a": [1]}', bytearray(b'{"a": [1]}'), '{"a": [1]}', {"a": [1]}]
)
def test_load_json_takes_bytes_text_or_decoded_json(payload: Payload) -> None:
    assert load_json(payload) == {"a": [1]}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "the webhook body is not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b'{"text": "\xff"}', "not JSON"),
        ("\ud800", "not JSON"),
        (b"", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ],
)
def test_load_json_refuses_with_invalid_payload(payload: Payload, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message) as raised:
        load_json(payload)
    assert len(str(raised.value)) < 300


def test_each_object_takes_one_or_a_list_and_names_their_places() -> None:
    assert list(each_object('{"n": 1}', "event")) == [("event", {"n": 1})]
    assert list(each_object([{"n": 1}, {"n": 2}], "event")) == [
        ("events[0]", {"n": 1}),
        ("events[1]", {"n": 2}),
    ]
    assert list(each_object(b"[]", "event")) == []
    with pytest.raises(InvalidPayload, match=r"events\[1\] is str, not an object"):
        list(each_object([{}, "STOP"], "event"))
    with pytest.raises(InvalidPayload, match="expected a notification or a list of them, got int"):
        list(each_object("42", "notification"))


def test_read_number_normalises_and_names_the_field() -> None:
    assert read_number(" +1 (555) 555-0123 ", "data.from", ours=False) == CONSUMER
    assert read_number("15555550123", "data.from", ours=False, bare_digits=True) == CONSUMER
    assert read_number(" 12345 ", "data.to", ours=True) == "12345"
    assert read_number("*", "body.from", ours=True, wildcard=True) == "*"
    with pytest.raises(InvalidPayload, match="body.to is missing") as missing:
        read_number(None, "body.to", ours=False)
    assert not isinstance(missing.value, InvalidNumber)
    for value, ours, reason in [
        ("12345", False, "data.from: "),  # a short code is only ever ours
        ("*", True, "data.to: not a phone number"),  # "*" only where the vendor means it
        ("15555550123", False, "data.from: no country code"),  # bare digits only when told
        (15555550123, False, "data.from: expected a string, got 15555550123"),
        (["+15555550123"], False, "data.from: expected a string, got list"),
    ]:
        with pytest.raises(InvalidNumberInPayload) as raised:
            read_number(value, "data.to" if ours else "data.from", ours=ours)
        assert raised.value.reason.startswith(reason)
        assert raised.value.value == value


def test_a_bad_number_is_both_invalid_payload_and_invalid_number() -> None:
    huge = "+1" + "5" * 100_000
    with pytest.raises(InvalidNumberInPayload) as raised:
        read_number(huge, "body.to", ours=False)
    assert isinstance(raised.value, InvalidPayload)
    assert isinstance(raised.value, InvalidNumber)
    assert raised.value.value == huge
    assert len(str(raised.value)) < 300
    with pytest.raises(InvalidNumberInPayload, match="a very long number"):
        read_number(10**5000, "body.to", ours=False)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-06-03T18:35:12Z", datetime(2024, 6, 3, 18, 35, 12, tzinfo=UTC)),
        ("2024-06-03T18:35:12.2855749Z", datetime(2024, 6, 3, 18, 35, 12, 285574, tzinfo=UTC)),
        ("2024-06-03T18:35:12.5z", datetime(2024, 6, 3, 18, 35, 12, 500000, tzinfo=UTC)),
        ("2024-06-03T20:35:12,123+02:00", datetime(2024, 6, 3, 18, 35, 12, 123000, tzinfo=UTC)),
        ("2024-06-03T11:35:12-0700", datetime(2024, 6, 3, 18, 35, 12, tzinfo=UTC)),
        (" 2024-06-03 18:35:12 ", datetime(2024, 6, 3, 18, 35, 12, tzinfo=UTC)),
        ("2024-06-03T18:35+00", datetime(2024, 6, 3, 18, 35, tzinfo=UTC)),
    ],
)
def test_read_timestamp_gives_aware_utc(stamp: str, expected: datetime) -> None:
    read = read_timestamp(stamp, "time")
    assert read == expected
    assert read.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "at: 'yesterday' is not an ISO 8601 time"),
        ("2024-13-03T18:35:12Z", "at: '2024-13-03T18:35:12Z' is not a valid time"),
        ("0001-01-01T00:00:00+05:00", "not a valid time"),
        ("\u0662\u0660\u0662\u0664-06-03T18:35:12Z", "not an ISO 8601 time"),
        ("2024", "not an ISO 8601 time"),
        (0, "at: 0 is not an ISO 8601 time"),
        ([[[]]], "at: list is not an ISO 8601 time"),
        (10**5000, "at: a very long number is not"),
    ],
    ids=["words", "month-13", "year-0", "arabic-digits", "year-only", "int", "list", "huge"],
)
def test_read_timestamp_refuses_with_invalid_payload(value: object, message: str) -> None:
    with pytest.raises(InvalidPayload, match=re.escape(message)) as raised:
        read_timestamp(value, "at")
    assert len(str(raised.value)) < 300


def test_get_header_ignores_case_and_empty_values() -> None:
    headers = {"Validation-Token": "", "webhook-request-origin": "eventgrid.azure.net"}
    assert get_header(headers, "WebHook-Request-Origin") == "eventgrid.azure.net"
    assert get_header(headers, "validation-token") is None
    assert get_header({}, "Content-Type") is None


def test_shown_keeps_values_short() -> None:
    assert shown("true") == "'true'"
    assert shown(3) == "3"
    assert shown(None) == "None"
    assert shown({"a": 1}) == "dict"
    assert shown(10**5000) == "a very long number"
    assert len(shown("x" * 100_000)) < 80


# -- the formats plugins register --------------------------------------------------------------


def acme_parse(payload: Payload, headers: Mapping[str, str]) -> list[ConsentEvent]:
    """A made-up vendor: ``{"stop": [numbers]}``, our number in an ``X-Acme-To`` header."""
    ours = read_number(get_header(headers, "X-Acme-To"), "X-Acme-To", ours=True)
    data = load_json(payload)
    numbers = data.get("stop") if isinstance(data, Mapping) else None
    if not isinstance(numbers, list):
        raise InvalidPayload(f"stop is {shown(numbers)}, not a list")
    return [
        ConsentEvent(ours, read_number(n, f"stop[{i}]", ours=False), True, None, "acme")
        for i, n in enumerate(numbers)
    ]


def acme_handshake(
    method: str, payload: Payload, headers: Mapping[str, str]
) -> HandshakeReply | None:
    challenge = get_header(headers, "X-Acme-Challenge")
    return None if challenge is None else HandshakeReply(body={"answer": challenge[::-1]})


ACME = InboundParser("acme", acme_parse, acme_handshake)


class AcmePlugin:
    def __init__(self, *formats: InboundParser) -> None:
        self.formats = formats

    @optouts.hookimpl
    def register_inbound_parsers(self, register: Any) -> None:
        for each in self.formats:
            register(each)


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A plugin manager built for the test (it reads OPTOUTS_LOAD_PLUGINS once)."""
    monkeypatch.setattr(_plugins, "_manager", None)
    monkeypatch.setattr(_plugins, "_broken", {})
    yield
    _plugins._manager = None


def plugged(*plugins: object) -> Iterator[None]:
    manager = _plugins.get_plugin_manager()
    names = [f"acme-inbound-{index}" for index in range(len(plugins))]
    for name, plugin in zip(names, plugins, strict=True):
        manager.register(plugin, name=name)
    try:
        yield
    finally:
        for name in names:
            manager.unregister(name=name)


@pytest.fixture
def acme() -> Iterator[None]:
    yield from plugged(AcmePlugin(ACME))


def test_a_plugin_brings_a_format_and_it_is_found_by_name(acme: None) -> None:
    assert parsers()["acme"] is ACME
    assert list(parsers()) == sorted(parsers())
    events = parse("acme", b'{"stop": ["+15555550123"]}', {"x-acme-to": OURS})
    assert events == [ConsentEvent(OURS, CONSUMER, True, None, "acme")]
    with pytest.raises(InvalidPayload, match="X-Acme-To is missing"):
        parse("acme", b'{"stop": []}')


def test_receive_answers_the_handshake_or_parses(acme: None) -> None:
    reply = receive("acme", b"", {"X-Acme-Challenge": "abc"})
    assert reply == HandshakeReply(body={"answer": "cba"})
    assert reply.headers == {}
    events = receive("acme", '{"stop": ["+15555550123"]}', {"X-Acme-To": OURS})
    assert events == [ConsentEvent(OURS, CONSUMER, True, None, "acme")]
    with pytest.raises(InvalidPayload, match="'GET' request is neither a handshake of .* 'acme'"):
        receive("acme", b"", {"X-Acme-To": OURS}, method="get")


def test_a_format_without_handshake_only_parses() -> None:
    plain = InboundParser("plain", acme_parse)
    for _ in plugged(AcmePlugin(plain)):
        assert receive("plain", '{"stop": []}', {"X-Acme-To": OURS}) == []
        with pytest.raises(InvalidPayload, match="neither a handshake of webhook format 'plain'"):
            receive("plain", b"", method="OPTIONS")


def test_two_plugins_with_one_format_name_is_an_error() -> None:
    def other_parse(payload: Payload, headers: Mapping[str, str]) -> list[ConsentEvent]:
        return []

    impostor = InboundParser("acme", other_parse)
    for _ in plugged(AcmePlugin(ACME), AcmePlugin(impostor)):
        with pytest.raises(ConfigurationError) as raised:
            parsers()
    message = str(raised.value)
    assert "two plugins register a webhook format named 'acme'" in message
    assert f"{ACME.module} and {impostor.module}" in message or (
        f"{impostor.module} and {ACME.module}" in message
    )
    assert ACME.module == __name__
    assert "OPTOUTS_LOAD_PLUGINS" in message


def test_two_plugins_naming_an_in_tree_format_name_both_modules() -> None:
    if "azure" not in parsers():
        pytest.skip("optouts-azure is not installed")
    impostor = InboundParser("azure", acme_parse)
    for _ in plugged(AcmePlugin(impostor)):
        with pytest.raises(ConfigurationError, match="optouts_azure._inbound") as raised:
            parsers()
    assert __name__ in str(raised.value)


def test_the_same_format_registered_twice_is_no_conflict() -> None:
    for _ in plugged(AcmePlugin(ACME), AcmePlugin(ACME)):
        assert parsers()["acme"] is ACME


def test_only_inbound_parsers_can_be_registered() -> None:
    for _ in plugged(AcmePlugin(acme_parse)):  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="handed function, not an optouts"):
            parsers()


@pytest.mark.parametrize("name", ["", "Azure", "web hooks", "../x", "a" * 65, "é"])
def test_a_format_name_fits_in_a_url_path(name: str) -> None:
    with pytest.raises(ValueError, match="lower-case letters, digits"):
        InboundParser(name, acme_parse)


def test_an_unknown_format_names_the_installed_ones() -> None:
    with pytest.raises(ConfigurationError, match="no webhook format named 'nope'; installed: "):
        parse("nope", b"{}")
    with pytest.raises(ConfigurationError, match="no webhook format named 'nope'"):
        receive("nope", b"{}")


def test_without_the_vendor_plugin_the_old_functions_say_what_to_install(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTOUTS_LOAD_PLUGINS", "")
    assert dict(parsers()) == {}
    with pytest.raises(ConfigurationError, match="install optouts-azure.*installed: none"):
        optouts.inbound.parse_azure_event_grid(b"[]")
    with pytest.raises(ConfigurationError, match="install optouts-azure"):
        optouts.inbound.azure_handshake_headers({})
    with pytest.raises(ConfigurationError, match="install optouts-ringcentral"):
        optouts.inbound.ringcentral_validation_headers({"Validation-Token": "t"})
    with pytest.raises(ConfigurationError, match="install optouts-ringcentral"):
        optouts.inbound.parse_ringcentral_notification(b"[]")


def test_the_in_tree_plugins_formats_are_found_by_name() -> None:
    found = parsers()
    missing = {"azure", "ringcentral"} - set(found)
    if missing:
        pytest.skip(f"not installed: {', '.join(sorted(missing))}")
    assert found["azure"].module == "optouts_azure._inbound"
    assert found["ringcentral"].module == "optouts_ringcentral._inbound"
    sms = {
        "eventType": "Microsoft.Communication.SMSReceived",
        "eventTime": "2024-06-03T18:35:12Z",
        "data": {"from": CONSUMER, "to": OURS, "message": "STOP"},
    }
    [message] = parse("azure", json.dumps([sms]))
    assert isinstance(message, InboundMessage)
    assert (message.sender, message.recipient, message.provider) == (OURS, CONSUMER, "azure")
    notification = {"from": OURS, "to": CONSUMER, "active": True}
    [event] = parse("ringcentral", notification)
    assert isinstance(event, ConsentEvent)
    assert (event.sender, event.recipient, event.opted_out) == (OURS, CONSUMER, True)
    assert receive("ringcentral", b"", {"Validation-Token": "t"}) == HandshakeReply(
        headers={"Validation-Token": "t"}
    )


# -- what an endpoint needs to trust a request ------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"Authorization": "Bearer abc"}, "abc"),
        ({"authorization": "  bearer   abc  "}, "abc"),
        ({"AUTHORIZATION": "BEARER abc"}, "abc"),
        ({"Authorization": "Basic abc"}, None),
        ({"Authorization": "Bearer"}, None),
        ({"Authorization": "Bearer "}, None),
        ({"Authorization": "abc"}, None),
        ({}, None),
    ],
)
def test_bearer_token_reads_only_a_bearer_authorization(
    headers: dict[str, str], token: str | None
) -> None:
    assert bearer_token(headers) == token


def test_secret_matches_compares_whole_values_and_never_matches_nothing() -> None:
    secret = Secret("s3cret")
    assert secret_matches("s3cret", secret)
    for guess in ("s3cre", "s3cret ", "S3CRET", "", None):
        assert not secret_matches(guess, secret)
    assert not secret_matches("", Secret(""))
    assert not secret_matches("s3cret", None)
    assert not secret_matches("\ud800", secret)  # no text makes it raise
    assert secret_matches("ünïcode", Secret("ünïcode"))


KEY = Setting("key", "the shared key", required=True, secret=True)


def acme_authenticate(
    headers: Mapping[str, str], query: Mapping[str, str], settings: Mapping[str, Any]
) -> bool:
    return secret_matches(get_header(headers, "X-Acme-Key"), settings.get("key"))


def test_a_format_declares_its_endpoint_settings_and_how_it_authenticates() -> None:
    secured = InboundParser("acme", acme_parse, authenticate=acme_authenticate, settings=[KEY])
    assert secured.settings == (KEY,)
    assert secured.authenticate is not None
    assert secured.authenticate({"x-acme-key": "k"}, {}, {"key": Secret("k")})
    assert not secured.authenticate({}, {}, {"key": Secret("k")})
    assert ACME.settings == ()
    assert ACME.authenticate is None
    with pytest.raises(TypeError, match="optouts.Setting"):
        InboundParser("acme", acme_parse, settings=["key"])  # type: ignore[list-item]


def test_a_handshake_gets_the_settings_only_when_its_format_declares_them() -> None:
    seen: list[tuple[object, ...]] = []

    def legacy(method: str, payload: Payload, headers: Mapping[str, str]) -> HandshakeReply:
        seen.append((method,))
        return HandshakeReply(headers={"X": "legacy"})

    def current(
        method: str,
        payload: Payload,
        headers: Mapping[str, str],
        settings: Mapping[str, Any] | None,
    ) -> HandshakeReply:
        seen.append((method, settings))
        return HandshakeReply(status=403 if settings else 200)

    old = InboundParser("old", acme_parse, legacy)
    new = InboundParser("new", acme_parse, current, settings=(KEY,))
    assert old.answer_handshake("POST", b"", {}, {"key": Secret("k")}) == HandshakeReply(
        headers={"X": "legacy"}
    )
    assert new.answer_handshake("OPTIONS", b"", {}) == HandshakeReply()
    refused = new.answer_handshake("OPTIONS", b"", {}, {"key": Secret("k")})
    assert refused is not None
    assert refused.status == 403
    assert seen == [("POST",), ("OPTIONS", None), ("OPTIONS", {"key": Secret("k")})]
    assert InboundParser("none", acme_parse).answer_handshake("POST", b"", {}) is None
    for _ in plugged(AcmePlugin(new)):
        reply = receive("new", b"", method="OPTIONS", settings={"key": Secret("k")})
        assert isinstance(reply, HandshakeReply)
        assert reply.status == 403


def test_a_handshake_reply_is_a_200_unless_it_says_otherwise() -> None:
    assert HandshakeReply().status == 200
    assert HandshakeReply(status=403, body={"error": "no"}).status == 403


def test_the_module_lists_its_public_names_sorted() -> None:
    names = optouts.inbound.__all__
    assert names == sorted(names, key=lambda name: (not name.isupper(), name))
    for name in names:
        assert hasattr(optouts.inbound, name), name


# -- every installed format refuses a malformed body with InvalidPayload -----------------------

ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([OURS, CONSUMER, "15555550123", "12345", "*", "", "2024-06-03T18:35:12Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def every_format_reads_or_refuses(body: Payload) -> None:
    """Events, a handshake reply, or InvalidPayload with a short message; nothing else."""
    for name in parsers():
        for method in ("POST", "OPTIONS"):
            refusal = ""
            try:
                receive(name, body, {}, method=method)
            except InvalidPayload as exc:
                refusal = str(exc)
            assert len(refusal) < 600, refusal[:200]


@given(ANY_JSON)
def test_any_json_is_read_or_invalid_payload(document: Any) -> None:
    every_format_reads_or_refuses(document)
    every_format_reads_or_refuses([document])
    every_format_reads_or_refuses(json.dumps(document).encode())


@given(st.binary(max_size=64))
def test_any_bytes_are_read_or_invalid_payload(body: bytes) -> None:
    every_format_reads_or_refuses(body)


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, "[" * 100_000 + "]" * 100_000, b'{"a":' * 100_000],
    ids=["bytes", "text", "unclosed"],
)
def test_a_body_nested_100000_deep_is_invalid_payload(body: Payload) -> None:
    every_format_reads_or_refuses(body)
    for name in parsers():
        with pytest.raises(InvalidPayload):
            parse(name, body)
