"""Which gateway code a bench runs: the working tree's, copied once per run, or another git ref's.

The working tree may be edited while a bench runs (its rounds take many minutes): current_gateway() copies
gateway/ as it is when first asked (tracked and untracked files, not ignored ones) to
bench/.work/current-<fingerprint>/, and every gateway the run starts imports that copy, so all its rounds
run the same code; older copies are removed once no running bench uses them. gateway_at(REF) checks a ref
out with `git worktree add --detach` into bench/.work/gateway-<commit>/ (removed at the end; reused, and
left, when already there at that commit).

Either is started with the bench's own venv, with `PYTHONPATH` and the working directory set to the copy:
its `gateway` package comes before the editable install's (whose finder sits at the end of sys.meta_path).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from database import BENCH_DIR, WORK_DIR


@dataclass(frozen=True, slots=True)
class GatewaySource:
    ref: str  # as given on the command line ("working tree" for the copy of the current code)
    commit: str  # the full commit it resolves to (HEAD for the working tree)
    path: Path  # the checkout: its `gateway` package is the one imported
    description: str = ""  # for results files
    fingerprint: str = ""  # of the working tree's copy: its files' names and content


def _git(*args: str, cwd: Path = BENCH_DIR) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve(ref: str) -> str:
    return _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def _checked_out_at(path: Path) -> str | None:
    if not (path / ".git").exists():
        return None
    try:
        return _git("rev-parse", "HEAD", cwd=path)
    except RuntimeError:
        return None


@contextmanager
def gateway_at(ref: str) -> Iterator[GatewaySource]:
    """A checkout of `ref` in bench/.work/, whose `gateway` package a subprocess imports (checked first)."""
    try:
        commit = resolve(ref)
    except RuntimeError:
        raise SystemExit(f"--baseline-ref {ref}: not a commit of this repository") from None
    path = WORK_DIR / f"gateway-{commit[:12]}"
    created = False
    if _checked_out_at(path) != commit:
        if (path / ".git").exists():  # a leftover of an interrupted run, at another commit or broken
            _git("worktree", "remove", "--force", str(path))
        elif path.exists():
            shutil.rmtree(path)
        _git("worktree", "prune")
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--detach", str(path), commit)
        created = True
        print(f"checked out {ref} ({commit[:12]}) in {path}", flush=True)
    else:
        print(f"reusing the checkout of {ref} ({commit[:12]}) in {path}", flush=True)
    source = GatewaySource(ref, commit, path, f"{ref} (commit {commit})")
    try:
        imported_from(source)
        yield source
    finally:
        if created:
            _git("worktree", "remove", "--force", str(path))


def gateway_path(source: GatewaySource) -> dict[str, str]:
    """The environment a process (and uvicorn's workers) needs to import `source`'s `gateway` package, when started
    with the bench's interpreter in source.path: the copy comes first on sys.path, ahead of the editable install's
    finder (at the end of sys.meta_path)."""
    return {"PYTHONPATH": str(source.path)}


def gateway_env(source: GatewaySource) -> dict[str, str]:
    """The bench's environment with gateway_path(source): for a `python -m gateway` command run in source.path."""
    return {**os.environ, **gateway_path(source)}


def imported_from(source: GatewaySource) -> Path:
    """Where `import gateway` finds the package with the contender's interpreter, environment and directory;
    fails unless it is the checkout's."""
    done = subprocess.run(
        [sys.executable, "-c", "import gateway; print(gateway.__file__)"],
        cwd=source.path,
        env=gateway_env(source),
        capture_output=True,
        text=True,
        check=False,
    )
    found = Path(done.stdout.strip()) if done.returncode == 0 else None
    expected = source.path / "gateway" / "__init__.py"
    if found != expected:
        raise RuntimeError(f"the gateway of {source.ref} would import {found or done.stderr.strip()}, not {expected}")
    return found


def live_package_dirs(pid: int) -> set[Path] | str:
    """The directories of the `gateway` packages whose code is on the stacks of a running server (py-spy dump):
    which code that process really runs. A string says why it could not be looked at."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return "py-spy is not installed (the bench extra)"
    done = subprocess.run(
        [py_spy, "dump", "--pid", str(pid), "--json", "--full-filenames"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        return f"py-spy dump failed: {(done.stderr or done.stdout).strip()[:300]}"
    found: set[Path] = set()
    for thread in json.loads(done.stdout):
        for frame in thread.get("frames", []):
            filename = str(frame.get("filename", ""))
            if "/gateway/" in filename:
                found.add(Path(filename[: filename.index("/gateway/")]) / "gateway")
    return found or "no frame of the gateway's code on the server's stacks"


def _top() -> Path:
    return Path(_git("rev-parse", "--show-toplevel"))


def _gateway_files(top: Path) -> list[str]:
    """gateway/'s files as the working tree has them: tracked and untracked, not ignored (no __pycache__)."""
    listed = _git("ls-files", "--cached", "--others", "--exclude-standard", "--", "gateway", cwd=top).splitlines()
    return sorted(name for name in set(listed) if (top / name).is_file())


def _fingerprint(root: Path, names: list[str]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _describe(top: Path, fingerprint: str) -> str:
    head = _git("rev-parse", "--short=12", "HEAD", cwd=top)
    changed = _git("status", "--porcelain", "--untracked-files=all", "--", "gateway", cwd=top).splitlines()
    if not changed:
        return f"HEAD {head}, gateway/ as committed (fingerprint {fingerprint})"
    return f"HEAD {head} with uncommitted changes to {len(changed)} files under gateway/ (fingerprint {fingerprint})"


def working_tree_state() -> str:
    """What the working tree's gateway/ is now, in words, with a fingerprint of its content."""
    top = _top()
    return _describe(top, _fingerprint(top, _gateway_files(top)))


# In each copy of the working tree's gateway/: one empty file per bench process that runs it, named by its pid.
# A copy is removed only once none of them is running: bench runs may overlap (another run's copy is not stale).
_USERS = ".users"


def _mark_used(copy: Path) -> None:
    (copy / _USERS).mkdir(exist_ok=True)
    (copy / _USERS / str(os.getpid())).touch()


def _in_use(copy: Path) -> bool:
    return any(user.name.isdigit() and psutil.pid_exists(int(user.name)) for user in (copy / _USERS).glob("*"))


@functools.cache
def current_gateway() -> GatewaySource:
    """The working tree's gateway/, copied once per bench run (the first time it is asked for)."""
    top = _top()
    names = _gateway_files(top)
    staging = WORK_DIR / f".current-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for name in names:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(top / name, staging / name)
    # The fingerprint of what was copied: files edited meanwhile are described as they were taken.
    fingerprint = _fingerprint(staging, names)
    path = WORK_DIR / f"current-{fingerprint}"
    _mark_used(staging)
    for stale in WORK_DIR.glob("current-*"):
        if stale != path and not _in_use(stale):
            shutil.rmtree(stale, ignore_errors=True)
    if path.exists():
        _mark_used(path)
        shutil.rmtree(staging)
    else:
        staging.rename(path)
    head = _git("rev-parse", "HEAD", cwd=top)
    source = GatewaySource("working tree", head, path, _describe(top, fingerprint), fingerprint)
    imported_from(source)
    return source


def code_state_lines(source: GatewaySource) -> list[str]:
    """What the current gateway contenders ran, and whether the working tree changed while they did."""
    lines = [
        f"- the current gateway: the working tree's gateway/ at the start of the run, {source.description}; "
        f"copied to bench/.work/{source.path.name}/ and run from there, so that every round runs the same code"
    ]
    top = _top()
    if _fingerprint(top, _gateway_files(top)) != source.fingerprint:
        lines.append(f"- the working tree's gateway/ changed during the run (now {working_tree_state()}): not measured")
    return lines
