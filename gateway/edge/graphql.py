"""The GraphQL endpoint: HTTP in, admission, the document, execution, JSON out.

Every error a client sees is JSON with `extensions.code`, in the media type the client
accepts (edge/negotiation.py). Only GatewayErrors and GraphQL's own syntax and
validation errors keep their messages; anything else is masked and logged with the
request id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from graphql import OperationType
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.schema.schema import Schema as StrawberrySchema

from gateway.access.admission import Caller, Gatekeeper
from gateway.access.deadlines import Deadlines
from gateway.access.fair_share import FairShare
from gateway.access.limits import Limits, read_body
from gateway.access.rate_limits import Budget
from gateway.config import Settings
from gateway.edge.answers import JsonAnswer, request_id_of
from gateway.edge.graphiql import graphiql_page
from gateway.edge.negotiation import JSON, MediaType, negotiate
from gateway.edge.requests import Operation, from_body, from_query_string
from gateway.edge.state import AppState
from gateway.errors import BadRequest, BadUserInput, GatewayError, NotFound, PayloadTooLarge
from gateway.execution.documents import DEFAULT_RULES, DocumentCache
from gateway.execution.operations import Executor, GraphQLRequest, Prepared
from gateway.execution.persisted import PersistedDocuments
from gateway.execution.plans import BatchRoot
from gateway.execution.results import masked
from gateway.live.service import LiveContext
from gateway.live.transport import admit, document_refusal, event_stream
from gateway.observability.requests import note_cost, note_outcome, note_request_id, note_result
from gateway.resolvers.context import Context

logger = logging.getLogger("gateway.edge.graphql")

REQUEST_ID_HEADER = b"x-request-id"
# Answers carry one caller's balances: no cache, shared or private, may keep them (GET included).
NO_STORE = {"cache-control": "no-store"}
# A lookup the database could not answer (SERVICE_UNAVAILABLE): worth asking again in a second.
RETRY_SOON_HEADER = (b"retry-after", b"1")


class GraphQLEndpoint:
    """The ASGI app behind /graphql."""

    def __init__(
        self,
        *,
        schema: StrawberrySchema,
        root_resolvers: Mapping[str, BatchRoot],
        settings: Settings,
        example_query: str | None = None,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.example_query = example_query
        if settings.env not in (None, "production", "development"):
            raise ValueError(f"the environment must be production or development, not {settings.env!r}")
        # Production hides the schema: no introspection, no GraphiQL, no "Did you mean …".
        development = settings.development
        self.graphiql = settings.graphiql or development
        self.hide_suggestions = not development
        self.limits = Limits.from_settings(settings)
        self.deadlines = Deadlines(settings.request_timeout)
        self.gatekeeper = Gatekeeper(settings)
        self.fair_share = FairShare(settings.org_share, max_wait=settings.acquire_timeout)
        # Every rule is built here, once: a repeated document is validated once (strawberry issue 4635).
        self.documents = DocumentCache(
            schema._schema,
            rules=DEFAULT_RULES,
            limit_rules=self.limits.validation_rules(introspection=settings.introspection or development),
            max_tokens=settings.max_tokens,
            hide_suggestions=self.hide_suggestions,
        )
        self.executor = Executor(
            schema, root_resolvers, self.documents, hide_suggestions=self.hide_suggestions, max_cost=settings.max_cost
        )
        self.max_batch_size = settings.max_batch_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # ASGI header names are lower-case already; one dict instead of a Headers scan per lookup.
        headers: dict[bytes, bytes] = dict(scope["headers"])
        request_id = request_id_of(headers.get(b"x-request-id"))
        note_request_id(request_id)
        media = negotiate(headers.get(b"accept"))
        response = await self.deadlines.within(
            self._respond(scope, receive, headers, request_id, media),
            partial(_refusal, media),
            partial(_fault, request_id, media),
            request_id=request_id,
            gone=(ClientDisconnect,),
        )
        if response is None:
            # The client left before its request arrived whole: nobody to answer.
            note_outcome("CLIENT_DISCONNECTED")
            return
        response.raw_headers.append((REQUEST_ID_HEADER, request_id.encode("ascii")))
        await response(scope, receive, send)

    async def _respond(
        self, scope: Scope, receive: Receive, headers: dict[bytes, bytes], request_id: str, media: MediaType
    ) -> Response | JsonAnswer:
        method = scope["method"]
        if method == "GET":
            request = Request(scope, receive)
            if _wants_graphiql(request):
                if not self.graphiql:
                    raise NotFound("GraphiQL is not enabled on this server")
                return HTMLResponse(graphiql_page(api_key=self.settings.demo_api_key, example_query=self.example_query))
            size = len(scope["query_string"])
            if size > self.limits.max_body_bytes:
                error = PayloadTooLarge(f"the query string is longer than {self.limits.max_body_bytes} bytes")
                return error_response(error.message, error.extensions, 414, media=media)
            operations = [from_query_string(request)]
            batch = False
        elif method == "POST":
            body = await read_body(receive, headers.get(b"content-length"), self.limits.max_body_bytes)
            size = len(body)
            received = from_body(headers.get(b"content-type"), body)
            batch = isinstance(received, list)
            operations = received if isinstance(received, list) else [received]
            if batch:
                self._check_batch(len(operations))
        else:
            return error_response(
                "GraphQL is served over GET and POST", {"code": BadRequest.code}, 405, {"allow": "GET, POST"}, media
            )

        for operation in operations:
            # The query takes at least len(query) bytes of the request; variables have the rest.
            if self.limits.long_string_in(operation.variables, size - len(operation.document.query or "")):
                message = f"a string in `variables` is longer than {self.limits.max_string_length} characters"
                status = media.status(400, True)
                return error_response(message, {"code": BadUserInput.code}, status, media=media)

        state: AppState = scope["state"]["gateway"]
        authorization = headers.get(b"authorization")
        credential = authorization.decode("latin-1") if authorization is not None else None
        caller = self.gatekeeper.known(credential, state.authenticator)
        if caller is None:
            caller = await self.gatekeeper.admit(credential, state.authenticator)
        if not batch and self._streams(headers.get(b"accept"), operations[0]):
            return await self._subscribe(state, caller, credential, operations[0], request_id=request_id)
        org_id = caller.org_id
        fair_share = self.fair_share
        waiter = fair_share.enter(org_id)
        if waiter is not None:
            await fair_share.wait(org_id, waiter)
        try:
            return await self._answer(
                state, caller, credential, operations, batch=batch, is_get=method == "GET",
                wants_cost=headers.get(b"graphql-cost") == b"include", request_id=request_id, media=media,
            )  # fmt: skip
        finally:
            fair_share.leave(org_id)

    async def _answer(
        self,
        state: AppState,
        caller: Caller,
        credential: str | None,
        operations: list[Operation],
        *,
        batch: bool,
        is_get: bool,
        wants_cost: bool,
        request_id: str,
        media: MediaType,
    ) -> JsonAnswer:
        """The answer to an admitted caller's operations, in its org's turn."""
        context = Context(
            settings=self.settings,
            database=state.database,
            org_id=caller.org_id,
            request_id=request_id,
            customer_id=caller.customer_id,
        )
        documents = state.documents
        assert credential is not None  # admitted
        afford = partial(self.gatekeeper.afford, caller, credential)
        prepared: list[Prepared | _Refusal] = []
        cost = 0
        for operation in operations:
            reference = operation.document
            if reference.by_text_alone and not documents.trusted_only:
                # The usual request, its document sent whole: nothing to look up, nothing to await.
                assert reference.query is not None
                request = GraphQLRequest(reference.query, operation.variables, operation.operation_name)
                item = self._refusal_or(self.executor.prepare(request, context, is_get=is_get, afford=afford))
            else:
                item = await self._prepare(operation, context, documents, is_get=is_get, afford=afford)
            prepared.append(item)
            # Charged before any lookup runs; an operation that cannot start still cost its checks: 1.
            cost += item.cost if isinstance(item, Prepared) else 1
        note_cost(cost)
        budget = self.gatekeeper.charge(caller, credential, cost)
        budget_headers = budget.raw_headers() if budget is not None else []
        cost_extension = _cost_extension(cost, budget) if wants_cost else None
        if batch:
            bodies = await self.executor.run_batch(
                [item if isinstance(item, Prepared) else (item.status, item.body) for item in prepared], context
            )
            for answer in bodies:
                note_result(context.org_id, answer)
            if cost_extension is not None:
                bodies = [{**answer, "extensions": cost_extension} for answer in bodies]
            return JsonAnswer(orjson.dumps(bodies), 200, media, budget_headers)
        item = prepared[0]
        if isinstance(item, Prepared):
            status, answer = await self.executor.run(item, context)
            request_error = False
        else:
            status, answer, request_error = item.status, item.body, item.request_error
        note_result(context.org_id, answer)
        if cost_extension is not None:
            answer["extensions"] = cost_extension
        response = JsonAnswer(orjson.dumps(answer), media.status(status, request_error), media, budget_headers)
        if status == 503:
            response.raw_headers.append(RETRY_SOON_HEADER)
        return response

    def _streams(self, accept: bytes | None, operation: Operation) -> bool:
        """Whether to answer with Server-Sent Events: the client accepts them, and the operation is a
        subscription or the client accepts nothing else (clients such as urql list text/event-stream among
        the types they accept for every request)."""
        if accept is None or b"text/event-stream" not in accept:
            return False
        if b"json" not in accept and b"*/*" not in accept:
            return True
        query = operation.document.query
        if query is None:
            return False
        chosen = self.documents.get(query).operation(operation.operation_name)
        return chosen is not None and chosen.operation is OperationType.SUBSCRIPTION

    async def _subscribe(
        self, state: AppState, caller: Caller, credential: str | None, operation: Operation, *, request_id: str
    ) -> Response:
        """A subscription over Server-Sent Events (graphql-sse, distinct connections): admitted and charged as a
        query is, then streamed until the client leaves or the subscription ends."""
        assert credential is not None  # admitted
        context = Context(self.settings, state.database, caller.org_id, request_id, caller.customer_id)
        text = await self._document_text(operation, context, state.documents)
        if isinstance(text, GatewayError):
            refusal: list[dict[str, Any]] | None = [{"message": text.message, "extensions": text.extensions}]
        else:
            refusal = document_refusal(self.documents, text, operation.operation_name, request_id)
        note_result(caller.org_id, {"errors": refusal} if refusal is not None else {})
        live = LiveContext(state.live, self.documents, request_id)
        await admit(self.gatekeeper, state, live, credential)
        slot = state.live.connection()
        slot.__enter__()  # raises TooManyConnections; left when the stream ends
        request = {"query": text, "variables": operation.variables, "operationName": operation.operation_name}
        return event_stream(self.schema, live, request, refusal, on_close=lambda: slot.__exit__(None, None, None))

    def _check_batch(self, size: int) -> None:
        if self.max_batch_size == 0:
            raise BadRequest("batched requests are not accepted here; send one operation per request")
        if size > self.max_batch_size:
            raise BadRequest(f"a batch may hold at most {self.max_batch_size} operations")

    async def _prepare(
        self,
        operation: Operation,
        context: Context,
        documents: PersistedDocuments,
        *,
        is_get: bool,
        afford: Callable[[int], object],
    ) -> Prepared | _Refusal:
        """The operation ready to run, with its cost; or why it cannot start."""
        text = await self._document_text(operation, context, documents)
        if isinstance(text, GatewayError):
            body = {"errors": [{"message": text.message, "extensions": text.extensions}]}
            return _Refusal(text.http_status, text.request_error, body)
        request = GraphQLRequest(text, operation.variables, operation.operation_name)
        return self._refusal_or(self.executor.prepare(request, context, is_get=is_get, afford=afford))

    @staticmethod
    def _refusal_or(prepared: Prepared | tuple[int, dict[str, Any]]) -> Prepared | _Refusal:
        if isinstance(prepared, Prepared):
            return prepared
        status, body = prepared
        # 400: the document, its variables or its cost (a request error); 405: a mutation over GET.
        return _Refusal(status, status == 400, body)

    async def _document_text(
        self, operation: Operation, context: Context, documents: PersistedDocuments
    ) -> str | GatewayError:
        """The operation's document, or why there is none (an unknown hash, an untrusted document)."""
        reference = operation.document
        if reference.by_text_alone and not documents.trusted_only:
            assert reference.query is not None
            return reference.query  # the usual request: nothing to look up
        try:
            text = await documents.text(reference, context.org_id)
        except GatewayError as error:
            note_outcome(error.code)
            return error
        # Sent whole with its hash: kept for later hash-only requests, once it is known to be valid.
        if (
            reference.sha256 is not None
            and reference.query is not None
            and not documents.known(context.org_id, reference.sha256)
            and not self.documents.get(text).errors
        ):
            await documents.register(context.org_id, reference.sha256, text)
        return text


