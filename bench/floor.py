"""The floor: the gateway's lookup with everything GraphQL taken away.

Starlette + asyncpg + orjson. It reads the same request body as the gateway
(only its variables: the query text is not parsed), checks the API key in an
in-memory dict (the gateway caches keys too), runs the statement the gateway
runs for that lookup with the parameters the gateway would pass (one prepared
statement, cached by asyncpg): fetch_customer_balance.sql for one identifier,
fetch_balances.sql for several. It answers with the same JSON shape. What the
gateway spends beyond this is the price of its GraphQL layer.

Its pool hands connections back without asyncpg's default reset query
(`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), which
costs a second round trip per request: nothing here changes session state,
so the floor does not pay for it (BENCH_FLOOR_POOL_RESET=default restores it).

Run by bench/run.py under uvicorn (uvloop, httptools, 1 worker); configured by
BENCH_DATABASE_URL, BENCH_POOL_SIZE and BENCH_KEYS_FILE (JSON: key -> org id).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from gateway.domain.identifiers import normalise, parse_entity_id
from gateway.domain.vocabulary import ENTITY_ID_TYPES, IdentifierType
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _statement(name: str, known: int) -> tuple[str, int]:
    """A statement of the gateway's and how many parameters it takes. The first `known` describe the lookups
    (see the statement's header); any later ones are optional narrowings (such as the one customer an end user
    may see) for which NULL means none."""
    text = files("gateway.db.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")
    count = max(int(number) for number in re.findall(r"\$(\d+)", text))
    if count < known:
        raise RuntimeError(f"{name}.sql takes {count} parameters; the floor knows {known}")
    return text, count


# Any batch of lookups; and the one the gateway runs instead for one customer lookup with one identifier.
FETCH_BALANCES, PARAMETER_COUNT = _statement("fetch_balances", 10)
FETCH_CUSTOMER_BALANCE, CUSTOMER_PARAMETER_COUNT = _statement("fetch_customer_balance", 8)
ZERO = Decimal("0.000")

# One sent identifier: (type, normalised value, parsed entity id or None).
SentIdentifier = tuple[str, str, int | None]


def fetch_arguments(org_id: int, lookups: Sequence[tuple[str, str, Sequence[SentIdentifier]]]) -> list[object]:
    """fetch_balances.sql's arguments for customer lookups (source, account id, identifiers) in the default
    program, exactly as the gateway builds them."""
    numbers: list[int] = []
    sent: list[SentIdentifier] = []
    for number, (_, _, identifiers) in enumerate(lookups, start=1):
        numbers += [number] * len(identifiers)
        sent += identifiers
    arguments: list[object] = [
        org_id,
        ["CUSTOMER"] * len(lookups),
        [source for source, _, _ in lookups],
        [account_id for _, account_id, _ in lookups],
        [None] * len(lookups),
        [False] * len(lookups),
        numbers,
        [type_ for type_, _, _ in sent],
        [value for _, value, _ in sent],
        [entity_id for _, _, entity_id in sent],
    ]
    return arguments + [None] * (PARAMETER_COUNT - len(arguments))


def customer_balance_arguments(org_id: int, source: str, account_id: str, identifier: SentIdentifier) -> list[object]:
    """fetch_customer_balance.sql's arguments for one customer lookup with one identifier in the default program,
    exactly as the gateway builds them."""
    type_, value, entity_id = identifier
    arguments: list[object] = [org_id, source, account_id, None, False, type_, value, entity_id]
    return arguments + [None] * (CUSTOMER_PARAMETER_COUNT - len(arguments))


def lookup_statement(
    org_id: int, lookups: Sequence[tuple[str, str, Sequence[SentIdentifier]]]
) -> tuple[str, list[object]]:
    """The statement the gateway runs for these customer lookups in the default program, and its arguments."""
    if len(lookups) == 1 and len(lookups[0][2]) == 1:
        source, account_id, (identifier,) = lookups[0]
        return FETCH_CUSTOMER_BALANCE, customer_balance_arguments(org_id, source, account_id, identifier)
    return FETCH_BALANCES, fetch_arguments(org_id, lookups)


_KEYS: dict[str, int] = {}


def _error(message: str, code: str, status: int = 200) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    if status == 200:
        body["data"] = {"pointsBalance": None}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _balance(rows: Sequence[asyncpg.Record]) -> dict[str, Any] | None:
    """The pointsBalance answer for one lookup's rows, or None when nothing matched."""
    head = rows[0]
    if head["entity_id"] is None or any(head["other"] or ()):
        return None
    programs = []
    main = delayed = external = ZERO
    for row in rows:
        if row["program_id"] is None:
            continue
        program_main = row["main_points"] if row["main_points"] is not None else ZERO
        main += program_main
        delayed += row["delayed_accrual_points"] if row["delayed_accrual_points"] is not None else ZERO
        external += row["external_trigger_points"] if row["external_trigger_points"] is not None else ZERO
        programs.append(
            {"programId": row["program_id"], "programName": row["program_name"], "mainPoints": str(program_main)}
        )
    return {
        "entityId": str(head["entity_id"]),
        "mainPoints": str(main),
        "promisedPoints": str(delayed + external),
        "totalPoints": str(main + delayed + external),
        "promisedPointsBreakup": {
            "delayedAccrualPoints": str(delayed),
            "externalTriggerBasedPoints": str(external),
        },
        "programs": programs,
    }


async def graphql(request: Request) -> Response:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    org_id = _KEYS.get(key) if scheme.lower() == "bearer" else None
    if org_id is None:
        return _error("the API key is not valid", "UNAUTHENTICATED", 401)
    variables = orjson.loads(await request.body())["variables"]
    sent: list[SentIdentifier] = []
    for identifier in variables["ids"]:
        type_ = IdentifierType(identifier["type"])
        value = normalise(type_, identifier["value"])
        sent.append((type_.value, value, parse_entity_id(value) if type_ in ENTITY_ID_TYPES else None))
    statement, arguments = lookup_statement(org_id, [(variables["source"], variables.get("accountId") or "", sent)])
    pool: asyncpg.Pool = request.app.state.pool
    rows = await pool.fetch(statement, *arguments)  # an API key's request: no end-user narrowing
    balance = _balance(rows)
    if balance is None:
        return _error("no customer matches the identifiers", "CUSTOMER_NOT_FOUND")
    return Response(orjson.dumps({"data": {"pointsBalance": balance}}), media_type="application/json")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release a connection as is: no statement changes session state (asyncpg still ends open transactions)."""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    _KEYS.update(orjson.loads(Path(os.environ["BENCH_KEYS_FILE"]).read_bytes()))  # noqa: ASYNC240 (once, at start)
    size = int(os.environ["BENCH_POOL_SIZE"])
    app.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_DATABASE_URL"],
        min_size=size,
        max_size=size,
        server_settings={"application_name": "bench-floor", "jit": "off"},
        reset=None if os.environ.get("BENCH_FLOOR_POOL_RESET") == "default" else _keep_session,
    )
    # As the gateway does: what is alive at start stays out of the collector's generations.
    gc.freeze()
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)
