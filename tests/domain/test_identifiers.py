"""Identifier normalisation and entity ids: pure rules, no database."""

from __future__ import annotations

import pytest

from gateway.domain.identifiers import normalise, parse_entity_id
from gateway.domain.vocabulary import MAX_ENTITY_ID, IdentifierType

EXACT_TYPES = [IdentifierType.EXTERNAL_ID, IdentifierType.CARD_NUMBER, IdentifierType.CUID]


@pytest.mark.parametrize(
    "written",
    ["tom@example.com", "Tom@Example.COM", "  tom@example.com", "TOM@EXAMPLE.COM \t", "\n Tom@example.com \n"],
)
def test_email_is_compared_case_insensitively_after_trimming(written: str) -> None:
    assert normalise(IdentifierType.EMAIL, written) == "tom@example.com"


def test_email_inner_characters_are_kept() -> None:
    assert normalise(IdentifierType.EMAIL, "tom.o'neil+tag@example.com") == "tom.o'neil+tag@example.com"


@pytest.mark.parametrize(
    "written",
    [
        "442079460958",
        "+442079460958",
        "+44 20 7946 0958",
        "+44 (20) 7946-0958",
        "4420 79460958",
        "44-20-7946-0958",
        "(44) 2079460958",
        "[44] 2079460958",
        " +44\t2079460958 ",
    ],
)
def test_mobile_drops_spaces_dashes_brackets_and_a_leading_plus(written: str) -> None:
    assert normalise(IdentifierType.MOBILE, written) == "442079460958"


def test_mobile_plus_is_dropped_only_at_the_start() -> None:
    assert normalise(IdentifierType.MOBILE, "44+2079460958") == "44+2079460958"


@pytest.mark.parametrize("type_", EXACT_TYPES)
@pytest.mark.parametrize("value", ["Ab-1", " Ab-1 ", "AB (1)", "+44 20"])
def test_other_registered_types_are_matched_exactly(type_: IdentifierType, value: str) -> None:
    assert normalise(type_, value) == value


@pytest.mark.parametrize("type_", [IdentifierType.ID, IdentifierType.PRIMARY_USER_ID])
def test_entity_id_types_are_trimmed(type_: IdentifierType) -> None:
    assert normalise(type_, " 565039505 ") == "565039505"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("565039505", 565039505),
        (" 42 ", 42),
        (str(2**53 + 1), 2**53 + 1),
        (str(MAX_ENTITY_ID), MAX_ENTITY_ID),
    ],
)
def test_entity_id_is_a_positive_64_bit_integer(text: str, expected: int) -> None:
    assert parse_entity_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "0",
        "-1",
        "+1",
        str(MAX_ENTITY_ID + 1),
        "1" * 40,
        "1.0",
        "1e3",
        "0x10",
        "1_000",
        "12 34",
        "abc",
        "\u0663",  # ARABIC-INDIC DIGIT THREE: int() would accept it
        "\uff11",  # FULLWIDTH DIGIT ONE
    ],
)
def test_anything_else_is_no_entity_id(text: str) -> None:
    assert parse_entity_id(text) is None
