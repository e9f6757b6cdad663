"""parse_line's fast path: the common line shapes checked in one go, everything else left to records.parse_line.

records.parse_line decodes with a hook that refuses duplicate keys and checks a line field by field; over the
millions of lines of a first load that is most of an import's Python time. Here customer, fleet and balance
lines are decoded with orjson (in C) and validated with plain type and key checks. A line gets a record from
here only when it is valid beyond doubt; anything unusual or invalid (org and program lines too) goes to
records.parse_line, so every record and every message is that function's: this module only makes it faster.
It leans on records' private tables and patterns on purpose, so that both paths share one definition of each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

import orjson

from gateway.domain.identifiers import MAX_VALUE_LENGTH, normalise
from gateway.domain.vocabulary import MAX_ENTITY_ID, EntityType, IdentifierType, Source
from gateway.importer.records import (
    _ENTITY_TYPES,
    _IDENTIFIER_TYPES,
    _POINTS_QUANTUM,
    _POINTS_TEXT,
    _SOURCES,
    MAX_POINTS,
    MAX_PROGRAM_ID,
    POINTS_DECIMALS,
    BalanceRecord,
    CustomerRecord,
    FleetRecord,
    IdentifierRecord,
    Record,
    RecordError,
    _version,
)
from gateway.importer.records import parse_line as _precise

_VALUE = attrgetter("value")
_Parser = Callable[[dict[str, Any], str], Record | None]


class _Inexact(Exception):
    """orjson read a JSON number as a float (a fraction, an exponent or beyond 64 bits): not to be trusted."""


# records' decoder without the duplicate-key hook: duplicates are found by counting (below).
_DECIMAL_DECODER = json.JSONDecoder(parse_float=Decimal)


def parse_line(text: str) -> Record:
    """The record one non-blank line describes, exactly as records.parse_line; raises RecordError."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _precise(text)
    # A \u escape can spell a colon (see the count below), a NUL or a lone surrogate; such lines are rare.
    # (Looking for a backslash first is the cheaper test, and most lines have none.)
    if type(obj) is not dict or ("\\" in text and "\\u" in text):
        return _precise(text)
    kind = obj.get("kind")
    parser = _FAST.get(kind) if type(kind) is str else None
    if parser is None:
        return _precise(text)
    try:
        record = parser(obj, text)
    except _Inexact:
        record = _parse_exactly(parser, text)
    return record if record is not None else _precise(text)


def _parse_exactly(parser: _Parser, text: str) -> Record | None:
    """The line decoded again with Decimals for its numbers, as records decodes it."""
    # orjson accepted the line, so it holds no NaN, control character or surrogate: only numbers can differ.
    try:
        return parser(_DECIMAL_DECODER.decode(text), text)
    except (ValueError, RecursionError, _Inexact):
        return None


# Duplicate keys: a decoder keeps the last of a repeated key, so a duplicate shows as a dict with fewer keys than
# the text has. Every key is followed by one colon and colons occur nowhere else but inside strings, so
#     text.count(":") = keys written + colons inside all string literals
#                    >= keys decoded + colons inside the strings that were kept,
# since no \u escape can make a colon (checked above): equality means no key was dropped. A parser counts the
# colons of the strings it keeps; one it does not count can only make the sum smaller and send the line on.
#
# Each parser returns None for anything it does not vouch for; records.parse_line then says what is wrong.
# Key sets are checked by size and then by reading every expected key: a KeyError means another key set.


