"""Parsed and validated documents, cached by their text.

Clients send the same few documents over and over; parsing and validating
them is most of what a stock GraphQL server spends per request. The rules
are built once, so the cache cannot be defeated by per-request rule objects.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    specified_rules,
    validate,
)
from graphql.language import FragmentDefinitionNode
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gateway.errors import QueryTooComplex
from gateway.observability.requests import note_phase, tracing_phases

# Validation stops at this many errors (the last one says so): an answer lists at most that many.
MAX_ERRORS = 20
# Strawberry validates with the specified rules plus these two; so do we.
DEFAULT_RULES: tuple[type[ASTValidationRule], ...] = (
    *specified_rules,
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)


@dataclass(slots=True)
class Document:
    """A document that parsed and passed validation (errors empty), or why not."""

    text: str
    node: DocumentNode | None
    errors: list[GraphQLError]
    operations: dict[str | None, OperationDefinitionNode] = field(default_factory=dict)
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    # Compiled plans of this document's operations, filled by the compiler.
    plans: dict[Any, Any] = field(default_factory=dict)
    # What every request for one of its operations shares, by the operationName that asks for it (filled by the
    # executor: apart from `plans`, as a client's operationName may be any string).
    entries: dict[str | None, Any] = field(default_factory=dict)
    # What keeping it costs, in tokens (its AST and token list dominate its memory).
    weight: int = 1

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation to run: the named one, or the only one when no name is given."""
        if name is None and len(self.operations) == 1:
            return next(iter(self.operations.values()))
        return self.operations.get(name) if name is not None else None


class DocumentCache:
    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        rules: Sequence[type[ASTValidationRule]] = DEFAULT_RULES,
        limit_rules: Sequence[type[ASTValidationRule]] = (),
        max_size: int = 1000,
        max_weight: int = 100_000,
        max_tokens: int | None = None,
        hide_suggestions: bool = False,
    ) -> None:
        self._schema = schema
        self._rules = tuple(rules)
        # Cheap rules (request limits) run first, on their own: a document over a limit is refused
        # without paying for the full validation, whose cost grows with the document.
        self._limit_rules = tuple(limit_rules)
        self._max_size = max_size
        # A document of 2000 tokens holds about 1 MB: the cache is bounded by tokens too.
        self._max_weight = max_weight
        self._weight = 0
        self._max_tokens = max_tokens
        self._hide_suggestions = hide_suggestions
        self._documents: OrderedDict[str, Document] = OrderedDict()
        self.validations = 0  # how many documents were validated (for tests and metrics)

    def get(self, text: str) -> Document:
        document = self._documents.get(text)
        if document is not None:
            self._documents.move_to_end(text)
            return document
        document = self._prepare(text)
        self._documents[text] = document
        self._weight += document.weight
        while len(self._documents) > 1 and (len(self._documents) > self._max_size or self._weight > self._max_weight):
            self._weight -= self._documents.popitem(last=False)[1].weight
        return document

    def _prepare(self, text: str) -> Document:
        # A document is prepared once: timing its steps for a traced request costs nothing per request.
        traced = tracing_phases()
        started, clock = time.time_ns(), time.perf_counter()
        try:
            node = parse(text, max_tokens=self._max_tokens)
        except GraphQLError as error:
            return Document(text, None, [_token_limit(error, self._max_tokens)], weight=1 + len(text) // 64)
        if traced:
            parsed = time.perf_counter()
            note_phase("graphql.parse", started, parsed - clock)
            started, clock = time.time_ns(), parsed
        try:
            return self._validate(text, node)
        finally:
            if traced:
                note_phase("graphql.validate", started, time.perf_counter() - clock)

    def _validate(self, text: str, node: DocumentNode) -> Document:
        weight = _tokens(node) + len(text) // 64
        self.validations += 1
        errors = []
        if self._limit_rules:
            errors = validate(
                self._schema, node, self._limit_rules, max_errors=MAX_ERRORS, hide_suggestions=self._hide_suggestions
            )
        if not errors:
            errors = validate(
                self._schema, node, self._rules, max_errors=MAX_ERRORS, hide_suggestions=self._hide_suggestions
            )
        if errors:
            return Document(text, node, errors, weight=weight)
        operations: dict[str | None, OperationDefinitionNode] = {}
        fragments: dict[str, FragmentDefinitionNode] = {}
        for definition in node.definitions:
            if isinstance(definition, OperationDefinitionNode):
                operations[definition.name.value if definition.name else None] = definition
            elif isinstance(definition, FragmentDefinitionNode):
                fragments[definition.name.value] = definition
        return Document(text, node, [], operations, fragments, weight=weight)


def _tokens(node: DocumentNode) -> int:
    count = 0
    token = node.loc.start_token if node.loc is not None else None
    while token is not None:
        count += 1
        token = token.next
    return count


def _token_limit(error: GraphQLError, max_tokens: int | None) -> GraphQLError:
    """graphql-core's token limit error, coded QUERY_TOO_COMPLEX; other syntax errors as they are."""
    # graphql-core reports it as a syntax error; its message is the only way to tell (tested).
    if max_tokens is None or "tokens. Parsing aborted" not in error.message:
        return error
    message = f"the document has more than {max_tokens} tokens"
    return GraphQLError(message, original_error=QueryTooComplex(message))
