"""One line of an import file: parsed, validated and normalised into a record.

Pure: no I/O and no database. Everything that can be said about a line on its own is checked here; what needs
the rest of the file or the database (references, uniqueness, default programs) is gateway.db.importing's.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.domain.identifiers import MAX_VALUE_LENGTH, normalise
from gateway.domain.vocabulary import (
    MAX_ENTITY_ID,
    REGISTERED_IDENTIFIER_TYPES,
    EntityType,
    IdentifierType,
    Source,
)

MAX_PROGRAM_ID = 2**31 - 1
# numeric(18, 3): 15 digits before the point, 3 after.
MAX_POINTS = Decimal(10) ** 15
POINTS_DECIMALS = 3
_POINTS_QUANTUM = Decimal(1).scaleb(-POINTS_DECIMALS)


class RecordError(ValueError):
    """A line that is not a valid record; `reason` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OrgRecord:
    id: int
    name: str
    dual_eligibility: bool
    primary_identifier: IdentifierType | None


@dataclass(frozen=True, slots=True)
class ProgramRecord:
    id: int
    org_id: int
    name: str
    default: bool


@dataclass(frozen=True, slots=True)
class IdentifierRecord:
    source: Source
    account_id: str  # '' when the line has none, as stored
    type: IdentifierType
    value: str  # normalised, as stored


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: int
    org_id: int
    identifiers: tuple[IdentifierRecord, ...]
    as_of: datetime | None = None  # the engine's version of the identifier set (see BalanceRecord)


@dataclass(frozen=True, slots=True)
class FleetRecord:
    id: int
    org_id: int
    external_id: str
    primary_user_id: int
    as_of: datetime | None = None  # the engine's version of the fleet (see BalanceRecord)


@dataclass(frozen=True, slots=True)
class BalanceRecord:
    org_id: int
    entity_type: EntityType
    entity_id: int
    program_id: int
    main_points: Decimal
    delayed_accrual_points: Decimal
    external_trigger_based_points: Decimal
    # The engine's version of this balance; None: replace whatever is stored.
    as_of: datetime | None = None


Record = OrgRecord | ProgramRecord | CustomerRecord | FleetRecord | BalanceRecord


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of repeated keys silently; a line that says two
    # things about one field is ambiguous, so it is refused.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RecordError(f"invalid JSON: field {json.dumps(key)} appears twice in one object")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise RecordError(f"invalid JSON: {name} is not a JSON value")


# Floats become Decimals straight from their text: point amounts must stay exact.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_unique_keys)

# PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Plain decimal notation: no exponent, no sign but '-', no blanks, at most 15
# significant digits before the point and 3 after it.
_POINTS_TEXT = re.compile(r"-?0*[0-9]{1,15}(?:\.[0-9]{1,3})?")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

_SOURCES = {source.value: source for source in Source}
_IDENTIFIER_TYPES = {type_.value: type_ for type_ in REGISTERED_IDENTIFIER_TYPES}
_ENTITY_TYPES = {entity_type.value: entity_type for entity_type in EntityType}
_SOURCE_NAMES = ", ".join(_SOURCES)
_IDENTIFIER_TYPE_NAMES = ", ".join(sorted(_IDENTIFIER_TYPES))
_ENTITY_TYPE_NAMES = ", ".join(_ENTITY_TYPES)


def parse_line(text: str) -> Record:
    """The record one non-blank line describes; raises RecordError."""
    try:
        obj = _DECODER.decode(text)
    except RecordError:
        raise
    except json.JSONDecodeError as error:
        raise RecordError(f"invalid JSON: {error.msg} at column {error.colno}") from None
    except (ValueError, RecursionError) as error:
        # Integers beyond Python's digit limit, or absurd nesting.
        raise RecordError(f"invalid JSON: {error}") from None
    if type(obj) is not dict:
        raise RecordError(f"a line must be a JSON object, not {_json_type(obj)}")
    kind = obj.get("kind")
    parser = _PARSERS.get(kind) if type(kind) is str else None
    if parser is None:
        if "kind" not in obj:
            raise RecordError('missing field "kind"')
        raise RecordError(f"unknown kind {_show(kind)}; expected one of {', '.join(_PARSERS)}")
    return parser(obj)


# Messages name a field as `field "id"` on the record itself and as
# `identifiers[0].value` inside an identifier; they are only built on error.


def _parse_org(obj: dict[str, Any]) -> OrgRecord:
    _check_fields(obj, "org record", _ORG_REQUIRED, _ORG_OPTIONAL)
    dual = _boolean(obj, "dualEligibility")
    primary: IdentifierType | None = None
    if dual:
        if obj.get("primaryIdentifier") is None:
            raise RecordError('field "primaryIdentifier" is required when "dualEligibility" is true')
        primary = _enum(obj, "primaryIdentifier", _IDENTIFIER_TYPES, _IDENTIFIER_TYPE_NAMES)
    elif obj.get("primaryIdentifier") is not None:
        raise RecordError('field "primaryIdentifier" is only allowed when "dualEligibility" is true')
    return OrgRecord(_id(obj, "id"), _name(obj, "name"), dual, primary)


