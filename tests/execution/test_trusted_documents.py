"""Trusted documents: manifests registered all or nothing, and a mode that answers nothing else."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.commands import documents as commands
from gateway.config import Settings

ORG = 100737
TOM = 565039505
BALANCE = (
    'query Balance { pointsBalance(identifiers: [{type: ID, value: "565039505"}], source: INSTORE) { totalPoints } }'
)
TYPENAME = "query Ping { __typename }"
ANSWER = {"data": {"pointsBalance": {"totalPoints": "8500.000"}}}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apollo_manifest(*documents: str) -> dict[str, Any]:
    operations = [{"id": sha256(d), "name": d.split()[1], "type": "query", "body": d} for d in documents]
    return {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}


def write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return path


def register(settings: Settings, path: Path) -> int:
    return asyncio.run(commands.register_documents(settings, path))


@pytest.fixture
def registered(database_url: str, tmp_path: Path) -> Settings:
    """Apollo's manifest with the balance lookup, and a Relay one (its own ids) with a ping."""
    settings = Settings(database_url=database_url)
    assert register(settings, write(tmp_path, "persisted-query-manifest.json", apollo_manifest(BALANCE))) == 0
    assert register(settings, write(tmp_path, "persisted_queries.json", {"relay-7f3a": TYPENAME})) == 0
    return settings


def test_each_manifest_format_registers(registered: Settings, tmp_path: Path, capsys) -> None:
    codegen = write(tmp_path, "persisted-documents.json", {sha256("{ __typename }"): "{ __typename }"})
    assert register(registered, codegen) == 0
    capsys.readouterr()
    assert asyncio.run(commands.list_documents(registered)) == 0
    listing = capsys.readouterr().out
    for document_id in (sha256(BALANCE), "relay-7f3a", sha256("{ __typename }")):
        assert document_id in listing
    assert "Balance" in listing and "Ping" in listing


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (apollo_manifest(BALANCE, "query Broken { nope }"), "Cannot query field 'nope'"),
        ({"a": BALANCE, "b": "{ " + "x: __typename " * 61 + "}"}, "at most 60"),
        ({"a": "query {"}, "Syntax Error"),
        ([1, 2], "not a manifest"),
        ({"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}, "version 1"),
    ],
)
def test_a_manifest_with_one_bad_document_registers_nothing(
    database_url: str, tmp_path: Path, capsys, manifest: Any, reason: str
) -> None:
    settings = Settings(database_url=database_url)
    assert register(settings, write(tmp_path, "manifest.json", manifest)) == 1
    assert reason in capsys.readouterr().err
    assert asyncio.run(commands.list_documents(settings)) == 0
    assert capsys.readouterr().out.strip() == "ID  NAME  REGISTERED  REVOKED"


def test_an_id_already_registered_for_another_document_registers_nothing(registered: Settings, tmp_path, capsys):
    manifest = {"fresh-id": "{ __typename }", "relay-7f3a": "query Other { __typename }"}
    assert register(registered, write(tmp_path, "again.json", manifest)) == 1
    assert "relay-7f3a" in capsys.readouterr().err
    asyncio.run(commands.list_documents(registered))
    assert "fresh-id" not in capsys.readouterr().out


class TestTrustedOnly:
    @pytest.fixture
    def settings(self, registered: Settings) -> Settings:
        return registered.with_overrides(trusted_documents_only=True, api_key_cache_ttl=0.2)

    @pytest.fixture
    async def key(self, gateway) -> str:
        await gateway.seed.org(ORG)
        await gateway.seed.program(ORG, 973, default=True)
        await gateway.seed.customer(ORG, TOM, ("INSTORE", None, "EMAIL", "tom@example.com"))
        await gateway.seed.balance(ORG, TOM, 973, "8500")
        return await gateway.seed.api_key(ORG)

    async def post(self, gateway, key: str, body: Any) -> Any:
        return await gateway.client.post("/graphql", json=body, headers={"authorization": f"Bearer {key}"})

    async def test_registered_documents_are_answered_by_text_hash_or_id(self, gateway, key) -> None:
        by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(BALANCE)}}}
        for body in ({"query": BALANCE}, by_hash, {"documentId": sha256(BALANCE)}, {"doc_id": sha256(BALANCE)}):
            response = await self.post(gateway, key, body)
            assert response.json() == ANSWER, body
        assert (await self.post(gateway, key, {"id": "relay-7f3a"})).json() == {"data": {"__typename": "Query"}}

    async def test_any_other_document_is_refused_before_it_is_parsed(self, gateway, key) -> None:
        validations = gateway.app.endpoint.documents.validations
        untrusted = BALANCE.replace("totalPoints", "mainPoints")
        response = await self.post(gateway, key, {"query": untrusted})
        assert response.status_code == 403
        assert response.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
        # Not parsed, not validated: a client cannot make the gateway work on documents of its own.
        assert gateway.app.endpoint.documents.validations == validations
        unknown = await self.post(gateway, key, {"documentId": "nope"})
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    async def test_automatic_persisted_queries_cannot_register_new_documents(self, gateway, key) -> None:
        untrusted = "query Mine { __typename }"
        body = {"query": untrusted, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(untrusted)}}}
        assert (await self.post(gateway, key, body)).status_code == 403
        assert await gateway.seed.connection.fetchval("SELECT count(*) FROM persisted_queries") == 0

    async def test_a_revoked_document_stops_being_answered_within_the_cache_lifetime(
        self, gateway, key, settings, capsys
    ) -> None:
        assert (await self.post(gateway, key, {"query": BALANCE})).json() == ANSWER
        assert await commands.revoke_document(settings, sha256(BALANCE)) == 0
        assert "is revoked" in capsys.readouterr().out
        await asyncio.sleep(0.3)
        assert (await self.post(gateway, key, {"query": BALANCE})).status_code == 403


class TestDevelopment:
    @pytest.fixture
    def settings(self, registered: Settings) -> Settings:
        return registered.with_overrides(trusted_documents_only=True, env="development")

    async def test_development_mode_answers_any_document_for_graphiql(self, gateway) -> None:
        await gateway.seed.org(ORG)
        key = await gateway.seed.api_key(ORG)
        response = await gateway.client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {key}"}
        )
        assert response.json() == {"data": {"__typename": "Query"}}
