"""A balance lookup: from the client's arguments to a validated request, and
from what the database matched to an answer or a coded error.

Its values are named tuples: immutable and hashable like frozen dataclasses,
and built on every request for about a fifth of what a frozen dataclass's
`__init__` costs (one `object.__setattr__` per field)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from gateway.domain.identifiers import MAX_VALUE_LENGTH, normalise, parse_entity_id
from gateway.domain.vocabulary import (
    CUSTOMER_IDENTIFIER_TYPES,
    ENTITY_ID_TYPES,
    FLEET_IDENTIFIER_TYPES,
    EntityType,
    IdentifierType,
    Source,
)
from gateway.errors import (
    BadUserInput,
    CustomerNotFound,
    IdentifierConflict,
    InvalidGroupIdentifier,
    ProgramNotFound,
)

MAX_IDENTIFIERS = 10
ZERO = Decimal("0.000")


class Identifier(NamedTuple):
    type: IdentifierType
    value: str  # normalised
    entity_id: int | None  # the parsed value of ID / PRIMARY_USER_ID identifiers


class Lookup(NamedTuple):
    """One validated pointsBalance request, ready for the database."""

    entity_type: EntityType
    source: Source
    account_id: str  # '' when the client sent none
    identifiers: tuple[Identifier, ...]
    program_id: int | None
    all_programs: bool
    warnings: tuple[str, ...] = ()

    @property
    def cost(self) -> int:
        """What it weighs against a caller's budget: 1 for one customer identifier, 2 for several
        identifiers or a fleet, which take the general statement, about twice the database time
        (docs/performance.md). All programs cost no more: the same statement, a few more rows."""
        return 1 if len(self.identifiers) == 1 and self.entity_type is EntityType.CUSTOMER else 2


class ProgramPoints(NamedTuple):
    program_id: int
    program_name: str
    is_default: bool
    main: Decimal
    delayed_accrual: Decimal
    external_trigger: Decimal

    @property
    def promised(self) -> Decimal:
        return self.delayed_accrual + self.external_trigger

    @property
    def total(self) -> Decimal:
        return self.main + self.promised


class Matches(NamedTuple):
    """What the database found for one lookup.

    `entity_id` is the entity the deciding identifier matched (None: nothing
    decided); per sent identifier, in order, `belongs` says it matches that
    entity and `other` that it matches a different one.
    """

    dual_eligibility: bool
    primary_identifier: IdentifierType | None
    entity_id: int | None
    belongs: tuple[bool, ...]
    other: tuple[bool, ...]
    programs: tuple[ProgramPoints, ...]


class Balance(NamedTuple):
    entity_id: int
    entity_type: EntityType
    programs: tuple[ProgramPoints, ...]
    warnings: tuple[str, ...]
    # The programs' points, added up once (see balance_of).
    main: Decimal
    delayed_accrual: Decimal
    external_trigger: Decimal

    @property
    def promised(self) -> Decimal:
        return self.delayed_accrual + self.external_trigger

    @property
    def total(self) -> Decimal:
        return self.main + self.promised


def build_lookup(
    *,
    identifiers: Sequence[tuple[IdentifierType, str]],
    source: Source,
    account_id: str | None,
    program_id: int | None,
    entity_type: EntityType,
    fetch_data_for_all_programs: bool,
) -> Lookup:
    """Validate the arguments; raises BadUserInput or InvalidGroupIdentifier."""
    if not identifiers:
        raise BadUserInput("identifiers must not be empty")
    if len(identifiers) > MAX_IDENTIFIERS:
        raise BadUserInput(f"at most {MAX_IDENTIFIERS} identifiers may be sent, got {len(identifiers)}")
    if len(identifiers) > 1:
        seen: set[IdentifierType] = set()
        for type_, _ in identifiers:
            if type_ in seen:
                raise BadUserInput(f"identifier type {type_.value} is sent more than once")
            seen.add(type_)
    if account_id is not None:
        if len(account_id) > MAX_VALUE_LENGTH:
            raise BadUserInput(f"accountId is longer than {MAX_VALUE_LENGTH} characters")
        # PostgreSQL text cannot hold NUL: such a value would fail the whole batched statement.
        if "\x00" in account_id:
            raise BadUserInput("accountId contains a NUL character")

    allowed = FLEET_IDENTIFIER_TYPES if entity_type is EntityType.FLEET else CUSTOMER_IDENTIFIER_TYPES
    parsed: list[Identifier] = []
    for position, (type_, raw) in enumerate(identifiers, start=1):
        if len(raw) > MAX_VALUE_LENGTH:
            raise BadUserInput(f"identifier {position} ({type_.value}) is longer than {MAX_VALUE_LENGTH} characters")
        if "\x00" in raw:
            raise BadUserInput(f"identifier {position} ({type_.value}) contains a NUL character")
        value = normalise(type_, raw)
        if not value.strip():
            raise BadUserInput(f"identifier {position} ({type_.value}) has an empty value")
        if type_ not in allowed:
            if entity_type is EntityType.FLEET:
                raise InvalidGroupIdentifier(
                    f"identifier type {type_.value} is not valid for a fleet; use ID, EXTERNAL_ID or PRIMARY_USER_ID"
                )
            raise BadUserInput(f"identifier type {type_.value} identifies fleets, not customers")
        entity_id = parse_entity_id(value) if type_ in ENTITY_ID_TYPES else None
        parsed.append(Identifier(type_, value, entity_id))

    warnings: tuple[str, ...] = ()
    if fetch_data_for_all_programs and program_id is not None:
        warnings = (f"programId {program_id} is ignored because fetchDataForAllPrograms is true",)
    return Lookup(
        entity_type,
        source,
        account_id or "",
        tuple(parsed),
        None if fetch_data_for_all_programs else program_id,
        fetch_data_for_all_programs,
        warnings,
    )


def decide(lookup: Lookup, matches: Matches) -> Balance:
    """Apply the resolution rules to what the database matched."""
    if not matches.programs and not lookup.all_programs:
        if lookup.program_id is None:
            raise ProgramNotFound("the org has no default program")
        raise ProgramNotFound(f"program {lookup.program_id} does not exist in this org")

    if lookup.entity_type is EntityType.FLEET:
        warnings = _first_match_decides(lookup, matches, InvalidGroupIdentifier("no fleet matches the identifiers"))
    elif matches.dual_eligibility:
        warnings = _primary_identifier_decides(lookup, matches)
    else:
        warnings = _first_match_decides(lookup, matches, CustomerNotFound("no customer matches the identifiers"))

    assert matches.entity_id is not None
    return balance_of(matches.entity_id, lookup.entity_type, matches.programs, lookup.warnings + warnings)


def balance_of(
    entity_id: int, entity_type: EntityType, programs: tuple[ProgramPoints, ...], warnings: tuple[str, ...]
) -> Balance:
    """An entity's balance over these programs, their points added up."""
    main = delayed = external = ZERO
    for program in programs:
        main += program.main
        delayed += program.delayed_accrual
        external += program.external_trigger
    return Balance(entity_id, entity_type, programs, warnings, main, delayed, external)


