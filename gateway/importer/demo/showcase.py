"""The documented example org: the customers, fleet and balances that the README and docs/ show.

Every demo load starts with it, so each example in the documentation answers exactly what it shows when
run against `serve --demo`. Into an empty database it gets the first ids (org 100737, programs 973 and
974); customer and fleet ids are fixed (they are keyed by org, so a second load repeats them in its own
org). Values are written as a person types them and stored normalised, like the synthetic ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from gateway.domain.identifiers import normalise
from gateway.domain.vocabulary import EntityType, IdentifierType, Source
from gateway.importer.demo.plan import IdStart
from gateway.importer.demo.rows import BalanceRow, CustomerRow, FleetRow, IdentifierRow, OrgRow, ProgramRow

ORG_NAME = "Acme"
PROGRAM_NAMES = ("Acme Rewards", "Acme Fuel")  # the first is the default


@dataclass(frozen=True, slots=True)
class ShowcaseIdentifier:
    source: Source
    account_id: str  # '' when the source has no accounts
    type: IdentifierType
    typed_value: str


@dataclass(frozen=True, slots=True)
class ShowcaseEntity:
    entity_id: int
    identifiers: tuple[ShowcaseIdentifier, ...]
    # (program number, main, delayed accrual, external trigger); program number 0 is the default program.
    balances: tuple[tuple[int, str, str, str], ...]


CUSTOMERS = (
    ShowcaseEntity(  # Tom Sawyer
        565_039_505,
        (
            ShowcaseIdentifier(Source.INSTORE, "", IdentifierType.EMAIL, "Tom@Example.com"),
            ShowcaseIdentifier(Source.INSTORE, "", IdentifierType.MOBILE, "+44 7700 900123"),
            ShowcaseIdentifier(Source.WECHAT, "wx-1", IdentifierType.CUID, "o6_bmjrPTlm6"),
        ),
        ((0, "8500.000", "0.000", "12.500"),),
    ),
    ShowcaseEntity(  # Becky Thatcher
        565_039_512,
        (
            ShowcaseIdentifier(Source.INSTORE, "", IdentifierType.EMAIL, "becky.thatcher@example.com"),
            ShowcaseIdentifier(Source.INSTORE, "", IdentifierType.MOBILE, "+44 7700 900456"),
        ),
        ((0, "1200.000", "300.000", "0.000"), (1, "250.500", "0.000", "0.000")),
    ),
)
FLEET_ID = 9001
FLEET_EXTERNAL_ID = "FLEET-9001"
FLEET_PRIMARY_USER_ID = 565_039_505
FLEET_BALANCES = ((0, "120000.000", "5000.000", "0.000"),)


@dataclass(frozen=True, slots=True)
class Showcase:
    """The example org's rows, with the ids this load gives it."""

    org_id: int
    program_ids: tuple[int, ...]

    @property
    def customers(self) -> int:
        return len(CUSTOMERS)

    def org_rows(self) -> Iterator[OrgRow]:
        yield self.org_id, ORG_NAME, False, None

    def program_rows(self) -> Iterator[ProgramRow]:
        for number, (program_id, name) in enumerate(zip(self.program_ids, PROGRAM_NAMES, strict=True)):
            yield self.org_id, program_id, name, number == 0

    def customer_rows(self) -> Iterator[CustomerRow]:
        for customer in CUSTOMERS:
            yield self.org_id, customer.entity_id

    def identifier_rows(self) -> Iterator[IdentifierRow]:
        for customer in CUSTOMERS:
            for identifier in customer.identifiers:
                value = normalise(identifier.type, identifier.typed_value)
                yield (
                    self.org_id,
                    identifier.source.value,
                    identifier.account_id,
                    identifier.type.value,
                    value,
                    customer.entity_id,
                )

    def fleet_rows(self) -> Iterator[FleetRow]:
        yield self.org_id, FLEET_ID, FLEET_EXTERNAL_ID, FLEET_PRIMARY_USER_ID

    def balance_rows(self) -> Iterator[BalanceRow]:
        entities = [(EntityType.CUSTOMER, c.entity_id, c.balances) for c in CUSTOMERS]
        entities.append((EntityType.FLEET, FLEET_ID, FLEET_BALANCES))
        for entity_type, entity_id, balances in entities:
            for number, main, delayed, external in balances:
                yield (
                    self.org_id,
                    entity_type.value,
                    entity_id,
                    self.program_ids[number],
                    Decimal(main),
                    Decimal(delayed),
                    Decimal(external),
                )


def place_showcase(start: IdStart) -> tuple[Showcase, IdStart]:
    """The showcase at the start of the id ranges, and where the synthetic orgs start after it."""
    showcase = Showcase(start.org_id, tuple(start.program_id + n for n in range(len(PROGRAM_NAMES))))
    rest = IdStart(
        org_id=start.org_id + 1,
        program_id=start.program_id + len(PROGRAM_NAMES),
        customer_id=start.customer_id,
        fleet_id=start.fleet_id,
    )
    return showcase, rest
