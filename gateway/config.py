"""Settings: one explicit object, built from flags and environment variables, passed down."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(".loyalty-gateway")
# Where production serves /metrics unless told otherwise (the port OpenTelemetry's Prometheus exporter uses).
DEFAULT_METRICS_PORT = 9464
# Requests of one org in progress at once per worker, unless the pool is larger. Its single lookups that wait for
# a connection share a statement (gateway.db.lookup_groups, up to 32 in one), so an org is not held to one
# request per connection; 32 still bounds the work one org can have queued ahead of another's in a worker.
DEFAULT_ORG_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class Settings:
    # None means: use the embedded PostgreSQL kept in data_dir.
    database_url: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    demo: bool = False
    demo_customers: int = 10_000
    pool_min_size: int = 1
    pool_max_size: int = 4
    # Seconds a request waits for a database connection before SERVICE_UNAVAILABLE.
    acquire_timeout: float = 2.0
    # Seconds one statement may run (PostgreSQL's statement_timeout); the client
    # gives up a little later too, for a server that stops answering altogether.
    statement_timeout: float = 2.0
    # --- read replicas (README, "Read replicas") ---
    # Streaming replicas of database_url that answer balance lookups; everything else stays on the primary.
    replica_urls: tuple[str, ...] = field(default=(), repr=False)
    # Seconds a replica may be behind the primary before lookups leave it (until it catches up).
    max_replica_lag: float = 5.0
    # Seconds a validated API key is trusted before it is looked up again
    # (also how long a revoked key may keep working).
    api_key_cache_ttl: float = 5.0
    log_level: str = "info"
    # --- operations (docs/operations.md) ---
    # "json" or "text"; None: text with --demo, else json.
    log_format: str | None = None
    # Where /metrics is served: "on" (the gateway's port), "off", or "PORT" / "HOST:PORT" of its own.
    # None: a port of its own (9464) in production, kept off the port the internet reaches; "on" in development.
    metrics: str | None = None
    # Seconds in-flight requests get to finish after SIGTERM before they are cancelled.
    shutdown_grace: float = 10.0
    # --- exposure to the internet (README, "Safe to expose") ---
    # "production" or "development"; None: development with --demo, else production.
    env: str | None = None
    # In production these are off unless turned on; development has them on.
    introspection: bool = False
    graphiql: bool = False
    # Request limits, each refused with a 4xx before any lookup runs.
    max_body_bytes: int = 65_536
    max_tokens: int = 4_000
    max_depth: int = 8
    max_aliases: int = 60
    max_root_fields: int = 60
    max_string_length: int = 1_024
    # Directives per document (GraphQL Armor's default); and what one operation may cost (README, "Cost").
    max_directives: int = 50
    max_cost: int = 100
    # Seconds a request may take from its first byte to its answer; its database work is then cancelled.
    request_timeout: float = 5.0
    # Requests per second (and burst) for the whole deployment, per API key and per end user; 0 = off.
    # Each worker enforces its share: rate / (workers x instances).
    rate_limit: float = 200.0
    rate_limit_burst: int = 400
    user_rate_limit: float = 5.0
    user_rate_limit_burst: int = 20
    instances: int = 1
    # Requests of one org in progress at once in each worker (README, "Fair shares"); None: the default below.
    # Its further requests wait their turn, at most acquire_timeout seconds.
    org_concurrency: int | None = None
    # End-user tokens (JWT): any of these turns them on.
    jwt_secret_file: str | None = None
    jwt_public_key_files: str | None = None  # comma-separated PEM files
    jwt_jwks_file: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway: float = 30.0
    # Comma-separated origins browsers may call from ("*" for any); none by default.
    cors_origins: str = ""
    # --- documents (README, "Persisted queries and trusted documents") ---
    # Automatic persisted queries kept per org; registering one more forgets the least recently used.
    max_persisted_queries: int = 1_000
    # Answer only registered (trusted) documents, by hash, id or identical text (production mode only).
    trusted_documents_only: bool = False
    # Operations a JSON array may batch in one request; 0: batches are refused.
    max_batch_size: int = 0
    # --- live subscriptions (README, "Live balances"), each limit per worker process ---
    max_live_connections: int = 10_000  # WebSocket and SSE connections
    max_subscriptions_per_connection: int = 100
    max_subscriptions_per_key: int = 10_000  # per API key, or per end user
    # Seconds between two messages of one subscription, at least: changes meanwhile merge into the next.
    live_message_interval: float = 0.1
    # In demo mode the GraphiQL page is pre-filled with this key.
    demo_api_key: str | None = field(default=None, repr=False)

    @property
    def development(self) -> bool:
        """Development mode: introspection, GraphiQL and "Did you mean …" suggestions on."""
        return (self.env or ("development" if self.demo else "production")) == "development"

    @property
    def org_share(self) -> int:
        """--org-concurrency as given, or its default: the pool's size, and at least DEFAULT_ORG_CONCURRENCY."""
        if self.org_concurrency is not None:
            return self.org_concurrency
        return max(self.pool_max_size, DEFAULT_ORG_CONCURRENCY)

    @property
    def metrics_where(self) -> str:
        """--metrics as given, or its default for the mode."""
        if self.metrics is not None:
            return self.metrics
        return "on" if self.development else str(DEFAULT_METRICS_PORT)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields replaced; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# Each environment variable maps to one field; flags given on the command line win.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "DATABASE_URL": "database_url",
    "LOYALTY_GATEWAY_REPLICA_URLS": "replica_urls",
    "LOYALTY_GATEWAY_MAX_REPLICA_LAG": "max_replica_lag",
    "LOYALTY_GATEWAY_DATA_DIR": "data_dir",
    "LOYALTY_GATEWAY_HOST": "host",
    "LOYALTY_GATEWAY_PORT": "port",
    "LOYALTY_GATEWAY_WORKERS": "workers",
    "LOYALTY_GATEWAY_POOL_MIN_SIZE": "pool_min_size",
    "LOYALTY_GATEWAY_POOL_MAX_SIZE": "pool_max_size",
    "LOYALTY_GATEWAY_ACQUIRE_TIMEOUT": "acquire_timeout",
    "LOYALTY_GATEWAY_STATEMENT_TIMEOUT": "statement_timeout",
    "LOYALTY_GATEWAY_API_KEY_CACHE_TTL": "api_key_cache_ttl",
    "LOYALTY_GATEWAY_LOG_LEVEL": "log_level",
    "LOYALTY_GATEWAY_LOG_FORMAT": "log_format",
    "LOYALTY_GATEWAY_METRICS": "metrics",
    "LOYALTY_GATEWAY_SHUTDOWN_GRACE": "shutdown_grace",
    "LOYALTY_GATEWAY_ENV": "env",
    "LOYALTY_GATEWAY_INTROSPECTION": "introspection",
    "LOYALTY_GATEWAY_GRAPHIQL": "graphiql",
    "LOYALTY_GATEWAY_MAX_BODY_SIZE": "max_body_bytes",
    "LOYALTY_GATEWAY_MAX_TOKENS": "max_tokens",
    "LOYALTY_GATEWAY_MAX_DEPTH": "max_depth",
    "LOYALTY_GATEWAY_MAX_ALIASES": "max_aliases",
    "LOYALTY_GATEWAY_MAX_ROOT_FIELDS": "max_root_fields",
    "LOYALTY_GATEWAY_MAX_STRING_LENGTH": "max_string_length",
    "LOYALTY_GATEWAY_MAX_DIRECTIVES": "max_directives",
    "LOYALTY_GATEWAY_MAX_COST": "max_cost",
    "LOYALTY_GATEWAY_MAX_LIVE_CONNECTIONS": "max_live_connections",
    "LOYALTY_GATEWAY_MAX_SUBSCRIPTIONS_PER_CONNECTION": "max_subscriptions_per_connection",
    "LOYALTY_GATEWAY_MAX_SUBSCRIPTIONS_PER_KEY": "max_subscriptions_per_key",
    "LOYALTY_GATEWAY_LIVE_MESSAGE_INTERVAL": "live_message_interval",
    "LOYALTY_GATEWAY_ORG_CONCURRENCY": "org_concurrency",
    "LOYALTY_GATEWAY_REQUEST_TIMEOUT": "request_timeout",
    "LOYALTY_GATEWAY_RATE_LIMIT": "rate_limit",
    "LOYALTY_GATEWAY_RATE_LIMIT_BURST": "rate_limit_burst",
    "LOYALTY_GATEWAY_USER_RATE_LIMIT": "user_rate_limit",
    "LOYALTY_GATEWAY_USER_RATE_LIMIT_BURST": "user_rate_limit_burst",
    "LOYALTY_GATEWAY_INSTANCES": "instances",
    "LOYALTY_GATEWAY_JWT_SECRET_FILE": "jwt_secret_file",
    "LOYALTY_GATEWAY_JWT_PUBLIC_KEY_FILES": "jwt_public_key_files",
    "LOYALTY_GATEWAY_JWT_JWKS_FILE": "jwt_jwks_file",
    "LOYALTY_GATEWAY_JWT_AUDIENCE": "jwt_audience",
    "LOYALTY_GATEWAY_JWT_ISSUER": "jwt_issuer",
    "LOYALTY_GATEWAY_JWT_LEEWAY": "jwt_leeway",
    "LOYALTY_GATEWAY_CORS_ORIGINS": "cors_origins",
    "LOYALTY_GATEWAY_MAX_PERSISTED_QUERIES": "max_persisted_queries",
    "LOYALTY_GATEWAY_TRUSTED_DOCUMENTS_ONLY": "trusted_documents_only",
    "LOYALTY_GATEWAY_MAX_BATCH_SIZE": "max_batch_size",
}


