"""The row streams COPY loads, one per table, each in its table's primary-key order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from itertools import compress

from gateway.domain.identifiers import normalise
from gateway.domain.vocabulary import EntityType
from gateway.importer.demo.customers import KINDS_IN_KEY_ORDER, MEMBERS, Kind, Layout, customer_layout
from gateway.importer.demo.plan import CUSTOMERS_PER_FLEET, ID_STRIDE, DemoPlan, mix

_DEFAULT_BALANCE_PERCENT = 92

OrgRow = tuple[int, str, bool, str | None]
ProgramRow = tuple[int, int, str, bool]
CustomerRow = tuple[int, int]
IdentifierRow = tuple[int, str, str, str, str, int]
FleetRow = tuple[int, int, str, int]
BalanceRow = tuple[int, str, int, int, Decimal, Decimal, Decimal]
Tick = Callable[[int], object]


# --- balances -----------------------------------------------------------------------------------------------------


def _amount_pool(zero_percent: int, whole_points: int) -> tuple[Decimal, ...]:
    """16384 amounts: zero_percent of them zero, two thirds of the others whole points, the rest with thousandths."""
    amounts = []
    for index in range(1 << 14):
        hashed = mix(index ^ zero_percent << 20)
        roll = hashed % 100
        if roll < zero_percent:
            amounts.append(Decimal("0.000"))
        elif roll < zero_percent + (100 - zero_percent) * 2 // 3:
            amounts.append(Decimal((hashed >> 8) % whole_points * 1000).scaleb(-3))
        else:
            amounts.append(Decimal((hashed >> 8) % (whole_points * 1000)).scaleb(-3))
    return tuple(amounts)


@dataclass(frozen=True, slots=True)
class _Amounts:
    """Point amounts picked by hash bits: building three Decimals per row would cost more than the rest of it."""

    main: tuple[Decimal, ...] = field(default_factory=lambda: _amount_pool(8, 25_000))
    delayed_accrual: tuple[Decimal, ...] = field(default_factory=lambda: _amount_pool(55, 3_000))
    external_trigger: tuple[Decimal, ...] = field(default_factory=lambda: _amount_pool(70, 1_500))

    def balance(self, hashed: int) -> tuple[Decimal, Decimal, Decimal]:
        """The three categories, each from 14 bits of the hash."""
        return (
            self.main[hashed & 0x3FFF],
            self.delayed_accrual[(hashed >> 14) & 0x3FFF],
            self.external_trigger[(hashed >> 28) & 0x3FFF],
        )


@cache
def _amounts() -> _Amounts:
    return _Amounts()  # built on first use, not at import


def has_default_balance(q: int, hashed: int) -> bool:
    # The first customer of each org always holds one: the summary's fallback example relies on it.
    return q == 0 or (hashed >> 32) % 100 < _DEFAULT_BALANCE_PERCENT


# --- the row streams, each in primary-key order -------------------------------------------------------------------

_TICK_EVERY = 10_000


def org_rows(plan: DemoPlan) -> Iterator[OrgRow]:
    for org in plan.orgs:
        primary = org.primary_identifier.value if org.primary_identifier else None
        yield org.org_id, org.name, org.dual_eligibility, primary


def program_rows(plan: DemoPlan) -> Iterator[ProgramRow]:
    for org in plan.orgs:
        for program in org.programs:
            yield org.org_id, program.program_id, program.name, program.is_default


def customer_rows(plan: DemoPlan, tick: Tick | None = None) -> Iterator[CustomerRow]:
    for org in plan.orgs:
        layout = customer_layout(plan, org)
        for q in range(org.customers):
            yield org.org_id, layout.customer_id(q, layout.hashed(q))
            if tick and q % _TICK_EVERY == _TICK_EVERY - 1:
                tick(_TICK_EVERY)
        if tick:
            tick(org.customers % _TICK_EVERY)


def identifier_rows(plan: DemoPlan, tick: Tick | None = None) -> Iterator[IdentifierRow]:
    """Customer identifiers as stored: normalised values, account_id '' when there is none.

    One pass per (source, account, type) in key order, over the customers in directory order, so values
    ascend; which customers take part in a pass comes from one byte per customer computed up front.
    """
    for org in plan.orgs:
        layout = customer_layout(plan, org)
        codes = bytearray(org.customers)
        for q in range(org.customers):
            r = layout.r(q)
            codes[r] = layout.code(r, layout.hashed(q))
        for number, kind in enumerate(KINDS_IN_KEY_ORDER, start=1):
            rows = _kind_rows(layout, kind, compress(range(org.customers), codes.translate(MEMBERS[kind])))
            yield from _equal_values_by_id(rows) if org.dual_eligibility else rows
            if tick:
                done = org.customers * (number - 1) // len(KINDS_IN_KEY_ORDER)
                tick(org.customers * number // len(KINDS_IN_KEY_ORDER) - done)


def _kind_rows(layout: Layout, kind: Kind, ranks: Iterable[int]) -> Iterator[IdentifierRow]:
    org_id, source, account_id, type_ = layout.org.org_id, kind.source.value, kind.account_id, kind.type.value
    for r in ranks:
        q = layout.q(r)
        hashed = layout.hashed(q)
        value = normalise(kind.type, kind.raw_value(layout, r, hashed))
        yield org_id, source, account_id, type_, value, layout.customer_id(q, hashed)


def _equal_values_by_id(rows: Iterator[IdentifierRow]) -> Iterator[IdentifierRow]:
    """Family members share a value: the key then orders them by customer id, which is not directory order."""
    held: IdentifierRow | None = None
    for row in rows:
        if held is not None and row[4] == held[4] and row[5] < held[5]:
            yield row
            yield held
            held = None
            continue
        if held is not None:
            yield held
        held = row
    if held is not None:
        yield held


def fleet_rows(plan: DemoPlan) -> Iterator[FleetRow]:
    """Fleet f's primary user is one of customers 50f .. 50f+49 (id order) of its org: distinct for each fleet."""
    for org in plan.orgs:
        layout = customer_layout(plan, org)
        for local in range(org.fleets):
            fleet_ordinal = org.first_fleet_ordinal + local
            hashed = _fleet_hash(plan, fleet_ordinal)
            user = local * CUSTOMERS_PER_FLEET + hashed % CUSTOMERS_PER_FLEET
            external_id = f"FLEET-{fleet_ordinal + 1:06d}"
            yield (
                org.org_id,
                _fleet_id(plan, fleet_ordinal, hashed),
                external_id,
                layout.customer_id(user, layout.hashed(user)),
            )


