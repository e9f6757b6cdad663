"""CORS for browser apps: which origins may call /graphql from a web page.

None by default: browsers then refuse cross-origin calls (server-to-server
and mobile clients do not use CORS at all). Credentials are bearer headers,
never cookies, so `allow_credentials` stays off.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from gateway.config import Settings

# Seconds a browser may reuse a preflight answer.
PREFLIGHT_MAX_AGE = 600
ALLOWED_HEADERS = ["authorization", "content-type", "x-request-id", "graphql-cost"]
# Headers a page's script may read from answers: the request id, the caller's budget, when to retry after a 429.
EXPOSED_HEADERS = ["x-request-id", "retry-after", "ratelimit", "ratelimit-policy"]


def allowed_origins(settings: Settings) -> list[str]:
    """The configured origins; a trailing slash is dropped (browsers never send one)."""
    return [origin.strip().rstrip("/") for origin in settings.cors_origins.split(",") if origin.strip()]


def cors_options(settings: Settings) -> dict[str, Any]:
    """CORSMiddleware's options for the configured origins; empty when there are none (nothing to check)."""
    origins = allowed_origins(settings)
    if not origins:
        return {}
    return {
        "allow_origins": origins,
        "allow_methods": ["GET", "POST"],
        "allow_headers": ALLOWED_HEADERS,
        "expose_headers": EXPOSED_HEADERS,
        "max_age": PREFLIGHT_MAX_AGE,
    }


def cors_middleware(settings: Settings) -> list[Middleware]:
    """The CORS middleware for the configured origins, or none at all."""
    options = cors_options(settings)
    return [Middleware(CORSMiddleware, **options)] if options else []