def settings_from_environment(environ: dict[str, str] | None = None) -> Settings:
    """Settings from the environment variables above, with typed values."""
    environ = dict(os.environ) if environ is None else environ
    defaults = Settings()
    # Fields whose default is None still have a type: `int | None` takes a number.
    optional_ints = {f.name for f in fields(Settings) if str(f.type) == "int | None"}
    values: dict[str, Any] = {}
    for variable, name in ENVIRONMENT_VARIABLES.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        current = 0 if name in optional_ints else getattr(defaults, name)
        if isinstance(current, bool):
            values[name] = raw.lower() in {"1", "true", "yes", "on"}
        elif isinstance(current, int | float):
            try:
                values[name] = type(current)(raw)
            except ValueError:
                raise SystemExit(f"{variable} must be a number, got {raw!r}") from None
        elif isinstance(current, Path):
            values[name] = Path(raw)
        elif isinstance(current, tuple):
            values[name] = split_urls(raw)
        else:
            values[name] = raw
    return replace(defaults, **values)


def split_urls(raw: str) -> tuple[str, ...]:
    """Comma-separated URLs; a comma inside one URL (several hosts: postgresql://a,b/db) does not split it:
    only a comma followed by a new URL's scheme does."""
    return tuple(url.strip() for url in _NEXT_URL.split(raw) if url.strip())


_NEXT_URL = re.compile(r",\s*(?=[a-z][a-z0-9+.-]*://)", re.IGNORECASE)


def settings_to_json(settings: Settings) -> str:
    """For handing the settings to worker processes."""
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()})


def settings_from_json(text: str) -> Settings:
    raw = json.loads(text)
    paths = {f.name for f in fields(Settings) if f.type in ("Path", Path)}
    # JSON has no tuples: lists become the tuples they were.
    return Settings(**{k: Path(v) if k in paths else tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
