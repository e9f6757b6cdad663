from pathlib import Path

from gateway.errors import GatewayError

ROOT = Path(__file__).resolve().parents[1]


def test_every_error_code_is_in_the_reference_table():
    reference = (ROOT / "docs" / "reference-api.md").read_text()
    for code, error in GatewayError.registry.items():
        row = next((line for line in reference.splitlines() if line.startswith(f"| `{code}` |")), None)
        assert row is not None, f"{code} is missing from the error table of docs/reference-api.md"
        if error.error_code is not None:
            assert f"| {error.error_code} |" in row
        assert f"| {error.http_status}" in row, f"{code}: the table's HTTP status is not {error.http_status}"


def test_error_codes_are_unique_by_construction():
    try:

        class Duplicate(GatewayError):
            code = "CUSTOMER_NOT_FOUND"

    except TypeError as error:
        assert "already used" in str(error)
    else:
        raise AssertionError("a duplicate error code was accepted")
