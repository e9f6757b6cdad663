"""The public GraphQL schema."""

from gateway.schema.query import schema

__all__ = ["schema"]
