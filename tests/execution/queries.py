"""Hypothesis strategies for pointsBalance documents: what the differential tests send.

A document is drawn as a small tree (fields, inline fragments, fragment
spreads, @include/@skip) and rendered to GraphQL text. Everything drawn is
valid against the schema: response keys map to one field per type (so any
two selections merge), fragments only spread earlier fragments (no cycles),
only reachable fragments are rendered, and each operation defines exactly the
variables it uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# Identifiers a test org knows, and ones it doesn't (see conftest.py for the rows).
ORG_PLAIN = 100  # dual eligibility off
ORG_DUAL = 200  # dual eligibility on, primary MOBILE
ORG_MISSING = 999  # no such org: every lookup fails unexpectedly

ABSENT: Any = object()  # a variable left out of the request

OBJECT_FIELDS: dict[str, dict[str, str | None]] = {
    "PointsBalance": {
        "entityId": None,
        "entityType": None,
        "mainPoints": None,
        "promisedPoints": None,
        "totalPoints": None,
        "promisedPointsBreakup": "PromisedPointsBreakup",
        "programs": "ProgramBalance",
        "warnings": None,
        "__typename": None,
    },
    "ProgramBalance": {
        "programId": None,
        "programName": None,
        "isDefault": None,
        "mainPoints": None,
        "promisedPoints": None,
        "totalPoints": None,
        "promisedPointsBreakup": "PromisedPointsBreakup",
        "__typename": None,
    },
    "PromisedPointsBreakup": {
        "delayedAccrualPoints": None,
        "externalTriggerBasedPoints": None,
        "__typename": None,
    },
}

# One meaning per response key within a type, so every pair of selections merges.
ALIASES = (None, None, "a_{}", "b_{}")

# Identifiers: matching (org 100 or 200), not matching, conflicting with each
# other, invalid (empty, too long, NUL, fleet-only types), and fleet ones.
IDENTIFIERS: tuple[tuple[str, str], ...] = (
    ("EMAIL", "ann@example.com"),
    ("EMAIL", " Ann@Example.COM "),
    ("EMAIL", "bob@example.com"),
    ("EMAIL", "shared@example.com"),
    ("EMAIL", "nobody@example.com"),
    ("MOBILE", "447700900001"),
    ("MOBILE", "+44 7700-900002"),
    ("MOBILE", "447700900099"),
    ("CUID", "cuid-ann"),
    ("CUID", "cuid-bob"),
    ("ID", "1001"),
    ("ID", "2001"),
    ("ID", "5001"),
    ("ID", "not-a-number"),
    ("ID", "99999999999999999999"),
    ("EXTERNAL_ID", "FLEET-A"),
    ("EXTERNAL_ID", "ext-ann"),
    ("CARD_NUMBER", "card-bob"),
    ("PRIMARY_USER_ID", "1001"),
    ("PRIMARY_USER_ID", "1002"),
    ("EMAIL", ""),
    ("MOBILE", "   "),
    ("EMAIL", "x" * 300),
    ("CUID", "nul\x00here"),
)
SOURCES = ("INSTORE", "WECHAT", "FACEBOOK")
ACCOUNT_IDS = ("wx-1", "wx-2", "")
PROGRAM_IDS = (10, 11, 12, 20, 999)
ENTITY_TYPES = ("CUSTOMER", "FLEET")

# Boolean variables for @include/@skip: (definition, values a request may send).
DIRECTIVE_VARIABLES: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "b0": ("Boolean!", st.booleans()),
    # An explicit null for $b1 is an error graphql-core reports; rarely sent.
    "b1": ("Boolean = true", st.sampled_from([True, False, ABSENT] * 3 + [None])),
    "b2": ("Boolean! = false", st.sampled_from([True, False, ABSENT])),
}


# The tree -------------------------------------------------------------------


@dataclass(frozen=True)
class Directive:
    name: str  # include | skip
    value: bool | str  # a literal or a variable name

    def render(self) -> str:
        value = f"${self.value}" if isinstance(self.value, str) else str(self.value).lower()
        return f"@{self.name}(if: {value})"


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None = None
    directives: tuple[Directive, ...] = ()
    children: tuple[Any, ...] | None = None
    arguments: str = ""  # rendered, root fields only

    def render(self) -> str:
        text = f"{self.alias}: {self.name}" if self.alias else self.name
        text += self.arguments + "".join(f" {d.render()}" for d in self.directives)
        return text + (f" {{ {render_selections(self.children)} }}" if self.children is not None else "")


@dataclass(frozen=True)
class Inline:
    type_condition: str | None
    directives: tuple[Directive, ...]
    children: tuple[Any, ...]

    def render(self) -> str:
        head = "..." + (f" on {self.type_condition}" if self.type_condition else "")
        head += "".join(f" {d.render()}" for d in self.directives)
        return f"{head} {{ {render_selections(self.children)} }}"


@dataclass(frozen=True)
class Spread:
    name: str
    directives: tuple[Directive, ...]

    def render(self) -> str:
        return f"...{self.name}" + "".join(f" {d.render()}" for d in self.directives)


def render_selections(selections: tuple[Any, ...]) -> str:
    return " ".join(selection.render() for selection in selections)


def walk(selections: tuple[Any, ...], fragments: dict[str, tuple[str, tuple[Any, ...]]]) -> Iterator[Any]:
    """Every node reachable from these selections, through fragment spreads too."""
    seen: set[str] = set()
    stack = list(selections)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Spread):
            if node.name not in seen:
                seen.add(node.name)
                stack.extend(fragments[node.name][1])
        elif node.children is not None:
            stack.extend(node.children)


def directive_variables_of(selections: tuple[Any, ...], fragments: dict[str, tuple[str, tuple[Any, ...]]]) -> set[str]:
    return {
        d.value
        for node in walk(selections, fragments)
        for d in getattr(node, "directives", ())
        if isinstance(d.value, str)
    }


def spreads_of(selections: tuple[Any, ...], fragments: dict[str, tuple[str, tuple[Any, ...]]]) -> set[str]:
    return {node.name for node in walk(selections, fragments) if isinstance(node, Spread)}


# Strategies -----------------------------------------------------------------

_condition = st.one_of(st.booleans(), st.sampled_from(sorted(DIRECTIVE_VARIABLES)))


@st.composite
def directives(draw: st.DrawFn) -> tuple[Directive, ...]:
    """At most one @include and one @skip on a selection, in either order."""
    names = draw(st.sampled_from([(), ("include",), ("skip",), ("include", "skip"), ("skip", "include")]))
    return tuple(Directive(name, draw(_condition)) for name in names)


maybe_directives = st.one_of(st.just(()), directives())


@st.composite
def selection_set(
    draw: st.DrawFn, type_name: str, fragments: dict[str, tuple[str, tuple[Any, ...]]], depth: int = 0
) -> tuple[Any, ...]:
    spreadable = sorted(name for name, (on, _) in fragments.items() if on == type_name)
    kinds = ["field"] * 4 + (["inline"] if depth < 3 else []) + (["spread"] * 2 if spreadable else [])
    selections = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        if kind == "field":
            name = draw(st.sampled_from(sorted(OBJECT_FIELDS[type_name])))
            alias = draw(st.sampled_from(ALIASES))
            alias = alias.format(name.strip("_")) if alias else None
            child_type = OBJECT_FIELDS[type_name][name]
            children = draw(selection_set(child_type, fragments, depth + 1)) if child_type else None
            selections.append(Field(name, alias, draw(maybe_directives), children))
        elif kind == "inline":
            condition = draw(st.sampled_from([None, type_name]))
            children = draw(selection_set(type_name, fragments, depth + 1))
            selections.append(Inline(condition, draw(maybe_directives), children))
        else:
            selections.append(Spread(draw(st.sampled_from(spreadable)), draw(maybe_directives)))
    return tuple(selections)


@st.composite
def fragment_definitions(draw: st.DrawFn) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Named fragments; each may spread only the ones drawn before it."""
    fragments: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for number in range(draw(st.integers(0, 4))):
        on = draw(st.sampled_from(sorted(OBJECT_FIELDS)))
        fragments[f"F{number}"] = (on, draw(selection_set(on, dict(fragments), 1)))
    return fragments


