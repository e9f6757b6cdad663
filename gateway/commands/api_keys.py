"""api-key create, list, revoke."""

from __future__ import annotations

import sys

import asyncpg

from gateway.commands import migrated, print_table, when
from gateway.config import Settings


async def create_api_key(settings: Settings, *, org_id: int, name: str) -> int:
    from gateway.db.api_keys import insert_api_key
    from gateway.domain.api_keys import generate_key

    async with migrated(settings) as connection:
        new = generate_key()
        try:
            await insert_api_key(connection, org_id, new.prefix, new.key_hash, name)
        except asyncpg.ForeignKeyViolationError:
            print(f"error: there is no org {org_id}; import it first", file=sys.stderr)
            return 1
    print(f"created API key {new.prefix} for org {org_id}; it is shown only now:", file=sys.stderr)
    print(new.key)
    return 0


async def list_api_keys(settings: Settings, *, org_id: int | None) -> int:
    from gateway.db.api_keys import list_api_keys as fetch_keys

    async with migrated(settings) as connection:
        keys = await fetch_keys(connection, org_id)
    rows = [("PREFIX", "ORG", "NAME", "CREATED", "LAST USED", "REVOKED")]
    for key in keys:
        rows.append(
            (
                key.prefix,
                str(key.org_id),
                key.name or "-",
                when(key.created_at),
                when(key.last_used_at),
                when(key.revoked_at),
            )
        )
    print_table(rows)
    return 0


async def revoke_api_key(settings: Settings, prefix_or_key: str) -> int:
    from gateway.db.api_keys import revoke_api_key as revoke
    from gateway.domain.api_keys import key_prefix

    prefix = key_prefix(prefix_or_key) or prefix_or_key.removeprefix("lgw_")
    async with migrated(settings) as connection:
        revoked_at = await revoke(connection, prefix)
    if revoked_at is None:
        print(f"error: there is no API key with prefix {prefix}", file=sys.stderr)
        return 1
    print(f"API key {prefix} is revoked (since {when(revoked_at)})")
    return 0
