"""The per-request context handed to resolvers."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry
from strawberry.dataloader import DataLoader

from gateway.config import Settings
from gateway.db.database import Database
from gateway.domain.lookup import Lookup, Matches


@dataclass(slots=True)
class Context:
    settings: Settings
    database: Database
    org_id: int
    request_id: str
    # An end user's customer id: lookups then match only this customer and the fleets it heads.
    customer_id: int | None = None
    # Made by resolvers.balance on first use (graphql-core path only): most requests never need it.
    balance_loader: DataLoader[Lookup, Matches] | None = field(default=None, repr=False)


Info = strawberry.Info[Context, None]