@dataclass
class Arguments:
    text: str
    variables: dict[str, tuple[str, st.SearchStrategy[Any]]] = field(default_factory=dict)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _optional(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(values, st.just(None), st.just(ABSENT))


# Lookups that find a balance: (identifiers, source, accountId, entityType) per org.
GOOD_LOOKUPS: dict[int, tuple[tuple[tuple[tuple[str, str], ...], str, str | None, str | None], ...]] = {
    ORG_PLAIN: (
        ((("EMAIL", "ann@example.com"),), "INSTORE", None, None),
        ((("MOBILE", "+44 7700-900002"), ("EMAIL", "bob@example.com")), "INSTORE", None, "CUSTOMER"),
        ((("EMAIL", "nobody@example.com"), ("ID", "1001")), "INSTORE", None, None),
        ((("CUID", "cuid-ann"),), "WECHAT", "wx-1", None),
        ((("CARD_NUMBER", "card-bob"),), "FACEBOOK", None, None),
        ((("ID", "5001"),), "INSTORE", None, "FLEET"),
        ((("EXTERNAL_ID", "FLEET-A"), ("PRIMARY_USER_ID", "1001")), "INSTORE", None, "FLEET"),
    ),
    ORG_DUAL: (
        ((("MOBILE", "447700900001"),), "INSTORE", None, None),
        ((("EMAIL", "shared@example.com"), ("MOBILE", "+44 7700-900002")), "INSTORE", None, "CUSTOMER"),
        ((("MOBILE", "447700900002"), ("EMAIL", "ann@example.com")), "INSTORE", None, None),
    ),
}
PROGRAMS = {ORG_PLAIN: (10, 11, 12), ORG_DUAL: (20, 21)}


@st.composite
def lookup_arguments(draw: st.DrawFn, number: int, org_id: int) -> Arguments:
    """The arguments of one pointsBalance field, as literals or variables: a lookup
    that finds a balance, or one drawn from anything (mostly errors)."""
    parts: list[str] = []
    variables: dict[str, tuple[str, st.SearchStrategy[Any]]] = {}
    good = org_id in GOOD_LOOKUPS and draw(st.booleans())

    def argument(
        name: str,
        variable: str,
        values: st.SearchStrategy[Any],
        types: list[str],
        choices: list[str],
        *,
        enum: bool = False,
    ) -> None:
        choice = draw(st.sampled_from(choices))
        if choice == "absent":
            return
        if choice == "null":
            parts.append(f"{name}: null")
        elif choice == "literal":
            value = draw(values)
            parts.append(f"{name}: {value if enum else _literal(value)}")
        else:
            type_ = draw(st.sampled_from(types))
            variables[variable] = (type_, values if type_.endswith("!") or good else _optional(values))
            parts.append(f"{name}: ${variable}")

    def as_input(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"type": type_, "value": value} for type_, value in pairs]

    if good:
        pairs_, source, account_id, entity_type = draw(st.sampled_from(GOOD_LOOKUPS[org_id]))
        identifiers = st.just(list(pairs_))
        programs = st.sampled_from(PROGRAMS[org_id])
    else:
        identifiers = st.lists(st.sampled_from(IDENTIFIERS), min_size=1, max_size=3)
        programs = st.sampled_from(PROGRAM_IDS)

    mode = draw(st.sampled_from(["literal", "single", "variable", "value-variables"]))
    if mode == "variable":
        variables[f"ids{number}"] = ("[IdentifierInput!]!", identifiers.map(as_input))
        parts.append(f"identifiers: $ids{number}")
    else:
        pairs = draw(identifiers)
        if mode == "single" and len(pairs) > 1:
            mode = "literal"
        items = []
        for position, (type_, value) in enumerate(pairs):
            if mode == "value-variables":
                name = f"v{number}_{position}"
                same_type = st.sampled_from([v for t, v in IDENTIFIERS if t == type_])
                variables[name] = ("String!", st.just(value) if good else same_type)
                items.append(f"{{type: {type_}, value: ${name}}}")
            else:
                items.append(f"{{type: {type_}, value: {_literal(value)}}}")
        parts.append("identifiers: " + (items[0] if mode == "single" else "[" + ", ".join(items) + "]"))

    anything = ["literal", "variable", "absent", "null"]
    given = ["literal", "variable"]
    if good:
        argument("source", f"s{number}", st.just(source), ["Source!"], given, enum=True)
        if account_id is not None:
            argument("accountId", f"a{number}", st.just(account_id), ["String", "String!"], given)
        argument("programId", f"p{number}", programs, ["Int", "Int!"], anything)
        if entity_type is not None:
            argument("entityType", f"e{number}", st.just(entity_type), ["EntityType!"], given, enum=True)
        argument("fetchDataForAllPrograms", f"f{number}", st.booleans(), ["Boolean!"], ["absent", *given])
    else:
        argument("source", f"s{number}", st.sampled_from(SOURCES), ["Source!"], given, enum=True)
        argument("accountId", f"a{number}", st.sampled_from(ACCOUNT_IDS), ["String", "String!"], anything)
        argument("programId", f"p{number}", programs, ["Int", "Int!"], anything)
        # entityType and fetchDataForAllPrograms are non-null with defaults: a nullable
        # variable may be used there (an explicit null is then an error), a null literal not.
        entity_types = st.sampled_from(ENTITY_TYPES)
        no_null = ["literal", "variable", "absent"]
        argument("entityType", f"e{number}", entity_types, ["EntityType!", "EntityType"], no_null, enum=True)
        argument("fetchDataForAllPrograms", f"f{number}", st.booleans(), ["Boolean!", "Boolean"], no_null)
    order = draw(st.permutations(range(len(parts))))
    return Arguments("(" + ", ".join(parts[i] for i in order) + ")", variables)