def _parse_customer(obj: dict[str, Any], text: str) -> CustomerRecord | None:
    colons = len(obj)
    as_of = None
    if colons == 5:
        as_of = _as_of(obj.get("asOf"))
        if as_of is None:
            return None
        colons += obj["asOf"].count(":")
    elif colons != 4:
        return None
    try:
        customer_id = obj["id"]
        org_id = obj["orgId"]
        raw = obj["identifiers"]
    except KeyError:
        return None
    if (
        type(customer_id) is not int
        or not 0 < customer_id <= MAX_ENTITY_ID
        or type(org_id) is not int
        or not 0 < org_id <= MAX_ENTITY_ID
        or type(raw) is not list
    ):
        return None
    identifiers = []
    for item in raw:
        if type(item) is not dict:
            return None
        size = len(item)
        account_id = ""  # absent, null and "" all mean "no account", stored as ''
        try:
            if size == 4:
                account_id = item["accountId"]
                if account_id is None:
                    account_id = ""
                elif type(account_id) is not str or len(account_id) > MAX_VALUE_LENGTH:
                    return None
            elif size != 3:
                return None
            source = item["source"]
            type_ = item["type"]
            raw_value = item["value"]
        except KeyError:
            return None
        if type(source) is not str or type(type_) is not str or type(raw_value) is not str:
            return None
        source = _SOURCES.get(source)
        type_ = _IDENTIFIER_TYPES.get(type_)
        if source is None or type_ is None or not raw_value or len(raw_value) > MAX_VALUE_LENGTH:
            return None
        value = normalise(type_, raw_value)
        if not value.strip():
            return None
        colons += size
        identifiers.append(_new_identifier(source, account_id, type_, value))
    # The same identifier twice once normalised; distinct values (the cheaper test) rule that out.
    count = len(identifiers)
    if count > 1 and len(set(map(_VALUE, identifiers))) != count and len(set(identifiers)) != count:
        return None
    # Colons inside values are rare: they are counted only when the text has more colons than keys.
    written = text.count(":")
    if written != colons and written != colons + sum(
        item["value"].count(":") + (item.get("accountId") or "").count(":") for item in raw
    ):
        return None
    return _new_customer(customer_id, org_id, tuple(identifiers), as_of)


def _parse_fleet(obj: dict[str, Any], text: str) -> FleetRecord | None:
    colons = len(obj)
    as_of = None
    if colons == 6:
        as_of = _as_of(obj.get("asOf"))
        if as_of is None:
            return None
        colons += obj["asOf"].count(":")
    elif colons != 5:
        return None
    try:
        fleet_id = obj["id"]
        org_id = obj["orgId"]
        raw_external_id = obj["externalId"]
        user_id = obj["primaryUserId"]
    except KeyError:
        return None
    if (
        type(fleet_id) is not int
        or not 0 < fleet_id <= MAX_ENTITY_ID
        or type(org_id) is not int
        or not 0 < org_id <= MAX_ENTITY_ID
        or type(user_id) is not int
        or not 0 < user_id <= MAX_ENTITY_ID
        or type(raw_external_id) is not str
        or not raw_external_id
        or len(raw_external_id) > MAX_VALUE_LENGTH
    ):
        return None
    external_id = normalise(IdentifierType.EXTERNAL_ID, raw_external_id)
    if not external_id.strip() or text.count(":") != colons + raw_external_id.count(":"):
        return None
    return _new_fleet(fleet_id, org_id, external_id, user_id, as_of)


def _parse_balance(obj: dict[str, Any], text: str) -> BalanceRecord | None:
    colons = len(obj)
    as_of = None
    if colons == 9:
        as_of = _as_of(obj.get("asOf"))
        if as_of is None:
            return None
        colons += obj["asOf"].count(":")
    elif colons != 8:
        return None
    try:
        org_id = obj["orgId"]
        entity_type = obj["entityType"]
        entity_id = obj["entityId"]
        program_id = obj["programId"]
        main = obj["mainPoints"]
        delayed = obj["delayedAccrualPoints"]
        external = obj["externalTriggerBasedPoints"]
    except KeyError:
        return None
    if (
        type(org_id) is not int
        or not 0 < org_id <= MAX_ENTITY_ID
        or type(entity_type) is not str
        or type(entity_id) is not int
        or not 0 < entity_id <= MAX_ENTITY_ID
        or type(program_id) is not int
        or not 0 < program_id <= MAX_PROGRAM_ID
    ):
        return None
    entity_type = _ENTITY_TYPES.get(entity_type)
    cached = _points_cache.get  # most amounts were met before: no call for them
    try:
        amounts = cached(main), cached(delayed), cached(external)
    except TypeError:  # an array or an object
        return None
    main = amounts[0] if amounts[0] is not None else _points(main)
    delayed = amounts[1] if amounts[1] is not None else _points(delayed)
    external = amounts[2] if amounts[2] is not None else _points(external)
    if entity_type is None or main is None or delayed is None or external is None or text.count(":") != colons:
        return None
    return _new_balance(org_id, entity_type, entity_id, program_id, main, delayed, external, as_of)


