"""No import cycles between cvtool's modules, counting imports inside functions too.

Every module under cvtool/ is parsed with ``ast`` (nothing is imported), and
every import statement at any depth adds an edge: ``import cvtool.a.b`` and
``from cvtool.a import x`` point at ``cvtool.a.b`` / ``cvtool.a``, and at
``cvtool.a.x`` when ``x`` is itself a submodule (``from cvtool.nn import
layers``). A lazy import that dodges a cycle is still a cycle, so it fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cvtool

ROOT = Path(cvtool.__file__).resolve().parent


def module_names(root: Path = ROOT, package: str = "cvtool") -> dict[str, Path]:
    """{dotted name: path} for every .py file under `root` (packages by their __init__)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module a (possibly relative) ``from ... import`` names."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, source: str, modules, is_package: bool = False) -> set[str]:
    """The cvtool modules that `source` (the text of `module`) imports, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, node, is_package)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return {name for name in found if name in modules and name != module}


def import_graph(root: Path = ROOT, package: str = "cvtool") -> dict[str, set[str]]:
    """{module: modules it imports} for every module under `root`."""
    modules = module_names(root, package)
    return {
        name: imports_of(name, path.read_text(encoding="utf-8"), modules, path.stem == "__init__")
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None (depth-first search, sorted for stable output)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_reports_the_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None
    assert find_cycle({"x": {"x"}}) == ["x", "x"]


def test_imports_of_sees_lazy_relative_and_submodule_imports():
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"}
    source = (
        "import os\n"
        "from pkg import b\n"
        "def f():\n"
        "    from .sub import c\n"
        "    import pkg.sub\n"
        "    from pkg.a import thing\n"
    )
    assert imports_of("pkg.a", source, modules) == {"pkg.b", "pkg.sub.c", "pkg.sub"}
    assert imports_of("pkg.sub", "from . import c\nfrom .. import b\n", modules, True) == {
        "pkg.sub.c",
        "pkg.b",
    }


def test_a_lazy_cycle_in_a_tree_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import g\n")
    (pkg / "b.py").write_text("def g():\n    from pkg import a\n")
    assert find_cycle(import_graph(pkg, "pkg")) == ["pkg.a", "pkg.b", "pkg.a"]


def test_the_graph_covers_the_package():
    graph = import_graph()
    assert "cvtool.nn.conv" in graph and "cvtool.data.datasets" in graph
    assert "cvtool.nn.layers" in graph["cvtool.nn.conv"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
