"""Keys that verify end-user tokens: key material read and checked, and each org's own keys.

Deployment-wide keys come from files (--jwt-*) and vouch for every org. An
org's keys are stored with the org (`loyalty-gateway token-key add`) and vouch
for that org alone; each worker keeps an org's keys for the API key cache
lifetime, so a revoked key stops verifying within it.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import HMACAlgorithm

from gateway.db.database import Database
from gateway.db.refreshing import RefreshingCache
from gateway.db.token_keys import StoredTokenKey, any_token_keys, find_token_keys

logger = logging.getLogger("gateway.access.token_keys")

# RFC 7518 3.2: an HS256 key must be at least as long as the hash.
MIN_SECRET_BYTES = 32
# For org keys (the deployment-wide files keep their rules): NIST's floor for RSA signatures.
MIN_RSA_BITS = 2048
ALGORITHMS = ("HS256", "RS256", "ES256")


class TokenConfigurationError(ValueError):
    """Keys that cannot be used (missing file, wrong kind of key …)."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    algorithm: str  # the only algorithm it may verify
    key: Any  # an HS256 secret (bytes), a public key, or a PyJWK
    kid: str | None = None
    audience: str | None = None  # None: a token must carry no `aud`
    issuer: str | None = None  # None: any `iss`, or none


@dataclass(frozen=True, slots=True)
class OrgKeys:
    keys: tuple[VerificationKey, ...]
    expires_at: float  # time.monotonic() until which a token they verified may be trusted without them


class OrgTokenKeys:
    """Each org's live keys, read from the database and kept per worker for `ttl_seconds`."""

    def __init__(self, database: Database, ttl_seconds: float) -> None:
        self._database = database
        self._orgs: RefreshingCache[int, tuple[VerificationKey, ...]] = RefreshingCache(self._read, ttl_seconds)
        self._any: RefreshingCache[None, bool] = RefreshingCache(self._read_any, ttl_seconds)

    async def keys_for(self, org_id: int) -> OrgKeys:
        entry = await self._orgs.entry(org_id)
        # A token verified with them is trusted until they are due to be read again.
        return OrgKeys(entry.value, entry.refresh_at)

    async def any_keys(self) -> bool:
        """Whether some org has a live key."""
        return await self._any.get(None)

    async def _read(self, org_id: int) -> tuple[VerificationKey, ...]:
        stored = await find_token_keys(self._database, org_id)
        return tuple(key for row in stored if (key := _usable(org_id, row)) is not None)

    async def _read_any(self, _: None) -> bool:
        return await any_token_keys(self._database)


def verification_key(stored: StoredTokenKey) -> VerificationKey:
    """A stored org key, ready to verify with."""
    key: Any
    if stored.format == "secret":
        key = checked_secret(stored.material, stored.key_id)
    elif stored.format == "pem":
        key = load_pem_public_key(stored.material)
        if algorithm_of(key) != stored.algorithm:
            raise TokenConfigurationError(f"token key {stored.key_id} is not an {stored.algorithm} key")
    else:
        key = jwt.PyJWK(json.loads(stored.material), stored.algorithm)
    return VerificationKey(stored.algorithm, key, stored.kid, stored.audience, stored.issuer)


def _usable(org_id: int, stored: StoredTokenKey) -> VerificationKey | None:
    try:
        return verification_key(stored)
    except (ValueError, UnsupportedAlgorithm, jwt.PyJWTError):
        # Checked when it was added, so only a row changed by hand gets here: that key verifies nothing.
        logger.error("token key %s of org %d cannot be read; it verifies nothing", stored.key_id, org_id)
        return None


# --- key material -----------------------------------------------------------------------------------------------


def read_key_file(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise TokenConfigurationError(f"cannot read {path}: {error.strerror}") from None


def checked_secret(material: bytes, where: str) -> bytes:
    """An HS256 secret (surrounding whitespace ignored)."""
    secret = material.strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise TokenConfigurationError(f"{where}: an HS256 secret must be at least {MIN_SECRET_BYTES} bytes long")
    try:
        HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(secret)
    except jwt.InvalidKeyError:
        raise TokenConfigurationError(f"{where}: a public key or certificate is not an HS256 secret") from None
    return secret


def pem_public_key(material: bytes, where: str) -> Any:
    try:
        key = load_pem_public_key(material)
    except (ValueError, UnsupportedAlgorithm):
        raise TokenConfigurationError(f"{where} is not a PEM public key") from None
    algorithm_of(key, where)
    return key


def algorithm_of(key: Any, where: str = "a public key") -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise TokenConfigurationError(f"{where}: only RSA (RS256) and P-256 EC (ES256) public keys are accepted")


def new_key_id() -> str:
    return f"tk_{secrets.token_hex(6)}"


def org_keys_from_file(
    kind: str, path: str | Path, *, issuer: str | None = None, audience: str | None = None
) -> list[StoredTokenKey]:
    """The keys a `token-key add` file holds (kind: secret, pem or jwks), checked, each with a new id."""
    material = read_key_file(path)
    where = str(path)
    if kind == "secret":
        secret = checked_secret(material, where)
        return [StoredTokenKey(new_key_id(), None, "HS256", "secret", secret, issuer, audience)]
    if kind == "pem":
        key = pem_public_key(material, where)
        algorithm = _strong_enough(key, where)
        spki = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return [StoredTokenKey(new_key_id(), None, algorithm, "pem", spki, issuer, audience)]
    return [
        StoredTokenKey(new_key_id(), jwk.get("kid"), algorithm, "jwk", _canonical(jwk), issuer, audience)
        for jwk, algorithm in _jwks(material, where)
    ]


def _jwks(material: bytes, where: str) -> list[tuple[dict[str, Any], str]]:
    """Each public signing key of a JWKS, with its algorithm; any other member is an error."""
    try:
        document = json.loads(material)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TokenConfigurationError(f"{where} is not JSON") from None
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list) or not members:
        raise TokenConfigurationError(f'{where}: a JWKS is an object with a non-empty "keys" array')
    found = []
    kids: set[str] = set()
    for number, member in enumerate(members, start=1):
        name = f"{where}: key {number}"
        if not isinstance(member, dict):
            raise TokenConfigurationError(f"{name} is not a JSON object")
        kid = member.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid):
            raise TokenConfigurationError(f"{name}: `kid` must be a non-empty string")
        if kid in kids:
            raise TokenConfigurationError(f"{name}: kid {kid!r} is there twice")
        if member.get("use", "sig") != "sig":
            raise TokenConfigurationError(f"{name} is for {member['use']!r}, not for signatures (`use`: `sig`)")
        try:
            jwk = jwt.PyJWK(member)
        except jwt.PyJWTError as error:
            raise TokenConfigurationError(f"{name} is not a usable JWK: {error}") from None
        if jwk.algorithm_name not in ("RS256", "ES256"):
            raise TokenConfigurationError(f"{name} is {jwk.algorithm_name}; use RS256 or ES256")
        if not isinstance(jwk.key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
            raise TokenConfigurationError(f"{name} is a private key: give only its public part")
        if _strong_enough(jwk.key, name) != jwk.algorithm_name:
            raise TokenConfigurationError(f"{name}: its `alg` does not fit its key type")
        if kid is not None:
            kids.add(kid)
        found.append((member, jwk.algorithm_name))
    return found


def _strong_enough(key: Any, where: str) -> str:
    algorithm = algorithm_of(key, where)
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise TokenConfigurationError(f"{where}: an RSA key of {key.key_size} bits; use at least {MIN_RSA_BITS}")
    return algorithm


def _canonical(jwk: dict[str, Any]) -> bytes:
    return json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
