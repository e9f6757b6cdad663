"""Who is calling, and whether they may call now.

A bearer credential is an API key (`lgw_<prefix>_<secret>`: a backend or a
web app, reading anything in its org) or an end-user token (a JWT: one
customer, reading only their own balance and the fleets they head). Each
kind has its own rate limit, counted per key and per end user in cost units:
what the request's lookups weigh, known before any of them runs.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from gateway.access.api_keys import ApiKeyAuthenticator
from gateway.access.end_user_tokens import EndUserTokens, looks_like_jwt
from gateway.access.rate_limits import Budget, RateLimiter
from gateway.config import Settings
from gateway.errors import RateLimited
from gateway.observability.metrics import RATE_LIMITED_API_KEY, RATE_LIMITED_END_USER


@dataclass(frozen=True, slots=True)
class Caller:
    org_id: int
    # Set for end users: lookups then see only this customer and the fleets it heads.
    customer_id: int | None = None
    # For end users, until when (time.time()) their token is accepted: when their live subscriptions end.
    expires_at: float | None = None


class Gatekeeper:
    """Authenticates the Authorization header and applies the caller's rate limit."""

    def __init__(self, settings: Settings) -> None:
        processes = settings.workers * settings.instances
        self.tokens = EndUserTokens.from_settings(settings)
        self.key_limiter = RateLimiter.share_of(settings.rate_limit, settings.rate_limit_burst, processes)
        self.user_limiter = RateLimiter.share_of(settings.user_rate_limit, settings.user_rate_limit_burst, processes)
        # One Caller per org for API keys: nothing to allocate per request.
        self._orgs: dict[int, Caller] = {}

    async def admit(self, authorization: str | None, api_keys: ApiKeyAuthenticator) -> Caller:
        """The caller; raises Unauthenticated. What the request may cost is charged once it is known."""
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            credential = credential.strip()
            if scheme.lower() == "bearer" and looks_like_jwt(credential):
                user = await self.tokens.verify(credential)
                return Caller(user.org_id, user.customer_id, user.expires_at)
        return self._caller_of(await api_keys.org_for(authorization))

    def known(self, authorization: str | None, api_keys: ApiKeyAuthenticator) -> Caller | None:
        """The caller of an API key accepted moments ago, with nothing to await (nearly every request);
        None: admit() decides."""
        org_id = api_keys.accepted(authorization)
        return self._caller_of(org_id) if org_id is not None else None

    def _caller_of(self, org_id: int) -> Caller:
        caller = self._orgs.get(org_id)
        if caller is None:
            if len(self._orgs) >= 10_000:
                self._orgs.clear()
            caller = self._orgs[org_id] = Caller(org_id)
        return caller

    def charge(self, caller: Caller, authorization: str, cost: int) -> Budget | None:
        """Spend `cost` units of the caller's budget (its end user's, or its API key's); raises RateLimited.
        None when that kind of caller is not rate limited."""
        limiter, subject = self._budget_of(caller, authorization)
        if limiter is None:
            return None
        try:
            return limiter.take(subject, cost)
        except RateLimited:
            _refused(caller).inc()
            raise

    def afford(self, caller: Caller, authorization: str, at_least: int) -> None:
        """Raise RateLimited when the caller's budget cannot cover `at_least` units now; spend nothing."""
        limiter, subject = self._budget_of(caller, authorization)
        if limiter is None:
            return
        try:
            limiter.check(subject, at_least)
        except RateLimited:
            _refused(caller).inc()
            raise

    def _budget_of(self, caller: Caller, authorization: str) -> tuple[RateLimiter | None, Hashable]:
        if caller.customer_id is not None:
            return self.user_limiter, (caller.org_id, caller.customer_id)
        # admit accepted the key, so it is `Bearer lgw_<12 hex prefix>_…`: the prefix names it.
        return self.key_limiter, authorization.partition("_")[2][:12]


def _refused(caller: Caller) -> Any:
    return RATE_LIMITED_END_USER if caller.customer_id is not None else RATE_LIMITED_API_KEY
