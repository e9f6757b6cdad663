"""The package's shape: what the README's layout says, imports that point one way, modules one can read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gateway"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules one module imports, at any depth of its code (imports inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from package import module` imports that module; `from module import name` the module.
            targets.update(
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            )
    return {target for target in targets if target in modules and target != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    modules = _modules()
    graph = {name: _imports(path, name, modules) for name, path in modules.items()}
    assert graph["gateway.resolvers.balance"] >= {"gateway.resolvers.context"}, "the import reader missed an edge"
    assert _cycles(graph) == []


def test_the_import_checker_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_longer_than_one_sitting() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_readme_layout_names_every_package_and_top_level_module_and_nothing_else() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    block = layout[layout.index("```\n") + 4 : layout.index("\n```", layout.index("```\n") + 4)]
    named: set[str] = set()
    for line in block.splitlines():
        entry = line.split("  ")[0].strip()
        if not entry:
            continue  # a continued description
        for part in entry.split(","):
            part = part.strip()
            named.add(part if "/" in part else f"{Path(entry.split(',')[0]).parent}/{part}")
    named = {re.sub(r"/+$", "", name) for name in named}
    for name in named:
        assert (ROOT / name).exists(), f"the README's layout names {name}, which does not exist"
    packages = {str(p.parent.relative_to(ROOT)) for p in PACKAGE.glob("*/__init__.py")}
    top_modules = {
        str(p.relative_to(ROOT)) for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")
    }
    missing = (packages | top_modules) - named
    assert missing == set(), f"the README's layout does not mention {sorted(missing)}"
