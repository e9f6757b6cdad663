"""GET /v2/customers/lookup/points/balance: the reference API's own endpoint, for clients written against it.

Only reading the query parameters and writing the JSON are this module's. The lookup is the GraphQL field's,
step for step: the same admission (API key or end-user token, tenancy), the same validation into a Lookup
(resolvers.balance.prepare), the same cost charged to the same rate limit, the same fair share of the
worker, the same load (one statement) and the same rules deciding the answer (resolvers.balance.answer),
within the same deadline. The OpenAPI document (edge/openapi.py) describes exactly this.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.access.admission import Gatekeeper
from gateway.access.deadlines import Deadlines
from gateway.access.fair_share import FairShare
from gateway.config import Settings
from gateway.domain.lookup import Balance, ProgramPoints
from gateway.domain.vocabulary import EntityType, IdentifierType, Source
from gateway.edge.answers import NO_STORE_HEADER, JsonAnswer, request_id_of
from gateway.edge.negotiation import JSON
from gateway.edge.state import AppState
from gateway.errors import BadRequest, BadUserInput, GatewayError, InvalidEntityType, PayloadTooLarge
from gateway.execution.results import masked
from gateway.observability.requests import note_operation_name, note_outcome, note_request_id
from gateway.resolvers import balance
from gateway.resolvers.context import Context
from gateway.schema.scalars import serialize_points

REST_PATH = "/v2/customers/lookup/points/balance"
OPERATION = "GetPointsBalance"  # the operation label of its metrics and log lines

# The reference API's identifier names, and the GraphQL enum's; compared without case or underscores.
IDENTIFIER_NAMES = {
    "mobile": IdentifierType.MOBILE,
    "email": IdentifierType.EMAIL,
    "externalid": IdentifierType.EXTERNAL_ID,
    "cardnumber": IdentifierType.CARD_NUMBER,
    "cuid": IdentifierType.CUID,
    "id": IdentifierType.ID,
    "primaryuserid": IdentifierType.PRIMARY_USER_ID,
}
ACCEPTED_NAMES = "mobile, email, externalId, cardnumber, cuid, id, primaryUserId"
PARAMETERS = (
    "source",
    "accountId",
    "identifierName",
    "identifierValue",
    "programId",
    "fetchDataForAllPrograms",
    "entityType",
)
_REQUIRED = ("source", "identifierName", "identifierValue")
_SOURCES = {source.value: source for source in Source}
_ENTITY_TYPES = {entity_type.value: entity_type for entity_type in EntityType}
_BOOLEANS = {"true": True, "false": False}
_INT32 = 2**31 - 1

# Each error's HTTP status here, where REST's conventions differ from GraphQL's 200-with-errors.
STATUS = {
    "CUSTOMER_NOT_FOUND": 404,
    "PROGRAM_NOT_FOUND": 404,
    "INVALID_GROUP_IDENTIFIER": 404,
    "IDENTIFIER_CONFLICT": 409,
    "BAD_USER_INPUT": 400,
    "INVALID_ENTITY_TYPE": 400,
    "PAYLOAD_TOO_LARGE": 414,
}


def read_lookup(query_string: bytes) -> dict[str, Any]:
    """The query string as resolvers.balance.prepare's arguments; raises BadRequest, BadUserInput or
    InvalidEntityType."""
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the query string is not valid percent-encoded UTF-8") from None
    given: dict[str, str] = {}
    for name, value in pairs:
        if name in given:
            raise BadRequest(f"the parameter {name} is given more than once")
        given[name] = value
    for name in _REQUIRED:
        if not given.get(name):
            raise BadRequest(f"the parameter {name} is required")
    names = given["identifierName"].split(",")
    values = given["identifierValue"].split(",")
    if len(names) != len(values):
        raise BadUserInput(
            f"identifierName names {len(names)} identifiers and identifierValue holds {len(values)} values: "
            "they are matched by position"
        )
    return {
        "identifiers": [(_identifier_type(name), value) for name, value in zip(names, values, strict=True)],
        "source": _member(_SOURCES, given["source"], "source"),
        "account_id": given.get("accountId") or None,
        "program_id": _program_id(given.get("programId")),
        "entity_type": _entity_type(given.get("entityType")),
        "fetch_data_for_all_programs": _boolean(given.get("fetchDataForAllPrograms"), "fetchDataForAllPrograms"),
    }


def _identifier_type(name: str) -> IdentifierType:
    found = IDENTIFIER_NAMES.get(name.strip().replace("_", "").lower())
    if found is None:
        raise BadUserInput(f"unknown identifierName {name!r}; accepted: {ACCEPTED_NAMES}")
    return found


def _member(members: dict[str, Any], value: str, parameter: str) -> Any:
    found = members.get(value.upper())
    if found is None:
        raise BadUserInput(f"{parameter} must be one of {', '.join(members)}, got {value!r}")
    return found


def _entity_type(value: str | None) -> EntityType:
    if not value:
        return EntityType.CUSTOMER
    found = _ENTITY_TYPES.get(value.upper())
    if found is None:
        raise InvalidEntityType(f"entityType must be CUSTOMER or FLEET, got {value!r}")
    return found


def _program_id(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isascii() or not value.lstrip("-").isdigit() or not -_INT32 - 1 <= int(value) <= _INT32:
        raise BadUserInput(f"programId must be a 32-bit integer, got {value!r}")
    return int(value)


def _boolean(value: str | None, parameter: str) -> bool:
    if not value:
        return False
    found = _BOOLEANS.get(value.lower())
    if found is None:
        raise BadUserInput(f"{parameter} must be true or false, got {value!r}")
    return found


def balance_body(found: Balance, *, all_programs: bool) -> dict[str, Any]:
    """The reference API's answer: points as strings with three decimals, never through a float."""
    body: dict[str, Any] = {"entityId": str(found.entity_id), "entityType": found.entity_type.value}
    body.update(_points(found.main, found.delayed_accrual, found.external_trigger))
    body["warnings"] = list(found.warnings)
    if all_programs:
        body["programs"] = [_program(program) for program in found.programs]
    return body


