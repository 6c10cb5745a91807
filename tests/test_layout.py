"""The package's rooms and the direction of its imports (issue 23): no circle, and no arrow that runs back up.

Every module's imports are read with ``ast`` (lazy imports inside functions included) and resolved to the
package's own modules. Each module belongs to a room (the longest prefix in ``RANKS``); an arrow may only
point from a room to a room of lower rank, or stay inside its room. ``KNOWN`` lists exceptions (none today), each
with the change that removes it; an entry that no longer holds fails too, so the list only shrinks.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Set, Tuple

from conftest import ROOT

# Room -> rank; imports point from a higher rank to a lower one. At the bottom what every room may read (errors,
# the version, VGG's layer names, then the settings and the device); cli sits below apps because the servers build
# their command lines with its helpers (add_flag, run_command); the package's __init__ (the API) and __main__ are the top.
RANKS: Dict[str, int] = {
    "texturenet.errors": 0,
    "texturenet.version": 0,
    "texturenet.vgg_layers": 0,
    "texturenet.config": 1,
    "texturenet.devices": 1,
    "texturenet.io": 2,
    "texturenet.model": 3,
    "texturenet.loss": 3,
    "texturenet.training": 4,
    "texturenet.stylize": 4,
    "texturenet.tools": 5,
    "texturenet.api": 6,
    "texturenet.cli": 7,
    "texturenet.apps": 8,
    "texturenet.__main__": 9,
    "texturenet": 9,
}

Arrow = Tuple[str, str]

# Arrows that break the rule, each with what would remove it: none since the layout of issue 23.
KNOWN: Dict[Arrow, str] = {}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = ROOT) -> Dict[str, Path]:
    """Module name -> file, for every module of the package under `root`."""
    return {module_name(path, root): path for path in sorted((root / "texturenet").rglob("*.py"))}


def arrows(known: Mapping[str, Path]) -> Set[Arrow]:
    """module -> module for every import of the package's own modules, wherever it stands in the file."""
    found: Set[Arrow] = set()
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source for alias in node.names]
            for target in targets:
                while target and target not in known:  # `import texturenet.a.b` of a name inside a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add((name, target))
    return found


def room(module: str) -> str:
    candidates = [prefix for prefix in RANKS if module == prefix or module.startswith(prefix + ".")]
    assert candidates, f"{module} is in no room: add its room to RANKS in tests/test_layout.py"
    return max(candidates, key=len)


def against_the_rule(graph: Iterable[Arrow]) -> List[str]:
    """Arrows from a room to one of the same or a higher rank."""
    bad = []
    for source, target in sorted(graph):
        here, there = room(source), room(target)
        if here != there and RANKS[here] <= RANKS[there]:
            way = "sideways" if RANKS[here] == RANKS[there] else "up"
            bad.append(f"{source} -> {target} ({way}: {here} is rank {RANKS[here]}, {there} is rank {RANKS[there]})")
    return bad


def circles(graph: Iterable[Arrow]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    edges: Dict[str, List[str]] = {}
    for source, target in graph:
        edges.setdefault(source, []).append(target)
        edges.setdefault(target, [])
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_room() -> None:
    for name in modules():
        room(name)


def test_imports_point_down_only() -> None:
    graph = arrows(modules()) - set(KNOWN)
    assert not against_the_rule(graph), "\n".join(against_the_rule(graph))


def test_no_import_circle() -> None:
    graph = arrows(modules()) - set(KNOWN)
    assert not circles(graph), circles(graph)


def test_every_known_exception_still_holds() -> None:
    """An exception that was removed must leave the list, so that it cannot come back unseen."""
    graph = arrows(modules())
    gone = [f"{source} -> {target}" for source, target in KNOWN if (source, target) not in graph]
    assert not gone, f"no longer imported, remove from KNOWN: {gone}"


def test_the_checks_catch_a_circle_and_an_upward_arrow(tmp_path: Path) -> None:
    """The walk finds a lazy import, and both checks fail on a package that breaks the rule."""
    fake = tmp_path / "texturenet"
    (fake / "model").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "model" / "__init__.py").write_text("")
    (fake / "config.py").write_text("def late():\n    from .model import pyramid\n")
    (fake / "model" / "pyramid.py").write_text("from ..config import late\n")
    graph = arrows(modules(tmp_path))
    assert graph == {("texturenet.config", "texturenet.model.pyramid"), ("texturenet.model.pyramid", "texturenet.config")}
    assert against_the_rule(graph) == ["texturenet.config -> texturenet.model.pyramid (up: texturenet.config is rank 1, "
                                       "texturenet.model is rank 3)"]
    assert circles(graph) == [["texturenet.config", "texturenet.model.pyramid"]]
