"""Resolvers: arguments to domain calls. No SQL, no HTTP."""
