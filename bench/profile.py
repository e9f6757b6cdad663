"""Profile: where the gateway's CPU goes under load, sampled by py-spy.

    python bench/profile.py [--customers 1000000] [--concurrency 32] [--seconds 15] [--reuse]

Starts the bench's PostgreSQL with demo data, one gateway worker, drives it with wrk and samples the
worker with py-spy (`pip install py-spy`) meanwhile. Prints, as shares of the samples in which the
server was on the CPU: the functions that use the CPU themselves (self) and the functions under which
it is spent (inclusive). Results go to bench/results/ as Markdown. Sampling slows the server, so
the requests/s of this run are not comparable with bench/run.py's.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from database import embedded_postgres, install_signal_handlers
from dataset import prepare
from measure import make_workloads
from report import opening_sections, write_markdown
from servers import check_answers, free_port, gateway, running
from wrk import require_wrk, run_wrk

# "function (path/to/file.py:123)": the line number is dropped so that a function counts once.
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE_PACKAGES = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def require_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def frame_name(frame: str) -> str:
    """`function (file)` with the file shortened to its package path."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = _SITE_PACKAGES.sub("", match["file"])
    path = re.sub(r".*/gateway/", "gateway/", path)
    return f"{match['function']} ({path})"


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """py-spy's raw (collapsed) output: `frame;frame;… count` per line, outermost first."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(frame_name(frame) for frame in stack.split(";"))] += int(count)
    return stacks


def shares(stacks: Counter[tuple[str, ...]]) -> tuple[int, Counter[str], Counter[str]]:
    """(total samples, self samples per function, inclusive samples per function)."""
    total = sum(stacks.values())
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[stack[-1]] += count
        for frame in set(stack):
            inclusive[frame] += count
    return total, own, inclusive


def callers(stacks: Counter[tuple[str, ...]], name: str) -> Counter[str]:
    """Samples under functions whose name contains `name`, by the function that called them."""
    found: Counter[str] = Counter()
    for stack, count in stacks.items():
        for depth, frame in enumerate(stack):
            if name in frame and depth > 0:
                found[stack[depth - 1]] += count
                break
    return found


def share_table(counts: Counter[str], total: int, top: int) -> list[str]:
    lines = ["| share | function |", "|---:|---|"]
    for function, count in counts.most_common(top):
        lines.append(f"| {100 * count / total:.1f} % | `{function}` |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000, help="demo data size (default 1000000)")
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of sampling under load (default 15)")
    parser.add_argument("--rate", type=int, default=500, help="samples per second (default 500)")
    parser.add_argument("--pool-size", type=int, default=4, help="database connections (default 4)")
    parser.add_argument("--top", type=int, default=40, help="rows per table (default 40)")
    parser.add_argument("--reuse", action="store_true", help="reuse a loaded database of the same size")
    parser.add_argument(
        "--callers", action="append", default=[], metavar="NAME", help="also show who calls functions named so"
    )
    args = parser.parse_args(argv)
    install_signal_handlers()
    require_wrk()
    py_spy = require_py_spy()
    stamp = datetime.now()
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "stacks.txt"
        with embedded_postgres(f"pg-{args.customers}", fresh=not args.reuse) as postgres:
            dataset = prepare(postgres, args.customers, samples=5000, reuse=args.reuse)
            workload = make_workloads(dataset, f"c{args.customers}").gateway
            contender = gateway(postgres, workers=1, pool_size=args.pool_size, port=free_port())
            with running(contender, workload.requests[0]) as server:
                check_answers(server, workload.requests)
                # Warm-up: documents cached, statements prepared, pools full.
                run_wrk(server.url, workload.file, concurrency=args.concurrency, duration=3,
                        server=server.psutil, postmaster=postgres.postmaster())  # fmt: skip
                sampler = subprocess.Popen(
                    [py_spy, "record", "--pid", str(server.process.pid), "--rate", str(args.rate),
                     "--duration", str(args.seconds), "--format", "raw", "--output", str(raw)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )  # fmt: skip
                result = run_wrk(server.url, workload.file, concurrency=args.concurrency, duration=args.seconds,
                                 server=server.psutil, postmaster=postgres.postmaster())  # fmt: skip
                _, problems = sampler.communicate(timeout=60)
                if sampler.returncode != 0 or not raw.exists():
                    raise SystemExit(f"py-spy failed: {problems.decode(errors='replace')}")
            version = postgres.version()
        stacks = read_stacks(raw)
        total, own, inclusive = shares(stacks)
    summary = [
        f"- {total:,} samples with the server on the CPU; load meanwhile: {result.rps:,.0f} requests/s, "
        f"server CPU {1000 * result.server_cpu / max(1, result.requests):.3f} ms/request (slowed by sampling)",
    ]
    own_table, inclusive_table = share_table(own, total, args.top), share_table(inclusive, total, args.top)
    caller_sections = [(f"Callers of `{name}`", share_table(callers(stacks, name), total, 10)) for name in args.callers]
    print("\n".join([*summary, "", "Self:", *own_table, "", "Inclusive:", *inclusive_table]))
    for heading, table in caller_sections:
        print("\n".join(["", f"{heading}:", *table]))
    command_line = f"python bench/profile.py {' '.join(sys.argv[1:] if argv is None else argv)}"
    setup = [
        f"- {args.customers:,} customers; gateway, 1 worker, pool {args.pool_size}; wrk c={args.concurrency}; "
        f"py-spy at {args.rate} samples/s for {args.seconds} s",
        *summary,
    ]
    sections = [
        *opening_sections(command_line, version, setup),
        ("Where the CPU is used (self)", own_table),
        ("Under which functions (inclusive)", inclusive_table),
        *caller_sections,
    ]
    path = write_markdown(f"Profile {stamp:%Y-%m-%d %H:%M}", sections, stamp, "profile")
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
