"""Progress bars on stderr for the long commands (import, demo-data); off with --no-progress."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_bar(total: int, description: str, *, enabled: bool, unit: str, binary: bool = False) -> tqdm[Any]:
    """A bar counting `unit`s towards total; `binary` scales by 1024 (bytes: KiB, MiB)."""
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        unit_scale=True,
        unit_divisor=1024 if binary else 1000,
        file=sys.stderr,
        disable=not enabled,
    )
