"""Everything on the wire against botocore's model of pinpoint-sms-voice-v2.

The facts the provider pins (``optouts_aws._model``) must equal the installed model's;
every request the provider sends must pass botocore's own validator and the stricter
shape checker (patterns, list maxima); every answer the emulator gives must fit the
operation's output shape, or, for an error, the shape of an exception the model lists for
that operation (or one of AWS's common errors).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.validate import validate_parameters  # type: ignore[import-untyped]

import optouts
from optouts.plugin import run_exchange
from optouts.testing import BlockingASGITransport
from optouts_aws import AwsEmulator, AwsProvider
from optouts_aws import _model as pinned
from optouts_aws._emulator import problems, service_model
from optouts_aws._wire import read_records
from optouts_aws.testing import OTHER, SENDER, Exchanged, Recorder, emulator_settings

COMMON_ERRORS = {
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
    "UnknownOperationException",
    "ServiceUnavailableException",
}
"""AWS's common errors: outside any service model, sent as ``{"__type", "message"}``."""


@pytest.fixture(scope="module")
def model() -> Any:
    return service_model()


# --- pinned facts ----------------------------------------------------------------------------


def test_pinned_facts_equal_the_model(model: Any) -> None:
    shapes = model._shape_resolver._shape_map  # the raw shapes, min/max/pattern included
    metadata = model.metadata
    assert metadata["signingName"] == pinned.SIGNING_NAME
    assert metadata["targetPrefix"] == pinned.TARGET_PREFIX
    assert metadata["apiVersion"] == pinned.API_VERSION
    assert metadata["protocol"] == "json"
    assert f"application/x-amz-json-{metadata['jsonVersion']}" == pinned.CONTENT_TYPE
    assert shapes["OptedOutNumberList"]["max"] == pinned.MAX_LOOKUP
    assert shapes["MaxResults"]["min"] == 1
    assert shapes["MaxResults"]["max"] == pinned.MAX_RESULTS
    assert pinned.PHONE_NUMBER.pattern == shapes["PhoneNumber"]["pattern"]
    assert pinned.LIST_NAME.pattern == shapes["OptOutListName"]["pattern"]
    assert shapes["OptOutListName"]["max"] == pinned.MAX_LIST_NAME
    assert pinned.LIST_NAME_OR_ARN.pattern == shapes["OptOutListNameOrArn"]["pattern"]
    assert shapes["OptOutListNameOrArn"]["max"] == pinned.MAX_LIST_NAME_OR_ARN
    assert shapes["OptedOutFilterName"]["enum"] == [pinned.END_USER_FILTER]
    assert set(pinned.PUBLISHED_RATES) == set(pinned.OPERATIONS)


@pytest.mark.parametrize("operation", pinned.OPERATIONS)
def test_each_operation_is_a_post_to_the_root_with_the_errors_handled(
    model: Any, operation: str
) -> None:
    op = model.operation_model(operation)
    assert op.http == {"method": "POST", "requestUri": "/"}
    errors = {shape.name for shape in op.error_shapes}
    assert {"ThrottlingException", "AccessDeniedException", "ValidationException"} <= errors
    if operation != "CreateOptOutList":
        assert "ResourceNotFoundException" in errors


def test_the_provider_sizes_its_calls_from_the_model() -> None:
    assert AwsProvider.max_batch == pinned.MAX_LOOKUP
    assert AwsProvider.max_page_size == pinned.MAX_RESULTS


def test_records_in_any_form_the_model_allows_are_read(model: Any) -> None:
    shape = model.operation_model("DescribeOptedOutNumbers").output_shape
    body = {
        "OptOutListArn": "arn:aws:sms-voice:us-east-1:123456789012:opt-out-list/Default",
        "OptOutListName": "Default",
        "OptedOutNumbers": [
            {
                "OptedOutNumber": "+12025550100",
                "OptedOutTimestamp": 1767225600,
                "EndUserOptedOut": True,
            },
            {
                "OptedOutNumber": "442071838750",
                "OptedOutTimestamp": 1767225600.5,
                "EndUserOptedOut": False,
            },
        ],
        "NextToken": "t",
    }
    assert problems(body, shape) == []
    records, token = read_records(httpx.Response(200, json=body))
    assert [r.number for r in records] == ["+12025550100", "+442071838750"]
    assert [r.end_user for r in records] == [True, False]
    assert token == "t"


# --- the wire ----------------------------------------------------------------------------------


