"""Compiled execution of repeated operations, in the spirit of graphql-jit.

Once a document is validated, an operation whose root fields all have a
BatchRoot and whose selections are plain attributes is turned into a plan: per
root field, how to build its arguments and a serializer that turns its result
straight into JSON-ready values; all lookups of a request share one load. Anything
else (introspection, resolvers on nested fields, abstract types) returns no
plan and is executed by graphql-core. Differential tests hold the two paths
to identical output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_non_null_type,
    is_required_argument,
)
from graphql.execution.values import VariableValues, coerce_argument, get_variable_values
from graphql.language import Visitor, visit
from strawberry.schema.schema import Schema as StrawberrySchema
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from gateway.execution.arguments import UnsupportedArgument, argument_converter, camel_case
from gateway.execution.collect import collect_fields, directive_variables
from gateway.execution.documents import Document
from gateway.execution.plans import (
    ArgumentReader,
    BatchRoot,
    Plan,
    RootField,
    Serializer,
    field_arguments,
    item_preparer,
)
from gateway.execution.serializers import NotCompilable, SerializerBuilder
from gateway.execution.variables import NotSupported, VariablesCoercer, variables_coercer

_UNSET = object()


class Compiler:
    def __init__(self, schema: StrawberrySchema, root_resolvers: Mapping[str, BatchRoot]) -> None:
        self._strawberry = schema
        self._schema = schema._schema
        self._root_resolvers = root_resolvers

    def coerce_variables(
        self, document: Document, operation: OperationDefinitionNode, raw: dict[str, Any]
    ) -> VariableValues | list[GraphQLError]:
        """The request's variables, coerced: by the operation's compiled coercer when it has one and
        the values are valid, else by graphql-core (which also explains what is wrong)."""
        return self.coerce_with(self.variables_coercer(document, operation), operation, raw)

    def variables_coercer(self, document: Document, operation: OperationDefinitionNode) -> VariablesCoercer | None:
        """The operation's compiled coercion of its variables (built once per document), or None: graphql-core."""
        key = ("variables", operation.name.value if operation.name else None)
        coerce = document.plans.get(key, _UNSET)
        if coerce is _UNSET:
            try:
                coerce = variables_coercer(self._schema, operation.variable_definitions or ())
            except NotSupported:
                coerce = None
            document.plans[key] = coerce
        return coerce  # type: ignore[no-any-return]

    def coerce_with(
        self, coerce: VariablesCoercer | None, operation: OperationDefinitionNode, raw: dict[str, Any]
    ) -> VariableValues | list[GraphQLError]:
        """The variables coerced by `coerce` (variables_coercer's), or by graphql-core when it cannot."""
        if coerce is not None:
            coerced = coerce(raw)
            if coerced is not None:
                # graphql-core reads only `coerced` outside fragment variables.
                return VariableValues({}, coerced)
        return get_variable_values(self._schema, operation.variable_definitions or (), raw)

    def plan_is_fixed(self, document: Document, operation_name: str | None) -> bool:
        """Whether the operation's plan is the same whatever its variables (no @skip/@include depends on one)."""
        return not self._directive_names(document, operation_name)

    def plan(self, document: Document, operation_name: str | None, variables: VariableValues) -> Plan | None:
        """The plan for this operation and these directive variables, or None: use graphql-core."""
        operation = document.operation(operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        cache_key = (operation_name, self._directive_key(document, operation_name, variables))
        if cache_key in document.plans:
            return document.plans[cache_key]  # type: ignore[no-any-return]
        try:
            plan: Plan | None = self._compile(document, operation, variables)
        except NotCompilable:
            plan = None
        except GraphQLError:
            # A directive argument graphql-core rejects at run time (a null $var in @include(if:));
            # where and whether it is reported depends on the data, so graphql-core answers.
            plan = None
        document.plans[cache_key] = plan
        return plan

    def _directive_key(
        self, document: Document, operation_name: str | None, variables: VariableValues
    ) -> tuple[Any, ...]:
        return tuple(variables.coerced.get(name) for name in self._directive_names(document, operation_name))

    def _directive_names(self, document: Document, operation_name: str | None) -> tuple[str, ...]:
        names_key = ("directive-variables", operation_name)
        names = document.plans.get(names_key)
        if names is None:
            operation = document.operation(operation_name)
            assert operation is not None
            names = directive_variables(operation, document.fragments.values())
            document.plans[names_key] = names
        return names  # type: ignore[no-any-return]

    def serializer(
        self,
        document: Document,
        variables: VariableValues,
        type_: GraphQLOutputType,
        parent_name: str,
        field_name: str,
        nodes: list[FieldNode],
    ) -> Serializer:
        """The serializer of a root field's value over this selection; raises NotCompilable."""
        builder = SerializerBuilder(_definition, _strawberry_field, document.fragments, variables)
        return builder.build(type_, parent_name, field_name, nodes)

    def _compile(self, document: Document, operation: Any, variables: VariableValues) -> Plan:
        query_type = self._schema.query_type
        assert query_type is not None
        definition = _definition(query_type)
        roots = []
        for key, nodes in collect_fields(
            query_type.name, [operation.selection_set], document.fragments, variables
        ).items():
            name = nodes[0].name.value
            if name == "__typename":
                roots.append(RootField(key, tuple(nodes), None, None, None, None, _constant(query_type.name)))
                continue
            resolver = self._root_resolvers.get(name)
            if resolver is None:
                raise NotCompilable(name)
            field = query_type.fields[name]
            try:
                prepare = item_preparer(resolver, argument_converter(_strawberry_field(definition, name)))
            except UnsupportedArgument as error:
                raise NotCompilable(name) from error
            serialize = self.serializer(document, variables, field.type, query_type.name, name, nodes)
            reader = argument_reader(field, nodes[0])
            root = RootField(key, tuple(nodes), field, resolver, prepare, None, serialize, reader)
            if not _uses_variables(nodes[0]):
                root = replace(root, constant_arguments=field_arguments(root, variables))
            roots.append(root)
        return Plan(tuple(roots))


def argument_reader(field: GraphQLField, node: FieldNode) -> ArgumentReader | None:
    """A function from coerced variables to the field's coerced arguments, as get_argument_values gives them,
    or None when an argument nests variables inside a literal (graphql-core then reads every time).

    Literals and defaults are read once, here; an argument that is a variable is the variable's
    coerced value. When graphql-core would refuse the values (null or missing for a required
    argument) the reader returns None, so that graphql-core's error is the one reported.
    """
    nodes = {argument.name.value: argument for argument in node.arguments}
    constant: dict[str, Any] = {}
    from_variables: list[tuple[str, str, bool, bool, dict[str, Any]]] = []
    no_variables = VariableValues({}, {})
    for name, definition in field.args.items():
        argument = nodes.get(name)
        out_name = definition.out_name or name
        if argument is not None and isinstance(argument.value, VariableNode):
            # When the variable is absent: the argument's default, if any (read as graphql-core does).
            absent: dict[str, Any] = {}
            if not is_required_argument(definition):
                coerce_argument(absent, node, name, definition, argument, no_variables, None)
            variable = argument.value.name.value
            non_null = is_non_null_type(definition.type)
            from_variables.append((out_name, variable, non_null, is_required_argument(definition), absent))
        elif argument is not None and _uses_variables_in(argument):
            return None
        else:
            try:
                coerce_argument(constant, node, name, definition, argument, no_variables, None)
            except GraphQLError:
                return None

    def read(coerced: dict[str, Any]) -> dict[str, Any] | None:
        values = dict(constant)
        for out_name, variable, non_null, required, absent in from_variables:
            if variable in coerced:
                value = coerced[variable]
                if value is None and non_null:
                    return None
                values[out_name] = value
            elif required:
                return None
            else:
                values.update(absent)
        return values

    return read


def _definition(type_: GraphQLObjectType) -> StrawberryObjectDefinition:
    definition = type_.extensions.get("strawberry-definition")
    if not isinstance(definition, StrawberryObjectDefinition):
        raise NotCompilable(type_.name)
    return definition


def _strawberry_field(definition: StrawberryObjectDefinition, graphql_name: str) -> StrawberryField:
    for field in definition.fields:
        if field.graphql_name == graphql_name:
            return field
    # strawberry camel-cases python names unless a graphql_name is given
    for field in definition.fields:
        if camel_case(field.python_name) == graphql_name:
            return field
    raise NotCompilable(f"{definition.name}.{graphql_name}")


def _constant(value: Any) -> Serializer:
    return lambda _: value


def _uses_variables(node: FieldNode) -> bool:
    return any(_uses_variables_in(argument) for argument in node.arguments)


def _uses_variables_in(argument: ArgumentNode) -> bool:
    found = False

    class Finder(Visitor):
        def enter_variable(self, *_args: Any) -> None:
            nonlocal found
            found = True

    visit(argument, Finder())
    return found
