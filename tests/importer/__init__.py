"""Helpers shared by the importer tests: writing JSON Lines files and dumping the tables."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg

# Every table an import writes, each ordered by its whole row.
DUMPED_TABLES = ("orgs", "programs", "customers", "customer_identifiers", "fleets", "balances")
# What the dump leaves out: versions (tests/importer/test_versions.py reads them).
_NOT_DUMPED = {table: {"as_of"} for table in ("customers", "fleets", "balances")}


def write_jsonl(path: Path, lines: Iterable[dict[str, Any] | str]) -> Path:
    """A JSON Lines file: dicts are dumped as JSON, strings are written as they are."""
    with path.open("w", encoding="utf-8") as file:
        for line in lines:
            file.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


async def dump(connection: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every imported table, in a stable order."""
    tables = {}
    for table in DUMPED_TABLES:
        rows = await connection.fetch(f"SELECT * FROM {table} ORDER BY {table}")
        left_out = _NOT_DUMPED.get(table, set())
        tables[table] = [tuple(value for name, value in row.items() if name not in left_out) for row in rows]
    return tables


def org(org_id: int, *, name: str = "Acme", dual: bool = False, primary: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": "org", "id": org_id, "name": name, "dualEligibility": dual}
    if primary is not None:
        record["primaryIdentifier"] = primary
    return record


def program(program_id: int, org_id: int, *, name: str = "Rewards", default: bool = True) -> dict[str, Any]:
    return {"kind": "program", "id": program_id, "orgId": org_id, "name": name, "default": default}


def identifier(type_: str, value: str, *, source: str = "INSTORE", account_id: str | None = None) -> dict[str, Any]:
    record = {"source": source, "type": type_, "value": value}
    if account_id is not None:
        record["accountId"] = account_id
    return record


def customer(customer_id: int, org_id: int, *identifiers: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "customer", "id": customer_id, "orgId": org_id, "identifiers": list(identifiers)}


def fleet(fleet_id: int, org_id: int, external_id: str, primary_user_id: int) -> dict[str, Any]:
    return {
        "kind": "fleet",
        "id": fleet_id,
        "orgId": org_id,
        "externalId": external_id,
        "primaryUserId": primary_user_id,
    }


def balance(
    org_id: int,
    entity_id: int,
    program_id: int,
    *,
    entity_type: str = "CUSTOMER",
    main: Any = "0.000",
    delayed: Any = "0.000",
    external: Any = "0.000",
) -> dict[str, Any]:
    return {
        "kind": "balance",
        "orgId": org_id,
        "entityType": entity_type,
        "entityId": entity_id,
        "programId": program_id,
        "mainPoints": main,
        "delayedAccrualPoints": delayed,
        "externalTriggerBasedPoints": external,
    }


def synthetic_lines(customers: int, *, orgs: int = 4, seed: int = 0) -> Iterable[str]:
    """A valid import file of the given size, shaped like production data.

    Per customer: 2 or 3 identifiers (2.5 on average) and 2 balances (two
    programs); one fleet per 50 customers. Even orgs have dual eligibility
    off, odd ones on with MOBILE as primary. Records of all kinds are
    interleaved, customers before their org, to exercise the any-order rule.
    """
    for number in range(customers):
        org_id = 1000 + number % orgs
        customer_id = 10_000_000 + number * 7 + seed
        identifiers = [
            f'{{"source":"INSTORE","type":"MOBILE","value":"+91 98{number:08d}"}}',
            f'{{"source":"WEB_ENGAGE","type":"EMAIL","value":"Customer.{number}@Example.com"}}',
        ]
        if number % 2:
            identifiers.append(
                f'{{"source":"WECHAT","accountId":"wx-{number % 3}","type":"CUID","value":"o6_{number:x}_{seed}"}}'
            )
        yield (f'{{"kind":"customer","id":{customer_id},"orgId":{org_id},"identifiers":[{",".join(identifiers)}]}}')
        for program_id in (org_id * 10, org_id * 10 + 1):
            yield (
                f'{{"kind":"balance","orgId":{org_id},"entityType":"CUSTOMER","entityId":{customer_id},'
                f'"programId":{program_id},"mainPoints":"{number % 100_000}.{number % 1000:03d}",'
                f'"delayedAccrualPoints":{number % 977}.5,"externalTriggerBasedPoints":"0"}}'
            )
        if number % 50 == 0:
            yield (
                f'{{"kind":"fleet","id":{customer_id},"orgId":{org_id},"externalId":"FLEET-{number}",'
                f'"primaryUserId":{customer_id}}}'
            )
    for org_id in range(1000, 1000 + orgs):
        dual = org_id % 2 == 1
        primary = ',"primaryIdentifier":"MOBILE"' if dual else ""
        yield f'{{"kind":"org","id":{org_id},"name":"Org {org_id}","dualEligibility":{str(dual).lower()}{primary}}}'
        yield f'{{"kind":"program","id":{org_id * 10},"orgId":{org_id},"name":"Main","default":true}}'
        yield f'{{"kind":"program","id":{org_id * 10 + 1},"orgId":{org_id},"name":"Partner","default":false}}'
