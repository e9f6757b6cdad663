"""End-user tokens: signed JWTs that let a mobile app read one customer's balance.

A token names an org (`org`, an integer) and a customer (`sub`, the
customer's entity id as a decimal string) and must expire (`exp`). It is
signed with HS256 and a secret, or RS256/ES256 and a public key (PEM or JWK).
The keys are the org's own (`token-key add`), which vouch for that org alone,
or the deployment-wide ones (--jwt-*), which vouch for every org: the
single-issuer choice. The algorithm a token names picks the key *kind*, never
the other way round: an HS256 token is only ever checked against secrets, so
a public key cannot be used as an HMAC secret, and `alg: none` is refused.
See docs/end-user-tokens.md.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt

from gateway.access.token_keys import (
    ALGORITHMS,
    MIN_SECRET_BYTES,
    OrgKeys,
    TokenConfigurationError,
    VerificationKey,
    algorithm_of,
    checked_secret,
    pem_public_key,
    read_key_file,
)
from gateway.config import Settings
from gateway.domain.vocabulary import MAX_ENTITY_ID
from gateway.errors import Unauthenticated

__all__ = ["MIN_SECRET_BYTES", "EndUser", "EndUserTokens", "TokenConfigurationError", "looks_like_jwt", "mint"]

# Verified tokens are remembered (until they expire) so a token used many
# times is checked once; a full cache is simply emptied.
_CACHE_LIMIT = 10_000
# Whatever key a token names, or whichever org: a refusal must not tell an org's keys, or the org, exist.
_BAD_SIGNATURE = "the end-user token's signature does not verify"


class OrgKeySource(Protocol):
    async def keys_for(self, org_id: int) -> OrgKeys: ...

    async def any_keys(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class EndUser:
    org_id: int
    customer_id: int
    # Until when (time.time(), the leeway included) the token is accepted; not part of who the user is.
    expires_at: float = field(default=0.0, compare=False)


@dataclass(frozen=True, slots=True)
class _Verified:
    user: EndUser
    not_before: float
    expires_at: float
    # time.monotonic() until which the key that verified it is known to be live (an org key can be revoked).
    key_live_until: float


def looks_like_jwt(credential: str) -> bool:
    """JWS compact form: three base64url parts (API keys are `lgw_…` and have no dots)."""
    return credential.count(".") == 2


class EndUserTokens:
    """Verifies end-user tokens with the deployment-wide keys (every org) and each org's own keys (that org)."""

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        public_keys: list[Any] | None = None,
        jwks: list[jwt.PyJWK] | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 30.0,
        org_keys: OrgKeySource | None = None,
    ) -> None:
        keys = []
        if secret is not None:
            keys.append(VerificationKey("HS256", checked_secret(secret, "the JWT secret"), None, audience, issuer))
        for key in public_keys or ():
            keys.append(VerificationKey(algorithm_of(key), key, None, audience, issuer))
        for jwk in jwks or ():
            if jwk.algorithm_name not in ("RS256", "ES256"):
                raise TokenConfigurationError(f"JWKS key {jwk.key_id!r} is {jwk.algorithm_name}; use RS256 or ES256")
            keys.append(VerificationKey(jwk.algorithm_name, jwk, jwk.key_id or None, audience, issuer))
        # The single-issuer choice: these vouch for whatever org a token names.
        self._deployment_keys = tuple(keys)
        self._org_keys = org_keys
        self._leeway = leeway
        self._cache: dict[str, _Verified] = {}

    @classmethod
    def from_settings(cls, settings: Settings, org_keys: OrgKeySource | None = None) -> EndUserTokens:
        """The verifier for the configured deployment-wide keys (perhaps none) and, once given, each org's keys."""
        secret = None
        if settings.jwt_secret_file:
            secret = checked_secret(read_key_file(settings.jwt_secret_file), settings.jwt_secret_file)
        public_keys = [
            pem_public_key(read_key_file(path.strip()), path.strip())
            for path in (settings.jwt_public_key_files or "").split(",")
            if path.strip()
        ]
        jwks = None
        if settings.jwt_jwks_file:
            try:
                jwks = jwt.PyJWKSet.from_json(read_key_file(settings.jwt_jwks_file).decode()).keys
            except (jwt.PyJWKError, jwt.PyJWKSetError, json.JSONDecodeError, UnicodeDecodeError) as error:
                raise TokenConfigurationError(f"{settings.jwt_jwks_file}: not a usable JWKS: {error}") from None
        return cls(
            secret=secret,
            public_keys=public_keys,
            jwks=jwks,
            audience=settings.jwt_audience or None,
            issuer=settings.jwt_issuer or None,
            leeway=settings.jwt_leeway,
            org_keys=org_keys,
        )

    def use_org_keys(self, org_keys: OrgKeySource) -> None:
        """Verify tokens with each org's own keys too (the app's lifespan gives the store it opens)."""
        self._org_keys = org_keys

    async def verify(self, token: str) -> EndUser:
        """The end user a valid token names; raises Unauthenticated."""
        cached = self._cache.get(token)
        if cached is not None:
            now = time.time()
            if (
                cached.not_before - self._leeway <= now < cached.expires_at + self._leeway
                and time.monotonic() < cached.key_live_until
            ):
                return cached.user
            del self._cache[token]
        claims, key_live_until = await self._decode(token)
        user = EndUser(_org_id(claims), _customer_id(claims), float(claims["exp"]) + self._leeway)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        not_before = max(float(claims.get("nbf", 0)), float(claims.get("iat", 0)))
        self._cache[token] = _Verified(user, not_before, float(claims["exp"]), key_live_until)
        return user

    async def _decode(self, token: str) -> tuple[dict[str, Any], float]:
        """The verified claims, and until when the key that verified them is known to be live."""
        if not self._deployment_keys and not await self._any_org_keys():
            raise Unauthenticated("end-user tokens are not enabled on this gateway")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the bearer token is neither an API key nor a valid JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise Unauthenticated(f"end-user tokens signed with {algorithm!r} are not accepted")
        kid = header.get("kid")
        # Deployment-wide keys first: a single-issuer deployment verifies without the database.
        candidates = _candidates(self._deployment_keys, algorithm, kid)
        if candidates and (claims := self._verified(token, algorithm, candidates)) is not None:
            return claims, math.inf
        if self._org_keys is None or not await self._any_org_keys():
            # Deployment-wide keys alone: which algorithms they take is no org's secret.
            if all(key.algorithm != algorithm for key in self._deployment_keys):
                raise Unauthenticated(f"end-user tokens signed with {algorithm!r} are not accepted")
            raise Unauthenticated(_BAD_SIGNATURE)
        # Only the named org's keys may vouch for it. The claim is read before the signature is checked, but
        # the signature covers it: a key of org A verifies no token naming org B.
        org_id = _org_id(_unverified_claims(token))
        org = await self._org_keys.keys_for(org_id)
        candidates = _candidates(org.keys, algorithm, kid)
        claims = self._verified(token, algorithm, candidates) if candidates else None
        if claims is None or claims.get("org") != org_id:
            raise Unauthenticated(_BAD_SIGNATURE)
        return claims, org.expires_at

    async def _any_org_keys(self) -> bool:
        return self._org_keys is not None and await self._org_keys.any_keys()

    def _verified(self, token: str, algorithm: str, keys: list[VerificationKey]) -> dict[str, Any] | None:
        """The claims, checked with the first key whose signature matches; None when none does."""
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=[algorithm],
                    audience=key.audience,
                    issuer=key.issuer,
                    leeway=self._leeway,
                    options={"require": ["exp", "sub", "org"]},
                )
            except jwt.InvalidSignatureError:
                continue  # another key of the same kind may have signed it (key rotation)
            except jwt.InvalidTokenError as error:
                # This key's signature matched: its own audience and issuer rules decide.
                raise Unauthenticated(_reason(error)) from None
        return None


