"""AWS's error answers read in every form the JSON 1.0 protocol allows, and never a secret.

The exception's name comes in ``x-amzn-ErrorType`` or the body's ``__type`` as ``Code``,
``Code:http://…``, ``ns#Code`` or ``ns#Code:http://…``; each source is read as botocore's
``JSONParser`` reads ``__type``. The emulator sends each form (``ErrorForms``), so a
throttle, a missing list and a refused number are held to what they mean in every one.
AWS's signature errors may quote the request's Authorization header back: the key id,
credential scope, signature and session token are taken out before anything keeps it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from botocore.parsers import JSONParser  # type: ignore[import-untyped]

import optouts
from optouts_aws import DEFAULT_ACCESS_KEY_ID, AwsEmulator, ErrorForms
from optouts_aws._emulator import service_model
from optouts_aws._emulator.wire import NAMESPACE
from optouts_aws._redact import redact
from optouts_aws._wire import read_error
from optouts_aws.testing import FAST, SENDER, emulator_settings

Make = Callable[..., optouts.Client]

FORMS = [
    "{code}",
    "{code}:http://internal.amazon.com/coral/com.amazon.coral.validate/",
    "{namespace}#{code}",
    "{namespace}#{code}:http://internal.amazon.com/coral/",
]
WHERE = ["header", "body"]


def _forms(where: str, form: str) -> ErrorForms:
    """The name in ``form`` at ``where``; in the body alone, with no header to fall back on."""
    if where == "header":
        return ErrorForms(header=form, body="{namespace}#{code}")
    return ErrorForms(header=None, body=form)


def _answer(status: int, body: dict[str, Any], header: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-RequestId": "req-1"}
    if header is not None:
        headers["x-amzn-ErrorType"] = header
    return httpx.Response(status, headers=headers, content=json.dumps(body).encode())


# --- the name, read ------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("key", ["x-amzn-ErrorType", "__type", "code", "Code"])
def test_every_form_in_every_source_is_the_bare_name(key: str, form: str) -> None:
    value = form.format(code="ThrottlingException", namespace=NAMESPACE)
    if key == "x-amzn-ErrorType":
        response = _answer(400, {"message": "Rate exceeded"}, header=value)
    else:
        response = _answer(400, {key: value, "message": "Rate exceeded"})
    assert read_error(response).code == "ThrottlingException"


@pytest.mark.parametrize("form", FORMS)
def test_the_body_is_read_as_botocore_reads_it(form: str) -> None:
    shape = service_model().operation_model("DescribeOptedOutNumbers").output_shape
    for code in ("ThrottlingException", "ResourceNotFoundException", "ValidationException"):
        body = {"__type": form.format(code=code, namespace=NAMESPACE), "Message": "x"}
        parsed = JSONParser().parse(
            {"status_code": 400, "headers": {}, "body": json.dumps(body).encode()}, shape
        )
        assert read_error(_answer(400, body)).code == code
        botocores = parsed["Error"]["Code"]
        if ":" not in botocores:  # older botocore releases kept the ':uri' tail in the name
            assert botocores == code


def test_the_header_wins_and_an_empty_one_is_passed_over() -> None:
    both = _answer(400, {"__type": "ValidationException"}, header="ThrottlingException:http://x")
    assert read_error(both).code == "ThrottlingException"
    empty = _answer(400, {"__type": f"{NAMESPACE}#ThrottlingException"}, header=":http://x")
    assert read_error(empty).code == "ThrottlingException"
    assert read_error(_answer(418, {})).code == "HTTP 418"


# --- the name, meant: against the emulator ------------------------------------------------


@pytest.fixture(params=[(w, f) for w in WHERE for f in FORMS], ids=lambda p: f"{p[0]}:{p[1]}")
def forms(request: pytest.FixtureRequest) -> ErrorForms:
    where, form = request.param
    return _forms(where, form)


def test_a_throttle_in_any_form_is_retried(forms: ErrorForms, client_for: Make) -> None:
    emulator = AwsEmulator(error_forms=forms)
    emulator.opt_out("Default", "+13035700000")
    client = client_for(emulator, sender_lists={})
    emulator.inject("throttle")
    checked = client.check("*", ["+13035700000", "+13035700001"])
    assert [r.opted_out for r in checked] == [True, False]
    assert checked.retries == 1
    emulator.inject("throttle")
    added = client.add("*", ["+13035700002"])
    assert added.ok
    assert added.retries == 1


def test_a_missing_list_in_any_form_is_a_configuration_error(
    forms: ErrorForms, client_for: Make
) -> None:
    client = client_for(AwsEmulator(error_forms=forms), sender_lists={SENDER: "Nowhere"})
    for call in (client.check, client.add, client.remove):
        with pytest.raises(optouts.ConfigurationError, match="'Nowhere'"):
            call(SENDER, ["+13035710000"])


def test_a_refused_number_in_any_form_fails_alone(forms: ErrorForms, client_for: Make) -> None:
    refused = "+13035720001"
    emulator = AwsEmulator(error_forms=forms, rejected=[refused])
    client = client_for(emulator, sender_lists={})
    checked = client.check("*", ["+13035720000", refused])
    assert [(r.ok, r.opted_out) for r in checked] == [(True, False), (False, None)]
    added = client.add("*", ["+13035720000", refused])
    assert [r.ok for r in added] == [True, False]
    assert "ValidationException" in str(added[1].error)


def test_a_wrong_secret_in_any_form_is_an_authentication_error(
    forms: ErrorForms, client_for: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not/the/right/secret/at/all/000000000000")
    client = client_for(AwsEmulator(error_forms=forms))
    with pytest.raises(optouts.AuthenticationError) as raised:
        client.check(SENDER, ["+13035730000"])
    assert raised.value.code == "InvalidSignatureException"


def test_error_forms_hold_the_name() -> None:
    with pytest.raises(ValueError, match="code"):
        ErrorForms(header="Throttling")
    with pytest.raises(ValueError, match="form"):
        ErrorForms(body="{name}")


# --- no secret in what AWS says --------------------------------------------------------------

KEY_ID = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}")
HEX = re.compile(r"[0-9a-f]{64}")
SIGNATURE = "ab" * 32
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/SESSION+TOKEN=="
ECHO = (
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
    f"Authorization=AWS4-HMAC-SHA256 Credential={DEFAULT_ACCESS_KEY_ID}/20261201/us-east-1/"
    f"sms-voice/aws4_request, SignedHeaders=content-type;host;x-amz-target, "
    f"Signature={SIGNATURE}"
)
CANONICAL = (
    f"Key ASIAEXAMPLETEMPKEY01, X-Amz-Signature={SIGNATURE}: the signature does not match. "
    "The Canonical String for this request should have been 'POST\n/\n\n"
    f"host:sms-voice.us-east-1.amazonaws.com\nx-amz-security-token:{TOKEN}\n"
    f"x-amz-target:PinpointSMSVoiceV2.DescribeOptedOutNumbers\n\n{'0f' * 32}'"
)
"""Over 300 characters, the length a message is cut to: it is redacted before the cut."""


def _leaks(text: str) -> list[str]:
    found = [m.group(0) for m in (KEY_ID.search(text), HEX.search(text)) if m]
    return found + [part for part in (TOKEN, "SESSION+TOKEN", SIGNATURE[:16]) if part in text]


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (403, "IncompleteSignatureException", ECHO),
        (403, "InvalidSignatureException", CANONICAL),
        (400, "ValidationException", ECHO),  # not a signature error: read the same way
    ],
)
def test_an_error_never_repeats_credentials(
    status: int, code: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def answer(request: httpx.Request) -> httpx.Response:
        return _answer(status, {"__type": code, "message": message}, header=code)

    assert _leaks(message)  # the message does quote them
    http = httpx.Client(transport=httpx.MockTransport(answer))
    with optouts.Client("aws", retry=FAST, http_client=http, **emulator_settings()) as client:
        shown: list[str] = []
        try:
            result = client.check(SENDER, ["+13035740000"])
            shown.extend(repr(r) for r in result)
        except optouts.OptOutError as error:
            shown.extend([str(error), repr(error), repr(error.args)])
    shown.append(caplog.text)
    shown.append(repr(read_error(_answer(status, {"__type": code, "message": message}))))
    text = "\n".join(shown)
    assert "<redacted>" in text
    assert _leaks(text) == []


def test_a_body_that_is_not_json_is_redacted_too() -> None:
    response = httpx.Response(403, content=f"<html>{ECHO}</html>".encode())
    error = read_error(response)
    assert error.message.startswith("a body that is not JSON")
    assert _leaks(repr(error)) == []


def test_redact_keeps_what_is_not_a_secret() -> None:
    assert redact(ECHO).endswith(
        "Credential=<redacted>, SignedHeaders=content-type;host;x-amz-target, Signature=<redacted>"
    )
    assert (
        redact("The number +12025550100 is not valid.") == "The number +12025550100 is not valid."
    )
    assert redact(f"X-Amz-Credential={DEFAULT_ACCESS_KEY_ID}%2F20261201") == (
        "X-Amz-Credential=<redacted>"
    )
    assert redact(f'"SessionToken": "{TOKEN}"') == '"SessionToken": "<redacted>"'
