"""``/openapi.json``: the service's API, written out by hand (OpenAPI 3.1).

Written, not generated, so it says what matters to a caller: one result per recipient in
input order, an invalid number failing alone, the 10,000-recipient and 1 MiB limits, and
which routes exist only when their secret is configured.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._api import MAX_RECIPIENTS
from ._body import MAX_BODY

__all__ = ["document", "openapi_route"]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_RESULTS = {
    "description": "One result per recipient, in input order",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Results"}}},
}
_PAIRS_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pairs"}}},
}
_REFUSALS = {
    "400": _error("Malformed request: the body, a missing field or an invalid sender"),
    "401": _error("No valid API key (Authorization: Bearer <key>)"),
    "404": _error("Not served: no API key is configured"),
    "413": _error(f"The body is over {MAX_BODY:,} bytes"),
    "503": _error("The ledger did not answer"),
}
_WEBHOOK_REFUSALS = {
    "400": _error("A body the vendor's format cannot read; nothing recorded"),
    "401": _error("The delivery does not carry the configured secret; nothing recorded"),
    "403": _error("A handshake from an origin the settings do not allow"),
    "404": _error("Not served: the format is not installed or its secret not configured"),
    "413": _error(f"The body is over {MAX_BODY:,} bytes; nothing recorded"),
    "503": _error("The ledger did not record the delivery; deliver again"),
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route the service can serve."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "optouts serve",
            "version": "1",
            "description": (
                "The business's opt-out ledger as a service: vendor webhooks in, a check "
                "API for the business's own senders, and every change carried to every "
                "vendor. Numbers are E.164 (+ and digits); a sender may also be a short "
                "code or * (every number of the account)."
            ),
        },
        "paths": {
            "/v1/check": {
                "get": {
                    "summary": "Whether recipients opted out of a sender",
                    "operationId": "checkQuery",
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {
                            "name": "from",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                            "example": "+18005550100",
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "required": True,
                            "style": "form",
                            "explode": True,
                            "schema": {
                                "type": "array",
                                "items": {"type": "string"},
                                "minItems": 1,
                                "maxItems": MAX_RECIPIENTS,
                            },
                        },
                    ],
                    "responses": {"200": _RESULTS, **_REFUSALS},
                },
                "post": {
                    "summary": "Whether recipients opted out of a sender (up to 10,000)",
                    "operationId": "check",
                    "security": [{"apiKey": []}],
                    "requestBody": _PAIRS_BODY,
                    "responses": {"200": _RESULTS, **_REFUSALS},
                },
            },
            "/v1/optouts": {
                "post": {
                    "summary": "Record opt-outs received elsewhere, for every vendor",
                    "operationId": "addOptOuts",
                    "security": [{"apiKey": []}],
                    "requestBody": _PAIRS_BODY,
                    "responses": {"200": _RESULTS, **_REFUSALS},
                },
                "delete": {
                    "summary": "Record opt-ins (opt-outs withdrawn), for every vendor",
                    "operationId": "removeOptOuts",
                    "security": [{"apiKey": []}],
                    "requestBody": _PAIRS_BODY,
                    "responses": {"200": _RESULTS, **_REFUSALS},
                },
            },
            "/webhooks/{format}": {
                "parameters": [
                    {
                        "name": "format",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
                        "description": "An installed webhook format: azure, ringcentral, …",
                    }
                ],
                "post": {
                    "summary": "A vendor's delivery, or its subscription handshake",
                    "description": (
                        "Authenticated by the format: ringcentral by the Verification-Token "
                        "header, azure by ?token= or Authorization: Bearer. A 200 means "
                        "every event is in the ledger."
                    ),
                    "operationId": "deliver",
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Recorded, or a handshake answered",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Received"}
                                }
                            },
                        },
                        **_WEBHOOK_REFUSALS,
                    },
                },
                "options": {
                    "summary": "A CloudEvents abuse-protection handshake",
                    "operationId": "handshake",
                    "responses": {
                        "200": {"description": "Allowed: WebHook-Allowed-Origin echoed"},
                        "403": _WEBHOOK_REFUSALS["403"],
                    },
                },
            },
            "/healthz": {
                "get": {
                    "summary": "Whether the ledger answers; each target's last success and error",
                    "operationId": "health",
                    "responses": {
                        "200": {
                            "description": "The ledger answers",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                        "503": {
                            "description": "The ledger does not answer",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of the keys in api_keys (OPTOUTS_SERVE_API_KEYS)",
                }
            },
            "schemas": {
                "Pairs": {
                    "type": "object",
                    "required": ["from", "to"],
                    "properties": {
                        "from": {"type": "string", "examples": ["+18005550100"]},
                        "to": {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 1,
                            "maxItems": MAX_RECIPIENTS,
                            "examples": [["+12025550101", "+12025550102"]],
                        },
                    },
                },
                "Result": {
                    "type": "object",
                    "required": ["recipient", "opted_out", "ok", "error"],
                    "properties": {
                        "recipient": {"type": "string"},
                        "opted_out": {
                            "type": ["boolean", "null"],
                            "description": "null: unknown (the recipient failed)",
                        },
                        "ok": {"type": "boolean"},
                        "error": {"type": ["string", "null"]},
                    },
                },
                "Results": {
                    "type": "object",
                    "required": ["from", "results"],
                    "properties": {
                        "from": {"type": "string"},
                        "results": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Result"},
                        },
                    },
                },
                "Received": {
                    "type": "object",
                    "properties": {
                        "events": {"type": "integer", "minimum": 0},
                        "recorded": {"type": "integer", "minimum": 0},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string"},
                        "ledger": {
                            "type": "object",
                            "properties": {
                                "reachable": {"type": "boolean"},
                                "error": {"type": "string"},
                            },
                        },
                        "outbox": {"type": "string"},
                        "targets": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "properties": {
                                    "last_success": {"type": ["string", "null"]},
                                    "last_error": {"type": ["string", "null"]},
                                    "pending": {"type": ["integer", "null"]},
                                },
                            },
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
            },
        },
    }


def openapi_route() -> Route:
    content = document()

    async def openapi(_request: Request) -> Response:
        return JSONResponse(content)

    return Route("/openapi.json", openapi, methods=["GET"])
