"""Settings: one explicit object, built from flags and environment variables, passed down."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(".loyalty-gateway")


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
    # Seconds a validated API key is trusted before it is looked up again
    # (also how long a revoked key may keep working).
    api_key_cache_ttl: float = 5.0
    log_level: str = "info"
    # In demo mode the GraphiQL page is pre-filled with this key.
    demo_api_key: str | None = field(default=None, repr=False)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields replaced; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# Each environment variable maps to one field; flags given on the command line win.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "DATABASE_URL": "database_url",
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
}


def settings_from_environment(environ: dict[str, str] | None = None) -> Settings:
    """Settings from the environment variables above, with typed values."""
    environ = dict(os.environ) if environ is None else environ
    defaults = Settings()
    values: dict[str, Any] = {}
    for variable, name in ENVIRONMENT_VARIABLES.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        current = getattr(defaults, name)
        if isinstance(current, bool):
            values[name] = raw.lower() in {"1", "true", "yes", "on"}
        elif isinstance(current, int | float):
            try:
                values[name] = type(current)(raw)
            except ValueError:
                raise SystemExit(f"{variable} must be a number, got {raw!r}") from None
        elif isinstance(current, Path):
            values[name] = Path(raw)
        else:
            values[name] = raw
    return replace(defaults, **values)


def settings_to_json(settings: Settings) -> str:
    """For handing the settings to worker processes."""
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()})


def settings_from_json(text: str) -> Settings:
    raw = json.loads(text)
    paths = {f.name for f in fields(Settings) if f.type in ("Path", Path)}
    return Settings(**{k: Path(v) if k in paths else v for k, v in raw.items()})