def _program(program: ProgramPoints) -> dict[str, Any]:
    body: dict[str, Any] = {
        "programId": program.program_id,
        "programName": program.program_name,
        "isDefault": program.is_default,
    }
    body.update(_points(program.main, program.delayed_accrual, program.external_trigger))
    return body


def _points(main: Decimal, delayed: Decimal, external: Decimal) -> dict[str, Any]:
    promised = delayed + external
    return {
        "mainPoints": serialize_points(main),
        "promisedPoints": serialize_points(promised),
        "totalPoints": serialize_points(main + promised),
        "promisedPointsBreakup": {
            "delayedAccrualPoints": serialize_points(delayed),
            "externalTriggerBasedPoints": serialize_points(external),
        },
    }


def error_body(message: str, extensions: dict[str, Any]) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": extensions}]})


class RestEndpoint:
    """The ASGI app behind REST_PATH; shares the GraphQL endpoint's admission, limits and deadline."""

    def __init__(self, settings: Settings, gatekeeper: Gatekeeper, fair_share: FairShare, deadlines: Deadlines) -> None:
        self.settings = settings
        self.gatekeeper = gatekeeper
        self.fair_share = fair_share
        self.deadlines = deadlines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, bytes] = dict(scope["headers"])
        request_id = request_id_of(headers.get(b"x-request-id"))
        note_request_id(request_id)
        response = await self.deadlines.within(
            self._respond(scope, headers, request_id),
            _refusal,
            lambda: _refusal(None, masked(request_id)),
            request_id=request_id,
        )
        assert response is not None
        response.raw_headers.append((b"x-request-id", request_id.encode()))
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, headers: dict[bytes, bytes], request_id: str) -> Response | JsonAnswer:
        if scope["method"] not in ("GET", "HEAD"):
            error = BadRequest(f"{REST_PATH} is read with GET")
            return _refusal(error, status=405, extra=[(b"allow", b"GET, HEAD")])
        query_string: bytes = scope["query_string"]
        if len(query_string) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"the query string is longer than {self.settings.max_body_bytes} bytes")
        arguments = read_lookup(query_string)
        state: AppState = scope["state"]["gateway"]
        authorization = headers.get(b"authorization")
        credential = authorization.decode("latin-1") if authorization is not None else None
        caller = self.gatekeeper.known(credential, state.authenticator)
        if caller is None:
            caller = await self.gatekeeper.admit(credential, state.authenticator)
        assert credential is not None  # admitted
        note_operation_name(OPERATION, caller.org_id)
        lookup = balance.prepare(**arguments)
        budget = self.gatekeeper.charge(caller, credential, lookup.cost)
        context = Context(self.settings, state.database, caller.org_id, request_id, caller.customer_id)
        waiter = self.fair_share.enter(caller.org_id)
        if waiter is not None:
            await self.fair_share.wait(caller.org_id, waiter)
        try:
            matches = (await balance.load(context, [lookup]))[0]
        finally:
            self.fair_share.leave(caller.org_id)
        found = balance.answer(lookup, matches)
        body = balance_body(found, all_programs=arguments["fetch_data_for_all_programs"])
        return JsonAnswer(orjson.dumps(body), 200, JSON, budget.raw_headers() if budget is not None else [])


def _refusal(
    error: GatewayError | None,
    masked_error: tuple[str, dict[str, Any]] | None = None,
    *,
    status: int | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    """An error answer: the GraphQL endpoint's envelope, REST's status."""
    if error is None:
        assert masked_error is not None
        message, extensions = masked_error
        status = 500
        headers: dict[str, str] = {}
    else:
        message, extensions, headers = error.message, error.extensions, error.headers
        status = status or STATUS.get(error.code, error.http_status if error.http_status != 200 else 400)
    note_outcome(extensions["code"])
    response = Response(error_body(message, extensions), status_code=status, media_type="application/json")
    response.raw_headers += [NO_STORE_HEADER, *((k.encode(), v.encode()) for k, v in headers.items()), *(extra or [])]
    if status == 401:
        response.raw_headers.append((b"www-authenticate", b"Bearer"))
    return response
