"""What a demo load holds, with an example lookup per org for the banner and the tests."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.vocabulary import IdentifierType, Source
from gateway.importer.demo.customers import CODE_KINDS, Kind, Layout, customer_layout
from gateway.importer.demo.plan import DemoOrg, DemoPlan
from gateway.importer.demo.rows import has_default_balance


@dataclass(frozen=True, slots=True)
class ExampleLookup:
    """An identifier of a customer holding a balance in the default program, as a client would type it."""

    source: Source
    account_id: str | None
    type: IdentifierType
    value: str
    customer_id: int


@dataclass(frozen=True, slots=True)
class DemoOrgSummary:
    org_id: int
    name: str
    dual_eligibility: bool
    primary_identifier: IdentifierType | None
    default_program_id: int
    program_ids: tuple[int, ...]
    customers: int
    fleets: int
    example: ExampleLookup


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """The synthetic orgs, the example orgs' ids (none when they were not loaded), and what was copied in all."""

    orgs: tuple[DemoOrgSummary, ...]
    showcase_org_ids: tuple[int, ...]
    customers: int
    identifiers: int
    fleets: int
    balances: int
    seconds: float

    @property
    def org_ids(self) -> tuple[int, ...]:
        return tuple(org.org_id for org in self.orgs)


def example_lookup(plan: DemoPlan, org: DemoOrg) -> ExampleLookup:
    """A customer with a default-program balance, by its most telling identifier: the primary one in a
    dual-eligibility org, else an email (its mixed-case form shows case-insensitive matching)."""
    layout = customer_layout(plan, org)
    wanted = org.primary_identifier or IdentifierType.EMAIL
    for q in range(min(org.customers, 1_000)):
        hashed = layout.hashed(q)
        r = layout.r(q)
        if not has_default_balance(q, hashed) or layout.is_family(r):
            continue
        for kind in CODE_KINDS[layout.code(r, hashed)]:
            if kind.type is wanted:
                return _example(layout, kind, q, r, hashed)
    # Customer 0 always holds a default balance: fall back to its first identifier.
    hashed = layout.hashed(0)
    r = layout.r(0)
    return _example(layout, CODE_KINDS[layout.code(r, hashed)][0], 0, r, hashed)


def _example(layout: Layout, kind: Kind, q: int, r: int, hashed: int) -> ExampleLookup:
    value = kind.raw_value(layout, r, hashed)
    return ExampleLookup(kind.source, kind.account_id or None, kind.type, value, layout.customer_id(q, hashed))


def summarise(
    plan: DemoPlan,
    *,
    showcase_org_ids: tuple[int, ...],
    customers: int,
    identifiers: int,
    fleets: int,
    balances: int,
    seconds: float,
) -> DemoSummary:
    orgs = tuple(
        DemoOrgSummary(
            org_id=org.org_id,
            name=org.name,
            dual_eligibility=org.dual_eligibility,
            primary_identifier=org.primary_identifier,
            default_program_id=org.default_program.program_id,
            program_ids=tuple(program.program_id for program in org.programs),
            customers=org.customers,
            fleets=org.fleets,
            example=example_lookup(plan, org),
        )
        for org in plan.orgs
    )
    return DemoSummary(orgs, showcase_org_ids, customers, identifiers, fleets, balances, seconds)
