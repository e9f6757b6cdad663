"""Parsed and validated documents, cached by their text.

Clients send the same few documents over and over; parsing and validating
them is most of what a stock GraphQL server spends per request. The rules
are built once, so the cache cannot be defeated by per-request rule objects.
"""

from __future__ import annotations

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
        max_size: int = 1000,
    ) -> None:
        self._schema = schema
        self._rules = tuple(rules)
        self._max_size = max_size
        self._documents: OrderedDict[str, Document] = OrderedDict()
        self.validations = 0  # how many documents were validated (for tests and metrics)

    def get(self, text: str) -> Document:
        document = self._documents.get(text)
        if document is not None:
            self._documents.move_to_end(text)
            return document
        document = self._prepare(text)
        self._documents[text] = document
        if len(self._documents) > self._max_size:
            self._documents.popitem(last=False)
        return document

    def _prepare(self, text: str) -> Document:
        try:
            node = parse(text)
        except GraphQLError as error:
            return Document(text, None, [error])
        self.validations += 1
        errors = validate(self._schema, node, self._rules)
        if errors:
            return Document(text, node, errors)
        operations: dict[str | None, OperationDefinitionNode] = {}
        fragments: dict[str, FragmentDefinitionNode] = {}
        for definition in node.definitions:
            if isinstance(definition, OperationDefinitionNode):
                operations[definition.name.value if definition.name else None] = definition
            elif isinstance(definition, FragmentDefinitionNode):
                fragments[definition.name.value] = definition
        return Document(text, node, [], operations, fragments)
