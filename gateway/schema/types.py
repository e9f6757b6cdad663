"""Output types of pointsBalance, read from domain values.

Each type says, in DOMAIN_FIELDS, how each of its fields reads a domain value (a Balance, or one of its
ProgramPoints). Compiled plans serialize straight from the domain value through these
(gateway/execution/compiler.py); graphql-core resolves the objects from_domain builds with the same readers."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar

import strawberry

from gateway.domain.lookup import Balance, ProgramPoints
from gateway.schema.enums import EntityType
from gateway.schema.scalars import Points


@strawberry.type(description="Points promised but not yet redeemable, by what releases them.")
class PromisedPointsBreakup:
    delayed_accrual_points: Points = strawberry.field(description="Become main points after a delay.")
    external_trigger_based_points: Points = strawberry.field(
        description="Become main points when an external event happens."
    )

    DOMAIN_FIELDS: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "delayed_accrual_points": attrgetter("delayed_accrual"),
        "external_trigger_based_points": attrgetter("external_trigger"),
    }

    @classmethod
    def from_domain(cls, value: Balance | ProgramPoints) -> PromisedPointsBreakup:
        return cls(**_read(cls.DOMAIN_FIELDS, value))


@strawberry.type(description="An entity's points in one loyalty program.")
class ProgramBalance:
    program_id: int
    program_name: str
    is_default: bool = strawberry.field(description="Whether this is the org's default program.")
    main_points: Points = strawberry.field(description="Redeemable now.")
    promised_points: Points = strawberry.field(description="delayedAccrualPoints + externalTriggerBasedPoints.")
    total_points: Points = strawberry.field(description="mainPoints + promisedPoints.")
    promised_points_breakup: PromisedPointsBreakup

    DOMAIN_FIELDS: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "program_id": attrgetter("program_id"),
        "program_name": attrgetter("program_name"),
        "is_default": attrgetter("is_default"),
        "main_points": attrgetter("main"),
        "promised_points": attrgetter("promised"),
        "total_points": attrgetter("total"),
        # The program's own delayed and external points are its breakup.
        "promised_points_breakup": lambda program: program,
    }

    @classmethod
    def from_domain(cls, program: ProgramPoints) -> ProgramBalance:
        fields = _read(cls.DOMAIN_FIELDS, program)
        fields["promised_points_breakup"] = PromisedPointsBreakup.from_domain(program)
        return cls(**fields)


@strawberry.type(description="A customer's or fleet's points, summed over the programs in `programs`.")
class PointsBalance:
    entity_id: strawberry.ID = strawberry.field(description="The 64-bit id of the customer or fleet.")
    entity_type: EntityType
    main_points: Points
    promised_points: Points
    total_points: Points
    promised_points_breakup: PromisedPointsBreakup
    programs: list[ProgramBalance] = strawberry.field(description="One entry per program in the answer.")
    warnings: list[str] = strawberry.field(description="Things the lookup ignored or could not match, without failing.")

    DOMAIN_FIELDS: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "entity_id": attrgetter("entity_id"),
        "entity_type": attrgetter("entity_type"),
        "main_points": attrgetter("main"),
        "promised_points": attrgetter("promised"),
        "total_points": attrgetter("total"),
        "promised_points_breakup": lambda balance: balance,
        "programs": attrgetter("programs"),
        "warnings": attrgetter("warnings"),
    }

    @classmethod
    def from_domain(cls, balance: Balance) -> PointsBalance:
        fields = _read(cls.DOMAIN_FIELDS, balance)
        fields["promised_points_breakup"] = PromisedPointsBreakup.from_domain(balance)
        fields["programs"] = [ProgramBalance.from_domain(program) for program in balance.programs]
        return cls(**fields)


def _read(readers: dict[str, Callable[[Any], Any]], value: Any) -> dict[str, Any]:
    return {name: read(value) for name, read in readers.items()}
