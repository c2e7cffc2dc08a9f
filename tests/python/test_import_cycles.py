"""python_jobs has no import cycle, counting the imports inside functions (which hide one
from Python until the function runs): db, the layer every job connects through, imports no
job module above it."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from python_jobs import config

PACKAGE = config.ROOT / "python_jobs"


def module_name(path: Path) -> str:
    parts = path.relative_to(config.ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> set[int]:
    """ids of the import statements under `if TYPE_CHECKING:` (never run)."""
    skipped: set[int] = set()
    for block in ast.walk(node):
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test):
            skipped.update(id(n) for stmt in block.body for n in ast.walk(stmt))
    return skipped


def imports(name: str) -> set[str]:
    """The package's modules that `name` imports anywhere in its file (top level or inside a
    function), resolved as Python resolves them."""
    tree = ast.parse(MODULES[name].read_text())
    skipped = _type_checking_only(tree)
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from pkg import mod` imports the module pkg.mod; `from mod import f`, mod
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def test_the_import_walk_sees_imports_inside_functions():
    # db starts the embedded server on connect: a call, not a top-level import, must be seen
    assert "python_jobs.server" in imports("python_jobs.db")
    assert "python_jobs.db" in imports("python_jobs.warehouse")


def test_python_jobs_has_no_import_cycle():
    graph = {name: imports(name) for name in MODULES}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("above", ["python_jobs.spark", "python_jobs.warehouse"])
def test_db_depends_on_no_job_above_it(above):
    reached, todo = set(), ["python_jobs.db"]
    while todo:
        for name in imports(todo.pop()) - reached:
            reached.add(name)
            todo.append(name)
    assert above not in reached
