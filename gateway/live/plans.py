"""Subscriptions run as compiled plans, as queries are (gateway.execution.compiler): graphql-core neither starts
them nor executes their selection per message.

A subscription whose root field has a BatchRoot and whose selection is plain attributes gets a LivePlan: how
to read its arguments into a Lookup, and how to write a balance as the `payload` of a `next` message, straight
to JSON. Anything else (a selection the compiler cannot plan, variables graphql-core must explain) gets no plan
and runs through strawberry and graphql-core as before; the two give the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError, OperationType
from graphql.execution.values import VariableValues
from strawberry.types.base import StrawberryObjectDefinition

from gateway.domain.lookup import Balance, Lookup
from gateway.execution.arguments import UnsupportedArgument, argument_converter, camel_case
from gateway.execution.collect import collect_fields
from gateway.execution.compiler import Compiler, NotCompilable, argument_reader
from gateway.execution.documents import Document
from gateway.execution.plans import RootField, field_arguments, item_preparer


@dataclass(frozen=True, slots=True, eq=False)
class LivePlan:
    """One subscription document's operation, compiled (one per document, operation and directive values)."""

    field: RootField

    def lookup(self, variables: VariableValues) -> Lookup:
        """The subscription's lookup; raises GatewayError (the client's arguments) or GraphQLError."""
        root = self.field.root
        assert root is not None
        arguments = self.field.constant_arguments
        if arguments is None:
            arguments = field_arguments(self.field, variables)
        lookup: Lookup = self.field.prepare(arguments)  # type: ignore[misc]
        return lookup

    def render(self, balance: Balance) -> str:
        """The `payload` of the message that carries this balance, as JSON text."""
        value = self.field.serialize(balance)  # the output types read the domain's balance (DOMAIN_FIELDS)
        return orjson.dumps({"data": {self.field.key: value}}).decode()


class SubscriptionCompiler(Compiler):
    """Plans for subscriptions, kept with their document as query plans are."""

    def subscription_plan(
        self, document: Document, operation_name: str | None, variables: VariableValues
    ) -> LivePlan | None:
        """The plan of this subscription with these directive variables, or None: strawberry runs it."""
        operation = document.operation(operation_name)
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            return None
        cache_key = ("live", operation_name, self._directive_key(document, operation_name, variables))
        if cache_key in document.plans:
            return document.plans[cache_key]  # type: ignore[no-any-return]
        try:
            plan: LivePlan | None = self._compile_subscription(document, operation, variables)
        except (NotCompilable, UnsupportedArgument, GraphQLError):
            plan = None
        document.plans[cache_key] = plan
        return plan

    def _compile_subscription(self, document: Document, operation: Any, variables: VariableValues) -> LivePlan:
        root_type = self._schema.subscription_type
        assert root_type is not None
        collected = collect_fields(root_type.name, [operation.selection_set], document.fragments, variables)
        if len(collected) != 1:
            raise NotCompilable("a subscription has one root field")
        ((key, nodes),) = collected.items()
        name = nodes[0].name.value
        resolver = self._root_resolvers.get(name)
        definition = root_type.extensions.get("strawberry-definition")
        if resolver is None or not isinstance(definition, StrawberryObjectDefinition):
            raise NotCompilable(name)
        strawberry_field = next(
            (field for field in definition.fields if (field.graphql_name or camel_case(field.python_name)) == name),
            None,
        )
        if strawberry_field is None:
            raise NotCompilable(name)
        field = root_type.fields[name]
        serialize = self.serializer(document, variables, field.type, root_type.name, name, nodes)
        prepare = item_preparer(resolver, argument_converter(strawberry_field))
        root = RootField(key, tuple(nodes), field, resolver, prepare, None, serialize, argument_reader(field, nodes[0]))
        return LivePlan(root)
