"""Demo data: the documented example org, then synthetic orgs at any size, loaded with COPY.

plan (orgs, programs, counts) → customers (who they are, their identifiers) → rows (one stream per table)
→ loading (COPY in one transaction, with progress); showcase is the example org, summary what was loaded,
welcome what `serve --demo` shows a newcomer.
"""

from gateway.importer.demo.loading import load_demo_data
from gateway.importer.demo.summary import DemoSummary

__all__ = ["DemoSummary", "load_demo_data"]
