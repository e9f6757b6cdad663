"""Print the schema's SDL: `python -m gateway.schema > schema.graphql`."""

from gateway.schema import schema

print(schema.as_str())
