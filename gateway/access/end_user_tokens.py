"""End-user tokens: signed JWTs that let a mobile app read one customer's balance.

A token names an org (`org`, an integer) and a customer (`sub`, the
customer's entity id as a decimal string) and must expire (`exp`). It is
signed with HS256 and the configured secret, or RS256/ES256 and one of the
configured public keys (PEM files or a JWKS file). The algorithm a token
names picks the key *kind*, never the other way round: an HS256 token is
only ever checked against the secret, so a public key cannot be used as an
HMAC secret, and `alg: none` is refused. See docs/end-user-tokens.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.config import Settings
from gateway.domain.vocabulary import MAX_ENTITY_ID
from gateway.errors import Unauthenticated

# RFC 7518 3.2: an HS256 key must be at least as long as the hash.
MIN_SECRET_BYTES = 32
# Verified tokens are remembered (until they expire) so a token used many
# times is checked once; a full cache is simply emptied.
_CACHE_LIMIT = 10_000


class TokenConfigurationError(ValueError):
    """The configured keys cannot be used (missing file, wrong kind of key …)."""


@dataclass(frozen=True, slots=True)
class EndUser:
    org_id: int
    customer_id: int


@dataclass(frozen=True, slots=True)
class _Verified:
    user: EndUser
    not_before: float
    expires_at: float


def looks_like_jwt(credential: str) -> bool:
    """JWS compact form: three base64url parts (API keys are `lgw_…` and have no dots)."""
    return credential.count(".") == 2


class EndUserTokens:
    def __init__(
        self,
        *,
        secret: bytes | None = None,
        public_keys: list[Any] | None = None,
        jwks: list[jwt.PyJWK] | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 30.0,
    ) -> None:
        if secret is not None and len(secret) < MIN_SECRET_BYTES:
            raise TokenConfigurationError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes long")
        self._secret = secret
        # Keys by the only algorithm each may verify.
        self._keys: dict[str, list[Any]] = {}
        if secret is not None:
            self._keys["HS256"] = [secret]
        for key in public_keys or ():
            self._keys.setdefault(_algorithm_of(key), []).append(key)
        self._by_kid: dict[str, jwt.PyJWK] = {}
        for jwk in jwks or ():
            if jwk.algorithm_name not in ("RS256", "ES256"):
                raise TokenConfigurationError(f"JWKS key {jwk.key_id!r} is {jwk.algorithm_name}; use RS256 or ES256")
            if jwk.key_id:
                self._by_kid[jwk.key_id] = jwk
            self._keys.setdefault(jwk.algorithm_name, []).append(jwk)
        if not self._keys:
            raise TokenConfigurationError("no key to verify end-user tokens with")
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway
        self._cache: dict[str, _Verified] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> EndUserTokens | None:
        """The verifier for the configured keys; None when end-user tokens are not enabled."""
        if not (settings.jwt_secret_file or settings.jwt_public_key_files or settings.jwt_jwks_file):
            return None
        secret = None
        if settings.jwt_secret_file:
            secret = _read(settings.jwt_secret_file).strip()
        public_keys = [
            _load_public_key(path.strip()) for path in (settings.jwt_public_key_files or "").split(",") if path.strip()
        ]
        jwks = None
        if settings.jwt_jwks_file:
            try:
                jwks = jwt.PyJWKSet.from_json(_read(settings.jwt_jwks_file).decode()).keys
            except (jwt.PyJWKError, jwt.PyJWKSetError, json.JSONDecodeError, UnicodeDecodeError) as error:
                raise TokenConfigurationError(f"{settings.jwt_jwks_file}: not a usable JWKS: {error}") from None
        return cls(
            secret=secret,
            public_keys=public_keys,
            jwks=jwks,
            audience=settings.jwt_audience or None,
            issuer=settings.jwt_issuer or None,
            leeway=settings.jwt_leeway,
        )

    def verify(self, token: str) -> EndUser:
        """The end user a valid token names; raises Unauthenticated."""
        cached = self._cache.get(token)
        if cached is not None:
            now = time.time()
            if cached.not_before - self._leeway <= now < cached.expires_at + self._leeway:
                return cached.user
            del self._cache[token]
        claims = self._decode(token)
        user = EndUser(_org_id(claims), _customer_id(claims))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        not_before = max(float(claims.get("nbf", 0)), float(claims.get("iat", 0)))
        self._cache[token] = _Verified(user, not_before, float(claims["exp"]))
        return user

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the bearer token is neither an API key nor a valid JWT") from None
        algorithm = header.get("alg")
        keys = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if not keys:
            raise Unauthenticated(f"end-user tokens signed with {algorithm!r} are not accepted")
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self._by_kid:
            keys = [self._by_kid[kid]]
        failure: jwt.InvalidTokenError | None = None
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options={"require": ["exp", "sub", "org"]},
                )
            except jwt.InvalidSignatureError as error:
                failure = error  # another key of the same kind may have signed it (key rotation)
            except jwt.InvalidTokenError as error:
                raise Unauthenticated(_reason(error)) from None
        assert failure is not None
        raise Unauthenticated(_reason(failure))


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


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise TokenConfigurationError(f"cannot read {path}: {error.strerror}") from None


def _load_public_key(path: str) -> Any:
    try:
        key = load_pem_public_key(_read(path))
    except ValueError:
        raise TokenConfigurationError(f"{path} is not a PEM public key") from None
    _algorithm_of(key, path)
    return key


def _algorithm_of(key: Any, where: str = "a public key") -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise TokenConfigurationError(f"{where}: only RSA (RS256) and P-256 EC (ES256) public keys are accepted")
