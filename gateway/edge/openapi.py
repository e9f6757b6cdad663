"""The OpenAPI 3.1 document of the REST endpoint (edge/rest.py), served at /openapi.json.

Built from the endpoint's own tables (its parameters, identifier names, statuses), so that the two cannot
disagree; `python -m gateway.edge.openapi > openapi.json` writes the committed copy (a test keeps it equal).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from gateway.domain.vocabulary import EntityType, Source
from gateway.edge.rest import ACCEPTED_NAMES, OPERATION, REST_PATH, STATUS
from gateway.errors import GatewayError

OPENAPI_PATH = "/openapi.json"
_POINTS = {
    "type": "string",
    "pattern": r"^-?[0-9]{1,15}\.[0-9]{3}$",
    "description": "An exact decimal with three decimals, as a string: never a float.",
    "examples": ["8500.000"],
}


def _parameter(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _points_fields() -> dict[str, Any]:
    return {
        "mainPoints": {**_POINTS, "description": "Redeemable now."},
        "promisedPoints": {**_POINTS, "description": "delayedAccrualPoints + externalTriggerBasedPoints."},
        "totalPoints": {**_POINTS, "description": "mainPoints + promisedPoints."},
        "promisedPointsBreakup": {"$ref": "#/components/schemas/PromisedPointsBreakup"},
    }


def _errors(codes: list[str]) -> dict[str, Any]:
    return {
        "description": "Codes: " + ", ".join(codes),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
    }


@cache
def openapi_document() -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for code, error in GatewayError.registry.items():
        status = STATUS.get(code, error.http_status if error.http_status != 200 else 400)
        by_status.setdefault(status, []).append(code)
    relevant = {400, 401, 404, 405, 409, 414, 429, 500, 503, 504}
    responses: dict[str, Any] = {
        "200": {
            "description": "The balance.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PointsBalance"}}},
        }
    }
    for status in sorted(relevant):
        codes = sorted(by_status.get(status, [])) or (["INTERNAL_SERVER_ERROR"] if status == 500 else [])
        responses[str(status)] = _errors(codes or ["BAD_REQUEST"])
    parameters = [
        _parameter(
            "source", "Where the identifiers are registered.", {"enum": [s.value for s in Source]}, required=True
        ),
        _parameter("accountId", "The account of the source, for sources with several.", {"type": "string"}),
        _parameter(
            "identifierName",
            f"Comma-separated identifier types, matched by position with identifierValue; case and underscores "
            f"do not matter. Accepted: {ACCEPTED_NAMES} (and the GraphQL names, e.g. EXTERNAL_ID).",
            {"type": "string"},
            required=True,
        ),
        _parameter(
            "identifierValue",
            "Comma-separated values, one per identifierName (a value cannot hold a comma).",
            {"type": "string"},
            required=True,
        ),
        _parameter("programId", "One program of the org (default: its default program).", {"type": "integer"}),
        _parameter(
            "fetchDataForAllPrograms",
            "All programs of the org, each in `programs`.",
            {"type": "boolean", "default": False},
        ),
        _parameter("entityType", "Customer or fleet.", {"enum": [e.value for e in EntityType], "default": "CUSTOMER"}),
    ]
    breakup = {
        "type": "object",
        "required": ["delayedAccrualPoints", "externalTriggerBasedPoints"],
        "properties": {
            "delayedAccrualPoints": {**_POINTS, "description": "Become main points after a delay."},
            "externalTriggerBasedPoints": {**_POINTS, "description": "Become main points on an external event."},
        },
    }
    program = {
        "type": "object",
        "required": ["programId", "programName", "isDefault", "mainPoints", "promisedPoints", "totalPoints",
                     "promisedPointsBreakup"],
        "properties": {
            "programId": {"type": "integer"},
            "programName": {"type": "string"},
            "isDefault": {"type": "boolean"},
            **_points_fields(),
        },
    }  # fmt: skip
    balance = {
        "type": "object",
        "required": ["entityId", "entityType", "mainPoints", "promisedPoints", "totalPoints",
                     "promisedPointsBreakup", "warnings"],
        "properties": {
            "entityId": {"type": "string", "pattern": "^[0-9]+$", "description": "The 64-bit id, as a string."},
            "entityType": {"enum": [e.value for e in EntityType]},
            **_points_fields(),
            "warnings": {"type": "array", "items": {"type": "string"}},
            "programs": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ProgramBalance"},
                "description": "With fetchDataForAllPrograms=true: one entry per program, by id.",
            },
        },
    }  # fmt: skip
    errors = {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["message", "extensions"],
                    "properties": {
                        "message": {"type": "string"},
                        "extensions": {
                            "type": "object",
                            "required": ["code"],
                            "properties": {
                                "code": {"enum": sorted(GatewayError.registry)},
                                "errorCode": {"type": "integer", "description": "The reference API's code."},
                            },
                        },
                    },
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loyalty gateway: Get Points Balance",
            "version": "2",
            "description": "The reference API's balance lookup, answered by the gateway's GraphQL field's rules.",
        },
        "paths": {
            REST_PATH: {
                "get": {
                    "operationId": OPERATION,
                    "summary": "A customer's or fleet's points balance",
                    "parameters": parameters,
                    "responses": responses,
                    "security": [{"bearer": []}],
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key or an end-user token."}
            },
            "schemas": {
                "PointsBalance": balance,
                "ProgramBalance": program,
                "PromisedPointsBreakup": breakup,
                "Errors": errors,
            },
        },
    }


def openapi_json() -> bytes:
    """The document as served and committed."""
    return (json.dumps(openapi_document(), indent=2) + "\n").encode()


if __name__ == "__main__":
    print(openapi_json().decode(), end="")