def _fleet_hash(plan: DemoPlan, fleet_ordinal: int) -> int:
    return mix(plan.key ^ fleet_ordinal ^ 1 << 62)


def _fleet_id(plan: DemoPlan, fleet_ordinal: int, hashed: int) -> int:
    return plan.fleet_base + fleet_ordinal * ID_STRIDE + (hashed >> 40) % ID_STRIDE


def balance_rows(plan: DemoPlan, tick: Tick | None = None) -> Iterator[BalanceRow]:
    """Per org, customers' balances (most in the default program, some in others), then fleets' pooled ones."""
    customer, fleet = EntityType.CUSTOMER.value, EntityType.FLEET.value
    for org in plan.orgs:
        layout = customer_layout(plan, org)
        org_id, (default, *others) = org.org_id, org.programs
        threshold = org.template.extra_balance_percent * 128 // 100
        balance = _amounts().balance
        for q in range(org.customers):
            hashed = layout.hashed(q)
            customer_id = layout.customer_id(q, hashed)
            if has_default_balance(q, hashed):
                yield org_id, customer, customer_id, default.program_id, *balance(mix(hashed ^ 1))
            for number, program in enumerate(others, start=2):
                program_hash = mix(hashed ^ number)
                if program_hash >> 57 < threshold:
                    yield org_id, customer, customer_id, program.program_id, *balance(program_hash)
            if tick and q % _TICK_EVERY == _TICK_EVERY - 1:
                tick(_TICK_EVERY)
        if tick:
            tick(org.customers % _TICK_EVERY)
        for local in range(org.fleets):
            fleet_ordinal = org.first_fleet_ordinal + local
            hashed = _fleet_hash(plan, fleet_ordinal)
            fleet_id = _fleet_id(plan, fleet_ordinal, hashed)
            yield org_id, fleet, fleet_id, default.program_id, *balance(mix(hashed ^ 1))
            if others and hashed >> 63:
                yield org_id, fleet, fleet_id, others[0].program_id, *balance(mix(hashed ^ 2))
