"""The bench's data: demo data loaded through the gateway's own CLI, then real identifiers sampled from it."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import orjson

from database import BENCH_DIR, Postgres

POSTGRAPHILE_SQL = BENCH_DIR / "postgraphile" / "points_balance.sql"
# The reference REST endpoint (gateway/edge/rest.py): the same lookup as the GraphQL field pointsBalance.
REST_PATH = "/v2/customers/lookup/points/balance"

# The customer lookup clients make most: one identifier, the org's default program.
GATEWAY_QUERY = (
    "query Balance($ids: [IdentifierInput!]!, $source: Source!) { "
    "pointsBalance(identifiers: $ids, source: $source) { "
    "entityId mainPoints promisedPoints totalPoints "
    "promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints } "
    "programs { programId programName mainPoints } } }"
)
POSTGRAPHILE_QUERY = (
    "query Balance($org: BigInt!, $source: String!, $type: String!, $value: String!) { "
    "pointsBalance(orgId: $org, source: $source, type: $type, value: $value) { "
    "entityId mainPoints promisedPoints totalPoints "
    "promisedPointsBreakup { delayedAccrualPoints externalTriggerBasedPoints } "
    "programs { programId programName mainPoints } } }"
)

# Identifiers without an account id (so one query text fits all), and for
# dual-eligibility orgs only those of the primary type, which alone decide.
_SAMPLE_IDENTIFIERS = """
SELECT i.org_id, i.source, i.type, i.value, i.customer_id
FROM customer_identifiers i TABLESAMPLE SYSTEM ({percent})
JOIN orgs o ON o.org_id = i.org_id
WHERE i.account_id = '' AND (NOT o.dual_eligibility OR i.type = o.primary_identifier)
ORDER BY random()
LIMIT {count}
"""


@dataclass(frozen=True, slots=True)
class Sample:
    """One real identifier and the customer it belongs to."""

    org_id: int
    source: str
    type: str
    value: str
    customer_id: int


@dataclass(frozen=True, slots=True)
class Dataset:
    customers: int
    load_seconds: float | None  # None when an already loaded database was reused
    samples: tuple[Sample, ...]
    keys: dict[int, str]  # org id -> API key
    counts: dict[str, int]


def gateway_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def load_demo_data(postgres: Postgres, customers: int) -> float:
    """Load demo data with `loyalty-gateway demo-data`; returns the seconds it took (the command as a whole)."""
    command = gateway_command(
        "demo-data", "--customers", str(customers), "--database-url", postgres.url, "--no-progress"
    )
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"demo-data failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    print(f"  {done.stdout.strip().splitlines()[-1]}")
    return seconds


def is_loaded(postgres: Postgres, customers: int) -> bool:
    marker = postgres.psql("SELECT to_regclass('bench_meta.loaded') IS NOT NULL")
    if marker != "t":
        return False
    return postgres.psql("SELECT customers FROM bench_meta.loaded") == str(customers)


def mark_loaded(postgres: Postgres, customers: int) -> None:
    postgres.psql(
        "CREATE SCHEMA IF NOT EXISTS bench_meta;"
        "DROP TABLE IF EXISTS bench_meta.loaded;"
        f"CREATE TABLE bench_meta.loaded AS SELECT {int(customers)}::int AS customers;"
    )


def prepare(postgres: Postgres, customers: int, *, samples: int, reuse: bool) -> Dataset:
    """Load (or reuse) the data, ANALYZE, install PostGraphile's function, sample identifiers, make API keys."""
    load_seconds: float | None = None
    if reuse and is_loaded(postgres, customers):
        print(f"reusing the loaded database in {postgres.data_dir}")
    else:
        print(f"loading demo data: {customers:,} customers ...", flush=True)
        load_seconds = load_demo_data(postgres, customers)
        print(f"  loaded in {load_seconds:.1f} s", flush=True)
        mark_loaded(postgres, customers)
    postgres.psql("VACUUM ANALYZE")
    postgres.psql(POSTGRAPHILE_SQL.read_text())
    picked = sample_identifiers(postgres, samples)
    keys = {org_id: create_api_key(postgres, org_id) for org_id in sorted({s.org_id for s in picked})}
    return Dataset(customers, load_seconds, picked, keys, table_counts(postgres))


def table_counts(postgres: Postgres) -> dict[str, int]:
    tables = ("orgs", "customers", "customer_identifiers", "fleets", "balances")
    out = postgres.psql(";".join(f"SELECT count(*) FROM {table}" for table in tables))
    return dict(zip(tables, (int(line) for line in out.splitlines()), strict=True))


