"""Looks up a customer's points balance through the loyalty gateway with gql (Python).

GATEWAY_URL (default http://127.0.0.1:8000/graphql) and LOYALTY_API_KEY come from the environment.
"""

import os
import sys

from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport

url = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000/graphql")
key = os.environ.get("LOYALTY_API_KEY")
if not key:
    sys.exit("Set LOYALTY_API_KEY to the API key that `loyalty-gateway serve --demo` prints.")

client = Client(transport=HTTPXTransport(url=url, headers={"Authorization": f"Bearer {key}"}))

balance = gql(
    """
    query Balance($email: String!) {
      pointsBalance(identifiers: [{type: EMAIL, value: $email}], source: INSTORE) {
        entityId
        totalPoints
      }
    }
    """
)
balance.variable_values = {"email": "tom@example.com"}

try:
    result = client.execute(balance)
except TransportQueryError as error:
    # The gateway's errors, refusals (401 bad key, 429 rate limited) included, each with a code.
    for each in error.errors or []:
        print(f"{each.get('extensions', {}).get('code', 'ERROR')}: {each['message']}", file=sys.stderr)
    sys.exit(1)
customer = result["pointsBalance"]
print(f"Customer {customer['entityId']} has {customer['totalPoints']} points.")