@dataclass
class Operation:
    name: str | None
    selections: tuple[Any, ...]
    variables: dict[str, tuple[str, st.SearchStrategy[Any]]]
    shorthand: bool

    def render(self, fragments: dict[str, tuple[str, tuple[Any, ...]]]) -> str:
        used = directive_variables_of(self.selections, fragments)
        definitions = dict(self.variables)
        definitions.update({name: DIRECTIVE_VARIABLES[name] for name in sorted(used)})
        body = "{ " + render_selections(self.selections) + " }"
        if self.shorthand and self.name is None and not definitions:
            return body
        head = "query" + (f" {self.name}" if self.name else "")
        if definitions:
            head += "(" + ", ".join(f"${name}: {type_}" for name, (type_, _) in definitions.items()) + ")"
        return f"{head} {body}"

    def all_variables(
        self, fragments: dict[str, tuple[str, tuple[Any, ...]]]
    ) -> dict[str, tuple[str, st.SearchStrategy[Any]]]:
        used = directive_variables_of(self.selections, fragments)
        return {**self.variables, **{name: DIRECTIVE_VARIABLES[name] for name in used}}


@st.composite
def operation(
    draw: st.DrawFn, name: str | None, fragments: dict[str, tuple[str, tuple[Any, ...]]], org_id: int
) -> Operation:
    """1-4 pointsBalance lookups (one maybe repeated under the same key), root __typename, root inline fragments."""
    variables: dict[str, tuple[str, st.SearchStrategy[Any]]] = {}
    lookups: list[Field] = []
    for number in range(draw(st.integers(1, 4))):
        arguments = draw(lookup_arguments(number, org_id))
        variables.update(arguments.variables)
        alias = None if number == 0 and draw(st.booleans()) else f"lookup{number}"
        children = draw(selection_set("PointsBalance", fragments))
        lookups.append(Field("pointsBalance", alias, draw(maybe_directives), children, arguments.text))
    roots: list[Any] = list(lookups)
    if draw(st.booleans()):
        # The same key and the same arguments again: a legal merge, maybe with other subfields.
        again = draw(st.sampled_from(lookups))
        children = draw(selection_set("PointsBalance", fragments))
        roots.append(Field(again.name, again.alias, draw(maybe_directives), children, again.arguments))
    for _ in range(draw(st.integers(0, 2))):
        roots.append(Field("__typename", draw(st.sampled_from([None, "kind"])), draw(maybe_directives)))
    order = draw(st.permutations(range(len(roots))))
    roots = [roots[i] for i in order]
    if len(roots) > 1 and draw(st.booleans()):
        # Wrap a few root selections in an inline fragment on Query (or with no type condition).
        cut = draw(st.integers(1, len(roots) - 1))
        condition = draw(st.sampled_from([None, "Query"]))
        roots = [*roots[:cut], Inline(condition, draw(maybe_directives), tuple(roots[cut:]))]
    return Operation(name, tuple(roots), variables, shorthand=draw(st.booleans()))


