"""token mint: an end-user token for development."""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.config import Settings


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