def _parse_program(obj: dict[str, Any]) -> ProgramRecord:
    _check_fields(obj, "program record", _PROGRAM_REQUIRED)
    return ProgramRecord(
        _id(obj, "id", MAX_PROGRAM_ID), _id(obj, "orgId"), _name(obj, "name"), _boolean(obj, "default")
    )


def _parse_customer(obj: dict[str, Any]) -> CustomerRecord:
    _check_fields(obj, "customer record", _CUSTOMER_REQUIRED, _VERSIONED)
    customer_id = _id(obj, "id")
    org_id = _id(obj, "orgId")
    raw = obj["identifiers"]
    if type(raw) is not list:
        raise RecordError(f'field "identifiers" must be an array, got {_show(raw)}')
    identifiers = tuple([_identifier(item, index) for index, item in enumerate(raw)])
    if len(identifiers) > 1 and len(set(identifiers)) != len(identifiers):
        # The stored key would repeat; the same value in two spellings counts as one.
        first: dict[IdentifierRecord, int] = {}
        for index, identifier in enumerate(identifiers):
            if identifier in first:
                raise RecordError(
                    f"identifiers[{index}] is the same identifier as identifiers[{first[identifier]}] once normalised"
                )
            first[identifier] = index
    return CustomerRecord(customer_id, org_id, identifiers, _version(obj))


def _identifier(item: Any, index: int) -> IdentifierRecord:
    where = _Nested(index)
    if type(item) is not dict:
        raise RecordError(f"{where} must be an object, got {_show(item)}")
    keys = item.keys()
    if keys != _IDENTIFIER_REQUIRED and keys != _IDENTIFIER_ALL:
        _check_fields(item, str(where), _IDENTIFIER_REQUIRED, _IDENTIFIER_OPTIONAL)
    source = _enum(item, "source", _SOURCES, _SOURCE_NAMES, where)
    type_ = _enum(item, "type", _IDENTIFIER_TYPES, _IDENTIFIER_TYPE_NAMES, where)
    # An absent, null or empty accountId all mean "no account", stored as ''.
    account_id = item.get("accountId")
    if account_id is None:
        account_id = ""
    elif account_id:
        account_id = _text(item, "accountId", where)
    elif type(account_id) is not str:
        raise RecordError(f"{where}.accountId must be a string, got {_show(account_id)}")
    raw_value = _text(item, "value", where)
    value = normalise(type_, raw_value)
    if not value.strip():
        raise RecordError(f"{where}.value is empty once normalised, got {_show(raw_value)}")
    return IdentifierRecord(source, account_id, type_, value)


def _parse_fleet(obj: dict[str, Any]) -> FleetRecord:
    _check_fields(obj, "fleet record", _FLEET_REQUIRED, _VERSIONED)
    # Stored the way a FLEET lookup by EXTERNAL_ID normalises what it is sent.
    external_id = normalise(IdentifierType.EXTERNAL_ID, _text(obj, "externalId"))
    if not external_id.strip():
        raise RecordError('field "externalId" must not be blank')
    return FleetRecord(_id(obj, "id"), _id(obj, "orgId"), external_id, _id(obj, "primaryUserId"), _version(obj))


def _parse_balance(obj: dict[str, Any]) -> BalanceRecord:
    _check_fields(obj, "balance record", _BALANCE_REQUIRED, _VERSIONED)
    return BalanceRecord(
        org_id=_id(obj, "orgId"),
        entity_type=_enum(obj, "entityType", _ENTITY_TYPES, _ENTITY_TYPE_NAMES),
        entity_id=_id(obj, "entityId"),
        program_id=_id(obj, "programId", MAX_PROGRAM_ID),
        main_points=_points(obj, "mainPoints"),
        delayed_accrual_points=_points(obj, "delayedAccrualPoints"),
        external_trigger_based_points=_points(obj, "externalTriggerBasedPoints"),
        as_of=_version(obj),
    )


_PARSERS = {
    "org": _parse_org,
    "program": _parse_program,
    "customer": _parse_customer,
    "fleet": _parse_fleet,
    "balance": _parse_balance,
}
_ORG_REQUIRED = frozenset({"kind", "id", "name", "dualEligibility"})
_ORG_OPTIONAL = frozenset({"primaryIdentifier"})
_PROGRAM_REQUIRED = frozenset({"kind", "id", "orgId", "name", "default"})
_CUSTOMER_REQUIRED = frozenset({"kind", "id", "orgId", "identifiers"})
_IDENTIFIER_REQUIRED = frozenset({"source", "type", "value"})
_IDENTIFIER_OPTIONAL = frozenset({"accountId"})
_IDENTIFIER_ALL = _IDENTIFIER_REQUIRED | _IDENTIFIER_OPTIONAL
_FLEET_REQUIRED = frozenset({"kind", "id", "orgId", "externalId", "primaryUserId"})
_BALANCE_POINTS = ("mainPoints", "delayedAccrualPoints", "externalTriggerBasedPoints")
_BALANCE_REQUIRED = frozenset({"kind", "orgId", "entityType", "entityId", "programId", *_BALANCE_POINTS})
_VERSIONED = frozenset({"asOf"})
_NO_FIELDS: frozenset[str] = frozenset()


