"""Driving a server with wrk (one thread, the Lua script cycling over real requests) and measuring CPU meanwhile."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil

from database import BENCH_DIR

WRK_SCRIPT = BENCH_DIR / "wrk.lua"
# Replaced by wrk.lua, in every request of a `fresh` run, by a name never sent before (the same length).
FRESH_PLACEHOLDER = "F0000000000000000"
# CPU seconds of other work within which two rounds count as equally quiet.
QUIET_TOLERANCE = 0.5


@dataclass(frozen=True, slots=True)
class LoadResult:
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers (or, when a status is expected, any other), socket errors and timeouts
    server_cpu: float  # CPU seconds of the server process and its children
    postgres_cpu: float  # CPU seconds of the postmaster and all its children
    wrk_cpu: float
    other_cpu: float  # CPU seconds used by everything else on the machine meanwhile: the noise
    error_detail: str = ""  # which kinds of errors, when there are any
    wall_seconds: float = 0.0  # how long wrk ran, start to exit
    server_system_cpu: float = 0.0  # of server_cpu, the kernel's (system calls, the network): the rest is user time

    @property
    def failure(self) -> str | None:
        """Why this run cannot count, if it cannot: errors, or no answer at all."""
        if self.errors:
            return self.error_detail
        if self.requests == 0:
            return f"no request was answered in {self.seconds:.0f} s (wrk ran {self.wall_seconds:.0f} s)"
        return None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_ms_per_request(self) -> float:
        """Server CPU per request: unlike requests/s, barely moved by other load on the machine."""
        return 1000 * self.server_cpu / self.requests if self.requests else 0.0

    @property
    def server_system_ms_per_request(self) -> float:
        return 1000 * self.server_system_cpu / self.requests if self.requests else 0.0

    @property
    def postgres_ms_per_request(self) -> float:
        return 1000 * self.postgres_cpu / self.requests if self.requests else 0.0


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    return path


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of a process tree, including children it has already reaped."""
    return sum(user_and_system_seconds(process))


def user_and_system_seconds(process: psutil.Process) -> tuple[float, float]:
    """User and system CPU of a process tree, apart, including children it has already reaped."""
    user = system = 0.0
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    for member in tree:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        user += times.user + times.children_user
        system += times.system + times.children_system
    return user, system


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot."""
    times = psutil.cpu_times()
    # On Linux guest time is already counted in user time.
    counted_twice = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - counted_twice


def wait_for_quiet(max_wait: float, threshold_cores: float = 0.25, window: float = 2.0) -> float:
    """Wait (at most max_wait seconds) until the machine has been nearly idle for a window; returns the seconds waited.

    Called between measurements, when the bench's own processes are idle: whatever keeps the CPU busy then is
    someone else's work, which would otherwise land in the middle of a measurement.
    """
    started = time.monotonic()
    while True:
        before = busy_cpu_seconds()
        time.sleep(window)
        if (busy_cpu_seconds() - before) / window < threshold_cores:
            break
        if time.monotonic() - started >= max_wait:
            break
    return time.monotonic() - started


def wrk_command(
    url: str,
    requests_file: Path,
    *,
    concurrency: int,
    duration: float,
    check_bodies: bool = False,
    expect_status: int | None = None,
    fresh: bool = False,
    count_statuses: bool = False,
) -> list[str]:
    """wrk with one thread and wrk.lua cycling over the requests file (see run_wrk for the options)."""
    command = [
        require_wrk(), "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
        "-s", str(WRK_SCRIPT), url, "--", str(requests_file), "/graphql",
    ]  # fmt: skip
    if check_bodies:
        command.append("check-bodies")
    if expect_status is not None:
        command.append(f"expect-status={expect_status}")
    if fresh:
        # Six characters of this run's own, so that its names differ from every earlier run's (the warm-up's).
        command.append(f"fresh={secrets.token_hex(3)}")
    if count_statuses:
        command.append("count-statuses")
    return command


@dataclass(frozen=True, slots=True)
class Finished:
    """A command run to its end: its exit code, output, and its own resource usage (its reaped children's too)."""

    returncode: int
    stdout: bytes
    stderr: bytes
    user_cpu: float  # seconds
    system_cpu: float
    wall_seconds: float  # start to exit

    @property
    def cpu_seconds(self) -> float:
        return self.user_cpu + self.system_cpu


def run_with_usage(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Finished:
    """Run a command to its end, its output captured in files (no pipe to fill), and say what it used."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        try:
            # wait4 gives the command's own resource usage; Popen.wait() would reap it without.
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return Finished(process.returncode, stdout, stderr, usage.ru_utime, usage.ru_stime, wall)


def run_wrk(
    url: str,
    requests_file: Path,
    *,
    concurrency: int,
    duration: float,
    server: psutil.Process,
    postmaster: psutil.Process,
    check_bodies: bool = False,
    expect_status: int | None = None,
    fresh: bool = False,
) -> LoadResult:
    """One wrk run against url with the given connections; CPU is measured over exactly that run.

    With check_bodies, answers carrying GraphQL errors count as errors too (wrk then reads every body).
    With expect_status, an answer with any other status is an error, and only that (a 403 can be the point).
    With fresh, FRESH_PLACEHOLDER in the requests is replaced by a name of its own in every request sent.
    """
    command = wrk_command(
        url, requests_file, concurrency=concurrency, duration=duration, check_bodies=check_bodies,
        expect_status=expect_status, fresh=fresh,
    )  # fmt: skip
    server_before, postgres_before, busy_before = (
        user_and_system_seconds(server),
        cpu_seconds(postmaster),
        busy_cpu_seconds(),
    )
    done = run_with_usage(command)
    server_user, server_system = user_and_system_seconds(server)
    server_user, server_system = server_user - server_before[0], server_system - server_before[1]
    server_cpu = server_user + server_system
    postgres_cpu = cpu_seconds(postmaster) - postgres_before
    busy = busy_cpu_seconds() - busy_before
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.decode()}{done.stdout.decode()}")
    figures = wrk_figures(done.stdout.decode())
    # wrk's own status errors are every answer of 400 or more: with an expected status, the script counts instead.
    status_kind = "status_errors" if expect_status is None else "unexpected_status"
    kinds = ("connect_errors", "read_errors", "write_errors", status_kind, "timeouts", "graphql_errors")
    errors = sum(figures[kind] for kind in kinds)
    return LoadResult(
        concurrency=concurrency,
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=errors,
        server_cpu=server_cpu,
        postgres_cpu=postgres_cpu,
        wrk_cpu=done.cpu_seconds,
        other_cpu=max(0.0, busy - server_cpu - postgres_cpu - done.cpu_seconds),
        error_detail=", ".join(f"{figures[kind]} {kind.replace('_', ' ')}" for kind in kinds if figures[kind]),
        wall_seconds=done.wall_seconds,
        server_system_cpu=server_system,
    )


def wrk_figures(output: str) -> dict[str, int]:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            parsed: dict[str, int] = orjson.loads(line)
            return parsed
    raise RuntimeError(f"wrk printed no figures:\n{output}")
