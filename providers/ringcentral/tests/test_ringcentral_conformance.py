"""Conformance: what the provider sends and what the emulator answers fit the OpenAPI excerpt.

Every exchange of a scenario touching each operation (logins, refresh, revoke, v1 list
and bulk-assign, v2 list, search, patch, export, history, and their errors) is checked:
the path and method name an operation of the spec, query parameters are declared and their
values fit, JSON and form bodies validate against the request schema, and response bodies
against the schema for their status (error statuses the excerpt leaves out are checked
against the error models they use).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import httpx
import pytest

import optouts
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import FakeClock, SyncASGITransport, fake_clock_provider, numbers

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

SPEC_PATH = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "reference"
    / "specs"
    / "ringcentral"
    / "optouts-openapi.yml"
)
SENDER = "+16505550100"
RAW = "X-Deliberately-Invalid"
"""Marks the hand-made requests that provoke errors: only their responses are checked."""
ERROR_MODELS = {
    "oauth": "ParameterizedErrorResponseModel",
    "v1": "ASGErrorResponse",
    "v2": "ApiErrorResponseModel",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"the shared OpenAPI excerpt is not at {SPEC_PATH} (outside this checkout)")
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


class Conformance:
    """Checks one exchange at a time against the spec."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.operations: list[tuple[re.Pattern[str], str, dict[str, Any]]] = []
        for template, item in spec["paths"].items():
            pattern = re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, operation in item.items():
                self.operations.append((pattern, method.upper(), operation))
        self.seen: set[str] = set()

    def schema(self, schema: dict[str, Any]) -> Any:
        return jsonschema.Draft4Validator({**schema, "components": self.spec["components"]})

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def operation(self, request: httpx.Request) -> dict[str, Any]:
        for pattern, method, operation in self.operations:
            if method == request.method and pattern.fullmatch(request.url.path):
                return operation
        raise AssertionError(f"{request.method} {request.url.path} is no operation of the spec")

    def check(self, request: httpx.Request, response: httpx.Response) -> None:
        operation = self.operation(request)
        self.seen.add(operation["operationId"])
        if RAW not in request.headers:
            self.check_query(operation, request)
            self.check_body(operation, request)
        self.check_response(operation, request, response)

    def check_query(self, operation: dict[str, Any], request: httpx.Request) -> None:
        declared = {
            param["name"]: param
            for param in (self.resolve(p) for p in operation.get("parameters", []))
            if param["in"] == "query"
        }
        values: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.url.query.decode(), keep_blank_values=True):
            values.setdefault(name, []).append(value)
        for name, given in values.items():
            assert name in declared, (
                f"{operation['operationId']}: undeclared query parameter {name}"
            )
            schema = declared[name]["schema"]
            checked: Any = given if schema.get("type") == "array" else given[-1]
            if schema.get("type") == "integer":
                checked = int(checked)
            self.schema(schema).validate(checked)
            if name in ("from", "to"):
                for number in given:
                    assert not number.startswith(" "), "a '+' went out unencoded"

    def check_body(self, operation: dict[str, Any], request: httpx.Request) -> None:
        content = request.content
        body_spec = operation.get("requestBody")
        if not content:
            assert not (body_spec or {}).get("required"), f"{operation['operationId']} needs a body"
            return
        assert body_spec, f"{operation['operationId']} takes no body"
        media = request.headers["content-type"].split(";")[0]
        schema = body_spec["content"][media]["schema"]
        if media == "application/json":
            body = json.loads(content)
        else:
            body = {name: values[-1] for name, values in parse_qs(content.decode()).items()}
        self.schema(schema).validate(body)

    def check_response(
        self, operation: dict[str, Any], request: httpx.Request, response: httpx.Response
    ) -> None:
        status = str(response.status_code)
        answer = operation["responses"].get(status)
        media = response.headers.get("content-type", "").split(";")[0]
        if answer is None:
            # The excerpt leaves out some statuses (429, 401 on most paths); their bodies
            # still follow the error model of their API.
            assert response.status_code >= 400, f"{operation['operationId']}: undeclared {status}"
            style = (
                "oauth"
                if "/oauth/" in request.url.path
                else "v2"
                if "/v2/" in request.url.path
                else "v1"
            )
            schema = {"$ref": f"#/components/schemas/{ERROR_MODELS[style]}"}
            if response.content:
                self.schema(schema).validate(response.json())
            return
        answer = self.resolve(answer)
        for header, header_spec in (answer.get("headers") or {}).items():
            if self.resolve(header_spec).get("required"):
                assert header in response.headers, f"{operation['operationId']}: no {header}"
        content = answer.get("content")
        if not content or not response.content:
            return
        assert media in content, f"{operation['operationId']}: {media} not declared for {status}"
        if media == "application/json":
            self.schema(content[media]["schema"]).validate(response.json())


