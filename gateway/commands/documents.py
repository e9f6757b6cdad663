"""documents register, list, revoke: trusted documents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.commands import connect, migrated, print_table, when
from gateway.config import Settings


def add_documents_parser(commands: Any, database: argparse.ArgumentParser) -> None:
    """`documents register|list|revoke`, for the CLI's parser."""
    documents = commands.add_parser(
        "documents",
        help="trusted documents (the operations your own apps were built with)",
        description="Trusted documents: the operations first-party apps send, registered from the build's "
        "manifest. `serve --trusted-documents-only` answers nothing else.",
    )
    document_commands = documents.add_subparsers(dest="documents_command", required=True, metavar="COMMAND")
    register = document_commands.add_parser(
        "register",
        parents=[database],
        help="register the documents of a manifest, all or nothing",
        description="Register every document of a manifest: Apollo's persisted-query-manifest.json, Relay's "
        "persisted_queries.json or GraphQL Code Generator's persisted-documents.json. Each must parse and "
        "validate against the schema and the document limits (--max-tokens, --max-depth, --max-aliases, "
        "--max-root-fields, --max-string-length as for serve); one that does not registers nothing.",
    )
    register.add_argument("manifest", type=Path, metavar="FILE")
    for flag, dest in (
        ("--max-tokens", "max_tokens"),
        ("--max-depth", "max_depth"),
        ("--max-aliases", "max_aliases"),
        ("--max-root-fields", "max_root_fields"),
        ("--max-string-length", "max_string_length"),
    ):
        register.add_argument(flag, dest=dest, type=int, metavar="N", help="as for serve")
    document_commands.add_parser(
        "list", parents=[database], help="list trusted documents", description="List trusted documents."
    )
    withdraw = document_commands.add_parser(
        "revoke",
        parents=[database],
        help="revoke a trusted document",
        description="Revoke a trusted document by its id. Running gateways stop answering it within the "
        "cache lifetime (LOYALTY_GATEWAY_API_KEY_CACHE_TTL, 5 s by default).",
    )
    withdraw.add_argument("document_id", metavar="ID")


async def register_documents(settings: Settings, manifest: Path) -> int:
    from gateway.access.limits import Limits
    from gateway.db.migrations import migrate as apply_migrations
    from gateway.db.persisted_documents import DocumentIdTaken, insert_trusted_documents
    from gateway.execution.manifests import ManifestError, check_documents, read_manifest
    from gateway.schema import schema

    try:
        documents = check_documents(
            read_manifest(manifest),
            schema._schema,
            limit_rules=Limits.from_settings(settings).validation_rules(introspection=True),
            max_tokens=settings.max_tokens,
        )
    except ManifestError as error:
        print(f"error: {error}; nothing was registered", file=sys.stderr)
        return 1
    connection = await connect(settings)
    try:
        await apply_migrations(connection)
        async with connection.transaction():
            await insert_trusted_documents(connection, documents)
    except DocumentIdTaken as error:
        print(
            f"error: id {error.document_id} is registered for another document; nothing was registered", file=sys.stderr
        )
        return 1
    finally:
        await connection.close()
    print(f"registered {len(documents)} trusted documents from {manifest}")
    return 0


async def list_documents(settings: Settings) -> int:
    from gateway.db.persisted_documents import list_trusted_documents

    async with migrated(settings) as connection:
        documents = await list_trusted_documents(connection)
    rows = [("ID", "NAME", "REGISTERED", "REVOKED")]
    rows += [(d.document_id, d.name, when(d.registered_at), when(d.revoked_at)) for d in documents]
    print_table(rows)
    return 0


async def revoke_document(settings: Settings, document_id: str) -> int:
    from gateway.db.persisted_documents import revoke_trusted_document

    async with migrated(settings) as connection:
        revoked_at = await revoke_trusted_document(connection, document_id)
    if revoked_at is None:
        print(f"error: there is no trusted document with id {document_id}", file=sys.stderr)
        return 1
    print(f"trusted document {document_id} is revoked (since {when(revoked_at)})")
    return 0
