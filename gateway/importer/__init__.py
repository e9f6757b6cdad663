"""JSON Lines import (docs/import-format.md)."""

from gateway.importer.jsonl import ImportFailed, ImportSummary, import_file

__all__ = ["ImportFailed", "ImportSummary", "import_file"]
