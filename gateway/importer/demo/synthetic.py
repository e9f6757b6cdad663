"""Synthetic demo data: realistic orgs, programs, customers, fleets and balances, deterministic from a seed.

No rows are held in memory: every attribute of a customer is derived from a 64-bit hash of (seed, its
ordinal) with integer arithmetic, so each table's generator recomputes what it needs and streams tuples
into COPY. Unique values (mobiles, emails, ids) embed an ordinal, which makes them unique by construction.

Every stream comes out in its table's primary-key order, so each index insert appends to the rightmost
leaf instead of searching the tree: for the six-column identifier key that is most of the load's cost.
For that, identifier values grow with a customer's rank in an org's "directory" order, while customer
ids follow a different, shuffled order (an affine permutation), so ids and names stay unrelated.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from itertools import compress

import asyncpg
from tqdm import tqdm

from gateway.db import bulk
from gateway.domain.identifiers import normalise
from gateway.domain.vocabulary import EntityType, IdentifierType, Source

# Where ids start in an empty database; they look like production ids, not 1, 2, 3.
FIRST_ORG_ID = 100_737
FIRST_PROGRAM_ID = 973
FIRST_CUSTOMER_ID = 565_000_000_000
FIRST_FLEET_ID = 880_000_000_000
# The narrowest value space (GB mobiles, 10**9 numbers) needs at least ~20 numbers per customer.
MAX_CUSTOMERS = 50_000_000
CUSTOMERS_PER_FLEET = 50

_ID_STRIDE = 8  # ids advance by 1..8: sparse like real ones, still increasing
_MASK64 = (1 << 64) - 1
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # in ASCII order, so order-preserving
_DEFAULT_BALANCE_PERCENT = 92
_FAMILY_PERCENT = 8  # dual-eligibility org: customer pairs sharing one (secondary) email

OrgRow = tuple[int, str, bool, str | None]
ProgramRow = tuple[int, int, str, bool]
CustomerRow = tuple[int, int]
IdentifierRow = tuple[int, str, str, str, str, int]
FleetRow = tuple[int, int, str, int]
BalanceRow = tuple[int, str, int, int, Decimal, Decimal, Decimal]
Tick = Callable[[int], object]


def _mix(value: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash for a few multiplications."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


# --- orgs -------------------------------------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    # Sorted, so that emails built from them in order come out in index order.
    return tuple(sorted(text.split(), key=str.lower))


_WESTERN_FIRST = _names(
    "Olivia Amelia Isla Ava Mia Ivy Lily Freya Grace Sophia Ella Chloe Emily Aisha Priya Zara Oliver George Noah "
    "Arthur Leo Harry Oscar Jack Thomas James Henry Mohammed Rohan Samuel Daniel Lucas"
)
_WESTERN_LAST = _names(
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright Thompson Evans Walker White "
    "Roberts Green Hall Wood Jackson Clarke Khan Lewis Hughes Edwards Turner Hill Moore Cooper Ward Morris Okafor"
)
_JAPANESE_FIRST = _names(
    "Haruto Yuto Sota Yuki Hayato Haruki Ryusei Koki Sora Riku Kaito Ren Takumi Daiki Kenta Shota Yui Aoi Hina "
    "Sakura Yuna Mei Rin Saki Akari Miyu Emi Nanami Kana Mio Hana Koharu"
)
_JAPANESE_LAST = _names(
    "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida Yamada Sasaki Yamaguchi "
    "Matsumoto Inoue Kimura Hayashi Shimizu Yamazaki Mori Abe Ikeda Hashimoto Yamashita Ishikawa Nakajima Maeda "
    "Fujita Ogawa Goto Okada"
)


@dataclass(frozen=True, slots=True)
class _OrgTemplate:
    name: str
    primary_identifier: IdentifierType | None
    share: int  # parts of the customers, out of the sum of all shares
    programs: tuple[str, ...]  # the first is the default
    extra_balance_percent: int  # chance of a balance in each non-default program
    country: str  # mobile number format
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


# Customers split 5:3:2; with these program counts they average about two balances each.
_TEMPLATES = (
    _OrgTemplate(
        "Northwind Outfitters", None, 5, ("Northwind Rewards", "Northwind Gold", "Trail Club"), 60, "GB",
        _WESTERN_FIRST, _WESTERN_LAST,
    ),
    _OrgTemplate(
        "Sakura Mart", IdentifierType.MOBILE, 3, ("Sakura Points", "Sakura Family", "Sakura Fuel", "Sakura Travel"),
        43, "JP", _JAPANESE_FIRST, _JAPANESE_LAST,
    ),
    _OrgTemplate(
        "Bluebird Coffee", None, 2, ("Bluebird Beans", "Bluebird Pro"), 80, "GB", _WESTERN_FIRST, _WESTERN_LAST,
    ),
)  # fmt: skip


# --- the plan ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdStart:
    """The first ids a load may use: above everything already in the database."""

    org_id: int = FIRST_ORG_ID
    program_id: int = FIRST_PROGRAM_ID
    customer_id: int = FIRST_CUSTOMER_ID
    fleet_id: int = FIRST_FLEET_ID


@dataclass(frozen=True, slots=True)
class DemoProgram:
    program_id: int
    name: str
    is_default: bool


@dataclass(frozen=True, slots=True)
class DemoOrg:
    org_id: int
    name: str
    primary_identifier: IdentifierType | None
    programs: tuple[DemoProgram, ...]  # the default first, ids ascending
    first_ordinal: int  # this org's customers are the load's ordinals first_ordinal .. + customers - 1
    customers: int
    first_fleet_ordinal: int
    fleets: int
    template: _OrgTemplate = field(repr=False)

    @property
    def dual_eligibility(self) -> bool:
        return self.primary_identifier is not None

    @property
    def default_program(self) -> DemoProgram:
        return self.programs[0]


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """Everything the generators need: the rows follow from it alone."""

    seed: int
    key: int  # the seed, hashed: mixed into every per-entity hash
    customer_base: int
    fleet_base: int
    orgs: tuple[DemoOrg, ...]

    @property
    def customers(self) -> int:
        return sum(org.customers for org in self.orgs)

    @property
    def fleets(self) -> int:
        return sum(org.fleets for org in self.orgs)


def plan_demo(customers: int, *, seed: int = 1, start: IdStart = IdStart()) -> DemoPlan:
    """Orgs, programs, and how many customers and fleets each gets (fewer orgs when under three customers)."""
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers must be between 1 and {MAX_CUSTOMERS}")
    templates = _TEMPLATES[: min(len(_TEMPLATES), customers)]
    total_share = sum(template.share for template in templates)
    orgs: list[DemoOrg] = []
    ordinal = fleet_ordinal = 0
    program_id = start.program_id
    for index, template in enumerate(templates):
        last = index == len(templates) - 1
        count = customers - ordinal if last else max(1, customers * template.share // total_share)
        programs = tuple(
            DemoProgram(program_id + offset, name, offset == 0) for offset, name in enumerate(template.programs)
        )
        fleets = count // CUSTOMERS_PER_FLEET
        orgs.append(
            DemoOrg(
                start.org_id + index, template.name, template.primary_identifier, programs, ordinal, count,
                fleet_ordinal, fleets, template,
            )
        )  # fmt: skip
        ordinal += count
        fleet_ordinal += fleets
        program_id += len(programs)
    key = _mix(seed * 0x9E3779B97F4A7C15 & _MASK64)
    return DemoPlan(seed, key, start.customer_id, start.fleet_id, tuple(orgs))


# --- an org's customers: id order, directory order, identifiers -------------------------------------------------

_PERMUTATION_MULTIPLIER = 2_147_483_647  # prime, larger than any org: coprime with every customer count


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each customer of one org stands: rank q in id order, rank r in directory (identifier) order."""

    plan: DemoPlan
    org: DemoOrg
    total: int  # customers in the whole load
    multiplier: int  # q = (multiplier * r + offset) % customers
    offset: int
    inverse: int  # r = (inverse * (q - offset)) % customers
    email_width: int  # digits of the number in an email; the same in a whole org, so emails sort
    email_stride: int

    def q(self, r: int) -> int:
        return (self.multiplier * r + self.offset) % self.org.customers

    def r(self, q: int) -> int:
        return (self.inverse * (q - self.offset)) % self.org.customers

    def hashed(self, q: int) -> int:
        return _mix(self.plan.key ^ (self.org.first_ordinal + q))

    def customer_id(self, q: int, hashed: int) -> int:
        return self.plan.customer_base + (self.org.first_ordinal + q) * _ID_STRIDE + (hashed >> 40) % _ID_STRIDE

    def spaced(self, r: int, space: int, jitter: int) -> int:
        """A number in [0, space) growing with the directory rank across the whole load: unique and ordered."""
        stride = space // self.total
        return (self.org.first_ordinal + r) * stride + jitter % stride

    def is_family(self, r: int) -> bool:
        """In the dual-eligibility org, customers 2p and 2p+1 of some pairs p share one email."""
        pair = r >> 1
        if self.org.primary_identifier is None or 2 * pair + 1 >= self.org.customers:
            return False
        return _mix(self.plan.key ^ (self.org.first_ordinal + pair) ^ 1 << 61) % 100 < _FAMILY_PERCENT

    def code(self, r: int, hashed: int) -> int:
        """Which identifiers the customer has: a shape and its WeChat account, in one byte."""
        if self.org.primary_identifier is None:
            pick = _SINGLE_PICK
        else:
            pick = _PRIMARY_EMAIL_PICK if self.is_family(r) else _PRIMARY_PICK
        return pick[(hashed >> 10) % len(pick)] << 1 | (hashed >> 26) & 1


