"""Who is calling, and whether they may call now.

A bearer credential is an API key (`lgw_<prefix>_<secret>`: a backend or a
web app, reading anything in its org) or an end-user token (a JWT: one
customer, reading only their own balance and the fleets they head). Each
kind has its own rate limit, counted per key and per end user.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.access.api_keys import ApiKeyAuthenticator
from gateway.access.end_user_tokens import EndUserTokens, looks_like_jwt
from gateway.access.rate_limits import RateLimiter
from gateway.config import Settings
from gateway.errors import Unauthenticated


@dataclass(frozen=True, slots=True)
class Caller:
    org_id: int
    # Set for end users: lookups then see only this customer and the fleets it heads.
    customer_id: int | None = None


class Gatekeeper:
    """Authenticates the Authorization header and applies the caller's rate limit."""

    def __init__(self, settings: Settings) -> None:
        processes = settings.workers * settings.instances
        self.tokens = EndUserTokens.from_settings(settings)
        self.key_limiter = RateLimiter.share_of(settings.rate_limit, settings.rate_limit_burst, processes)
        self.user_limiter = RateLimiter.share_of(settings.user_rate_limit, settings.user_rate_limit_burst, processes)
        # One Caller per org for API keys: nothing to allocate per request.
        self._orgs: dict[int, Caller] = {}

    async def admit(self, authorization: str | None, api_keys: ApiKeyAuthenticator, cost: int = 1) -> Caller:
        """The caller; raises Unauthenticated or RateLimited. `cost` is the request's operations."""
        if authorization and self.tokens is not None:
            scheme, _, credential = authorization.partition(" ")
            credential = credential.strip()
            if scheme.lower() == "bearer" and looks_like_jwt(credential):
                user = self.tokens.verify(credential)
                if self.user_limiter is not None:
                    self.user_limiter.take((user.org_id, user.customer_id), cost)
                return Caller(user.org_id, user.customer_id)
        try:
            org_id = await api_keys.org_for(authorization)
        except Unauthenticated:
            if self.tokens is None and authorization and looks_like_jwt(authorization.partition(" ")[2].strip()):
                raise Unauthenticated("end-user tokens are not enabled on this gateway") from None
            raise
        if self.key_limiter is not None:
            # org_for accepted the key, so it is `Bearer lgw_<12 hex prefix>_…`: the prefix names it.
            self.key_limiter.take(authorization.partition("_")[2][:12], cost)  # type: ignore[union-attr]
        caller = self._orgs.get(org_id)
        if caller is None:
            if len(self._orgs) >= 10_000:
                self._orgs.clear()
            caller = self._orgs[org_id] = Caller(org_id)
        return caller
