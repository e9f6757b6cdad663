"""The shape of a demo load: its orgs and programs, and how many customers and fleets each gets.

Everything the row streams produce follows from a DemoPlan alone, and every attribute of an entity from a
64-bit hash of (seed, its ordinal): no rows are held in memory, and the same seed gives the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.domain.vocabulary import IdentifierType

# Where ids start in an empty database; they look like production ids, not 1, 2, 3.
FIRST_ORG_ID = 100_737
FIRST_PROGRAM_ID = 973
FIRST_CUSTOMER_ID = 565_000_000_000
FIRST_FLEET_ID = 880_000_000_000
# The narrowest value space (GB mobiles, 10**9 numbers) needs at least ~20 numbers per customer.
MAX_CUSTOMERS = 50_000_000
CUSTOMERS_PER_FLEET = 50
ID_STRIDE = 8  # ids advance by 1..8: sparse like real ones, still increasing
MASK64 = (1 << 64) - 1
FAMILY_PERCENT = 8  # dual-eligibility org: customer pairs sharing one (secondary) email


def mix(value: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash for a few multiplications."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
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
    key = mix(seed * 0x9E3779B97F4A7C15 & MASK64)
    return DemoPlan(seed, key, start.customer_id, start.fleet_id, tuple(orgs))
