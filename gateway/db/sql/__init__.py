"""The SQL statements, one per file, loaded once into named constants."""

from __future__ import annotations

from importlib.resources import files


def _load(name: str) -> str:
    return files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


FETCH_BALANCES = _load("fetch_balances")
FETCH_CUSTOMER_BALANCE = _load("fetch_customer_balance")
FIND_API_KEY = _load("find_api_key")
INSERT_API_KEY = _load("insert_api_key")
LIST_API_KEYS = _load("list_api_keys")
REVOKE_API_KEY = _load("revoke_api_key")
TOUCH_API_KEY = _load("touch_api_key")
SAMPLE_CUSTOMER = _load("sample_customer")
SCHEMA_VERSION = _load("schema_version")
COUNT_ORGS = "SELECT count(*) FROM orgs"
