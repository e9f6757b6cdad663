"""Pure rules of the balance lookup: no database, no GraphQL."""