def _first_match_decides(lookup: Lookup, matches: Matches, not_found: Exception) -> tuple[str, ...]:
    """Identifiers are tried in order; one matching another entity is an error."""
    if matches.entity_id is None:
        raise not_found
    if True not in matches.other and False not in matches.belongs:
        return ()  # every identifier matches the entity (nearly every lookup): nothing to say
    noun = "fleet" if lookup.entity_type is EntityType.FLEET else "customer"
    warnings: list[str] = []
    for position, (identifier, belongs, other) in enumerate(
        zip(lookup.identifiers, matches.belongs, matches.other, strict=True), start=1
    ):
        if other:
            raise IdentifierConflict(
                f"identifier {position} ({identifier.type.value}) matches a different {noun} than identifier "
                f"{matches.belongs.index(True) + 1}"
            )
        if not belongs:
            warnings.append(f"identifier {position} ({identifier.type.value}) matches no {noun}")
    return tuple(warnings)


def _primary_identifier_decides(lookup: Lookup, matches: Matches) -> tuple[str, ...]:
    """Dual eligibility: the primary identifier decides, the others are only checked."""
    primary = matches.primary_identifier
    if primary is None or all(i.type is not primary for i in lookup.identifiers):
        name = primary.value if primary is not None else "primary"
        raise CustomerNotFound(f"this org identifies customers by their {name} identifier; none was sent")
    if matches.entity_id is None:
        raise CustomerNotFound("no customer matches the identifiers")
    return tuple(
        f"identifier {position} ({identifier.type.value}) does not belong to the customer "
        f"identified by {primary.value}; it was ignored"
        for position, (identifier, belongs) in enumerate(zip(lookup.identifiers, matches.belongs, strict=True), 1)
        if identifier.type is not primary and not belongs
    )
