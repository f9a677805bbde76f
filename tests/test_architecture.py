"""The shape of harness/: stages as subpackages, no cycles, no private names across modules.

import-linter (`lint-imports`, run by `invoke test`) checks the direction of imports
between stages; these tests check what it cannot: import cycles between single
modules, private names used outside their module, and the size of the tree's pieces.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

from harness.paths import HARNESS, REPO_ROOT

STAGES = {
    "cli",
    "matrix",
    "bench",
    "raw",
    "parse",
    "tables",
    "figures",
    "pages",
    "site",
    "perf",
    "serving",
}
TOP_LEVEL = {"__init__.py", "__main__.py", "paths.py", "errors.py"}
MAX_LINES = 330  # "no module much over 300 lines"


def _modules() -> list[Path]:
    return sorted(HARNESS.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_tree_reads_as_the_pipeline() -> None:
    top = {p.name for p in HARNESS.iterdir() if p.suffix == ".py"}
    assert top == TOP_LEVEL
    packages = {p.name for p in HARNESS.iterdir() if (p / "__init__.py").is_file()}
    assert packages == STAGES
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((HARNESS / stage / "__init__.py").read_text()))
        assert doc and ("In:" in doc or "->" in doc), f"{stage}/__init__.py: say in and out"


def test_no_module_is_much_over_300_lines() -> None:
    long = {_name(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _private_uses(path: Path) -> list[str]:
    """`from harness.x import _name` and `module._name` for a harness module imported here."""
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(
                        f"{path.name}:{node.lineno}: from {node.module} import {alias.name}"
                    )
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name.startswith("harness"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_private_name_is_used_outside_its_module() -> None:
    uses = [u for p in [*_modules(), REPO_ROOT / "tasks.py"] for u in _private_uses(p)]
    assert uses == []


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from harness.bench import runner\nfrom harness.parse.wrk import _x\nrunner._y\n"
    )
    assert len(_private_uses(bad)) == 2


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_modules() -> None:
    g = grimp.build_graph("harness")
    graph = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    # A package's __init__ imports nothing here, so a cycle is one between real modules.
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