def sample_identifiers(postgres: Postgres, count: int) -> tuple[Sample, ...]:
    total = int(postgres.psql("SELECT reltuples::bigint FROM pg_class WHERE relname = 'customer_identifiers'"))
    # Sample about 20 times more pages than needed, so the picks spread over the whole table.
    percent = min(100.0, 100.0 * 20 * count / max(total, 1))
    out = postgres.psql(
        "COPY (" + _SAMPLE_IDENTIFIERS.format(percent=f"{percent:.6f}", count=int(count)) + ") TO STDOUT"
    )
    picked = []
    for line in out.splitlines():
        org_id, source, type_, value, customer_id = line.split("\t")
        picked.append(Sample(int(org_id), source, type_, value, int(customer_id)))
    if len(picked) < min(count, 100):
        raise RuntimeError(f"only {len(picked)} identifiers could be sampled; is the database loaded?")
    return tuple(picked)


def create_api_key(postgres: Postgres, org_id: int) -> str:
    command = gateway_command(
        "api-key", "create", "--org", str(org_id), "--name", "bench", "--database-url", postgres.url
    )
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


# How many more rows than needed a sample of balances' pages aims at: enough that a sample falls short rarely,
# few enough that the rows kept (the first ones, in the table's order) still come from all over the table.
SAMPLE_MARGIN = 1.5
_KEY_COLUMNS = "org_id, entity_type, entity_id, program_id"


async def sample_balance_keys(connection: asyncpg.Connection, size: int) -> tuple[list[asyncpg.Record], int]:
    """`size` real balance keys (org_id, entity_type, entity_id, program_id) from pages sampled all over the table,
    or all of them when it holds no more; and how many balances it holds."""
    held: int = await connection.fetchval("SELECT count(*) FROM balances")
    if size >= held:
        return await connection.fetch(f"SELECT {_KEY_COLUMNS} FROM balances"), held
    percent = min(100.0, 100.0 * SAMPLE_MARGIN * size / held)
    keys = await connection.fetch(
        f"SELECT {_KEY_COLUMNS} FROM balances TABLESAMPLE SYSTEM ($2) LIMIT $1", size, percent
    )
    if len(keys) < size:  # an unlucky sample of a small table
        keys = await connection.fetch(f"SELECT {_KEY_COLUMNS} FROM balances ORDER BY random() LIMIT $1", size)
    return keys, held


# --- request bodies -----------------------------------------------------------------------------------------------


def gateway_body(sample: Sample) -> bytes:
    variables = {"ids": [{"type": sample.type, "value": sample.value}], "source": sample.source}
    return orjson.dumps({"query": GATEWAY_QUERY, "variables": variables, "operationName": "Balance"})


def postgraphile_body(sample: Sample) -> bytes:
    variables = {"org": str(sample.org_id), "source": sample.source, "type": sample.type, "value": sample.value}
    return orjson.dumps({"query": POSTGRAPHILE_QUERY, "variables": variables, "operationName": "Balance"})


def rest_target(sample: Sample) -> str:
    """The REST endpoint's path and query string for one identifier: the reference API's parameters, its
    identifier name in camelCase (MOBILE -> mobile, EXTERNAL_ID -> externalId; the endpoint ignores case and
    underscores)."""
    if "," in sample.value:
        # identifierValue is comma-separated: such a value cannot be looked up over REST.
        raise ValueError(f"the sampled identifier value {sample.value!r} holds a comma")
    first, *rest = sample.type.lower().split("_")
    name = first + "".join(word.capitalize() for word in rest)
    query = {"source": sample.source, "identifierName": name, "identifierValue": sample.value}
    return f"{REST_PATH}?{urlencode(query)}"


@dataclass(frozen=True, slots=True)
class Request:
    api_key: str  # '' for none
    body: bytes  # POSTed to /graphql; empty with a target
    customer_id: int  # the entityId the answer must carry
    # A GET of this path and query string instead (the REST endpoint), answered by the balance itself.
    target: str = ""


def gateway_requests(dataset: Dataset) -> list[Request]:
    return [Request(dataset.keys[s.org_id], gateway_body(s), s.customer_id) for s in dataset.samples]


def postgraphile_requests(dataset: Dataset) -> list[Request]:
    return [Request("", postgraphile_body(s), s.customer_id) for s in dataset.samples]


def rest_requests(dataset: Dataset) -> list[Request]:
    return [Request(dataset.keys[s.org_id], b"", s.customer_id, rest_target(s)) for s in dataset.samples]


def write_requests(requests: list[Request], path: Path) -> Path:
    """One request a line for the wrk script: `api key<TAB>body` (a POST to /graphql), or `api key<TAB>GET target`
    (a GET without a body)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(r.api_key.encode() + b"\t" + _wrk_request(r) + b"\n" for r in requests))
    return path


def _wrk_request(request: Request) -> bytes:
    return b"GET " + request.target.encode() if request.target else request.body
