"""An org's customers: where each stands in id order and in "directory" order, and the identifiers it has.

Every stream comes out in its table's primary-key order, so each index insert appends to the rightmost
leaf instead of searching the tree: for the six-column identifier key that is most of the load's cost.
For that, identifier values grow with a customer's rank in an org's "directory" order, while customer
ids follow a different, shuffled order (an affine permutation), so ids and names stay unrelated. Unique
values (mobiles, emails, ids) embed an ordinal, which makes them unique by construction.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.domain.vocabulary import IdentifierType, Source
from gateway.importer.demo.plan import FAMILY_PERCENT, ID_STRIDE, DemoOrg, DemoPlan, mix

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # in ASCII order, so order-preserving

_PERMUTATION_MULTIPLIER = 2_147_483_647  # prime, larger than any org: coprime with every customer count


@dataclass(frozen=True, slots=True)
class Layout:
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
        return mix(self.plan.key ^ (self.org.first_ordinal + q))

    def customer_id(self, q: int, hashed: int) -> int:
        return self.plan.customer_base + (self.org.first_ordinal + q) * ID_STRIDE + (hashed >> 40) % ID_STRIDE

    def spaced(self, r: int, space: int, jitter: int) -> int:
        """A number in [0, space) growing with the directory rank across the whole load: unique and ordered."""
        stride = space // self.total
        return (self.org.first_ordinal + r) * stride + jitter % stride

    def is_family(self, r: int) -> bool:
        """In the dual-eligibility org, customers 2p and 2p+1 of some pairs p share one email."""
        pair = r >> 1
        if self.org.primary_identifier is None or 2 * pair + 1 >= self.org.customers:
            return False
        return mix(self.plan.key ^ (self.org.first_ordinal + pair) ^ 1 << 61) % 100 < FAMILY_PERCENT

    def code(self, r: int, hashed: int) -> int:
        """Which identifiers the customer has: a shape and its WeChat account, in one byte."""
        if self.org.primary_identifier is None:
            pick = _SINGLE_PICK
        else:
            pick = _PRIMARY_EMAIL_PICK if self.is_family(r) else _PRIMARY_PICK
        return pick[(hashed >> 10) % len(pick)] << 1 | (hashed >> 26) & 1


def customer_layout(plan: DemoPlan, org: DemoOrg) -> Layout:
    customers = org.customers
    multiplier = _PERMUTATION_MULTIPLIER % customers
    offset = mix(plan.key ^ org.first_ordinal ^ 1 << 60) % customers
    names = len(org.template.first_names) * len(org.template.last_names)
    block = -(-customers // names)  # customers sharing one first and last name
    width = max(3, len(str(block)) + 1)
    return Layout(
        plan=plan,
        org=org,
        total=plan.customers,
        multiplier=multiplier,
        offset=offset,
        inverse=pow(multiplier, -1, customers),
        email_width=width,
        email_stride=9 * 10 ** (width - 1) // block,
    )


def _mobile_digits(layout: Layout, r: int, hashed: int) -> str:
    """The national number: GB mobiles are 7 and nine digits, Japanese ones 70, 80 or 90 and eight."""
    if layout.org.template.country == "JP":
        prefix, rest = divmod(layout.spaced(r, 300_000_000, hashed >> 20), 100_000_000)
        return f"{70 + 10 * prefix}{rest:08d}"
    return f"7{layout.spaced(r, 1_000_000_000, hashed >> 20):09d}"


def _mobile(layout: Layout, r: int, hashed: int) -> str:
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


def _app_mobile(layout: Layout, r: int, hashed: int) -> str:
    return _mobile(layout, r, hashed >> 2)  # the same number, typed differently in the app


_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")


def _email(layout: Layout, r: int, hashed: int) -> str:
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


def _wechat_openid(layout: Layout, r: int, hashed: int) -> str:
    """Like o6_bmjrPTlm6_2sgVt7hMZOPfL2M: an ordered base-62 head, then random characters."""
    number = layout.spaced(r, 62**9, hashed)
    head = ""
    for _ in range(9):
        number, digit = divmod(number, 62)
        head = _BASE62[digit] + head
    tail = base64.urlsafe_b64encode(mix(hashed).to_bytes(8, "big") + hashed.to_bytes(8, "big")).decode()
    return f"o{head}{tail[:18]}"


def _shop_id(layout: Layout, r: int, hashed: int) -> str:
    return f"SHOP-{layout.spaced(r, 10**10, hashed):010d}"


def _card_number(layout: Layout, r: int, hashed: int) -> str:
    return f"6280{layout.spaced(r, 10**12, hashed):012d}"


def _app_id(layout: Layout, r: int, hashed: int) -> str:
    return f"app_{layout.spaced(r, 1 << 64, hashed):016x}"


def _facebook_id(layout: Layout, r: int, hashed: int) -> str:
    return f"10{layout.spaced(r, 10**13, hashed):013d}"


def _line_id(layout: Layout, r: int, hashed: int) -> str:
    return f"U{layout.spaced(r, 1 << 64, hashed):016x}{mix(hashed):016x}"


@dataclass(frozen=True, slots=True)
class Kind:
    """Where and how a customer registered one identifier."""

    source: Source
    account_id: str  # '' when the source has no accounts
    type: IdentifierType
    raw_value: Callable[[Layout, int, int], str]  # (layout, directory rank, customer hash) -> value as typed


_MOBILE = Kind(Source.INSTORE, "", IdentifierType.MOBILE, _mobile)
_EMAIL = Kind(Source.INSTORE, "", IdentifierType.EMAIL, _email)
_SHOP_EMAIL = Kind(Source.ECOMMERCE, "", IdentifierType.EMAIL, _email)
_WECHAT = Kind(Source.WECHAT, "wx-1", IdentifierType.CUID, _wechat_openid)
_WECHAT_2 = Kind(Source.WECHAT, "wx-2", IdentifierType.CUID, _wechat_openid)  # chosen by a hash bit
_SHOP_ID = Kind(Source.ECOMMERCE, "", IdentifierType.EXTERNAL_ID, _shop_id)
_CARD = Kind(Source.WEBSITE, "", IdentifierType.CARD_NUMBER, _card_number)
_APP_ID = Kind(Source.MOBILE_APP, "", IdentifierType.EXTERNAL_ID, _app_id)
_APP_MOBILE = Kind(Source.MOBILE_APP, "", IdentifierType.MOBILE, _app_mobile)
_FACEBOOK = Kind(Source.FACEBOOK, "", IdentifierType.EXTERNAL_ID, _facebook_id)
_LINE = Kind(Source.LINE, "", IdentifierType.CUID, _line_id)

# Weighted shapes (the kinds a customer has), 1 to 4 identifiers, 2.5 on average.
_SINGLE_SHAPES: tuple[tuple[tuple[Kind, ...], int], ...] = (
    ((_MOBILE,), 6), ((_EMAIL,), 6), ((_WECHAT,), 3),
    ((_MOBILE, _EMAIL), 20), ((_EMAIL, _SHOP_ID), 5), ((_MOBILE, _WECHAT), 5), ((_EMAIL, _APP_ID), 5),
    ((_MOBILE, _EMAIL, _WECHAT), 12), ((_MOBILE, _EMAIL, _CARD), 10), ((_MOBILE, _EMAIL, _SHOP_EMAIL), 8),
    ((_MOBILE, _EMAIL, _FACEBOOK), 5),
    ((_MOBILE, _EMAIL, _WECHAT, _CARD), 6), ((_MOBILE, _EMAIL, _SHOP_EMAIL, _SHOP_ID), 5),
    ((_MOBILE, _EMAIL, _APP_ID, _APP_MOBILE), 2), ((_MOBILE, _EMAIL, _WECHAT, _LINE), 2),
)  # fmt: skip
# Dual eligibility on MOBILE: every customer has exactly one mobile, the primary identifier.
_PRIMARY_SHAPES: tuple[tuple[tuple[Kind, ...], int], ...] = (
    ((_MOBILE,), 15),
    ((_MOBILE, _EMAIL), 25), ((_MOBILE, _WECHAT), 5), ((_MOBILE, _CARD), 5),
    ((_MOBILE, _EMAIL, _WECHAT), 15), ((_MOBILE, _EMAIL, _CARD), 12), ((_MOBILE, _EMAIL, _LINE), 8),
    ((_MOBILE, _EMAIL, _WECHAT, _CARD), 10), ((_MOBILE, _EMAIL, _SHOP_EMAIL, _CARD), 5),
)  # fmt: skip

_SHAPES = tuple(dict.fromkeys(shape for shape, _ in (*_SINGLE_SHAPES, *_PRIMARY_SHAPES)))
# A customer's code is shape index * 2 + WeChat account bit; these are its kinds.
CODE_KINDS = tuple(
    tuple(_WECHAT_2 if kind is _WECHAT and account else kind for kind in shape)
    for shape in _SHAPES
    for account in (0, 1)
)


def _pick(weighted: Iterable[tuple[tuple[Kind, ...], int]]) -> tuple[int, ...]:
    """Shape indexes repeated by weight: a uniform number below its length picks a shape, no random call."""
    return tuple(_SHAPES.index(shape) for shape, weight in weighted for _ in range(weight))


_SINGLE_PICK = _pick(_SINGLE_SHAPES)
_PRIMARY_PICK = _pick(_PRIMARY_SHAPES)
_PRIMARY_EMAIL_PICK = _pick((shape, weight) for shape, weight in _PRIMARY_SHAPES if _EMAIL in shape)
# The kinds in identifier-key order (source, account_id, type); for each, which codes include it.
KINDS_IN_KEY_ORDER = sorted(
    {kind for kinds in CODE_KINDS for kind in kinds},
    key=lambda kind: (kind.source.value, kind.account_id, kind.type.value),
)
MEMBERS = {kind: bytes(kind in kinds for kinds in CODE_KINDS).ljust(256, b"\0") for kind in KINDS_IN_KEY_ORDER}
