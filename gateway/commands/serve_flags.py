"""The flags of `serve` beyond the basics: operations, exposure to the internet, read replicas."""

from __future__ import annotations

import argparse


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    _add_operations_arguments(serve)
    _add_replica_arguments(serve)
    _add_exposure_arguments(serve)


# Settings fields set by the serve flags below (each flag is named after its field).
SERVE_FIELDS = (
    "env",
    "introspection",
    "graphiql",
    "max_body_bytes",
    "max_tokens",
    "max_depth",
    "max_aliases",
    "max_root_fields",
    "max_string_length",
    "max_directives",
    "max_cost",
    "request_timeout",
    "rate_limit",
    "rate_limit_burst",
    "user_rate_limit",
    "user_rate_limit_burst",
    "instances",
    "org_concurrency",
    "jwt_secret_file",
    "jwt_public_key_files",
    "jwt_jwks_file",
    "jwt_audience",
    "jwt_issuer",
    "jwt_leeway",
    "cors_origins",
    "max_persisted_queries",
    "trusted_documents_only",
    "max_batch_size",
    "replica_urls",
    "max_replica_lag",
)


def _add_exposure_arguments(serve: argparse.ArgumentParser) -> None:
    """The flags that make the gateway safe to expose (README, "Safe to expose")."""
    mode = serve.add_argument_group("mode")
    mode.add_argument(
        "--env",
        choices=["production", "development"],
        help="production hides the schema (no introspection, GraphiQL or field suggestions); "
        "development shows it (env LOYALTY_GATEWAY_ENV; default production, development with --demo)",
    )
    mode.add_argument(
        "--introspection", action="store_true", default=None, help="allow introspection in production too"
    )
    mode.add_argument("--graphiql", action="store_true", default=None, help="serve GraphiQL in production too")

    limits = serve.add_argument_group("request limits (each refused with a 4xx before any lookup)")
    limits.add_argument(
        "--max-body-size", dest="max_body_bytes", type=int, metavar="BYTES", help="request body (default 65536)"
    )
    limits.add_argument("--max-tokens", type=int, metavar="N", help="GraphQL tokens per document (default 4000)")
    limits.add_argument("--max-depth", type=int, metavar="N", help="field nesting depth (default 8)")
    limits.add_argument("--max-aliases", type=int, metavar="N", help="aliased fields per document (default 60)")
    limits.add_argument("--max-root-fields", type=int, metavar="N", help="root fields per operation (default 60)")
    limits.add_argument(
        "--max-string-length", type=int, metavar="N", help="characters per string argument or variable (default 1024)"
    )
    limits.add_argument("--max-directives", type=int, metavar="N", help="directives per document (default 50)")
    limits.add_argument(
        "--max-cost", type=int, metavar="N", help="what one operation may cost, in lookups (default 100; README, Cost)"
    )
    limits.add_argument("--request-timeout", type=float, metavar="SECONDS", help="per-request deadline (default 5)")

    rates = serve.add_argument_group("rate limits (whole deployment; 0 turns one off)")
    rates.add_argument("--rate-limit", type=float, metavar="PER_S", help="cost units/s per API key (default 200)")
    rates.add_argument(
        "--rate-limit-burst", type=int, metavar="N", help="burst per API key, in cost units (default 400)"
    )
    rates.add_argument("--user-rate-limit", type=float, metavar="PER_S", help="cost units/s per end user (default 5)")
    rates.add_argument("--user-rate-limit-burst", type=int, metavar="N", help="burst per end user (default 20)")
    rates.add_argument(
        "--instances",
        type=int,
        metavar="N",
        help="gateway instances sharing the rate limits; each worker enforces rate / (workers x instances) (default 1)",
    )
    rates.add_argument(
        "--org-concurrency",
        type=int,
        metavar="N",
        help=(
            "requests of one org in progress at once per worker; more wait their turn"
            " (default: 32, or the pool size if larger)"
        ),
    )

    tokens = serve.add_argument_group("end-user tokens (JWT; see docs/end-user-tokens.md)")
    tokens.add_argument("--jwt-secret-file", metavar="FILE", help="HS256 secret (at least 32 bytes)")
    tokens.add_argument(
        "--jwt-public-key-file",
        dest="jwt_public_key_files",
        metavar="FILES",
        help="RS256/ES256 public keys, PEM, comma-separated",
    )
    tokens.add_argument("--jwt-jwks-file", metavar="FILE", help="RS256/ES256 public keys as a JWKS")
    tokens.add_argument("--jwt-audience", metavar="AUD", help="required `aud` claim")
    tokens.add_argument("--jwt-issuer", metavar="ISS", help="required `iss` claim")
    tokens.add_argument("--jwt-leeway", type=float, metavar="SECONDS", help="clock skew allowed (default 30)")

    serve.add_argument(
        "--cors-origins",
        metavar="ORIGINS",
        help="comma-separated origins browsers may call from, or * (default none)",
    )

    documents = serve.add_argument_group('documents (README, "Persisted queries and trusted documents")')
    documents.add_argument(
        "--max-persisted-queries",
        type=int,
        metavar="N",
        help="automatic persisted queries kept per org; the least recently used go first (default 1000)",
    )
    documents.add_argument(
        "--trusted-documents-only",
        action="store_true",
        default=None,
        help="answer only documents registered with `documents register` (production mode)",
    )
    documents.add_argument(
        "--max-batch-size",
        type=int,
        metavar="N",
        help="operations one request may batch as a JSON array (default 0: batches refused)",
    )


def _add_operations_arguments(serve: argparse.ArgumentParser) -> None:
    """Logs, metrics and shutdown (docs/operations.md)."""
    operations = serve.add_argument_group("operations (docs/operations.md)")
    operations.add_argument(
        "--log-format",
        choices=["json", "text"],
        help="one JSON object per line, or readable text (env LOYALTY_GATEWAY_LOG_FORMAT; "
        "default json, text in development and with --demo)",
    )
    operations.add_argument(
        "--metrics",
        metavar="off|on|PORT",
        help="Prometheus metrics at /metrics on the gateway's port (on), on a port of their own "
        "(PORT or HOST:PORT), or not at all (off) (env LOYALTY_GATEWAY_METRICS; default on)",
    )
    operations.add_argument(
        "--shutdown-grace",
        type=float,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may take to finish (env LOYALTY_GATEWAY_SHUTDOWN_GRACE; "
        "default 10)",
    )


class _AppendUrl(argparse.Action):
    """--replica-url, repeatable: the URLs given, as a tuple (Settings' type)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: object, option: str | None = None
    ) -> None:
        setattr(namespace, self.dest, (*(getattr(namespace, self.dest) or ()), str(value)))


def _add_replica_arguments(serve: argparse.ArgumentParser) -> None:
    """Read replicas (README, "Read replicas")."""
    replicas = serve.add_argument_group('read replicas (README, "Read replicas")')
    replicas.add_argument(
        "--replica-url",
        dest="replica_urls",
        action=_AppendUrl,
        metavar="URL",
        help="a streaming replica of the database that answers balance lookups; repeat for several "
        "(env LOYALTY_GATEWAY_REPLICA_URLS, comma-separated; default none: the primary answers all)",
    )
    replicas.add_argument(
        "--max-replica-lag",
        type=float,
        metavar="SECONDS",
        help="lookups leave a replica this far behind the primary until it catches up "
        "(env LOYALTY_GATEWAY_MAX_REPLICA_LAG; default 5)",
    )
