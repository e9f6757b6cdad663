"""What each subcommand does, given Settings. The CLI parses; this runs."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from gateway.config import Settings


def database_url(settings: Settings) -> str:
    """The configured database, or the embedded one (started, or joined, now)."""
    if settings.database_url:
        return settings.database_url
    from gateway.db.embedded import embedded_database_url

    return embedded_database_url(settings.data_dir)


async def _connect(settings: Settings) -> asyncpg.Connection:
    from gateway.db.pool import SERVER_SETTINGS

    return await asyncpg.connect(database_url(settings), server_settings=SERVER_SETTINGS)


async def migrate(settings: Settings) -> int:
    from gateway.db.migrations import migrate as apply_migrations

    connection = await _connect(settings)
    try:
        applied = await apply_migrations(connection)
    finally:
        await connection.close()
    for migration in applied:
        print(f"applied {migration.version:03d}_{migration.name}")
    if not applied:
        print("the database schema is up to date")
    return 0


async def import_file(settings: Settings, path: Path, *, progress: bool, metrics_file: Path | None = None) -> int:
    import time

    from gateway.db.migrations import migrate as apply_migrations
    from gateway.importer.jsonl import ImportFailed
    from gateway.importer.jsonl import import_file as run_import
    from gateway.observability.metrics import count_import, write_import_metrics

    started = time.monotonic()
    summary = None
    try:
        connection = await _connect(settings)
        try:
            await apply_migrations(connection)
            summary = await run_import(connection, path, progress=progress)
        except ImportFailed as failure:
            print(f"error: {path}: {failure}", file=sys.stderr)
            print("nothing was imported", file=sys.stderr)
            return 1
        finally:
            await connection.close()
    finally:
        count_import(summary, time.monotonic() - started)
        if metrics_file is not None:
            write_import_metrics(str(metrics_file))
    print(
        f"imported {path}: {summary.orgs:,} orgs, {summary.programs:,} programs, {summary.customers:,} customers "
        f"({summary.identifiers:,} identifiers), {summary.fleets:,} fleets, {summary.balances:,} balances"
    )
    return 0


async def demo_data(settings: Settings, *, customers: int, seed: int, progress: bool) -> int:
    from gateway.db.migrations import migrate as apply_migrations
    from gateway.importer.demo import load_demo_data

    connection = await _connect(settings)
    try:
        await apply_migrations(connection)
        summary = await load_demo_data(connection, customers=customers, seed=seed, progress=progress)
    finally:
        await connection.close()
    print(
        f"loaded {summary.customers:,} customers, {summary.identifiers:,} identifiers, {summary.fleets:,} fleets "
        f"and {summary.balances:,} balances in {summary.seconds:.1f} s"
    )
    if summary.showcase_org_ids:
        ids = ", ".join(str(org_id) for org_id in summary.showcase_org_ids)
        print(f"  orgs {ids}: the examples that the README and docs/ show")
    for org in summary.orgs:
        dual = (
            f"dual eligibility on {org.primary_identifier.value}" if org.primary_identifier else "dual eligibility off"
        )
        print(f"  org {org.org_id} {org.name}: {org.customers:,} customers, {org.fleets:,} fleets, {dual}")
    return 0


async def create_api_key(settings: Settings, *, org_id: int, name: str) -> int:
    from gateway.db.api_keys import insert_api_key
    from gateway.db.migrations import migrate as apply_migrations
    from gateway.domain.api_keys import generate_key

    connection = await _connect(settings)
    try:
        await apply_migrations(connection)
        new = generate_key()
        try:
            await insert_api_key(connection, org_id, new.prefix, new.key_hash, name)
        except asyncpg.ForeignKeyViolationError:
            print(f"error: there is no org {org_id}; import it first", file=sys.stderr)
            return 1
    finally:
        await connection.close()
    print(f"created API key {new.prefix} for org {org_id}; it is shown only now:", file=sys.stderr)
    print(new.key)
    return 0


async def list_api_keys(settings: Settings, *, org_id: int | None) -> int:
    from gateway.db.api_keys import list_api_keys as fetch_keys
    from gateway.db.migrations import migrate as apply_migrations

    connection = await _connect(settings)
    try:
        await apply_migrations(connection)
        keys = await fetch_keys(connection, org_id)
    finally:
        await connection.close()
    rows = [("PREFIX", "ORG", "NAME", "CREATED", "LAST USED", "REVOKED")]
    for key in keys:
        rows.append(
            (
                key.prefix,
                str(key.org_id),
                key.name or "-",
                _when(key.created_at),
                _when(key.last_used_at),
                _when(key.revoked_at),
            )
        )
    _print_table(rows)
    return 0


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


async def revoke_api_key(settings: Settings, prefix_or_key: str) -> int:
    from gateway.db.api_keys import revoke_api_key as revoke
    from gateway.db.migrations import migrate as apply_migrations
    from gateway.domain.api_keys import key_prefix

    prefix = key_prefix(prefix_or_key) or prefix_or_key.removeprefix("lgw_")
    connection = await _connect(settings)
    try:
        await apply_migrations(connection)
        revoked_at = await revoke(connection, prefix)
    finally:
        await connection.close()
    if revoked_at is None:
        print(f"error: there is no API key with prefix {prefix}", file=sys.stderr)
        return 1
    print(f"API key {prefix} is revoked (since {_when(revoked_at)})")
    return 0


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
    connection = await _connect(settings)
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
    from gateway.db.migrations import migrate as apply_migrations
    from gateway.db.persisted_documents import list_trusted_documents

    connection = await _connect(settings)
    try:
        await apply_migrations(connection)
        documents = await list_trusted_documents(connection)
    finally:
        await connection.close()
    rows = [("ID", "NAME", "REGISTERED", "REVOKED")]
    rows += [(d.document_id, d.name, _when(d.registered_at), _when(d.revoked_at)) for d in documents]
    _print_table(rows)
    return 0


async def revoke_document(settings: Settings, document_id: str) -> int:
    from gateway.db.migrations import migrate as apply_migrations
    from gateway.db.persisted_documents import revoke_trusted_document

    connection = await _connect(settings)
    try:
        await apply_migrations(connection)
        revoked_at = await revoke_trusted_document(connection, document_id)
    finally:
        await connection.close()
    if revoked_at is None:
        print(f"error: there is no trusted document with id {document_id}", file=sys.stderr)
        return 1
    print(f"trusted document {document_id} is revoked (since {_when(revoked_at)})")
    return 0


def mint_token(settings: Settings, *, org_id: int, customer_id: int, ttl_seconds: int) -> int:
    from gateway.access.end_user_tokens import MIN_SECRET_BYTES, mint

    if not settings.jwt_secret_file:
        print("error: give the secret with --jwt-secret-file (or LOYALTY_GATEWAY_JWT_SECRET_FILE)", file=sys.stderr)
        return 2
    try:
        secret = Path(settings.jwt_secret_file).read_bytes().strip()
    except OSError as error:
        print(f"error: cannot read {settings.jwt_secret_file}: {error.strerror}", file=sys.stderr)
        return 1
    if len(secret) < MIN_SECRET_BYTES:
        print(f"error: the secret must be at least {MIN_SECRET_BYTES} bytes long", file=sys.stderr)
        return 1
    print(
        mint(
            secret,
            org_id=org_id,
            customer_id=customer_id,
            ttl_seconds=ttl_seconds,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
    )
    return 0


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def serve(settings: Settings) -> int:
    import asyncio

    import uvicorn

    from gateway.access.limits import configuration_problems
    from gateway.app import create_app
    from gateway.importer.demo.welcome import prepare_demo

    problems = configuration_problems(settings)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 2
    from gateway.observability.logs import configure_logging, log_format
    from gateway.observability.metrics import MetricsOption, multiprocess_directory, start_metrics_server

    try:
        metrics = MetricsOption.parse(settings.metrics_where)
        configure_logging(settings.log_level, log_format(settings))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = settings.with_overrides(database_url=database_url(settings))
    example_query = None
    if settings.demo:
        demo = asyncio.run(prepare_demo(settings))
        settings = settings.with_overrides(demo_api_key=demo.api_key)
        example_query = demo.example_query
        print(demo.banner(settings), flush=True)
    _exit_zero_after_graceful_stop()
    # Several workers count into files of a directory of this run; a scrape of any of them adds them up.
    with multiprocess_directory(settings.workers):
        # Metrics on a port of their own are served by this process (the workers' parent, with several).
        metrics_server = start_metrics_server(metrics, settings.host)
        try:
            if settings.workers > 1:
                import os

                from gateway.app import SETTINGS_VARIABLE, settings_to_environment

                os.environ[SETTINGS_VARIABLE] = settings_to_environment(settings, example_query)
                uvicorn.run(
                    "gateway.app:create_app_from_environment",
                    factory=True,
                    workers=settings.workers,
                    **uvicorn_options(settings),
                )
            else:
                uvicorn.run(create_app(settings, example_query=example_query), **uvicorn_options(settings))
        finally:
            if metrics_server is not None:
                metrics_server[0].shutdown()  # type: ignore[index]
    return 0


def _exit_zero_after_graceful_stop() -> None:
    """After a graceful shutdown uvicorn raises the SIGTERM/SIGINT it caught again, for the handler it
    found in place. With this one the process then simply returns from `serve`: exit status 0."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: None)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # uvloop and httptools: the fastest event loop and HTTP parser uvicorn has.
        "loop": "uvloop",
        "http": "httptools",
        # The gateway logs its own line per request.
        "access_log": False,
        # Nothing reads the client's address, so X-Forwarded-For is not worth rewriting on every request.
        "proxy_headers": False,
        # uvicorn's loggers go through the gateway's handler (JSON or text).
        "log_config": None,
        # SIGTERM: stop accepting, give in-flight requests this long, then close the pool and exit.
        "timeout_graceful_shutdown": settings.shutdown_grace,
    }
