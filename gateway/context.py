"""The per-request context handed to resolvers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import strawberry
from strawberry.dataloader import DataLoader

from gateway.auth import ApiKeyAuthenticator
from gateway.config import Settings
from gateway.db.balances import fetch_balances
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
    # Aliased pointsBalance fields of one request share one SQL statement.
    balance_loader: DataLoader[Lookup, Matches] = field(init=False)

    def __post_init__(self) -> None:
        async def load(lookups: Sequence[Lookup]) -> list[Matches]:
            return await fetch_balances(self.database, self.org_id, lookups)

        self.balance_loader = DataLoader(load_fn=load)


Info = strawberry.Info[Context, None]
