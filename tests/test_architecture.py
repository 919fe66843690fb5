"""The dependency rule of docs/ARCHITECTURE.md: imports run down the layers only, and there are no import loops."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lowest first. A module may import its own layer's modules and any layer below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("verifier.common", "verifier.manifests", "verifier.cluster", "verifier"),
    ("verifier.core",),
    ("verifier.photos", "verifier.store"),
    ("verifier.batch", "verifier.calibrate"),
    ("verifier.sweep",),
    ("verifier.demo",),
    ("api",),
    ("verifier.cli", "verifier.__main__"),
)


def _modules() -> dict[str, Path]:
    mods = {}
    for top in ("verifier", "api"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _layer(module: str) -> int:
    best, rank = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank >= 0, f"{module} is in no layer"
    return rank


def _imports(module: str, top_level_only: bool) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (the house uses absolute imports)"
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def test_every_module_has_a_layer() -> None:
    for m in MODULES:
        if ".migrations." not in m:
            _layer(m)


def test_imports_never_run_upward() -> None:
    upward = []
    for m in MODULES:
        if ".migrations" in m:
            continue
        for dep in _imports(m, top_level_only=False):
            if ".migrations" not in dep and _layer(dep) > _layer(m):
                upward.append(f"{m} (layer {_layer(m)}) imports {dep} (layer {_layer(dep)})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_loops() -> None:
    graph = {m: _imports(m, top_level_only=True) for m in MODULES}
    state: dict[str, int] = {}
    loops = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for dep in sorted(graph.get(m, ())):
            if dep.startswith("verifier") and dep.count(".") == 0:
                continue  # the root package only holds lazy re-exports
            if state.get(dep) == 1:
                loops.append(" -> ".join(stack[stack.index(dep):] + [dep]) if dep in stack else f"{m} -> {dep}")
            elif dep not in state:
                visit(dep, stack + [dep])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not loops, "\n".join(loops)


def test_core_knows_nothing_of_store_reports_cli_or_http() -> None:
    for m in MODULES:
        if m.startswith("verifier.core."):
            third_party = set()
            for node in ast.walk(ast.parse(MODULES[m].read_text(encoding="utf-8"))):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    third_party.add((name or "").split(".")[0])
            assert not third_party & {"sqlalchemy", "alembic", "fastapi", "uvicorn", "openpyxl", "argparse", "starlette"}, m