@pytest.fixture
def scenario() -> list[tuple[httpx.Request, httpx.Response]]:
    """Drive every operation, happy and not, and hand over the recorded exchanges."""
    clock = FakeClock()
    emulator = Emulator(
        clock=clock,
        rate_limit=RateLimit(1000, 60),
        auth_rate_limit=RateLimit(100, 60),
        token_lifetime=600,
    )
    transport = SyncASGITransport(emulator)
    emulator.put_many((SENDER, number) for number in numbers(25))
    emulator.put("*", "+13125550100")
    emulator.rejected.add("+14155550002")
    for api in ("a2p-sms", "consents"):
        http = httpx.Client(transport=transport)
        with optouts.Client(fake_clock_provider(clock, api), http_client=http) as client:
            list(client.list(SENDER, page_size=10))
            list(client.list("*", status="all"))
            client.add(SENDER, ["+14155550001", "+14155550002"])
            client.remove(SENDER, ["+14155550001"])
            client.check(SENDER, numbers(3, "+1415555"))
            client.check(SENDER, numbers(40, "+1415555"))
            clock.advance(590)  # refresh grant
            client.list_page(SENDER)
            emulator.expire_tokens()  # 401 OAU-128, then renewal
            client.list_page(SENDER)
    token = emulator.issue_token()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(transport=transport, base_url="http://rc.test", headers={RAW: "1"}) as http:
        v1 = "/restapi/v1.0/account/~/a2p-sms/opt-outs"
        v2 = "/restapi/v2/accounts/~/sms/consents"
        http.get(v1, params={"from": "not a number"}, headers=auth)
        http.get(v1, params={"status": "optout", "perPage": 5, "pageToken": "bogus"}, headers=auth)
        http.post(f"{v1}/bulk-assign", json={"from": SENDER}, headers=auth)
        http.get(v1, headers={"Authorization": "Bearer nope"})
        http.get("/restapi/v1.0/account/42/a2p-sms/opt-outs", headers=auth)
        http.post(f"{v2}/search", json={"to": ["12345"]}, headers=auth)
        http.patch(v2, json={"records": []}, headers=auth)
        http.get(
            v2, params=[("from", SENDER), ("optStatus", "OptOut"), ("perPage", 5)], headers=auth
        )
        http.get(f"{v2}/export", headers=auth)
        http.get(f"{v2}/history", params=[("to", "+14155550001"), ("perPage", 1)], headers=auth)
        http.post("/restapi/oauth/token", data={"grant_type": "password"}, auth=("x", "y"))
        emulator._groups["Light"] = type(emulator._groups["Light"])(RateLimit(1, 60))
        http.get(v1, headers=auth)
        http.get(v1, headers=auth)  # 429
    return transport.exchanges


def test_the_excerpt_is_a_valid_openapi_document(spec: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)


def test_requests_and_responses_fit_the_spec(
    spec: dict[str, Any], scenario: list[tuple[httpx.Request, httpx.Response]]
) -> None:
    conformance = Conformance(spec)
    for request, response in scenario:
        conformance.check(request, response)
    statuses = {response.status_code for _, response in scenario}
    assert {200, 400, 401, 404, 429} <= statuses
    assert conformance.seen == {
        operation["operationId"] for item in spec["paths"].values() for operation in item.values()
    }


def test_the_checker_catches_a_wrong_body(spec: dict[str, Any]) -> None:
    conformance = Conformance(spec)
    url = "http://rc.test/restapi/v2/accounts/~/sms/consents"
    request = httpx.Request("PATCH", url, json={"records": [{"to": "+14155550001"}]})
    with pytest.raises(jsonschema.ValidationError):
        conformance.check(request, httpx.Response(200, json={}, headers={"ETag": "x"}))
    listing = httpx.Request(
        "GET", "http://rc.test/restapi/v1.0/account/~/a2p-sms/opt-outs?status=some"
    )
    with pytest.raises(jsonschema.ValidationError):
        conformance.check(listing, httpx.Response(200, json={"records": []}))
