"""Executing GraphQL documents: cached parsing and validation, and a compiled
path for repeated operations that falls back to graphql-core (via strawberry)
for anything it does not cover."""
