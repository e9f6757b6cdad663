"""GraphQL enums over the domain's vocabularies (same members, same values)."""

from __future__ import annotations

import strawberry

from gateway.domain import vocabulary

Source = strawberry.enum(vocabulary.Source, description="Where an identifier is registered.")
IdentifierType = strawberry.enum(
    vocabulary.IdentifierType,
    description=(
        "ID is the entity's own id; PRIMARY_USER_ID (fleets only) is the customer id of a fleet's primary user."
    ),
)
EntityType = strawberry.enum(vocabulary.EntityType, description="What is looked up: a customer or a fleet.")
