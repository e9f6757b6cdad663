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
    # A GraphQL request error (the document, its variables, its persisted form): answered with 200 to
    # clients that accept only application/json, and with http_status in application/graphql-response+json.
    request_error: ClassVar[bool] = False
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

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the response carries when this error answers the whole request."""
        return {}


class CustomerNotFound(GatewayError):
    code = "CUSTOMER_NOT_FOUND"
    error_code = 8015


class InvalidEntityType(GatewayError):
    """Never raised: an unknown entityType fails validation, and the endpoint gives that error this code."""

    code = "INVALID_ENTITY_TYPE"
    error_code = 1212
    http_status = 400


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

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after)}


class BadRequest(GatewayError):
    """The HTTP request itself is not a GraphQL request (body, method, content type)."""

    code = "BAD_REQUEST"
    http_status = 400


class NotFound(GatewayError):
    """Nothing is served at this address (GraphiQL when it is not enabled)."""

    code = "NOT_FOUND"
    http_status = 404


class PayloadTooLarge(GatewayError):
    """The request body is larger than the server accepts."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413

    @property
    def headers(self) -> dict[str, str]:
        # The rest of the body is not read: the connection cannot be reused.
        return {"connection": "close"}


class QueryTooComplex(GatewayError):
    """The document is over a limit: tokens, depth, aliases or root fields."""

    code = "QUERY_TOO_COMPLEX"
    http_status = 400
    request_error = True


class PersistedQueryNotFound(GatewayError):
    """A document sent by its hash or id alone that this gateway does not know (yet): send it whole once.

    The message is the one Apollo's persisted-query link looks for."""

    code = "PERSISTED_QUERY_NOT_FOUND"
    http_status = 404
    request_error = True

    def __init__(self, message: str = "PersistedQueryNotFound") -> None:
        super().__init__(message)


class DocumentNotTrusted(GatewayError):
    """Trusted-documents-only mode: the document is not one of the registered ones."""

    code = "DOCUMENT_NOT_TRUSTED"
    http_status = 403


class RateLimited(GatewayError):
    """The caller has used up its request budget for now."""

    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, retry_after: int, budget_headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.budget_headers = budget_headers or {}

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "retryAfter": self.retry_after}

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after), **self.budget_headers}


class RequestTimeout(GatewayError):
    """The request took longer than the per-request deadline; its database work was cancelled."""

    code = "TIMEOUT"
    http_status = 504


INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
