BALANCE = """
query ($ids: [IdentifierInput!]!, $source: Source!) {
  pointsBalance(identifiers: $ids, source: $source) {
    entityId entityType mainPoints promisedPoints totalPoints
    promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints }
    programs { programId programName isDefault mainPoints }
    warnings
  }
}
"""


async def test_a_customer_balance_end_to_end(gateway):
    seed = gateway.seed
    await seed.org(100737)
    await seed.program(100737, 973, default=True)
    await seed.customer(100737, 565039505, ("INSTORE", None, "EMAIL", "tom@example.com"))
    await seed.balance(100737, 565039505, 973, "8500", "0", "12.5")
    key = await seed.api_key(100737)
    response = await gateway.query(
        BALANCE, {"ids": [{"type": "EMAIL", "value": " Tom@Example.com "}], "source": "INSTORE"}, key=key
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "data": {
            "pointsBalance": {
                "entityId": "565039505",
                "entityType": "CUSTOMER",
                "mainPoints": "8500.000",
                "promisedPoints": "12.500",
                "totalPoints": "8512.500",
                "promisedPointsBreakup": {"delayedAccrualPoints": "0.000", "externalTriggerBasedPoints": "12.500"},
                "programs": [
                    {"programId": 973, "programName": "Program 973", "isDefault": True, "mainPoints": "8500.000"}
                ],
                "warnings": [],
            }
        }
    }
