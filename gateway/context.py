"""The per-request context handed to resolvers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import strawberry
from strawberry.dataloader import DataLoader

from gateway.config import Settings
from gateway.db.balances import fetch_balances
from gateway.domain.lookup import Lookup, Matches


@dataclass(slots=True)
class Context:
    settings: Settings
    pool: asyncpg.Pool
    org_id: int
    request_id: str
    # Aliased pointsBalance fields of one request share one SQL statement.
    balance_loader: DataLoader[Lookup, Matches] = field(init=False)

    def __post_init__(self) -> None:
        async def load(lookups: Sequence[Lookup]) -> list[Matches]:
            return await fetch_balances(self.pool, self.org_id, lookups)

        self.balance_loader = DataLoader(load_fn=load)


Info = strawberry.Info[Context, None]
