"""How requests arrive: GraphQL over HTTP at /graphql, GraphiQL, health probes, CORS."""
