"""Field collection (the spec's CollectFields) for one object type, with @skip/@include."""

from __future__ import annotations

from collections.abc import Iterable

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_directive_values
from graphql.language import Node, OperationDefinitionNode, Visitor, visit


def collect_fields(
    type_name: str,
    selection_sets: Iterable[SelectionSetNode],
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
) -> dict[str, list[FieldNode]]:
    """Fields by response key, in order, as graphql-core would execute them on type_name."""
    fields: dict[str, list[FieldNode]] = {}
    visited: set[str] = set()

    def collect(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if not _included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value == type_name:
                    collect(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = fragments.get(name)
                if fragment is not None and fragment.type_condition.name.value == type_name:
                    collect(fragment.selection_set)

    for selection_set in selection_sets:
        collect(selection_set)
    return fields


def _included(node: Node, variables: VariableValues) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, variables)  # type: ignore[arg-type]
    if skip is not None and skip["if"] is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)  # type: ignore[arg-type]
    return not (include is not None and include["if"] is False)


def directive_variables(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]
) -> tuple[str, ...]:
    """Names of the variables that @skip/@include depend on: they decide which fields run."""
    names: list[str] = []

    class Finder(Visitor):
        def enter_directive(self, node, *_args):  # type: ignore[no-untyped-def]
            if node.name.value in ("skip", "include"):
                for argument in node.arguments:
                    if isinstance(argument.value, VariableNode) and argument.value.name.value not in names:
                        names.append(argument.value.name.value)

    for node in (operation, *fragments):
        visit(node, Finder())
    return tuple(names)
