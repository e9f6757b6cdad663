"""The documented example orgs: the customers, fleet and balances that the README and docs/ show.

Every demo load starts with them, so each example in the documentation answers exactly what it shows when
run against `serve --demo`. Into an empty database they get the first ids (Acme: org 100737, programs 973
and 974; Beta: org 100738, program 975); customer and fleet ids are fixed (they are keyed by org, so a
second load repeats them in its own orgs). Values are written as a person types them and stored
normalised, like the synthetic ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from gateway.domain.identifiers import normalise
from gateway.domain.vocabulary import EntityType, IdentifierType, Source
from gateway.importer.demo.plan import IdStart
from gateway.importer.demo.rows import BalanceRow, CustomerRow, FleetRow, IdentifierRow, OrgRow, ProgramRow


@dataclass(frozen=True, slots=True)
class ShowcaseIdentifier:
    source: Source
    account_id: str  # '' when the source has no accounts
    type: IdentifierType
    typed_value: str


# (program number, main, delayed accrual, external trigger); program number 0 is the org's default program.
Points = tuple[int, str, str, str]


@dataclass(frozen=True, slots=True)
class ShowcaseCustomer:
    customer_id: int
    identifiers: tuple[ShowcaseIdentifier, ...]
    balances: tuple[Points, ...]


@dataclass(frozen=True, slots=True)
class ShowcaseFleet:
    fleet_id: int
    external_id: str
    primary_user_id: int
    balances: tuple[Points, ...]


@dataclass(frozen=True, slots=True)
class ShowcaseOrg:
    name: str
    primary_identifier: IdentifierType | None  # set: dual eligibility on
    programs: tuple[str, ...]  # the first is the default
    customers: tuple[ShowcaseCustomer, ...]
    fleets: tuple[ShowcaseFleet, ...] = ()


def _instore(type_: IdentifierType, typed_value: str) -> ShowcaseIdentifier:
    return ShowcaseIdentifier(Source.INSTORE, "", type_, typed_value)


EMAIL, MOBILE = IdentifierType.EMAIL, IdentifierType.MOBILE
ORGS = (
    ShowcaseOrg(
        "Acme",
        None,
        ("Acme Rewards", "Acme Fuel"),
        (
            ShowcaseCustomer(  # Tom Sawyer
                565_039_505,
                (
                    _instore(EMAIL, "Tom@Example.com"),
                    _instore(MOBILE, "+44 7700 900123"),
                    ShowcaseIdentifier(Source.WECHAT, "wx-1", IdentifierType.CUID, "o6_bmjrPTlm6"),
                ),
                ((0, "8500.000", "0.000", "12.500"),),
            ),
            ShowcaseCustomer(  # Becky Thatcher
                565_039_512,
                (_instore(EMAIL, "becky.thatcher@example.com"), _instore(MOBILE, "+44 7700 900456")),
                ((0, "1200.000", "300.000", "0.000"), (1, "250.500", "0.000", "0.000")),
            ),
            ShowcaseCustomer(  # the customer of the reference API's own documentation (README, "REST")
                565_039_601,
                (_instore(EMAIL, "tomswayer@capillarytech1.com"), _instore(MOBILE, "915795008349")),
                ((0, "2750.000", "250.000", "0.000"),),
            ),
        ),
        (ShowcaseFleet(9001, "FLEET-9001", 565_039_505, ((0, "120000.000", "5000.000", "0.000"),)),),
    ),
    ShowcaseOrg(  # dual eligibility on MOBILE: a family shares one email, each has a mobile of their own
        "Beta",
        MOBILE,
        ("Beta Points",),
        (
            ShowcaseCustomer(  # Polly
                565_041_001,
                (_instore(MOBILE, "+44 7700 900789"), _instore(EMAIL, "sawyers@example.com")),
                ((0, "640.000", "0.000", "0.000"),),
            ),
            ShowcaseCustomer(  # Sid
                565_041_008,
                (_instore(MOBILE, "+44 7700 900790"), _instore(EMAIL, "sawyers@example.com")),
                ((0, "75.250", "10.000", "0.000"),),
            ),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Showcase:
    """The example orgs' rows, with the ids this load gives them."""

    org_ids: tuple[int, ...]  # one per org of ORGS
    program_ids: tuple[tuple[int, ...], ...]  # per org, one per program

    @property
    def customers(self) -> int:
        return sum(len(org.customers) for org in ORGS)

    def _orgs(self) -> Iterator[tuple[int, tuple[int, ...], ShowcaseOrg]]:
        return zip(self.org_ids, self.program_ids, ORGS, strict=True)

    def org_rows(self) -> Iterator[OrgRow]:
        for org_id, _, org in self._orgs():
            primary = org.primary_identifier.value if org.primary_identifier else None
            yield org_id, org.name, primary is not None, primary

    def program_rows(self) -> Iterator[ProgramRow]:
        for org_id, program_ids, org in self._orgs():
            for number, (program_id, name) in enumerate(zip(program_ids, org.programs, strict=True)):
                yield org_id, program_id, name, number == 0

    def customer_rows(self) -> Iterator[CustomerRow]:
        for org_id, _, org in self._orgs():
            for customer in org.customers:
                yield org_id, customer.customer_id

    def identifier_rows(self) -> Iterator[IdentifierRow]:
        for org_id, _, org in self._orgs():
            for customer in org.customers:
                for identifier in customer.identifiers:
                    value = normalise(identifier.type, identifier.typed_value)
                    source, type_ = identifier.source.value, identifier.type.value
                    yield org_id, source, identifier.account_id, type_, value, customer.customer_id

    def fleet_rows(self) -> Iterator[FleetRow]:
        for org_id, _, org in self._orgs():
            for fleet in org.fleets:
                yield org_id, fleet.fleet_id, fleet.external_id, fleet.primary_user_id

    def balance_rows(self) -> Iterator[BalanceRow]:
        for org_id, program_ids, org in self._orgs():
            holders = [(EntityType.CUSTOMER, c.customer_id, c.balances) for c in org.customers]
            holders += [(EntityType.FLEET, f.fleet_id, f.balances) for f in org.fleets]
            for entity_type, entity_id, balances in holders:
                for number, main, delayed, external in balances:
                    amounts = Decimal(main), Decimal(delayed), Decimal(external)
                    yield org_id, entity_type.value, entity_id, program_ids[number], *amounts


def place_showcase(start: IdStart) -> tuple[Showcase, IdStart]:
    """The example orgs at the start of the id ranges, and where the synthetic orgs start after them."""
    org_ids: list[int] = []
    program_ids: list[tuple[int, ...]] = []
    org_id, program_id = start.org_id, start.program_id
    for org in ORGS:
        org_ids.append(org_id)
        program_ids.append(tuple(range(program_id, program_id + len(org.programs))))
        org_id, program_id = org_id + 1, program_id + len(org.programs)
    rest = IdStart(org_id=org_id, program_id=program_id, customer_id=start.customer_id, fleet_id=start.fleet_id)
    return Showcase(tuple(org_ids), tuple(program_ids)), rest
