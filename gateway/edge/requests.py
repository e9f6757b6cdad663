"""GraphQL requests out of HTTP: a GET's query string or a POST's JSON body (one operation, or a batch).

An operation names its document by text (`query`), by hash (`extensions.persistedQuery`, Apollo's
automatic persisted queries, version 1) or by a build manifest's id (`documentId`; Relay's `doc_id`
and `id` too). Anything else about the request that is not what GraphQL over HTTP describes is a
BAD_REQUEST, before any authentication or parsing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from starlette.requests import Request

from gateway.errors import BadRequest
from gateway.execution.persisted import SHA256_HEX, DocumentReference

JSON_MEDIA_TYPES = ("application/json", "application/graphql-response+json")
_DOCUMENT_ID_FIELDS = ("documentId", "doc_id", "id")


class Operation(NamedTuple):
    """One operation as the request gave it."""

    document: DocumentReference
    variables: dict[str, Any] | None
    operation_name: str | None


def from_query_string(request: Request) -> Operation:
    params = request.query_params
    variables = params.get("variables")
    extensions = params.get("extensions")
    raw: dict[str, Any] = {
        "variables": _parse_json(variables, "variables") if variables else None,
        "operationName": params.get("operationName") or None,
        "extensions": _parse_json(extensions, "extensions") if extensions else None,
    }
    for name in ("query", *_DOCUMENT_ID_FIELDS):
        if name in params:
            raw[name] = params[name]
    return operation(raw)


def from_body(content_type: bytes | None, data: bytes) -> Operation | list[Operation]:
    """One operation, or a batch (a JSON array), still to be checked against the batch size."""
    if content_type != b"application/json":  # nearly every request: nothing to take apart
        media_type = (content_type or b"").decode("latin-1").split(";", 1)[0].strip().lower()
        if media_type not in JSON_MEDIA_TYPES:
            raise BadRequest("send the request as JSON (Content-Type: application/json)")
    body = _parse_json(data, "body")
    if isinstance(body, list):
        if not body or not all(isinstance(item, dict) for item in body):
            raise BadRequest("a batch must be a non-empty JSON array of operations (objects)")
        return [operation(item) for item in body]
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with a `query`")
    return operation(body)


def operation(raw: dict[str, Any]) -> Operation:
    query = raw.get("query")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise BadRequest("`query` must be a GraphQL document (a non-empty string)")
    variables = raw.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("`variables` must be a JSON object")
    operation_name = raw.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest("`operationName` must be a string")
    extensions = raw.get("extensions")
    if extensions is None and query is not None and len(raw) <= 3:
        return Operation(DocumentReference(query), variables, operation_name)  # the usual request: the text alone
    if extensions is not None and not isinstance(extensions, dict):
        raise BadRequest("`extensions` must be a JSON object")
    sha256 = _persisted_query_hash(extensions.get("persistedQuery") if extensions else None)
    document_id = next((raw[name] for name in _DOCUMENT_ID_FIELDS if raw.get(name) is not None), None)
    if document_id is not None and (not isinstance(document_id, str) or not 0 < len(document_id) <= 200):
        raise BadRequest("`documentId` must be a string of at most 200 characters")
    if query is None and sha256 is None and document_id is None:
        raise BadRequest("the request has no GraphQL `query`")
    return Operation(DocumentReference(query, sha256, document_id), variables, operation_name)


def _persisted_query_hash(persisted: Any) -> str | None:
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise BadRequest("extensions.persistedQuery must be {version: 1, sha256Hash: …}")
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256.lower()):
        raise BadRequest("extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits")
    return sha256.lower()


def _parse_json(data: str | bytes, what: str) -> Any:
    try:
        # orjson rejects invalid UTF-8 and absurdly deep nesting as well.
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadRequest(f"the {what} is not valid JSON") from None
