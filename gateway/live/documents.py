"""Subscription documents, as queries' are: parsed and validated once, by the gateway's rules and limits.

Subscriptions run through strawberry (its graphql-transport-ws and graphql-sse transports); the transports
check each document first (gateway.live.transport: `refusal`), and this extension then hands strawberry the
cached, validated document, so that it neither parses nor validates it again.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension


class CachedDocuments(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        documents = getattr(execution.context, "documents", None)
        if documents is not None and execution.query is not None:
            document = documents.get(execution.query)
            if document.node is not None and not document.errors:
                execution.graphql_document = document.node
                execution.pre_execution_errors = []  # validated when cached
        yield