class _Nested:
    """Where an identifier sits in its customer record, rendered only for a message."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __str__(self) -> str:
        return f"identifiers[{self.index}]"


def _label(field: str, where: _Nested | None) -> str:
    return f'field "{field}"' if where is None else f"{where}.{field}"


def _check_fields(
    obj: dict[str, Any], where: str, required: frozenset[str], optional: frozenset[str] = _NO_FIELDS
) -> None:
    keys = obj.keys()
    if keys == required:
        return
    unknown = keys - required - optional
    if unknown:
        raise RecordError(f"unknown field {json.dumps(min(unknown))} in {where}")
    missing = required - keys
    if missing:
        raise RecordError(f"missing field {json.dumps(min(missing))} in {where}")


def _id(obj: dict[str, Any], field: str, maximum: int = MAX_ENTITY_ID) -> int:
    value = obj[field]
    # type() rather than isinstance(): JSON true must not pass for the id 1.
    if type(value) is not int or not 0 < value <= maximum:
        raise RecordError(f'field "{field}" must be an integer from 1 to {maximum}, got {_show(value)}')
    return value


def _boolean(obj: dict[str, Any], field: str) -> bool:
    value = obj[field]
    if type(value) is not bool:
        raise RecordError(f'field "{field}" must be true or false, got {_show(value)}')
    return value


def _name(obj: dict[str, Any], field: str) -> str:
    value = _text(obj, field, max_length=None)
    if not value.strip():
        raise RecordError(f'field "{field}" must not be blank')
    return value


def _text(
    obj: dict[str, Any], field: str, where: _Nested | None = None, *, max_length: int | None = MAX_VALUE_LENGTH
) -> str:
    """A non-empty string that PostgreSQL can store, of at most max_length characters."""
    value = obj[field]
    if type(value) is not str:
        raise RecordError(f"{_label(field, where)} must be a string, got {_show(value)}")
    if not value:
        raise RecordError(f"{_label(field, where)} must not be empty")
    if max_length is not None and len(value) > max_length:
        raise RecordError(f"{_label(field, where)} is longer than {max_length} characters")
    if _UNSTORABLE.search(value):
        raise RecordError(f"{_label(field, where)} contains a NUL character or an unpaired surrogate")
    return value


def _enum(obj: dict[str, Any], field: str, members: dict[str, Any], names: str, where: _Nested | None = None) -> Any:
    value = obj[field]
    member = members.get(value) if type(value) is str else None
    if member is None:
        raise RecordError(f"{_label(field, where)} must be one of {names}, got {_show(value)}")
    return member


def _points(obj: dict[str, Any], field: str) -> Decimal:
    value = obj[field]
    kind = type(value)
    if kind is str:
        if _POINTS_TEXT.fullmatch(value):
            return Decimal(value)
        if not _DECIMAL_TEXT.fullmatch(value):
            raise RecordError(f'field "{field}" must be a decimal number such as "12.500", got {_show(value)}')
        amount = Decimal(value)
    elif kind is int:
        amount = Decimal(value)
    elif kind is Decimal:
        amount = value
    else:
        raise RecordError(f'field "{field}" must be a string or a number, got {_show(value)}')
    # The exponent is the number of decimals as written: 1.2500 has four.
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -POINTS_DECIMALS:
        raise RecordError(f'field "{field}" has more than {POINTS_DECIMALS} decimals, got {_show(value)}')
    if abs(amount) >= MAX_POINTS:
        raise RecordError(f'field "{field}" must be less than 10^15 in absolute value, got {_show(value)}')
    # Exact (at most 3 decimals were checked): 1E+3 becomes 1000.000, as stored.
    return amount.quantize(_POINTS_QUANTUM)


def _json_type(value: Any) -> str:
    if type(value) is list:
        return "an array"
    if type(value) is str:
        return "a string"
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    return "a number"


def _show(value: Any) -> str:
    """A short JSON rendering of an offending value, for messages."""
    # A Decimal is a JSON number that had a point or an exponent: show it as one.
    text = str(value) if type(value) is Decimal else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


# RFC 3339 with its offset, at most microseconds: what PostgreSQL's timestamptz keeps exactly.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


def _version(obj: dict[str, Any]) -> datetime | None:
    """A record's optional "asOf"."""
    if "asOf" not in obj:
        return None
    value = obj["asOf"]
    with contextlib.suppress(ValueError):  # a date that does not exist (2026-02-30)
        if type(value) is str and _TIMESTAMP.fullmatch(value):
            return datetime.fromisoformat(value)
    example = '"2026-12-02T10:15:30.123456Z"'
    raise RecordError(f'field "asOf" must be an RFC 3339 timestamp like {example}, not {_show(value)}')
