"""Request limits: how much a hostile or clumsy client can make the gateway do.

Two kinds. Envelope limits (body size, strings in variables) are checked on
every request, and cost next to nothing. Document limits (tokens, depth,
aliases, root fields, string literals) are validation rules built once at
startup and run with the rest of validation, which DocumentCache does once
per document text: a repeated document is not checked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DirectiveNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationContext,
)
from graphql.language import SKIP
from graphql.validation import NoSchemaIntrospectionCustomRule
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from gateway.config import Settings
from gateway.errors import BadRequest, BadUserInput, GatewayError, PayloadTooLarge, QueryTooComplex

# GraphiQL's and graphql-core's standard introspection query is 15 fields deep
# (nine levels of ofType); introspection subtrees may go that deep, not deeper.
INTROSPECTION_DEPTH = 15
_INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int
    max_tokens: int
    max_depth: int
    max_aliases: int
    max_root_fields: int
    max_string_length: int
    max_directives: int = 50

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_tokens=settings.max_tokens,
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_root_fields=settings.max_root_fields,
            max_string_length=settings.max_string_length,
            max_directives=settings.max_directives,
        )

    def validation_rules(self, *, introspection: bool) -> tuple[type[ASTValidationRule], ...]:
        """The limit rules (and the introspection ban), to add to the specified rules once."""
        rules = [
            depth_limit(self.max_depth),
            alias_limit(self.max_aliases),
            directive_limit(self.max_directives),
            root_field_limit(self.max_root_fields),
            string_literal_limit(self.max_string_length),
        ]
        if not introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        return tuple(rules)

    def long_string_in(self, variables: dict[str, Any] | None, room: int) -> bool:
        """Whether a string (or key) in the variables is over the string length limit.

        `room` is how many bytes of the request are not the query's: a string
        in the variables cannot be longer than that, so the usual request is
        not walked at all.
        """
        return bool(variables) and room > self.max_string_length and _has_long_string(variables, self.max_string_length)


def configuration_problems(settings: Settings) -> list[str]:
    """What is wrong with the exposure settings, for `serve` to say before it starts."""
    from gateway.access.end_user_tokens import EndUserTokens, TokenConfigurationError

    problems = []
    if settings.env not in (None, "production", "development"):
        problems.append(f"LOYALTY_GATEWAY_ENV must be production or development, not {settings.env!r}")
    for name in (
        "max_body_bytes",
        "max_tokens",
        "max_depth",
        "max_aliases",
        "max_root_fields",
        "max_string_length",
        "max_directives",
        "max_cost",
    ):
        if getattr(settings, name) < 1:
            problems.append(f"{name} must be at least 1")
    if settings.request_timeout <= 0:
        problems.append("request_timeout must be more than 0 seconds")
    if settings.instances < 1:
        problems.append("instances must be at least 1")
    if settings.rate_limit < 0 or settings.user_rate_limit < 0:
        problems.append("rate limits must be 0 (off) or more")
    if settings.max_batch_size < 0:
        problems.append("max_batch_size must be 0 (batches refused) or more")
    if settings.max_persisted_queries < 1:
        problems.append("max_persisted_queries must be at least 1")
    if settings.max_replica_lag <= 0:
        problems.append("max_replica_lag must be more than 0 seconds")
    try:
        EndUserTokens.from_settings(settings)
    except TokenConfigurationError as error:
        problems.append(str(error))
    return problems


async def read_body(receive: Receive, content_length: bytes | None, limit: int) -> bytes:
    """The request body, refused (PAYLOAD_TOO_LARGE) as soon as it is known to be over the limit.

    A declared Content-Length over the limit is refused before anything is
    read; a longer or chunked body is cut off at the first chunk past the
    limit, so at most about `limit` bytes are ever held.
    """
    if content_length is not None:
        if not content_length.isdigit():
            raise BadRequest("the Content-Length header is not a number")
        if int(content_length) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _has_long_string(value: Any, limit: int) -> bool:
    # Iterative (variables may nest as deep as the JSON parser allows), with exact type
    # checks: JSON gives only dict, list, str, int, float, bool and None.
    stack = [value]
    pop = stack.pop
    extend = stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            if len(item) > limit:
                return True
        elif kind is dict:
            for key in item:
                if len(key) > limit:
                    return True
            extend(item.values())
        elif kind is list:
            extend(item)
    return False


def _report(context: ValidationContext, error: GatewayError, node: Any) -> None:
    context.report_error(GraphQLError(error.message, node, original_error=error))


class _FragmentAware(ASTValidationRule):
    """Walks an operation's selections, fragments included, each fragment once per question."""

    def _selections(self, selection_set: SelectionSetNode, seen: set[str]) -> list[FieldNode]:
        """The fields of a selection set with fragments spread in (each fragment once)."""
        fields: list[FieldNode] = []
        pending = [selection_set]
        while pending:
            for selection in pending.pop().selections:
                if isinstance(selection, FieldNode):
                    fields.append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    pending.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.context.get_fragment(name)
                    if fragment is not None and name not in seen:
                        seen.add(name)
                        pending.append(fragment.selection_set)
        return fields


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    """A rule refusing operations nested deeper than max_depth fields."""

    class DepthLimit(_FragmentAware):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> Any:
            memo: dict[int, int] = {}
            for field in self._selections(node.selection_set, set()):
                limit = max(max_depth, INTROSPECTION_DEPTH) if field.name.value in _INTROSPECTION_FIELDS else max_depth
                depth = self._depth(field, memo, frozenset())
                if depth > limit:
                    _report(
                        self.context,
                        QueryTooComplex(f"the query is {depth} fields deep; at most {limit} are allowed"),
                        field,
                    )
                    break
            return SKIP

        def _depth(self, field: FieldNode, memo: dict[int, int], path: frozenset[str]) -> int:
            # Memoised per field node: fragments spread many times are measured once.
            if field.selection_set is None:
                return 1
            known = memo.get(id(field))
            if known is not None:
                return known
            deepest = 0
            for selection in self._children(field.selection_set, path):
                inner, inner_path = selection
                deepest = max(deepest, self._depth(inner, memo, inner_path))
            memo[id(field)] = 1 + deepest
            return 1 + deepest

        def _children(
            self, selection_set: SelectionSetNode, path: frozenset[str]
        ) -> list[tuple[FieldNode, frozenset[str]]]:
            """The fields of a selection set, fragments spread in, each with the fragments it came through.

            A fragment spread several times at one level is expanded once (its fields are the
            same each time), so fragments spreading fragments cannot make this exponential.
            """
            children: list[tuple[FieldNode, frozenset[str]]] = []
            spread: set[str] = set()
            pending = [(selection_set, path)]
            while pending:
                current, current_path = pending.pop()
                for selection in current.selections:
                    if isinstance(selection, FieldNode):
                        children.append((selection, current_path))
                    elif isinstance(selection, InlineFragmentNode):
                        pending.append((selection.selection_set, current_path))
                    elif isinstance(selection, FragmentSpreadNode):
                        name = selection.name.value
                        fragment = self.context.get_fragment(name)
                        # A cycle is NoFragmentCyclesRule's to report; here it just ends.
                        if fragment is not None and name not in current_path and name not in spread:
                            spread.add(name)
                            pending.append((fragment.selection_set, current_path | {name}))
            return children

    return DepthLimit


