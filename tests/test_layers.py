"""The package's layers import only downward and without cycles (ARCHITECTURE.md).

Every module of ``gkaan_cli`` is read with :mod:`ast` (nothing is imported), so imports inside
functions and under ``TYPE_CHECKING`` count as much as those at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import gkaan_cli

PACKAGE = "gkaan_cli"
ROOT = Path(gkaan_cli.__file__).parent

#: Layer of each top-level module or sub-package; a module imports only from its layer or below.
LAYERS = {
    "cli": 7,
    "commands": 7,
    "apis": 6,
    "viz": 5,
    "engine": 4,
    "data": 3,
    "model": 2,
    "video": 1,
    "config": 0,
    "errors": 0,
    "fileio": 0,
    "heap": 0,
    "nested": 0,
    "progress": 0,
    "version": 0,
    "words": 0,
}
#: The package's own ``__init__`` (lazy re-exports) and ``__main__`` sit outside the layers.
EXEMPT = {PACKAGE, f"{PACKAGE}.__main__"}
#: Library layers, which report through return values and callbacks, never on the terminal.
NO_RICH = ("model", "video", "data", "engine", "viz", "apis")


@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(module: str) -> Iterator[tuple[str, int]]:
    """``(absolute module name, line)`` of every import statement in ``module``'s source."""
    path = modules()[module]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + is_package]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def internal_imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports (``from pkg import submodule`` names the
    submodule, ``from module import name`` names the module)."""
    known = modules()
    targets = set()
    for name, _ in imported_names(module):
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith(PACKAGE) and name != module:
            targets.add(name)
    return targets


def layer(module: str) -> int:
    return LAYERS[module.split(".")[1]]


def layered_modules() -> list[str]:
    return [name for name in modules() if name not in EXEMPT]


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = [name for name in layered_modules() if name.split(".")[1] not in LAYERS]
    assert unplaced == [], "add these to LAYERS here and to ARCHITECTURE.md"


def test_the_walk_sees_relative_absolute_and_function_level_imports() -> None:
    assert internal_imports(f"{PACKAGE}.model.gkaan") >= {
        f"{PACKAGE}.config",  # from ..config import GKAANConfig
        f"{PACKAGE}.model.checkpoint",  # from .checkpoint import ...
        f"{PACKAGE}.model.locate",  # inside GKAAN.from_pretrained
    }
    assert f"{PACKAGE}.model.locate" in internal_imports(f"{PACKAGE}.apis.model")


def test_no_module_imports_or_reads_another_modules_private_names() -> None:
    """A module's ``_name`` is its own: another module that needs it gets a public name, so
    what a module promises is what its public names say (ARCHITECTURE.md)."""
    offenders = []
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = list(ast.walk(tree))
        own = {  # attributes this module's classes set on themselves
            node.attr
            for node in nodes
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        }
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                names = [a.name for a in node.names]
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                offenders += [f"{module}:{node.lineno} imports {name}" for name in private]
            elif (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id not in ("self", "cls")
                and node.attr not in own
            ):
                offenders.append(f"{module}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert offenders == []


def test_no_module_imports_the_package_init() -> None:
    """``gkaan_cli/__init__`` re-exports from the layers; importing it back makes a loop."""
    offenders = [name for name in layered_modules() if PACKAGE in internal_imports(name)]
    assert offenders == [], "import from the defining module (e.g. gkaan_cli.version) instead"


def test_imports_only_go_down_the_layers() -> None:
    upward = sorted(
        f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
        for name in layered_modules()
        for target in internal_imports(name)
        if target not in EXEMPT and layer(target) > layer(name)
    )
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    graph = {
        name: {t for t in internal_imports(name) if t not in EXEMPT} for name in layered_modules()
    }
    cycles = [sorted(component) for component in _strongly_connected(graph) if len(component) > 1]
    assert cycles == []


@pytest.mark.parametrize("subpackage", NO_RICH)
def test_library_layers_do_not_import_rich(subpackage: str) -> None:
    prefix = f"{PACKAGE}.{subpackage}"
    users = {
        name
        for name in modules()
        if name.startswith(prefix)
        for imported, _ in imported_names(name)
        if imported == "rich" or imported.startswith("rich.")
    }
    assert sorted(users) == [], "library modules must report through callbacks, not Rich"


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of ``graph`` (node -> successors)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return components
