from pathlib import Path

from gateway.schema import schema

ROOT = Path(__file__).resolve().parents[1]


def test_committed_schema_graphql_is_what_the_code_exports():
    # Regenerate with: python -m gateway.schema > schema.graphql
    assert (ROOT / "schema.graphql").read_text() == schema.as_str() + "\n"


def test_the_public_names_of_the_spec_are_in_the_schema():
    sdl = schema.as_str()
    for fragment in [
        "pointsBalance(identifiers: [IdentifierInput!]!, source: Source!, accountId: String = null, "
        "programId: Int = null, entityType: EntityType! = CUSTOMER, fetchDataForAllPrograms: Boolean! = false)"
        ": PointsBalance",
        "entityId: ID!",
        "promisedPointsBreakup: PromisedPointsBreakup!",
        "externalTriggerBasedPoints: Decimal!",
    ]:
        assert fragment in sdl