def _workload(emulator: AwsEmulator, recorder: Recorder) -> None:
    """Every kind of exchange the provider has: successes, pages, and each error it meets."""
    http = httpx.Client(transport=recorder)
    retry = optouts.RetryPolicy(attempts=3, backoff=0.001, cap=0.01)
    with optouts.Client("aws", http_client=http, retry=retry, **emulator_settings()) as client:
        numbers = [f"+1404555{i:04d}" for i in range(12)]
        client.add(SENDER, numbers).raise_for_failures()
        client.add("*", numbers[:2]).raise_for_failures()
        client.check(SENDER, numbers)
        client.check(OTHER, numbers[:3])
        client.remove(SENDER, numbers[:3])
        client.remove(SENDER, ["+14045559999"])  # not in the list
        client.add(SENDER, numbers[:1])
        client.remove(SENDER, numbers[:1])  # the 30-day rule
        list(client.list(page_size=4))
        emulator.inject("throttle", "error")
        client.check(SENDER, numbers[:2])
        emulator.rejected.add("+14045558888")
        client.check(SENDER, ["+14045558888", numbers[5]])
        client.add(SENDER, ["+14045558888"])
        emulator.lookup_not_found = True  # unknown numbers answered ResourceNotFoundException
        client.check(SENDER, [numbers[6], "+14045557777"])
        emulator.lookup_not_found = False
        provider = client.provider
        assert isinstance(provider, AwsProvider)
        run_exchange(provider.opt_out_lists(), http, provider.auth)
        run_exchange(provider.create_opt_out_list("Promotions"), http, provider.auth)
        with pytest.raises(optouts.ProviderError):
            run_exchange(provider.create_opt_out_list("Promotions"), http, provider.auth)
    with (
        optouts.Client(
            "aws", http_client=http, retry=retry, **emulator_settings(sender_lists={SENDER: "Gone"})
        ) as missing,
        pytest.raises(optouts.ConfigurationError),
    ):
        missing.check(SENDER, ["+14045550000"])
    http.close()


@pytest.fixture(scope="module")
def exchanges() -> list[Exchanged]:
    emulator = AwsEmulator(seed=0)
    for name in ("Marketing", "Alerts"):
        emulator.create_list(name)
    recorder = Recorder(BlockingASGITransport(emulator))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "AKIAOPTOUTSEMULATOR0")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "optouts/aws/emulator/development+key/0000")
        patch.setenv("AWS_REGION", "us-east-1")
        _workload(emulator, recorder)
    return recorder.exchanges


def _operation(exchange: Exchanged) -> str:
    return exchange.request.headers["x-amz-target"].removeprefix(pinned.TARGET_PREFIX + ".")


def test_the_workload_covers_every_operation_and_error(exchanges: list[Exchanged]) -> None:
    operations = {_operation(e) for e in exchanges}
    assert operations == set(pinned.OPERATIONS)
    codes = {e.response.headers.get("x-amzn-errortype", ":").split(":")[0] for e in exchanges}
    assert {
        "ThrottlingException",
        "InternalServerException",
        "ValidationException",
        "ResourceNotFoundException",
        "ConflictException",
    } <= codes
    not_found = [
        e.response.json().get("ResourceType")
        for e in exchanges
        if _operation(e) == "DescribeOptedOutNumbers" and e.response.status_code == 400
    ]
    assert "opted-out-number" in not_found
    creates = [
        json.loads(e.request.content) for e in exchanges if _operation(e) == "CreateOptOutList"
    ]
    assert all(body.get("ClientToken") for body in creates)


def test_every_request_fits_the_model(model: Any, exchanges: list[Exchanged]) -> None:
    for exchange in exchanges:
        request = exchange.request
        operation = _operation(exchange)
        assert request.method == "POST"
        assert request.url.path == "/"
        assert request.headers["content-type"] == pinned.CONTENT_TYPE
        body = json.loads(request.content)
        shape = model.operation_model(operation).input_shape
        validate_parameters(body, shape)  # botocore's own check; raises when off
        assert problems(body, shape) == [], (operation, body)


def test_every_answer_fits_the_model(model: Any, exchanges: list[Exchanged]) -> None:
    for exchange in exchanges:
        response = exchange.response
        operation = model.operation_model(_operation(exchange))
        body = response.json()
        if response.status_code == 200:
            assert problems(body, operation.output_shape) == [], (operation.name, body)
            continue
        code = response.headers["x-amzn-errortype"].split(":")[0]
        assert body["__type"].rsplit("#", 1)[-1] == code
        if code in COMMON_ERRORS:
            assert set(body) == {"__type", "message"}
            continue
        shapes = {shape.name: shape for shape in operation.error_shapes}
        assert code in shapes, f"{code} is not an error of {operation.name}"
        shape = shapes[code]
        assert problems(body, shape, extra=frozenset({"__type"})) == [], (code, body)
        raw = model._shape_resolver._shape_map[code]
        expected_status = 500 if raw.get("fault") else 400  # AWS: 400 for every client error
        assert response.status_code == expected_status