def _layout(plan: DemoPlan, org: DemoOrg) -> _Layout:
    customers = org.customers
    multiplier = _PERMUTATION_MULTIPLIER % customers
    offset = _mix(plan.key ^ org.first_ordinal ^ 1 << 60) % customers
    names = len(org.template.first_names) * len(org.template.last_names)
    block = -(-customers // names)  # customers sharing one first and last name
    width = max(3, len(str(block)) + 1)
    return _Layout(
        plan=plan,
        org=org,
        total=plan.customers,
        multiplier=multiplier,
        offset=offset,
        inverse=pow(multiplier, -1, customers),
        email_width=width,
        email_stride=9 * 10 ** (width - 1) // block,
    )


def _mobile_digits(layout: _Layout, r: int, hashed: int) -> str:
    """The national number: GB mobiles are 7 and nine digits, Japanese ones 70, 80 or 90 and eight."""
    if layout.org.template.country == "JP":
        prefix, rest = divmod(layout.spaced(r, 300_000_000, hashed >> 20), 100_000_000)
        return f"{70 + 10 * prefix}{rest:08d}"
    return f"7{layout.spaced(r, 1_000_000_000, hashed >> 20):09d}"


def _mobile(layout: _Layout, r: int, hashed: int) -> str:
    """A mobile number as people type it: spaces, dashes, brackets, or none."""
    digits = _mobile_digits(layout, r, hashed)
    style = (hashed >> 27) & 3
    if layout.org.template.country == "JP":
        head, middle, tail = digits[:2], digits[2:6], digits[6:]
        formats = (
            f"+81 {head}-{middle}-{tail}",
            f"+81 {head} {middle} {tail}",
            f"81{digits}",
            f"+81 ({head}) {middle}-{tail}",
        )
    else:
        head, tail = digits[:4], digits[4:]
        formats = (f"+44 {head} {tail}", f"+44 ({head}) {tail[:3]}-{tail[3:]}", f"44{digits}", f"+44-{head}-{tail}")
    return formats[style]


def _app_mobile(layout: _Layout, r: int, hashed: int) -> str:
    return _mobile(layout, r, hashed >> 2)  # the same number, typed differently in the app


_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")


def _email(layout: _Layout, r: int, hashed: int) -> str:
    """firstname.lastname1042@example.com in the case people type. Names follow the directory rank in blocks and
    the number grows within a block, so emails sort like the ranks; family members type the first one's."""
    template = layout.org.template
    typed_by = hashed
    if layout.is_family(r) and r & 1:
        r -= 1
        hashed = layout.hashed(layout.q(r))
    last_names = len(template.last_names)
    names = len(template.first_names) * last_names
    position = r * names // layout.org.customers
    block_start = -(-position * layout.org.customers // names)
    number = 10 ** (layout.email_width - 1) + (r - block_start) * layout.email_stride
    number += (hashed >> 33) % layout.email_stride
    first, last = template.first_names[position // last_names], template.last_names[position % last_names]
    domain = _EMAIL_DOMAINS[(hashed >> 29) & 3]
    style = (typed_by >> 24) & 3
    if style == 0:
        return f"{first}.{last}{number}@{domain}"
    if style == 1:
        return f"{first.lower()}.{last.lower()}{number}@{domain}"
    if style == 2:
        return f"{first}.{last}{number}@{domain.capitalize()}"
    return f"{first}.{last}{number}@{domain}".upper()


def _wechat_openid(layout: _Layout, r: int, hashed: int) -> str:
    """Like o6_bmjrPTlm6_2sgVt7hMZOPfL2M: an ordered base-62 head, then random characters."""
    number = layout.spaced(r, 62**9, hashed)
    head = ""
    for _ in range(9):
        number, digit = divmod(number, 62)
        head = _BASE62[digit] + head
    tail = base64.urlsafe_b64encode(_mix(hashed).to_bytes(8, "big") + hashed.to_bytes(8, "big")).decode()
    return f"o{head}{tail[:18]}"


def _shop_id(layout: _Layout, r: int, hashed: int) -> str:
    return f"SHOP-{layout.spaced(r, 10**10, hashed):010d}"


def _card_number(layout: _Layout, r: int, hashed: int) -> str:
    return f"6280{layout.spaced(r, 10**12, hashed):012d}"


def _app_id(layout: _Layout, r: int, hashed: int) -> str:
    return f"app_{layout.spaced(r, 1 << 64, hashed):016x}"


def _facebook_id(layout: _Layout, r: int, hashed: int) -> str:
    return f"10{layout.spaced(r, 10**13, hashed):013d}"


def _line_id(layout: _Layout, r: int, hashed: int) -> str:
    return f"U{layout.spaced(r, 1 << 64, hashed):016x}{_mix(hashed):016x}"


@dataclass(frozen=True, slots=True)
class _Kind:
    """Where and how a customer registered one identifier."""

    source: Source
    account_id: str  # '' when the source has no accounts
    type: IdentifierType
    raw_value: Callable[[_Layout, int, int], str]  # (layout, directory rank, customer hash) -> value as typed


_MOBILE = _Kind(Source.INSTORE, "", IdentifierType.MOBILE, _mobile)
_EMAIL = _Kind(Source.INSTORE, "", IdentifierType.EMAIL, _email)
_SHOP_EMAIL = _Kind(Source.ECOMMERCE, "", IdentifierType.EMAIL, _email)
_WECHAT = _Kind(Source.WECHAT, "wx-1", IdentifierType.CUID, _wechat_openid)
_WECHAT_2 = _Kind(Source.WECHAT, "wx-2", IdentifierType.CUID, _wechat_openid)  # chosen by a hash bit
_SHOP_ID = _Kind(Source.ECOMMERCE, "", IdentifierType.EXTERNAL_ID, _shop_id)
_CARD = _Kind(Source.WEBSITE, "", IdentifierType.CARD_NUMBER, _card_number)
_APP_ID = _Kind(Source.MOBILE_APP, "", IdentifierType.EXTERNAL_ID, _app_id)
_APP_MOBILE = _Kind(Source.MOBILE_APP, "", IdentifierType.MOBILE, _app_mobile)
_FACEBOOK = _Kind(Source.FACEBOOK, "", IdentifierType.EXTERNAL_ID, _facebook_id)
_LINE = _Kind(Source.LINE, "", IdentifierType.CUID, _line_id)

# Weighted shapes (the kinds a customer has), 1 to 4 identifiers, 2.5 on average.
_SINGLE_SHAPES: tuple[tuple[tuple[_Kind, ...], int], ...] = (
    ((_MOBILE,), 6), ((_EMAIL,), 6), ((_WECHAT,), 3),
    ((_MOBILE, _EMAIL), 20), ((_EMAIL, _SHOP_ID), 5), ((_MOBILE, _WECHAT), 5), ((_EMAIL, _APP_ID), 5),
    ((_MOBILE, _EMAIL, _WECHAT), 12), ((_MOBILE, _EMAIL, _CARD), 10), ((_MOBILE, _EMAIL, _SHOP_EMAIL), 8),
    ((_MOBILE, _EMAIL, _FACEBOOK), 5),
    ((_MOBILE, _EMAIL, _WECHAT, _CARD), 6), ((_MOBILE, _EMAIL, _SHOP_EMAIL, _SHOP_ID), 5),
    ((_MOBILE, _EMAIL, _APP_ID, _APP_MOBILE), 2), ((_MOBILE, _EMAIL, _WECHAT, _LINE), 2),
)  # fmt: skip
# Dual eligibility on MOBILE: every customer has exactly one mobile, the primary identifier.
_PRIMARY_SHAPES: tuple[tuple[tuple[_Kind, ...], int], ...] = (
    ((_MOBILE,), 15),
    ((_MOBILE, _EMAIL), 25), ((_MOBILE, _WECHAT), 5), ((_MOBILE, _CARD), 5),
    ((_MOBILE, _EMAIL, _WECHAT), 15), ((_MOBILE, _EMAIL, _CARD), 12), ((_MOBILE, _EMAIL, _LINE), 8),
    ((_MOBILE, _EMAIL, _WECHAT, _CARD), 10), ((_MOBILE, _EMAIL, _SHOP_EMAIL, _CARD), 5),
)  # fmt: skip

_SHAPES = tuple(dict.fromkeys(shape for shape, _ in (*_SINGLE_SHAPES, *_PRIMARY_SHAPES)))
# A customer's code is shape index * 2 + WeChat account bit; these are its kinds.
_CODE_KINDS = tuple(
    tuple(_WECHAT_2 if kind is _WECHAT and account else kind for kind in shape)
    for shape in _SHAPES
    for account in (0, 1)
)


def _pick(weighted: Iterable[tuple[tuple[_Kind, ...], int]]) -> tuple[int, ...]:
    """Shape indexes repeated by weight: a uniform number below its length picks a shape, no random call."""
    return tuple(_SHAPES.index(shape) for shape, weight in weighted for _ in range(weight))


_SINGLE_PICK = _pick(_SINGLE_SHAPES)
_PRIMARY_PICK = _pick(_PRIMARY_SHAPES)
_PRIMARY_EMAIL_PICK = _pick((shape, weight) for shape, weight in _PRIMARY_SHAPES if _EMAIL in shape)
# The kinds in identifier-key order (source, account_id, type); for each, which codes include it.
_KINDS_IN_KEY_ORDER = sorted(
    {kind for kinds in _CODE_KINDS for kind in kinds},
    key=lambda kind: (kind.source.value, kind.account_id, kind.type.value),
)
_MEMBERS = {kind: bytes(kind in kinds for kinds in _CODE_KINDS).ljust(256, b"\0") for kind in _KINDS_IN_KEY_ORDER}


# --- balances -----------------------------------------------------------------------------------------------------


def _amount_pool(zero_percent: int, whole_points: int) -> tuple[Decimal, ...]:
    """16384 amounts: zero_percent of them zero, two thirds of the others whole points, the rest with thousandths."""
    amounts = []
    for index in range(1 << 14):
        hashed = _mix(index ^ zero_percent << 20)
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


def _has_default_balance(q: int, hashed: int) -> bool:
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
        layout = _layout(plan, org)
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
        layout = _layout(plan, org)
        codes = bytearray(org.customers)
        for q in range(org.customers):
            r = layout.r(q)
            codes[r] = layout.code(r, layout.hashed(q))
        for number, kind in enumerate(_KINDS_IN_KEY_ORDER, start=1):
            rows = _kind_rows(layout, kind, compress(range(org.customers), codes.translate(_MEMBERS[kind])))
            yield from _equal_values_by_id(rows) if org.dual_eligibility else rows
            if tick:
                done = org.customers * (number - 1) // len(_KINDS_IN_KEY_ORDER)
                tick(org.customers * number // len(_KINDS_IN_KEY_ORDER) - done)


def _kind_rows(layout: _Layout, kind: _Kind, ranks: Iterable[int]) -> Iterator[IdentifierRow]:
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
        layout = _layout(plan, org)
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
    return _mix(plan.key ^ fleet_ordinal ^ 1 << 62)


def _fleet_id(plan: DemoPlan, fleet_ordinal: int, hashed: int) -> int:
    return plan.fleet_base + fleet_ordinal * _ID_STRIDE + (hashed >> 40) % _ID_STRIDE


def balance_rows(plan: DemoPlan, tick: Tick | None = None) -> Iterator[BalanceRow]:
    """Per org, customers' balances (most in the default program, some in others), then fleets' pooled ones."""
    customer, fleet = EntityType.CUSTOMER.value, EntityType.FLEET.value
    for org in plan.orgs:
        layout = _layout(plan, org)
        org_id, (default, *others) = org.org_id, org.programs
        threshold = org.template.extra_balance_percent * 128 // 100
        balance = _amounts().balance
        for q in range(org.customers):
            hashed = layout.hashed(q)
            customer_id = layout.customer_id(q, hashed)
            if _has_default_balance(q, hashed):
                yield org_id, customer, customer_id, default.program_id, *balance(_mix(hashed ^ 1))
            for number, program in enumerate(others, start=2):
                program_hash = _mix(hashed ^ number)
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
            yield org_id, fleet, fleet_id, default.program_id, *balance(_mix(hashed ^ 1))
            if others and hashed >> 63:
                yield org_id, fleet, fleet_id, others[0].program_id, *balance(_mix(hashed ^ 2))


# --- the summary --------------------------------------------------------------------------------------------------


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
    orgs: tuple[DemoOrgSummary, ...]
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
    layout = _layout(plan, org)
    wanted = org.primary_identifier or IdentifierType.EMAIL
    for q in range(min(org.customers, 1_000)):
        hashed = layout.hashed(q)
        r = layout.r(q)
        if not _has_default_balance(q, hashed) or layout.is_family(r):
            continue
        for kind in _CODE_KINDS[layout.code(r, hashed)]:
            if kind.type is wanted:
                return _example(layout, kind, q, r, hashed)
    # Customer 0 always holds a default balance: fall back to its first identifier.
    hashed = layout.hashed(0)
    r = layout.r(0)
    return _example(layout, _CODE_KINDS[layout.code(r, hashed)][0], 0, r, hashed)


def _example(layout: _Layout, kind: _Kind, q: int, r: int, hashed: int) -> ExampleLookup:
    value = kind.raw_value(layout, r, hashed)
    return ExampleLookup(kind.source, kind.account_id or None, kind.type, value, layout.customer_id(q, hashed))


def summarise(plan: DemoPlan, *, identifiers: int, balances: int, seconds: float) -> DemoSummary:
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
    return DemoSummary(orgs, plan.customers, identifiers, plan.fleets, balances, seconds)


# --- loading ------------------------------------------------------------------------------------------------------


async def load_demo_data(
    connection: asyncpg.Connection, *, customers: int, seed: int = 1, progress: bool = True
) -> DemoSummary:
    """Generate and COPY demo data in one transaction, as new orgs with ids above those in the database.

    Into empty tables, secondary indexes and foreign keys are dropped and built once at the end (primary
    keys stay). Progress bars, counted in customers, go to stderr.
    """
    started = time.perf_counter()
    async with connection.transaction():
        highest = await bulk.begin_bulk_load(connection)
        plan = plan_demo(customers, seed=seed, start=_start_above(highest))
        await bulk.copy_rows(connection, "orgs", bulk.ORG_COLUMNS, org_rows(plan))
        await bulk.copy_rows(connection, "programs", bulk.PROGRAM_COLUMNS, program_rows(plan))
        deferred = await bulk.defer_indexes(connection) if highest.entities_empty else None
        with _bar(plan.customers, "customers", progress) as bar:
            await bulk.copy_rows(connection, "customers", bulk.CUSTOMER_COLUMNS, customer_rows(plan, bar.update))
        with _bar(plan.customers, "identifiers", progress) as bar:
            identifiers = await bulk.copy_rows(
                connection, "customer_identifiers", bulk.IDENTIFIER_COLUMNS, identifier_rows(plan, bar.update)
            )
        await bulk.copy_rows(connection, "fleets", bulk.FLEET_COLUMNS, fleet_rows(plan))
        with _bar(plan.customers, "balances", progress) as bar:
            balances = await bulk.copy_rows(
                connection, "balances", bulk.BALANCE_COLUMNS, balance_rows(plan, bar.update)
            )
        steps = len(deferred.restore_statements) if deferred else 0
        with _bar(steps + 1, "finishing", progress, unit=" steps") as bar:
            if deferred:
                await bulk.restore_indexes(connection, deferred, bar.update)
            await bulk.analyze(connection)
            bar.update(1)
    return summarise(plan, identifiers=identifiers, balances=balances, seconds=time.perf_counter() - started)


def _bar(total: int, description: str, enabled: bool, unit: str = " customers") -> tqdm[None]:
    return tqdm(total=total, desc=f"{description:<11}", unit=unit, unit_scale=True, disable=not enabled)


def _start_above(highest: bulk.HighestIds) -> IdStart:
    return IdStart(
        org_id=max(FIRST_ORG_ID, highest.org_id + 1),
        program_id=max(FIRST_PROGRAM_ID, highest.program_id + 1),
        customer_id=max(FIRST_CUSTOMER_ID, _round_up(highest.customer_id + 1)),
        fleet_id=max(FIRST_FLEET_ID, _round_up(highest.fleet_id + 1)),
    )


def _round_up(entity_id: int) -> int:
    """The next round million: ids of separate loads are easy to tell apart."""
    return -(-entity_id // 1_000_000) * 1_000_000