@dataclass(frozen=True, slots=True)
class _Refusal:
    """An operation that cannot start."""

    status: int  # as application/graphql-response+json has it
    request_error: bool  # 200 instead for clients of application/json
    body: dict[str, Any]


def _cost_extension(cost: int, budget: Budget | None) -> dict[str, Any]:
    """`extensions.cost`, for clients that ask with `GraphQL-Cost: include`."""
    if budget is None:
        return {"cost": {"requestedQueryCost": cost, "actualQueryCost": cost}}
    return {"cost": budget.extension(cost)}


def _refusal(media: MediaType, error: GatewayError) -> Response:
    status = media.status(error.http_status, error.request_error)
    return error_response(error.message, error.extensions, status, error.headers, media)


def _fault(request_id: str, media: MediaType) -> Response:
    return error_response(*masked(request_id), 500, media=media)


def error_response(
    message: str,
    extensions: dict[str, Any],
    status: int,
    headers: dict[str, str] | None = None,
    media: MediaType = JSON,
) -> Response:
    note_outcome(extensions["code"])
    headers = {**NO_STORE, **(headers or {})}
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    body = {"errors": [{"message": message, "extensions": extensions}]}
    return Response(orjson.dumps(body), status_code=status, media_type=media.content_type, headers=headers)


def _wants_graphiql(request: Request) -> bool:
    return "query" not in request.query_params and "text/html" in request.headers.get("accept", "")
