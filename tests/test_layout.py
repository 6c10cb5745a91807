"""The package's shape: no module imports, directly or round a circle, a module that imports it.

An import circle means neither module can be read without the other, and the package's layers
(configuration, networks, training, tools) stop being layers. The walk reads every module's
source with ``ast``, so it sees what running would hide: imports inside functions (made lazily,
to keep ``--help`` fast) and under ``if TYPE_CHECKING``.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT


def module_name(path: Path, root: Path) -> str:
    """``texturenet/gui/app.py`` -> ``texturenet.gui.app``; a package's ``__init__.py`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of ``package`` it imports, wherever in its source the import stands.

    ``from X import Y`` imports module ``X.Y`` where there is one, else module ``X``. A package's
    ``__init__`` that runs first on the way to a module is not counted: Python runs it before the module
    is read, so it closes no circle.
    """
    paths = {module_name(path, package.parent): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = (name if path.name == "__init__.py" else name.rpartition(".")[0]).split(".")
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = ".".join((here[:len(here) - node.level + 1] if node.level else []) + ([node.module] if node.module else []))
                imported.update(f"{source}.{alias.name}" if f"{source}.{alias.name}" in paths else source for alias in node.names)
        graph[name] = {module for module in imported if module in paths and module != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles found by a depth-first walk, each a list of modules with the first repeated at the end ([] if none)."""
    cycles: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]  # the modules from ``start`` to the one being read
        while stack:
            following = next(stack[-1], None)
            if following is None:
                done.add(path.pop())
                stack.pop()
            elif following in path:
                cycles.append(path[path.index(following):] + [following])
            elif following not in done:
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    return cycles


def test_the_walk_finds_a_circle_made_by_an_import_inside_a_function(tmp_path: Path) -> None:
    """A package whose circle closes only through a lazy import is caught: the check below can fail."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "b.py").write_text("def later():\n    from ..c import x\n")
    (package / "c.py").write_text("from . import a\nx = 1\n")
    (package / "d.py").write_text("import pkg.a\n")
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.c"] == {"pkg.a"} and graph["pkg.d"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    (package / "c.py").write_text("x = 1\n")
    assert import_cycles(import_graph(package)) == []


def test_texturenet_has_no_import_circle() -> None:
    graph = import_graph(ROOT / "texturenet")
    assert "texturenet.trainer" in graph and graph["texturenet.cli"], "the walk found no modules or no imports"
    cycles = import_cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
