"""Identifier normalisation: the one definition used by lookups and imports alike."""

from __future__ import annotations

import re

from gateway.domain.vocabulary import ENTITY_ID_TYPES, MAX_ENTITY_ID, IdentifierType

MAX_VALUE_LENGTH = 256

# Mobile numbers are written in many ways; "+44 (20) 7946-0958" and
# "4420 79460958" are the same number.
_MOBILE_NOISE = re.compile(r"[\s\-()\[\]]")
_DIGITS = re.compile(r"[0-9]+")


def normalise(type_: IdentifierType, value: str) -> str:
    """The stored, comparable form of an identifier value."""
    if type_ is IdentifierType.EMAIL:
        return value.strip().lower()
    if type_ is IdentifierType.MOBILE:
        return _MOBILE_NOISE.sub("", value).removeprefix("+")
    if type_ in ENTITY_ID_TYPES:
        return value.strip()
    return value


def parse_entity_id(value: str) -> int | None:
    """A 64-bit entity id from its decimal text, or None when it cannot be one."""
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ENTITY_ID else None
