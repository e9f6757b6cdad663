"""GatewayError and its coded subclasses: the one place error codes live.

A client sees `extensions.code` (a stable string) and, where the reference
API has one, `extensions.errorCode` (its number). Anything that is not a
GatewayError or GraphQL's own syntax/validation error is masked.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    error_code: ClassVar[int | None] = None
    http_status: ClassVar[int] = 200
    registry: ClassVar[dict[str, type[GatewayError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code in GatewayError.registry:
            raise TypeError(f"error code {cls.code} is already used by {GatewayError.registry[cls.code].__name__}")
        GatewayError.registry[cls.code] = cls

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code}
        if self.error_code is not None:
            extensions["errorCode"] = self.error_code
        return extensions


class CustomerNotFound(GatewayError):
    code = "CUSTOMER_NOT_FOUND"
    error_code = 8015


class InvalidEntityType(GatewayError):
    code = "INVALID_ENTITY_TYPE"
    error_code = 1212


class InvalidGroupIdentifier(GatewayError):
    code = "INVALID_GROUP_IDENTIFIER"
    error_code = 1632


class IdentifierConflict(GatewayError):
    code = "IDENTIFIER_CONFLICT"


class ProgramNotFound(GatewayError):
    code = "PROGRAM_NOT_FOUND"


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"
    http_status = 401


class ServiceUnavailable(GatewayError):
    code = "SERVICE_UNAVAILABLE"
    http_status = 503


class BadRequest(GatewayError):
    """The HTTP request itself is not a GraphQL request (body, method, content type)."""

    code = "BAD_REQUEST"
    http_status = 400


INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
