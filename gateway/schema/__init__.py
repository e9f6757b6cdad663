"""The public GraphQL schema: the Query and Subscription roots."""

from strawberry.schema.config import StrawberryConfig

from gateway.live.documents import CachedDocuments
from gateway.schema.query import ROOT_RESOLVERS, GatewaySchema, Query
from gateway.schema.scalars import POINTS_SCALAR, Points
from gateway.schema.subscription import Subscription

schema = GatewaySchema(
    query=Query,
    subscription=Subscription,
    config=StrawberryConfig(scalar_map={Points: POINTS_SCALAR}),
    # Subscriptions run through strawberry: their documents come from the gateway's cache, checked by its rules.
    extensions=[CachedDocuments],
)

__all__ = ["ROOT_RESOLVERS", "schema"]
