"""Loyalty GraphQL gateway: points balances per program and category, over PostgreSQL."""

__version__ = "0.1.0"
