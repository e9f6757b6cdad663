"""GraphQL errors as a client sees them: coded, and masked unless they are the client's to fix.

Only GatewayErrors and GraphQL's own syntax, validation and variable errors keep their messages;
anything else is masked and logged with the request id.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from gateway.errors import (
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    BadUserInput,
    GatewayError,
    InvalidEntityType,
)

logger = logging.getLogger("gateway.execution.results")


# What graphql-core may keep as the cause of an error in the client's document or variables.
_INPUT_ERRORS = (type(None), GraphQLError, ValueError, TypeError)


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """One GraphQL error as the client sees it."""
    original = error.original_error
    formatted: dict[str, Any] = {}
    if isinstance(original, GatewayError):
        formatted["message"] = original.message
        extensions = original.extensions
    elif (isinstance(original, _INPUT_ERRORS) and error.path is None) or _is_argument_error(error):
        # GraphQL's own syntax, validation and variable errors: the client's to fix
        # (graphql-core keeps the inner error of a value it could not read as original_error,
        # e.g. a ValueError for an integer literal of more than 4300 digits).
        formatted["message"] = error.message
        extensions = {"code": _graphql_error_code(error)}
        if extensions["code"] == InvalidEntityType.code:
            extensions["errorCode"] = InvalidEntityType.error_code
    else:
        logger.error("unexpected error, request id %s: %s", request_id, error.message, exc_info=original)
        formatted["message"], extensions = masked(request_id)
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = error.path
    formatted["extensions"] = extensions
    return formatted


def _is_argument_error(error: GraphQLError) -> bool:
    """graphql-core refusing an argument's value while the field runs: a valid document whose variable
    holds null for an argument that takes none (`$all: Boolean` for `Boolean! = false`)."""
    if error.path is None:  # validation's errors about arguments are validation errors
        return False
    if isinstance(error.original_error, GraphQLError):  # located at the field: the refusal is inside
        error = error.original_error
    return error.original_error is None and error.message.startswith("Argument '")


def masked(request_id: str) -> tuple[str, dict[str, Any]]:
    """What a client sees of a fault of ours: nothing but the id that finds it in the log."""
    return f"Internal server error (request id {request_id})", {"code": INTERNAL_SERVER_ERROR, "requestId": request_id}


def _graphql_error_code(error: GraphQLError) -> str:
    message = error.message
    if message.startswith("Syntax Error"):
        return GRAPHQL_PARSE_FAILED
    # An entity type the API does not know is its own error in the reference API (1212).
    if "'EntityType' enum" in message or '"EntityType" enum' in message:
        return InvalidEntityType.code
    # A variable's value the client sent; "Variable '$x' is never used" and the like are validation errors.
    if message.startswith("Variable '$") and " has invalid " in message:
        return BadUserInput.code
    if _is_argument_error(error):
        return BadUserInput.code
    return GRAPHQL_VALIDATION_FAILED
