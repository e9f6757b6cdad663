"""The public GraphQL schema."""

from gateway.schema.query import ROOT_RESOLVERS, schema

__all__ = ["ROOT_RESOLVERS", "schema"]