def alias_limit(max_aliases: int) -> type[ASTValidationRule]:
    """A rule refusing documents with more than max_aliases aliased fields."""

    class AliasLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.aliases = 0

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.alias is not None:
                self.aliases += 1
                if self.aliases == max_aliases + 1:
                    _report(
                        self.context,
                        QueryTooComplex(f"the document has more than {max_aliases} aliases"),
                        node,
                    )

    return AliasLimit


def directive_limit(max_directives: int) -> type[ASTValidationRule]:
    """A rule refusing documents with more than max_directives directives (known or not: each costs validation)."""

    class DirectiveLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.directives = 0

        def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
            self.directives += 1
            if self.directives == max_directives + 1:
                _report(self.context, QueryTooComplex(f"the document has more than {max_directives} directives"), node)

    return DirectiveLimit


def root_field_limit(max_root_fields: int) -> type[ASTValidationRule]:
    """A rule refusing operations that select more than max_root_fields root fields."""

    class RootFieldLimit(_FragmentAware):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> Any:
            count = len(self._selections(node.selection_set, set()))
            if count > max_root_fields:
                _report(
                    self.context,
                    QueryTooComplex(f"the operation selects {count} root fields; at most {max_root_fields} may be"),
                    node,
                )
            return SKIP

    return RootFieldLimit


def string_literal_limit(max_length: int) -> type[ASTValidationRule]:
    """A rule refusing string literals longer than max_length characters."""

    class StringLiteralLimit(ASTValidationRule):
        def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
            if len(node.value) > max_length:
                _report(self.context, BadUserInput(f"a string is longer than {max_length} characters"), node)

    return StringLiteralLimit
