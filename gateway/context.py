"""The per-request context handed to resolvers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import strawberry
from strawberry.dataloader import DataLoader

from gateway.auth import ApiKeyAuthenticator
from gateway.config import Settings
from gateway.db.pool import Database
from gateway.domain.lookup import Lookup, Matches


@dataclass(frozen=True, slots=True)
class AppState:
    """What the app's lifespan opens and every request shares."""

    database: Database
    authenticator: ApiKeyAuthenticator


@dataclass(slots=True)
class Context:
    settings: Settings
    database: Database
    org_id: int
    request_id: str
    # An end user's customer id: lookups then match only this customer and the fleets it heads.
    customer_id: int | None = None
    _balance_loader: DataLoader[Lookup, Matches] | None = field(default=None, init=False, repr=False)

    @property
    def balance_loader(self) -> DataLoader[Lookup, Matches]:
        """Aliased pointsBalance fields of one request share one SQL statement (graphql-core path;
        compiled plans batch by themselves). Made on first use: most requests never need it."""
        if self._balance_loader is None:
            from gateway.resolvers import balance

            async def load(lookups: Sequence[Lookup]) -> list[Matches]:
                return await balance.load(self, lookups)

            self._balance_loader = DataLoader(load_fn=load)
        return self._balance_loader


Info = strawberry.Info[Context, None]
