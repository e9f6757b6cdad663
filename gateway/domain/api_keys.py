"""API key format: `lgw_<prefix>_<secret>`.

The prefix is public (it finds the stored key and tells keys apart in
listings); the secret carries 256 bits of randomness. Only a SHA-256 of the
whole key is stored: with that much entropy a slow password hash adds
nothing but latency.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_KEY = re.compile(r"^lgw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    prefix: str
    key_hash: bytes


def generate_key() -> NewKey:
    prefix = secrets.token_hex(6)
    key = f"lgw_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, prefix=prefix, key_hash=hash_key(key))


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def key_prefix(key: str) -> str | None:
    """The public prefix of a well-formed key, else None."""
    match = _KEY.match(key)
    return match[1] if match else None


def hashes_match(stored: bytes, presented: bytes) -> bool:
    return hmac.compare_digest(stored, presented)