# Amounts and timestamps repeat a great deal across a file ("0.000", one export time); both kinds of value are
# immutable, so one parsed object can serve every line that spells it the same way. Bounded by starting over.
_CACHE_SIZE = 4096
_points_cache: dict[str, Decimal] = {}
_as_of_cache: dict[str, datetime] = {}


def _points(value: Any) -> Decimal | None:
    """What records._points makes of a valid amount; None for anything else."""
    kind = type(value)
    if kind is str:
        amount = _points_cache.get(value)
        if amount is None:
            if not _POINTS_TEXT.fullmatch(value):
                return None
            amount = Decimal(value)  # not quantized, as in records: "1.5" stays 1.5
            if len(_points_cache) >= _CACHE_SIZE:
                _points_cache.clear()
            _points_cache[value] = amount
        return amount
    if kind is float:
        raise _Inexact
    if kind is int:
        amount = Decimal(value)
    elif kind is Decimal:
        amount = value
    else:
        return None
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -POINTS_DECIMALS or abs(amount) >= MAX_POINTS:
        return None
    return amount.quantize(_POINTS_QUANTUM)


def _as_of(value: Any) -> datetime | None:
    """What records makes of a valid "asOf"; None for anything else (an absent one included)."""
    if type(value) is not str:
        return None
    as_of = _as_of_cache.get(value)
    if as_of is None:
        try:
            as_of = _version({"asOf": value})
        except RecordError:
            return None
        if len(_as_of_cache) >= _CACHE_SIZE:
            _as_of_cache.clear()
        _as_of_cache[value] = as_of
    return as_of


# Building the records. A frozen dataclass's __init__ stores each field through object.__setattr__, a costly call
# per field and most of the cost of a record. Instead a plain twin class with the same slots is filled with
# ordinary stores and the instance then given the record's class: the layouts being the same, the result cannot
# be told from what the record's own constructor makes.


def _unfrozen(cls: type[Any]) -> type[Any]:
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} checks its fields: it must be built by its constructor")
    twin = type(f"_Unfrozen{cls.__name__}", (), {"__slots__": cls.__slots__})
    twin().__class__ = cls  # a TypeError here, at import, should the layouts ever differ
    return twin


_UnfrozenIdentifier = _unfrozen(IdentifierRecord)
_UnfrozenCustomer = _unfrozen(CustomerRecord)
_UnfrozenFleet = _unfrozen(FleetRecord)
_UnfrozenBalance = _unfrozen(BalanceRecord)


def _new_identifier(source: Source, account_id: str, type_: IdentifierType, value: str) -> IdentifierRecord:
    record = _UnfrozenIdentifier()
    record.source = source
    record.account_id = account_id
    record.type = type_
    record.value = value
    record.__class__ = IdentifierRecord
    return record


def _new_customer(
    customer_id: int, org_id: int, identifiers: tuple[IdentifierRecord, ...], as_of: datetime | None
) -> CustomerRecord:
    record = _UnfrozenCustomer()
    record.id = customer_id
    record.org_id = org_id
    record.identifiers = identifiers
    record.as_of = as_of
    record.__class__ = CustomerRecord
    return record


def _new_fleet(fleet_id: int, org_id: int, external_id: str, user_id: int, as_of: datetime | None) -> FleetRecord:
    record = _UnfrozenFleet()
    record.id = fleet_id
    record.org_id = org_id
    record.external_id = external_id
    record.primary_user_id = user_id
    record.as_of = as_of
    record.__class__ = FleetRecord
    return record


def _new_balance(
    org_id: int,
    entity_type: EntityType,
    entity_id: int,
    program_id: int,
    main: Decimal,
    delayed: Decimal,
    external: Decimal,
    as_of: datetime | None,
) -> BalanceRecord:
    record = _UnfrozenBalance()
    record.org_id = org_id
    record.entity_type = entity_type
    record.entity_id = entity_id
    record.program_id = program_id
    record.main_points = main
    record.delayed_accrual_points = delayed
    record.external_trigger_based_points = external
    record.as_of = as_of
    record.__class__ = BalanceRecord
    return record


_FAST: dict[str, _Parser] = {"customer": _parse_customer, "fleet": _parse_fleet, "balance": _parse_balance}
