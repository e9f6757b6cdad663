"""The SQL statements, one per file, loaded once into named constants."""

from __future__ import annotations

from importlib.resources import files


def _load(name: str) -> str:
    return files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


FETCH_BALANCES = _load("fetch_balances")
FETCH_CUSTOMER_BALANCE = _load("fetch_customer_balance")
FETCH_CUSTOMER_BALANCES = _load("fetch_customer_balances")
FIND_API_KEY = _load("find_api_key")
INSERT_API_KEY = _load("insert_api_key")
LIST_API_KEYS = _load("list_api_keys")
REVOKE_API_KEY = _load("revoke_api_key")
TOUCH_API_KEY = _load("touch_api_key")
FIND_TOKEN_KEYS = _load("find_token_keys")
ANY_TOKEN_KEYS = _load("any_token_keys")
INSERT_TOKEN_KEY = _load("insert_token_key")
LIST_TOKEN_KEYS = _load("list_token_keys")
REVOKE_TOKEN_KEY = _load("revoke_token_key")
SAMPLE_CUSTOMER = _load("sample_customer")
FIND_PERSISTED_QUERY = _load("find_persisted_query")
INSERT_PERSISTED_QUERY = _load("insert_persisted_query")
EVICT_PERSISTED_QUERIES = _load("evict_persisted_queries")
TOUCH_PERSISTED_QUERY = _load("touch_persisted_query")
LIVE_TRUSTED_DOCUMENTS = _load("live_trusted_documents")
INSERT_TRUSTED_DOCUMENT = _load("insert_trusted_document")
LIST_TRUSTED_DOCUMENTS = _load("list_trusted_documents")
REVOKE_TRUSTED_DOCUMENT = _load("revoke_trusted_document")
SCHEMA_VERSION = _load("schema_version")
PRIMARY_WAL_POSITION = _load("primary_wal_position")
REPLICA_STATE = _load("replica_state")
COUNT_ORGS = "SELECT count(*) FROM orgs"