@dataclass
class Case:
    """One document, the operation to run, and the variable values of each run."""

    query: str
    operation_name: str | None
    runs: list[dict[str, Any]]
    org_id: int
    directive_variables: frozenset[str]

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return f"Case(org_id={self.org_id}, operation_name={self.operation_name!r},\n{self.query}\nruns={self.runs})"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    fragments = draw(fragment_definitions())
    count = draw(st.integers(1, 3))
    if count == 1:
        names: list[str | None] = [draw(st.sampled_from([None, "Balance"]))]
    else:
        names = [f"Op{number}" for number in range(count)]
    org_id = draw(st.sampled_from([ORG_PLAIN] * 3 + [ORG_DUAL] * 2 + [ORG_MISSING]))
    operations = [draw(operation(name, fragments, org_id)) for name in names]
    chosen = operations[draw(st.integers(0, count - 1))]
    operation_name = chosen.name if count > 1 else draw(st.sampled_from([None, chosen.name]))

    used = set().union(*(spreads_of(op.selections, fragments) for op in operations))
    definitions = [
        f"fragment {name} on {on} {{ {render_selections(body)} }}"
        for name, (on, body) in fragments.items()
        if name in used
    ]
    rendered = [op.render(fragments) for op in operations]
    order = draw(st.permutations(range(len(rendered) + len(definitions))))
    parts = rendered + definitions
    query = "\n".join(parts[i] for i in order)

    variables = chosen.all_variables(fragments)
    runs = []
    for _ in range(draw(st.integers(1, 3))):
        values = {name: draw(values) for name, (_, values) in variables.items()}
        runs.append({name: value for name, value in values.items() if value is not ABSENT})
    used_directives = frozenset(directive_variables_of(chosen.selections, fragments))
    return Case(query, operation_name, runs, org_id, used_directives)
