"""One line on its own: parsing, validation and normalisation, without a database."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gateway.domain.vocabulary import EntityType, IdentifierType, Source
from gateway.importer.records import (
    BalanceRecord,
    CustomerRecord,
    FleetRecord,
    IdentifierRecord,
    OrgRecord,
    ProgramRecord,
    RecordError,
    parse_line,
)


def _reason(line: str) -> str:
    with pytest.raises(RecordError) as error:
        parse_line(line)
    return error.value.reason


def test_every_kind_parses_into_its_record():
    assert parse_line('{"kind":"org","id":1,"name":"Acme","dualEligibility":false}') == OrgRecord(
        1, "Acme", False, None
    )
    assert parse_line(
        '{"kind":"org","id":2,"name":"Beta","dualEligibility":true,"primaryIdentifier":"CUID"}'
    ) == OrgRecord(2, "Beta", True, IdentifierType.CUID)
    assert parse_line('{"kind":"program","id":9,"orgId":1,"name":"P","default":false}') == ProgramRecord(
        9, 1, "P", False
    )
    assert parse_line('{"kind":"fleet","id":5,"orgId":1,"externalId":"F-5","primaryUserId":7}') == FleetRecord(
        5, 1, "F-5", 7
    )
    assert parse_line(
        '{"kind":"balance","orgId":1,"entityType":"FLEET","entityId":5,"programId":9,'
        '"mainPoints":"1.5","delayedAccrualPoints":2,"externalTriggerBasedPoints":0.125}'
    ) == BalanceRecord(1, EntityType.FLEET, 5, 9, Decimal("1.5"), Decimal(2), Decimal("0.125"))


def test_identifier_values_are_normalised_and_account_id_defaults_to_empty():
    record = parse_line(
        json.dumps(
            {
                "kind": "customer",
                "id": 7,
                "orgId": 1,
                "identifiers": [
                    {"source": "INSTORE", "type": "EMAIL", "value": "  Tom@Example.COM "},
                    {"source": "WECHAT", "accountId": None, "type": "MOBILE", "value": "+44 (20) 7946-0958"},
                    {"source": "LINE", "accountId": "", "type": "CARD_NUMBER", "value": " C 1 "},
                    {"source": "MOBILE_APP", "accountId": "app-1", "type": "EXTERNAL_ID", "value": "X-1"},
                ],
            }
        )
    )

    assert record == CustomerRecord(
        7,
        1,
        (
            IdentifierRecord(Source.INSTORE, "", IdentifierType.EMAIL, "tom@example.com"),
            IdentifierRecord(Source.WECHAT, "", IdentifierType.MOBILE, "442079460958"),
            # Only emails and mobiles are rewritten; other values are kept as they are.
            IdentifierRecord(Source.LINE, "", IdentifierType.CARD_NUMBER, " C 1 "),
            IdentifierRecord(Source.MOBILE_APP, "app-1", IdentifierType.EXTERNAL_ID, "X-1"),
        ),
    )


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ('"8500.000"', "8500.000"),
        ('"-12.5"', "-12.5"),
        ('"0"', "0"),
        ('"000000000000000000001.1"', "1.1"),
        ("999999999999999.999", "999999999999999.999"),
        ("0.1", "0.1"),
        ("1e3", "1000.000"),
        ("1.5e-2", "0.015"),
        ("-0", "0"),
    ],
)
def test_point_amounts_are_exact(amount: str, expected: str):
    record = parse_line(
        '{"kind":"balance","orgId":1,"entityType":"CUSTOMER","entityId":5,"programId":9,'
        f'"mainPoints":{amount},"delayedAccrualPoints":"0","externalTriggerBasedPoints":"0"}}'
    )

    assert isinstance(record, BalanceRecord)
    assert record.main_points == Decimal(expected)
    assert type(record.main_points) is Decimal


@pytest.mark.parametrize(
    ("amount", "fragment"),
    [
        ('"1.2345"', "more than 3 decimals"),
        ("1.2345", "more than 3 decimals"),
        ("1.2300", "more than 3 decimals"),
        ("1e-4", "more than 3 decimals"),
        ('"1000000000000000"', "less than 10^15"),
        ("-1000000000000000", "less than 10^15"),
        ("1e15", "less than 10^15"),
        ('"1e3"', "must be a decimal number"),
        ('"+1"', "must be a decimal number"),
        ('" 1"', "must be a decimal number"),
        ('"1."', "must be a decimal number"),
        ('""', "must be a decimal number"),
        ("true", "must be a string or a number"),
        ("null", "must be a string or a number"),
        ("[1]", "must be a string or a number"),
    ],
)
def test_bad_point_amounts_are_refused(amount: str, fragment: str):
    reason = _reason(
        '{"kind":"balance","orgId":1,"entityType":"CUSTOMER","entityId":5,"programId":9,'
        f'"mainPoints":{amount},"delayedAccrualPoints":"0","externalTriggerBasedPoints":"0"}}'
    )

    assert fragment in reason
    assert '"mainPoints"' in reason


@pytest.mark.parametrize(
    "value",
    ["1.0", "1e2", "true", '"1"', "0", "-5", "9223372036854775808", "null"],
)
def test_ids_must_be_json_integers_of_64_bits(value: str):
    assert '"id" must be an integer from 1 to 9223372036854775807' in _reason(
        f'{{"kind":"customer","id":{value},"orgId":1,"identifiers":[]}}'
    )


def test_the_largest_64_bit_id_is_allowed():
    record = parse_line('{"kind":"customer","id":9223372036854775807,"orgId":1,"identifiers":[]}')

    assert isinstance(record, CustomerRecord)
    assert record.id == 2**63 - 1


def test_booleans_must_be_json_booleans():
    assert '"default" must be true or false, got 1' in _reason(
        '{"kind":"program","id":9,"orgId":1,"name":"P","default":1}'
    )


def test_null_is_not_a_value_for_a_required_field():
    assert '"name" must be a string, got null' in _reason('{"kind":"org","id":1,"name":null,"dualEligibility":false}')


def test_a_huge_integer_is_invalid_json_rather_than_a_crash():
    assert "invalid JSON" in _reason('{"kind":"org","id":' + "9" * 5000 + "}")


def test_deep_nesting_is_invalid_json_rather_than_a_crash():
    assert "invalid JSON" in _reason('{"kind":"org","id":' + "[" * 100_000 + "]" * 100_000 + "}")


def test_lone_surrogates_are_refused():
    line = json.dumps(
        {"kind": "customer", "id": 1, "orgId": 1, "identifiers": [{"source": "JD", "type": "CUID", "value": "\ud800"}]}
    )

    assert "identifiers[0].value contains a NUL character or an unpaired surrogate" in _reason(line)


def test_an_account_id_must_be_a_string():
    line = json.dumps(
        {
            "kind": "customer",
            "id": 1,
            "orgId": 1,
            "identifiers": [{"source": "JD", "accountId": 0, "type": "CUID", "value": "x"}],
        }
    )

    assert "identifiers[0].accountId must be a string, got 0" in _reason(line)


def test_an_identifier_must_be_an_object():
    assert 'identifiers[1] must be an object, got "tom@example.com"' in _reason(
        '{"kind":"customer","id":1,"orgId":1,"identifiers":[{"source":"JD","type":"CUID","value":"x"},'
        '"tom@example.com"]}'
    )


def test_a_fleet_external_id_must_not_be_blank():
    assert '"externalId" must not be blank' in _reason(
        '{"kind":"fleet","id":5,"orgId":1,"externalId":"   ","primaryUserId":7}'
    )


def test_trailing_data_after_the_object_is_invalid_json():
    assert "invalid JSON: Extra data" in _reason('{"kind":"org","id":1,"name":"A","dualEligibility":false} {}')
