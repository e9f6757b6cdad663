"""The compiled execution path answers exactly like graphql-core.

Differential tests: every request runs through strawberry's stock execution
(the reference) and through the gateway's endpoint, which uses a compiled
plan when it can; data (keys in order) and errors (sorted, as the client sees
them) must be equal, and the endpoint must really have used a plan.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, event, given, settings

from tests.execution.conftest import World
from tests.execution.queries import ORG_DUAL, ORG_PLAIN, Case, cases

ANN = '{type: EMAIL, value: "ann@example.com"}'


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_generated_queries_are_answered_like_graphql_core(world: World, case: Case) -> None:
    # The first variables again at the end: a cached plan after others were built.
    for variables in [*case.runs, case.runs[0]]:
        outcome, plans = world.compare(case.query, variables, case.operation_name, case.org_id)
        assert len(plans) == 1
        if any(variables.get(name, False) is None for name in case.directive_variables):
            event("a null directive variable: graphql-core answers")
        else:
            assert plans[0] is not None, "the endpoint fell back to graphql-core"
        event("with errors" if outcome.errors else "without errors")
        found = isinstance(outcome.data, dict) and any(isinstance(value, dict) for value in outcome.data.values())
        event("a lookup found a balance" if found else "no lookup found a balance")


def test_each_set_of_directive_variables_has_its_own_plan(world: World) -> None:
    query = f"""
    query ($b0: Boolean!, $b1: Boolean!, $b2: Boolean!) {{
      pointsBalance(identifiers: [{ANN}], source: INSTORE, fetchDataForAllPrograms: true) {{
        mainPoints @include(if: $b0)
        programs @skip(if: $b1) {{ programId ...P }}
      }}
    }}
    fragment P on ProgramBalance {{ totalPoints promisedPointsBreakup @include(if: $b2) {{ delayedAccrualPoints }} }}
    """
    seen = {}
    for _ in range(2):
        for b0, b1, b2 in itertools.product([False, True], repeat=3):
            variables = {"b0": b0, "b1": b1, "b2": b2}
            _, [plan] = world.compare(query, variables, None, ORG_PLAIN)
            assert plan is not None
            assert seen.setdefault((b0, b1, b2), plan) is plan
    assert len({id(plan) for plan in seen.values()}) == 8


def test_variable_coercion_errors_are_answered_like_graphql_core(world: World) -> None:
    query = """
    query ($ids: [IdentifierInput!]!, $source: Source!, $entity: EntityType! = CUSTOMER, $program: Int) {
      pointsBalance(identifiers: $ids, source: $source, entityType: $entity, programId: $program) { mainPoints }
    }
    """
    ann = [{"type": "EMAIL", "value": "ann@example.com"}]
    for variables in [
        {"ids": ann, "source": "NOWHERE"},  # not a Source
        {"ids": ann},  # $source missing
        {"ids": ann, "source": None},  # null for a non-null variable
        {"ids": ann, "source": "INSTORE", "entity": "GROUP"},  # not an EntityType
        {"ids": [{"type": "PHONE", "value": "1"}], "source": "INSTORE"},  # not an IdentifierType
        {"ids": [{"type": "EMAIL"}], "source": "INSTORE"},  # value missing
        {"ids": ann, "source": "INSTORE", "program": "ten"},  # not an Int
        {"ids": ann, "source": "INSTORE", "program": 2**31},  # out of Int's range
    ]:
        outcome, plans = world.compare(query, variables, None, ORG_PLAIN)
        assert outcome.data is None and outcome.errors
        assert plans == []  # answered before any plan was looked for


def test_introspection_is_left_to_graphql_core(world: World) -> None:
    for query in [
        "{ __schema { queryType { name } } }",
        '{ __type(name: "PointsBalance") { name fields { name } } }',
        f"{{ pointsBalance(identifiers: [{ANN}], source: INSTORE) {{ mainPoints }} __schema {{ types {{ name }} }} }}",
        f"""query Q {{ __typename ...R }}
        fragment R on Query {{ pointsBalance(identifiers: [{ANN}], source: INSTORE) {{ __typename }}
          t: __type(name: "Query") {{ kind }} }}""",
    ]:
        outcome, plans = world.compare(query, None, None, ORG_PLAIN)
        assert plans == [None]
        assert not outcome.errors


def test_a_request_whose_root_fields_are_all_skipped_has_empty_data(world: World) -> None:
    query = f"""
    query ($no: Boolean!) {{
      pointsBalance(identifiers: [{ANN}], source: INSTORE) @include(if: $no) {{ mainPoints }}
      t: __typename @skip(if: true)
    }}
    """
    outcome, [plan] = world.compare(query, {"no": False}, None, ORG_PLAIN)
    assert plan is not None
    assert outcome.data == {}


def test_a_null_directive_variable_is_answered_like_graphql_core(world: World) -> None:
    for query in [
        f"""query ($b: Boolean = true) {{
          pointsBalance(identifiers: [{ANN}], source: INSTORE) @include(if: $b) {{ mainPoints }} }}""",
        f"""query ($b: Boolean = true) {{
          pointsBalance(identifiers: [{ANN}], source: INSTORE) {{ mainPoints programs @skip(if: $b) {{ programId }} }}
        }}""",
        # The lookup fails, so graphql-core never collects its subfields: no directive error.
        """query ($b: Boolean = true) {
          pointsBalance(identifiers: [{type: EMAIL, value: "nobody@example.com"}], source: INSTORE) {
            mainPoints @include(if: $b) } }""",
    ]:
        outcome, _ = world.compare(query, {"b": None}, None, ORG_PLAIN)
        assert outcome.errors


def test_lookups_of_a_dual_eligibility_org_are_answered_like_graphql_core(world: World) -> None:
    query = """
    query ($ids: [IdentifierInput!]!) {
      pointsBalance(identifiers: $ids, source: INSTORE) { entityId totalPoints warnings programs { programName } }
    }
    """
    for identifiers in [
        [{"type": "MOBILE", "value": "447700900001"}],
        [{"type": "EMAIL", "value": "shared@example.com"}, {"type": "MOBILE", "value": "+44 7700-900002"}],
        [{"type": "EMAIL", "value": "shared@example.com"}],
    ]:
        _, [plan] = world.compare(query, {"ids": identifiers}, None, ORG_DUAL)
        assert plan is not None
