"""The `token-key` subcommand: the keys that verify one org's end-user tokens (docs/end-user-tokens.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from gateway.config import Settings

CACHE_NOTE = "within the key cache lifetime (LOYALTY_GATEWAY_API_KEY_CACHE_TTL, 5 s by default)"


def add_token_key_parser(commands: Any, database: argparse.ArgumentParser) -> None:
    """`token-key add|list|revoke`, beside `api-key` (commands: the parser's subparsers)."""
    token_key = commands.add_parser(
        "token-key",
        help="manage the keys that verify one org's end-user tokens",
        description="Keys bound to one org: a token naming the org is accepted only if one of them (or a "
        "deployment-wide --jwt-* key) signed it. The choice for deployments where each org signs its own "
        "customers in (docs/end-user-tokens.md).",
    )
    token_key_commands = token_key.add_subparsers(dest="token_key_command", required=True, metavar="COMMAND")
    add = token_key_commands.add_parser(
        "add",
        parents=[database],
        help="add an org's key(s) and print their ids",
        description="Add the keys of one file to an org: an HS256 secret, an RS256/ES256 public key in PEM, or the "
        "RS256/ES256 public keys of a JWKS (one id each; a token's `kid` header picks among them). The file is "
        f"checked first: a bad one adds nothing. Running gateways accept tokens the keys sign {CACHE_NOTE}.",
    )
    add.add_argument("--org", type=int, required=True, metavar="ORG", help="the org whose tokens the keys verify")
    material = add.add_mutually_exclusive_group(required=True)
    material.add_argument(
        "--secret-file", metavar="FILE", help="an HS256 secret of at least 32 bytes (stored as is: prefer a public key)"
    )
    material.add_argument(
        "--public-key-file", metavar="FILE", help="an RS256 (RSA, 2048 bits or more) or ES256 (P-256) public key, PEM"
    )
    material.add_argument("--jwks-file", metavar="FILE", help="RS256/ES256 public keys as a JWKS (public parts only)")
    add.add_argument("--issuer", metavar="ISS", help="the `iss` its tokens must carry (default: not checked)")
    add.add_argument("--audience", metavar="AUD", help="the `aud` its tokens must carry (default: they carry none)")
    add.add_argument("--name", default="", help="a label to tell keys apart")
    listing = token_key_commands.add_parser(
        "list",
        parents=[database],
        help="list org token keys (never the keys themselves)",
        description="List org token keys: id, org, algorithm, format, kid, name, issuer, audience, created, revoked.",
    )
    listing.add_argument("--org", type=int, metavar="ORG", help="only this org's keys")
    revoke = token_key_commands.add_parser(
        "revoke",
        parents=[database],
        help="revoke an org token key",
        description="Revoke an org token key by its id (tk_…). Running gateways refuse the tokens it signed "
        f"{CACHE_NOTE}.",
    )
    revoke.add_argument("key_id", metavar="ID")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.token_key_command == "add":
        kind, path = next(
            (kind, path)
            for kind, path in (("secret", args.secret_file), ("pem", args.public_key_file), ("jwks", args.jwks_file))
            if path
        )
        return asyncio.run(
            add_token_keys(
                settings,
                org_id=args.org,
                kind=kind,
                path=path,
                issuer=args.issuer or None,
                audience=args.audience or None,
                name=args.name,
            )
        )
    if args.token_key_command == "list":
        return asyncio.run(list_token_keys(settings, org_id=args.org))
    return asyncio.run(revoke_token_key(settings, args.key_id))


class _KidTaken(Exception):
    def __init__(self, kid: str, key_id: str) -> None:
        self.kid = kid
        self.key_id = key_id


async def add_token_keys(
    settings: Settings, *, org_id: int, kind: str, path: str, issuer: str | None, audience: str | None, name: str
) -> int:
    import asyncpg

    from gateway.access.token_keys import TokenConfigurationError, org_keys_from_file
    from gateway.commands import connect
    from gateway.db.migrations import migrate as apply_migrations
    from gateway.db.token_keys import insert_token_key, live_token_keys

    try:
        keys = org_keys_from_file(kind, path, issuer=issuer, audience=audience)
    except TokenConfigurationError as error:
        print(f"error: {error}; nothing was added", file=sys.stderr)
        return 1
    added, kept = [], []
    connection = await connect(settings)
    try:
        await apply_migrations(connection)
        async with connection.transaction():
            live = {key.kid: key for key in await live_token_keys(connection, org_id) if key.kid}
            for key in keys:
                same = live.get(key.kid) if key.kid else None
                if same is None:
                    await insert_token_key(connection, org_id, key, name)
                    added.append(key)
                elif (same.algorithm, same.material, same.issuer, same.audience) == (
                    key.algorithm,
                    key.material,
                    key.issuer,
                    key.audience,
                ):
                    kept.append(same)  # a JWKS given again, say with the next key added to it
                else:
                    raise _KidTaken(same.kid or "", same.key_id)
    except asyncpg.ForeignKeyViolationError:
        print(f"error: there is no org {org_id}; import it first", file=sys.stderr)
        return 1
    except (_KidTaken, asyncpg.UniqueViolationError) as taken:
        which = f" {taken.kid!r} ({taken.key_id})" if isinstance(taken, _KidTaken) else ""
        print(
            f"error: org {org_id} already has another live key with kid{which}; "
            "revoke it first, or give the new key a kid of its own; nothing was added",
            file=sys.stderr,
        )
        return 1
    finally:
        await connection.close()
    for key in kept:
        print(f"kept token key {key.key_id} (kid {key.kid!r}): it is live for org {org_id} already")
    for key in added:
        kid = f", kid {key.kid!r}" if key.kid else ""
        print(f"added token key {key.key_id} ({key.algorithm}{kid}) for org {org_id}")
    if kind == "secret":
        print(
            f"note: the secret is stored as given: whoever can read the database or its backups can sign tokens for "
            f"org {org_id}. With a public key (RS256, ES256) only the org's own backend can.",
            file=sys.stderr,
        )
    return 0


async def list_token_keys(settings: Settings, *, org_id: int | None) -> int:
    from gateway.commands import migrated, print_table, when
    from gateway.db.token_keys import list_token_keys as fetch_keys

    async with migrated(settings) as connection:
        keys = await fetch_keys(connection, org_id)
    rows = [("ID", "ORG", "ALG", "FORMAT", "KID", "NAME", "ISSUER", "AUDIENCE", "CREATED", "REVOKED")]
    for key in keys:
        rows.append(
            (
                key.key_id,
                str(key.org_id),
                key.algorithm,
                key.format,
                key.kid or "-",
                key.name or "-",
                key.issuer or "-",
                key.audience or "-",
                when(key.created_at),
                when(key.revoked_at),
            )
        )
    print_table(rows)
    return 0


async def revoke_token_key(settings: Settings, key_id: str) -> int:
    from gateway.commands import migrated, when
    from gateway.db.token_keys import revoke_token_key as revoke

    async with migrated(settings) as connection:
        revoked = await revoke(connection, key_id)
    if revoked is None:
        print(f"error: there is no token key {key_id}", file=sys.stderr)
        return 1
    org_id, revoked_at = revoked
    print(f"token key {key_id} of org {org_id} is revoked (since {when(revoked_at)})")
    return 0
