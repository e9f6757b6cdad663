"""Build manifests of trusted documents, as the usual client tools write them, checked before registration.

- Apollo's persisted-query manifest (`persisted-query-manifest.json`):
  `{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "name", "type", "body"}]}`
- Relay's `persisted_queries.json` and GraphQL Code Generator's client-preset `persisted-documents.json`:
  `{"<id>": "<document>"}` (Relay's ids are its own; the client preset's are SHA-256 hashes).

Every document must parse and validate against the schema and the document limits: a manifest is
registered whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphql import ASTValidationRule, GraphQLSchema, OperationDefinitionNode

from gateway.db.persisted_documents import TrustedDocument
from gateway.execution.documents import DEFAULT_RULES, DocumentCache
from gateway.execution.persisted import sha256_of

APOLLO_FORMAT = "apollo-persisted-query-manifest"


class ManifestError(Exception):
    """The manifest cannot be registered; the message says where and why."""


def read_manifest(path: Path) -> list[TrustedDocument]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"cannot read {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path} is not JSON: {error}") from None
    documents = _apollo(raw) if isinstance(raw, dict) and raw.get("format") == APOLLO_FORMAT else _flat(raw)
    if not documents:
        raise ManifestError(f"{path} holds no documents")
    return documents


def check_documents(
    documents: Sequence[TrustedDocument],
    schema: GraphQLSchema,
    *,
    limit_rules: Sequence[type[ASTValidationRule]],
    max_tokens: int,
) -> list[TrustedDocument]:
    """The documents with their operation names, once each parses and validates; raises ManifestError."""
    cache = DocumentCache(schema, rules=DEFAULT_RULES, limit_rules=limit_rules, max_tokens=max_tokens)
    checked = []
    for document in documents:
        prepared = cache.get(document.document)
        if prepared.errors:
            raise ManifestError(f"document {document.document_id}: {prepared.errors[0].message}")
        operations = [d for d in prepared.node.definitions if isinstance(d, OperationDefinitionNode)]  # type: ignore[union-attr]
        name = document.name or ", ".join(op.name.value for op in operations if op.name) or "(anonymous)"
        checked.append(TrustedDocument(document.document_id, document.sha256, document.document, name))
    return checked


def _apollo(raw: dict[str, Any]) -> list[TrustedDocument]:
    if raw.get("version") != 1 or not isinstance(raw.get("operations"), list):
        raise ManifestError("an Apollo persisted-query manifest must have version 1 and a list of operations")
    documents = []
    for number, operation in enumerate(raw["operations"], start=1):
        if not isinstance(operation, dict) or not all(isinstance(operation.get(k), str) for k in ("id", "body")):
            raise ManifestError(f"operation {number} of the manifest has no string `id` and `body`")
        name = operation.get("name") if isinstance(operation.get("name"), str) else ""
        documents.append(_document(operation["id"], operation["body"], name or ""))
    return _unique(documents)


def _flat(raw: Any) -> list[TrustedDocument]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ManifestError(
            "not a manifest this gateway reads: expected Apollo's persisted-query manifest, "
            "or a JSON object of id → document (Relay, GraphQL Code Generator)"
        )
    return _unique([_document(document_id, text, "") for document_id, text in raw.items()])


def _document(document_id: str, text: str, name: str) -> TrustedDocument:
    if not document_id or len(document_id) > 200:
        raise ManifestError(f"document id {document_id[:40]!r} must have 1 to 200 characters")
    return TrustedDocument(document_id, sha256_of(text), text, name)


def _unique(documents: list[TrustedDocument]) -> list[TrustedDocument]:
    seen: dict[str, str] = {}
    for document in documents:
        if seen.setdefault(document.document_id, document.sha256) != document.sha256:
            raise ManifestError(f"document id {document.document_id} is given to two different documents")
    return documents