def _candidates(keys: tuple[VerificationKey, ...], algorithm: str, kid: Any) -> list[VerificationKey]:
    """The keys that may verify a token: of its algorithm only, and only the one its `kid` names, if any."""
    if isinstance(kid, str) and any(key.kid == kid for key in keys):
        return [key for key in keys if key.kid == kid and key.algorithm == algorithm]
    return [key for key in keys if key.algorithm == algorithm]


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(_reason(error)) from None
    if "org" not in claims:
        raise Unauthenticated("the end-user token has no 'org' claim")
    return claims


def mint(
    secret: bytes,
    *,
    org_id: int,
    customer_id: int,
    ttl_seconds: int,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """An HS256 end-user token (for development and tests; production backends mint their own)."""
    now = int(time.time())
    claims: dict[str, Any] = {"org": org_id, "sub": str(customer_id), "iat": now, "exp": now + ttl_seconds}
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


def _reason(error: jwt.InvalidTokenError) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "the end-user token has expired"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "the end-user token is not valid yet"
    if isinstance(error, jwt.InvalidAudienceError):
        return "the end-user token is not meant for this audience"
    if isinstance(error, jwt.InvalidIssuerError):
        return "the end-user token comes from an unknown issuer"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the end-user token has no {error.claim!r} claim"
    if isinstance(error, jwt.InvalidSignatureError):
        return "the end-user token's signature does not verify"
    return "the end-user token is not valid"


def _org_id(claims: dict[str, Any]) -> int:
    org = claims["org"]
    if isinstance(org, bool) or not isinstance(org, int) or org <= 0:
        raise Unauthenticated("the end-user token's `org` claim must be a positive integer")
    return org


def _customer_id(claims: dict[str, Any]) -> int:
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.isascii() or not sub.isdigit() or not 0 < int(sub) <= MAX_ENTITY_ID:
        raise Unauthenticated("the end-user token's `sub` claim must be a customer id (decimal digits)")
    return int(sub)
